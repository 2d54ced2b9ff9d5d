"""`canhgiac keys`: create (prints the key once, alone on the last line), list, revoke."""

from __future__ import annotations

import argparse

from canhgiac.settings import Settings

HELP = "manage API keys (create, list, revoke)"
ROLES = ("viewer", "investigator", "supervisor", "admin")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION")
    sub.required = True
    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True, help="who holds it (unique)")
    sub.add_parser("list", help="list keys (never the keys themselves)")
    revoke = sub.add_parser("revoke", help="revoke a key by name or id")
    revoke.add_argument("name_or_id")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from canhgiac.cli import UsageError  # noqa: PLC0415
    from serving.keys import KeyCreationError  # noqa: PLC0415
    from serving.store import CaseStore  # noqa: PLC0415

    store = CaseStore(settings.store_url)
    try:
        if args.keys_command == "create":
            try:
                key_id, token = store.create_key(args.name, args.role)
            except KeyCreationError as exc:
                raise UsageError(str(exc)) from None
            print(f"created key {key_id} '{args.name}' with role {args.role}; "
                  "store it now, it is not shown again:")
            print(token)
        elif args.keys_command == "list":
            for k in store.list_keys():
                state = f"revoked {k['revoked_at']}" if k["revoked_at"] else "active"
                print(f"{k['key_id']}\t{k['name']}\t{k['role']}\t{k['created_at']}\t{state}")
        else:
            if not store.revoke_key(args.name_or_id):
                raise UsageError(f"no active key '{args.name_or_id}'")
            print(f"revoked '{args.name_or_id}'")
    finally:
        store.close()
    return 0
