"""``canhgiac serve --workers 2`` against a real broker and a real SQLite case store: the two
worker processes both retry the outbox in the background, and every waiting action reaches
``account.actions`` exactly once, in order per account (issue 14, item 5: safe with several
API workers)."""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict

import pytest

from serving.store import CaseStore
from streaming.broker import free_port
from streaming.topics import ensure_topics
from tests.integration.test_api_cli import _started_workers, start_serve_workers
from tests.integration.test_outbox import consume, enqueue

pytestmark = pytest.mark.integration


def test_two_serve_workers_deliver_each_waiting_action_once(broker, topic_prefix, tmp_path):
    topic = topic_prefix + "account.actions"
    ensure_topics(broker.bootstrap, [topic], partitions=2)
    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    n = 120
    for i in range(n):  # waiting before the server starts: both workers find them at once
        enqueue(store, f"acc-{i % 12}", i)
    port = free_port()
    env = {**os.environ, "CANHGIAC_KAFKA_BOOTSTRAP": broker.bootstrap,
           "CANHGIAC_TOPIC_PREFIX": topic_prefix, "CANHGIAC_DATA_DIR": str(tmp_path)}
    env.pop("CANHGIAC_CASE_STORE_URL", None)
    log_path = tmp_path / "serve.log"
    proc = start_serve_workers(port, env, log_path)
    try:
        assert _started_workers(log_path, proc, 60) == 2, log_path.read_text()
        for i in range(n, n + 60):  # and more arrive while both workers deliver
            enqueue(store, f"acc-{i % 12}", i)
            time.sleep(0.05)
        deadline = time.monotonic() + 60
        while store.pending_outbox(10) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store.pending_outbox(10) == [], log_path.read_text()[-3000:]
    finally:
        proc.terminate()
        proc.wait(60)
        store.close()
    values = [json.loads(r.value) for r in consume(broker.bootstrap, topic, n + 60)]
    ids = [v["action_id"] for v in values]
    assert len(ids) == n + 60 and len(set(ids)) == n + 60  # all sent, none twice
    assert sorted(v["seq"] for v in values) == list(range(n + 60))
    per_account: dict[str, list[int]] = defaultdict(list)
    for v in values:  # one partition per account: topic order is send order
        per_account[v["account_id"]].append(v["seq"])
    assert all(seqs == sorted(seqs) for seqs in per_account.values())
    assert "Traceback" not in log_path.read_text()
