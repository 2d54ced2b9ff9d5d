"""The police report of suspicious accounts (item 9a): CSV (UTF-8 with BOM), XLSX or JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from serving import report, results
from serving.auditlog import AuditDep
from serving.auth import Investigator
from serving.db import now, rfc3339
from serving.deps import StoreDep
from serving.errors import ApiError, responses
from serving.schemas import Report

router = APIRouter(prefix="/v1/reports", tags=["reports"])
MAX_ROWS = 10_000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

REPORT_DOC = f"""One row per account with scored payments in `[from, to)` whose riskiest one
scored at least `min_score` or whose case was confirmed fraud/mule: identifiers, type,
opening date, risk score, typology, evidence (counts and sums of credits/debits, distinct
senders, foreign login countries and IPs, key payments), case status and decisions.

`format=csv` is UTF-8 with a byte-order mark so that Excel shows Vietnamese text; every text
cell is quoted, and a `'` is put before anything a spreadsheet would run as a formula (`=`,
`+`, `-`, `@` and their full-width forms, at the start of a cell or after a `,` `;` or tab,
after any spaces); line feeds become spaces. `format=xlsx` is an Excel workbook with typed
cells (numbers as numbers, text as text, never a formula). List cells are joined with ` | `;
the columns are {", ".join(f"`{c}`" for c in report.COLUMNS)}.
At most {MAX_ROWS} rows (highest risk first). Each export is written to the audit log with its
filters and row count."""


@router.get(
    "/suspicious-accounts", summary="Suspicious-accounts report for the police",
    description=REPORT_DOC, response_model=Report,
    responses={**responses(401, 403, 422, 500),
               200: {"content": {"text/csv": {"schema": {"type": "string"}},
                                 XLSX: {"schema": {"type": "string", "format": "binary"}}},
                     "description": "JSON (`format=json`), CSV (`format=csv`) or XLSX"}},
)
def suspicious_accounts(
    principal: Investigator,
    store: StoreDep,
    audit: AuditDep,
    from_: Annotated[datetime, Query(alias="from", description="Start (RFC 3339, inclusive)")],
    to: Annotated[datetime, Query(description="End (RFC 3339, exclusive)")],
    format: Annotated[Literal["csv", "xlsx", "json"], Query()] = "csv",  # noqa: A002
    min_score: Annotated[float, Query(ge=0.0, le=1.0)] = 0.5,
) -> Response:
    try:  # the period rule of every report: 1970..9000 (UTC), 'to' after 'from', 400 days
        t_from, t_to = results.check_period(from_, to)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    rows = store.report_rows(t_from, t_to, min_score, MAX_ROWS)
    audit.record("report.export", "suspicious-accounts", {
        "filters": {"from": rfc3339(t_from), "to": rfc3339(t_to), "min_score": min_score,
                    "format": format},
        "rows": len(rows), "accounts": [r["account_id"] for r in rows[:1000]]})
    stamp = datetime.fromtimestamp(now(), tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    if format == "csv":
        return Response(report.to_csv(rows), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="suspicious-accounts-{stamp}.csv"'})
    if format == "xlsx":
        return Response(report.to_xlsx(rows), media_type=XLSX, headers={
            "Content-Disposition": f'attachment; filename="suspicious-accounts-{stamp}.xlsx"'})
    meta = {"from": rfc3339(t_from), "to": rfc3339(t_to),
            "min_score": min_score, "generated_at": rfc3339(now())}
    return Response(report.to_json(rows, meta), media_type="application/json")
