"""API keys: random tokens shown once, stored as SHA-256 hashes, revocable.

The lookup is by hash (an index), then the stored hash is compared again in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from serving import tables as T
from serving.cases import ROLES
from serving.db import now, rfc3339

TOKEN_PREFIX = "cg_"  # noqa: S105 - a visible prefix, not a secret


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    name: str
    role: str


class KeyCreationError(ValueError):
    """A key cannot be created (bad role, duplicate name)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(conn: Connection, name: str, role: str) -> tuple[int, str]:
    if role not in ROLES:
        raise KeyCreationError(f"unknown role '{role}': one of {', '.join(ROLES)}")
    name = name.strip()
    if not name or len(name) > 128:
        raise KeyCreationError("the key name must be 1..128 characters")
    if conn.execute(select(T.api_keys.c.key_id).where(T.api_keys.c.name == name)).first():
        raise KeyCreationError(f"a key named '{name}' already exists")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    result = conn.execute(T.api_keys.insert().values(
        name=name, role=role, key_hash=hash_token(token), created_at=now()))
    key_id = result.inserted_primary_key
    return int(key_id[0]) if key_id else 0, token


def list_all(conn: Connection) -> list[dict[str, Any]]:
    k = T.api_keys
    rows = conn.execute(select(k.c.key_id, k.c.name, k.c.role, k.c.created_at, k.c.revoked_at)
                        .order_by(k.c.key_id))
    return [{"key_id": r.key_id, "name": r.name, "role": r.role,
             "created_at": rfc3339(r.created_at), "revoked_at": rfc3339(r.revoked_at)}
            for r in rows]


def revoke(conn: Connection, name_or_id: str) -> bool:
    k = T.api_keys
    cond = k.c.name == name_or_id
    if name_or_id.isdigit():
        cond = cond | (k.c.key_id == int(name_or_id))
    result = conn.execute(update(k).where(cond, k.c.revoked_at.is_(None)).values(revoked_at=now()))
    return bool(result.rowcount)


def authenticate(conn: Connection, token: str) -> Principal | None:
    digest = hash_token(token)
    k = T.api_keys
    row = conn.execute(select(k.c.key_id, k.c.name, k.c.role, k.c.key_hash, k.c.revoked_at)
                       .where(k.c.key_hash == digest)).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, digest):
        return None
    return Principal(row.key_id, row.name, row.role)
