"""The case-store projection against the real broker and a real SQLite store: `sink --once`,
idempotent restart after kill -9, dead letters, a held write lock, stalled partitions, several
sinks in one group."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import select

from canhgiac.settings import Settings
from features.events import Account, Login, encode
from models.model_info import ModelInfo
from models.scored import ScoredPayment, ScoreReason
from serving import tables as T
from serving.projection import Projection
from serving.store import CaseStore
from streaming.topics import ensure_topics
from tests.conftest import FAST_GROUP

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BASE = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
TOPICS = ("payments.scored", "logins", "accounts", "model.info", "payments.dlq")


def scored(i: int, n_accounts: int = 40) -> ScoredPayment:
    score = (i * 37 % 100) / 100
    return ScoredPayment(
        event_id=f"p-{i}", account_id=f"acc-{i % n_accounts}",
        ts=BASE + timedelta(seconds=i), score=score,
        decision="hold" if score >= 0.8 else "review" if score >= 0.5 else "allow",
        reasons=(ScoreReason("distinct_senders_24h", 3.0, 0.2, "3 người gửi"),)
        if score >= 0.5 else (),
        model_version="7", scored_at=BASE + timedelta(seconds=i, milliseconds=5),
        late=i % 50 == 0, direction="debit" if i % 2 else "credit", amount=1000.0 + i,
        currency="VND", counterparty_account=f"cp-{i % 7}", counterparty_bank="VCB",
        channel="mobile", country="VN", ip="14.160.1.2", device_id="dev-1",
        features={"is_debit": float(i % 2), "distinct_senders_24h": 3.0,
                  "pass_through_24h": None})


def login(i: int, n_accounts: int = 40) -> Login:
    return Login(f"l-{i}", BASE + timedelta(seconds=i), f"acc-{i % n_accounts}", True,
                 "103.9.76.1", "KH" if i % 3 == 0 else "VN", "dev-x", "mobile")


def account(i: int) -> Account:
    return Account(f"acc-{i}", f"cus-{i}", "business" if i % 4 == 0 else "personal",
                   BASE - timedelta(days=300), "VN")


def settings_for(broker, prefix: str, tmp_path: Path, **over) -> Settings:
    values = dict(data_dir=tmp_path, kafka_bootstrap=broker.bootstrap, topic_prefix=prefix,
                  sink_group_id=f"sink-{uuid.uuid4().hex[:8]}", sink_fetch_max_wait_ms=100,
                  max_poll_interval_ms=FAST_GROUP["max_poll_interval_ms"],
                  session_timeout_ms=FAST_GROUP["session_timeout_ms"],
                  sink_busy_timeout_ms=200, sink_metrics_port=0, sink_batch_size=200)
    values.update(over)
    return Settings(**values)


def produce(broker, prefix: str, n_scored: int, *, extra_scored: list[bytes] = (),
            n_logins: int = 60, n_accounts: int = 40, partitions: int = 4) -> None:
    ensure_topics(broker.bootstrap, [prefix + t for t in TOPICS], partitions=partitions)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20,
                             batch_size=256 * 1024)
    try:
        for i in range(n_accounts):
            a = account(i)
            producer.send(prefix + "accounts", key=a.account_id.encode(), value=encode(a))
        for i in range(n_logins):
            lg = login(i, n_accounts)
            producer.send(prefix + "logins", key=lg.account_id.encode(), value=encode(lg))
        for i in range(n_scored):
            sp = scored(i, n_accounts)
            producer.send(prefix + "payments.scored", key=sp.account_id.encode(),
                          value=sp.to_json())
        for raw in extra_scored:
            producer.send(prefix + "payments.scored", key=b"acc-1", value=raw)
        info = ModelInfo("7", BASE, {"test_roc_auc": 0.93}, {"review": 0.5, "hold": 0.8})
        producer.send(prefix + "model.info", key=b"7", value=info.to_json())
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)


def content(url: str) -> dict[str, list]:
    """Everything the projection writes, without the wall-clock ``updated_at`` columns."""
    store = CaseStore(url)
    out: dict[str, list] = {}
    try:
        with store.read() as conn:
            for table in (T.scored, T.logins, T.accounts, T.account_risk, T.model_info):
                cols = [c for c in table.c if c.name != "updated_at" or table is T.model_info]
                key = list(table.primary_key.columns)[0]
                out[table.name] = [tuple(r) for r in conn.execute(select(*cols).order_by(key))]
    finally:
        store.close()
    return out


def count(url: str, table) -> int:
    """Rows of a table, read without writing (a CaseStore would write its meta rows)."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)
    try:
        return conn.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0]  # noqa: S608
    finally:
        conn.close()


def cli_env(s: Settings) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "CANHGIAC_DATA_DIR": str(s.data_dir),
            "CANHGIAC_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
            "CANHGIAC_TOPIC_PREFIX": s.topic_prefix, "CANHGIAC_SINK_GROUP_ID": s.sink_group_id,
            "CANHGIAC_SINK_FETCH_MAX_WAIT_MS": "100", "CANHGIAC_SINK_BATCH_SIZE": "200",
            "CANHGIAC_MAX_POLL_INTERVAL_MS": "3000", "CANHGIAC_SESSION_TIMEOUT_MS": "3000",
            "CANHGIAC_SINK_METRICS_PORT": "0"}


