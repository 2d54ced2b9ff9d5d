"""`canhgiac replay`: produce a data directory to Kafka in event-time order.

Reads ``--data DIR`` (the layout of DESIGN.md) with :func:`training.datadir.read_dir`, creates
the ``payments``/``logins``/``accounts``/``labels`` topics if missing, and sends accounts first,
then logins, payments and labels merged by event time, paced at ``--rate`` payments/s.
"""

from __future__ import annotations

import argparse
import logging
import math
from datetime import datetime
from typing import TYPE_CHECKING

from canhgiac.cli import finite_float
from canhgiac.settings import Settings

if TYPE_CHECKING:
    from streaming.replay import ReplayStats
    from training.datadir import DataDir

HELP = "replay a data directory (payments, logins, accounts, labels) to Kafka in event-time order"
KINDS = ("payments", "logins", "accounts", "labels")

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="data directory to replay")
    parser.add_argument("--rate", type=finite_float, default=None, metavar="N",
                        help="payments per second (default: as fast as possible)")
    parser.add_argument("--from", dest="start", default=None, metavar="TS",
                        help="first event time, RFC 3339 (e.g. 2026-01-05T00:00:00+07:00)")
    parser.add_argument("--to", dest="end", default=None, metavar="TS",
                        help="stop before this event time, RFC 3339")


def parse_time(value: str | None, option: str) -> datetime | None:
    from canhgiac.cli import UsageError  # noqa: PLC0415

    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option}: '{value}' is not an RFC 3339 time") from None
    if ts.tzinfo is None:
        raise UsageError(f"{option}: '{value}' has no timezone offset (add Z or +07:00)")
    return ts


def check_rate(rate: float | None) -> None:
    from canhgiac.cli import UsageError  # noqa: PLC0415

    if rate is not None and not 0 < rate < math.inf:
        raise UsageError(f"--rate must be > 0 payments/s, got {rate}")


def produce(data: DataDir, settings: Settings, rate: float | None,
            start: datetime | None = None, end: datetime | None = None) -> ReplayStats:
    """Create the input topics if needed and produce ``data`` (a DataDir); returns stats."""
    from streaming.replay import produce_events  # noqa: PLC0415
    from streaming.topics import ensure_topics_with  # noqa: PLC0415
    from training.datadir import ordered_events  # noqa: PLC0415

    cfg = settings.kafka_client_config()
    topics = {kind: settings.topic(kind) for kind in KINDS}
    ensure_topics_with(cfg, list(topics.values()))

    def progress(stats: ReplayStats) -> None:
        log.info("replay progress", extra={"sent": dict(stats.sent),
                                           "seconds": round(stats.seconds, 1)})

    return produce_events(cfg, ordered_events(data, start, end), topics, rate,
                          on_progress=progress)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from canhgiac.cli import UsageError  # noqa: PLC0415
    from training.datadir import DataDirError, read_dir  # noqa: PLC0415

    check_rate(args.rate)
    start = parse_time(args.start, "--from")
    end = parse_time(args.end, "--to")
    if start is not None and end is not None and end <= start:
        raise UsageError("--to must be later than --from")
    try:
        data = read_dir(args.data)
    except DataDirError as exc:
        raise UsageError(str(exc)) from None
    stats = produce(data, settings, args.rate, start, end)
    print(f"replayed {stats.total} events to {settings.kafka_bootstrap} in "
          f"{stats.seconds:.1f} s: " + ", ".join(f"{k} {v}" for k, v in stats.sent.items()))
    return 0
