"""Global reference tables: account profiles, confirmed fraud, the watch list (counterparty risk).

Every scorer reads ``accounts``, ``labels``, the confirmed payments derived from labels and the
``watchlist`` in full (they cross partitions). Queries take the payment's time ``t`` and only
ever use what was confirmed (or listed) at or before ``t``: loading everything up front therefore
leaks nothing, which is what makes training replay and streaming agree.

What is "in force" at ``t`` (the oracle tests check exactly this):

* an account-level ``fraud``/``mule`` label (no ``event_id``) flags its account from its
  ``confirmed_at`` on, until an account-level ``legit`` label on that account confirmed at or
  after it (a later ``legit`` withdraws every earlier flag of the account from its own time on);
* a payment-level ``fraud``/``mule`` label becomes a :class:`ConfirmedPayment` (who paid whom,
  how much, when): the payment's *receiver* has received confirmed fraud and its *sender* has sent
  it. It is in force from ``confirmed_at`` until a ``legit`` label on the same ``event_id``, or an
  account-level ``legit`` label on the account concerned (receiver or sender side separately),
  confirmed at or after it;
* a watch-list entry is in force from ``listed_at`` until ``delisted_at`` (exclusive);
* an account is *flagged* at ``t`` when an account-level label, a received confirmed payment or a
  watch-list entry of it is in force.

Accounts are matched by account number alone (counterparty bank codes are kept on the records).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from features.devices import DeviceLinks
from features.events import (
    Account,
    ConfirmedPayment,
    Label,
    Payment,
    WatchEntry,
    utc_from_epoch,
)

__all__ = ["BAD_LABELS", "RESOLVE_HORIZON_S", "AccountInfo", "ConfirmedPayment", "ReferenceData",
           "confirmed_from", "confirmed_payment", "label_only"]

BAD_LABELS: Final = frozenset({"fraud", "mule"})
DEFAULT_KYC_COUNTRY: Final = "VN"  # an account we have no profile for is assumed domestic
DAY_S: Final = 86400.0
FRAUD_WINDOWS: Final = ((1, "1d", 86400.0), (7, "7d", 7 * 86400.0), (30, "30d", 30 * 86400.0))
INF: Final = math.inf
# a label resolves against its payment only if the payment was made at most this long before
# the label's confirmation: a live scorer keeps an account's payments for the engine's
# retention (30 + 7 days + lateness) after the account's newest event; 35 days leaves two days
# for labels that reach the scorer after their confirmation time
RESOLVE_HORIZON_S: Final = 35 * DAY_S
NAN: Final = math.nan


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What the features need of an account profile, pre-computed once."""

    kyc_country: str
    is_business: bool
    opened_t: float
    registered_t: float  # nan when unknown / not a business
    birth_year: float  # nan when unknown


def confirmed_payment(label: Label, payment: Payment | None = None) -> ConfirmedPayment | None:
    """The confirmed payment a ``fraud``/``mule`` label names, or None (account-level label,
    ``legit`` label, or a payment we cannot place: unknown ``event_id`` and no counterparty).

    With the payment (same ``event_id``, of the label's own account, made at most
    :data:`RESOLVE_HORIZON_S` before the label's confirmation and not after it: what a live
    scorer still holds, see :func:`confirmed_from`): a debit was sent by its account to its
    counterparty, a credit received by its account from its counterparty. Without it: the
    label's account sent the money to the label's ``counterparty_account`` (the contract: who
    received it)."""
    if label.label not in BAD_LABELS or label.event_id is None:
        return None
    if (payment is not None and payment.event_id == label.event_id
            and payment.account_id == label.account_id):
        return confirmed_from(label, payment.t, payment.direction == "debit", payment.amount,
                              payment.counterparty_account)
    return label_only(label)


