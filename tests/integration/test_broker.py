"""The bundled broker speaks Kafka: produce and consume through a consumer group."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer

from streaming.topics import ensure_topics
from tests.conftest import FAST_GROUP

pytestmark = pytest.mark.integration


def test_produce_and_consume_through_a_consumer_group(broker, topic_prefix):
    topic = f"{topic_prefix}payments"
    ensure_topics(broker.bootstrap, [topic], partitions=2)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    sent = {f"acc-{i}".encode(): f"v{i}".encode() for i in range(20)}
    for key, value in sent.items():
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(
        topic, bootstrap_servers=broker.bootstrap, group_id=f"{topic_prefix}g",
        auto_offset_reset="earliest", enable_auto_commit=False, **FAST_GROUP,
    )
    got: dict[bytes, bytes] = {}
    deadline = time.monotonic() + 30
    while len(got) < len(sent) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            for r in records:
                got[r.key] = r.value
    consumer.commit()
    partitions = consumer.assignment()
    committed = {tp: consumer.committed(tp) for tp in partitions}
    consumer.close()

    assert got == sent
    assert len(partitions) == 2
    assert sum(c or 0 for c in committed.values()) == len(sent)
