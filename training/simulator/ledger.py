"""Columnar accumulation of simulated payments and logins (numpy arrays of integer codes).

Generators append *chunks*; each row gets a global row id in generation order, which breaks
timestamp ties deterministically and lets labels refer to rows before event ids exist.
A transfer to an account of this bank is written twice (:meth:`Ledger.transfer`): a debit on
the payer and, right after it, a credit on the payee at the same instant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHANNELS = ("mobile", "internet", "atm", "branch", "pos", "api")
MOBILE, INTERNET, ATM, BRANCH, POS, API = range(6)
SESSION_CHANNELS = (MOBILE, INTERNET)
DEBIT, CREDIT = 0, 1

PAYMENT_COLUMNS = (
    "row", "ts", "acc", "dirn", "amount", "cur", "cp", "chan", "sess", "ip", "ctry", "dev",
    "desc", "typ",
)
LOGIN_COLUMNS = ("ts", "acc", "ok", "ip", "ctry", "dev", "chan", "sess", "typ")

_DTYPES = {
    "row": np.int64, "ts": np.int64, "acc": np.int32, "dirn": np.int8, "amount": np.float64,
    "cur": np.int8, "cp": np.int32, "chan": np.int8, "sess": np.int64, "ip": np.int32,
    "ctry": np.int16, "dev": np.int32, "desc": np.int16, "typ": np.int8, "ok": np.bool_,
}
_DEFAULTS = {"cur": 0, "sess": -1, "ip": -1, "ctry": -1, "dev": -1, "desc": -1, "typ": 0,
             "ok": True}


@dataclass
class Columns:
    """Concatenated columns of one event kind."""

    data: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.data["ts"].size)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]


class Ledger:
    """Append-only store of payment and login chunks plus a session id counter."""

    def __init__(self, n_accounts: int) -> None:
        self.n_accounts = n_accounts
        self._payments: list[dict[str, np.ndarray]] = []
        self._logins: list[dict[str, np.ndarray]] = []
        self.rows = 0
        self.fraud_rows = 0
        self.sessions = 0

    # ------------------------------------------------------------ appending
    def new_sessions(self, n: int) -> np.ndarray:
        ids = np.arange(self.sessions, self.sessions + n, dtype=np.int64)
        self.sessions += n
        return ids

    def _chunk(self, names: tuple[str, ...], n: int, cols: dict[str, object]) -> dict:
        out = {}
        for name in names:
            if name == "row":
                continue
            value = cols.get(name, _DEFAULTS.get(name))
            if value is None:
                raise KeyError(f"column {name} is required")
            arr = np.asarray(value, dtype=_DTYPES[name])
            out[name] = np.broadcast_to(arr, (n,)).copy() if arr.ndim == 0 else arr
            if out[name].shape != (n,):
                raise ValueError(f"column {name} has shape {out[name].shape}, expected {n}")
        return out

    def payments(self, **cols: object) -> np.ndarray:
        """Append payment rows; returns their row ids."""
        n = int(np.asarray(cols["ts"]).size)
        chunk = self._chunk(PAYMENT_COLUMNS, n, cols)
        chunk["row"] = np.arange(self.rows, self.rows + n, dtype=np.int64)
        self.rows += n
        self.fraud_rows += int(np.count_nonzero(chunk["typ"]))
        self._payments.append(chunk)
        return chunk["row"]

    def logins(self, **cols: object) -> None:
        n = int(np.asarray(cols["ts"]).size)
        self._logins.append(self._chunk(LOGIN_COLUMNS, n, cols))

    def transfer(
        self, *, ts: np.ndarray, payer: np.ndarray, payee: np.ndarray, amount: np.ndarray,
        chan: object, typ: object = 0, credit_typ: object | None = None, **session: object,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Debit ``payer`` (own account index) to party ``payee``; if the payee is an account of
        this bank, also credit it. Returns (debit row ids, credit row ids)."""
        ts = np.asarray(ts, dtype=np.int64)
        payer = np.asarray(payer, dtype=np.int32)
        payee = np.asarray(payee, dtype=np.int32)
        n = ts.size
        amount = np.broadcast_to(np.asarray(amount, dtype=np.float64), (n,))
        debit_rows = self.payments(
            ts=ts, acc=payer, dirn=DEBIT, amount=amount, cp=payee, chan=chan, typ=typ, **session
        )
        inside = payee < self.n_accounts
        if not inside.any():
            return debit_rows, np.empty(0, dtype=np.int64)
        desc = session.get("desc", -1)
        cur = session.get("cur", 0)
        credit_rows = self.payments(
            ts=ts[inside], acc=payee[inside], dirn=CREDIT, amount=amount[inside],
            cp=payer[inside], chan=_pick(chan, inside, n), desc=_pick(desc, inside, n),
            cur=_pick(cur, inside, n),
            typ=_pick(typ if credit_typ is None else credit_typ, inside, n),
        )
        return debit_rows, credit_rows

    # ------------------------------------------------------------ results
    def payment_columns(self) -> Columns:
        return Columns(_concat(self._payments, PAYMENT_COLUMNS))

    def login_columns(self) -> Columns:
        return Columns(_concat(self._logins, LOGIN_COLUMNS))


def _pick(value: object, mask: np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return arr
    return np.broadcast_to(arr, (n,))[mask]


def _concat(chunks: list[dict[str, np.ndarray]], names: tuple[str, ...]) -> dict:
    if not chunks:
        return {n: np.empty(0, dtype=_DTYPES[n]) for n in names}
    return {n: np.concatenate([c[n] for c in chunks]) for n in names}
