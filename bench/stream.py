"""Streaming benchmark: one ``canhgiac score`` process against a real broker it starts itself.

1. Sustained throughput: simulator output (1,000 accounts) pre-produced to ``payments`` and
   ``logins``; one scorer process drains it while the case-store projection (``canhgiac
   sink``, SQLite) runs beside it (its lag while scoring and its catch-up time are reported).
   payments/s = payments / (last scored record's
   produce time - first's), so group join and start-up are not counted. Target >= 5,000/s.
2. kafka-python's raw consume rate of the same ``payments`` topic (records/s, decode-free),
   and the scorer's throughput as a ratio of it.
3. End-to-end latency at a paced 3,000 payments/s (with their logins) for ~20 s: from the
   input record's produce time (its Kafka timestamp, carried in the scored record's
   ``source_timestamp_ms`` header) to the scored record's arrival at a consumer. Target p99 <=
   35 ms. Producer, scorer and reader are three processes. For scale, the same paced stream is
   also read by a plain kafka-python consumer doing nothing (``raw_consumer_latency_*``): the
   floor the broker and client set under any scorer. ``produce_to_scorer_send_*`` splits the
   scorer's path: input produce -> the scorer's send of the scored record (that record's own
   Kafka timestamp); the rest of the end-to-end figure is the output's delivery to the reader.

4. In-process latency (issue 15): from the scorer's own histograms, a payment's poll returned
   → its output sent (p50/p99 as the upper bound of their histogram bucket, and the max), at
   each paced rate; target p99 <= 10 ms. Split in two: ``release_to_send_*`` is the part after
   the event-time alignment released the payment (all its inputs polled: decode of the rest
   of the batch, features, model, encode, send), which does not depend on the broker; the
   rest of poll → send is the payment waiting in the alignment for the logins topic to be
   polled up to its time, or for the reference tables, which does. ``held_for_{logins,
   reference}_mean_ms_*`` split that wait by what the held payments waited for (the scorer's
   ``canhgiac_scorer_held_payment_seconds_total`` over the run, per payment).
5. Loop stalls: the scorer restores 100,000 accounts of state (synthetic checkpoints) and scores
   the paced stream at 3,000/s while it checkpoints every 5 s; the longest loop iteration,
   target <= 50 ms. Every paced run also reports how many of its iterations passed 50 ms
   (``iterations_over_50ms_*``), and its CPU per payment: the scorer process's and, laid out
   apart, the device processor's (``{scorer,devices}_cpu_us_per_payment_at_*``).
   Steps 3-5 run twice: with the device processor on a thread of the scorer (the default
   setting) and in a process of its own (``CANHGIAC_DEVICES_IN_SCORE=false`` and ``canhgiac
   devices``; figures ending ``_devices_process``). On a thread, its work holds the GIL
   while the loop waits: the scorer's "slow loop iteration" log line shows it as a loop CPU
   time far below the iteration's. The paced run replays about 14 simulated hours a second
   at 1,000/s, so the processor's hourly work (a new sighting per key and hour, the prune of
   every key) runs far more often than at a bank.
6. CPU: the scorer's CPU microseconds per payment in the throughput phase, and its CPU share
   of a core once idle (target < 3 %): measured for 10 s from the first checkpoint round after
   the stream that found nothing left to write (the work the stream left: the projection
   catching up, the round that writes the state the stream changed, is reported apart as
   the settling time and CPU).

``python -m bench.stream [--accounts 1000] [--days 40] [--rate 3000] [--seconds 20]
[--devices in-score,process]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from bench.common import emit
from bench.common import raw_consume_rate as common_raw_consume_rate

OUT = Path(__file__).with_name("out")
ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 4


# ---------------------------------------------------------------- data and model
def simulate(accounts: int, days: int, seed: int):
    from features.events import from_mapping
    from training.simulator import SimConfig, simulate

    r = simulate(SimConfig(accounts=accounts, days=days, seed=seed))

    def rows(table, kind):
        return [from_mapping(kind, d) for d in table.to_pylist()]

    payments, logins = rows(r.payments, "payments"), rows(r.logins, "logins")
    accounts_, labels = rows(r.accounts, "accounts"), rows(r.labels, "labels")
    fraud = dict(zip(r.truth["event_id"].to_pylist(), r.truth["is_fraud"].to_pylist(),
                     strict=True))
    return payments, logins, accounts_, labels, fraud


def train(payments, logins, accounts, labels, fraud, directory: Path):
    from features.reference import ReferenceData
    from features.replay import replay_matrix
    from models.risk import ModelConfig, RiskModel

    ref = ReferenceData.of(accounts, labels)
    x, scored = replay_matrix(payments, logins, ref)
    y = np.array([int(bool(fraud.get(p.event_id))) for p in scored], dtype=np.float64)
    cut = int(len(y) * 0.7)
    model = RiskModel.fit(x[:cut], y[:cut], x[cut:], y[cut:], ModelConfig(num_threads=1))
    model.save(directory)
    return model


# ---------------------------------------------------------------- Kafka helpers
def encoded(payments, logins):
    from features.events import Payment, encode
    from features.replay import merge_in_order

    return [("payments" if isinstance(e, Payment) else "logins", e.account_id.encode(),
             encode(e)) for e in merge_in_order(payments, logins)]


def setup_topics(bootstrap: str, prefix: str, accounts, labels) -> None:
    from kafka import KafkaProducer

    from features.events import encode
    from streaming.topics import ALL_TOPICS, ensure_topics

    ensure_topics(bootstrap, [prefix + t for t in ALL_TOPICS], partitions=PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=10)
    for a in accounts:
        producer.send(prefix + "accounts", key=a.account_id.encode(), value=encode(a))
    for lbl in labels:
        producer.send(prefix + "labels", key=lbl.account_id.encode(), value=encode(lbl))
    producer.flush()
    producer.close()


def produce_all(bootstrap: str, prefix: str, events) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             batch_size=256 * 1024)
    t0 = time.perf_counter()
    for kind, key, value in events:
        producer.send(prefix + kind, key=key, value=value)
    producer.flush()
    producer.close()
    return time.perf_counter() - t0


def paced_producer(bootstrap: str, prefix: str, events, rate: float, ready) -> None:
    """Child process: produce ``events`` keeping payments at ``rate`` per second.

    ``linger_ms=5`` is Apache Kafka 4.0's producer default. With ``linger_ms=0`` every record
    is a batch of its own, and the bundled Tansu broker's fetches slow down with the number of
    batches a partition holds, so latency grew through a run (measured: p50 11 -> 335 ms over
    8 s at 3,000/s) for reasons no consumer could change."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5)
    ready.wait()
    t0 = time.perf_counter()
    n_pay = 0
    for kind, key, value in events:
        if kind == "payments":
            n_pay += 1
            delay = t0 + n_pay / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        producer.send(prefix + kind, key=key, value=value)
    producer.flush()
    producer.close()


