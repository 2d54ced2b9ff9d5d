"""The scorer's outputs are acknowledged on a helper thread (``OutputAcks``): an acknowledged
output is measured, and one the broker never acknowledges becomes an error the loop raises."""

from __future__ import annotations

import contextlib
import time

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry, Histogram

from streaming.broker import Broker
from streaming.scorer import OutputAcks
from streaming.topics import ensure_topics

pytestmark = pytest.mark.integration


def _wait(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_acknowledged_outputs_are_measured_and_an_unacknowledged_one_is_an_error(tmp_path):
    registry = CollectorRegistry()
    latency = Histogram("t_latency_seconds", "test", registry=registry)

    def observed() -> float:
        return registry.get_sample_value("t_latency_seconds_count") or 0.0

    broker = Broker(log_path=tmp_path / "broker.log").start()
    try:
        ensure_topics(broker.bootstrap, ["acks.out"], partitions=1)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                                 linger_ms=100, retries=0, request_timeout_ms=1000)
        acks = OutputAcks(producer, latency, timeout_s=2.0)
        now_ms = int(time.time() * 1000)
        producer.send("acks.out", value=b"first")
        acks.sent([now_ms])
        assert _wait(lambda: observed() == 1.0, 10), "an acknowledged output was not measured"
        assert acks.error is None
    finally:
        broker.stop()
    producer.send("acks.out", value=b"second")  # the broker is gone: never acknowledged
    acks.sent([int(time.time() * 1000)])
    assert _wait(lambda: acks.error is not None, 15), "the lost output raised nothing"
    assert observed() == 1.0  # the lost output is not counted as delivered
    acks.close()
    with contextlib.suppress(KafkaTimeoutError):  # its batch can never be delivered
        producer.close(timeout=0)
    # kafka-python's close() raises from its flush before it stops the sender thread, which
    # would then log into pytest's closed streams after the run
    producer._sender.force_close()
