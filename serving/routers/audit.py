"""The audit log (admins only): every read of personal data and every decision. Reading it is
itself audited. There is no route that changes or deletes an entry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from serving import cursor
from serving.auditlog import AuditDep
from serving.auth import Admin
from serving.deps import SettingsDep, StoreDep
from serving.errors import ApiError, responses
from serving.schemas import AuditPage, NoNul

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/audit", response_model=AuditPage, summary="Who read what, when (newest first)",
            responses=responses(400, 401, 403, 422, 500))
def audit(
    principal: Admin,
    store: StoreDep,
    settings: SettingsDep,
    log: AuditDep,
    actor: Annotated[str | None, Query(max_length=128, description="User"), NoNul] = None,
    target: Annotated[str | None, Query(max_length=2048, description="Account id, …"),
                      NoNul] = None,
    limit: Annotated[int, Query(ge=1)] = 100,
    cursor_: Annotated[str | None, Query(alias="cursor")] = None,
) -> dict[str, Any]:
    if limit > settings.api_max_page:
        raise ApiError(422, "invalid_request",
                       f"query parameter 'limit': at most {settings.api_max_page} per page")
    filters = ("audit", actor, target)
    after = None if cursor_ is None else int(cursor.decode(cursor_, filters, (int,))[0])
    items = store.audit_page(after, limit + 1, actor, target)
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = cursor.encode([items[-1]["id"]], filters)
    log.record("audit.read", "audit", {"filters": {"actor": actor, "target": target,
                                                   "limit": limit, "cursor": cursor_ is not None},
                                       "rows": len(items)})
    return {"items": items, "next_cursor": next_cursor, "limit": limit}
