"""Shared devices and IPs on the real broker: the device processor (``canhgiac devices``) killed
with -9 mid-stream and restarted ends with exactly the table of an uninterrupted merge; the live
scorer's vectors (device columns included) equal the offline replay when the pipeline keeps up
within the visibility delay."""

from __future__ import annotations

import json
import math
import random
import re
import signal
import subprocess
import sys
import threading
import time
from array import array
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from canhgiac.cmd_score import DirectoryModelProvider
from canhgiac.settings import Settings
from features.devices import DEVICE, IP, Sighting, decode_links, encode_sighting
from features.events import Account, Label, Login, Payment, Rejection
from features.reference import ReferenceData
from features.replay import replay_matrix
from features.vector import DEVICE_NAMES, FEATURE_INDEX
from streaming.devices import SightingPublisher
from streaming.outputs import Outputs
from streaming.scorer import Scorer
from tests.integration.test_scorer_support import (
    ROOT,
    BankData,
    OutputReader,
    committed_offsets,
    create_topics,
    end_offsets,
    produce_events,
    produce_paced,
    produce_reference,
    scorer_env,
    shared_models,
)
from tests.unit.test_devices import brute  # the oracle: earliest sighting per key, account, hour

pytestmark = pytest.mark.integration

T0 = 1_772_330_400.0  # 2026-03-01T02:00:00Z


