"""`canhgiac watchlist load FILE`: the watch-list CSV a bank receives (the State Bank's SIMO, the
police, other banks) onto the compacted ``watchlist`` topic, which every scorer reads as a
global table (``features.reference.ReferenceData.add_watch``).

Each row is validated like a Kafka message (``features.watchlist.parse_watchlist_csv``); valid
rows are produced keyed ``bank/account`` (a later row for the same account replaces the earlier
one, as compaction does), every rejected row is printed with its line and reason, and the exit
code is 1 when any row was rejected (the valid ones are loaded all the same), 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from canhgiac.cli import nonempty_path
from canhgiac.settings import Settings

HELP = "load a watch-list CSV (SIMO, police, other banks) onto the watchlist topic"
MAX_FILE_BYTES = 512 * 1024 * 1024  # read whole: a list of millions of rows fits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    load = sub.add_parser("load", help="validate a CSV and produce its entries")
    load.add_argument("file", metavar="FILE", type=nonempty_path,
                      help="CSV with a header: bank, account, source, listed_at, reason, "
                           "optional delisted_at")
    load.add_argument("--dry-run", action="store_true",
                      help="validate and report only; produce nothing")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from canhgiac.cli import UsageError  # noqa: PLC0415
    from features.events import encode  # noqa: PLC0415
    from features.watchlist import parse_watchlist_csv  # noqa: PLC0415

    path = Path(args.file)
    try:
        if path.exists() and not path.is_file():  # a directory, /dev/urandom: read forever
            raise UsageError(f"cannot read {path}: not a regular file; give the CSV file")
        if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
            raise UsageError(f"{path} is {path.stat().st_size:,} bytes, more than "
                             f"{MAX_FILE_BYTES:,}: split it into several files")
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    parsed = parse_watchlist_csv(text)
    for line, rejection in parsed.rejects:
        where = f"column '{rejection.field}'" if rejection.field else "row"
        print(f"{path}:{line}: {where}: {rejection.reason}", file=sys.stderr)
    if not args.dry_run and parsed.entries:
        from kafka import KafkaProducer  # noqa: PLC0415

        from streaming.topics import ensure_topics_with  # noqa: PLC0415

        topic = settings.topic("watchlist")
        cfg = settings.kafka_client_config()
        ensure_topics_with(cfg, [topic], partitions=settings.topic_partitions,
                           replication=settings.topic_replication, prefix=settings.topic_prefix)
        producer = KafkaProducer(**cfg, acks="all", linger_ms=20)
        try:
            futures = [producer.send(topic, key=e.key.encode(), value=encode(e))
                       for e in parsed.entries]
            producer.flush(timeout=60)
            failed = [f for f in futures if f.failed() or not f.is_done]
        finally:
            producer.close(timeout=10)
        if failed:
            raise UsageError(f"{len(failed)} of {len(parsed.entries)} entries were not written "
                             f"to {topic}; is CANHGIAC_KAFKA_BOOTSTRAP reachable?")
    verb = ("valid (dry run, nothing produced)" if args.dry_run
            else f"loaded to {settings.topic('watchlist')}")
    print(f"watch list {path}: {len(parsed.entries)} entries {verb}; "
          f"{len(parsed.rejects)} rows rejected")
    return 1 if parsed.rejects else 0
