"""An account's counterparty network within two hops (money in/out, shared login devices and
IPs), with the accounts the store knows marked by risk, case and typology: how a mule ring
shows itself."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, or_, select

from serving import tables as T

MAX_FIRST_HOP = 25  # counterparties of the account, by money moved
MAX_SECOND_HOP = 8  # counterparties of each first-hop account that is ours
MAX_IP_SHARERS = 6  # an IP used by more accounts than this is not a link


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    kind: str  # money | device | ip
    count: int
    amount: float


def _money(conn: Connection, account_ids: list[str], limit: int) -> list[Edge]:
    """Payments of these accounts in either direction, folded to source → target money flow."""
    s = T.scored
    rows = conn.execute(
        select(s.c.account_id, s.c.counterparty_account, s.c.direction,
               func.count().label("n"), func.sum(s.c.amount).label("total"))
        .where(or_(s.c.account_id.in_(account_ids), s.c.counterparty_account.in_(account_ids)))
        .group_by(s.c.account_id, s.c.counterparty_account, s.c.direction)).all()
    # a transfer between two of our accounts is seen from both sides (a debit of one, a
    # credit of the other): per flow, keep the larger of the two views, never their sum
    views: dict[tuple[str, str], dict[str, tuple[int, float]]] = defaultdict(dict)
    for r in rows:
        src, dst = ((r.counterparty_account, r.account_id) if r.direction == "credit"
                    else (r.account_id, r.counterparty_account))
        if src != dst:
            views[(src, dst)][r.account_id] = (int(r.n), float(r.total or 0.0))
    edges = []
    for (a, b), seen in views.items():
        n, t = max(seen.values(), key=lambda v: v[1])
        edges.append(Edge(a, b, "money", n, t))
    edges.sort(key=lambda e: -e.amount)
    per: dict[str, int] = defaultdict(int)
    out = []
    for e in edges:
        ends = [x for x in (e.source, e.target) if x in account_ids]
        if any(per[x] >= limit for x in ends):
            continue
        for x in ends:
            per[x] += 1
        out.append(e)
    return out


def _devices(conn: Connection, account_id: str) -> list[Edge]:
    lg = T.logins
    mine = select(lg.c.device_id).where(lg.c.account_id == account_id).distinct()
    rows = conn.execute(
        select(lg.c.account_id, func.count(func.distinct(lg.c.device_id)).label("n"))
        .where(lg.c.device_id.in_(mine), lg.c.account_id != account_id)
        .group_by(lg.c.account_id).limit(MAX_FIRST_HOP)).all()
    return [Edge(account_id, r.account_id, "device", int(r.n), 0.0) for r in rows]


def _ips(conn: Connection, account_id: str) -> list[Edge]:
    """Accounts that logged in from one of the account's IPs, leaving out IPs shared by many
    accounts (a carrier's NAT or a public Wi-Fi says nothing about a ring)."""
    lg = T.logins
    mine = select(lg.c.ip).where(lg.c.account_id == account_id).distinct()
    narrow = (select(lg.c.ip).where(lg.c.ip.in_(mine)).group_by(lg.c.ip)
              .having(func.count(func.distinct(lg.c.account_id)) <= MAX_IP_SHARERS))
    rows = conn.execute(
        select(lg.c.account_id, func.count(func.distinct(lg.c.ip)).label("n"))
        .where(lg.c.ip.in_(narrow), lg.c.account_id != account_id)
        .group_by(lg.c.account_id).limit(MAX_FIRST_HOP)).all()
    return [Edge(account_id, r.account_id, "ip", int(r.n), 0.0) for r in rows]


def network(conn: Connection, account_id: str, review: float) -> dict[str, Any]:
    first = (_money(conn, [account_id], MAX_FIRST_HOP) + _devices(conn, account_id)
             + _ips(conn, account_id))
    hop1 = {x for e in first for x in (e.source, e.target)} - {account_id}
    known = _known(conn, hop1 | {account_id})
    ours = sorted(x for x in hop1 if x in known)
    second = _money(conn, ours, MAX_SECOND_HOP) if ours else []
    edges = {(e.source, e.target, e.kind): e for e in first + second}
    ids = {account_id} | {x for e in edges.values() for x in (e.source, e.target)}
    known.update(_known(conn, ids - set(known)))
    nodes = []
    for x in sorted(ids):
        k = known.get(x)
        hop = 0 if x == account_id else 1 if x in hop1 else 2
        nodes.append({
            "id": x, "hop": hop, "ours": k is not None,
            "score": None if k is None else k["score"],
            "flagged": k is not None and k["score"] is not None and k["score"] >= review,
            "case_status": None if k is None else k["case_status"],
            "typology": None if k is None else k["typology"],
            "type": None if k is None else k["type"],
            "foreign_login": bool(k and k["foreign_login"]),
        })
    return {"account_id": account_id, "review_threshold": review, "nodes": nodes,
            "edges": [{"source": e.source, "target": e.target, "kind": e.kind,
                       "count": e.count, "amount": e.amount} for e in edges.values()]}


def _known(conn: Connection, ids: set[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    a, r = T.accounts, T.account_risk
    out: dict[str, dict[str, Any]] = {}
    for row in conn.execute(select(a.c.account_id, a.c.type).where(a.c.account_id.in_(ids))):
        out[row.account_id] = {"type": row.type, "score": None, "case_status": "none",
                               "typology": None, "foreign_login": False}
    for row in conn.execute(select(r).where(r.c.account_id.in_(ids))):
        out[row.account_id] = {"type": row.type, "score": row.score,
                               "case_status": row.case_status, "typology": row.typology,
                               "foreign_login": bool(row.foreign_login)}
    return out


def score_histogram(conn: Connection, bins: int) -> dict[str, Any]:
    """Current account risk in ``bins`` equal bins over 0..1."""
    r = T.account_risk
    counts = [0] * bins
    for (score,) in conn.execute(select(r.c.score)):
        counts[min(bins - 1, max(0, int(float(score) * bins)))] += 1
    return {"bins": bins, "edges": [i / bins for i in range(bins + 1)], "counts": counts,
            "accounts": sum(counts)}


def thresholds(info: dict[str, Any] | None, review: float | None,
               hold: float | None) -> dict[str, Any]:
    """The thresholds in force: those recorded with the model in use (``review``/``hold`` as
    applied; ``model_review``/``model_hold`` the model's own when the publisher adds them),
    unless this process is given an operator's override of its own."""
    recorded = (info or {}).get("thresholds") or {}
    r_review, r_hold = recorded.get("review"), recorded.get("hold")
    m_review = recorded.get("model_review", r_review)
    m_hold = recorded.get("model_hold", r_hold)
    in_review = review if review is not None else r_review
    in_hold = hold if hold is not None else r_hold
    return {
        "review": in_review, "hold": in_hold, "model_review": m_review, "model_hold": m_hold,
        "review_overridden": in_review != m_review, "hold_overridden": in_hold != m_hold,
    }
