"""Opaque pagination cursors: base64url JSON bound to the query's filters."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from typing import Any

from serving.errors import ApiError
from serving.schemas import ID_LEN_NORMALISED, ROW_ID_MAX

MAX_CURSOR = 8192  # characters: a position with an account id of ID_LEN characters fits
MAX_STRING = ID_LEN_NORMALISED  # a string in a position: an account id
# an integer in a position is a row id: within 64 bits (SQLite) and within the INTEGER
# columns' 32 bits of PostgreSQL, which refuses a larger value in a comparison
INT_MIN, INT_MAX = -ROW_ID_MAX - 1, ROW_ID_MAX


def _fingerprint(filters: Any) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:12]


def encode(position: list[Any], filters: Any) -> str:
    # UTF-8, not \\u escapes: a non-ASCII id takes at most 4 bytes a character, not 12
    raw = json.dumps({"p": position, "f": _fingerprint(filters)}, separators=(",", ":"),
                     ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")  # NaN, Infinity: never written by encode


def _valid(value: Any, kind: Any) -> bool:
    """Whether one position value is of ``kind`` and something the database can compare: an
    int within INT_MIN..INT_MAX, a finite float, a string of valid Unicode (no lone surrogate,
    which UTF-8 cannot hold, no NUL, which PostgreSQL's text cannot) of at most MAX_STRING
    characters."""
    if isinstance(value, bool) or not isinstance(value, kind):
        return False
    if isinstance(value, int):
        return INT_MIN <= value <= INT_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            return False
        if "\x00" in value:  # PostgreSQL's text cannot hold one (the query raised)
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


def decode(cursor: str, filters: Any, shape: tuple[Any, ...]) -> list[Any]:
    """The position in ``cursor``; 400 if it is not ours, damaged, or from other filters.

    Every value is checked against ``shape`` and against what the query can bind (see
    :func:`_valid`): a forged cursor is a 400, never a database error."""
    bad = ApiError(400, "invalid_cursor", "the cursor is invalid: pass back the next_cursor "
                   "of the previous page unchanged, with the same filters")
    if len(cursor) > MAX_CURSOR:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        obj = json.loads(raw, parse_constant=_no_constant)
    except (binascii.Error, ValueError, RecursionError):
        raise bad from None
    if not isinstance(obj, dict) or obj.get("f") != _fingerprint(filters):
        raise bad
    position = obj.get("p")
    if not isinstance(position, list) or len(position) != len(shape):
        raise bad
    for value, kind in zip(position, shape, strict=True):
        if not _valid(value, kind):
            raise bad
    return position
