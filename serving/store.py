"""The case store: the scorer's sink (``RiskSink`` in docs/INTERFACES.md) and the API's database.

Writes are batched (one transaction per call) and idempotent (events are keyed by
``event_id``; per-account risk is recomputed from the stored events). Every write transaction
bumps a store *version*, which keys the API's response cache.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.exc import IntegrityError

from features.events import Account, Label, Login
from serving import casedb, keys, reads
from serving import tables as T
from serving.db import (
    BUSY_TIMEOUT_MS,
    PgVersionReader,
    epoch,
    make_engine,
    now,
    upsert,
    writer,
)
from serving.migrate import migrate
from serving.risk import refresh_foreign, refresh_scores
from serving.typology import KEY_FEATURES

log = logging.getLogger(__name__)


class Versions(NamedTuple):
    data: int  # every write transaction
    keys: int  # API keys created or revoked
    api: int  # investigators' writes (cases)


class CaseStore:
    """SQLAlchemy 2.0 store. ``url``: SQLite file (WAL) by default, PostgreSQL by URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._writer = writer(self.engine)
        migrate(self.engine)  # Alembic, to head (serving/migrations)
        self._version_lock = threading.Lock()
        self._version_conn = _raw_sqlite(self.engine) or _raw_postgres(self.engine)
        with self.write() as conn:
            conn.execute(upsert(self.engine, T.meta).on_conflict_do_nothing(),
                         [{"key": k, "value": 0} for k in ("version", "keys", "api")])

    def close(self) -> None:
        if self._version_conn is not None:
            self._version_conn.close()
        self.engine.dispose()

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def write(self, keys: bool = False, api: bool = False) -> Iterator[Connection]:
        """One write transaction that also bumps the data version, and the keys version (key
        changes) or the API version (investigators' case changes) when asked."""
        bumped = ["version"] + (["keys"] if keys else []) + (["api"] if api else [])
        with self._writer.begin() as conn:
            yield conn
            conn.execute(update(T.meta).where(T.meta.c.key.in_(bumped))
                         .values(value=T.meta.c.value + 1))

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def version(self) -> int:
        """The data version: bumped by every write transaction."""
        return self.versions()[0]

    def versions(self) -> Versions:
        """Read on every API request: one tiny query (a dedicated connection for SQLite)."""
        if self._version_conn is not None:
            with self._version_lock:
                row = self._version_conn.execute(_VERSION_SQL).fetchone()
        else:
            with self.read() as conn:
                row = conn.execute(text(_VERSION_SQL)).one()
        return Versions(int(row[0]), int(row[1]), int(row[2]))

    def ping(self) -> bool:
        with self.read() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
        return True

    # ------------------------------------------------------------------ the scorer's sink
    def write_scored(self, records: list[dict[str, Any]]) -> None:
        rows = []
        for record in records:
            try:
                rows.append(_scored_row(record))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("scored record skipped", extra={
                    "event_id": record.get("event_id"), "error": repr(exc)})
        if not rows:
            return
        unique = list({r["event_id"]: r for r in rows}.values())
        with self.write() as conn:
            conn.execute(upsert(self.engine, T.scored).on_conflict_do_nothing(), unique)
            refresh_scores(self.engine, conn, (r["account_id"] for r in unique))
        log.debug("scored written", extra={"records": len(unique)})

    def write_logins(self, logins: list[Login]) -> None:
        if not logins:
            return
        rows = list({lg.event_id: {
            "event_id": lg.event_id, "account_id": lg.account_id, "event_t": lg.t,
            "success": lg.success, "ip": lg.ip, "country": lg.country,
            "device_id": lg.device_id, "channel": lg.channel,
        } for lg in logins}.values())
        with self.write() as conn:
            conn.execute(upsert(self.engine, T.logins).on_conflict_do_nothing(), rows)
            refresh_foreign(self.engine, conn, (r["account_id"] for r in rows))

    def upsert_accounts(self, accounts: list[Account]) -> None:
        if not accounts:
            return
        rows = list({a.account_id: {
            "account_id": a.account_id, "customer_id": a.customer_id, "type": a.type,
            "opened_at": a.opened_at.timestamp(), "kyc_country": a.kyc_country,
            "birth_year": a.birth_year,
            "registered_at": a.registered_at.timestamp() if a.registered_at else None,
            "segment": a.segment,
        } for a in accounts}.values())
        stmt = upsert(self.engine, T.accounts)
        stmt = stmt.on_conflict_do_update(
            index_elements=["account_id"],
            set_={c: stmt.excluded[c] for c in rows[0] if c != "account_id"},
        )
        with self.write() as conn:
            conn.execute(stmt, rows)
            refresh_foreign(self.engine, conn, (r["account_id"] for r in rows))

    def set_model_info(self, version: str, metrics: dict[str, Any],
                       thresholds: dict[str, Any]) -> None:
        stmt = upsert(self.engine, T.model_info)
        values = {"id": 1, "version": version, "metrics": json.dumps(metrics),
                  "thresholds": json.dumps(thresholds), "updated_at": now()}
        stmt = stmt.values(values).on_conflict_do_update(
            index_elements=["id"], set_={k: v for k, v in values.items() if k != "id"})
        with self.write() as conn:
            conn.execute(stmt)

    def model_info(self) -> dict[str, Any] | None:
        with self.read() as conn:
            row = conn.execute(select(T.model_info).where(T.model_info.c.id == 1)).first()
        if row is None:
            return None
        return {"version": row.version, "metrics": json.loads(row.metrics),
                "thresholds": json.loads(row.thresholds), "updated_at": row.updated_at}

    # ------------------------------------------------------------------ reads for the API
    def high_risk(self, filters: reads.RiskFilter, after: tuple[float, str] | None,
                  limit: int, fragments: bool = False) -> list[dict[str, Any]]:
        with self.read() as conn:
            return reads.high_risk(conn, filters, after, limit, fragments)

    def account_detail(self, account_id: str) -> dict[str, Any] | None:
        with self.read() as conn:
            return reads.account_detail(conn, account_id)

    def report_rows(self, t_from: float, t_to: float, min_score: float,
                    limit: int) -> list[dict[str, Any]]:
        from serving.report import report_rows  # noqa: PLC0415 - keeps the import graph flat

        with self.read() as conn:
            return report_rows(conn, t_from, t_to, min_score, limit)

    # ------------------------------------------------------------------ API keys
    def create_key(self, name: str, role: str, user: str | None = None) -> tuple[int, str]:
        with self.write(keys=True) as conn:
            return keys.create(conn, name, role, user)

    def list_keys(self) -> list[dict[str, Any]]:
        with self.read() as conn:
            return keys.list_all(conn)

    def revoke_key(self, name_or_id: str) -> bool:
        with self.write(keys=True) as conn:
            return keys.revoke(conn, name_or_id)

    def authenticate(self, token: str) -> keys.Principal | None:
        with self.read() as conn:
            return keys.authenticate(conn, token)

    # ------------------------------------------------------------------ audit
    def record_audit(self, actor: str, role: str, action: str, target: str,
                     request_id: str, *, key: str | None = None,
                     client_request_id: str | None = None,
                     details: dict[str, Any] | None = None) -> None:
        """Append one entry (``actor`` = the user). Audit rows are never updated or deleted."""
        self.append_audit([{
            "at": now(), "actor": actor, "role": role, "action": action, "target": target,
            "request_id": request_id, "key_name": key, "client_request_id": client_request_id,
            "details": None if details is None else orjson.dumps(details).decode()}])

    def append_audit(self, rows: list[dict[str, Any]]) -> None:
        """Append audit rows (columns of ``tables.audit``) in one transaction."""
        with self._writer.begin() as conn:  # not a data change: the version stays
            conn.execute(T.audit.insert(), rows)

    def audit_page(self, after_id: int | None, limit: int, actor: str | None,
                   target: str | None) -> list[dict[str, Any]]:
        with self.read() as conn:
            return reads.audit_page(conn, after_id, limit, actor, target)

    # ------------------------------------------------------------------ cases
    def account_exists(self, account_id: str) -> bool:
        with self.read() as conn:
            return reads.account_exists(conn, account_id)

    def create_case(self, account_id: str, actor: str, role: str, reason: str,
                    key: str | None = None) -> dict[str, Any]:
        try:
            with self.write(api=True) as conn:
                case_id = casedb.create(self.engine, conn, account_id, actor, role, reason, key)
        except IntegrityError:  # a concurrent create won the one-active-case index
            with self.read() as conn:
                winner = casedb.active_case(conn, account_id)
            if winner is None:
                raise
            raise casedb.conflict(account_id, winner) from None
        return self.get_case(case_id) or {}

    def get_case(self, case_id: int) -> dict[str, Any] | None:
        with self.read() as conn:
            return casedb.get(conn, case_id)

    def list_cases(self, status: str | None, account_id: str | None, after_id: int | None,
                   limit: int) -> list[dict[str, Any]]:
        with self.read() as conn:
            return casedb.list_page(conn, status, account_id, after_id, limit)

    def transition(self, case_id: int, target: str, *, actor: str, role: str, reason: str,
                   outcome: str | None, typology: str | None,
                   key: str | None = None) -> casedb.Transition:
        with self.write(api=True) as conn:
            return casedb.transition(self.engine, conn, case_id, target, actor=actor,
                                     role=role, reason=reason, outcome=outcome,
                                     typology=typology, key=key)

    def pending_outbox(self, limit: int) -> list[tuple[int, str, dict[str, Any]]]:
        """(id, kind, payload) of events not yet delivered, oldest first."""
        o = T.outbox
        with self.read() as conn:
            rows = conn.execute(select(o.c.id, o.c.kind, o.c.payload)
                                .where(o.c.sent_at.is_(None)).order_by(o.c.id).limit(limit))
            return [(r.id, r.kind, json.loads(r.payload)) for r in rows]

    def mark_sent(self, outbox_id: int) -> None:
        with self._writer.begin() as conn:  # delivery state, not data: the version stays
            conn.execute(update(T.outbox).where(T.outbox.c.id == outbox_id)
                         .values(sent_at=now()))

    def labels_from_outcomes(self, since: datetime | None = None) -> list[Label]:
        with self.read() as conn:
            return casedb.labels(conn, None if since is None else since.timestamp())