def confirmed_from(label: Label, paid_t: float, is_debit: bool, amount: float,
                   counterparty: str) -> ConfirmedPayment | None:
    """The record of ``label`` resolved against its payment (of the label's account), given
    what the feature engine keeps of a payment: time, direction, amount, counterparty. One
    function for training replay and the live scorer, so both publish the same record:

    * a payment made more than :data:`RESOLVE_HORIZON_S` before the confirmation is treated as
      unknown (a live scorer has dropped it from its state by then): :func:`label_only`; so is
      a payment made after the confirmation (a label cannot confirm what has not happened);
    * bank codes come from the label (the engine keeps no bank codes; accounts are matched by
      number alone, so they change no feature);
    * ``paid_at`` is the payment's time as UTC (the same float both ways)."""
    if label.label not in BAD_LABELS or label.event_id is None:
        return None
    if paid_t > label.t or label.t - paid_t > RESOLVE_HORIZON_S:
        return label_only(label)
    account = label.account_id
    if is_debit:
        sender, sender_bank = account, None
        receiver, receiver_bank = counterparty, label.counterparty_bank
    else:
        sender, sender_bank = counterparty, label.counterparty_bank
        receiver, receiver_bank = account, None
    return ConfirmedPayment(label.label_id, label.confirmed_at, label.label, sender, receiver,
                            sender_bank, receiver_bank, label.event_id, amount,
                            utc_from_epoch(paid_t))


def label_only(label: Label) -> ConfirmedPayment | None:
    """The record of a payment-level ``fraud``/``mule`` label whose payment is not known: its
    account sent the money to its ``counterparty_account`` (None when it names none)."""
    if label.label not in BAD_LABELS or label.event_id is None or (
            label.counterparty_account is None):
        return None
    return ConfirmedPayment(label.label_id, label.confirmed_at, label.label, label.account_id,
                            label.counterparty_account, None, label.counterparty_bank,
                            label.event_id)


class _Entry:
    """One confirmed payment as seen from one of its accounts (receiver or sender side)."""

    __slots__ = ("amount", "confirmed_t", "paid_t", "until_t")

    def __init__(self, paid_t: float, confirmed_t: float, until_t: float, amount: float) -> None:
        self.paid_t = paid_t
        self.confirmed_t = confirmed_t
        self.until_t = until_t
        self.amount = amount


class _Risk:
    """Everything in force about one account, built from the raw facts by ``_refresh``."""

    __slots__ = ("intervals", "received", "sent", "watch")

    def __init__(self) -> None:
        self.received: list[_Entry] = []
        self.sent: list[_Entry] = []
        self.watch: list[WatchEntry] = []
        self.intervals: list[tuple[float, float]] = []  # [start, end) the account is flagged


ZERO_FRAUD: tuple[float, ...] = (0.0,) * 12  # received/sent × 1/7/30 d × (count, sum)
NO_RISK: tuple[float, ...] = (0.0, *ZERO_FRAUD, NAN, 0.0, NAN)  # see risk_features


