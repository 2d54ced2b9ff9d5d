"""Cases in the database: creation, validated transitions (see :mod:`serving.cases`), history,
and the labels investigators' outcomes become."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from features.events import Label, to_dict
from serving import cases as sm
from serving import tables as T
from serving.db import now, rfc3339, upsert
from serving.risk import blank_row
from serving.typology import from_case

ACTIVE = [s for s in sm.STATUSES if s not in sm.TERMINAL]


class CaseNotFound(LookupError):
    pass


class CaseConflict(Exception):
    def __init__(self, message: str, case_id: int) -> None:
        super().__init__(message)
        self.message = message
        self.case_id = case_id


@dataclass(frozen=True, slots=True)
class Transition:
    case: dict[str, Any]
    move: sm.Move
    at: float
    action_outbox_id: int | None = None  # the account.actions event queued, if any
    label_outbox_id: int | None = None  # the labels event queued, if any


def _enqueue(conn: Connection, kind: str, account_id: str, payload: dict[str, Any],
             t: float) -> int:
    if kind == "action":  # every account.actions event has its own id (consumers de-duplicate)
        payload = {"action_id": str(uuid.uuid4()), **payload}
    result = conn.execute(T.outbox.insert().values(
        kind=kind, account_id=account_id, payload=json.dumps(payload, ensure_ascii=False),
        created_at=t))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def _set_account_case(engine: Engine, conn: Connection, account_id: str, case_id: int,
                      status: str, outcome: str | None, typology: str | None) -> None:
    r = T.account_risk
    row = conn.execute(select(r.c.rule_typology).where(r.c.account_id == account_id)).first()
    if row is None:
        acc = conn.execute(select(T.accounts.c.type)
                           .where(T.accounts.c.account_id == account_id)).first()
        values = blank_row(account_id, acc.type if acc else "unknown", now())
        values.update(case_id=case_id, case_status=status,
                      typology=from_case(values["rule_typology"], outcome, typology))
        conn.execute(upsert(engine, r).values(values).on_conflict_do_nothing())
    conn.execute(update(r).where(r.c.account_id == account_id).values(
        case_id=case_id, case_status=status, updated_at=now(),
        typology=from_case(row.rule_typology if row else "unusual_activity", outcome,
                           typology)))


def active_case(conn: Connection, account_id: str) -> int | None:
    c = T.cases
    row = conn.execute(select(c.c.case_id).where(
        c.c.account_id == account_id, c.c.status.in_(ACTIVE))).first()
    return None if row is None else int(row.case_id)


def conflict(account_id: str, case_id: int) -> CaseConflict:
    return CaseConflict(f"account '{account_id}' already has an active case {case_id}", case_id)


def create(engine: Engine, conn: Connection, account_id: str, actor: str, role: str,
           reason: str, key: str | None = None) -> int:
    """A new open case; :class:`CaseConflict` if the account has an active one. The check
    gives the friendly answer; the partial unique index ``ux_cases_one_active`` is what holds
    under concurrency (the loser's insert fails with an IntegrityError)."""
    c = T.cases
    active = active_case(conn, account_id)
    if active is not None:
        raise conflict(account_id, active)
    t = now()
    result = conn.execute(c.insert().values(
        account_id=account_id, status="open", opened_by=actor, opened_at=t, updated_at=t))
    case_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    conn.execute(T.case_events.insert().values(
        case_id=case_id, account_id=account_id, from_status=None, to_status="open",
        actor=actor, key_name=key, role=role, reason=reason, at=t))
    _set_account_case(engine, conn, account_id, case_id, "open", None, None)
    return case_id


def _history(conn: Connection, case_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    e = T.case_events
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in case_ids}
    for row in conn.execute(select(e).where(e.c.case_id.in_(case_ids)).order_by(e.c.id)):
        out[row.case_id].append({
            "from_status": row.from_status, "to_status": row.to_status,
            "outcome": row.outcome, "actor": row.actor, "user": row.actor,
            "key": row.key_name, "role": row.role,
            "reason": row.reason, "at": rfc3339(row.at)})
    return out


def _public(row: Any, history: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "case_id": row.case_id, "account_id": row.account_id, "status": row.status,
        "outcome": row.outcome, "typology": row.typology, "opened_by": row.opened_by,
        "opened_at": rfc3339(row.opened_at), "updated_at": rfc3339(row.updated_at),
        "freeze_requested_by": row.freeze_requested_by,
        "release_requested_by": row.release_requested_by, "decided_at": rfc3339(row.decided_at),
        "allowed_transitions": sm.allowed_from(row.status), "history": history,
    }


def get(conn: Connection, case_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(T.cases).where(T.cases.c.case_id == case_id)).first()
    if row is None:
        return None
    return _public(row, _history(conn, [case_id])[case_id])


def for_account(conn: Connection, account_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(T.cases).where(T.cases.c.account_id == account_id)
                        .order_by(T.cases.c.case_id)).all()
    history = _history(conn, [r.case_id for r in rows])
    return [_public(r, history[r.case_id]) for r in rows]


def list_page(conn: Connection, status: str | None, account_id: str | None,
              after_id: int | None, limit: int) -> list[dict[str, Any]]:
    c = T.cases
    q = select(c).order_by(c.c.case_id.desc()).limit(limit)
    if status:
        q = q.where(c.c.status == status)
    if account_id:
        q = q.where(c.c.account_id == account_id)
    if after_id is not None:
        q = q.where(c.c.case_id < after_id)
    rows = conn.execute(q).all()
    history = _history(conn, [r.case_id for r in rows])
    return [_public(r, history[r.case_id]) for r in rows]


def transition(engine: Engine, conn: Connection, case_id: int, target: str, *, actor: str,
               role: str, reason: str, outcome: str | None,
               typology: str | None, key: str | None = None) -> Transition:
    """One validated move. The case row is read ``FOR UPDATE`` (PostgreSQL; SQLite's write
    transactions are serial already), so of two concurrent moves the second sees the first's
    result and is judged against it."""
    c = T.cases
    row = conn.execute(select(c).where(c.c.case_id == case_id).with_for_update()).first()
    if row is None:
        raise CaseNotFound(f"no case {case_id}")
    requested_by = (row.release_requested_by if row.status == "release_requested"
                    else row.freeze_requested_by)
    move = sm.validate(row.status, target, actor=actor, role=role, outcome=outcome,
                       requested_by=requested_by)
    t = now()
    values: dict[str, Any] = {"status": target, "updated_at": t}
    if target == "freeze_requested":
        values["freeze_requested_by"] = actor
    if target == "release_requested":
        values["release_requested_by"] = actor
    if outcome is not None:
        values.update(outcome=outcome, decided_at=t)
    if typology:
        values["typology"] = typology
    conn.execute(update(c).where(c.c.case_id == case_id).values(values))
    conn.execute(T.case_events.insert().values(
        case_id=case_id, account_id=row.account_id, from_status=row.status, to_status=target,
        outcome=outcome, actor=actor, key_name=key, role=role, reason=reason, at=t))
    _set_account_case(engine, conn, row.account_id, case_id, target, outcome,
                      typology or row.typology)
    action_id = label_id = None
    if move.action is not None:
        action_id = _enqueue(conn, "action", row.account_id, {
            "action": move.action, "account_id": row.account_id, "case_id": case_id,
            "actor": actor, "key": key, "reason": reason, "at": rfc3339(t)}, t)
    if outcome is not None:
        label = label_for(case_id, row.account_id, outcome, t, typology or row.typology)
        label_id = _enqueue(conn, "label", row.account_id, to_dict(label), t)
    case = get(conn, case_id)
    assert case is not None
    return Transition(case, move, t, action_id, label_id)


def label_for(case_id: int, account_id: str, outcome: str, decided_at: float,
              typology: str | None) -> Label:
    return Label(
        label_id=f"case-{case_id}", confirmed_at=datetime.fromtimestamp(decided_at, tz=UTC),
        account_id=account_id, label=sm.OUTCOME_LABELS[outcome], typology=typology,
        source="investigator",
    )


def labels(conn: Connection, since: float | None) -> list[Label]:
    c = T.cases
    q = select(c).where(c.c.outcome.is_not(None), c.c.decided_at.is_not(None))
    if since is not None:  # half a microsecond of slack for the datetime round trip
        q = q.where(c.c.decided_at >= since - 5e-7)
    return [label_for(r.case_id, r.account_id, r.outcome, r.decided_at, r.typology)
            for r in conn.execute(q.order_by(c.c.decided_at))]
