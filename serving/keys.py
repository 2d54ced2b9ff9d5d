"""API keys: random tokens shown once, stored as SHA-256 hashes, revocable, each held by a user.

A *user* is a person; one user may hold several keys (a laptop and a batch job, say). The
controls that need two people (maker-checker) compare users, never key names, so a user name
is normalised before it is stored or compared: Unicode NFKC, case-folded, surrounding spaces
removed, inner runs of spaces collapsed; invisible or format characters (zero-width spaces,
joiners, bidirectional marks, controls) are refused, because they make two names look alike.

The lookup is by hash (an index), then the stored hash is compared again in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from serving import tables as T
from serving.cases import ROLES
from serving.db import now, rfc3339

TOKEN_PREFIX = "cg_"  # noqa: S105 - a visible prefix, not a secret
MAX_NAME = 128
# Unicode categories that render as nothing (or move text around) and so forge look-alikes:
# Cc controls, Cf format (ZWSP, ZWJ, RLO, BOM…), Co private use, Cs surrogates, Cn unassigned,
# Zl/Zp line and paragraph separators
_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    name: str  # the key's name
    role: str
    user: str  # the person holding the key (normalised)


class KeyCreationError(ValueError):
    """A key cannot be created (bad role, duplicate name, unusable user name)."""


def clean_text(value: str, what: str) -> str:
    """``value`` without surrounding spaces; ValueError if empty, too long or invisible."""
    for ch in value:
        if unicodedata.category(ch) in _INVISIBLE:
            raise ValueError(f"the {what} contains an invisible or control character "
                             f"U+{ord(ch):04X}; type it plainly")
    text = " ".join(unicodedata.normalize("NFKC", value).split())
    if not text or len(text) > MAX_NAME:
        raise ValueError(f"the {what} must be 1..{MAX_NAME} visible characters")
    return text


def normalise_user(value: str) -> str:
    """The canonical form of a user name (NFKC, case-folded); ValueError if unusable."""
    return unicodedata.normalize("NFKC", clean_text(value, "user name").casefold())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(conn: Connection, name: str, role: str, user: str | None = None) -> tuple[int, str]:
    """A new key for ``user`` (default: the key name, normalised); (key id, token)."""
    if role not in ROLES:
        raise KeyCreationError(f"unknown role '{role}': one of {', '.join(ROLES)}")
    try:
        name = clean_text(name, "key name")
        holder = normalise_user(name if user is None else user)
    except ValueError as exc:
        raise KeyCreationError(str(exc)) from None
    if conn.execute(select(T.api_keys.c.key_id).where(T.api_keys.c.name == name)).first():
        raise KeyCreationError(f"a key named '{name}' already exists")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    result = conn.execute(T.api_keys.insert().values(
        name=name, role=role, user=holder, key_hash=hash_token(token), created_at=now()))
    key_id = result.inserted_primary_key
    return int(key_id[0]) if key_id else 0, token


def list_all(conn: Connection) -> list[dict[str, Any]]:
    k = T.api_keys
    rows = conn.execute(select(k.c.key_id, k.c.name, k.c.user, k.c.role, k.c.created_at,
                               k.c.revoked_at).order_by(k.c.key_id))
    return [{"key_id": r.key_id, "name": r.name, "user": r.user, "role": r.role,
             "created_at": rfc3339(r.created_at), "revoked_at": rfc3339(r.revoked_at)}
            for r in rows]


MAX_KEY_ID = 2**31 - 1  # api_keys.key_id is an INTEGER column


def key_id_of(name_or_id: str) -> int | None:
    """The key id ``name_or_id`` spells, or None: ASCII digits only ('٣'.isdigit() and
    int('٣') == 3: a name must not revoke key 3), within the key_id column's INTEGER (32 bits
    on PostgreSQL: a larger int raises there)."""
    if name_or_id.isascii() and name_or_id.isdigit() and int(name_or_id) <= MAX_KEY_ID:
        return int(name_or_id)
    return None


def revoke(conn: Connection, name_or_id: str) -> bool:
    k = T.api_keys
    cond = k.c.name == name_or_id
    key_id = key_id_of(name_or_id)
    if key_id is not None:
        cond = cond | (k.c.key_id == key_id)
    result = conn.execute(update(k).where(cond, k.c.revoked_at.is_(None)).values(revoked_at=now()))
    return bool(result.rowcount)


def authenticate(conn: Connection, token: str) -> Principal | None:
    digest = hash_token(token)
    k = T.api_keys
    row = conn.execute(select(k.c.key_id, k.c.name, k.c.role, k.c.user, k.c.key_hash,
                              k.c.revoked_at).where(k.c.key_hash == digest)).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, digest):
        return None
    return Principal(row.key_id, row.name, row.role, row.user)
