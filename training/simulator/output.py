"""Turn the integer-coded simulation into the contract's tables (pyarrow), in event-time order.

Rows are sorted by (timestamp, generation order), so ties are broken deterministically and a
transfer's debit always precedes its credit. Event ids follow that order.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from training.simulator import texts
from training.simulator.labels import LABEL_KINDS, SOURCES, LabelRows
from training.simulator.ledger import CHANNELS, Columns
from training.simulator.population import (
    _FIRST_OCTETS,
    COUNTRIES,
    OTHER_BANKS,
    ROLES,
    SEGMENTS,
    Population,
)
from training.simulator.typologies.base import TYPOLOGIES

TS = pa.timestamp("us", tz="UTC")
EWALLETS = ("MOMO", "ZALOPAY", "VNPAY", "SHOPEEPAY")


def _take(values: list[str] | np.ndarray, idx: np.ndarray) -> pa.Array:
    """String column ``values[idx]`` with nulls where ``idx < 0``."""
    dictionary = pa.array(values, type=pa.string())
    mask = idx < 0
    indices = pa.array(np.where(mask, 0, idx).astype(np.int64), mask=mask if mask.any() else None)
    return dictionary.take(indices)


class Strings:
    """The string forms of accounts, counterparties, devices and IPs (seeded, made once)."""

    def __init__(self, pop: Population, bank_code: str, rng: np.random.Generator) -> None:
        parties = pop.parties
        total = parties.size
        numbers = np.unique(rng.integers(10**11, 10**12, size=int(total * 1.05) + 16))
        numbers = rng.permutation(numbers)[:total]
        if numbers.size < total:  # pragma: no cover - astronomically unlikely
            raise RuntimeError("not enough distinct account numbers")
        self.party_id = [str(x) for x in numbers.tolist()]
        banks = [bank_code, *OTHER_BANKS]
        self.party_bank = [bank_code] * pop.n + [banks[b + 1] for b in parties.bank]
        # ATMs are terminals of this bank; e-wallets are their own payment institutions
        for k, i in enumerate(parties.groups.get("atm", np.empty(0, np.int32)).tolist()):
            self.party_id[i] = f"ATM{k:05d}"
        for k, i in enumerate(parties.groups.get("ewallet", np.empty(0, np.int32)).tolist()):
            self.party_bank[i] = EWALLETS[k % len(EWALLETS)]
        self.account_id = self.party_id[: pop.n]
        dev = rng.integers(0, 2**62, size=pop.devices)
        self.device_id = [f"d{x:016x}" for x in dev.tolist()]
        n_ip = len(pop.ip_ctry)
        ctry = np.array(pop.ip_ctry, dtype=np.int64)
        octets = rng.integers(1, 255, size=(n_ip, 3))
        first_choice = rng.integers(0, 1000, size=n_ip)
        firsts = [_FIRST_OCTETS[c] for c in COUNTRIES]
        self.ip = [
            f"{firsts[c][f % len(firsts[c])]}.{a}.{b}.{d}"
            for c, f, (a, b, d) in zip(ctry.tolist(), first_choice.tolist(), octets.tolist(),
                                       strict=True)
        ]


def _flag(codes: np.ndarray) -> pa.Array:
    """A nullable boolean column from codes -1 (null: not reported), 0, 1."""
    mask = codes < 0
    return pa.array(codes == 1, pa.bool_(), mask=mask if mask.any() else None)


def payments_table(pay: Columns, order: np.ndarray, s: Strings, tag: str,
                   sessions: list[str]) -> tuple[pa.Table, pa.Table, list[str]]:
    """The payments table and the truth table, rows in ``order``; also the event ids."""
    n = order.size
    event_id = [f"P{tag}-{i:08d}" for i in range(n)]
    col = {k: v[order] for k, v in pay.data.items()}
    typ = col["typ"].astype(np.int64) - 1
    table = pa.table({
        "event_id": pa.array(event_id, pa.string()),
        "ts": pa.array(col["ts"], TS),
        "account_id": _take(s.account_id, col["acc"]),
        "direction": _take(["debit", "credit"], col["dirn"]),
        "amount": pa.array(col["amount"], pa.float64()),
        "currency": _take(list(texts.CURRENCIES), col["cur"]),
        "counterparty_account": _take(s.party_id, col["cp"]),
        "counterparty_bank": _take(s.party_bank, col["cp"]),
        "channel": _take(list(CHANNELS), col["chan"]),
        "session_id": _take(sessions, col["sess"]),
        "ip": _take(s.ip, col["ip"]),
        "country": _take(list(COUNTRIES), col["ctry"]),
        "device_id": _take(s.device_id, col["dev"]),
        "description": _take(list(texts.DESCRIPTIONS), col["desc"]),
        # the app's device-risk signals (training.simulator.app_signals): null = not reported
        "on_call": _flag(col["on_call"]),
        "remote_access": _flag(col["remote_access"]),
    })
    truth = pa.table({
        "event_id": table["event_id"],
        "is_fraud": pa.array(typ >= 0),
        "typology": _take(list(TYPOLOGIES), typ),
    })
    return table, truth, event_id


def logins_table(log: Columns, s: Strings, tag: str, sessions: list[str]) -> pa.Table:
    order = np.argsort(log["ts"], kind="stable")
    col = {k: v[order] for k, v in log.data.items()}
    return pa.table({
        "event_id": pa.array([f"L{tag}-{i:08d}" for i in range(order.size)], pa.string()),
        "ts": pa.array(col["ts"], TS),
        "account_id": _take(s.account_id, col["acc"]),
        "success": pa.array(col["ok"], pa.bool_()),
        "ip": _take(s.ip, col["ip"]),
        "country": _take(list(COUNTRIES), col["ctry"]),
        "device_id": _take(s.device_id, col["dev"]),
        "channel": _take(list(CHANNELS), col["chan"]),
        "session_id": _take(sessions, col["sess"]),
    })


def accounts_tables(pop: Population, s: Strings, rng: np.random.Generator) -> tuple[
    pa.Table, pa.Table
]:
    """The accounts table and the account roles (ground truth), ordered by opening time."""
    order = np.lexsort((np.arange(pop.n), pop.opened_us))
    business = pop.is_business[order]
    seg = pop.seg[order]
    kyc = np.where(rng.random(pop.n) < 0.01, rng.integers(1, len(COUNTRIES), size=pop.n), 0)
    ids = _take(s.account_id, order)
    cust = [f"C{x:09d}" for x in (rng.permutation(pop.n) + 10_000_000).tolist()]
    accounts = pa.table({
        "account_id": ids,
        "customer_id": _take(cust, order),
        "type": _take(["personal", "business"], business.astype(np.int64)),
        "opened_at": pa.array(pop.opened_us[order], TS),
        "kyc_country": _take(list(COUNTRIES), kyc[order]),
        "birth_year": pa.array(pop.birth_year[order], pa.int64(), mask=business),
        "registered_at": pa.array(pop.registered_us[order], TS, mask=~business),
        "segment": _take(list(SEGMENTS), seg),
    })
    roles = pa.table({"account_id": ids, "role": _take(list(ROLES), pop.role[order])})
    return accounts, roles


def labels_table(lab: LabelRows, s: Strings, tag: str, row_rank: np.ndarray,
                 event_id: list[str]) -> pa.Table:
    order = np.lexsort((np.arange(lab.confirmed_us.size), lab.confirmed_us))
    row = lab.row[order]
    ev = np.where(row >= 0, row_rank[np.maximum(row, 0)], -1)
    return pa.table({
        "label_id": pa.array([f"B{tag}-{i:07d}" for i in range(order.size)], pa.string()),
        "confirmed_at": pa.array(lab.confirmed_us[order], TS),
        "account_id": _take(s.account_id, lab.acc[order]),
        "event_id": _take(event_id, ev),
        "label": _take(list(LABEL_KINDS), lab.label[order]),
        "typology": pa.array([lab.typology[i] for i in order.tolist()], pa.string()),
        "source": _take(list(SOURCES), lab.source[order]),
    })


def watchlist_table(entries: list[tuple[int, int, str, str]], s: Strings) -> pa.Table:
    """(party, listed_us, source, reason) → the watch-list contract (one row per account)."""
    parties = np.array([e[0] for e in entries], dtype=np.int64)
    return pa.table({
        "bank": pa.array([s.party_bank[i] for i in parties.tolist()], pa.string()),
        "account": pa.array([s.party_id[i] for i in parties.tolist()], pa.string()),
        "source": pa.array([e[2] for e in entries], pa.string()),
        "listed_at": pa.array([e[1] for e in entries], TS),
        "reason": pa.array([e[3] for e in entries], pa.string()),
    })
