"""Investigator decisions while the bank's Kafka is down (issue 14, item 5).

``python -m bench.outbox``: a real ``canhgiac serve`` process (SQLite case store, its
projection and its outbox running) whose Kafka bootstrap points at a bundled broker that was
started, given its topics, and then stopped: the bank's Kafka has gone down. ``--cases`` cases
each go through the three decisions of a freeze (under review, freeze requested, frozen by a
second person); every decision is timed from the client. Target: every decision answered within
1 s (the outbox publishes later), and every one of them committed and queued in the outbox.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

from bench.api import free_port, wait_healthy
from bench.common import emit
from serving.store import CaseStore
from streaming.broker import Broker
from streaming.topics import ALL_TOPICS, ensure_topics
from tests.integration.test_api_support import BASE, account, scored


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=30)
    args = ap.parse_args(argv)
    data = Path(tempfile.mkdtemp(prefix="cg-bench-outbox-"))
    url = f"sqlite:///{data / 'cases.db'}"
    store = CaseStore(url)
    ids = [f"acc-{i:04d}" for i in range(args.cases)]
    store.upsert_accounts([account(a, "business") for a in ids])
    store.write_scored([scored(f"e-{a}", a, 0.9, BASE + timedelta(minutes=i))
                        for i, a in enumerate(ids)])
    keys = {"investigator": store.create_key("inv", "investigator", user="an")[1],
            "supervisor": store.create_key("sup", "supervisor", user="binh")[1]}
    store.close()

    broker = Broker(log_path=data / "tansu.log").start()
    bootstrap = broker.bootstrap
    ensure_topics(bootstrap, list(ALL_TOPICS), partitions=1)
    broker.stop()  # the bank's Kafka goes down before the server starts
    port = free_port()
    env = {**os.environ, "CANHGIAC_DATA_DIR": str(data), "CANHGIAC_CASE_STORE_URL": url,
           "CANHGIAC_KAFKA_BOOTSTRAP": bootstrap}
    server = subprocess.Popen(
        [sys.executable, "-m", "canhgiac.cli", "--log-level", "WARNING", "serve",
         "--host", "127.0.0.1", "--port", str(port)], env=env)
    times: list[float] = []
    failed = 0
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(port, timeout_s=60)
        with httpx.Client(base_url=base, timeout=30) as client:
            def h(who: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {keys[who]}"}

            for a in ids:
                r = client.post("/v1/cases", json={"account_id": a, "reason": "9a"},
                                headers=h("investigator"))
                r.raise_for_status()
                case_id = r.json()["case_id"]
                for who, to in (("investigator", "under_review"),
                                ("investigator", "freeze_requested"), ("supervisor", "frozen")):
                    t0 = time.perf_counter()
                    r = client.post(f"/v1/cases/{case_id}/transitions",
                                    json={"to": to, "reason": f"{who}: {to}"}, headers=h(who))
                    times.append(time.perf_counter() - t0)
                    if r.status_code != 200 or r.json()["case"]["status"] != to:
                        failed += 1
    finally:
        server.terminate()
        server.wait(30)
    store = CaseStore(url)
    queued = len(store.pending_outbox(10 * args.cases))
    store.close()
    ms = sorted(t * 1000 for t in times)
    print(f"{len(ms)} decisions with Kafka down: p50 {statistics.median(ms):.1f} ms, "
          f"max {ms[-1]:.1f} ms; {failed} not answered 200 with the new status; "
          f"{queued} actions waiting in the outbox", flush=True)
    emit("outbox", "decision_ms_p50_kafka_down", round(statistics.median(ms), 1), "info", True)
    emit("outbox", "decision_ms_max_kafka_down", round(ms[-1], 1), "<=1000", ms[-1] <= 1000)
    emit("outbox", "decisions_failed_kafka_down", failed, "0", failed == 0)
    # two of the three decisions publish an account action (freeze requested, freeze approved)
    emit("outbox", "actions_queued_for_later", queued, f"={2 * args.cases}",
         queued == 2 * args.cases)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
