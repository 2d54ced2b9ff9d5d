"""The case store: a projection of the topics (written by :mod:`serving.projection`) and the
API's database.

The projection's writes are batched (:meth:`CaseStore.write_batch`: one transaction per batch)
and idempotent (events are keyed by ``event_id``; per-account risk is recomputed from the
stored events), so a batch replayed after a crash changes nothing. Every write transaction
bumps a store *version*, which keys the API's response cache.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

import orjson
from sqlalchemy import Connection, Engine, event, select, text, update
from sqlalchemy.exc import IntegrityError

from features.events import Account, Label, Login, Rejection
from models.model_info import ModelInfo
from models.scored import ScoredPayment, scored_from_mapping
from serving import casedb, keys, queues, reads
from serving import tables as T
from serving.auditdb import AuditAppender, PgAuditAppender, open_audit
from serving.db import (
    BUSY_TIMEOUT_MS,
    PgVersionReader,
    make_engine,
    now,
    upsert,
    writer,
)
from serving.migrate import migrate
from serving.risk import refresh_foreign, refresh_scores
from serving.typology import KEY_FEATURES

log = logging.getLogger(__name__)


# the outbox delivery lease, in the meta table: holder (a random positive int) and expiry
# (seconds since LEASE_EPOCH, so that it fits PostgreSQL's 32-bit integer for a century)
_LEASE_KEYS = ("outbox_holder", "outbox_until")
LEASE_EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z


def _lease_clock() -> int:
    return int(time.time()) - LEASE_EPOCH


class PendingEvent(NamedTuple):
    id: int
    kind: str  # action | label
    account_id: str
    payload: dict[str, Any]
    created_at: float


R = TypeVar("R")
AuditRow = dict[str, Any]  # the columns of tables.audit


@dataclass(frozen=True, slots=True)
class DecisionAudit(Generic[R]):
    """The access-log entries of one decision (:meth:`CaseStore.decide`): ``rows`` builds
    them from what the decision's transaction produced; ``later`` writes them when the access
    log is in another database (SQLite's audit file), after the decision has committed
    (default: :meth:`CaseStore.append_audit`; the API hands its group commit)."""

    rows: Callable[[R], list[AuditRow]]
    later: Callable[[list[AuditRow]], None] | None = None


class Versions(NamedTuple):
    data: int  # every write transaction
    keys: int  # API keys created or revoked
    api: int  # investigators' writes (cases)


class CaseStore:
    """SQLAlchemy 2.0 store. ``url``: SQLite file (WAL) by default, PostgreSQL by URL."""

    def __init__(self, url: str, busy_timeout_ms: int | None = None) -> None:
        """``busy_timeout_ms``: how long a SQLite write waits for another writer's lock before
        failing (default ``serving.db.BUSY_TIMEOUT_MS``); the projection waits less and
        retries with backoff, so that a long lock shows in its logs and metrics."""
        self.url = url
        self.engine = make_engine(url)
        if busy_timeout_ms is not None and self.engine.dialect.name == "sqlite":
            _set_busy_timeout(self.engine, busy_timeout_ms)
        self._writer = writer(self.engine)
        migrate(self.engine)  # Alembic, to head (serving/migrations)
        self.audit_engine = open_audit(self.engine)  # SQLite: a file of its own
        self._audit_writer = writer(self.audit_engine)
        self._version_lock = threading.Lock()
        self._version_conn = _raw_sqlite(self.engine) or _raw_postgres(self.engine)
        with self.write() as conn:
            conn.execute(upsert(self.engine, T.meta).on_conflict_do_nothing(),
                         [{"key": k, "value": 0}
                          for k in ("version", "keys", "api", *_LEASE_KEYS)])

    def close(self) -> None:
        if self._version_conn is not None:
            self._version_conn.close()
        if self.audit_engine is not self.engine:
            self.audit_engine.dispose()
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

    @property
    def versions_remote(self) -> bool:
        """Whether reading the versions is a network round trip (PostgreSQL)."""
        return self.engine.dialect.name != "sqlite"

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

    # ------------------------------------------------------------------ the projection's writes
    def write_batch(self, *, accounts: Sequence[Account] = (), logins: Sequence[Login] = (),
                    scored: Sequence[ScoredPayment] = (),
                    model_info: ModelInfo | None = None) -> bool:
        """Write one batch of the case-store projection in ONE transaction (one version bump).

        Idempotent: scored payments and logins are keyed by ``event_id`` (a replay inserts
        nothing), accounts are upserted (the latest record wins), the model info only replaces
        an older one (by ``loaded_at``), and per-account risk is recomputed from the stored
        events. Returns False when there was nothing to write."""
        account_rows = _account_rows(accounts)
        login_rows = _login_rows(logins)
        scored_rows = list({sp.event_id: _scored_row(sp) for sp in scored}.values())
        if not (account_rows or login_rows or scored_rows or model_info):
            return False
        with self.write() as conn:
            if account_rows:
                stmt = upsert(self.engine, T.accounts)
                conn.execute(stmt.on_conflict_do_update(
                    index_elements=["account_id"],
                    set_={c: stmt.excluded[c] for c in account_rows[0] if c != "account_id"},
                ), account_rows)
            if login_rows:
                conn.execute(upsert(self.engine, T.logins).on_conflict_do_nothing(), login_rows)
            if scored_rows:
                conn.execute(upsert(self.engine, T.scored).on_conflict_do_nothing(),
                             scored_rows)
            if model_info is not None:
                self._model_info(conn, model_info.version, dict(model_info.metrics),
                                 dict(model_info.thresholds), model_info.loaded_at.timestamp())
            touched_foreign = {r["account_id"] for r in account_rows}
            touched_foreign.update(r["account_id"] for r in login_rows)
            if touched_foreign:
                refresh_foreign(self.engine, conn, touched_foreign)
            touched_scores = {r["account_id"] for r in scored_rows}
            if account_rows:  # a new profile can change an account's type in the ranking
                touched_scores.update(r["account_id"] for r in account_rows)
            if touched_scores:
                refresh_scores(self.engine, conn, touched_scores)
        log.debug("projection batch written", extra={
            "accounts": len(account_rows), "logins": len(login_rows),
            "scored": len(scored_rows)})
        return True

    def write_scored(self, records: Sequence[ScoredPayment | Mapping[str, Any]]) -> None:
        """Scored payments; a mapping (the JSON object of ``payments.scored``) is validated
        like :func:`models.scored.decode_scored` and skipped with a warning when invalid."""
        payments: list[ScoredPayment] = []
        for record in records:
            if isinstance(record, ScoredPayment):
                payments.append(record)
                continue
            sp = scored_from_mapping(record)
            if isinstance(sp, Rejection):
                log.warning("scored record skipped", extra={
                    "event_id": str(record.get("event_id"))[:128]
                    if isinstance(record, Mapping) else None, "error": sp.message()})
            else:
                payments.append(sp)
        self.write_batch(scored=payments)

    def write_logins(self, logins: Sequence[Login]) -> None:
        self.write_batch(logins=logins)

    def upsert_accounts(self, accounts: Sequence[Account]) -> None:
        self.write_batch(accounts=accounts)

    def set_model_info(self, version: str, metrics: dict[str, Any],
                       thresholds: dict[str, Any], at: float | None = None) -> None:
        """Record the model in force; ``at`` (when it was loaded, default now) keeps an older
        record from replacing a newer one."""
        with self.write() as conn:
            self._model_info(conn, version, metrics, thresholds, now() if at is None else at)

    def _model_info(self, conn: Connection, version: str, metrics: dict[str, Any],
                    thresholds: dict[str, Any], at: float) -> None:
        stmt = upsert(self.engine, T.model_info)
        values = {"id": 1, "version": version, "metrics": json.dumps(metrics),
                  "thresholds": json.dumps(thresholds), "updated_at": at}
        conn.execute(stmt.values(values).on_conflict_do_update(
            index_elements=["id"], set_={k: v for k, v in values.items() if k != "id"},
            where=T.model_info.c.updated_at <= stmt.excluded.updated_at))

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
        """Append audit rows (columns of ``tables.audit``) in one transaction, in the access
        log's own database (``serving.auditdb``: on SQLite it never waits for the
        projection's writes)."""
        with self._audit_writer.begin() as conn:  # not a data change: the version stays
            conn.execute(T.audit.insert(), rows)

    def audit_appender(self) -> AuditAppender | PgAuditAppender:
        """A writer of audit rows on a connection of its own (one per writer thread): on
        PostgreSQL one autocommit statement per batch (``auditdb.PgAuditAppender``)."""
        if self.audit_engine.dialect.name == "postgresql":
            return PgAuditAppender(self.audit_engine)
        return AuditAppender(self._audit_writer)

    @property
    def audit_writers(self) -> int:
        """How many audit commits may be in flight at once: one on SQLite (one writer per
        file: a second would only wait for the lock), three on PostgreSQL (its commits
        proceed together and share WAL flushes)."""
        return 1 if self.audit_engine.dialect.name == "sqlite" else 3

    @contextmanager
    def audit_read(self) -> Iterator[Connection]:
        """A connection to the access log's database (``serving.auditdb``)."""
        with self.audit_engine.connect() as conn:
            yield conn

    @contextmanager
    def audit_write(self) -> Iterator[Connection]:
        """A write transaction on the access log's database (tests of the triggers)."""
        with self._audit_writer.begin() as conn:
            yield conn

    def audit_page(self, after_id: int | None, limit: int, actor: str | None,
                   target: str | None) -> list[dict[str, Any]]:
        with self.audit_read() as conn:
            return reads.audit_page(conn, after_id, limit, actor, target)

    # ------------------------------------------------------------------ cases
    def account_exists(self, account_id: str) -> bool:
        with self.read() as conn:
            return reads.account_exists(conn, account_id)

    def create_case(self, account_id: str, actor: str, role: str, reason: str,
                    key: str | None = None,
                    audit: DecisionAudit[int] | None = None) -> dict[str, Any]:
        """Open a case; ``audit`` builds its entries from the new case id (see :meth:`decide`)."""
        try:
            case_id, later = self._commit_decision(lambda conn: casedb.create(
                self.engine, conn, account_id, actor, role, reason, key), audit)
        except IntegrityError:  # a concurrent create won the one-active-case index
            with self.read() as conn:
                winner = casedb.active_case(conn, account_id)
            if winner is None:
                raise
            raise casedb.conflict(account_id, winner) from None
        self._audit_later(audit, later)  # not in the try: its errors are not a conflict
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
                   key: str | None = None,
                   audit: DecisionAudit[casedb.Transition] | None = None) -> casedb.Transition:
        """One move of a case (its events queued in the outbox in the same transaction);
        ``audit`` builds its entries from the move (see :meth:`decide`)."""
        return self.decide(lambda conn: casedb.transition(
            self.engine, conn, case_id, target, actor=actor, role=role, reason=reason,
            outcome=outcome, typology=typology, key=key), audit)

    def assign(self, case_ids: list[int], assignee: str | None, by: str,
               by_key: str | None = None,
               audit: DecisionAudit[list[int]] | None = None) -> list[int]:
        """Assign (``None``: unassign) active cases to a user; the ids changed. ``audit``
        builds its entries from them (see :meth:`decide`)."""
        return self.decide(lambda conn: queues.assign(
            self.engine, conn, case_ids, assignee, by, by_key), audit)

    @property
    def audit_in_store(self) -> bool:
        """Whether the access log is a table of the case store's own database (PostgreSQL),
        so that a decision and its entries commit in one transaction."""
        return self.audit_engine is self.engine

    def decide(self, work: Callable[[Connection], R],
               audit: DecisionAudit[R] | None = None) -> R:
        """An investigator's decision: ``work`` in one write transaction that bumps the API
        version, and its access-log entries (``audit.rows(result)``).

        When the access log lives in the case store's database (PostgreSQL) the entries are
        inserted in the decision's own transaction: both commit or neither, so a committed
        decision always has its entries, and an entry that cannot be written (a lock not
        granted, a constraint, a lost connection) undoes the decision. On SQLite the access
        log is a file of its own (``serving.auditdb``), which no transaction of the case store
        can include: the entries are written just after the decision commits
        (``audit.later``), and a failure there leaves the decision without its entry."""
        result, later = self._commit_decision(work, audit)
        self._audit_later(audit, later)
        return result

    def _commit_decision(self, work: Callable[[Connection], R],
                         audit: DecisionAudit[R] | None) -> tuple[R, list[AuditRow]]:
        """The decision's transaction; the entries still to write after it (SQLite)."""
        with self.write(api=True) as conn:
            result = work(conn)
            rows = audit.rows(result) if audit is not None else []
            if rows and self.audit_in_store:
                conn.execute(T.audit.insert(), rows)
                rows = []
        return result, rows

    def _audit_later(self, audit: DecisionAudit[Any] | None, rows: list[AuditRow]) -> None:
        if rows and audit is not None:
            (audit.later or self.append_audit)(rows)

    def pending_outbox(self, limit: int) -> list[tuple[int, str, dict[str, Any]]]:
        """(id, kind, payload) of events not yet delivered, oldest first."""
        return [(r.id, r.kind, r.payload) for r in self.pending_events(limit)]

    def pending_events(self, limit: int) -> list[PendingEvent]:
        """Events not yet delivered, oldest first (a payload that is not a JSON object is
        given as ``{}``: the outbox drops it with a log line instead of blocking)."""
        o = T.outbox
        with self.read() as conn:
            rows = conn.execute(select(o.c.id, o.c.kind, o.c.account_id, o.c.payload,
                                       o.c.created_at)
                                .where(o.c.sent_at.is_(None)).order_by(o.c.id).limit(limit))
            return [PendingEvent(r.id, r.kind, r.account_id, _json_object(r.payload),
                                 r.created_at) for r in rows]

    def mark_sent(self, outbox_id: int) -> None:
        with self._writer.begin() as conn:  # delivery state, not data: the version stays
            conn.execute(update(T.outbox).where(T.outbox.c.id == outbox_id)
                         .values(sent_at=now()))

    def acquire_outbox_lease(self, holder: int, ttl_s: int) -> bool:
        """Make ``holder`` the one process that delivers the outbox for ``ttl_s`` seconds,
        unless another holds an unexpired lease (one write transaction: SQLite's write lock
        or PostgreSQL's row locks serialise the contenders)."""
        m = T.meta
        with self._writer.begin() as conn:
            rows = dict(conn.execute(
                select(m.c.key, m.c.value).where(m.c.key.in_(_LEASE_KEYS)).with_for_update()
            ).all())
            t = _lease_clock()
            current, until = rows.get(_LEASE_KEYS[0], 0), rows.get(_LEASE_KEYS[1], 0)
            if current not in (0, holder) and until > t:
                return False
            for key, value in zip(_LEASE_KEYS, (holder, t + ttl_s), strict=True):
                conn.execute(update(m).where(m.c.key == key).values(value=value))
            return True

    def release_outbox_lease(self, holder: int) -> None:
        m = T.meta
        with self._writer.begin() as conn:
            row = conn.execute(select(m.c.value).where(m.c.key == _LEASE_KEYS[0])
                               .with_for_update()).first()
            if row is not None and row.value == holder:
                conn.execute(update(m).where(m.c.key.in_(_LEASE_KEYS)).values(value=0))

    def labels_from_outcomes(self, since: datetime | None = None) -> list[Label]:
        with self.read() as conn:
            return casedb.labels(conn, None if since is None else since.timestamp())


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


