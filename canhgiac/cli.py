"""The ``canhgiac`` command: the composition root. Builds ``Settings`` once and dispatches.

Each subcommand lives in ``canhgiac/cmd_<name>.py`` with ``HELP``, ``add_arguments(parser)``
and ``run(args, settings) -> int``; those modules import their heavy dependencies inside
``run`` so that ``canhgiac --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import ValidationError

if TYPE_CHECKING:
    from canhgiac.settings import Settings

COMMANDS = ("demo", "simulate", "train", "promote", "score", "serve", "sink", "keys", "db",
            "watchlist", "broker", "replay", "report", "devices")
# Long-running services: an exception that ends them keeps its traceback (their logs are where
# an operator looks), and their exit codes and signal handling stay their own.
SERVICES = frozenset({"demo", "score", "serve", "sink", "devices", "broker"})
DEBUG_HINT = "set CANHGIAC_DEBUG=1 for the traceback"


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
    except Exception as exc:
        # the safety net: a failure of the environment (a file system, a database, MLflow)
        # that no command turned into a UsageError is one line and exit code 1, not a traceback
        if (args.command in SERVICES or not environmental(exc)
                or os.environ.get("CANHGIAC_DEBUG") == "1"):
            raise
        hint = ("check CANHGIAC_KAFKA_BOOTSTRAP and that the broker is running; "
                if type(exc).__module__.startswith("kafka") else "")
        print(f"canhgiac {args.command}: error: {one_line(first_line(exc))} ({hint}"
              f"{DEBUG_HINT})", file=sys.stderr)
        return 1


def quiet_import(name: str) -> Any:
    """Import ``name`` with the warnings raised meanwhile recorded, not printed. MLflow warns on
    stderr when a PythonModel subclass (``training.registry``'s) has no type hints on predict,
    under a filter of its own that overrides ours: noise that would make a one-line error
    three lines."""
    with warnings.catch_warnings(record=True):
        return importlib.import_module(name)


def environmental(exc: BaseException) -> bool:
    """A failure of the file system, a database or MLflow (not a bug of ours, not a broken
    pipe: ``canhgiac keys list | head`` is no error)."""
    if isinstance(exc, BrokenPipeError):
        return False
    kinds: list[type[BaseException]] = [OSError]
    if "sqlalchemy.exc" in sys.modules:  # only if the command imported them
        kinds.append(sys.modules["sqlalchemy.exc"].SQLAlchemyError)
    if "mlflow.exceptions" in sys.modules:
        kinds.append(sys.modules["mlflow.exceptions"].MlflowException)
    if "kafka.errors" in sys.modules:  # a broker that cannot be reached (watchlist load, ...)
        kinds.append(sys.modules["kafka.errors"].KafkaError)
    return isinstance(exc, tuple(kinds))


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``; a database error's driver message (not the SQL
    statement, parameters and 'Background on this error' lines SQLAlchemy adds)."""
    inner = getattr(exc, "orig", None)
    source = inner if isinstance(inner, BaseException) else exc
    text = (str(source).strip().splitlines() or [""])[0].strip()
    name = type(source).__name__
    if text.startswith(name):  # kafka-python's errors start with their own class name
        text = text[len(name):].lstrip(": ")
    return f"{name}: {text}" if text else name


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (also when it is not a valid URL)."""
    from urllib.parse import urlsplit, urlunsplit  # noqa: PLC0415

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "(unreadable URL)"


@contextmanager
def case_store_errors(settings: Settings) -> Iterator[None]:
    """Turn a failure to open or read the case store (a bad CANHGIAC_CASE_STORE_URL, a database
    that is down, a CANHGIAC_DATA_DIR that cannot hold the store) into one UsageError line
    that names the setting to fix."""
    try:
        yield
    except UsageError:
        raise
    except Exception as exc:
        import sqlalchemy.exc as sa_exc  # noqa: PLC0415 - only commands with a store get here

        if isinstance(exc, BrokenPipeError) or not isinstance(
                exc, OSError | ImportError | sa_exc.SQLAlchemyError):
            raise
        raise UsageError(case_store_problem(exc, settings)) from None


def case_store_problem(exc: BaseException, settings: Settings) -> str:
    """What is wrong with the case store and which setting fixes it, in one line."""
    import sqlalchemy.exc as sa_exc  # noqa: PLC0415

    example = ("postgresql+psycopg://user:password@host:5432/canhgiac or "
               "sqlite:////absolute/path/cases.db")
    if not settings.case_store_url:  # the default SQLite file under the data directory
        where = f"CANHGIAC_DATA_DIR={settings.data_dir}"
        if isinstance(exc, OSError):
            return (f"{where}: cannot create the case store there ({first_line(exc)}); set "
                    "CANHGIAC_DATA_DIR to a writable directory")
        return (f"cannot open the case store {settings.data_dir / 'cases.db'} "
                f"({first_line(exc)}); point CANHGIAC_DATA_DIR at another directory, or "
                "move the broken file away")
    url = redact_url(settings.case_store_url)
    if isinstance(exc, sa_exc.ArgumentError | sa_exc.NoSuchModuleError):
        return (f"CANHGIAC_CASE_STORE_URL={url} is not a usable database URL "
                f"({first_line(exc)}); give one such as {example}")
    if isinstance(exc, ImportError):
        return (f"CANHGIAC_CASE_STORE_URL={url}: its database driver is not installed "
                f"({first_line(exc)}); use {example}")
    if isinstance(exc, sa_exc.OperationalError) and not url.startswith("sqlite"):
        return (f"cannot connect to the case store {url} ({first_line(exc)}); check "
                "CANHGIAC_CASE_STORE_URL and that the database is running")
    fix = ("point it at a case store, or at a new file to create one"
           if url.startswith("sqlite") else "point it at the case store")
    return (f"cannot open the case store {url} ({first_line(exc)}); check "
            f"CANHGIAC_CASE_STORE_URL: {fix}")


def finite_float(text: str) -> float:
    """An argparse type: a finite number (``nan`` and ``inf`` pass every ``<``/``<=`` range
    check written the usual way, so they are refused here, as a parser's one-line error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def nonempty_path(text: str) -> Path:
    """An argparse type: a path that is not empty (``Path('')`` is the current directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the path is empty: give a file or directory name")
    return Path(text)


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