def raw_consume_rate(bootstrap: str, topic: str, n: int) -> float:
    return common_raw_consume_rate(bootstrap, topic, n, PARTITIONS, fetch_max_wait_ms=5)


# ---------------------------------------------------------------- the scorer process
def start_scorer(bootstrap: str, prefix: str, model_dir: Path, port: int, log: Path,
                 batch_size: int = 500, **extra: str) -> subprocess.Popen:
    env = {**os.environ, "CANHGIAC_KAFKA_BOOTSTRAP": bootstrap, "CANHGIAC_TOPIC_PREFIX": prefix,
           "CANHGIAC_GROUP_ID": prefix + "scorer", "CANHGIAC_METRICS_PORT": str(port),
           "CANHGIAC_MAX_POLL_INTERVAL_MS": "10000", "CANHGIAC_SESSION_TIMEOUT_MS": "10000",
           "CANHGIAC_BATCH_SIZE": str(batch_size), "CANHGIAC_START_FROM": "earliest",
           "CANHGIAC_DATA_DIR": str(log.parent)}
    env.update({f"CANHGIAC_{k.upper()}": v for k, v in extra.items()})
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "canhgiac.cli", "score", "--model", str(model_dir)],
        env=env, cwd=ROOT, stdout=out, stderr=out, stdin=subprocess.DEVNULL)


def start_devices(bootstrap: str, prefix: str, log: Path) -> subprocess.Popen:
    """``canhgiac devices``: the device processor in a process of its own, for a scorer run
    with ``CANHGIAC_DEVICES_IN_SCORE=false`` (same group id: the same topics and group)."""
    env = {**os.environ, "CANHGIAC_KAFKA_BOOTSTRAP": bootstrap, "CANHGIAC_TOPIC_PREFIX": prefix,
           "CANHGIAC_GROUP_ID": prefix + "scorer",
           "CANHGIAC_MAX_POLL_INTERVAL_MS": "10000", "CANHGIAC_SESSION_TIMEOUT_MS": "10000",
           "CANHGIAC_DATA_DIR": str(log.parent)}
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "canhgiac.cli", "devices"], env=env,
                            cwd=ROOT, stdout=out, stderr=out, stdin=subprocess.DEVNULL)