class ReferenceData:
    """Accounts, labels, confirmed payments and watch-list entries, answered as of a time."""

    __slots__ = ("_accounts", "_label_ids", "_account_bad", "_account_legit", "_event_legit",
                 "_confirmed", "_confirmed_by_event", "_watch", "_risk", "_dirty",
                 "_flag_times", "_flag_deltas", "_cursor", "_counts", "_flagged", "_unresolved",
                 "awaiting", "_new_awaiting", "outbox", "expired", "devices")

    def __init__(self) -> None:
        self._accounts: dict[str, AccountInfo] = {}
        self._label_ids: set[str] = set()
        # raw facts (what arrived); the in-force view is rebuilt from them per account
        self._account_bad: dict[str, list[float]] = {}
        self._account_legit: dict[str, list[float]] = {}
        self._event_legit: dict[str, list[float]] = {}
        self._confirmed: dict[str, ConfirmedPayment] = {}  # by label_id
        self._confirmed_by_event: dict[str, list[str]] = {}  # event_id -> label_ids
        self._watch: dict[str, WatchEntry] = {}  # by bank/account
        self._risk: dict[str, _Risk] = {}
        self._dirty: set[str] = set()
        # the flagged-account timeline: change times and (account, +1/-1) at each
        self._flag_times: list[float] = []
        self._flag_deltas: list[tuple[str, int]] = []
        self._cursor = 0  # deltas applied to _counts / _flagged
        self._counts: dict[str, int] = {}
        self._flagged: set[str] = set()
        # the shared device / IP table (features.devices): a global table like the others
        self.devices = DeviceLinks()
        # payment-level bad labels with no record at all (no known payment, no receiver named)
        self._unresolved: set[str] = set()
        # payment-level bad labels still waiting for their payment (event_id -> labels): a live
        # scorer resolves them against the payments its partitions hold (FeatureEngine.resolve,
        # and on_payment for a payment that comes after its label); settled by a record derived
        # from the payment (published by whichever scorer found it) or dropped after the horizon
        self.awaiting: dict[str, list[Label]] = {}
        self._new_awaiting: list[Label] = []
        self.outbox: list[ConfirmedPayment] = []  # resolved here: to publish (take_outbox)
        self.expired = 0  # awaiting labels dropped after the horizon without their payment

    @classmethod
    def of(cls, accounts: Iterable[Account] = (), labels: Iterable[Label] = (),
           payments: Mapping[str, Payment] | None = None,
           watchlist: Iterable[WatchEntry] = ()) -> ReferenceData:
        """Reference data holding these profiles, labels (each resolved against ``payments``,
        by event id, when it names one) and watch-list entries. Everything is answered as of
        each query's time, so loading it all up front leaks nothing."""
        ref = cls()
        for account in accounts:
            ref.add_account(account)
        for label in labels:
            payment = payments.get(label.event_id) if payments and label.event_id else None
            ref.add_label(label, payment)
        for entry in watchlist:
            ref.add_watch(entry)
        return ref

    # ------------------------------------------------------------------ updates
    def add_account(self, account: Account) -> None:
        """Insert or replace an account profile (the ``accounts`` topic is compacted)."""
        self._accounts[account.account_id] = AccountInfo(
            kyc_country=account.kyc_country,
            is_business=account.type == "business",
            opened_t=account.opened_at.timestamp(),
            registered_t=account.registered_at.timestamp() if account.registered_at else math.nan,
            birth_year=float(account.birth_year) if account.birth_year is not None else math.nan,
        )

    def add_label(self, label: Label, payment: Payment | None = None) -> bool:
        """Record a label (and the confirmed payment it names, see :func:`confirmed_payment`);
        returns False for a duplicate ``label_id`` (ignored). A payment-level bad label given
        without its payment waits in :attr:`awaiting` (with its label-only record meanwhile,
        when it names a receiver)."""
        if label.label_id in self._label_ids:
            return False
        self._label_ids.add(label.label_id)
        t = label.t
        if label.event_id is None:
            facts = self._account_bad if label.label in BAD_LABELS else self._account_legit
            _insort(facts, label.account_id, t)
            self._touch(label.account_id)
        elif label.label in BAD_LABELS:
            record = confirmed_payment(label, payment)
            if record is None:
                self._unresolved.add(label.label_id)
            else:
                self.add_confirmed(record)
            if payment is None:
                self.awaiting.setdefault(label.event_id, []).append(label)
                self._new_awaiting.append(label)
        else:
            _insort(self._event_legit, label.event_id, t)
            for label_id in self._confirmed_by_event.get(label.event_id, ()):
                record = self._confirmed[label_id]
                self._touch(record.sender_account)
                self._touch(record.receiver_account)
        return True

    def add_confirmed(self, record: ConfirmedPayment) -> None:
        """Insert or replace (same ``label_id``) a confirmed payment: the record a global topic
        of confirmed beneficiaries carries. A record derived from the payment replaces one
        derived from the label alone (and settles the label if it was awaiting)."""
        old = self._confirmed.get(record.label_id)
        if old is not None:
            if old.paid_at is not None and record.paid_at is None:
                return  # keep the richer record
            self._touch(old.sender_account)
            self._touch(old.receiver_account)
            if old.event_id is not None:
                ids = self._confirmed_by_event[old.event_id]
                ids.remove(record.label_id)
        self._label_ids.add(record.label_id)
        self._unresolved.discard(record.label_id)
        self._confirmed[record.label_id] = record
        if record.event_id is not None:
            self._confirmed_by_event.setdefault(record.event_id, []).append(record.label_id)
            if record.paid_at is not None:
                self._settle(record.event_id, record.label_id)
        self._touch(record.sender_account)
        self._touch(record.receiver_account)

    # ------------------------------------------------------------------ labels awaiting
    @property
    def unresolved(self) -> int:
        """Payment-level bad labels that have no record: no known payment, no receiver."""
        return len(self._unresolved)

    def take_new_awaiting(self) -> list[Label]:
        """The labels that began awaiting their payment since the last call."""
        new, self._new_awaiting = self._new_awaiting, []
        return new

    def resolve(self, label: Label, paid_t: float, is_debit: bool, amount: float,
                counterparty: str) -> ConfirmedPayment | None:
        """An awaiting ``label``'s payment was found (time, direction, amount, counterparty of
        the label's account's payment): settle it. A record derived from the payment is applied
        and queued in :attr:`outbox` (for the scorer to publish) unless the same record is held
        already; None when the payment is outside the horizon (the label stays label-only)."""
        assert label.event_id is not None
        record = confirmed_from(label, paid_t, is_debit, amount, counterparty)
        self._settle(label.event_id, label.label_id)
        if record is None or record.paid_at is None:
            return None
        if self._confirmed.get(record.label_id) != record:
            self.add_confirmed(record)
            self.outbox.append(record)
        return record

    def paid(self, payment: Payment) -> None:
        """A payment was applied (``FeatureEngine.on_payment``): settle the labels awaiting it
        (a label that arrived before its payment)."""
        labels = self.awaiting.get(payment.event_id)
        if labels is None:
            return
        for label in list(labels):
            if label.account_id == payment.account_id:
                self.resolve(label, payment.t, payment.direction == "debit", payment.amount,
                             payment.counterparty_account)

    def take_outbox(self) -> list[ConfirmedPayment]:
        """The records resolved here since the last call (to publish)."""
        out, self.outbox = self.outbox, []
        return out

    def expire_awaiting(self, t: float) -> int:
        """Stop waiting for the payments of labels confirmed more than the horizon before
        ``t`` (their payment can no longer resolve them); returns how many were dropped."""
        horizon = t - RESOLVE_HORIZON_S
        dropped = 0
        for event_id in [e for e, labels in self.awaiting.items()
                         if all(lb.t < horizon for lb in labels)]:
            dropped += len(self.awaiting.pop(event_id))
        self.expired += dropped
        return dropped

    def n_awaiting(self) -> int:
        return sum(len(labels) for labels in self.awaiting.values())

    def _settle(self, event_id: str, label_id: str) -> None:
        labels = self.awaiting.get(event_id)
        if labels is None:
            return
        kept = [lb for lb in labels if lb.label_id != label_id]
        if kept:
            self.awaiting[event_id] = kept
        else:
            del self.awaiting[event_id]

    def add_watch(self, entry: WatchEntry) -> None:
        """Insert or replace (same bank and account) a watch-list entry (compacted topic)."""
        old = self._watch.get(entry.key)
        if old is not None:
            self._touch(old.account)
        self._watch[entry.key] = entry
        self._touch(entry.account)

    def _touch(self, account: str) -> None:
        self._dirty.add(account)

    # ------------------------------------------------------------------ the in-force view
    def _refresh(self) -> None:
        """Rebuild the in-force view of every account touched since the last query."""
        dirty = self._dirty
        self._dirty = set()
        for account in dirty:
            self._risk.pop(account, None)
        received: dict[str, list[ConfirmedPayment]] = {}
        sent: dict[str, list[ConfirmedPayment]] = {}
        for record in self._confirmed.values():  # only the touched accounts' records matter
            if record.receiver_account in dirty:
                received.setdefault(record.receiver_account, []).append(record)
            if record.sender_account in dirty:
                sent.setdefault(record.sender_account, []).append(record)
        watch: dict[str, list[WatchEntry]] = {}
        for entry in self._watch.values():
            if entry.account in dirty:
                watch.setdefault(entry.account, []).append(entry)
        for account in dirty:
            risk = _Risk()
            legit = self._account_legit.get(account, [])
            risk.received = self._entries(received.get(account, []), legit)
            risk.sent = self._entries(sent.get(account, []), legit)
            risk.watch = sorted(watch.get(account, []), key=lambda e: e.listed_at)
            intervals = [(c, _next_at_or_after(legit, c))
                         for c in self._account_bad.get(account, [])]
            intervals += [(e.confirmed_t, e.until_t) for e in risk.received]
            intervals += [(w.listed_at.timestamp(),
                           w.delisted_at.timestamp() if w.delisted_at else INF)
                          for w in risk.watch]
            risk.intervals = [(a, b) for a, b in intervals if a < b]
            if risk.received or risk.sent or risk.watch or risk.intervals:
                self._risk[account] = risk
        self._rebuild_timeline()

    def _entries(self, records: list[ConfirmedPayment], account_legit: list[float]
                 ) -> list[_Entry]:
        out = []
        for r in records:
            c = r.t
            until = _next_at_or_after(account_legit, c)
            if r.event_id is not None:
                until = min(until, _next_at_or_after(self._event_legit.get(r.event_id, []), c))
            out.append(_Entry(r.paid_t, c, until, 0.0 if r.amount is None else r.amount))
        out.sort(key=lambda e: e.paid_t)
        return out

    def _rebuild_timeline(self) -> None:
        changes: list[tuple[float, int, str]] = []
        for account, risk in self._risk.items():
            for start, end in risk.intervals:
                changes.append((start, 1, account))
                if end != INF:
                    changes.append((end, -1, account))
        changes.sort()
        self._flag_times = [c[0] for c in changes]
        self._flag_deltas = [(c[2], c[1]) for c in changes]
        self._cursor = 0
        self._counts = {}
        self._flagged = set()

    # ------------------------------------------------------------------ queries
    def account(self, account_id: str) -> AccountInfo | None:
        return self._accounts.get(account_id)

    def flagged_set(self, t: float) -> set[str]:
        """Accounts flagged at ``t`` (see the module docstring). The returned set is the
        reference's own: read it before the next query."""
        if self._dirty:
            self._refresh()
        k = bisect_right(self._flag_times, t)
        if k < self._cursor:  # an earlier time than the last query: fold again from the start
            self._cursor = 0
            self._counts = {}
            self._flagged = set()
        counts, flagged, deltas = self._counts, self._flagged, self._flag_deltas
        for i in range(self._cursor, k):
            account, delta = deltas[i]
            c = counts.get(account, 0) + delta
            counts[account] = c
            if c > 0:
                flagged.add(account)
            else:
                flagged.discard(account)
        self._cursor = k
        return flagged

    def is_flagged(self, account: str, t: float) -> bool:
        if self._dirty:
            self._refresh()
        risk = self._risk.get(account)
        if risk is None:
            return False
        for start, end in risk.intervals:
            if start <= t < end:
                return True
        return False

    def fraud_history(self, account: str, t: float) -> tuple[float, ...]:
        """Confirmed-fraud payments received by and sent by ``account`` with payment time in
        the last 1 / 7 / 30 days, in force at ``t``: (received count 1d, received sum 1d, ...
        7d, 30d, then the same for sent) — 12 values."""
        if self._dirty:
            self._refresh()
        risk = self._risk.get(account)
        if risk is None or not (risk.received or risk.sent):
            return ZERO_FRAUD
        return _window_sums(risk.received, t) + _window_sums(risk.sent, t)

    def days_since_fraud_received(self, account: str, t: float) -> float:
        """Days since the latest payment (at or before ``t``) that ``account`` received and that
        is confirmed fraud in force at ``t``; nan when none."""
        if self._dirty:
            self._refresh()
        risk = self._risk.get(account)
        if risk is None:
            return NAN
        best = -INF
        for e in risk.received:
            if e.paid_t <= t and e.confirmed_t <= t < e.until_t and e.paid_t > best:
                best = e.paid_t
        return (t - best) / DAY_S if best > -INF else NAN

    def watch_entry(self, account: str, t: float) -> WatchEntry | None:
        """The earliest-listed watch-list entry of ``account`` in force at ``t`` (or None)."""
        if self._dirty:
            self._refresh()
        risk = self._risk.get(account)
        if risk is None:
            return None
        for w in risk.watch:
            if w.in_force(t):
                return w
        return None

    def watch_days(self, account: str, t: float) -> float:
        """Days since ``account`` was listed (entry in force at ``t``); nan when not listed."""
        entry = self.watch_entry(account, t)
        return NAN if entry is None else (t - entry.listed_at.timestamp()) / DAY_S

    def count_flagged_pair(self, a: dict[str, int], b: dict[str, int], t: float
                           ) -> tuple[float, float]:
        """Sums of ``a[cp]`` and ``b[cp]`` over counterparties flagged at ``t`` (credits from /
        debits to flagged accounts)."""
        if not (a or b):
            return 0.0, 0.0
        if self._dirty:
            self._refresh()
        if not self._flag_times or self._flag_times[0] > t:
            return 0.0, 0.0
        flagged = self.flagged_set(t)
        return float(_flagged_sum(a, flagged)), float(_flagged_sum(b, flagged))

    def risk_features(self, account: str, t: float) -> tuple[float, ...]:
        """Everything the vector needs of one account at ``t``, in one look-up: (flagged,
        :meth:`fraud_history`'s 12 values, days since fraud received, watch-listed, days since
        listed) — 16 values; a constant for the many accounts nothing is known about."""
        if self._dirty:
            self._refresh()
        if account not in self._risk:
            return NO_RISK
        watch = self.watch_days(account, t)
        return (1.0 if self.is_flagged(account, t) else 0.0, *self.fraud_history(account, t),
                self.days_since_fraud_received(account, t), 1.0 if watch == watch else 0.0,
                watch)

    def counterparty_risk(self, cp: str, t: float) -> tuple[float, float, float]:
        """(flagged at ``t``, confirmed-fraud payments ``cp`` received in the last 7 days, in
        the last 30 days): a summary for callers that need no more."""
        history = self.fraud_history(cp, t)
        return (1.0 if self.is_flagged(cp, t) else 0.0), history[2], history[4]

    def n_accounts(self) -> int:
        return len(self._accounts)

    def confirmed_payments(self) -> list[ConfirmedPayment]:
        """Every confirmed payment held (for publishing or inspection)."""
        return list(self._confirmed.values())


