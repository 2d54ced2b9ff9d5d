"""Rapid-response actions and outcome labels reach Kafka (real broker), consumed back."""

from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaConsumer

from features.events import decode
from serving.actions import KafkaActionPublisher, PublisherUnavailable
from streaming.topics import ensure_topics
from tests.integration.test_api_support import make_api, seed

pytestmark = pytest.mark.integration


def _consume(bootstrap: str, topic: str, n: int, timeout_s: float = 30.0) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=500)
    got: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < n and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=300).values():
                got.extend(records)
    finally:
        consumer.close()
    return got


def test_freeze_request_approval_release_and_label_are_published(broker, topic_prefix, tmp_path,
                                                                 store_url):
    actions_topic, labels_topic = f"{topic_prefix}account.actions", f"{topic_prefix}labels"
    ensure_topics(broker.bootstrap, [actions_topic, labels_topic], partitions=1)
    publisher = KafkaActionPublisher({"bootstrap_servers": broker.bootstrap}, actions_topic,
                                     labels_topic)
    api = make_api(tmp_path, publisher=publisher, url=store_url)
    seed(api.store)
    try:
        case_id = api.client.post("/v1/cases", json={"account_id": "biz-1", "reason": "9a"},
                                  headers=api.h("investigator")).json()["case_id"]
        steps = [("investigator", "under_review", {}),
                 ("investigator", "freeze_requested", {}),
                 ("supervisor", "frozen", {}),
                 ("investigator", "release_requested", {}),
                 ("supervisor", "released", {"outcome": "false_positive"})]
        for who, to, extra in steps:
            r = api.client.post(f"/v1/cases/{case_id}/transitions",
                                json={"to": to, "reason": f"lý do: {to}", **extra},
                                headers=api.h(who))
            assert r.status_code == 200, r.text
        assert r.json()["action_published"] is True and r.json()["label_published"] is True
    finally:
        publisher.close()

    actions = _consume(broker.bootstrap, actions_topic, 4)
    assert [m.key for m in actions] == [b"biz-1"] * 4
    values = [json.loads(m.value) for m in actions]
    assert [v["action"] for v in values] == ["freeze_requested", "freeze_approved",
                                             "release_requested", "released"]
    assert [v["actor"] for v in values] == ["investigator", "supervisor", "investigator",
                                            "supervisor"]
    assert values[0]["reason"] == "lý do: freeze_requested"
    assert all(v["case_id"] == case_id and v["account_id"] == "biz-1" for v in values)
    assert all(v["at"].endswith("Z") for v in values)

    labels = _consume(broker.bootstrap, labels_topic, 1)
    assert len(labels) == 1 and labels[0].key == b"biz-1"
    label = decode("labels", labels[0].value)
    assert (label.label, label.source, label.label_id) == ("legit", "investigator",
                                                           f"case-{case_id}")


def test_an_unreachable_broker_is_reported_not_fatal(tmp_path):
    publisher = KafkaActionPublisher({"bootstrap_servers": "127.0.0.1:1",
                                      "bootstrap_timeout_ms": 500,
                                      "max_block_ms": 500}, "x.account.actions")
    t0 = time.monotonic()
    with pytest.raises(PublisherUnavailable):
        publisher.publish_action({"action": "freeze_requested", "account_id": "a"})
    assert time.monotonic() - t0 < 5
    publisher.close()
