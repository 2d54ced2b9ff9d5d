"""The police report of suspicious accounts (item 9a), CSV (UTF-8 with BOM) or JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from serving import report
from serving.auth import Investigator
from serving.db import now, rfc3339
from serving.deps import RequestId, StoreDep
from serving.errors import ApiError, responses
from serving.schemas import Report

router = APIRouter(prefix="/v1/reports", tags=["reports"])
MAX_ROWS = 10_000
MAX_SPAN_DAYS = 400

REPORT_DOC = f"""One row per account with scored payments in `[from, to)` whose riskiest one
scored at least `min_score` or whose case was confirmed fraud/mule: identifiers, type,
opening date, risk score, typology, evidence (counts and sums of credits/debits, distinct
senders, foreign login countries and IPs, key payments), case status and decisions.

`format=csv` is UTF-8 with a byte-order mark so that Excel shows Vietnamese text; list cells
are joined with ` | `; the columns are {", ".join(f"`{c}`" for c in report.COLUMNS)}.
At most {MAX_ROWS} rows (highest risk first). Each export is written to the audit log."""


@router.get(
    "/suspicious-accounts", summary="Suspicious-accounts report for the police",
    description=REPORT_DOC, response_model=Report,
    responses={**responses(401, 403, 422, 500),
               200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                     "description": "JSON (`format=json`) or CSV (`format=csv`)"}},
)
def suspicious_accounts(
    principal: Investigator,
    store: StoreDep,
    rid: RequestId,
    from_: Annotated[datetime, Query(alias="from", description="Start (RFC 3339, inclusive)")],
    to: Annotated[datetime, Query(description="End (RFC 3339, exclusive)")],
    format: Annotated[Literal["csv", "json"], Query()] = "csv",  # noqa: A002
    min_score: Annotated[float, Query(ge=0.0, le=1.0)] = 0.5,
) -> Response:
    if from_.tzinfo is None or to.tzinfo is None:
        raise ApiError(422, "invalid_request", "'from' and 'to' need a timezone offset")
    if to <= from_:
        raise ApiError(422, "invalid_request", "'to' must be after 'from'")
    if (to - from_).days > MAX_SPAN_DAYS:
        raise ApiError(422, "invalid_request", f"at most {MAX_SPAN_DAYS} days per report")
    rows = store.report_rows(from_.timestamp(), to.timestamp(), min_score, MAX_ROWS)
    store.record_audit(principal.name, principal.role, "report.export",
                       f"suspicious-accounts {from_.isoformat()}..{to.isoformat()}", rid)
    stamp = datetime.fromtimestamp(now(), tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    if format == "csv":
        return Response(report.to_csv(rows), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="suspicious-accounts-{stamp}.csv"'})
    meta = {"from": rfc3339(from_.timestamp()), "to": rfc3339(to.timestamp()),
            "min_score": min_score, "generated_at": rfc3339(now())}
    return Response(report.to_json(rows, meta), media_type="application/json")
