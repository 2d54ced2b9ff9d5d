"""The ``canhgiac`` command: the composition root. Builds ``Settings`` once and dispatches.

Each subcommand lives in ``canhgiac/cmd_<name>.py`` with ``HELP``, ``add_arguments(parser)``
and ``run(args, settings) -> int``; those modules import their heavy dependencies inside
``run`` so that ``canhgiac --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import unicodedata
from collections.abc import Sequence
from typing import NoReturn

from pydantic import ValidationError

COMMANDS = ("demo", "simulate", "train", "promote", "score", "serve", "sink", "keys", "db",
            "watchlist", "broker", "replay", "report", "devices")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see '{self.prog} --help')\n")


def one_line(text: str) -> str:
    """``text`` with control characters and line breaks escaped (``\\r``, ``\\x1c``): an
    argument quoted in an error message must not split it over several lines."""
    return "".join(
        c if unicodedata.category(c) not in ("Cc", "Zl", "Zp") else repr(c)[1:-1] for c in text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="canhgiac",
        description="Cảnh Giác: real-time transaction anomaly detection (139/CĐ-TTg).",
    )
    parser.add_argument("--log-level", default=os.environ.get("CANHGIAC_LOG_LEVEL", "INFO"),
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"canhgiac.cmd_{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from canhgiac.logs import configure_logging  # noqa: PLC0415

    configure_logging(args.log_level)
    from canhgiac.settings import Settings  # noqa: PLC0415

    try:
        settings = Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = "CANHGIAC_" + str(err["loc"][0]).upper() if err["loc"] else "settings"
        print(f"canhgiac: error: {where}: {one_line(err['msg'])}", file=sys.stderr)
        return 2
    configure_logging(args.log_level, settings.pseudonymiser)  # ids in logs: pseudonyms
    try:
        return int(args._module.run(args, settings) or 0)
    except KeyboardInterrupt:
        return 130
    except UsageError as exc:
        print(f"canhgiac {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 1-65535 (a bad one is the parser's one-line error)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is outside 1-65535")
    return port


class UsageError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 2."""


if __name__ == "__main__":  # pragma: no cover - `python -m canhgiac.cli`
    # Run the imported module's main so that its exception classes are the ones raised.
    from canhgiac.cli import main as _main

    sys.exit(_main())
