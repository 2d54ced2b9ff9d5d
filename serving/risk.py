"""Per-account current risk, recomputed from the stored events (so a replayed batch changes
nothing: the sink is idempotent).

* ``score`` — the highest payment score in the 7 days (event time) up to the account's latest
  scored payment (the API's ``peak_score``); ``prev_score`` — the highest in the 7 days before
  that (``None`` if none); the API's ``trend`` is ``peak_score - prev_score``.
* ``risk_key`` — what the ranked list orders by: the account's risk fades with inactivity,
  halving every :data:`HALF_LIFE_S` (7 days) since its ``last_activity`` (latest payment or
  login): ``risk(now) = score * 2 ** (-(now - last_activity) / HALF_LIFE_S)``. Since
  ``log2 risk(now) = (risk_key - now) / HALF_LIFE_S`` with
  ``risk_key = last_activity + HALF_LIFE_S * log2(score)``, the order by ``risk_key`` is the
  order by current risk at any ``now``: the list stays one indexed query and a row changes only
  when its account does. The API's ``score`` is :func:`current_risk` at the store's clock
  (:func:`serving.reads.risk_clock`: the newest activity of an account with a scored payment).
* ``top_reasons`` — the readable phrases of that riskiest payment; ``rule_typology`` its
  :func:`serving.typology.classify`.
* ``foreign_countries`` — countries other than the account's KYC country (``VN`` if the account
  is unknown) of successful logins in the 30 days up to its latest login.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, func, select

from models.ranking import RISK_HALF_LIFE_DAYS, RISK_HALF_LIFE_S, faded
from serving import tables as T
from serving.db import now, upsert
from serving.typology import classify, feature_value, from_case

WINDOW_S = 7 * 86400.0
# the ranked risk halves every 7 days without activity (models.ranking: the same setting the
# training report's decayed account ranking uses)
HALF_LIFE_DAYS = RISK_HALF_LIFE_DAYS
HALF_LIFE_S = RISK_HALF_LIFE_S
SCORE_FLOOR = 1e-6  # a score of 0 ranks as this (log2 of 0 is -inf)
FOREIGN_WINDOW_S = 30 * 86400.0
DEFAULT_KYC = "VN"
CHUNK = 500


def chunks(items: Iterable[str], size: int = CHUNK) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def risk_key(score: float, last_activity: float) -> float:
    """The ranked list's order key (module docstring)."""
    return last_activity + HALF_LIFE_S * math.log2(max(score, SCORE_FLOOR))


def current_risk(score: float, last_activity: float, now: float) -> float:
    """The ranked risk at ``now``: ``score`` halved for every :data:`HALF_LIFE_S` since
    ``last_activity`` (none when ``now`` is not later)."""
    return faded(score, now - last_activity)


def min_key(min_risk: float, now: float) -> float:
    """The smallest ``risk_key`` whose risk at ``now`` is at least ``min_risk`` (> 0)."""
    return now + HALF_LIFE_S * math.log2(max(min_risk, SCORE_FLOOR))


def blank_row(account_id: str, account_type: str, t: float) -> dict[str, Any]:
    return {
        "account_id": account_id, "type": account_type, "score": 0.0, "prev_score": None,
        "risk_key": risk_key(0.0, t),
        "last_activity": t, "top_event_id": None, "top_reasons": "[]",
        "typology": "unusual_activity", "rule_typology": "unusual_activity",
        "foreign_login": False, "foreign_countries": "[]", "case_id": None,
        "case_status": "none", "updated_at": now(),
    }


