"""Restore cost against the number of checkpoints written (issue 14, item 3).

``python -m bench.restore``: on the bundled broker (fresh topic per case), write the same
feature state as N checkpoints of each of 4 partitions, then time a fresh
``CheckpointStore.restore`` of all 4 (what a scorer does when it takes partitions over), for
N = 100 and N = 2,000. Target: the two restore times within 20 % of each other (the cost must
not grow with the number of checkpoints). Also prints the records each restore read.

Restore is one ListOffsets and, when the newest round sits in the tail window, one fetch of
every checkpoint partition: the fewest round trips it can make. The bundled broker lists every
batch of a partition on each of those requests (Apache Kafka finds an offset in its index), so
the bench also times that floor, the same two requests made by a plain consumer. When restore
sits on that floor in both cases, the growth is the broker's; the restoring process's CPU time
(its own work) is the figure that must not grow.

The state is a real engine snapshot (``--accounts`` accounts of simulated history). Restore is
timed ``--repeats`` times per case; the median is reported, as wall time and as the restoring
process's CPU time (the scorer's own work, without the broker's).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from kafka import KafkaProducer

from bench.common import emit
from features.engine import FeatureEngine
from streaming.broker import Broker
from streaming.checkpoint import CHECKPOINT_TOPIC, FIRST_WINDOW, Checkpoint, CheckpointStore
from streaming.topics import ensure_topics
from tests.integration.test_scorer_support import make_bank

PARTITIONS = 4


def state_bytes(accounts: int) -> bytes:
    bank = make_bank(n_accounts=accounts, n_payments=accounts * 12, seed=3, prefix="R")
    engine = FeatureEngine(bank.reference())
    for ev in bank.events():
        if hasattr(ev, "direction"):
            engine.on_payment(ev)
        else:
            engine.on_login(ev)
    return engine.snapshot()


def case(broker: Broker, n: int, state: bytes,
         repeats: int) -> tuple[float, float, int, float, float]:
    prefix = f"rb{uuid.uuid4().hex[:8]}."
    topic = prefix + CHECKPOINT_TOPIC
    ensure_topics(broker.bootstrap, [topic], partitions=PARTITIONS, prefix=prefix)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=20,
                             batch_size=1 << 20, max_request_size=2 * 1024 * 1024)
    cfg = {"bootstrap_servers": broker.bootstrap}
    writer = CheckpointStore(topic, producer, cfg, "bench")
    t0 = time.perf_counter()
    for i in range(n):
        writer.write([Checkpoint.new(p, state, {"payments": i, "logins": i}, "v")
                      for p in range(PARTITIONS)])
    write_s = time.perf_counter() - t0
    writer.close()
    times, cpu = [], []
    read = 0
    for _ in range(repeats):
        reader = CheckpointStore(topic, producer, cfg, "bench")
        t0, c0 = time.perf_counter(), time.process_time()
        restored = reader.restore(list(range(PARTITIONS)))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        assert len(restored) == PARTITIONS and all(c.state == state for c in restored.values())
        assert all(c.payments_offset == n - 1 for c in restored.values())
        read = reader.records_read
        reader.close()
    producer.close()
    return (statistics.median(times), statistics.median(cpu), read, write_s,
            tail_fetch_ms(broker, topic, repeats))


def tail_fetch_ms(broker: Broker, topic: str, repeats: int) -> float:
    """The broker's floor for restore's requests: a plain consumer asks the log-end offsets of
    every partition, then fetches the last ``FIRST_WINDOW`` records of each in one poll loop
    (median of ``repeats``, in ms)."""
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                      enable_auto_commit=False, fetch_max_wait_ms=100,
                      max_partition_fetch_bytes=4 * 512 * 1024)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    c.assign(tps)
    c.end_offsets(tps)  # metadata and connection warmed, as a restoring scorer has them
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        end = c.end_offsets(tps)
        for tp in tps:
            c.seek(tp, max(0, end[tp] - FIRST_WINDOW))
        while any(c.position(tp) < end[tp] for tp in tps):
            c.poll(timeout_ms=100)
        times.append(time.perf_counter() - t0)
    c.close()
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    state = state_bytes(args.accounts)
    print(f"state: {len(state):,} bytes ({args.accounts} accounts) x {PARTITIONS} partitions",
          flush=True)
    with Broker() as broker:
        few, few_cpu, few_read, few_w, few_fetch = case(broker, 100, state, args.repeats)
        many, many_cpu, many_read, many_w, many_fetch = case(broker, 2000, state, args.repeats)
    print(f"writing: 100 rounds {few_w:.1f} s, 2,000 rounds {many_w:.1f} s", flush=True)
    emit("restore", "restore_ms_after_100_checkpoints", round(few * 1000, 1), "info", True)
    emit("restore", "restore_ms_after_2000_checkpoints", round(many * 1000, 1), "info", True)
    emit("restore", "restore_cpu_ms_after_100_checkpoints", round(few_cpu * 1000, 1), "info", True)
    emit("restore", "restore_cpu_ms_after_2000_checkpoints", round(many_cpu * 1000, 1), "info",
         True)
    emit("restore", "records_read_after_100", few_read, "info", True)
    emit("restore", "records_read_after_2000", many_read, "info", True)
    emit("restore", "broker_floor_ms_after_100", round(few_fetch, 1), "info", True)
    emit("restore", "broker_floor_ms_after_2000", round(many_fetch, 1), "info", True)
    ratio = many / few
    emit("restore", "restore_time_ratio_2000_vs_100", round(ratio, 2), "<=1.2", ratio <= 1.2)
    cpu_ratio = many_cpu / few_cpu
    emit("restore", "restore_cpu_ratio_2000_vs_100", round(cpu_ratio, 2), "info", True)


if __name__ == "__main__":
    main()
