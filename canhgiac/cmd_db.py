"""`canhgiac db`: the case store's schema. `upgrade` applies the Alembic migrations (the API and
the projection also apply them when they start); `current` prints the revision."""

from __future__ import annotations

import argparse

from canhgiac.settings import Settings

HELP = "case-store schema migrations (upgrade, current)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", metavar="ACTION")
    sub.required = True
    sub.add_parser("upgrade", help="migrate the case store to the newest schema")
    sub.add_parser("current", help="print the schema revision of the case store")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from serving.db import make_engine  # noqa: PLC0415 - keeps `canhgiac --help` fast
    from serving.migrate import current, head, migrate  # noqa: PLC0415

    engine = make_engine(settings.store_url)
    try:
        if args.db_command == "upgrade":
            before, after = migrate(engine)
            if before == after:
                print(f"case store already at revision {after} (newest)")
            else:
                print(f"case store migrated from {before or 'empty'} to {after}")
        else:
            with engine.connect() as conn:
                revision = current(conn)
            state = "newest" if revision == head() else f"newest is {head()}"
            print(f"{revision or 'none (empty or made before migrations)'} ({state})")
    finally:
        engine.dispose()
    return 0