def start_sink(bootstrap: str, prefix: str, port: int, log: Path) -> subprocess.Popen:
    """``canhgiac sink``: the case-store projection (SQLite in the work directory)."""
    env = {**os.environ, "CANHGIAC_KAFKA_BOOTSTRAP": bootstrap, "CANHGIAC_TOPIC_PREFIX": prefix,
           "CANHGIAC_SINK_GROUP_ID": prefix + "sink", "CANHGIAC_SINK_METRICS_PORT": str(port),
           "CANHGIAC_MAX_POLL_INTERVAL_MS": "10000", "CANHGIAC_SESSION_TIMEOUT_MS": "10000",
           "CANHGIAC_DATA_DIR": str(log.parent),
           "CANHGIAC_CASE_STORE_URL": f"sqlite:///{log.parent / (prefix + 'cases.db')}"}
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "canhgiac.cli", "sink"], env=env, cwd=ROOT,
                            stdout=out, stderr=out, stdin=subprocess.DEVNULL)


def stored_rows(db: Path) -> int:
    """Scored payments in the projection's SQLite case store so far (0 before it exists)."""
    import sqlite3

    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM scored").fetchone()[0])
    except sqlite3.Error:
        return 0


def metrics_text(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return ""


def metric(port: int, name: str, labels: str = "") -> float:
    return metric_in(metrics_text(port), name, labels)


def metric_in(text: str, name: str, labels: str = "") -> float:
    for line in text.splitlines():
        if line.startswith(name + labels + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _buckets(text: str, name: str) -> dict[float, float]:
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def histogram_quantile(text: str, name: str, q: float, since: str = "") -> float:
    """The upper bound (seconds) of the bucket holding quantile ``q`` of a Prometheus
    histogram's observations made after the ``since`` scrape (``inf`` past the last finite
    bucket; ``q`` = 1: the bucket of the largest observation)."""
    now, before = _buckets(text, name), _buckets(since, name)
    counts = sorted((le, c - before.get(le, 0.0)) for le, c in now.items())
    if not counts or counts[-1][1] <= 0:
        return float("nan")
    total = counts[-1][1]
    for le, count in counts:
        if count >= q * total:
            return le
    return float("inf")


def histogram_count_over(text: str, name: str, bound: float, since: str = "") -> float:
    """Observations of a Prometheus histogram above ``bound`` (a bucket bound, seconds) made
    after the ``since`` scrape."""
    now, before = _buckets(text, name), _buckets(since, name)
    if bound not in now:
        raise ValueError(f"{name} has no bucket {bound}")
    total = max(now.values(), default=0.0) - max(before.values(), default=0.0)
    return total - (now[bound] - before.get(bound, 0.0))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_metric(port: int, name: str, labels: str, target: float, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    value = 0.0
    while time.monotonic() < deadline:
        value = metric(port, name, labels)
        if value >= target:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"{name}{labels} stayed at {value} < {target}")


def scored_records(bootstrap: str, topic: str, n: int) -> tuple[np.ndarray, float]:
    """The record timestamps of ``topic``'s first ``n`` records, and their mean value size."""
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    ts: list[int] = []
    size = 0
    deadline = time.monotonic() + 120
    while len(ts) < n and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=200, max_records=5000).values():
            ts.extend(r.timestamp for r in recs)
            size += sum(len(r.value or b"") for r in recs)
    c.close(autocommit=False)
    return np.array(ts, dtype=np.float64), size / max(1, len(ts))


def kafka_floor(bootstrap: str, prefix: str, n: int, n_records: int, value_size: int) -> dict:
    """kafka-python alone doing the scorer's Kafka I/O, nothing else: a consumer group reads
    ``payments`` and ``logins`` from the start (the scorer's fetch and poll settings) and, for
    each payment, a producer with the scorer's settings sends one record of the scored
    records' mean size to that payment's partition; flushed at the end. No decode, features,
    model or encoding: the CPU every payment costs kafka-python before the scorer's own work
    (this process's CPU time), and the rate that alone reaches (it runs after the scorer and
    the projection have stopped, so the rate moves with the machine; the CPU much less)."""
    from kafka import KafkaConsumer, KafkaProducer

    from streaming.outputs import PRODUCER_BATCH_BYTES, PRODUCER_LINGER_MS
    from streaming.topics import ensure_topics

    out_topic = prefix + "floor.scored"
    ensure_topics(bootstrap, [out_topic], partitions=PARTITIONS)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=prefix + "floor", enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=500, max_poll_records=500,
        # the scorer's benchmark settings: the bundled broker may hold a first join for the
        # rebalance timeout (max_poll_interval_ms)
        max_poll_interval_ms=10_000, session_timeout_ms=10_000)
    consumer.subscribe([prefix + "payments", prefix + "logins"])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                             linger_ms=PRODUCER_LINGER_MS, batch_size=PRODUCER_BATCH_BYTES,
                             max_request_size=2 * 1024 * 1024)
    value = b"x" * value_size
    payments_topic = prefix + "payments"
    got = sent = 0
    t0 = cpu0 = None
    deadline = time.monotonic() + 300
    while got < n_records and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=100, max_records=500).items():
            if t0 is None:
                t0, cpu0 = time.perf_counter(), time.process_time()
            got += len(records)
            if tp.topic == payments_topic:
                for r in records:
                    producer.send(out_topic, key=r.key, value=value, partition=tp.partition)
                sent += len(records)
    producer.flush()
    wall, cpu = time.perf_counter() - (t0 or 0.0), time.process_time() - (cpu0 or 0.0)
    consumer.close(autocommit=False)
    producer.close()
    if got < n_records or sent != n:
        raise RuntimeError(f"kafka floor: read {got} of {n_records} records, sent {sent} of {n}")
    return {"payments_per_s": sent / wall, "cpu_us_per_payment": cpu * 1e6 / sent,
            "value_bytes": value_size}


