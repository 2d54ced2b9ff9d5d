"""`canhgiac simulate`: generate a seeded bank (population, behaviour, fraud typologies, labels)
into a data directory (Parquet or JSONL) or straight to the Kafka topics (``--kafka``)."""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path
from typing import Any

from canhgiac.cli import finite_float, nonempty_path
from canhgiac.settings import Settings

HELP = "simulate a bank with labelled fraud typologies (to a data directory or to Kafka)"
# event times must stay datetimes (and epoch seconds) through --days and the label delays
FIRST_START, LAST_START = date(1970, 1, 1), date(9000, 1, 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accounts", type=int, default=2000, help="number of accounts (>= 50)")
    parser.add_argument("--days", type=int, default=30, help="days simulated")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed (default: CANHGIAC_SEED, 7)")
    parser.add_argument("--fraud-rate", type=finite_float, default=0.004,
                        help="share of payments that are fraud, 0 .. 0.01 (default 0.004)")
    parser.add_argument("--start", default="2026-01-01",
                        help="first local day, YYYY-MM-DD (default 2026-01-01)")
    parser.add_argument("--out", metavar="DIR", type=nonempty_path, default=None,
                        help="data directory to write")
    parser.add_argument("--format", choices=["parquet", "jsonl"], default="parquet")
    parser.add_argument("--kafka", action="store_true",
                        help="produce to the topics (CANHGIAC_KAFKA_BOOTSTRAP) instead of files")
    parser.add_argument("--rate", type=finite_float, default=None, metavar="N",
                        help="with --kafka: payments per second (default: as fast as possible)")


def build_config(args: argparse.Namespace, settings: Settings) -> Any:
    from canhgiac.cli import UsageError  # noqa: PLC0415
    from training.simulator import SimConfig  # noqa: PLC0415

    try:
        start = date.fromisoformat(args.start)
    except ValueError:
        raise UsageError(f"--start: '{args.start}' is not a date (YYYY-MM-DD)") from None
    if not FIRST_START <= start <= LAST_START:
        raise UsageError(f"--start: {start} is out of range: give a day between {FIRST_START} "
                         f"and {LAST_START}")
    seed = settings.seed if args.seed is None else args.seed
    cfg = SimConfig(accounts=args.accounts, days=args.days, seed=seed,
                    fraud_rate=args.fraud_rate, start=start)
    try:
        return cfg.validate()
    except ValueError as exc:
        option = str(exc).split(" ")[0].replace("_", "-")
        raise UsageError(f"--{option}: {exc}") from None


def prepare_out(out: Path) -> None:
    """Create the --out directory before the simulation (which may take minutes), or say why
    it cannot be written."""
    from canhgiac.cli import UsageError  # noqa: PLC0415

    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} is a file, not a directory: give a new or existing "
                         "directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out: cannot create {out}: {exc.strerror or exc}; give a directory "
                         "you can write to") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"--out: cannot write into {out}: permission denied; give a "
                         "directory you can write to")


def summary_lines(summary: dict[str, Any], cfg: Any) -> list[str]:
    lines = [
        f"simulated {cfg.accounts} accounts over {cfg.days} days from {cfg.start} "
        f"(seed {cfg.seed})",
        "",
        f"{'events':<24}{'count':>12}",
        f"{'payments':<24}{summary['payments']:>12,}",
        f"{'logins':<24}{summary['logins']:>12,}",
        f"{'accounts':<24}{summary['accounts']:>12,}",
        f"{'labels':<24}{summary['labels']:>12,}",
        f"{'fraud payments':<24}{summary['fraud_payments']:>12,}",
        f"{'fraud rate':<24}{summary['fraud_rate'] * 100:>11.3f}%",
        "",
        f"{'typology':<24}{'payments':>12}{'cases':>8}",
    ]
    for name, count in summary["typology_payments"].items():
        lines.append(f"{name:<24}{count:>12,}{summary['typology_cases'][name]:>8}")
    lines.append("")
    lines.append(f"{'account role':<24}{'accounts':>12}")
    for role, count in summary["roles"].items():
        lines.append(f"{role:<24}{count:>12,}")
    lines.append("")
    lines.append(f"{'label':<24}{'labels':>12}")
    for label, count in summary["label_kinds"].items():
        lines.append(f"{label:<24}{count:>12,}")
    return lines


def run(args: argparse.Namespace, settings: Settings) -> int:
    from canhgiac.cli import UsageError  # noqa: PLC0415
    from canhgiac.cmd_replay import check_rate, produce  # noqa: PLC0415

    if args.out is None and not args.kafka:
        raise UsageError("give --out DIR (or --kafka to produce to the topics)")
    if args.rate is not None and not args.kafka:
        raise UsageError("--rate needs --kafka")
    check_rate(args.rate)
    cfg = build_config(args, settings)
    if args.out is not None:
        prepare_out(args.out)

    from training.datadir import from_tables, write_dir  # noqa: PLC0415
    from training.simulator import simulate  # noqa: PLC0415

    result = simulate(cfg)
    for line in summary_lines(result.summary(), cfg):
        print(line)
    if args.out is not None:
        out = write_dir(result, args.out, fmt=args.format)
        print(f"\nwrote {out} ({args.format})")
    if args.kafka:
        stats = produce(from_tables(result), settings, args.rate)
        print(f"\nproduced {stats.total} events to {settings.kafka_bootstrap} in "
              f"{stats.seconds:.1f} s: " + ", ".join(f"{k} {v}" for k, v in stats.sent.items()))
    return 0
