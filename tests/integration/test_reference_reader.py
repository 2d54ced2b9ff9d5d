"""The scorer's reader of the global tables (``labels``, ``accounts``) against the real broker:
it applies every record, says "caught up" only once everything up to the high-water marks is
applied, notices records produced later, and sends malformed ones to the dead letters."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaProducer

from features.engine import ReferenceData
from features.events import Label, encode
from streaming.reference import ReferenceReader
from tests.integration.test_scorer_support import START, create_topics, make_bank, produce_reference

pytestmark = pytest.mark.integration


def _poll_until(reader: ReferenceReader, done, dead: list, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _accounts, rejected = reader.poll(timeout_ms=100)
        dead += rejected
        if done():
            return
    raise AssertionError("the reference reader did not get there in time")


def test_reader_applies_everything_and_tracks_new_records(broker):
    prefix = f"ref{os.getpid()}."
    data = make_bank(n_accounts=50, n_payments=10, seed=9, prefix="R")
    create_topics(broker.bootstrap, prefix)
    produce_reference(broker.bootstrap, prefix, data)
    ref = ReferenceData()
    reader = ReferenceReader(ref, {"labels": prefix + "labels", "accounts": prefix + "accounts"},
                             {"bootstrap_servers": broker.bootstrap}, fetch_max_wait_ms=20)
    try:
        assert not reader.caught_up()  # nothing applied yet, records exist
        dead: list = []
        _poll_until(reader, reader.caught_up, dead)
        assert dead == []
        assert reader.accounts == len(data.accounts) and ref.n_accounts() == len(data.accounts)
        assert reader.labels == len(data.labels)

        # later records: a label (with one malformed record) produced after catching up
        late = Label(label_id="late-1", confirmed_at=START + timedelta(days=1),
                     account_id="R00007", label="mule")
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        producer.send(prefix + "labels", key=b"R00007", value=encode(late))
        producer.send(prefix + "labels", key=b"R00008", value=b'{"label_id": "broken"}')
        producer.flush()
        producer.close()
        _poll_until(reader, lambda: reader.labels == len(data.labels) + 1 and len(dead) == 1
                    and reader.caught_up(), dead)
        t = late.t + 1
        assert ref.counterparty_risk("R00007", t)[0] == 1.0
        assert ref.counterparty_risk("R00007", late.t - 1) == (0.0, 0.0, 0.0)
        assert [d.record.value for d in dead] == [b'{"label_id": "broken"}']
        assert dead[0].record.kind == "labels"
    finally:
        reader.close()


def test_a_reject_is_dead_lettered_once_not_on_every_start(broker):
    """The tables are read from the start on every start; a malformed record goes to the dead
    letters the first time only (the group remembers how far rejects were sent), and a record
    that arrives after that is sent once too."""
    prefix = f"refonce{os.getpid()}."
    data = make_bank(n_accounts=20, n_payments=10, seed=4, prefix="Q")
    create_topics(broker.bootstrap, prefix)
    produce_reference(broker.bootstrap, prefix, data)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    producer.send(prefix + "labels", key=b"Q1", value=b'{"label_id": "broken-1"}')
    producer.send(prefix + "accounts", key=b"Q2", value=b'\xff not json')
    producer.flush()
    topics = {"labels": prefix + "labels", "accounts": prefix + "accounts"}
    cfg = {"bootstrap_servers": broker.bootstrap}

    def start_once(extra: bytes | None = None) -> tuple[list, ReferenceReader]:
        if extra is not None:
            producer.send(prefix + "labels", key=b"Q3", value=extra)
            producer.flush()
        reader = ReferenceReader(ReferenceData(), topics, cfg, fetch_max_wait_ms=100,
                                 group_id=f"{prefix}scorer.reference")
        dead: list = []
        _poll_until(reader, reader.caught_up, dead)
        reader.poll(timeout_ms=300)
        return dead, reader

    dead, reader = start_once()
    assert sorted(d.record.value for d in dead) == sorted(
        [b"\xff not json", b'{"label_id": "broken-1"}'])
    assert reader.accounts == len(data.accounts)
    reader.commit_dead_lettered()  # the scorer calls it once the dead letters are durable
    reader.close()
    dead, reader = start_once(extra=b'{"label_id": "broken-2"}')
    assert [d.record.value for d in dead] == [b'{"label_id": "broken-2"}']
    assert reader.rejects_seen_before == 2
    assert reader.accounts == len(data.accounts)  # the tables are complete again
    reader.close()  # not committed: a crash before the dead letters were durable
    dead, reader = start_once()
    assert [d.record.value for d in dead] == [b'{"label_id": "broken-2"}']
    reader.close()
    producer.close()


def test_a_watch_list_loaded_from_csv_reaches_the_scorers_reference_data(broker, tmp_path,
                                                                           monkeypatch, capsys):
    """`canhgiac watchlist load FILE` puts the valid rows on the compacted watchlist topic and
    reports the rejected ones (exit 1); the scorer's reference reader applies the entries, so a
    payment to a listed account sees it listed from its listing time."""
    from canhgiac.cli import main

    prefix = f"watch{os.getpid()}."
    create_topics(broker.bootstrap, prefix)
    csv_file = tmp_path / "simo.csv"
    csv_file.write_text(
        "bank,account,source,listed_at,reason\n"
        "VCB,0071000123456,SIMO,2026-03-12T09:00:00+07:00,receiving scam money\n"
        "TCB,19035557770,police,not a time,impersonation\n"
        "ACB,88001,SIMO,2026-03-13T10:00:00Z,rented account\n", encoding="utf-8")
    monkeypatch.setenv("CANHGIAC_KAFKA_BOOTSTRAP", broker.bootstrap)
    monkeypatch.setenv("CANHGIAC_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("CANHGIAC_DATA_DIR", str(tmp_path))
    assert main(["watchlist", "load", str(csv_file)]) == 1
    out, err = capsys.readouterr()
    assert "2 entries loaded" in out and "1 rows rejected" in out
    assert f"{csv_file}:3: column 'listed_at'" in err
    ref = ReferenceData()
    reader = ReferenceReader(ref, {k: prefix + k for k in ("labels", "accounts", "watchlist")},
                             {"bootstrap_servers": broker.bootstrap}, fetch_max_wait_ms=100)
    try:
        _poll_until(reader, lambda: reader.watch_entries == 2 and reader.caught_up(), [])
    finally:
        reader.close()
    listed = datetime(2026, 3, 12, 2, 0, tzinfo=UTC).timestamp()
    entry = ref.watch_entry("0071000123456", listed + 60)
    assert entry is not None and entry.source == "SIMO"
    assert ref.watch_entry("0071000123456", listed - 60) is None  # not before its listing
    assert ref.is_flagged("88001", datetime(2026, 3, 14, tzinfo=UTC).timestamp())


def test_confirmed_payments_are_a_global_table_and_bad_records_dead_letters(broker):
    """Every scorer reads the published confirmed payments: a record reaches the reference data
    (the beneficiary has received confirmed fraud from its payment time on), a record that
    breaks the contract — arbitrary bytes included — goes to the dead letters, never raises."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from features.events import ConfirmedPayment, Rejection, decode

    prefix = f"refcp{os.getpid()}."
    create_topics(broker.bootstrap, prefix)
    record = ConfirmedPayment("LB-9", START + timedelta(days=2), "fraud", "VICTIM", "MULE-9",
                              event_id="P9", amount=7e6, paid_at=START)
    garbage: list[bytes] = []

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=200))
    def collect(raw: bytes) -> None:
        if isinstance(decode("confirmed_payments", raw), Rejection):
            garbage.append(raw)

    collect()
    bad = [b'{"label_id": "LB-x", "label": "legit"}', *garbage[:10]]
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    producer.send(prefix + "confirmed_payments", key=b"LB-9", value=encode(record))
    for i, raw in enumerate(bad):
        producer.send(prefix + "confirmed_payments", key=f"bad-{i}".encode(), value=raw)
    producer.flush()
    producer.close()
    ref = ReferenceData()
    reader = ReferenceReader(ref, {"confirmed_payments": prefix + "confirmed_payments"},
                             {"bootstrap_servers": broker.bootstrap}, fetch_max_wait_ms=100)
    try:
        dead: list = []
        _poll_until(reader, reader.caught_up, dead)
        assert reader.confirmed == 1 and ref.confirmed_payments() == [record]
        t = (START + timedelta(days=3)).timestamp()
        assert ref.fraud_history("MULE-9", t)[4:6] == (1.0, 7e6)
        assert ref.fraud_history("MULE-9", START.timestamp() + 86400)[4] == 0.0  # not yet
        assert sorted(d.record.value for d in dead) == sorted(bad)
        assert {d.record.kind for d in dead} == {"confirmed_payments"}
    finally:
        reader.close()
