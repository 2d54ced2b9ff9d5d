"""Work queues of the investigators' page: who works which case, what waits for whom, and
which cases are past their state's deadline (SLA)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from serving import queues
from serving.auth import Investigator, Viewer
from serving.deps import StoreDep
from serving.errors import ApiError, responses
from serving.sla import Sla

router = APIRouter(tags=["queues"])


async def _sla(request: Request) -> Sla:
    return request.app.state.sla  # type: ignore[no-any-return]


SlaDep = Annotated[Sla, Depends(_sla)]

QUEUE_DOC = """Active cases of one queue, the longest in their state first, with the counts of
every queue. `mine`: assigned to the caller; `approval`: freeze requests waiting for a second
person (not the caller's own requests); `unassigned`; `active`: every unfinished case;
`overdue`: past their state's deadline (`CANHGIAC_SLA_HOURS`, e.g. `freeze_requested=4`).
Each case carries its clock: `age_s` in the state, `sla_s` its limit, `overdue`."""


@router.get("/v1/queues/{view}", summary="A work queue with SLA clocks", description=QUEUE_DOC,
            responses=responses(401, 403, 422, 500))
def queue(
    principal: Viewer, store: StoreDep, sla: SlaDep,
    view: Annotated[Literal["mine", "approval", "unassigned", "active", "overdue"], Path()],
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    with store.read() as conn:
        return queues.queue(conn, view, principal.name, sla, limit)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(min_length=1, max_length=500)
    assignee: str | None = Field(min_length=1, max_length=128,
                                 description="A key name; null unassigns")


@router.post("/v1/cases/assignment", summary="Assign (or unassign) cases, one or many",
             responses=responses(400, 401, 403, 404, 422, 500))
def assign(body: AssignIn, principal: Investigator, store: StoreDep) -> dict[str, Any]:
    if body.assignee is not None:
        names = {k["name"] for k in store.list_keys() if k["revoked_at"] is None}
        if body.assignee not in names:
            raise ApiError(404, "not_found", f"no active key named '{body.assignee}'")
    with store.write(api=True) as conn:
        changed = queues.assign(store.engine, conn, sorted(set(body.case_ids)), body.assignee,
                                principal.name)
    skipped = sorted(set(body.case_ids) - set(changed))
    return {"assigned": changed, "skipped": skipped, "assignee": body.assignee}


@router.get("/v1/people", summary="Names and roles of the active keys (to assign cases)",
            responses=responses(401, 403, 500))
def people(principal: Investigator, store: StoreDep) -> dict[str, Any]:
    return {"items": [{"name": k["name"], "role": k["role"]} for k in store.list_keys()
                      if k["revoked_at"] is None]}


@router.get("/v1/me", summary="The caller's key name and role (what the page may offer)",
            responses=responses(401, 500))
def me(principal: Viewer) -> dict[str, str]:
    return {"name": principal.name, "role": principal.role}


@router.get("/v1/cases/{case_id}/assignment", summary="Who works a case (null: nobody)",
            responses=responses(401, 403, 404, 422, 500))
def assignment(principal: Viewer, store: StoreDep,
               case_id: Annotated[int, Path(ge=1, le=2**62)]) -> dict[str, Any]:
    if store.get_case(case_id) is None:
        raise ApiError(404, "not_found", f"no case {case_id}")
    with store.read() as conn:
        return {"case_id": case_id, "assignee": queues.assignees(conn, [case_id]).get(case_id)}
