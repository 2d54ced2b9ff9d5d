"""What every benchmark prints: one ``RESULT`` line per figure, parsed by ``bench.run_all``."""

from __future__ import annotations

import time
from typing import Any


def emit(bench: str, figure: str, measured: float | int, target: str, met: bool) -> dict[str, Any]:
    """Print ``RESULT <bench> <figure> <measured> <target> <met|not met>`` and return it."""
    status = "met" if met else "not met"
    print(f"RESULT {bench} {figure} {measured} {target} {status}", flush=True)
    return {"bench": bench, "figure": figure, "measured": measured, "target": target,
            "status": status}


def raw_consume_rate(bootstrap: str, topic: str, n: int, partitions: int,
                     fetch_max_wait_ms: int = 100, timeout_s: float = 300.0) -> float:
    """kafka-python's raw consume rate of ``n`` records of ``topic`` (records/s, decode-free,
    from its first record): the yardstick the scorer's and the projection's rates are
    divided by."""
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      fetch_max_wait_ms=fetch_max_wait_ms)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    got, t0 = 0, None
    deadline = time.monotonic() + timeout_s
    while got < n and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=100, max_records=500).values():
            if t0 is None:
                t0 = time.perf_counter()
            got += len(recs)
    elapsed = time.perf_counter() - (t0 or time.perf_counter())
    c.close(autocommit=False)
    return got / elapsed
