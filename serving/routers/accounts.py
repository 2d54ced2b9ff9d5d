"""Accounts: the ranked high-risk list and one account's details (every detail read audited)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from serving import cursor
from serving.auditlog import AuditDep
from serving.auth import Viewer
from serving.deps import CacheDep, MetricsDep, SettingsDep, StoreDep
from serving.errors import ApiError, responses
from serving.reads import RiskFilter
from serving.schemas import (
    ACCOUNT_ID_DOC,
    ID_LEN_NORMALISED,
    AccountDetail,
    AccountId,
    AccountType,
    CaseStatusFilter,
    HighRiskPage,
    Typology,
)

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])

HIGH_RISK_DOC = """Accounts ranked by current risk (highest first), with the reasons.

**Item 9a** (business accounts that log in from abroad and show abnormal activity) is one
query: `GET /v1/accounts/high-risk?type=business&foreign_login=true&min_score=0.5`.

Other useful views: untreated accounts `?case_status=none&min_score=0.5`; suspected mules
`?typology=mule`; accounts active since a date `?since=2025-01-01T00:00:00%2B07:00`.

Paging: pass the response's `next_cursor` as `cursor` with the same filters; `limit` is 1 to
the server's maximum page (`CANHGIAC_API_MAX_PAGE`, default 500).

Every call is written to the audit log (filters and row count).

Freshness: pages are cached. Case decisions show at once; the scorer's latest writes may be
missing from a page for up to 1 s (it is re-rendered in the background).
"""


@router.get(
    "/high-risk", response_model=HighRiskPage, summary="Ranked high-risk accounts",
    description=HIGH_RISK_DOC, responses=responses(400, 401, 403, 422, 500),
)
async def high_risk(
    request: Request,
    principal: Viewer,
    store: StoreDep,
    settings: SettingsDep,
    cache: CacheDep,
    metrics: MetricsDep,
    audit: AuditDep,
    min_score: Annotated[float, Query(ge=0.0, le=1.0, description="Minimum current risk")] = 0.0,
    type: Annotated[AccountType | None, Query(description="Account type")] = None,  # noqa: A002
    foreign_login: Annotated[bool | None, Query(
        description="true: only accounts with logins from abroad; false: only without")] = None,
    since: Annotated[datetime | None, Query(
        description="Only accounts active since (RFC 3339 with offset)")] = None,
    case_status: Annotated[CaseStatusFilter | None, Query(
        description="Case status; `none` = no case yet")] = None,
    typology: Annotated[Typology | None, Query(description="Suspected typology")] = None,
    limit: Annotated[int, Query(ge=1, description="Page size (1..CANHGIAC_API_MAX_PAGE)")] = 50,
    cursor_: Annotated[str | None, Query(alias="cursor", description="Opaque cursor")] = None,
) -> Response:
    if limit > settings.api_max_page:
        raise ApiError(422, "invalid_request",
                       f"query parameter 'limit': at most {settings.api_max_page} per page")
    if since is not None and (since.tzinfo is None or since.utcoffset() is None):
        raise ApiError(422, "invalid_request",
                       "query parameter 'since': needs a timezone offset (Z or +07:00)")
    try:
        since_t = None if since is None else since.timestamp()
    except (OverflowError, ValueError, OSError):
        raise ApiError(422, "invalid_request", "query parameter 'since': out of range") from None
    filters = RiskFilter(min_score, type, foreign_login, since_t, case_status, typology)
    after = None
    if cursor_ is not None:
        score, account_id = cursor.decode(cursor_, filters.key(), (float | int, str))
        after = (float(score), account_id)
    # see serving.cache: pages per (API version, query), at most MAX_STALE_S behind the
    # scorer's writes; serving.fastpath answers exact repeats before routing
    versions = request.scope["state"].get("versions") or store.versions()

    async def render() -> bytes:
        rows = await cache.in_render_thread(store.high_risk, filters, after, limit + 1, True)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = cursor.encode(list(rows[-1]["_key"]), filters.key())
        for row in rows:
            del row["_key"]
        return orjson.dumps({"items": rows, "next_cursor": next_cursor, "limit": limit})

    body, outcome = await cache.get_or_render((versions.api, request.scope["query_string"]),
                                              versions.data, render)
    metrics.cache.labels(outcome).inc()
    await audit.list_read(request.scope["query_string"], body)
    return Response(body, media_type="application/json")


@router.get(
    "/{account_id}", response_model=AccountDetail, summary="One account's details",
    description="Profile, risk timeline, recent scored payments with reasons, logins "
                "(countries, devices, IPs), counterparties and case decisions. "
                "Every call is written to the audit log.",
    responses=responses(401, 403, 404, 422, 500),
)
def account_detail(
    principal: Viewer,
    store: StoreDep,
    audit: AuditDep,
    account_id: Annotated[AccountId, Path(min_length=1, max_length=ID_LEN_NORMALISED,
                                           description=ACCOUNT_ID_DOC)],
) -> Response:
    detail = store.account_detail(account_id)
    action = "account.read" if detail is not None else "account.read_unknown"
    rows = None if detail is None else {k: len(detail[k]) for k in (
        "payments", "logins", "counterparties", "cases")}
    audit.record(action, account_id, None if rows is None else {"rows": rows})
    if detail is None:
        raise ApiError(404, "not_found", f"no account '{account_id}'")
    return Response(orjson.dumps(detail), media_type="application/json")
