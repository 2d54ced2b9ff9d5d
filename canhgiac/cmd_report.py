"""`canhgiac report results --from --to`: the periodic results report (accounts detected,
cases, freezes, accounts handed to the police, money stopped; per month and typology)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from canhgiac.cli import nonempty_path
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
    res.add_argument("--out", type=nonempty_path, default=None,
                     help="write the report here (.xlsx, .pdf or .json by its extension)")
    res.add_argument("--format", choices=FORMATS, default=None,
                     help="default: by --out's extension, else a table on the terminal")


def parse_bound(text: str, end: bool, option: str = "") -> datetime:
    """A day (local midnight; an end day counts whole) or an RFC 3339 time with an offset.
    Its range is checked with the period (:func:`serving.results.check_period`, the API's)."""
    from canhgiac.cli import UsageError  # noqa: PLC0415

    name = f"{option}: " if option else ""
    try:
        if len(text) == 10:
            value = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=TZ)
            if end:
                value += timedelta(days=1)
        else:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except OverflowError:  # 9999-12-31 + 1 day
        raise UsageError(f"{name}'{text}' is out of range: must be between 1970 and 9000 "
                         "(UTC)") from None
    except ValueError:
        raise UsageError(f"{name}'{text}' is neither YYYY-MM-DD nor an RFC 3339 time") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise UsageError(f"{name}'{text}' needs a timezone offset (Z or +07:00)")
    return value


def output_format(args: argparse.Namespace) -> str:
    """The format asked for: --format, else --out's extension, else a table; a --format that
    contradicts --out's extension is refused rather than written under a misleading name."""
    from canhgiac.cli import UsageError  # noqa: PLC0415

    suffix = args.out.suffix.lstrip(".").lower() if args.out is not None else ""
    fmt = args.format or (suffix if args.out is not None else "table")
    if fmt not in FORMATS:
        raise UsageError(f"cannot tell the format of '{args.out}': use --format")
    if fmt == "table" and args.out is not None:
        raise UsageError("--format table prints on the terminal: drop --out, or choose "
                         "--format json, xlsx or pdf")
    if args.format and suffix in FORMATS and suffix != fmt:
        raise UsageError(f"--out '{args.out}' names a .{suffix} file but --format is {fmt}: "
                         f"name it .{fmt}, or drop --format")
    if fmt in ("xlsx", "pdf") and args.out is None:
        raise UsageError(f"--format {fmt} needs --out FILE")
    return fmt


def run(args: argparse.Namespace, settings: Settings) -> int:
    from canhgiac.cli import UsageError, case_store_errors  # noqa: PLC0415
    from serving import network, results  # noqa: PLC0415
    from serving.store import CaseStore  # noqa: PLC0415

    t_from = parse_bound(args.date_from, False, "--from")
    t_to = parse_bound(args.date_to, True, "--to")
    try:  # the API's rule: 1970..9000 (UTC), --to after --from (no span limit here)
        start, end = results.check_period(t_from, t_to, ("--from", "--to"), max_span_days=None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fmt = output_format(args)
    with case_store_errors(settings):
        store = CaseStore(settings.store_url)
        try:
            th = network.thresholds(store.model_info(), settings.review_threshold,
                                    settings.hold_threshold)
            review = float(th["review"]) if th["review"] is not None else 0.5
            with store.read() as conn:
                res = results.compute(conn, start, end, review)
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
        try:
            args.out.write_bytes(body)
        except OSError as exc:
            raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}; give --out a "
                             "file in a writable directory") from None
        print(f"wrote {args.out} ({len(res.rows)} rows, {res.period()})")
    return 0
