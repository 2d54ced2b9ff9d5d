"""Confirmed payments live, on the real broker: a label that names only a payment's ``event_id``
is resolved by the scorer that owns the payment's partition, published on the compacted
``confirmed_payments`` topic, and read by every scorer, so payments to the same beneficiary
through another partition (another scorer) carry the received-fraud features, as in replay.
Kill -9 and restarts lose nothing and publish nothing twice."""

from __future__ import annotations

import math
import signal
import threading
import time
from datetime import timedelta

import pytest
from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.partitioner.default import murmur2

from canhgiac.cmd_score import DirectoryModelProvider
from canhgiac.settings import Settings
from features.events import Account, ConfirmedPayment, Label, Payment, decode, encode
from features.reference import confirmed_payment
from features.replay import reference_for, replay_matrix
from features.vector import FEATURE_INDEX
from models.scored import STORE_FEATURES
from streaming.checkpoint import parse_manifest
from streaming.scorer import Scorer
from streaming.topics import new_topics, topic_configs
from tests.integration.test_scorer_support import (
    START,
    OutputReader,
    create_topics,
    produce_events,
    scorer_env,
    shared_models,
    start_scorer,
    stop_scorer,
)

pytestmark = pytest.mark.integration
PARTS = 2


def _partition(account: str) -> int:
    return (murmur2(account.encode()) & 0x7FFFFFFF) % PARTS


def _accounts_in(partition: int, prefix: str, n: int) -> list[str]:
    out = [f"{prefix}{i}" for i in range(200) if _partition(f"{prefix}{i}") == partition]
    return out[:n]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    (m, d), _ = shared_models(tmp_path_factory.mktemp("models"))
    return m, d


def _world() -> tuple[list[Account], Payment, Label, list[Payment]]:
    """Victim V (partition 0) pays MULE; the label names only that payment; then B1, B2
    (partition 1) pay MULE two days later."""
    victim = _accounts_in(0, "V", 1)[0]
    payers = _accounts_in(1, "B", 2)
    accounts = [Account(a, f"C{a}", "personal", START - timedelta(days=400), "VN",
                        birth_year=1980) for a in (victim, *payers)]
    scam = Payment("PV1", START + timedelta(hours=1), victim, "debit", 45_000_000.0, "VND",
                   "MULE-77", "ACB", "mobile")
    label = Label("LB-1", START + timedelta(days=1), victim, "fraud", event_id="PV1",
                  source="police")
    later = [Payment(f"PB{i}", START + timedelta(days=2, minutes=i), payers[i % 2], "debit",
                     20_000_000.0, "VND", "MULE-77", "ACB", "mobile") for i in range(6)]
    return accounts, scam, label, later


def _expected(accounts, payments, labels, model) -> dict[str, tuple[float, dict]]:
    x, order = replay_matrix(payments, [], reference_for(accounts, labels, payments))
    scores = model.score(x)
    return {p.event_id: (float(s), {n: _stored(row[FEATURE_INDEX[n]]) for n in STORE_FEATURES})
            for p, s, row in zip(order, scores, x, strict=True)}


def _stored(value: float) -> float | None:
    return None if math.isnan(value) else float(value)  # payments.scored writes NaN as null


def _produce(bootstrap: str, topic: str, key: str, value: bytes) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(topic, key=key.encode(), value=value).get(timeout=30)
    producer.close()


def _settings(broker, prefix: str) -> Settings:
    return Settings(kafka_bootstrap=broker.bootstrap, topic_prefix=prefix, group_id=f"{prefix}g",
                    max_poll_interval_ms=3000, session_timeout_ms=3000, metrics_port=0,
                    checkpoint_interval_s=0.5, model_poll_interval_s=5, batch_size=200,
                    start_from="earliest", fetch_max_wait_ms=100)


class _Running:
    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.thread = threading.Thread(target=scorer.run, daemon=True)
        self.thread.start()

    def value(self, name: str, **labels: str) -> float:
        return self.scorer.metrics.registry.get_sample_value(name, labels) or 0.0

    def stop(self) -> None:
        self.scorer.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def _wait(cond, timeout_s: float, what: str, *readers: OutputReader) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        for reader in readers:
            reader.read(timeout_ms=100)
        if not readers:
            time.sleep(0.05)


def _records(reader: OutputReader) -> list[tuple[bytes, ConfirmedPayment]]:
    out = []
    for r in reader.raw:
        record = decode("confirmed_payments", r.value)
        assert isinstance(record, ConfirmedPayment), record
        out.append((r.key, record))
    return out


def test_the_topic_is_created_compacted(broker, topic_prefix):
    [spec] = new_topics([topic_prefix + "confirmed_payments"], PARTS, 1, topic_prefix)
    assert spec.topic_configs == {"cleanup.policy": "compact"}
    assert topic_configs(topic_prefix + "confirmed_payments", topic_prefix) == {
        "cleanup.policy": "compact"}
    create_topics(broker.bootstrap, topic_prefix, partitions=PARTS)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        name = topic_prefix + "confirmed_payments"
        assert name in admin.list_topics()
        responses = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        text = repr(responses)
        if "cleanup.policy" in text:  # the bundled broker may not report topic configs
            assert "compact" in text, text
    finally:
        admin.close()