SCORED = "canhgiac_scorer_events_total"
UNCHANGED = "canhgiac_scorer_checkpoints_unchanged_total"
SCORED_LABELS = '{kind="payments",outcome="scored"}'


# ---------------------------------------------------------------- phases
def throughput(bootstrap, model_dir, payments, logins, accounts, labels, work: Path) -> dict:
    prefix = "tp."
    setup_topics(bootstrap, prefix, accounts, labels)
    events = encoded(payments, logins)
    produce_s = produce_all(bootstrap, prefix, events)
    n = len(payments)
    print(f"# produced {n} payments + {len(logins)} logins in {produce_s:.1f}s", flush=True)
    raw = raw_consume_rate(bootstrap, prefix + "payments", n)
    print(f"# kafka-python raw consume of payments: {raw:,.0f} records/s", flush=True)
    port, sink_port = _free_port(), _free_port()
    # the case-store projection runs beside the scorer, as the service runs
    sink = start_sink(bootstrap, prefix, sink_port, work / "sink-throughput.log")
    proc = start_scorer(bootstrap, prefix, model_dir, port, work / "scorer-throughput.log")
    store = work / (prefix + "cases.db")  # the projection's case store (start_sink)
    try:
        first = wait_metric(port, SCORED, SCORED_LABELS, 1, timeout_s=300)
        cpu0 = cpu_seconds(proc.pid)
        wait_metric(port, SCORED, SCORED_LABELS, n, timeout_s=300)
        cpu1 = cpu_seconds(proc.pid)
        t_done = time.monotonic()
        lag_at_end = n - stored_rows(store)
        while stored_rows(store) < n and time.monotonic() - t_done < 120:
            time.sleep(0.2)
        sink_catch_up = time.monotonic() - t_done
        sink_rows = stored_rows(store)
        # settled: a whole checkpoint round after the stream found nothing to write
        unchanged = metric(port, UNCHANGED)
        wait_metric(port, UNCHANGED, "", unchanged + PARTITIONS, timeout_s=120)
        settle_s, settle_cpu = time.monotonic() - t_done, cpu_seconds(proc.pid) - cpu1
        print(f"# settled {settle_s:.1f} s after the last payment (scorer CPU "
              f"{settle_cpu:.2f} s meanwhile)", flush=True)
        idle0, t_idle = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(10.0)
        idle_share = (cpu_seconds(proc.pid) - idle0) / (time.monotonic() - t_idle)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=60)
    ts, scored_bytes = scored_records(bootstrap, prefix + "payments.scored", n)
    span = (ts.max() - ts.min()) / 1000.0
    rate = len(ts) / span
    floor = kafka_floor(bootstrap, prefix, n, len(events), round(scored_bytes))
    print(f"# kafka-python alone doing the scorer's Kafka I/O: {floor['payments_per_s']:,.0f} "
          f"payments/s at {floor['cpu_us_per_payment']:.1f} us a payment "
          f"({floor['value_bytes']} B scored records)", flush=True)
    return {"payments": n, "logins": len(logins), "raw_consume_per_s": raw,
            "scorer_payments_per_s": rate, "ratio_to_raw": rate / raw, "span_s": span,
            "sink_lag_when_scored": lag_at_end, "sink_catch_up_s": sink_catch_up,
            "sink_rows": sink_rows,
            "cpu_us_per_payment": (cpu1 - cpu0) * 1e6 / max(1.0, n - first),
            "idle_cpu_share": idle_share, "settle_s": settle_s, "settle_cpu_s": settle_cpu,
            "floor": floor, "exit_code": proc.returncode}