def _existing(conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    r, c = T.account_risk, T.cases
    q = (
        select(r, c.c.outcome.label("case_outcome"), c.c.typology.label("case_typology"))
        .outerjoin(c, c.c.case_id == r.c.case_id)
        .where(r.c.account_id.in_(ids))
    )
    return {row.account_id: dict(row._mapping) for row in conn.execute(q)}


def _types(conn: Connection, ids: list[str]) -> dict[str, tuple[str, str]]:
    a = T.accounts
    q = select(a.c.account_id, a.c.type, a.c.kyc_country).where(a.c.account_id.in_(ids))
    return {row.account_id: (row.type, row.kyc_country) for row in conn.execute(q)}


def _save(engine: Engine, conn: Connection, rows: list[dict[str, Any]], owned: list[str]) -> None:
    if not rows:
        return
    for row in rows:
        row["risk_key"] = risk_key(row["score"], row["last_activity"])
    stmt = upsert(engine, T.account_risk)
    stmt = stmt.on_conflict_do_update(
        index_elements=["account_id"], set_={col: stmt.excluded[col] for col in owned}
    )
    conn.execute(stmt, rows)


RISK_COLUMNS = ["type", "score", "prev_score", "last_activity", "risk_key", "top_event_id",
                "top_reasons", "typology", "rule_typology", "updated_at"]
FOREIGN_COLUMNS = ["type", "foreign_login", "foreign_countries", "last_activity", "risk_key",
                   "updated_at"]


def refresh_scores(engine: Engine, conn: Connection, account_ids: Iterable[str]) -> None:
    s = T.scored
    for ids in chunks(sorted(set(account_ids))):
        last = (
            select(s.c.account_id, func.max(s.c.event_t).label("last_t"))
            .where(s.c.account_id.in_(ids)).group_by(s.c.account_id).subquery()
        )
        q = select(s.c.account_id, s.c.event_id, s.c.event_t, s.c.score, last.c.last_t).join(
            last, (s.c.account_id == last.c.account_id)
            & (s.c.event_t > last.c.last_t - 2 * WINDOW_S)
        )
        best: dict[str, tuple[float, float, str]] = {}
        prev: dict[str, float] = {}
        last_t: dict[str, float] = {}
        for acc, event_id, t, score, lt in conn.execute(q):
            last_t[acc] = lt
            if t > lt - WINDOW_S:
                if acc not in best or (score, t) > best[acc][:2]:
                    best[acc] = (score, t, event_id)
            elif score > prev.get(acc, -1.0):
                prev[acc] = score
        tops = {b[2] for b in best.values()}
        details = {
            row.event_id: row
            for row in conn.execute(
                select(s.c.event_id, s.c.reasons, s.c.features).where(s.c.event_id.in_(tops))
            )
        }
        existing = _existing(conn, ids)
        types = _types(conn, ids)
        rows = []
        for acc, (score, _t, event_id) in best.items():
            old = existing.get(acc)
            detail = details[event_id]
            features = orjson.loads(detail.features)
            reasons = [r.get("text") or r.get("feature", "") for r in orjson.loads(detail.reasons)]
            if acc in types:
                acc_type = types[acc][0]
            else:
                # an account with no profile has is_business = nan, stored as null
                acc_type = "business" if feature_value(features, "is_business") > 0 else "unknown"
            rule = classify(features)
            row = old.copy() if old else blank_row(acc, acc_type, last_t[acc])
            row.update(
                type=acc_type, score=score, prev_score=prev.get(acc),
                last_activity=max(last_t[acc], old["last_activity"] if old else 0.0),
                top_event_id=event_id, top_reasons=orjson.dumps(reasons).decode(),
                rule_typology=rule,
                typology=from_case(rule, row.get("case_outcome"), row.get("case_typology")),
                updated_at=now(),
            )
            row.pop("case_outcome", None)
            row.pop("case_typology", None)
            rows.append(row)
        _save(engine, conn, rows, RISK_COLUMNS)


def refresh_foreign(engine: Engine, conn: Connection, account_ids: Iterable[str]) -> None:
    lg = T.logins
    for ids in chunks(sorted(set(account_ids))):
        types = _types(conn, ids)
        per_country = conn.execute(
            select(lg.c.account_id, lg.c.country, func.max(lg.c.event_t))
            .where(lg.c.account_id.in_(ids), lg.c.success.is_(True))
            .group_by(lg.c.account_id, lg.c.country)
        ).all()
        last_login = {acc: t for acc, t in conn.execute(
            select(lg.c.account_id, func.max(lg.c.event_t))
            .where(lg.c.account_id.in_(ids)).group_by(lg.c.account_id)
        )}
        foreign: dict[str, set[str]] = {}
        for acc, country, t in per_country:
            kyc = types.get(acc, ("unknown", DEFAULT_KYC))[1]
            if country != kyc and t >= last_login[acc] - FOREIGN_WINDOW_S:
                foreign.setdefault(acc, set()).add(country)
        existing = _existing(conn, ids)
        rows = []
        for acc in ids:
            old = existing.get(acc)
            if acc not in last_login and old is None:
                continue  # an account we know nothing about yet: no row
            acc_type = types[acc][0] if acc in types else (old["type"] if old else "unknown")
            row = old.copy() if old else blank_row(acc, acc_type, last_login[acc])
            countries = sorted(foreign.get(acc, ()))
            row.update(
                type=acc_type, foreign_login=bool(countries),
                foreign_countries=json.dumps(countries),
                last_activity=max(row["last_activity"], last_login.get(acc, 0.0)),
                updated_at=now(),
            )
            row.pop("case_outcome", None)
            row.pop("case_typology", None)
            rows.append(row)
        _save(engine, conn, rows, FOREIGN_COLUMNS)
