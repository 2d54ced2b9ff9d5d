"""The scorer against the real broker and a real (tiny) LightGBM model, in-process:
end-to-end scores equal the offline replay, dead letters for every kind of malformed event,
hot model reload mid-stream."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from canhgiac.cmd_score import DirectoryModelProvider
from canhgiac.settings import Settings
from features.events import Payment
from features.replay import event_order_key
from streaming.scorer import Scorer
from tests.integration.test_scorer_support import (
    PARTITIONS,
    OutputReader,
    committed_offsets,
    create_topics,
    end_offsets,
    expected_scores,
    make_bank,
    produce_events,
    produce_paced,
    produce_reference,
    shared_bank,
    shared_models,
)

pytestmark = pytest.mark.integration

VALID = {"event_id": "BAD-0", "ts": "2026-01-06T10:00:00+07:00", "account_id": "A00001",
         "direction": "debit", "amount": 100000, "currency": "VND",
         "counterparty_account": "CP1", "counterparty_bank": "VCB", "channel": "mobile"}


def _json(**overrides: object) -> bytes:
    doc = {**VALID, **overrides}
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


MALFORMED = {  # name -> (topic, raw bytes, expected field)
    "bad_json": ("payments", b'{"event_id": "x", ', ""),
    "missing_field": ("payments", _json(amount=None), "amount"),
    "no_timezone": ("payments", _json(ts="2026-01-06T10:00:00"), "ts"),
    "bad_timestamp": ("payments", _json(ts="yesterday at noon"), "ts"),
    "negative_amount": ("payments", _json(amount=-5), "amount"),
    "unknown_currency": ("payments", _json(currency="XYZ"), "currency"),
    "duplicate_key": ("payments", b'{"event_id":"a","event_id":"b","ts":"2026-01-06T10:00:00Z"}',
                      "event_id"),
    "not_utf8": ("payments", b'\xff\xfe{"a":1}', ""),
    "bad_login": ("logins", b'{"event_id":"L","ts":"2026-01-06T10:00:00Z","account_id":"A1",'
                            b'"success":true,"ip":"1.2.3.4","country":"ZZ","device_id":"d",'
                            b'"channel":"mobile"}', "country"),
    "bad_account": ("accounts", b'{"account_id":"A1","customer_id":"C","type":"alien",'
                                b'"opened_at":"2020-01-01T00:00:00Z","kyc_country":"VN"}', "type"),
    # a number past the standard parser's integer-digit limit (it raised ValueError and stopped
    # the scorer, which met it again on every restart)
    "huge_number": ("payments", _json(amount=None)[:-1] + b',"amount":' + b"9" * 5000 + b"}",
                    ""),
    "lone_surrogate": ("payments", _json(event_id=None)[:-1] + b',"event_id":"\\ud800"}', ""),
    # local time labelled Z: 7 h ahead of its record's produce time
    "local_time_labelled_z": ("payments", _json(
        event_id="LOCAL-Z", ts=(datetime.now(UTC) + timedelta(hours=7)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")), "ts"),
}
# payments dated 2099 on busy accounts of every partition, produced half-way through the stream:
# each goes to the dead letters, and every real payment is still scored as without them
FUTURE_ACCOUNTS = [f"A{i:05d}" for i in range(12)]
FUTURE = {f"from_2099_{a}": ("payments", _json(event_id=f"FUT-{a}", account_id=a,
                                               ts="2099-01-01T00:00:00+07:00"), "ts")
          for a in FUTURE_ACCOUNTS}


def _settings(broker, prefix: str, **kw) -> Settings:
    base = dict(kafka_bootstrap=broker.bootstrap, topic_prefix=prefix, group_id=f"{prefix}g",
                max_poll_interval_ms=3000, session_timeout_ms=3000, metrics_port=0,
                checkpoint_interval_s=0.5, model_poll_interval_s=0.3, batch_size=200,
                start_from="earliest", fetch_max_wait_ms=100)
    base.update(kw)
    return Settings(**base)


def _bank_on_broker(broker, topic_prefix: str, **bank):
    """A small simulated bank (``make_bank(**bank)``) on fresh topics: reference data, then
    every payment and login."""
    data = make_bank(**bank)
    create_topics(broker.bootstrap, topic_prefix)
    produce_reference(broker.bootstrap, topic_prefix, data)
    produce_events(broker.bootstrap, topic_prefix, data.events())
    return data


class _Running:
    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.thread = threading.Thread(target=scorer.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.scorer.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return shared_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def e2e(broker, models, tmp_path_factory):
    """One scorer run over the shared bank plus one malformed record of every kind."""
    from kafka import KafkaProducer

    prefix = f"e2e{os.getpid()}."
    data = shared_bank()
    from kafka.partitioner.default import murmur2

    (model, model_dir), _ = models
    create_topics(broker.bootstrap, prefix)
    produce_reference(broker.bootstrap, prefix, data)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for topic, raw, _field in MALFORMED.values():
        producer.send(prefix + topic, key=b"A00001", value=raw)
    producer.flush()
    events = sorted(data.events(), key=event_order_key)
    half = len(events) // 2
    produce_events(broker.bootstrap, prefix, events[:half], producer)
    for topic, raw, _field in FUTURE.values():
        producer.send(prefix + topic, key=orjson.loads(raw)["account_id"].encode(), value=raw)
    produce_events(broker.bootstrap, prefix, events[half:], producer)
    producer.close()
    parts = {(murmur2(a.encode()) & 0x7FFFFFFF) % PARTITIONS for a in FUTURE_ACCOUNTS}
    assert parts == set(range(PARTITIONS)), "the 2099 payments must reach every partition"
    scorer = Scorer(_settings(broker, prefix), DirectoryModelProvider(model_dir))
    started = time.monotonic()
    running = _Running(scorer)
    scored = OutputReader(broker.bootstrap, prefix + "payments.scored")
    scored.wait_for(len(data.payments), timeout_s=60)
    alerts = OutputReader(broker.bootstrap, prefix + "alerts")
    dlq = OutputReader(broker.bootstrap, prefix + "payments.dlq")
    dlq.wait_raw(len(MALFORMED) + len(FUTURE), timeout_s=20)
    running.stop()
    run_s = time.monotonic() - started
    alerts.read(timeout_ms=1000)
    yield {"data": data, "model": model, "scored": scored, "alerts": alerts, "dlq": dlq,
           "scorer": scorer, "prefix": prefix, "run_s": run_s}
    for r in (scored, alerts, dlq):
        r.close()


def test_every_payment_is_scored_exactly_as_the_offline_replay(e2e):
    data, model, scored = e2e["data"], e2e["model"], e2e["scored"]
    expected = expected_scores(data, model)
    assert set(scored.last) == set(expected)
    assert {k: v["score"] for k, v in scored.last.items()} == expected
    assert len(scored.records) == len(expected)  # uninterrupted: each exactly once
    for rec in scored.records:
        assert rec["model_version"] == model.version
        assert rec["decision"] in ("allow", "review", "hold")
        assert isinstance(rec["reasons"], list)
        assert rec["scored_at"].endswith("Z") and rec["ts"]
    assert any(rec["reasons"] for rec in scored.records)


def test_scorer_to_projection_to_api(e2e, broker, tmp_path):
    """End to end as the service runs: the scorer's payments.scored → the case-store
    projection (its own consumer group) → the investigators' API. The store gets each scored
    payment once with the score sent to Kafka, every login and account; each account's peak is
    its highest score of the last 7 days; the API ranks the accounts by it, faded with
    inactivity."""
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from serving import tables as T
    from serving.app import create_app
    from serving.projection import Projection
    from serving.reads import RiskFilter
    from serving.risk import WINDOW_S
    from serving.store import CaseStore

    settings = Settings(data_dir=tmp_path, kafka_bootstrap=broker.bootstrap,
                        topic_prefix=e2e["prefix"], sink_group_id=f"{e2e['prefix']}sink",
                        sink_fetch_max_wait_ms=100, max_poll_interval_ms=3000,
                        session_timeout_ms=3000, sink_metrics_port=0)
    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    caught = Projection(settings, store).catch_up()
    scored, data = e2e["scored"], e2e["data"]
    assert caught.written >= len(data.payments)
    with store.read() as conn:
        rows = {r.event_id: r for r in conn.execute(
            select(T.scored.c.event_id, T.scored.c.account_id, T.scored.c.score,
                   T.scored.c.event_t))}
        n_logins = conn.execute(select(func.count()).select_from(T.logins)).scalar_one()
        n_accounts = conn.execute(select(func.count()).select_from(T.accounts)).scalar_one()
    assert set(rows) == {p.event_id for p in data.payments}
    assert all(rows[e].score == rec["score"] for e, rec in scored.last.items())
    assert n_logins == len(data.logins)
    assert n_accounts == len(data.accounts)
    expected: dict[str, float] = {}
    last_t: dict[str, float] = {}
    for r in rows.values():
        last_t[r.account_id] = max(last_t.get(r.account_id, float("-inf")), r.event_t)
    for r in rows.values():
        if r.event_t > last_t[r.account_id] - WINDOW_S:
            expected[r.account_id] = max(expected.get(r.account_id, -1.0), r.score)
    ranked = store.high_risk(RiskFilter(), None, limit=len(expected) + 10)
    # the API rounds scores to 6 decimals; the ranked (current) risk fades with inactivity
    assert {a["account_id"]: a["peak_score"] for a in ranked} == pytest.approx(expected,
                                                                               abs=5.1e-7)
    current = [a["score"] for a in ranked]
    assert current == sorted(current, reverse=True)
    assert all(a["score"] <= a["peak_score"] for a in ranked)
    key = store.create_key("viewer-1", "viewer")[1]
    with TestClient(create_app(settings, store=store)) as client:
        r = client.get("/v1/accounts/high-risk", params={"limit": 20, "min_score": 0},
                       headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    top = [a["account_id"] for a in r.json()["items"]]
    assert top == [a["account_id"] for a in ranked[:20]]
    store.close()


def test_alerts_are_the_review_and_hold_subset(e2e):
    flagged = {k for k, v in e2e["scored"].last.items() if v["decision"] != "allow"}
    assert flagged, "the toy model should flag some payments"
    assert set(e2e["alerts"].last) == flagged
    for r in e2e["alerts"].raw:  # keyed by account_id
        assert r.key.decode() == orjson.loads(r.value)["account_id"]


def test_outputs_are_in_the_partition_their_key_hashes_to(e2e):
    """The scorer writes each record to its input payment's partition instead of hashing the
    key; the inputs here were keyed with kafka-python's default (murmur2), so every output must
    sit where murmur2 puts its key (as it did when the scorer hashed keys itself)."""
    from kafka.partitioner.default import murmur2  # what the Java client's default uses too

    for reader in (e2e["scored"], e2e["alerts"]):
        assert reader.raw
        parts = sorted(reader.consumer.partitions_for_topic(reader.raw[0].topic))
        assert len(parts) > 1
        for r in reader.raw:
            assert r.partition == parts[(murmur2(r.key) & 0x7FFFFFFF) % len(parts)], r.key


@pytest.mark.parametrize("name", sorted(MALFORMED) + sorted(FUTURE))
def test_each_malformed_event_goes_to_the_dead_letter_topic(e2e, name):
    topic, raw, field = {**MALFORMED, **FUTURE}[name]
    hits = [r for r in e2e["dlq"].raw if r.value == raw]
    assert len(hits) == 1, f"{name}: {len(hits)} dead letters"
    headers = {k: v.decode() for k, v in hits[0].headers}
    assert headers["source_topic"].endswith("." + topic)
    assert headers["field"] == field
    assert headers["reason"]
    if name.startswith("from_2099") or name == "local_time_labelled_z":
        assert headers["reason"].startswith("from the future"), headers["reason"]
    if name == "huge_number":
        assert "digit" in headers["reason"] or "limit" in headers["reason"], headers["reason"]
    assert int(headers["source_offset"]) >= 0 and int(headers["source_partition"]) >= 0


def test_metrics_count_what_happened(e2e):
    reg = e2e["scorer"].metrics.registry
    assert reg.get_sample_value("canhgiac_scorer_events_total",
                                {"kind": "payments", "outcome": "scored"}) == len(
        e2e["data"].payments)
    dead = sum(reg.get_sample_value("canhgiac_scorer_dead_letters_total", {"kind": k}) or 0
               for k in ("payments", "logins", "accounts", "labels"))
    assert dead == len(MALFORMED) + len(FUTURE)
    assert reg.get_sample_value("canhgiac_scorer_events_total", {
        "kind": "payments_or_logins", "outcome": "future"}) == len(FUTURE) + 1  # + local Z
    assert reg.get_sample_value("canhgiac_scorer_checkpoints_total") >= 1
    assert reg.get_sample_value("canhgiac_scorer_end_to_end_seconds_count") == len(
        e2e["data"].payments)
    # every batch with payments waits for the reference tables' log-end answer, so the
    # payments released by it count that wait; whether any payment is still held for its logins
    # after a release depends on how the polls batch the log. The total is bounded by the
    # payments times the run's length.
    held = {why: reg.get_sample_value("canhgiac_scorer_held_payment_seconds_total",
                                      {"waiting_for": why}) for why in ("logins", "reference")}
    assert held["reference"] is not None and held["reference"] > 0
    assert held["logins"] is not None and held["logins"] >= 0
    assert sum(held.values()) < len(e2e["data"].payments) * e2e["run_s"]


def test_hot_reload_swaps_the_model_between_batches(broker, models, tmp_path):
    (m1, dir1), (m2, dir2) = models
    data = make_bank(n_accounts=100, n_payments=800, seed=5, prefix="H")
    prefix = f"hot{os.getpid()}."
    create_topics(broker.bootstrap, prefix)
    produce_reference(broker.bootstrap, prefix, data)
    current = tmp_path / "current"
    current.symlink_to(dir1)
    events = data.events()
    half = len(events) // 2
    first, second = events[:half], events[half:]
    n_first = sum(isinstance(e, Payment) for e in first)
    produce_events(broker.bootstrap, prefix, first)
    running = _Running(Scorer(_settings(broker, prefix), DirectoryModelProvider(current)))
    reader = OutputReader(broker.bootstrap, prefix + "payments.scored")
    try:
        reader.wait_for(n_first, timeout_s=40)
        assert len(reader.last) == n_first
        tmp_link = tmp_path / "next"
        tmp_link.symlink_to(dir2)
        os.replace(tmp_link, current)  # atomic roll-out of the new version
        producer_thread = threading.Thread(
            target=produce_paced, args=(broker.bootstrap, prefix, second, 400.0))
        producer_thread.start()
        producer_thread.join()
        reader.wait_for(len(data.payments), timeout_s=40)
    finally:
        running.stop()
        reader.close()
    versions = [r["model_version"] for r in reader.records]
    assert set(versions) == {m1.version, m2.version}
    # one swap, between batches: versions form v1...v1 v2...v2 per partition stream
    assert len(reader.records) == len(data.payments)  # nothing lost, nothing twice
    assert set(reader.last) == {p.event_id for p in data.payments}
    exp1, exp2 = expected_scores(data, m1), expected_scores(data, m2)
    for rec in reader.records:
        exp = exp1 if rec["model_version"] == m1.version else exp2
        assert rec["score"] == exp[rec["event_id"]]
    first_ids = {e.event_id for e in first if isinstance(e, Payment)}
    assert all(reader.last[i]["model_version"] == m1.version for i in first_ids)
    assert any(r["model_version"] == m2.version for r in reader.records)


def test_payments_wait_for_account_profiles_produced_before_them(broker, models, tmp_path):
    """The scorer starts on empty topics; the bank's platform then produces the account
    profiles and, right after, the payments. The reference reader's last fetch is older than
    those payments, so only a fresh log-end check keeps them from being scored as unknown
    accounts (``is_business`` nan, stored as null), and every score must equal the offline
    replay that knows every profile."""
    (model, model_dir), _ = models
    data = make_bank(n_accounts=120, n_payments=600, seed=21, prefix="P")
    prefix = f"fresh{os.getpid()}."
    create_topics(broker.bootstrap, prefix)
    running = _Running(Scorer(_settings(broker, prefix), DirectoryModelProvider(model_dir)))
    reader = OutputReader(broker.bootstrap, prefix + "payments.scored")
    try:
        registry = running.scorer.metrics.registry
        deadline = time.monotonic() + 30
        while (registry.get_sample_value("canhgiac_scorer_partitions") or 0) < PARTITIONS:
            assert time.monotonic() < deadline, "the scorer got no partitions"
            time.sleep(0.1)
        produce_reference(broker.bootstrap, prefix, data)
        # produced while the scorer reads: in log order, or a later login of an account can
        # be applied before its payment (hours apart here, so beyond the lateness)
        produce_paced(broker.bootstrap, prefix, data.events())
        reader.wait_for(len(data.payments), timeout_s=60)
    finally:
        running.stop()
        reader.close()
    features = [r["features"] for r in reader.last.values()]
    assert len(features) == len(data.payments)
    assert [f["is_business"] for f in features if f["is_business"] is None] == []
    assert not [k for k, v in reader.last.items() if v["late"]]
    expected = expected_scores(data, model)
    assert {e: r["score"] for e, r in reader.last.items()} == expected


@pytest.mark.slow
def test_broker_unavailable_is_retried_with_backoff_and_logged(models, caplog):
    from streaming.broker import free_port

    (_m, model_dir), _ = models
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}", topic_prefix="down.",
                        metrics_port=0)
    scorer = Scorer(settings, DirectoryModelProvider(model_dir))
    caplog.set_level("ERROR", logger="streaming.scorer")
    running = _Running(scorer)

    def attempts():
        return [r for r in caplog.records if "retrying" in r.getMessage()]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not attempts():
        time.sleep(0.1)
    t0 = time.monotonic()
    running.stop()  # interrupts the backoff wait at once
    assert time.monotonic() - t0 < 5
    assert attempts() and attempts()[0].retry_in_s == 0.5
    assert "error" in attempts()[0].__dict__


def test_an_idle_scorer_does_not_write_its_state_again(broker, models, tmp_path):
    """Due checkpoint rounds skip partitions with nothing applied since their newest durable
    checkpoint (an idle scorer used to write its whole state every interval); a malformed
    label that arrives meanwhile is dead-lettered and its position still committed by such a
    round; a partition that gets a payment is written again, and every partition's newest
    checkpoint still resumes exactly where its input ends."""
    from dataclasses import replace

    from kafka import KafkaProducer

    from streaming.checkpoint import CHECKPOINT_TOPIC, CheckpointStore

    (_, model_dir), _ = models
    prefix = f"idle{os.getpid()}."
    data = _bank_on_broker(broker, prefix, n_accounts=40, n_payments=300, seed=9, prefix="I")
    scorer = Scorer(_settings(broker, prefix, checkpoint_interval_s=0.2),
                    DirectoryModelProvider(model_dir))
    reg = scorer.metrics.registry

    def count(name: str) -> float:
        return reg.get_sample_value(f"canhgiac_scorer_{name}_total") or 0.0

    def wait_unchanged(more: float) -> None:
        deadline = time.monotonic() + 30
        target = count("checkpoints_unchanged") + more
        while count("checkpoints_unchanged") < target:
            assert time.monotonic() < deadline, "no unchanged checkpoint round"
            time.sleep(0.05)

    running = _Running(scorer)
    reader = OutputReader(broker.bootstrap, prefix + "payments.scored")
    try:
        reader.wait_for(len(data.payments), timeout_s=40)
        wait_unchanged(2 * PARTITIONS)  # idle now: whole rounds found nothing to write
        written = count("checkpoints")
        assert written >= PARTITIONS
        wait_unchanged(3 * PARTITIONS)
        assert count("checkpoints") == written  # three idle rounds wrote nothing

        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        producer.send(prefix + "labels", key=b"A1", value=b"{not a label", partition=0)
        producer.flush()
        labels_end = end_offsets(broker.bootstrap, prefix + "labels")
        deadline = time.monotonic() + 30
        while committed_offsets(broker.bootstrap, f"{prefix}g.reference",
                                prefix + "labels")[0] != labels_end[0]:
            assert time.monotonic() < deadline, "the reject's position was never committed"
            time.sleep(0.2)
        assert count("checkpoints") == written  # committed by a round that wrote no state

        last = max(data.payments, key=lambda p: p.t)
        late = replace(last, event_id="IDLE-NEW-1", ts=last.ts + timedelta(minutes=1))
        produce_events(broker.bootstrap, prefix, [late], producer)
        producer.close()
        reader.wait_for(len(data.payments) + 1, timeout_s=30)
        wait_unchanged(2 * PARTITIONS)
        # the partition that got the payment, once (twice if a round was under way)
        assert 1 <= count("checkpoints") - written <= 2

        store = CheckpointStore(prefix + CHECKPOINT_TOPIC, producer=None,  # type: ignore[arg-type]
                                client_config={"bootstrap_servers": broker.bootstrap},
                                group=f"{prefix}g")
        restored = store.restore(list(range(PARTITIONS)))
        store.close()
    finally:
        running.stop()
        reader.close()
    ends = end_offsets(broker.bootstrap, prefix + "payments")
    # every partition's newest checkpoint (written before the idle rounds, or after the new
    # payment) resumes right after the last payment of its partition
    assert {p: c.payments_offset for p, c in restored.items()} == ends


def test_a_payment_later_than_the_lateness_is_scored_marked_and_counted(broker, models):
    """A payment dated a day behind its account's clock still gets a decision: scored on the
    account's current state, ``late: true`` in its output, and counted in the metric."""
    from dataclasses import replace

    (_, model_dir), _ = models
    prefix = f"late{os.getpid()}."
    data = _bank_on_broker(broker, prefix, n_accounts=30, n_payments=200, seed=12, prefix="L")
    scorer = Scorer(_settings(broker, prefix), DirectoryModelProvider(model_dir))
    running = _Running(scorer)
    reader = OutputReader(broker.bootstrap, prefix + "payments.scored")
    try:
        reader.wait_for(len(data.payments), timeout_s=40)
        last = max(data.payments, key=lambda p: p.t)
        late = replace(last, event_id="LATE-BY-A-DAY", ts=last.ts - timedelta(days=1))
        produce_events(broker.bootstrap, prefix, [late])
        reader.wait_for(len(data.payments) + 1, timeout_s=30)
    finally:
        running.stop()
        reader.close()
    # read once the loop has stopped: the count is raised after the output is sent
    late_count = scorer.metrics.registry.get_sample_value(
        "canhgiac_scorer_events_total", {"kind": "payments", "outcome": "late"})
    assert reader.last["LATE-BY-A-DAY"]["late"] is True
    assert not any(v["late"] for k, v in reader.last.items() if k != "LATE-BY-A-DAY")
    assert late_count == 1