def _insort(facts: dict[str, list[float]], key: str, t: float) -> None:
    times = facts.setdefault(key, [])
    times.insert(bisect_right(times, t), t)


def _next_at_or_after(times: list[float], c: float) -> float:
    """The first time in sorted ``times`` that is >= ``c`` (inf if none): when a withdrawal
    confirmed at or after ``c`` takes effect."""
    for x in times:
        if x >= c:
            return x
    return INF


def _window_sums(entries: list[_Entry], t: float) -> tuple[float, float, float, float, float,
                                                          float]:
    n1 = s1 = n7 = s7 = n30 = s30 = 0.0
    for e in entries:
        paid = e.paid_t
        if paid > t or paid <= t - 30 * DAY_S or not (e.confirmed_t <= t < e.until_t):
            continue
        n30 += 1.0
        s30 += e.amount
        if paid > t - 7 * DAY_S:
            n7 += 1.0
            s7 += e.amount
            if paid > t - DAY_S:
                n1 += 1.0
                s1 += e.amount
    return n1, s1, n7, s7, n30, s30


def _flagged_sum(counts: dict[str, int], flagged: set[str]) -> int:
    """Sum of ``counts[cp]`` over flagged ``cp``, walking the smaller of the two."""
    n = 0
    if len(counts) <= len(flagged):
        for cp, c in counts.items():
            if cp in flagged:
                n += c
    else:
        get = counts.get
        for cp in flagged:
            n += get(cp, 0)
    return n
