"""Read queries of the API. The ranked list is one indexed keyset query on ``account_risk``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, func, select, tuple_

from serving import casedb
from serving import tables as T
from serving.db import rfc3339
from serving.risk import current_risk, min_key

TIMELINE_POINTS = 500
RECENT_PAYMENTS = 50
RECENT_LOGINS = 100
TOP_COUNTERPARTIES = 50
SCORE_DP = 6  # decimals of scores in responses (full precision stays in the store)


@dataclass(frozen=True, slots=True)
class RiskFilter:
    min_score: float = 0.0
    type: str | None = None
    foreign_login: bool | None = None
    since: float | None = None
    case_status: str | None = None
    typology: str | None = None

    def key(self) -> tuple[Any, ...]:
        return (self.min_score, self.type, self.foreign_login, self.since, self.case_status,
                self.typology)


_R = T.account_risk
_LIST_COLUMNS = (_R.c.account_id, _R.c.type, _R.c.score, _R.c.prev_score, _R.c.last_activity,
                 _R.c.top_reasons, _R.c.typology, _R.c.foreign_login, _R.c.foreign_countries,
                 _R.c.case_id, _R.c.case_status, _R.c.risk_key)


def risk_clock(conn: Connection) -> float | None:
    """The store's clock for the fading risk: the newest activity (event time) of an account
    with a scored payment (a replay of past days ranks and scores as it did live; a case opened
    on an account with no payment, stamped with the wall clock, does not move it). One read of
    the ``last_activity`` index. None when no account has a scored payment."""
    return conn.execute(select(_R.c.last_activity).where(_R.c.top_event_id.is_not(None))
                        .order_by(_R.c.last_activity.desc()).limit(1)).scalar()


def _scores(row: Any, now: float | None) -> dict[str, Any]:
    """The ``score`` (current risk at ``now``), ``peak_score``, ``prev_score`` and ``trend``
    (peak against the previous 7 days) of an ``account_risk`` row, rounded for display."""
    prev = row.prev_score
    current = row.score if now is None else current_risk(row.score, row.last_activity, now)
    return {"score": round(current, SCORE_DP), "peak_score": round(row.score, SCORE_DP),
            "prev_score": None if prev is None else round(prev, SCORE_DP),
            "trend": None if prev is None else round(row.score - prev, SCORE_DP)}


def high_risk(conn: Connection, f: RiskFilter, after: tuple[float, str] | None,
              limit: int, fragments: bool = False) -> list[dict[str, Any]]:
    """One page, best first; ``_key`` of a row is its exact (score, account_id) keyset
    position (scores in the row are rounded for display). ``fragments``: JSON-text columns
    come back as ``orjson.Fragment`` (embedded by ``orjson.dumps`` as they are) instead of
    parsed lists."""
    as_json: Any = orjson.Fragment if fragments else json.loads
    now = risk_clock(conn)
    q = select(*_LIST_COLUMNS)
    if f.min_score > 0:
        q = q.where(_R.c.risk_key >= min_key(f.min_score, now if now is not None else 0.0))
    if f.type is not None:
        q = q.where(_R.c.type == f.type)
    if f.foreign_login is not None:
        q = q.where(_R.c.foreign_login.is_(f.foreign_login))
    if f.since is not None:
        q = q.where(_R.c.last_activity >= f.since)
    if f.case_status is not None:
        q = q.where(_R.c.case_status == f.case_status)
    if f.typology is not None:
        q = q.where(_R.c.typology == f.typology)
    if after is not None:  # keyset: strictly after the last row of the previous page
        q = q.where(tuple_(_R.c.risk_key, _R.c.account_id) < tuple_(*after))
    q = q.order_by(_R.c.risk_key.desc(), _R.c.account_id.desc()).limit(limit)
    out = []
    for row in conn.execute(q):
        out.append({  # "account_id" first: serving.auditlog counts a page's items by it
            "account_id": row.account_id, "type": row.type, **_scores(row, now),
            "top_reasons": as_json(row.top_reasons), "typology": row.typology,
            "last_activity": rfc3339(row.last_activity), "foreign_login": row.foreign_login,
            "foreign_countries": as_json(row.foreign_countries),
            "case_id": row.case_id, "case_status": row.case_status,
            "_key": (row.risk_key, row.account_id),  # exact keyset position, for the cursor
        })
    return out


def account_exists(conn: Connection, account_id: str) -> bool:
    for table in (T.accounts, T.account_risk):
        if conn.execute(select(table.c.account_id)
                        .where(table.c.account_id == account_id)).first() is not None:
            return True
    return False


def _profile(conn: Connection, account_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(T.accounts).where(T.accounts.c.account_id == account_id)).first()
    if row is None:
        return None
    return {"account_id": row.account_id, "customer_id": row.customer_id, "type": row.type,
            "opened_at": rfc3339(row.opened_at), "kyc_country": row.kyc_country,
            "birth_year": row.birth_year, "registered_at": rfc3339(row.registered_at),
            "segment": row.segment}


def _risk(conn: Connection, account_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(*_LIST_COLUMNS).where(_R.c.account_id == account_id)).first()
    if row is None:
        return None
    return {**_scores(row, risk_clock(conn)),
            "top_reasons": json.loads(row.top_reasons), "typology": row.typology,
            "last_activity": rfc3339(row.last_activity), "foreign_login": row.foreign_login,
            "foreign_countries": json.loads(row.foreign_countries),
            "case_id": row.case_id, "case_status": row.case_status}


def account_detail(conn: Connection, account_id: str) -> dict[str, Any] | None:
    profile, risk = _profile(conn, account_id), _risk(conn, account_id)
    if profile is None and risk is None:
        return None
    s, lg = T.scored, T.logins
    timeline = conn.execute(
        select(s.c.event_t, s.c.score, s.c.decision).where(s.c.account_id == account_id)
        .order_by(s.c.event_t.desc()).limit(TIMELINE_POINTS)).all()
    payments = conn.execute(
        select(s).where(s.c.account_id == account_id).order_by(s.c.event_t.desc())
        .limit(RECENT_PAYMENTS)).all()
    logins = conn.execute(
        select(lg).where(lg.c.account_id == account_id).order_by(lg.c.event_t.desc())
        .limit(RECENT_LOGINS)).all()
    counterparties = conn.execute(
        select(s.c.counterparty_account, s.c.counterparty_bank, s.c.direction,
               func.count().label("n"), func.sum(s.c.amount).label("total"),
               func.max(s.c.score).label("max_score"), func.max(s.c.event_t).label("last_t"))
        .where(s.c.account_id == account_id)
        .group_by(s.c.counterparty_account, s.c.counterparty_bank, s.c.direction)
        .order_by(func.count().desc()).limit(TOP_COUNTERPARTIES)).all()
    return {
        "account_id": account_id,
        "profile": profile,
        "risk": risk,
        "timeline": [{"ts": rfc3339(r.event_t), "score": r.score, "decision": r.decision}
                     for r in reversed(timeline)],
        "payments": [{
            "event_id": p.event_id, "ts": rfc3339(p.event_t), "score": p.score,
            "decision": p.decision, "reasons": json.loads(p.reasons),
            "model_version": p.model_version, "direction": p.direction, "amount": p.amount,
            "currency": p.currency, "counterparty_account": p.counterparty_account,
            "counterparty_bank": p.counterparty_bank, "channel": p.channel,
            "country": p.country, "ip": p.ip, "device_id": p.device_id,
            "description": p.description, "on_call": p.on_call,
            "remote_access": p.remote_access, "features": json.loads(p.features),
        } for p in payments],
        "logins": [{"event_id": x.event_id, "ts": rfc3339(x.event_t), "success": x.success,
                    "ip": x.ip, "country": x.country, "device_id": x.device_id,
                    "channel": x.channel} for x in logins],
        "login_summary": {
            "countries": sorted({x.country for x in logins}),
            "devices": sorted({x.device_id for x in logins}),
            "ips": sorted({x.ip for x in logins}),
        },
        "counterparties": [{
            "counterparty_account": c.counterparty_account,
            "counterparty_bank": c.counterparty_bank, "direction": c.direction,
            "count": c.n, "total_amount": c.total, "max_score": c.max_score,
            "last_ts": rfc3339(c.last_t)} for c in counterparties],
        "cases": casedb.for_account(conn, account_id),
    }


def audit_page(conn: Connection, after_id: int | None, limit: int, actor: str | None,
               target: str | None) -> list[dict[str, Any]]:
    a = T.audit
    q = select(a).order_by(a.c.id.desc()).limit(limit)
    if after_id is not None:
        q = q.where(a.c.id < after_id)
    if actor:
        q = q.where(a.c.actor == actor)
    if target:
        q = q.where(a.c.target == target)
    return [{"id": r.id, "at": rfc3339(r.at), "actor": r.actor, "key": r.key_name,
             "role": r.role, "action": r.action, "target": r.target,
             "request_id": r.request_id, "client_request_id": r.client_request_id,
             "details": None if r.details is None else json.loads(r.details)}
            for r in conn.execute(q)]