def latency(bootstrap, model_dir, payments, logins, accounts, labels, work: Path,
            rate: float, seconds: float, prefix: str = "lat.", state_accounts: int = 0,
            devices: str = "in-score", **scorer_settings: str) -> dict:
    from kafka import KafkaConsumer, TopicPartition

    n = min(len(payments), int(rate * seconds))
    chosen = payments[:n]
    last_t = chosen[-1].t
    events = encoded(chosen, [lg for lg in logins if lg.t <= last_t])
    setup_topics(bootstrap, prefix, accounts, labels)
    if state_accounts:
        write_state(bootstrap, prefix, state_accounts, before=chosen[0].ts)
    port = _free_port()
    device_proc = None
    if devices == "process":
        scorer_settings["devices_in_score"] = "false"
        device_proc = start_devices(bootstrap, prefix, work / f"devices-{prefix}log")
    proc = start_scorer(bootstrap, prefix, model_dir, port, work / f"scorer-{prefix}log",
                        batch_size=500, **scorer_settings)
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    producer = ctx.Process(target=paced_producer, args=(bootstrap, prefix, events, rate, ready))
    producer.start()
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                           fetch_max_wait_ms=5)
    tps = [TopicPartition(prefix + "payments.scored", p) for p in range(PARTITIONS)]
    reader.assign(tps)
    reader.seek_to_beginning(*tps)
    lat: list[float] = []
    lat_in: list[float] = []  # input produce -> the scorer's send of the output (its timestamp)
    try:
        wait_metric(port, "canhgiac_scorer_partitions", "", PARTITIONS, timeout_s=120)
        time.sleep(1.0)
        reader.poll(timeout_ms=100)
        start_text = metrics_text(port)  # after assignment and restore: count from here
        # CPU of the paced run per payment: the scorer's process, and the device processor's
        # when it runs apart (on a thread it is part of the scorer's)
        measured = {who: p for who, p in (("scorer", proc), ("devices", device_proc))
                    if p is not None}
        cpu0 = {who: cpu_seconds(p.pid) for who, p in measured.items()}
        ready.set()
        t_start = time.perf_counter()
        deadline = time.monotonic() + seconds + 120
        while len(lat) < n and time.monotonic() < deadline:
            for recs in reader.poll(timeout_ms=5, max_records=2000).values():
                now_ms = time.time() * 1000.0
                for r in recs:
                    src = dict(r.headers).get("source_timestamp_ms")
                    if src is not None:
                        lat.append(now_ms - float(src))
                        lat_in.append(r.timestamp - float(src))
        wall = time.perf_counter() - t_start
        cpu_us = {f"{who}_cpu_us_per_payment": (cpu_seconds(p.pid) - cpu0[who]) * 1e6 / max(1, n)
                  for who, p in measured.items()}
        text = metrics_text(port)
        in_process = {
            "p50": histogram_quantile(text, "canhgiac_scorer_poll_to_send_seconds", 0.50),
            "p99": histogram_quantile(text, "canhgiac_scorer_poll_to_send_seconds", 0.99),
            "max": metric(port, "canhgiac_scorer_poll_to_send_max_seconds"),
            # the part after the alignment released the payment (its inputs all polled):
            # poll to send minus this is waiting for the other topic or the reference tables
            "release_p50": histogram_quantile(text, "canhgiac_scorer_release_to_send_seconds",
                                              0.50),
            "release_p99": histogram_quantile(text, "canhgiac_scorer_release_to_send_seconds",
                                              0.99),
            # the longest iteration of the paced run (bucket upper bound): the restore at
            # assignment, before it, is not counted
            "iteration_max": histogram_quantile(text, "canhgiac_scorer_iteration_seconds", 1.0,
                                                since=start_text),
            "checkpoints": metric(port, "canhgiac_scorer_checkpoints_total")
            - metric_in(start_text, "canhgiac_scorer_checkpoints_total"),
        }
        # how many iterations of the paced run passed 50 ms (the bucket of the longest says
        # how bad the worst was, this how often)
        over_50ms = histogram_count_over(text, "canhgiac_scorer_iteration_seconds", 0.05,
                                         since=start_text)
        # what held payments waited for, in payment-seconds (streaming.align.HeldTime)
        for why in ("logins", "reference"):
            name, label = "canhgiac_scorer_held_payment_seconds_total", f'{{waiting_for="{why}"}}'
            in_process[f"held_{why}"] = (metric_in(text, name, label)
                                         - metric_in(start_text, name, label))
    finally:
        producer.join(timeout=60)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        if device_proc is not None:
            device_proc.send_signal(signal.SIGTERM)
            device_proc.wait(timeout=60)
        reader.close(autocommit=False)
    a, a_in = np.array(lat), np.array(lat_in)
    return {"rate_target": rate, "payments": n, "received": len(lat), "wall_s": wall,
            "p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
            "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max()),
            "to_scorer_send_p50_ms": float(np.percentile(a_in, 50)),
            "to_scorer_send_p99_ms": float(np.percentile(a_in, 99)),
            "in_process_ms": {k: v * 1000 for k, v in in_process.items() if k != "checkpoints"},
            "iterations_over_50ms": over_50ms,
            **cpu_us,
            "checkpoints": in_process["checkpoints"], "exit_code": proc.returncode}