def test_a_label_with_only_an_event_id_reaches_payments_of_another_partition(
        broker, topic_prefix, model):
    m, model_dir = model
    accounts, scam, label, later = _world()
    prefix = topic_prefix
    create_topics(broker.bootstrap, prefix, partitions=PARTS)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for a in accounts:
        producer.send(prefix + "accounts", key=a.account_id.encode(), value=encode(a))
    producer.flush()
    producer.close()
    scorers = [_Running(Scorer(_settings(broker, prefix), DirectoryModelProvider(model_dir)))
               for _ in range(2)]
    scored = OutputReader(broker.bootstrap, prefix + "payments.scored")
    confirmed = OutputReader(broker.bootstrap, prefix + "confirmed_payments")
    try:
        _wait(lambda: [s.value("canhgiac_scorer_partitions") for s in scorers] == [1.0, 1.0],
              60, "one partition per scorer")
        produce_events(broker.bootstrap, prefix, [scam])
        _wait(lambda: "PV1" in scored.last, 30, "the victim's payment scored", scored)
        _produce(broker.bootstrap, prefix + "labels", label.account_id, encode(label))
        _wait(lambda: confirmed.raw, 30, "the confirmed payment published", confirmed)
        produce_events(broker.bootstrap, prefix, later)
        _wait(lambda: all(p.event_id in scored.last for p in later), 30,
              "the later payments scored", scored)
        published = [s.value("canhgiac_scorer_confirmed_published_total") for s in scorers]
    finally:
        for s in scorers:
            s.stop()
        confirmed.read(timeout_ms=500)
        scored.close()
        confirmed.close()
    # the scorer owning the victim's partition published it, once, keyed by the label id
    assert sorted(published) == [0.0, 1.0], published
    [(key, record)] = _records(confirmed)
    assert key == b"LB-1" and record == confirmed_payment(label, scam)
    assert (record.receiver_account, record.amount) == ("MULE-77", 45_000_000.0)
    # the other partition's payments to MULE-77 see it, exactly as replay does
    expected = _expected(accounts, [scam, *later], [label], m)
    without = _expected(accounts, [scam, *later], [], m)
    for p in later:
        rec = scored.last[p.event_id]
        assert rec["features"]["cp_flagged"] == 1.0
        assert without[p.event_id][1]["cp_flagged"] == 0.0  # (the label is what flags it)
        assert (rec["score"], rec["features"]) == expected[p.event_id], p.event_id
    assert scored.last["PV1"]["score"] == expected["PV1"][0]


def test_kill_9_before_the_record_and_restarts_publish_it_once(broker, topic_prefix, model,
                                                               tmp_path):
    """The label arrives while the scorer is down (killed with -9 after its payment was
    checkpointed): the restarted scorer resolves it from its restored state; a second restart
    reads the record back and publishes nothing again."""
    _, model_dir = model
    accounts, scam, label, later = _world()
    prefix = topic_prefix
    create_topics(broker.bootstrap, prefix, partitions=PARTS)
    for a in accounts:
        _produce(broker.bootstrap, prefix + "accounts", a.account_id, encode(a))
    env = scorer_env(broker.bootstrap, prefix, tmp_path, checkpoint_interval_s=0.3)
    scored = OutputReader(broker.bootstrap, prefix + "payments.scored")
    confirmed = OutputReader(broker.bootstrap, prefix + "confirmed_payments")
    checkpoints = None
    procs = []
    try:
        procs.append(start_scorer(env, model_dir, tmp_path / "s1.log"))
        produce_events(broker.bootstrap, prefix, [scam])
        _wait(lambda: "PV1" in scored.last, 60, "the victim's payment scored", scored)
        checkpoints = OutputReader(broker.bootstrap, prefix + "scorer.checkpoints")
        group = f"{prefix}scorer"

        def after_pv1() -> bool:  # PV1 is the only payment: a manifest past offset 0
            return any((m := parse_manifest(r.key, r.value, group)) is not None
                       and (m["payments_offset"] or 0) >= 1 for r in checkpoints.raw)

        _wait(after_pv1, 30, "a checkpoint after it", checkpoints)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(timeout=10)
        _produce(broker.bootstrap, prefix + "labels", label.account_id, encode(label))
        procs.append(start_scorer(env, model_dir, tmp_path / "s2.log"))
        _wait(lambda: confirmed.raw, 60, "the record published after the restart", confirmed)
        assert stop_scorer(procs[1]) == 0
        procs.append(start_scorer(env, model_dir, tmp_path / "s3.log"))
        produce_events(broker.bootstrap, prefix, later)
        _wait(lambda: all(p.event_id in scored.last for p in later), 60,
              "the later payments scored", scored)
        assert stop_scorer(procs[2]) == 0
        confirmed.read(timeout_ms=1000)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
        for reader in (scored, checkpoints, confirmed):
            if reader is not None:
                reader.close()
    assert "start=checkpoint" in (tmp_path / "s2.log").read_text()
    assert _records(confirmed) == [(b"LB-1", confirmed_payment(label, scam))]
    assert all(scored.last[p.event_id]["features"]["cp_flagged"] == 1.0 for p in later)

