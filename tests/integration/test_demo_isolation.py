"""The demo never touches a production deployment: with an external Kafka it refuses topics
of its prefix that already hold data, before simulating anything."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from kafka import KafkaProducer

from canhgiac.cmd_demo import TOPIC_PREFIX
from streaming.topics import ensure_topics

pytestmark = [pytest.mark.integration]


def test_external_kafka_refuses_demo_topics_that_hold_data(broker, tmp_path):
    topic = TOPIC_PREFIX + "payments"
    ensure_topics(broker.bootstrap, [topic])
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send(topic, b"{}").get(timeout=30)
    producer.close()
    env = {**os.environ, "CANHGIAC_KAFKA_BOOTSTRAP": broker.bootstrap,
           "CANHGIAC_DATA_DIR": str(tmp_path / "production")}
    proc = subprocess.run(
        [sys.executable, "-m", "canhgiac.cli", "demo", "--external-kafka",
         "--data-dir", str(tmp_path / "demo")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{topic}" in proc.stderr and "--reuse-topics" in proc.stderr
    assert not (tmp_path / "demo" / "demo").exists()  # nothing simulated
    assert not (tmp_path / "production").exists()


def test_empty_or_missing_demo_topics_are_accepted(broker, topic_prefix):
    from canhgiac.cmd_demo import refuse_used_topics
    from canhgiac.settings import Settings

    settings = Settings(kafka_bootstrap=broker.bootstrap, topic_prefix=topic_prefix)
    refuse_used_topics(settings)  # none exist
    ensure_topics(broker.bootstrap, [topic_prefix + "payments", topic_prefix + "logins"])
    refuse_used_topics(settings)  # they exist, empty
