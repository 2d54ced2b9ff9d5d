"""The projection's input boundary: any bytes on any of its topics decode to an item or a
dead letter / counted rejection, and what decodes is written into a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from canhgiac.settings import Settings
from serving.projection import INPUTS, Projection
from serving.stall import StallWatch
from serving.store import CaseStore


@pytest.fixture(scope="module")
def projection(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proj")
    s = Settings(data_dir=tmp, topic_prefix="p.")
    p = Projection(s, CaseStore(s.store_url))
    yield p
    p.store.close()


def _record(topic: str, offset: int, value: bytes | None,
            timestamp: int = 0) -> ConsumerRecord:
    return ConsumerRecord(topic=topic, partition=0, leader_epoch=-1, offset=offset,
                          timestamp=timestamp, timestamp_type=0, key=b"k", value=value, headers=[],
                          checksum=None, serialized_key_size=1,
                          serialized_value_size=len(value or b""), serialized_header_size=-1)


VALID = {
    "payments.scored": b'{"event_id":"e1","account_id":"a1","ts":"2026-03-01T09:00:00Z",'
                       b'"score":0.5,"decision":"review","reasons":[],"model_version":"1",'
                       b'"scored_at":"2026-03-01T09:00:01Z","payment":{"direction":"debit",'
                       b'"amount":10,"currency":"VND","counterparty_account":"c",'
                       b'"counterparty_bank":"VCB","channel":"atm"},"features":{}}',
    "logins": b'{"event_id":"l1","ts":"2026-03-01T09:00:00Z","account_id":"a1",'
              b'"success":true,"ip":"1.2.3.4","country":"KH","device_id":"d","channel":"mobile"}',
    "accounts": b'{"account_id":"a1","customer_id":"c1","type":"personal",'
                b'"opened_at":"2020-01-01T00:00:00Z","kyc_country":"VN"}',
    "model.info": b'{"version":"1","loaded_at":"2026-03-01T09:00:00Z"}',
}


def _mutations() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=400),
        st.tuples(st.sampled_from(sorted(VALID.values())), st.integers(0, 400),
                  st.binary(max_size=12)).map(lambda t: t[0][:t[1]] + t[2] + t[0][t[1]:]),
        st.sampled_from(sorted(VALID.values())).map(
            lambda v: v.replace(b'"1"', b"1" + b"9" * 5000).replace(b"0.5", b"1e400")),
    )


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.tuples(st.sampled_from(INPUTS), _mutations() | st.none()),
                       max_size=8))
def test_any_bytes_decode_and_write_without_raising(projection, values):
    polled: dict[TopicPartition, list[ConsumerRecord]] = {}
    for i, (kind, raw) in enumerate(values):
        tp = TopicPartition("p." + kind, 0)
        polled.setdefault(tp, []).append(_record(tp.topic, i, raw))
    batch = projection.decode(polled)
    n = sum(len(v) for v in polled.values())
    dead = len(batch.dead_letters) + sum(batch.rejected.values())
    infos = sum(1 for k, _ in values if k == "model.info")
    assert batch.items() + dead == n or (infos > 1 and batch.items() + dead < n)
    assert all(d.reason for d in batch.dead_letters)
    projection._write(batch)  # noqa: SLF001 - the store accepts whatever decoded


def test_valid_records_decode_to_their_items(projection):
    polled = {TopicPartition("p." + k, 0): [_record("p." + k, 5, v)] for k, v in VALID.items()}
    batch = projection.decode(polled)
    assert (len(batch.scored), len(batch.logins), len(batch.accounts)) == (1, 1, 1)
    assert batch.model_info is not None and not batch.dead_letters
    assert set(batch.offsets.values()) == {6}


def test_a_login_from_the_future_is_kept_out_of_the_store(projection):
    tp = TopicPartition("p.logins", 0)
    t_2026 = int(datetime(2026, 3, 1, 9, 0, tzinfo=UTC).timestamp() * 1000)
    future = VALID["logins"].replace(b"2026-03-01T09:00:00Z", b"2099-01-01T00:00:00Z")
    skewed = VALID["logins"].replace(b"09:00:00Z", b"09:06:00Z")  # 6 min ahead
    ok = VALID["logins"].replace(b"09:00:00Z", b"09:04:00Z")  # within 5 min
    batch = projection.decode({tp: [_record(tp.topic, 0, future, t_2026),
                                    _record(tp.topic, 1, skewed, t_2026),
                                    _record(tp.topic, 2, ok, t_2026),
                                    _record(tp.topic, 3, future, 0)]})  # no timestamp: now
    assert batch.rejected["logins"] == 3 and len(batch.logins) == 1


def test_stall_watch():
    w = StallWatch(timeout_s=10)
    t0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert w.observe("p0", 5, 10, t0) is None
    assert w.observe("p0", 5, 12, t0 + 9) is None  # not yet
    stall = w.observe("p0", 5, 15, t0 + 10)
    assert stall is not None and (stall.end_then, stall.end) == (10, 15)
    assert w.observe("p0", 5, 15, t0 + 11) is None  # reported once per timeout
    assert w.observe("p1", 3, 3, t0) is None and w.observe("p1", 3, 3, t0 + 99) is None  # idle
    assert w.observe("p2", 1, 9, t0) is None and w.observe("p2", 2, 9, t0 + 99) is None  # moves
    w.retain({"p1"})
    assert w.observe("p0", 5, 20, t0 + 30) is None  # forgotten: starts over
