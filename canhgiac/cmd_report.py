"""`canhgiac report results --from --to`: the periodic results report (accounts detected,
cases, freezes, accounts handed to the police, money stopped; per month and typology)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from canhgiac.settings import Settings

HELP = "periodic results report (XLSX, PDF, JSON or a table on the terminal)"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
FORMATS = ("table", "json", "xlsx", "pdf")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="report_command", metavar="REPORT")
    sub.required = True
    res = sub.add_parser("results", help="results per month and typology over a period")
    res.add_argument("--from", dest="date_from", required=True,
                     help="first day (YYYY-MM-DD, Asia/Ho_Chi_Minh) or an RFC 3339 time")
    res.add_argument("--to", dest="date_to", required=True,
                     help="last day, inclusive (YYYY-MM-DD) or an RFC 3339 time (exclusive)")
    res.add_argument("--out", type=Path, default=None,
                     help="write the report here (.xlsx, .pdf or .json by its extension)")
    res.add_argument("--format", choices=FORMATS, default=None,
                     help="default: by --out's extension, else a table on the terminal")


def parse_bound(text: str, end: bool) -> datetime:
    """A day (local midnight; an end day counts whole) or an RFC 3339 time with an offset."""
    from canhgiac.cli import UsageError  # noqa: PLC0415

    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=TZ)
            return day + timedelta(days=1) if end else day
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"'{text}' is neither YYYY-MM-DD nor an RFC 3339 time") from None
    if value.tzinfo is None:
        raise UsageError(f"'{text}' needs a timezone offset (Z or +07:00)")
    return value


def run(args: argparse.Namespace, settings: Settings) -> int:
    from canhgiac.cli import UsageError  # noqa: PLC0415
    from serving import network, results  # noqa: PLC0415
    from serving.store import CaseStore  # noqa: PLC0415

    t_from, t_to = parse_bound(args.date_from, False), parse_bound(args.date_to, True)
    if t_to <= t_from:
        raise UsageError("--to must be after --from")
    fmt = args.format or (args.out.suffix.lstrip(".").lower() if args.out else "table")
    if fmt not in FORMATS:
        raise UsageError(f"cannot tell the format of '{args.out}': use --format")
    if fmt in ("xlsx", "pdf") and args.out is None:
        raise UsageError(f"--format {fmt} needs --out FILE")
    store = CaseStore(settings.store_url)
    try:
        th = network.thresholds(store.model_info(), settings.review_threshold,
                                settings.hold_threshold)
        review = float(th["review"]) if th["review"] is not None else 0.5
        with store.read() as conn:
            res = results.compute(conn, t_from.timestamp(), t_to.timestamp(), review)
    finally:
        store.close()
    if fmt == "table":
        print(f"Results {res.period()}, review threshold {review:.3f}")
        print("\t".join(results.HEADINGS))
        for row in [*res.rows, res.total()]:
            print("\t".join([row.month, row.typology,
                             *[f"{getattr(row, c):,.0f}" for c in results.COUNTS]]))
        return 0
    body: bytes = {"json": lambda: json.dumps(results.to_json(res), ensure_ascii=False,
                                              indent=1).encode(),
                   "xlsx": lambda: results.to_xlsx(res), "pdf": lambda: results.to_pdf(res)}[fmt]()
    if args.out is None:
        print(body.decode())
    else:
        args.out.write_bytes(body)
        print(f"wrote {args.out} ({len(res.rows)} rows, {res.period()})")
    return 0