_VERSION_SQL = ("SELECT (SELECT value FROM meta WHERE key = 'version'), "
                "(SELECT value FROM meta WHERE key = 'keys'), "
                "(SELECT value FROM meta WHERE key = 'api')")


def _raw_postgres(engine: Engine) -> PgVersionReader | None:
    """PostgreSQL's dedicated connection for the version read (see ``db.PgVersionReader``)."""
    return PgVersionReader(engine) if engine.dialect.name == "postgresql" else None


def _raw_sqlite(engine: Engine) -> sqlite3.Connection | None:
    """A dedicated autocommit connection for the version read (no pool, no BEGIN)."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return None
    conn = sqlite3.connect(engine.url.database, check_same_thread=False, isolation_level=None,
                           timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _reason(reason: dict[str, Any]) -> dict[str, Any]:
    """A reason with NaN/inf numbers as null, so that stored JSON stays valid JSON."""
    return {"feature": str(reason.get("feature", "")), "value": _num(reason.get("value")),
            "contribution": _num(reason.get("contribution")), "text": reason.get("text")}


def _scored_row(r: dict[str, Any]) -> dict[str, Any]:
    p = r.get("payment") or {}
    features = r.get("features") or {}
    score = _num(r["score"])
    if score is None or not 0.0 <= score <= 1.0:
        raise ValueError(f"score {r['score']!r} is not in 0..1")
    return {
        "event_id": str(r["event_id"]), "account_id": str(r["account_id"]),
        "event_t": epoch(r["ts"]), "score": score, "decision": str(r["decision"]),
        "reasons": orjson.dumps([_reason(x) for x in r.get("reasons") or []]).decode(),
        "model_version": str(r.get("model_version", "")),
        "scored_at": epoch(r["scored_at"]) if r.get("scored_at") else now(),
        "direction": p.get("direction", "debit"), "amount": float(p.get("amount", 0.0)),
        "currency": p.get("currency", "VND"),
        "counterparty_account": p.get("counterparty_account", ""),
        "counterparty_bank": p.get("counterparty_bank", ""),
        "channel": p.get("channel", ""), "country": p.get("country"), "ip": p.get("ip"),
        "device_id": p.get("device_id"), "description": p.get("description"),
        "features": orjson.dumps({k: _num(features[k]) for k in KEY_FEATURES
                                  if k in features}).decode(),
    }