def sink_once(s: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canhgiac.cli", "--log-level", "WARNING",
                           "sink", "--once"], env=cli_env(s), capture_output=True, text=True,
                          timeout=120, check=False)


def dead_letters(broker, topic: str, n: int, timeout_s: float = 20.0) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             fetch_max_wait_ms=100)
    got: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < n and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=300).values():
                got.extend(recs)
    finally:
        consumer.close()
    return got


def test_sink_once_writes_everything_and_dead_letters_bad_records(broker, topic_prefix,
                                                                   tmp_path):
    bad_json = b'{"event_id": "x", "score": '
    bad_score = scored(9999).to_json().replace(b'"score":0.63', b'"score":2.5')
    assert bad_score != scored(9999).to_json()
    produce(broker, topic_prefix, 300, extra_scored=[bad_json, bad_score])
    s = settings_for(broker, topic_prefix, tmp_path)

    done = sink_once(s)
    assert done.returncode == 0, done.stderr
    assert "caught up: 403 records read, 401 written, 2 dead-lettered" in done.stdout, done.stdout
    url = s.store_url
    assert count(url, T.scored) == 300 and count(url, T.logins) == 60
    assert count(url, T.accounts) == 40 and count(url, T.account_risk) == 40
    store = CaseStore(url)
    try:
        info = store.model_info()
        assert info is not None and info["version"] == "7"
        assert info["thresholds"] == {"review": 0.5, "hold": 0.8}
        with store.read() as conn:
            row = conn.execute(select(T.scored).where(T.scored.c.event_id == "p-7")).one()
        sp = scored(7)
        assert (row.amount, row.direction, row.country, row.score) == (
            sp.amount, sp.direction, sp.country, sp.score)
    finally:
        store.close()

    dlq = dead_letters(broker, topic_prefix + "payments.dlq", 2)
    assert sorted(r.value for r in dlq) == sorted([bad_json, bad_score])
    reasons = {dict(r.headers)["field"]: dict(r.headers)["reason"].decode() for r in dlq}
    assert set(reasons) == {b"", b"score"} and "0..1" in reasons[b"score"]
    assert {dict(r.headers)["kind"] for r in dlq} == {b"payments.scored"}

    before = content(url)
    again = sink_once(s)  # the group's offsets were committed: nothing left to read
    assert again.returncode == 0 and "caught up: 0 records read" in again.stdout
    assert content(url) == before


