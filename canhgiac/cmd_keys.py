"""`canhgiac keys`: create (prints the key once, alone on the last line), list, revoke.

A key belongs to a user (a person): ``--user`` names them, and one user may hold several keys.
Without ``--user`` the key's holder is the key name itself (normalised), i.e. a one-key user;
give ``--user`` for every further key of the same person, or maker-checker sees two people.
"""

from __future__ import annotations

import argparse
from typing import Any

from canhgiac.settings import Settings

HELP = "manage API keys (create, list, revoke)"
ROLES = ("viewer", "investigator", "supervisor", "admin")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION")
    sub.required = True
    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", required=True, help="the key's name (unique)")
    create.add_argument("--user", default=None,
                        help="the person holding it (NFKC, case-insensitive; default: --name)")
    sub.add_parser("list", help="list keys (never the keys themselves)")
    revoke = sub.add_parser("revoke", help="revoke a key by name or id")
    revoke.add_argument("name_or_id")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from canhgiac.cli import case_store_errors  # noqa: PLC0415

    with case_store_errors(settings):
        return _run(args, settings)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from canhgiac.cli import UsageError  # noqa: PLC0415
    from serving.keys import KeyCreationError  # noqa: PLC0415
    from serving.store import CaseStore  # noqa: PLC0415

    store = CaseStore(settings.store_url)
    try:
        if args.keys_command == "create":
            try:
                key_id, token = store.create_key(args.name, args.role, args.user)
            except KeyCreationError as exc:
                raise UsageError(str(exc)) from None
            holder = next(k["user"] for k in store.list_keys() if k["key_id"] == key_id)
            print(f"created key {key_id} '{args.name}' of user '{holder}' with role "
                  f"{args.role}; store it now, it is not shown again:")
            print(token)
        elif args.keys_command == "list":
            for k in store.list_keys():
                state = f"revoked {k['revoked_at']}" if k["revoked_at"] else "active"
                print(f"{k['key_id']}\t{k['name']}\t{k['user']}\t{k['role']}\t"
                      f"{k['created_at']}\t{state}")
        else:
            _check_revocable(store, args.name_or_id)
            if not store.revoke_key(args.name_or_id):
                raise UsageError(f"no active key '{args.name_or_id}'")
            print(f"revoked '{args.name_or_id}'")
    finally:
        store.close()
    return 0


def _check_revocable(store: Any, name_or_id: str) -> None:
    """Digits that are no key id (beyond the key_id column, or not ASCII, such as '²';
    :func:`serving.keys.key_id_of`) can only name a key: refused here with what to do
    instead."""
    from canhgiac.cli import UsageError  # noqa: PLC0415
    from serving.keys import MAX_KEY_ID, key_id_of  # noqa: PLC0415

    if not name_or_id.isdigit() or key_id_of(name_or_id) is not None:
        return
    named = [k for k in store.list_keys() if k["name"] == name_or_id and not k["revoked_at"]]
    if named:
        raise UsageError(f"revoke key '{name_or_id}' by its id {named[0]['key_id']} (see "
                         "'canhgiac keys list')")
    raise UsageError(f"no active key '{name_or_id}': a key id is a number from 1 to "
                     f"{MAX_KEY_ID} (see 'canhgiac keys list')")
