"""Schema migrations (Alembic, ``serving/migrations``), applied when a store opens and by
``canhgiac db upgrade``.

The upgrade runs in one transaction that first takes a lock (PostgreSQL: an advisory
transaction lock; SQLite: ``BEGIN IMMEDIATE``), so API workers and the projection starting
together migrate once. A database made by ``create_all`` before migrations existed (tables,
no ``alembic_version``) is stamped at the baseline revision first, then upgraded.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from serving.db import writer

BASELINE = "0001"
_LOCK_ID = 0x63616E68  # "canh": the advisory lock of migrations (PostgreSQL)
SCRIPTS = Path(__file__).parent / "migrations"


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


@cache
def head() -> str:
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(conn: Connection) -> str | None:
    """The revision the database is at (None: empty or made before migrations)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Upgrade to the newest revision; (revision before, revision after)."""
    with engine.connect() as conn:  # the common case: already at head, no lock taken
        before = current(conn)
        conn.rollback()
    if before == head():
        return before, before
    with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        before = current(conn)
        if before is None and inspect(conn).has_table("cases"):
            command.stamp(_config(conn), BASELINE)
            before = BASELINE + " (unversioned)"
        command.upgrade(_config(conn), "head")
    return before, head()
