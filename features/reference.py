"""Global reference tables: account profiles and confirmed labels (counterparty risk).

Every scorer reads ``accounts`` and ``labels`` in full (they cross partitions). Queries take the
payment's time ``t`` and only ever use labels with ``confirmed_at <= t``: loading every label up
front therefore leaks nothing, which is what makes training replay and streaming agree.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from features.events import Account, Label

BAD_LABELS: Final = frozenset({"fraud", "mule"})
DEFAULT_KYC_COUNTRY: Final = "VN"  # an account we have no profile for is assumed domestic


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What the features need of an account profile, pre-computed once."""

    kyc_country: str
    is_business: bool
    opened_t: float
    registered_t: float  # nan when unknown / not a business
    birth_year: float  # nan when unknown


class ReferenceData:
    """Accounts by id and bad-label confirmation times by account (sorted)."""

    __slots__ = ("_accounts", "_bad_label_times", "_first_flag_t", "_label_ids", "_flag_order",
                 "_flag_times", "_flag_cache", "_flag_span")

    def __init__(self) -> None:
        self._accounts: dict[str, AccountInfo] = {}
        self._bad_label_times: dict[str, list[float]] = {}
        self._first_flag_t: dict[str, float] = {}
        self._label_ids: set[str] = set()
        # accounts ordered by the time they were first flagged, for "flagged as of t" sets
        self._flag_order: list[tuple[float, str]] = []
        self._flag_times: list[float] = []
        self._flag_cache: dict[int, frozenset[str]] = {}
        # the flagged set of the last query and the times [lo, hi) it holds for
        self._flag_span: tuple[float, float, frozenset[str]] = (math.inf, -math.inf, frozenset())

    @classmethod
    def of(cls, accounts: Iterable[Account] = (), labels: Iterable[Label] = ()) -> ReferenceData:
        """Reference data holding these account profiles and labels (labels are answered as of
        each query's time, so loading them all up front leaks nothing)."""
        ref = cls()
        for account in accounts:
            ref.add_account(account)
        for label in labels:
            ref.add_label(label)
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

    def add_label(self, label: Label) -> bool:
        """Record a label; returns False for a duplicate ``label_id`` (ignored)."""
        if label.label_id in self._label_ids:
            return False
        self._label_ids.add(label.label_id)
        if label.label in BAD_LABELS:
            insort(self._bad_label_times.setdefault(label.account_id, []), label.t)
            first = self._first_flag_t.get(label.account_id)
            if first is None or label.t < first:
                self._first_flag_t[label.account_id] = label.t
                if first is not None:
                    self._flag_order.remove((first, label.account_id))
                insort(self._flag_order, (label.t, label.account_id))
                self._flag_times = [ft for ft, _ in self._flag_order]
                self._flag_cache.clear()
                self._flag_span = (math.inf, -math.inf, frozenset())
        return True

    # ------------------------------------------------------------------ queries
    def account(self, account_id: str) -> AccountInfo | None:
        return self._accounts.get(account_id)

    def flagged_set(self, t: float) -> frozenset[str]:
        """Accounts flagged at or before ``t`` (cached per number of flags in force)."""
        lo, hi, flagged = self._flag_span
        if lo <= t < hi:  # the common case: consecutive payments between two flag times
            return flagged
        times = self._flag_times
        k = bisect_right(times, t)
        cached = self._flag_cache.get(k)
        if cached is None:
            if len(self._flag_cache) > 64:
                self._flag_cache.clear()
            cached = self._flag_cache[k] = frozenset(a for _, a in self._flag_order[:k])
        self._flag_span = (times[k - 1] if k else -math.inf,
                           times[k] if k < len(times) else math.inf, cached)
        return cached

    def counterparty_risk(self, cp: str, t: float) -> tuple[float, float, float]:
        """(flagged at t, bad labels confirmed in the last 7 days, in the last 30 days)."""
        times = self._bad_label_times.get(cp)
        if not times or times[0] > t:
            return 0.0, 0.0, 0.0
        end = bisect_right(times, t)
        n7 = end - bisect_right(times, t - 7 * 86400.0)
        n30 = end - bisect_right(times, t - 30 * 86400.0)
        return 1.0, float(n7), float(n30)

    def count_flagged_pair(self, a: dict[str, int], b: dict[str, int], t: float
                           ) -> tuple[float, float]:
        """Sums of ``a[cp]`` and ``b[cp]`` over counterparties flagged at ``t`` (credits from /
        debits to flagged accounts)."""
        times = self._flag_times
        if not times or times[0] > t or not (a or b):
            return 0.0, 0.0
        flagged = self.flagged_set(t)
        return float(_flagged_sum(a, flagged)), float(_flagged_sum(b, flagged))

    def n_accounts(self) -> int:
        return len(self._accounts)


def _flagged_sum(counts: dict[str, int], flagged: frozenset[str]) -> int:
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