def write_state(bootstrap: str, prefix: str, n_accounts: int, before) -> None:
    """Checkpoints holding ``n_accounts`` accounts of state (12 payments each over the 30 days
    up to 2.5 days ``before`` the stream's first payment, so that none is idle long enough to
    be evicted during the run), spread over the partitions, at offsets 0: the scorer restores
    them and scores the paced stream on top (the state a bank's scorer carries)."""
    from datetime import timedelta

    from kafka import KafkaProducer

    from features.engine import FeatureEngine
    from features.events import Payment
    from streaming.checkpoint import CHECKPOINT_TOPIC, Checkpoint, CheckpointStore
    from streaming.topics import ensure_topics

    t0 = time.perf_counter()
    topic = prefix + CHECKPOINT_TOPIC
    ensure_topics(bootstrap, [topic], partitions=PARTITIONS, prefix=prefix)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             max_request_size=2 * 1024 * 1024)
    store = CheckpointStore(topic, producer, {"bootstrap_servers": bootstrap},
                            prefix + "scorer")
    start = before - timedelta(days=2.5 * 12)
    size = 0
    for p in range(PARTITIONS):
        engine = FeatureEngine()
        for a in range(p, n_accounts, PARTITIONS):
            for k in range(12):
                engine.on_payment(Payment(
                    event_id=f"S{a}-{k}", ts=start + timedelta(days=2.5 * k, seconds=a),
                    account_id=f"S{a:07d}", direction="debit" if k % 3 else "credit",
                    amount=100_000.0 * (1 + k), currency="VND",
                    counterparty_account=f"C{(a * 7 + k) % 50_000}", counterparty_bank="VCB",
                    channel="mobile"))
        state = engine.snapshot()
        size += len(state)
        store.write([Checkpoint.new(p, state, {"payments": 0, "logins": 0}, "bench")])
    store.close()
    producer.close()
    print(f"# state: {n_accounts:,} accounts, {size / 1e6:.1f} MB of checkpoints, written in "
          f"{time.perf_counter() - t0:.0f}s", flush=True)