def test_an_unreachable_model_registry_is_retried_and_logged_never_a_crash(
        broker, tmp_path, monkeypatch, caplog):
    """The MLflow tracking server is down when the scorer starts: it says so in one line per
    attempt, retries with backoff instead of exiting, and still stops cleanly when asked."""
    import logging

    from canhgiac.cmd_score import RegistryModelProvider
    from streaming.broker import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    closed = f"http://127.0.0.1:{free_port('127.0.0.1')}"  # nothing listens there
    settings = _settings(broker, f"noreg{os.getpid()}.", data_dir=tmp_path,
                         mlflow_tracking_uri=closed)
    scorer = Scorer(settings, RegistryModelProvider(settings, settings.model_uri))
    with caplog.at_level(logging.ERROR, logger="streaming.scorer"):
        running = _Running(scorer)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(
                [r for r in caplog.records if "cannot load the model" in r.getMessage()]) < 2:
            time.sleep(0.1)
        assert running.thread.is_alive()  # retrying, not exited
        t0 = time.monotonic()
        running.stop()
        assert time.monotonic() - t0 < 10
    failures = [r for r in caplog.records if "cannot load the model" in r.getMessage()]
    assert len(failures) >= 2, [r.getMessage() for r in caplog.records]
    assert all(getattr(r, "retry_in_s", 0) > 0 for r in failures)
    assert scorer.model is None and scorer.scored_total == 0
