"""The scorer's outputs are acknowledged on a helper thread: an acknowledged output is measured,
and one the broker never acknowledges becomes an :class:`OutputError` that ``Outputs.check``
raises (the loop then restarts from the last checkpoint). A checkpoint whose outputs are not
durable is never written: its first step fails and nothing after it happens."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaProducer

from features.engine import FeatureEngine, ReferenceData
from streaming.broker import Broker
from streaming.checkpoint import CheckpointStore
from streaming.handler import Handler, HandleResult
from streaming.metrics import ScorerMetrics
from streaming.outputs import OutputError, Outputs
from streaming.partitions import Partitions
from streaming.topics import ensure_topics

pytestmark = pytest.mark.integration


def _wait(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class _Tiny:
    """What the output path needs of a scored payment."""

    def __init__(self, ts_ms: int) -> None:
        self.timestamp_ms = ts_ms
        self.partition = 0
        self.polled_at = 0.0

        class V:
            account_id = "A1"
            decision = "allow"

            @staticmethod
            def to_json() -> bytes:
                return b'{"event_id":"e"}'
        self.value = V()


def test_acknowledged_outputs_are_measured_and_an_unacknowledged_one_is_an_error(tmp_path):
    metrics = ScorerMetrics()

    def observed() -> float:
        return metrics.registry.get_sample_value("canhgiac_scorer_end_to_end_seconds_count") or 0

    broker = Broker(log_path=tmp_path / "broker.log").start()
    topics = {"payments.scored": "acks.out", "alerts": "acks.alerts", "payments.dlq": "acks.dlq"}
    try:
        ensure_topics(broker.bootstrap, list(topics.values()), partitions=1)
        outputs = Outputs({"bootstrap_servers": broker.bootstrap, "request_timeout_ms": 1000},
                          topics, metrics)
        outputs.acks._timeout_s = 2.0
        first = HandleResult(scored=[_Tiny(int(time.time() * 1000))])
        outputs.emit(first)
        assert _wait(lambda: observed() == 1.0, 10), "an acknowledged output was not measured"
        outputs.check()  # nothing failed
    finally:
        broker.stop()
    outputs.emit(HandleResult(scored=[_Tiny(int(time.time() * 1000))]))  # never acknowledged
    assert _wait(lambda: outputs.acks.error is not None, 15), "the lost output raised nothing"
    with pytest.raises(OutputError):
        outputs.check()
    assert observed() == 1.0  # the lost output is not counted as delivered
    with pytest.raises(Exception):  # noqa: B017 - kafka-python raises from its final flush
        outputs.close()
    assert not outputs.producer._sender.is_alive()  # and its sender thread is stopped anyway


def test_a_checkpoint_whose_outputs_failed_is_not_written(broker, topic_prefix):
    """Step 2 of the commit (outputs durable) fails: no checkpoint, no group offset."""
    topic = topic_prefix + "scorer.checkpoints"
    ensure_topics(broker.bootstrap, [topic], partitions=1, prefix=topic_prefix)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    cfg = {"bootstrap_servers": broker.bootstrap}
    store = CheckpointStore(topic, producer, cfg, "g")
    handler = Handler(ReferenceData())
    handler.open_partition(0, FeatureEngine(), 0, 0)
    committed: list = []

    def failed_flush() -> None:
        raise OutputError("an output could not be written: broker said no")

    parts = Partitions(_settings(), consumer=None, handler=handler, ref=handler.ref,
                       store=store, topics={"payments": "p", "logins": "l"},
                       metrics=ScorerMetrics(), flush_outputs=failed_flush,
                       commit_reference=lambda positions=None: committed.append(1),
                       model_version=lambda: "v")
    with pytest.raises(OutputError):
        parts.checkpoint([0], commit=True)
    assert CheckpointStore(topic, producer, cfg, "g").restore([0]) == {}
    assert committed == []
    # the same with outputs durable: the checkpoint is written
    parts.flush_outputs = lambda: None
    parts.consumer = _NoCommit()
    parts.checkpoint([0], commit=True)
    assert set(CheckpointStore(topic, producer, cfg, "g").restore([0])) == {0}
    assert committed == [1]
    producer.close()


class _NoCommit:
    def commit(self, offsets) -> None:
        self.offsets = offsets


def _settings():
    from canhgiac.settings import Settings

    return Settings(metrics_port=0)