def read_table(bootstrap: str, topic: str, quiet_s: float = 1.0) -> dict[str, dict]:
    """The table as a reader of the compacted topic sees it: the newest value per key."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      fetch_max_wait_ms=100)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        table: dict[str, dict] = {}
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_s:
            polled = c.poll(timeout_ms=100)
            if polled:
                quiet_since = time.monotonic()
            for records in polled.values():
                for r in records:
                    got = decode_links(r.key, r.value)
                    if isinstance(got, Rejection):
                        continue  # (the scorers dead-letter it)
                    if got.accounts is None:
                        table.pop(got.key, None)
                    else:
                        table[got.key] = {a: list(ts) for a, ts in got.accounts.items()}
        return table
    finally:
        c.close(autocommit=False)


def start_devices(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log = log_path.open("ab")
    return subprocess.Popen([sys.executable, "-m", "canhgiac.cli", "devices"], env=env,
                            cwd=ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL)


def _wait(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_kill_9_mid_stream_and_restart_gives_exactly_the_uninterrupted_table(
        broker, topic_prefix, tmp_path):
    rng = random.Random(5)
    keys = [DEVICE + f"phone-{i}" for i in range(20)] + [IP + f"10.1.0.{i}" for i in range(10)]
    sightings = [Sighting(rng.choice(keys), f"A{rng.randrange(50):03d}",
                          T0 + round(rng.uniform(0, 3 * 86400), 3)) for _ in range(2400)]
    sightings += rng.sample(sightings, 300)  # re-deliveries: merged once
    rng.shuffle(sightings)
    create_topics(broker.bootstrap, topic_prefix)
    topic = topic_prefix + "device.sightings"
    # one good sighting rides in a batch with a bad one: it is merged, the record dead-lettered
    half_bad = Sighting(DEVICE + "phone-half", "A999", T0 + 10.0)
    malformed = [b"{not json", b'{"key":"x:1","account_id":"A","t":1}', b'{"key":"d:p"}',
                 json.dumps({"sightings": [[half_bad.key, half_bad.account_id, half_bad.t],
                                           ["d:p", "A", "yesterday"]]}).encode()]

    def produce(batch: list[Sighting], per_s: float = 0.0) -> None:
        """Every other run of 40 as one sighting per record (the first format), the others as
        the scorers send them: batch records per partition (SightingPublisher)."""
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=0)
        publisher = SightingPublisher(producer, topic)
        t0 = time.monotonic()
        for i, s in enumerate(batch):
            if (i // 40) % 2:
                publisher.add(s)
                if i % 40 == 39:
                    publisher.send()
            else:
                producer.send(topic, key=s.key.encode(), value=encode_sighting(s))
            if per_s:
                delay = t0 + (i + 1) / per_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        publisher.send()
        producer.flush()
        publisher.check()
        producer.close()

    cut = len(sightings) // 3
    produce(sightings[:cut])
    raw = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for value in malformed:
        raw.send(topic, key=half_bad.key.encode(), value=value)
    raw.flush()
    raw.close()
    env = scorer_env(broker.bootstrap, topic_prefix, tmp_path)
    links = topic_prefix + "device.links"
    rest = threading.Thread(target=produce, args=(sightings[cut:], 400.0))
    first = start_devices(env, tmp_path / "devices-1.log")
    try:
        _wait(lambda: len(read_table(broker.bootstrap, links, 0.3)) >= 10, 40, "first table")
        rest.start()
        time.sleep(1.5)
        first.send_signal(signal.SIGKILL)  # mid-stream, nothing committed or flushed on exit
        first.wait(timeout=10)
        assert first.returncode == -signal.SIGKILL
        at_kill = read_table(broker.bootstrap, links, 0.3)
        rest.join()
        expected = brute([*sightings, half_bad])
        assert at_kill != expected, "the kill came too late to test anything"
        second = start_devices(env, tmp_path / "devices-2.log")
        try:
            _wait(lambda: read_table(broker.bootstrap, links, 0.3) == expected, 60,
                  "the table of every sighting")
            ends = end_offsets(broker.bootstrap, topic)
            group = f"{topic_prefix}scorer.devices"
            _wait(lambda: committed_offsets(broker.bootstrap, group, topic) == ends, 20,
                  "the group's offsets at the end")
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0
    finally:
        for proc in (first,):
            if proc.poll() is None:
                proc.kill()
    assert read_table(broker.bootstrap, links) == expected  # still, after a clean stop
    log2 = (tmp_path / "devices-2.log").read_text()
    restored = [int(n) for n in re.findall(r"device partition restored .*?keys=(\d+)", log2)]
    assert restored and sum(restored) > 0, log2[-3000:]  # the state came back from the table
    dlq = OutputReader(broker.bootstrap, topic_prefix + "payments.dlq")
    dlq.wait_raw(len(malformed), timeout_s=10)
    reasons = {dict(r.headers).get("reason", b"").decode() for r in dlq.raw}
    dlq.close()
    assert {r.value for r in dlq.raw} == set(malformed), reasons
    assert all(reasons), reasons
    assert any(r.startswith("1 of 2 sightings rejected; element 1 (t)") for r in reasons), reasons


# ------------------------------------------------------------------ live scorer vs replay
VISIBILITY = 3.0
GAP_S = 8.0  # between groups of events: the pipeline has GAP_S - VISIBILITY to keep up


def _settings(broker, prefix: str) -> Settings:
    return Settings(kafka_bootstrap=broker.bootstrap, topic_prefix=prefix,
                    group_id=f"{prefix}g", max_poll_interval_ms=3000, session_timeout_ms=3000,
                    metrics_port=0, checkpoint_interval_s=0.5, model_poll_interval_s=0.3,
                    batch_size=200, start_from="earliest", fetch_max_wait_ms=100,
                    device_visibility_s=VISIBILITY)


def test_live_device_columns_equal_the_offline_replay(broker, topic_prefix, tmp_path,
                                                      monkeypatch):
    (model, model_dir), _ = shared_models(tmp_path / "models")
    now = datetime.now(UTC)
    ring = [f"R{i}" for i in range(8)]
    accounts = [Account(a, f"c-{a}", "business" if a == "R0" else "personal",
                        now - timedelta(days=400), "VN", 1999,
                        now - timedelta(days=200) if a == "R0" else None)
                for a in [*ring, "W0"]]
    labels = [Label("mule-R1", now - timedelta(days=1), "R1", "mule", source="police")]
    create_topics(broker.bootstrap, topic_prefix)
    produce_reference(broker.bootstrap, topic_prefix, BankData(accounts, [], [], labels, {}))
    bad = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    bad.send(topic_prefix + "device.links", key=b"d:bad", value=b'{"key":"d:bad","accounts":')
    bad.flush()
    bad.close()
    captured: dict[str, tuple[float, ...]] = {}
    emit = Outputs.emit

    def capturing(self, result):  # the real emit, after noting each scored vector
        for sc in result.scored:
            captured[sc.event_id] = sc.vector.values
        return emit(self, result)

    monkeypatch.setattr(Outputs, "emit", capturing)
    scorer = Scorer(_settings(broker, topic_prefix), DirectoryModelProvider(model_dir))
    thread = threading.Thread(target=scorer.run, daemon=True)
    thread.start()
    payments: list[Payment] = []
    logins: list[Login] = []
    try:
        # the pipeline is live once a warm-up login's sighting is in the table
        warm = Login("LW", datetime.now(UTC), "W0", True, "10.8.8.8", "VN", "warm", "mobile")
        logins.append(warm)
        produce_events(broker.bootstrap, topic_prefix, [warm])
        _wait(lambda: "d:warm" in read_table(broker.bootstrap, topic_prefix + "device.links",
                                             0.2), 60, "the device pipeline")
        for g in range(4):
            t = datetime.now(UTC)
            batch: list[Payment | Login] = []
            for k, a in enumerate(ring[2 * g:2 * g + 2] + ["R0"] * (g > 0)):
                ts = t + timedelta(milliseconds=10 * k)
                country = "KH" if a == "R0" and g == 2 else "VN"
                batch.append(Login(f"L{g}{a}", ts, a, True, "10.9.9.9", country, "ring-phone",
                                   "mobile"))
                batch.append(Payment(f"D{g}{a}", ts + timedelta(milliseconds=1), a, "debit",
                                     9_500_000.0, "VND", "CASHOUT", "VCB", "mobile",
                                     ip="10.9.9.9", country=country, device_id="ring-phone"))
                batch.append(Payment(f"C{g}{a}", ts + timedelta(milliseconds=2), a, "credit",
                                     9_600_000.0, "VND", f"VICTIM{g}{k}", "ACB", "mobile"))
            produce_paced(broker.bootstrap, topic_prefix, batch)
            payments += [e for e in batch if isinstance(e, Payment)]
            logins += [e for e in batch if isinstance(e, Login)]
            time.sleep(GAP_S)
        _wait(lambda: len(captured) >= len(payments), 60, "every payment scored")
    finally:
        scorer.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    dlq = OutputReader(broker.bootstrap, topic_prefix + "payments.dlq")
    dlq.wait_raw(1, timeout_s=10)
    dlq.close()
    kinds = {dict(r.headers).get("kind"): dict(r.headers).get("reason") for r in dlq.raw}
    assert kinds.get(b"device.links", b"").startswith(b"not valid JSON"), kinds
    ref = ReferenceData.of(accounts, labels)
    ref.devices.delay_s = VISIBILITY
    x, scored = replay_matrix(payments, logins, ref)
    assert {p.event_id for p in scored} == set(captured)
    for row, p in zip(x, scored, strict=True):
        live = captured[p.event_id]
        differ = [name for name, i in FEATURE_INDEX.items()
                  if not (live[i] == row[i] or (math.isnan(live[i]) and math.isnan(row[i])))]
        assert not differ, (p.event_id, {n: (live[FEATURE_INDEX[n]], row[FEATURE_INDEX[n]])
                                         for n in differ})
    # the columns light up: group 3's payments see the ring's six members of earlier groups
    # (R1 a flagged mule among them), not their own group's (less than the delay before);
    # R0, a business, runs from the shared phone, abroad in group 2
    col = {n: FEATURE_INDEX[n] for n in DEVICE_NAMES}
    d3 = captured["D3R7"]
    assert d3[col["device_accounts_7d"]] == 6.0 and d3[col["ip_accounts_24h"]] == 6.0
    assert d3[col["device_flagged_accounts_7d"]] == 1.0
    assert captured["C3R7"][col["device_accounts_7d"]] == 6.0  # a credit: its login's device
    assert math.isnan(captured["C3R7"][col["ip_accounts_7d"]])  # ... and no IP of its own
    r0 = captured["D3R0"]
    assert r0[col["business_shared_device_7d"]] == 5.0
    assert r0[col["business_shared_device_foreign_7d"]] == 1.0
    assert captured["D1R0"][col["business_shared_device_foreign_7d"]] == 0.0
    assert captured["D0R0"][col["device_accounts_7d"]] == 0.0
    # the beneficiary CASHOUT at VCB: six other ring members paid it before group 3 (capped
    # at 5); nobody visible in group 0; a credit is no transfer to a beneficiary
    for window in ("7d", "90d"):
        name = f"cp_other_payers_{window}"
        assert d3[col[name]] == 5.0
        assert captured["D1R2"][col[name]] == 2.0
        assert captured["D0R1"][col[name]] == 0.0
        assert math.isnan(captured["C3R7"][col[name]])


def test_a_malformed_table_record_is_dead_lettered_once_across_restarts(broker, topic_prefix):
    """Every scorer reads device.links from its start; a malformed record goes to the dead
    letters the first time a reader of the group meets it, not again after a restart (the
    group remembers how far rejects were sent). Another group sends its own."""
    from features.devices import DeviceLinks, encode_links
    from streaming.devices import DeviceTableReader, send_dead_letter

    links_topic, dlq = topic_prefix + "device.links", topic_prefix + "payments.dlq"
    create_topics(broker.bootstrap, topic_prefix)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
    good = encode_links("d:phone-1", {"A1": array("d", [T0])})
    producer.send(links_topic, key=b"d:phone-1", value=good, partition=0)
    producer.send(links_topic, key=b"d:phone-2", value=b"{not json", partition=0)
    producer.flush()
    cfg = {"bootstrap_servers": broker.bootstrap}
    failed: list[BaseException] = []

    def reader(group: str) -> DeviceTableReader:
        r = DeviceTableReader(
            DeviceLinks(), cfg, links_topic, group_id=group,
            dead_letter=lambda raw, rej: send_dead_letter(producer, dlq, raw, rej,
                                                          failed.append))
        assert r.catch_up(timeout_s=20)
        r.close()
        return r

    first, again = reader("g.device-table"), reader("g.device-table")
    other = reader("h.device-table")
    producer.close()
    assert not failed
    assert (first.rejected, first.rejects_seen_before) == (1, 0)
    assert (again.rejected, again.rejects_seen_before) == (1, 1)
    assert (other.rejected, other.rejects_seen_before) == (1, 0)
    dead = OutputReader(broker.bootstrap, dlq)
    dead.wait_raw(2, timeout_s=10)
    time.sleep(1.0)
    dead.read(timeout_ms=500)
    dead.close()
    assert [r.key for r in dead.raw] == [b"d:phone-2", b"d:phone-2"]  # first and other
