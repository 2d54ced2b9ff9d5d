"""Work queues over the case store: assignment, "my cases", "waiting for my approval",
"unassigned", and the SLA clock of each case (see :mod:`serving.sla`).

Cases are assigned to users (people, ``serving.keys.normalise_user``), not to keys: "mine" is
every case assigned to the caller's user whichever of their keys they use, and "waiting for my
approval" leaves out the freeze and release requests the caller's user made."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select

from serving import casedb
from serving import tables as T
from serving.cases import ROLE_RANK
from serving.db import now, rfc3339, upsert
from serving.sla import Sla, clock

View = Literal["mine", "approval", "unassigned", "active", "overdue"]
VIEWS: tuple[str, ...] = ("mine", "approval", "unassigned", "active", "overdue")


def _base() -> Any:
    c, a, r = T.cases, T.case_assignments, T.account_risk
    return (select(c, a.c.assignee, a.c.assigned_by, a.c.assigned_by_key, a.c.assigned_at,
                   r.c.score, r.c.typology.label("account_typology"))
            .select_from(c.outerjoin(a, a.c.case_id == c.c.case_id)
                         .outerjoin(r, r.c.account_id == c.c.account_id))
            .where(c.c.status.in_(casedb.ACTIVE)))


def _awaits_approval(status: str, freeze_by: str | None, release_by: str | None,
                     me: str) -> bool:
    return ((status == "freeze_requested" and freeze_by != me)
            or (status == "release_requested" and release_by != me))


def queue(conn: Connection, view: str, me: str, sla: Sla, limit: int) -> dict[str, Any]:
    """One queue, oldest state first (the most urgent on top), with counts of every view;
    ``me`` is the caller's user."""
    c, a = T.cases, T.case_assignments
    q = _base()
    if view == "mine":
        q = q.where(a.c.assignee == me)
    elif view == "approval":
        q = q.where(or_(
            and_(c.c.status == "freeze_requested",
                 func.coalesce(c.c.freeze_requested_by, "") != me),
            and_(c.c.status == "release_requested",
                 func.coalesce(c.c.release_requested_by, "") != me)))
    elif view == "unassigned":
        q = q.where(a.c.assignee.is_(None))
    t = now()
    rows = conn.execute(q.order_by(c.c.updated_at, c.c.case_id)).all()
    items = []
    counts = dict.fromkeys(VIEWS, 0)
    for row in conn.execute(_base()).all():
        ck = clock(sla, row.status, row.updated_at, t)
        counts["active"] += 1
        counts["mine"] += row.assignee == me
        counts["unassigned"] += row.assignee is None
        counts["approval"] += _awaits_approval(row.status, row.freeze_requested_by,
                                               row.release_requested_by, me)
        counts["overdue"] += ck.overdue
    for row in rows:
        ck = clock(sla, row.status, row.updated_at, t)
        if view == "overdue" and not ck.overdue:
            continue
        items.append({
            "case_id": row.case_id, "account_id": row.account_id, "status": row.status,
            "opened_by": row.opened_by, "opened_at": rfc3339(row.opened_at),
            "state_since": rfc3339(row.updated_at),
            "freeze_requested_by": row.freeze_requested_by,
            "release_requested_by": row.release_requested_by,
            "assignee": row.assignee, "assigned_by": row.assigned_by,
            "assigned_by_key": row.assigned_by_key, "assigned_at": rfc3339(row.assigned_at),
            "score": row.score, "typology": row.typology or row.account_typology,
            "age_s": round(ck.age_s, 1), "sla_s": ck.limit_s, "overdue": ck.overdue,
        })
        if len(items) >= limit:
            break
    return {"view": view, "items": items, "counts": counts, "sla_hours": sla.as_dict()}


def overdue_freeze_requests(conn: Connection, sla: Sla) -> int:
    limit = sla.limit_s("freeze_requested")
    if limit is None:
        return 0
    c = T.cases
    return int(conn.execute(select(func.count()).select_from(c).where(
        c.c.status == "freeze_requested", c.c.updated_at < now() - limit)).scalar_one())


def assign(engine: Engine, conn: Connection, case_ids: list[int], assignee: str | None,
           by: str, by_key: str | None = None) -> list[int]:
    """Assign to the user ``assignee`` (or with ``None`` unassign) active cases; ``by``: the
    assigning user, ``by_key`` the key they used. Answers the ids that were changed; unknown
    or finished cases are left out of the answer."""
    c, a = T.cases, T.case_assignments
    found = [r.case_id for r in conn.execute(select(c.c.case_id).where(
        and_(c.c.case_id.in_(case_ids), c.c.status.in_(casedb.ACTIVE))))]
    if not found:
        return []
    if assignee is None:
        conn.execute(delete(a).where(a.c.case_id.in_(found)))
        return sorted(found)
    t = now()
    stmt = upsert(engine, a)
    stmt = stmt.on_conflict_do_update(index_elements=["case_id"], set_={
        "assignee": stmt.excluded.assignee, "assigned_by": stmt.excluded.assigned_by,
        "assigned_at": stmt.excluded.assigned_at,
        "assigned_by_key": stmt.excluded.assigned_by_key})
    conn.execute(stmt, [{"case_id": i, "assignee": assignee, "assigned_by": by,
                         "assigned_by_key": by_key, "assigned_at": t} for i in found])
    return sorted(found)


def assignees(conn: Connection, case_ids: list[int]) -> dict[int, str]:
    a = T.case_assignments
    return {r.case_id: r.assignee for r in conn.execute(
        select(a.c.case_id, a.c.assignee).where(a.c.case_id.in_(case_ids)))}


def users(conn: Connection) -> list[dict[str, Any]]:
    """Users holding an active key: their highest role and their keys' names."""
    k = T.api_keys
    out: dict[str, dict[str, Any]] = {}
    for row in conn.execute(select(k.c.user, k.c.name, k.c.role)
                            .where(k.c.revoked_at.is_(None)).order_by(k.c.user, k.c.name)):
        u = out.setdefault(row.user, {"user": row.user, "role": row.role, "keys": []})
        u["keys"].append(row.name)
        if ROLE_RANK.get(row.role, -1) > ROLE_RANK.get(u["role"], -1):
            u["role"] = row.role
    return list(out.values())
