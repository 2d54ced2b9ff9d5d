"""Engine construction and the few dialect differences (SQLite WAL by default, PostgreSQL by URL).

SQLite: WAL so that the API's readers never wait for the scorer's writer; write transactions
begin ``IMMEDIATE`` so that two writers queue on ``busy_timeout`` instead of failing to upgrade
a read lock.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from features.events import format_ts

BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # a lock waited for longer than SQLite's busy timeout fails the same way (then 503)
        args = ({"options": f"-c lock_timeout={BUSY_TIMEOUT_MS}"}
                if parsed.get_backend_name() == "postgresql" else {})
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                             connect_args=args, hide_parameters=True)
    if parsed.database and parsed.database != ":memory:":
        _private_file(Path(parsed.database))
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        pool_size=20,
        max_overflow=40,
        hide_parameters=True,  # account ids in SQL parameters never reach errors or logs
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the "begin" hook below issues BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only (0600, in a 0700 directory when
    the directory is new); SQLite gives its -wal and -shm files the database file's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def writer(engine: Engine) -> Engine:
    """The same engine whose transactions take the write lock at BEGIN (SQLite)."""
    return engine.execution_options(sqlite_begin="IMMEDIATE")


def upsert(engine: Engine, table: Table) -> Any:
    """A dialect ``INSERT`` supporting ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def is_busy(exc: BaseException) -> bool:
    """Whether a database error means "busy, try again" (a lock not granted in time, a
    cancelled statement, a lost connection, a full pool), not a bug."""
    if isinstance(exc, TimeoutError | sa_exc.TimeoutError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    orig = exc.orig
    state = str(getattr(orig, "sqlstate", "") or "")
    if state:  # PostgreSQL: lock not available, statement cancelled, serialisation, deadlock
        return state in {"55P03", "57014", "40001", "40P01", "57P01"} or state.startswith("08")
    text = str(orig).lower()
    return exc.connection_invalidated or "locked" in text or "busy" in text


def write_probe(engine: Engine, timeout_s: float = 0.5) -> bool:
    """True if a write transaction can start within ``timeout_s`` (readiness)."""
    if engine.dialect.name == "sqlite":
        import sqlite3  # noqa: PLC0415

        conn = sqlite3.connect(engine.url.database or ":memory:", timeout=timeout_s,
                               isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return False
            raise
        finally:
            conn.close()
    with engine.connect() as conn:
        try:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(timeout_s * 1000)}")
            conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'version' FOR UPDATE")
            return True
        except sa_exc.DBAPIError as exc:
            if is_busy(exc):
                return False
            raise
        finally:
            conn.rollback()


def now() -> float:
    """Wall-clock epoch seconds at microsecond resolution (what a datetime can hold)."""
    return round(time.time(), 6)


def epoch(value: str | datetime) -> float:
    """RFC 3339 text (or an aware datetime) to epoch seconds; ValueError if naive/invalid."""
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"timestamp {value!r} has no timezone offset")
    return ts.timestamp()


def rfc3339(t: float | None) -> str | None:
    return None if t is None else format_ts(datetime.fromtimestamp(t, tz=UTC))


class OwnConnection:
    """Holds at most one connection of its own in ``_conn``; :meth:`close` closes it (and the
    next use opens a new one)."""

    _conn: Any = None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def pg_connect(conninfo: str, **options: Any) -> Any:
    """A psycopg autocommit connection that gives up on an unreachable server within 10 s and
    notices a dead peer (TCP keepalives) instead of hanging on a half-open connection."""
    import psycopg  # noqa: PLC0415 - only with PostgreSQL

    return psycopg.connect(conninfo, autocommit=True, connect_timeout=10, keepalives=1,
                           keepalives_idle=30, keepalives_interval=10, keepalives_count=3,
                           **options)


class PgVersionReader(OwnConnection):
    """A dedicated autocommit PostgreSQL connection for the tiny query read on every API
    request (the store versions): one round trip, no pool checkout, no pre-ping, no BEGIN /
    ROLLBACK. Reconnects once if the connection broke; a failure surfaces as SQLAlchemy's
    ``OperationalError`` like any other database error."""

    def __init__(self, engine: Engine) -> None:
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        self._conn: Any = None

    def _connect(self) -> Any:
        return pg_connect(self._conninfo)

    def execute(self, sql: str) -> Any:
        import psycopg  # noqa: PLC0415

        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                return self._conn.execute(sql)
            except psycopg.OperationalError as exc:
                self.close()
                if attempt == 2:
                    raise sa_exc.OperationalError(sql, None, exc) from exc
        raise AssertionError("unreachable")
