"""Work queues of the investigators' page: who works which case, what waits for whom, and
which cases are past their state's deadline (SLA)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from serving import queues
from serving.auditlog import AuditDep, Entry
from serving.auth import Investigator, Viewer
from serving.cases import ROLE_RANK
from serving.deps import StoreDep
from serving.errors import ApiError, responses
from serving.keys import normalise_user
from serving.schemas import ROW_ID_MAX
from serving.sla import Sla

router = APIRouter(tags=["queues"])


async def _sla(request: Request) -> Sla:
    return request.app.state.sla  # type: ignore[no-any-return]


SlaDep = Annotated[Sla, Depends(_sla)]

QUEUE_DOC = """Active cases of one queue, the longest in their state first, with the counts of
every queue. `mine`: assigned to the caller's user (whichever of their keys is used);
`approval`: freeze and release requests waiting for a second person (not the caller's user's
own requests); `unassigned`; `active`: every unfinished case;
`overdue`: past their state's deadline (`CANHGIAC_SLA_HOURS`, e.g. `freeze_requested=4`).
Each case carries its clock: `age_s` in the state, `sla_s` its limit, `overdue`."""


@router.get("/v1/queues/{view}", summary="A work queue with SLA clocks", description=QUEUE_DOC,
            responses=responses(401, 403, 422, 500))
def queue(
    principal: Viewer, store: StoreDep, sla: SlaDep, audit: AuditDep,
    view: Annotated[Literal["mine", "approval", "unassigned", "active", "overdue"], Path()],
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    with store.read() as conn:
        page = queues.queue(conn, view, principal.user, sla, limit)
    audit.record("queues.read", view, {"rows": len(page["items"]), "limit": limit})
    return page


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_ids: list[Annotated[int, Field(ge=1, le=ROW_ID_MAX)]] = Field(min_length=1, max_length=500)
    assignee: str | None = Field(
        min_length=1, max_length=128,
        description="A user (the name given with `keys create --user`; any spelling that "
                    "normalises to it, e.g. `Inv1` for `inv1`); null unassigns")


@router.post("/v1/cases/assignment", summary="Assign (or unassign) cases to a user",
             description="Cases are assigned to users (people), not keys: a user holding "
                         "several keys sees the case in `mine` with each of them. The "
                         "assignee must hold an active key of role investigator or higher. "
                         "Every case assigned, unassigned or skipped is written to the audit "
                         "log (`case.assign`, `case.unassign`, `case.assign_skipped`).",
             responses=responses(400, 401, 403, 404, 422, 500))
def assign(body: AssignIn, principal: Investigator, store: StoreDep,
           audit: AuditDep) -> dict[str, Any]:
    user = None
    if body.assignee is not None:
        try:
            user = normalise_user(body.assignee)
        except ValueError as exc:
            raise ApiError(422, "invalid_request", f"assignee: {exc}") from None
        with store.read() as conn:
            holders = {u["user"]: u for u in queues.users(conn)}
        if user not in holders:
            raise ApiError(404, "not_found", f"no user '{user}' with an active key")
        if ROLE_RANK[holders[user]["role"]] < ROLE_RANK["investigator"]:
            raise ApiError(422, "invalid_request",
                           f"user '{user}' holds only viewer keys and cannot work cases")
    ids = sorted(set(body.case_ids))
    done = "case.assign" if user is not None else "case.unassign"

    def entries(changed: list[int]) -> list[Entry]:
        return ([(done, f"case:{i}", {"assignee": user}) for i in changed]
                + [("case.assign_skipped", f"case:{i}",
                    {"assignee": user, "reason": "unknown or finished case"})
                   for i in sorted(set(ids) - set(changed))])

    # the entries commit with the assignment on PostgreSQL (CaseStore.decide)
    changed = store.assign(ids, user, principal.user, principal.name,
                           audit=audit.decision(entries))
    skipped = sorted(set(ids) - set(changed))
    return {"assigned": changed, "skipped": skipped, "assignee": user}


@router.get("/v1/people", summary="Users holding active keys (to assign cases to)",
            responses=responses(401, 403, 500))
def people(principal: Investigator, store: StoreDep) -> dict[str, Any]:
    with store.read() as conn:
        return {"items": queues.users(conn)}


@router.get("/v1/me", summary="The caller's user, key name and role (what the page may offer)",
            responses=responses(401, 500))
def me(principal: Viewer) -> dict[str, str]:
    return {"user": principal.user, "name": principal.name, "role": principal.role}


@router.get("/v1/cases/{case_id}/assignment", summary="Who works a case (null: nobody)",
            responses=responses(401, 403, 404, 422, 500))
def assignment(principal: Viewer, store: StoreDep,
               case_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX)]) -> dict[str, Any]:
    if store.get_case(case_id) is None:
        raise ApiError(404, "not_found", f"no case {case_id}")
    with store.read() as conn:
        return {"case_id": case_id, "assignee": queues.assignees(conn, [case_id]).get(case_id)}
