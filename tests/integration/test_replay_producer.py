"""streaming.replay and `canhgiac replay` against the real broker: every event arrives once,
keyed by account, decodable, in event-time order per account; pacing holds the rate."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest
from kafka import KafkaConsumer

from canhgiac.cli import main
from features.events import decode
from streaming.replay import produce_events
from streaming.topics import ensure_topics
from tests.conftest import FAST_GROUP
from training.datadir import from_tables, ordered_events, read_dir, write_dir
from training.simulator import SimConfig, simulate

pytestmark = pytest.mark.integration
KINDS = ("payments", "logins", "accounts", "labels")


@pytest.fixture(scope="module")
def data():
    return from_tables(simulate(SimConfig(accounts=60, days=2, seed=4, fraud_rate=0.01)))


def _consume(bootstrap, topics, expected, group):
    consumer = KafkaConsumer(*topics.values(), bootstrap_servers=bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             **FAST_GROUP)
    kind_of = {t: k for k, t in topics.items()}
    got = defaultdict(list)
    deadline = time.monotonic() + 60
    try:
        while sum(map(len, got.values())) < expected and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=300).items():
                for r in records:
                    got[kind_of[tp.topic]].append((tp.partition, r.offset, r.key, r.value))
    finally:
        consumer.close()
    return got


def test_every_event_arrives_once_keyed_by_account_and_decodes(broker, topic_prefix, data):
    topics = {k: f"{topic_prefix}{k}" for k in KINDS}
    ensure_topics(broker.bootstrap, list(topics.values()), partitions=3)
    stats = produce_events({"bootstrap_servers": broker.bootstrap}, ordered_events(data),
                           topics, rate=None)
    counts = {"payments": len(data.payments), "logins": len(data.logins),
              "accounts": len(data.accounts), "labels": len(data.labels)}
    assert stats.sent == counts and stats.failed == 0
    got = _consume(broker.bootstrap, topics, sum(counts.values()), f"{topic_prefix}g")
    assert {k: len(v) for k, v in got.items()} == counts
    originals = {"payments": {p.event_id: p for p in data.payments},
                 "logins": {x.event_id: x for x in data.logins},
                 "accounts": {a.account_id: a for a in data.accounts},
                 "labels": {lb.label_id: lb for lb in data.labels}}
    for kind, records in got.items():
        for _part, _off, key, value in records:
            event = decode(kind, value)
            ident = getattr(event, {"accounts": "account_id", "labels": "label_id"}.get(
                kind, "event_id"))
            assert event == originals[kind][ident]
            assert key == event.account_id.encode()
    # one account's payments and logins share a partition index, and each arrives in time order
    part_of = {}
    for kind in ("payments", "logins"):
        by_account = defaultdict(list)
        for part, _off, key, value in sorted(got[kind], key=lambda r: (r[0], r[1])):
            assert part_of.setdefault(key, part) == part
            by_account[key].append(decode(kind, value).t)
        for times in by_account.values():
            assert times == sorted(times)


def test_rate_paces_payments(broker, topic_prefix, data):
    topics = {"payments": f"{topic_prefix}payments"}
    ensure_topics(broker.bootstrap, list(topics.values()), partitions=1)
    payments = data.payments[:60]
    seen = []
    stats = produce_events({"bootstrap_servers": broker.bootstrap}, payments, topics, rate=100.0,
                           on_progress=seen.append)
    assert stats.sent == {"payments": 60}
    assert 0.55 <= stats.seconds < 5.0
    assert stats.payments_per_s() <= 110
    assert seen  # the final report at least


def test_a_bad_rate_is_refused(data):
    with pytest.raises(ValueError, match="rate"):
        produce_events({"bootstrap_servers": "127.0.0.1:1"}, [], {"payments": "x"}, rate=0)


def test_canhgiac_replay_reads_a_directory_and_creates_the_topics(
    broker, topic_prefix, tmp_path, monkeypatch, capsys,
):
    result = simulate(SimConfig(accounts=50, days=1, seed=2, fraud_rate=0.0))
    path = write_dir(result, tmp_path / "data")
    data = read_dir(path)
    monkeypatch.setenv("CANHGIAC_KAFKA_BOOTSTRAP", broker.bootstrap)
    monkeypatch.setenv("CANHGIAC_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("CANHGIAC_DATA_DIR", str(tmp_path / "state"))
    mid = data.payments[len(data.payments) // 2]
    assert main(["replay", "--data", str(path), "--from", mid.ts.isoformat()]) == 0
    out = capsys.readouterr().out
    later = sum(1 for p in data.payments if p.t >= mid.t)
    assert f"payments {later}" in out
    topics = {k: f"{topic_prefix}{k}" for k in ("payments",)}
    got = _consume(broker.bootstrap, topics, later, f"{topic_prefix}g2")
    assert len(got["payments"]) == later


def test_canhgiac_replay_usage_errors(tmp_path, capsys):
    assert main(["replay", "--data", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["replay", "--data", str(tmp_path), "--from", "2026-01-01T00:00:00"]) == 2
    assert "timezone" in capsys.readouterr().err
    assert main(["replay", "--data", str(tmp_path), "--rate", "0"]) == 2


def test_canhgiac_simulate_kafka_produces_to_the_topics(broker, topic_prefix, tmp_path,
                                                       monkeypatch, capsys):
    monkeypatch.setenv("CANHGIAC_KAFKA_BOOTSTRAP", broker.bootstrap)
    monkeypatch.setenv("CANHGIAC_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("CANHGIAC_DATA_DIR", str(tmp_path / "state"))
    args = ["simulate", "--accounts", "50", "--days", "1", "--seed", "3", "--kafka",
            "--rate", "2000"]
    assert main(args) == 0
    out = capsys.readouterr().out
    expected = simulate(SimConfig(accounts=50, days=1, seed=3)).payments.num_rows
    assert f"payments {expected}" in out
    got = _consume(broker.bootstrap, {"payments": f"{topic_prefix}payments"}, expected,
                   f"{topic_prefix}g3")
    assert len(got["payments"]) == expected
    assert main(["simulate", "--rate", "5", "--out", str(tmp_path / "x")]) == 2