def test_kill_and_restart_gives_the_same_store(broker, topic_prefix, tmp_path):
    produce(broker, topic_prefix, 4000, n_logins=400)
    # reference: one uninterrupted catch-up in its own group and store
    ref = settings_for(broker, topic_prefix, tmp_path / "ref")
    projection = Projection(ref, CaseStore(ref.store_url))
    result = projection.catch_up()
    projection.store.close()
    assert result.written == 4000 + 400 + 40 + 1 and result.dead_letters == 0

    s = settings_for(broker, topic_prefix, tmp_path / "killed", sink_batch_size=100)
    env = cli_env(s) | {"CANHGIAC_SINK_BATCH_SIZE": "100"}
    proc = subprocess.Popen([sys.executable, "-m", "canhgiac.cli", "--log-level", "WARNING",
                             "sink"], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        written = 0
        while time.monotonic() < deadline and written < 500:
            time.sleep(0.2)
            if (tmp_path / "killed" / "cases.db").exists():
                try:
                    written = count(s.store_url, T.scored)
                except Exception:  # noqa: BLE001 - the schema may not be created yet
                    written = 0
        assert 0 < written < 4000, written  # killed in the middle
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    done = sink_once(s)
    assert done.returncode == 0, done.stderr
    assert content(s.store_url) == content(ref.store_url)


def test_a_held_write_lock_is_retried_then_written(broker, topic_prefix, tmp_path, caplog):
    produce(broker, topic_prefix, 200)
    s = settings_for(broker, topic_prefix, tmp_path)
    projection = Projection(s, CaseStore(s.store_url, busy_timeout_ms=s.sink_busy_timeout_ms))
    lock = sqlite3.connect(tmp_path / "cases.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # a real writer holding the lock
    result: list = []
    caplog.set_level(logging.WARNING, logger="serving.projection")
    worker = threading.Thread(target=lambda: result.append(projection.catch_up()))
    worker.start()
    time.sleep(4.0)
    assert worker.is_alive() and count(s.store_url, T.scored) == 0
    assert projection.metrics.store_up._value.get() == 0  # noqa: SLF001
    assert projection.status.snapshot().state == "store_unavailable"
    lock.execute("COMMIT")
    lock.close()
    worker.join(timeout=60)
    projection.store.close()
    assert not worker.is_alive() and result and result[0].written == 200 + 60 + 40 + 1
    assert count(s.store_url, T.scored) == 200
    errors = projection.metrics.store_errors.labels(error="OperationalError")._value.get()  # noqa: SLF001
    assert errors >= 3  # several attempts during the 4 s
    assert projection.metrics.store_up._value.get() == 1  # noqa: SLF001
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("not writable" in m for m in warnings) == 1  # one warning, not one per retry
    assert sum("writable again" in m for m in warnings) == 1


def test_a_stalled_partition_is_reported_and_fetched_again(broker, topic_prefix, tmp_path):
    produce(broker, topic_prefix, 50, n_logins=0, n_accounts=5, partitions=1)
    s = settings_for(broker, topic_prefix, tmp_path, sink_stall_timeout_s=0.5)
    projection = Projection(s, CaseStore(s.store_url))
    tp = TopicPartition(topic_prefix + "payments.scored", 0)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=s.sink_group_id,
                             enable_auto_commit=False, fetch_max_wait_ms=100)
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        consumer.pause(tp)  # a fetch that returns nothing while records wait
        assert consumer.poll(timeout_ms=300) == {}
        projection._watch(consumer, {tp})  # noqa: SLF001 - first look: position noted
        time.sleep(0.6)
        assert consumer.poll(timeout_ms=300) == {}
        projection._watch(consumer, {tp})  # noqa: SLF001 - not moved for 0.6 s: stalled
        stalls = projection.metrics.stalls.labels(topic=tp.topic, partition="0")
        assert stalls._value.get() == 1  # noqa: SLF001
        # records wait (the bundled broker's ListOffsets counts the newest batch as 1 record)
        assert projection.status.snapshot().lag >= 1
        got = 0
        deadline = time.monotonic() + 20
        while got < 50 and time.monotonic() < deadline:
            got += sum(len(r) for r in consumer.poll(timeout_ms=300).values())
        assert got == 50  # the fetch was re-established
    finally:
        consumer.close()
        projection.store.close()


def test_two_sinks_in_one_group_share_the_partitions(broker, topic_prefix, tmp_path):
    s = settings_for(broker, topic_prefix, tmp_path)
    ensure_topics(broker.bootstrap, [topic_prefix + t for t in TOPICS], partitions=4)
    sinks = [Projection(s, CaseStore(s.store_url, busy_timeout_ms=s.sink_busy_timeout_ms))
             for _ in range(2)]
    for p in sinks:
        p.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(p.assigned for p in sinks):
            time.sleep(0.2)
        assert all(p.assigned for p in sinks), [p.assigned for p in sinks]
        produce(broker, topic_prefix, 800, n_logins=0)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and count(s.store_url, T.scored) < 800:
            time.sleep(0.2)
        assert count(s.store_url, T.scored) == 800
        assert all(p.written > 0 for p in sinks), [p.written for p in sinks]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(p.status.snapshot().lag for p in sinks):
            time.sleep(0.2)
        assert [p.status.snapshot().lag for p in sinks] == [0, 0]
    finally:
        for p in sinks:
            p.stop()
        for p in sinks:
            p.join(15)
            p.store.close()


def test_a_model_published_by_a_scorer_reaches_the_store(broker, topic_prefix, tmp_path):
    from canhgiac.model_info import ModelInfoProducer, ensure_model_info_topic

    s = settings_for(broker, topic_prefix, tmp_path)
    ensure_model_info_topic(s)
    producer = ModelInfoProducer(s)
    try:
        producer.set_model_info("3", {"test_average_precision": 0.4, "note": "x"},
                                {"review": 0.3, "hold": 0.7})
        producer.set_model_info("4", {"test_average_precision": 0.5},
                                {"review": 0.35, "hold": 0.75})
    finally:
        producer.close()
    projection = Projection(s, CaseStore(s.store_url))
    try:
        assert projection.catch_up().written in (1, 2)  # one per batch: its newest
        info = projection.store.model_info()
    finally:
        projection.store.close()
    assert info["version"] == "4" and info["metrics"] == {"test_average_precision": 0.5}
    assert info["thresholds"] == {"review": 0.35, "hold": 0.75}


def test_the_sink_runs_without_metrics_when_its_port_is_taken(tmp_path, caplog):
    import socket

    from canhgiac.cmd_sink import _serve_metrics
    from serving.projection_status import ProjectionMetrics

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        s = Settings(data_dir=tmp_path, sink_metrics_port=taken.getsockname()[1])
        caplog.set_level(logging.WARNING)
        _serve_metrics(s, ProjectionMetrics().registry)  # no exception
    assert any("metrics port unavailable" in r.getMessage() for r in caplog.records)


def test_sink_says_in_one_line_when_the_store_cannot_be_opened(tmp_path, monkeypatch, capsys):
    from canhgiac.cli import main
    from canhgiac.cmd_sink import _safe

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    monkeypatch.setenv("CANHGIAC_CASE_STORE_URL", f"sqlite:///{blocker}/cases.db")
    assert main(["sink", "--once"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("canhgiac sink: error: cannot open the case store")
    assert "secret" not in _safe("postgresql+psycopg://u:secret@db:5432/cases")
