"""Opaque pagination cursors: base64url JSON bound to the query's filters."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from serving.errors import ApiError


def _fingerprint(filters: Any) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:12]


def encode(position: list[Any], filters: Any) -> str:
    raw = json.dumps({"p": position, "f": _fingerprint(filters)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, filters: Any, shape: tuple[type, ...]) -> list[Any]:
    """The position in ``cursor``; 400 if it is not ours, damaged, or from other filters."""
    bad = ApiError(400, "invalid_cursor", "the cursor is invalid: pass back the next_cursor "
                   "of the previous page unchanged, with the same filters")
    if len(cursor) > 1024:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        obj = json.loads(raw)
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(obj, dict) or obj.get("f") != _fingerprint(filters):
        raise bad
    position = obj.get("p")
    if not isinstance(position, list) or len(position) != len(shape):
        raise bad
    for value, kind in zip(position, shape, strict=True):
        if isinstance(value, bool) or not isinstance(value, kind):
            raise bad
    return position