def raw_latency(bootstrap, payments, logins, rate: float, seconds: float) -> dict:
    """The floor under the scorer's latency: the same paced producer for as long as the
    scorer's run (the bundled broker's fetches slow down as a partition's batches pile up, so a
    shorter run would flatter the floor), a plain kafka-python consumer doing nothing, produce
    time -> poll returns the payment."""
    n = min(len(payments), int(rate * seconds))
    from kafka import KafkaConsumer, TopicPartition

    from streaming.topics import ensure_topics

    prefix = "raw."
    chosen = payments[:n]
    events = encoded(chosen, [lg for lg in logins if lg.t <= chosen[-1].t])
    ensure_topics(bootstrap, [prefix + "payments", prefix + "logins"], partitions=PARTITIONS)
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    producer = ctx.Process(target=paced_producer, args=(bootstrap, prefix, events, rate, ready))
    producer.start()
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=5)
    tps = [TopicPartition(prefix + t, p) for t in ("payments", "logins") for p in range(PARTITIONS)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    c.poll(timeout_ms=200)
    time.sleep(1.0)
    ready.set()
    lat: list[float] = []
    deadline = time.monotonic() + n / rate + 60
    while len(lat) < len(chosen) and time.monotonic() < deadline:
        for tp, recs in c.poll(timeout_ms=5, max_records=2000).items():
            now_ms = time.time() * 1000.0
            if tp.topic.endswith("payments"):
                lat.extend(now_ms - r.timestamp for r in recs)
    producer.join(timeout=60)
    c.close(autocommit=False)
    a = np.array(lat)
    return {q: float(np.percentile(a, v)) for q, v in (("p50_ms", 50), ("p95_ms", 95),
                                                        ("p99_ms", 99))} | {"n": len(lat)}


def _free_port() -> int:
    from streaming.broker import free_port

    return free_port()


def latency_runs(args: argparse.Namespace, layout: str, bootstrap: str, model_dir: Path,
                 payments, logins, accounts, labels, work: Path, results: dict) -> list:
    """The paced runs (each rate, then the loop-stall run) with the device processor laid out
    as ``layout``; figures of the ``process`` layout end in ``_devices_process``."""
    sfx = "" if layout == "in-score" else "_devices_process"
    tag = "" if layout == "in-score" else "-dp"
    out: list = []

    def fig(name: str, value, target: str = "info", met: bool = True) -> None:
        out.append(emit("stream", name + sfx, value, target, met))

    for i, rate in enumerate(r for r in (args.rate, args.also_rate) if r > 0):
        lt = latency(bootstrap, model_dir, payments, logins, accounts, labels, work, rate,
                     args.seconds, prefix=f"lat{i}{tag}.", devices=layout)
        results[f"latency_{int(rate)}{sfx}"] = lt
        at = f"_at_{int(rate)}_per_s"
        for q in ("p50", "p95", "p99", "max"):
            if q == "p99" and i == 0:
                fig(f"latency_{q}_ms{at}", round(lt[f"{q}_ms"], 1), "<=35", lt[f"{q}_ms"] <= 35)
            else:
                fig(f"latency_{q}_ms{at}", round(lt[f"{q}_ms"], 1))
        for q in ("p50", "p99"):
            fig(f"produce_to_scorer_send_{q}_ms{at}", round(lt[f"to_scorer_send_{q}_ms"], 1))
        fig(f"latency_received{at}", lt["received"], str(lt["payments"]),
            lt["received"] == lt["payments"])
        ip = lt["in_process_ms"]
        fig(f"poll_to_send_p50_ms{at}", ip["p50"])
        fig(f"poll_to_send_p99_ms{at}", ip["p99"], "<=10", ip["p99"] <= 10)
        fig(f"poll_to_send_max_ms{at}", round(ip["max"], 1))
        fig(f"iterations_over_50ms{at}", round(lt["iterations_over_50ms"]))
        for who in ("scorer", "devices"):
            if f"{who}_cpu_us_per_payment" in lt:
                fig(f"{who}_cpu_us_per_payment{at}", round(lt[f"{who}_cpu_us_per_payment"], 1))
        for q in ("p50", "p99"):
            fig(f"release_to_send_{q}_ms{at}", ip[f"release_{q}"])
        for why in ("logins", "reference"):  # the mean wait in the alignment, split
            # (held_* in in_process_ms: milliseconds summed over the run's payments)
            fig(f"held_for_{why}_mean_ms{at}",
                round(ip[f"held_{why}"] / max(1, lt["payments"]), 2))
    if args.state_accounts:
        st = latency(bootstrap, model_dir, payments, logins, accounts, labels, work, args.rate,
                     args.seconds, prefix=f"state{tag}.", devices=layout,
                     state_accounts=args.state_accounts, checkpoint_interval_s="5")
        results[f"stalls{sfx}"] = st
        it = st["in_process_ms"]["iteration_max"]
        fig(f"longest_iteration_ms_with_{args.state_accounts}_accounts_at_{int(args.rate)}"
            f"_per_s", round(it, 1), "<=50", it <= 50 and st["checkpoints"] >= 1)
        fig("checkpoints_during_that_run", st["checkpoints"], ">=1", st["checkpoints"] >= 1)
        fig(f"iterations_over_50ms_with_{args.state_accounts}_accounts",
            round(st["iterations_over_50ms"]))
        fig(f"poll_to_send_p99_ms_with_{args.state_accounts}_accounts",
            st["in_process_ms"]["p99"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--rate", type=float, default=3000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--also-rate", type=float, default=1000.0,
                        help="a second, lower paced rate for the latency figures (0 = none)")
    parser.add_argument("--model", type=Path, default=None, help="a saved RiskModel directory")
    parser.add_argument("--skip", choices=["throughput", "latency"], default=None)
    parser.add_argument("--devices", default="in-score,process",
                        help="device-processor layouts of the latency runs, comma-separated: "
                        "in-score (a thread of the scorer, the default setting) and process "
                        "(`canhgiac devices` apart); figures of the second end _devices_process")
    parser.add_argument("--state-accounts", type=int, default=100_000,
                        help="accounts of restored state for the loop-stall run (0 = none)")
    args = parser.parse_args()

    from streaming.broker import Broker

    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    t0 = time.perf_counter()
    payments, logins, accounts, labels, fraud = simulate(args.accounts, args.days, seed=3)
    print(f"# simulated {len(payments)} payments, {len(logins)} logins "
          f"in {time.perf_counter() - t0:.1f}s", flush=True)
    model_dir = args.model
    if model_dir is None:
        model_dir = work / "model"
        t1 = time.perf_counter()
        model = train(payments, logins, accounts, labels, fraud, model_dir)
        print(f"# trained model {model.version} ({model.booster.num_trees()} trees) "
              f"in {time.perf_counter() - t1:.1f}s", flush=True)
    results: dict = {"work_dir": str(work), "cpu_count": os.cpu_count()}
    out: list[dict] = []
    with Broker(log_path=work / "broker.log") as broker:
        if args.skip != "throughput":
            tp = throughput(broker.bootstrap, model_dir, payments, logins, accounts, labels, work)
            results["throughput"] = tp
            out.append(emit("stream", "scorer_payments_per_s",
                            round(tp["scorer_payments_per_s"]), ">=5000",
                            tp["scorer_payments_per_s"] >= 5000))
            out.append(emit("stream", "raw_consume_records_per_s",
                            round(tp["raw_consume_per_s"]), "info", True))
            out.append(emit("stream", "scorer_to_raw_consume_ratio",
                            round(tp["ratio_to_raw"], 3), ">=0.15", tp["ratio_to_raw"] >= 0.15))
            out.append(emit("stream", "projection_rows_behind_when_scorer_done",
                            round(tp["sink_lag_when_scored"]), "info", True))
            out.append(emit("stream", "projection_catch_up_s_after_scorer_done",
                            round(tp["sink_catch_up_s"], 1), "<=10",
                            tp["sink_catch_up_s"] <= 10 and tp["sink_rows"] == tp["payments"]))
            out.append(emit("stream", "scorer_cpu_us_per_payment",
                            round(tp["cpu_us_per_payment"], 1), "info", True))
            floor = tp["floor"]
            out.append(emit("stream", "kafka_io_floor_payments_per_s",
                            round(floor["payments_per_s"]), "info", True))
            out.append(emit("stream", "kafka_io_floor_to_raw_consume_ratio",
                            round(floor["payments_per_s"] / tp["raw_consume_per_s"], 3),
                            "info", True))
            out.append(emit("stream", "kafka_io_floor_cpu_us_per_payment",
                            round(floor["cpu_us_per_payment"], 1), "info", True))
            out.append(emit("stream", "settle_s_after_stream", round(tp["settle_s"], 1),
                            "info", True))
            out.append(emit("stream", "settle_cpu_s_after_stream", round(tp["settle_cpu_s"], 2),
                            "info", True))
            out.append(emit("stream", "idle_scorer_cpu_share_of_a_core",
                            round(tp["idle_cpu_share"], 3), "<0.03", tp["idle_cpu_share"] < 0.03))
        if args.skip != "latency":
            raw = raw_latency(broker.bootstrap, payments, logins, args.rate, args.seconds)
            results["raw_consumer_latency"] = raw
            for q in ("p50", "p95", "p99"):
                out.append(emit("stream", f"raw_consumer_latency_{q}_ms_at_{int(args.rate)}_per_s",
                                round(raw[f"{q}_ms"], 1), "info", True))
            # the device processor on a thread of the scorer (the default) and in a process
            # of its own (CANHGIAC_DEVICES_IN_SCORE=false + `canhgiac devices`): on a thread
            # its work holds the GIL, and the loop waits for it
            for layout in args.devices.split(","):
                out.extend(latency_runs(args, layout, broker.bootstrap, model_dir, payments,
                                        logins, accounts, labels, work, results))
    results["results"] = out
    (OUT / "stream.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
