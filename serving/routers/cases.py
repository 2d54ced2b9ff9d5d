"""Cases: the rapid-response state machine (item 9c) with maker-checker and publication."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from serving import cursor
from serving.auditlog import AuditDep, Entry
from serving.auth import Investigator, Viewer
from serving.casedb import CaseConflict, CaseNotFound, Transition
from serving.cases import TransitionError
from serving.deps import MetricsDep, OutboxDep, SettingsDep, StoreDep
from serving.errors import ApiError, responses
from serving.schemas import (
    ACCOUNT_ID_DOC,
    ID_LEN_NORMALISED,
    ROW_ID_MAX,
    CaseCreate,
    CaseOut,
    CasePage,
    Status,
    TransitionIn,
    TransitionOut,
    normalise_account,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/cases", tags=["cases"])

CaseId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]


@router.post(
    "", response_model=CaseOut, status_code=201, summary="Open a case on an account",
    responses=responses(400, 401, 403, 404, 409, 422, 500),
)
def create_case(body: CaseCreate, principal: Investigator, store: StoreDep,
                audit: AuditDep) -> dict[str, Any]:
    if not store.account_exists(body.account_id):
        raise ApiError(404, "not_found", f"no account '{body.account_id}'")
    try:  # the entry commits with the case on PostgreSQL (CaseStore.decide)
        return store.create_case(
            body.account_id, principal.user, principal.role, body.reason, key=principal.name,
            audit=audit.decision(lambda case_id: [
                ("case.create", body.account_id, {"case_id": case_id})]))
    except CaseConflict as exc:
        audit.record("case.create_refused", body.account_id, {"active_case": exc.case_id})
        raise ApiError(409, "case_exists", exc.message, {"case_id": exc.case_id}) from None


@router.get("", response_model=CasePage, summary="List cases (newest first)",
            responses=responses(400, 401, 403, 422, 500))
def list_cases(
    principal: Viewer,
    store: StoreDep,
    settings: SettingsDep,
    audit: AuditDep,
    status: Annotated[Status | None, Query()] = None,
    account_id: Annotated[str | None,
                          Query(max_length=ID_LEN_NORMALISED,
                                description=ACCOUNT_ID_DOC + "; empty: every account")] = None,
    limit: Annotated[int, Query(ge=1)] = 50,
    cursor_: Annotated[str | None, Query(alias="cursor")] = None,
) -> dict[str, Any]:
    if limit > settings.api_max_page:
        raise ApiError(422, "invalid_request",
                       f"query parameter 'limit': at most {settings.api_max_page} per page")
    if account_id:  # an empty value is no filter, as it always was
        try:
            account_id = normalise_account(account_id)
        except ValueError as exc:
            raise ApiError(422, "invalid_request",
                           f"query parameter 'account_id': {exc}") from None
    else:
        account_id = None
    filters = ("cases", status, account_id)
    after = None if cursor_ is None else int(cursor.decode(cursor_, filters, (int,))[0])
    items = store.list_cases(status, account_id, after, limit + 1)
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = cursor.encode([items[-1]["case_id"]], filters)
    audit.record("cases.list", "cases", {
        "filters": {"status": status, "account_id": account_id, "limit": limit,
                    "cursor": cursor_ is not None}, "rows": len(items)})
    return {"items": items, "next_cursor": next_cursor, "limit": limit}


@router.get("/{case_id}", response_model=CaseOut, summary="One case with its history",
            responses=responses(401, 403, 404, 422, 500))
def get_case(case_id: CaseId, principal: Viewer, store: StoreDep,
             audit: AuditDep) -> dict[str, Any]:
    case = store.get_case(case_id)
    audit.record("case.read" if case else "case.read_unknown", f"case:{case_id}",
                 None if case is None else {"account_id": case["account_id"]})
    if case is None:
        raise ApiError(404, "not_found", f"no case {case_id}")
    return case


TRANSITION_DOC = """Move a case: `open → under_review → freeze_requested → frozen →
release_requested → released`, or `frozen → closed` (also `open|under_review → closed` without
a freeze, `freeze_requested → under_review` when the checker rejects a freeze and
`release_requested → frozen` when the checker rejects a release). Investigators review,
request freezes and releases, and close; supervisors approve or reject freezes and releases and
close frozen cases. Maker-checker: the approver of a freeze or of a release must be a different
*user* (person) from its requester; two keys of one user are one user.
`released`/`closed` need an `outcome`, which becomes a training label
(`confirmed_fraud`→fraud, `confirmed_mule`→mule, `false_positive`→legit). Freeze and release
requests, approvals and rejections are published to `account.actions` (key = account_id) and
outcomes to `labels`, through an outbox written with the decision: `action_published: false`
means the broker did not confirm yet and the event will be retried. An illegal move answers
409 with the allowed ones. Every move (and every refused one) is in the audit log."""


@router.post(
    "/{case_id}/transitions", response_model=TransitionOut, summary="Move a case",
    description=TRANSITION_DOC, responses=responses(400, 401, 403, 404, 409, 422, 500),
)
def transition(
    case_id: CaseId, body: TransitionIn, principal: Investigator, store: StoreDep,
    outbox: OutboxDep, metrics: MetricsDep, audit: AuditDep,
) -> dict[str, Any]:
    def entries(t: Transition) -> list[Entry]:
        return [("case.transition", f"case:{case_id}", {
            "account_id": t.case["account_id"], "from": t.move.from_status,
            "to": t.move.to_status, "outcome": t.move.outcome})]

    try:  # the entry commits with the move on PostgreSQL (CaseStore.decide)
        result = store.transition(case_id, body.to, actor=principal.user, role=principal.role,
                                  reason=body.reason, outcome=body.outcome,
                                  typology=body.typology, key=principal.name,
                                  audit=audit.decision(entries))
    except CaseNotFound:
        raise ApiError(404, "not_found", f"no case {case_id}") from None
    except TransitionError as exc:
        code = {409: "illegal_transition", 403: "forbidden"}.get(exc.status, "invalid_request")
        audit.record("case.transition_refused", f"case:{case_id}",
                     {"to": body.to, "status": exc.status, "reason": exc.message})
        raise ApiError(exc.status, code, exc.message,
                       {"allowed_transitions": exc.allowed}) from None
    case, move = result.case, result.move
    log.info("case moved", extra={"case_id": case_id, "from": move.from_status,
                                  "to": move.to_status, "user": principal.user,
                                  "key": principal.name})
    # the events were queued with the decision; send them now (retried in the background)
    delivered = outbox.deliver() if result.action_outbox_id or result.label_outbox_id else {}
    action_ok = label_ok = None
    if result.action_outbox_id is not None:
        action_ok = delivered.get(result.action_outbox_id, False)
        metrics.actions.labels(move.action, str(action_ok).lower()).inc()
    if result.label_outbox_id is not None:
        label_ok = delivered.get(result.label_outbox_id, False)
    return {"case": case, "action": move.action, "action_published": action_ok,
            "label_published": label_ok}