_VERSION_SQL = ("SELECT (SELECT value FROM meta WHERE key = 'version'), "
                "(SELECT value FROM meta WHERE key = 'keys'), "
                "(SELECT value FROM meta WHERE key = 'api')")


def _set_busy_timeout(engine: Engine, ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _busy(dbapi_conn: Any, _record: Any) -> None:  # runs after serving.db's own hook
        dbapi_conn.execute(f"PRAGMA busy_timeout={int(ms)}")


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


def _scored_row(sp: ScoredPayment) -> dict[str, Any]:
    return {
        "event_id": sp.event_id, "account_id": sp.account_id, "event_t": sp.t,
        "score": sp.score, "decision": sp.decision,
        "reasons": orjson.dumps([r.to_dict() for r in sp.reasons]).decode(),
        "model_version": sp.model_version, "scored_at": sp.scored_at.timestamp(),
        "direction": sp.direction, "amount": sp.amount, "currency": sp.currency,
        "counterparty_account": sp.counterparty_account,
        "counterparty_bank": sp.counterparty_bank, "channel": sp.channel,
        "country": sp.country, "ip": sp.ip, "device_id": sp.device_id,
        "description": sp.description, "on_call": sp.on_call,
        "remote_access": sp.remote_access,
        "features": orjson.dumps({k: sp.features[k] for k in KEY_FEATURES
                                  if k in sp.features}).decode(),
    }


def _login_rows(logins: Sequence[Login]) -> list[dict[str, Any]]:
    return list({lg.event_id: {
        "event_id": lg.event_id, "account_id": lg.account_id, "event_t": lg.t,
        "success": lg.success, "ip": lg.ip, "country": lg.country,
        "device_id": lg.device_id, "channel": lg.channel,
    } for lg in logins}.values())


def _account_rows(accounts: Sequence[Account]) -> list[dict[str, Any]]:
    return list({a.account_id: {
        "account_id": a.account_id, "customer_id": a.customer_id, "type": a.type,
        "opened_at": a.opened_at.timestamp(), "kyc_country": a.kyc_country,
        "birth_year": a.birth_year,
        "registered_at": a.registered_at.timestamp() if a.registered_at else None,
        "segment": a.segment,
    } for a in accounts}.values())
