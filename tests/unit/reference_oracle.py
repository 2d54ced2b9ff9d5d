"""Brute-force definitions of the reference features (confirmed fraud, withdrawals, watch list),
written from the contract alone: nothing of ``features.reference``'s indexes or timelines."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from features.events import Label, Payment, WatchEntry

DAY = 86400.0
BAD = ("fraud", "mule")
RESOLVE_DAYS = 35


@dataclass(frozen=True)
class Rec:
    label: Label
    sender: str
    receiver: str
    amount: float
    paid_t: float


def records(labels: Sequence[Label], payments: dict[str, Payment]) -> list[Rec]:
    out = []
    seen: set[str] = set()
    for lb in labels:
        if lb.label_id in seen:
            continue
        seen.add(lb.label_id)
        if lb.label not in BAD or lb.event_id is None:
            continue
        p = payments.get(lb.event_id)
        # the payment resolves the label only if it is the label's account's and was made at
        # most 35 days before the confirmation (what a live scorer still holds), not after it
        if (p is not None and p.account_id == lb.account_id
                and 0 <= lb.t - p.t <= RESOLVE_DAYS * DAY):
            if p.direction == "debit":
                out.append(Rec(lb, p.account_id, p.counterparty_account, p.amount, p.t))
            else:
                out.append(Rec(lb, p.counterparty_account, p.account_id, p.amount, p.t))
        elif lb.counterparty_account is not None:
            out.append(Rec(lb, lb.account_id, lb.counterparty_account, 0.0, lb.t))
    return out


def unique(labels: Sequence[Label]) -> list[Label]:
    seen: set[str] = set()
    out = []
    for lb in labels:
        if lb.label_id not in seen:
            seen.add(lb.label_id)
            out.append(lb)
    return out


def in_force(r: Rec, side_account: str, labels: Sequence[Label], t: float) -> bool:
    if r.label.t > t:
        return False
    return not any(
        lb.label == "legit" and r.label.t <= lb.t <= t
        and ((lb.event_id is not None and lb.event_id == r.label.event_id)
             or (lb.event_id is None and lb.account_id == side_account))
        for lb in unique(labels))


def watch_in_force(entries: Sequence[WatchEntry], account: str, t: float) -> list[WatchEntry]:
    latest: dict[str, WatchEntry] = {}
    for e in entries:
        latest[f"{e.bank}/{e.account}"] = e
    return [e for e in latest.values() if e.account == account and e.listed_at.timestamp() <= t
            and (e.delisted_at is None or t < e.delisted_at.timestamp())]


def flagged(account: str, t: float, labels: Sequence[Label], recs: Sequence[Rec],
            watch: Sequence[WatchEntry]) -> bool:
    labels = unique(labels)
    for b in labels:
        if b.event_id is None and b.label in BAD and b.account_id == account and b.t <= t:
            if not any(lb.event_id is None and lb.label == "legit" and lb.account_id == account
                       and b.t <= lb.t <= t for lb in labels):
                return True
    if any(r.receiver == account and in_force(r, account, labels, t) for r in recs):
        return True
    return bool(watch_in_force(watch, account, t))


def history(account: str, t: float, labels: Sequence[Label], recs: Sequence[Rec]
            ) -> list[float]:
    """received (count, sum) 1/7/30 d, then sent."""
    out: list[float] = []
    for side in ("received", "sent"):
        for w in (DAY, 7 * DAY, 30 * DAY):
            sel = [r for r in recs if (r.receiver if side == "received" else r.sender) == account
                   and t - w < r.paid_t <= t and in_force(r, account, labels, t)]
            out += [float(len(sel)), float(sum(r.amount for r in sel))]
    return out


def days_since_received(account: str, t: float, labels: Sequence[Label], recs: Sequence[Rec]
                        ) -> float:
    times = [r.paid_t for r in recs if r.receiver == account and r.paid_t <= t
             and in_force(r, account, labels, t)]
    return (t - max(times)) / DAY if times else math.nan


def watch_days(account: str, t: float, watch: Sequence[WatchEntry]) -> float:
    entries = watch_in_force(watch, account, t)
    if not entries:
        return math.nan
    return (t - min(e.listed_at.timestamp() for e in entries)) / DAY
