"""`canhgiac db`: the case store's schema and retention. `upgrade` applies the Alembic
migrations (the API and the projection also apply them when they start); `current` prints the
revision; `purge` deletes scored payments and logins older than the retention period
(``CANHGIAC_RETENTION_DAYS``), keeping those of accounts with a case."""

from __future__ import annotations

import argparse

from canhgiac.settings import Settings

HELP = "case-store schema migrations (upgrade, current) and retention (purge)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_command", metavar="ACTION")
    sub.required = True
    sub.add_parser("upgrade", help="migrate the case store to the newest schema")
    sub.add_parser("current", help="print the schema revision of the case store")
    purge = sub.add_parser("purge", help="delete scored payments and logins older than the "
                                         "retention period (not those of accounts with a case)")
    purge.add_argument("--days", type=int, default=None,
                       help="retention in days (default CANHGIAC_RETENTION_DAYS)")
    purge.add_argument("--dry-run", action="store_true", help="count, do not delete")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from canhgiac.cli import case_store_errors  # noqa: PLC0415

    with case_store_errors(settings):
        return _run(args, settings)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from serving.db import make_engine  # noqa: PLC0415 - keeps `canhgiac --help` fast
    from serving.migrate import current, head, migrate  # noqa: PLC0415

    if args.db_command == "purge":
        return _purge(args, settings)

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


def _purge(args: argparse.Namespace, settings: Settings) -> int:
    import time  # noqa: PLC0415

    from canhgiac.cli import UsageError  # noqa: PLC0415
    from serving.retention import MIN_DAYS, purge  # noqa: PLC0415
    from serving.store import CaseStore  # noqa: PLC0415

    days = settings.retention_days if args.days is None else args.days
    if days < MIN_DAYS:
        raise UsageError(f"--days must be at least {MIN_DAYS} (the risk looks back 30 days)")
    store = CaseStore(settings.store_url)
    try:
        cutoff = time.time() - days * 86_400
        if args.dry_run:
            with store.read() as conn:
                result = purge(conn, cutoff, dry_run=True)
        else:
            with store.write() as conn:
                result = purge(conn, cutoff)
    finally:
        store.close()
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {result.scored} scored payments and {result.logins} logins older than "
          f"{days} days ({result.risk_rows} accounts left the ranked list); accounts with a "
          "case keep theirs")
    return 0
