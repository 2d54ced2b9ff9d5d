"""Pseudonyms for account and customer ids where the service keeps them outside the case
store: MLflow artifacts (the evaluation window), model cards and log lines (Law 91/2025/QH15,
Decree 356/2025/NĐ-CP: account and transaction data are sensitive personal data).

A pseudonym is a keyed hash, ``p-`` + the first 20 hex digits (80 bits) of
HMAC-SHA256(key, id): the same id always gives the same pseudonym under one key (so
per-account metrics still group), and without the key it cannot be reversed or recomputed
from a list of candidate ids. The key: ``CANHGIAC_PSEUDONYM_KEY`` if set (give every process
of one deployment the same key), else a random 32-byte key kept in ``<data dir>/pseudonym.key``
(created 0600 on first use; keep it with the data directory's other secrets: whoever holds it
and a list of ids can link pseudonyms back to accounts).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_FILE = "pseudonym.key"
PREFIX = "p-"
HEX_DIGITS = 20


@dataclass(frozen=True, slots=True)
class Pseudonymiser:
    key: bytes

    def __call__(self, value: object) -> str:
        text = value if isinstance(value, str) else str(value)
        digest = hmac.new(self.key, text.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return PREFIX + digest.hexdigest()[:HEX_DIGITS]

    @classmethod
    def for_data_dir(cls, data_dir: Path, key: str | None = None) -> Pseudonymiser:
        """The configured key (``CANHGIAC_PSEUDONYM_KEY``), else the data directory's own."""
        if key:
            return cls(key.encode("utf-8"))
        return cls(_key_file(Path(data_dir) / KEY_FILE))


def _key_file(path: Path) -> bytes:
    """The key in ``path``, created (0600, exclusively: concurrent first uses agree) if absent."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # fails if another process created it first: use theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return bytes.fromhex(path.read_text().strip())
