"""Where the access log lives: on SQLite a file of its own next to the case store, so that
recording a read never queues behind the projection's write transactions (SQLite has one
writer per file, and a projection batch of thousands of records holds it for a second);
on PostgreSQL the ``audit`` table of the case store itself (row locks: an insert waits for
nobody).

The audit file: ``<case store>.audit.db`` (``cases.db`` → ``cases.audit.db``), created 0600,
WAL, ``synchronous=FULL`` (a committed entry survives a power cut, not only a process crash:
the group commit of :mod:`serving.auditlog` pays one fsync for many entries), the same
``audit`` table and the same append-only triggers as migration 0002. When the file is
created, the entries already in the case store's own ``audit`` table (a store made before the
audit file existed) are copied into it with their ids; that table is left as it was (the
triggers keep it append-only) and nothing writes to it any more.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, event, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from serving import db
from serving import tables as T
from serving.db import make_engine, writer

_TRIGGERS = [f"CREATE TRIGGER IF NOT EXISTS audit_no_{verb.lower()} BEFORE {verb} ON audit "
             "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
             for verb in ("UPDATE", "DELETE")]


def audit_url(url: str) -> str | None:
    """The audit file's URL for a SQLite file store; None (the store's own table) otherwise."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database \
            or parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    db = parsed.database
    stem = db[:-3] if db.endswith(".db") else db
    return parsed.set(database=f"{stem}.audit.db").render_as_string(hide_password=False)


def open_audit(store_engine: Engine) -> Engine:
    """The engine the access log is written to and read from (see the module docstring)."""
    url = audit_url(store_engine.url.render_as_string(hide_password=False))
    if url is None:
        return store_engine
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _durable(dbapi_conn: Any, _record: Any) -> None:  # after serving.db's own hook
        dbapi_conn.execute("PRAGMA synchronous=FULL")

    with writer(engine).begin() as conn:  # BEGIN IMMEDIATE: concurrent starts create it once
        created = not conn.dialect.has_table(conn, "audit")
        T.audit.create(conn, checkfirst=True)
        for sql in _TRIGGERS:
            conn.exec_driver_sql(sql)
        if created:
            _copy_legacy(store_engine, conn)
    return engine


def _copy_legacy(store_engine: Engine, audit_conn: Connection) -> None:
    """Entries written to the case store's ``audit`` table before the audit file existed."""
    with store_engine.connect() as src:
        if not src.dialect.has_table(src, "audit"):
            return
        rows = [dict(r._mapping) for r in src.execute(select(T.audit).order_by(T.audit.c.id))]
    for k in range(0, len(rows), 1000):
        audit_conn.execute(T.audit.insert(), rows[k:k + 1000])


class AuditAppender(db.OwnConnection):
    """Appends audit rows for one writer thread on a connection it keeps open, so that a
    commit costs no pool checkout and no liveness ping (on PostgreSQL each is a round trip);
    a failed append closes the connection and the next one opens a new one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # serving.db.writer(...) of the access log's engine
        self._conn: Connection | None = None

    def append(self, rows: list[dict[str, Any]]) -> None:
        if self._conn is None:
            self._conn = self.engine.connect()
        try:
            with self._conn.begin():
                self._conn.execute(T.audit.insert(), rows)
        except BaseException:
            self.close()
            raise


_COLUMNS = tuple(c.name for c in T.audit.columns if c.name != "id")


class PgAuditAppender(db.OwnConnection):
    """PostgreSQL: appends a batch as ONE multi-row ``INSERT`` on an autocommit connection of
    its own. A single statement outside a transaction block is its own transaction, committed
    (and, with ``synchronous_commit = on``, flushed to the WAL on disk) before the server
    answers it: one round trip per group commit instead of three (``BEGIN``, ``INSERT``,
    ``COMMIT``), and no SQLAlchemy transaction around it. Never retried (a lost answer may
    belong to a committed batch: an entry written twice is not the truth either); a failure
    closes the connection, raises as SQLAlchemy's ``DBAPIError`` (so that a lock not granted
    within ``lock_timeout`` is a 503 like any other) and the next batch reconnects."""

    def __init__(self, engine: Engine) -> None:
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        self._conn: Any = None

    def append(self, rows: list[dict[str, Any]]) -> None:
        import psycopg  # noqa: PLC0415 - only with PostgreSQL

        one = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
        sql = (f"INSERT INTO audit ({', '.join(_COLUMNS)}) VALUES "
               + ", ".join([one] * len(rows)))
        try:
            if self._conn is None:
                self._conn = db.pg_connect(self._conninfo,
                                           options=f"-c lock_timeout={db.BUSY_TIMEOUT_MS}")
            self._conn.execute(sql, [row.get(c) for row in rows for c in _COLUMNS])
        except psycopg.Error as exc:
            self.close()
            raise sa_exc.DBAPIError.instance("INSERT INTO audit", None, exc,
                                             psycopg.Error) from exc
        except BaseException:
            self.close()
            raise
