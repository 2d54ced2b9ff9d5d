"""Streaming feature state: one code path for training replay and live scoring.

Semantics (what the oracle tests check):

* Per account, the engine keeps the events it has accepted. The features of a payment ``p`` are a
  function of the set ``S(p)`` = accepted events of ``p``'s account with ``ts <= p.ts`` that
  arrived before ``p``, plus ``p`` itself ("point in time": nothing later is ever used; the
  payment counts in its own windows). Windows are exact sliding windows in event time:
  ``(t - W, t]``.
* Events arriving out of order by at most ``allowed_lateness_s`` (relative to the newest event
  of the same account) are placed at their event time: the account's state is rebuilt from its
  retained history, so later payments see them exactly as if they had arrived in order.
  Events later than that are refused (``None`` / ``False``) and counted in ``stats.too_late``.
* A repeated ``event_id`` is ignored and counted in ``stats.duplicates``.
* State is bounded: history older than ``RETENTION_S`` (the longest look-back, 30 d, plus the
  7 d window whose members need it, plus the lateness) is evicted, and an account silent for
  longer than that is dropped by :meth:`FeatureEngine.evict_idle`.

Definitions that need more than a window sum are in :mod:`features.vector`'s docs and README.
"""

from __future__ import annotations

import math
import sys
import zlib
from array import array
from bisect import bisect_left, insort
from dataclasses import dataclass
from typing import Any

import orjson

from features.events import Login, Payment
from features.reference import DEFAULT_KYC_COUNTRY, ReferenceData
from features.vector import CHANNEL_CODES, FEATURE_NAMES, FEATURE_VERSION, FeatureVector

NAN = math.nan
MIN = 60.0
HOUR = 3600.0
DAY = 86400.0
W10M, W1H, W24H, W7D, W30D = 600.0, HOUR, DAY, 7 * DAY, 30 * DAY
FAST_TRAVEL_S = 2 * HOUR  # two logins from different countries closer than this: impossible travel
LOCAL_OFFSET_S = 7 * HOUR  # Asia/Ho_Chi_Minh is UTC+7 all year (no daylight saving)
SNAPSHOT_FORMAT = 1



@dataclass
class EngineStats:
    payments: int = 0
    logins: int = 0
    duplicates: int = 0
    too_late: int = 0
    reordered: int = 0  # accepted late events that triggered an account rebuild

    def as_dict(self) -> dict[str, int]:
        return {
            "payments": self.payments,
            "logins": self.logins,
            "duplicates": self.duplicates,
            "too_late": self.too_late,
            "reordered": self.reordered,
        }


_intern = sys.intern


def _inc(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _dec(counter: dict[str, int], key: str) -> None:
    n = counter[key] - 1
    if n:
        counter[key] = n
    else:
        del counter[key]


class _Account:
    """Running window aggregates of one account, valid at time ``max_t``.

    History is columnar (``array``/``bytearray``/lists of shared strings) to keep the state of
    an active account small: payments ``pt pseq pdeb pamt pcp pdw pnew`` (time, arrival number,
    is debit, amount, counterparty, dwell seconds, first-time sender), logins
    ``lt lseq lok lctry ldev lfor lfast`` (time, arrival number, success, country, device,
    foreign, impossible-travel). Window ``w`` covers indices ``[p_w, len)``.
    """

    __slots__ = (
        "max_t", "seq", "recent",
        "pt", "pseq", "pdeb", "pamt", "pcp", "pdw", "pnew", "p10", "p1h", "p24", "p7", "p30",
        "agg", "out24", "out7", "snd24", "snd7", "dwell7", "dwell7_n", "new7",
        "cp30", "snd30", "amts", "logsum", "logsq", "last_pay_t", "last_credit_t",
        "lt", "lseq", "lok", "lctry", "ldev", "lfor", "lfast", "l24", "l7", "l30",
        "f24", "fail24", "dev24", "f7", "ctry7", "fast7", "dev_old", "last_foreign_t",
    )  # fmt: skip

    def __init__(self) -> None:
        self.max_t = -math.inf
        self.seq = 0
        self.recent: dict[str, float] = {}  # event ids inside the lateness horizon
        self.pt = array("d")
        self.pseq = array("i")
        self.pdeb = bytearray()
        self.pamt = array("d")
        self.pcp: list[str] = []
        self.pdw = array("d")
        self.pnew = bytearray()
        self.p10 = self.p1h = self.p24 = self.p7 = self.p30 = 0
        # agg[w*4 + k]: w in 10m,1h,24h,7d; k = debit count, debit sum, credit count, credit sum
        self.agg = array("d", bytes(16 * 8))
        self.out24: dict[str, int] = {}
        self.out7: dict[str, int] = {}
        self.snd24: dict[str, int] = {}
        self.snd7: dict[str, int] = {}
        self.dwell7 = 0.0
        self.dwell7_n = 0
        self.new7 = 0
        self.cp30: dict[str, int] = {}
        self.snd30: dict[str, int] = {}
        self.amts = (array("d"), array("d"))  # sorted 30-day amounts (credits, debits)
        self.logsum = [0.0, 0.0]
        self.logsq = [0.0, 0.0]
        self.last_pay_t = NAN
        self.last_credit_t = NAN
        self.lt = array("d")
        self.lseq = array("i")
        self.lok = bytearray()
        self.lctry: list[str] = []
        self.ldev: list[str] = []
        self.lfor = bytearray()
        self.lfast = bytearray()
        self.l24 = self.l7 = self.l30 = 0
        self.f24 = self.fail24 = 0
        self.dev24: dict[str, int] = {}
        self.f7 = self.fast7 = 0
        self.ctry7: dict[str, int] = {}
        self.dev_old: dict[str, int] = {}  # devices of logins in (t - 30 d, t - 24 h]
        self.last_foreign_t = NAN

    # ------------------------------------------------------------------ eviction
    def advance(self, t: float, retention: float, lateness: float, payments: bool = True) -> None:
        """Move every window's lower edge to time ``t`` (the account's newest event time).

        A login needs only the login windows moved (``payments=False``): eviction is a function
        of ``t`` alone, so the payment windows catch up at the next payment."""
        self.max_t = t
        if payments:
            self._advance_payments(t, retention)
        if self.lt:
            self._advance_logins(t, retention)
        recent = self.recent
        if recent:
            horizon = t - lateness  # older events are refused as too late before the id check
            if recent[next(iter(recent))] < horizon:
                for eid in [eid for eid, et in recent.items() if et < horizon]:
                    del recent[eid]

    def _advance_payments(self, t: float, retention: float) -> None:
        pt = self.pt
        n = len(pt)
        agg = self.agg
        pdeb, pamt, pcp = self.pdeb, self.pamt, self.pcp
        edge = t - W10M
        i = self.p10
        while i < n and pt[i] <= edge:
            k = 0 if pdeb[i] else 2
            agg[k] -= 1
            agg[k + 1] -= pamt[i]
            i += 1
        self.p10 = i
        edge = t - W1H
        i = self.p1h
        while i < n and pt[i] <= edge:
            k = 4 if pdeb[i] else 6
            agg[k] -= 1
            agg[k + 1] -= pamt[i]
            i += 1
        self.p1h = i
        edge = t - W24H
        i = self.p24
        while i < n and pt[i] <= edge:
            if pdeb[i]:
                agg[8] -= 1
                agg[9] -= pamt[i]
                _dec(self.out24, pcp[i])
            else:
                agg[10] -= 1
                agg[11] -= pamt[i]
                _dec(self.snd24, pcp[i])
            i += 1
        self.p24 = i
        edge = t - W7D
        i = self.p7
        while i < n and pt[i] <= edge:
            if pdeb[i]:
                agg[12] -= 1
                agg[13] -= pamt[i]
                _dec(self.out7, pcp[i])
                dwell = self.pdw[i]
                if dwell == dwell:  # defined (not nan)
                    self.dwell7 -= dwell
                    self.dwell7_n -= 1
            else:
                agg[14] -= 1
                agg[15] -= pamt[i]
                _dec(self.snd7, pcp[i])
                self.new7 -= self.pnew[i]
            i += 1
        self.p7 = i
        edge = t - W30D
        i = self.p30
        while i < n and pt[i] <= edge:
            d = pdeb[i]
            amount = pamt[i]
            amts = self.amts[d]
            del amts[bisect_left(amts, amount)]
            lg = math.log10(amount)
            self.logsum[d] -= lg
            self.logsq[d] -= lg * lg
            _dec(self.cp30, pcp[i])
            if not d:
                _dec(self.snd30, pcp[i])
            i += 1
        self.p30 = i
        # retention: drop history nobody can look at any more
        edge = t - retention
        k = 0
        while k < i and pt[k] <= edge:
            k += 1
        if k >= 32 or (k and k * 2 >= n):
            for column in (pt, self.pseq, pdeb, pamt, pcp, self.pdw, self.pnew):
                del column[:k]
            self.p10 -= k
            self.p1h -= k
            self.p24 -= k
            self.p7 -= k
            self.p30 -= k

    def _advance_logins(self, t: float, retention: float) -> None:
        lt = self.lt
        n = len(lt)
        ldev = self.ldev
        edge = t - W24H
        i = self.l24
        while i < n and lt[i] <= edge:
            self.f24 -= self.lfor[i]
            if not self.lok[i]:
                self.fail24 -= 1
            _dec(self.dev24, ldev[i])
            _inc(self.dev_old, ldev[i])
            i += 1
        self.l24 = i
        edge = t - W7D
        i = self.l7
        while i < n and lt[i] <= edge:
            self.f7 -= self.lfor[i]
            self.fast7 -= self.lfast[i]
            _dec(self.ctry7, self.lctry[i])
            i += 1
        self.l7 = i
        edge = t - W30D
        i = self.l30
        while i < n and lt[i] <= edge:
            _dec(self.dev_old, ldev[i])
            i += 1
        self.l30 = i
        edge = t - retention
        k = 0
        while k < i and lt[k] <= edge:
            k += 1
        if k >= 32 or (k and k * 2 >= n):
            for column in (lt, self.lseq, self.lok, self.lctry, ldev, self.lfor, self.lfast):
                del column[:k]
            self.l24 -= k
            self.l7 -= k
            self.l30 -= k

    # ------------------------------------------------------------------ insertion (in order)
    def add_login(self, t: float, seq: int, success: bool, country: str, device: str,
                  foreign: int) -> None:
        country = _intern(country)
        device = _intern(device)
        fast = 0
        if self.lt and self.lctry[-1] != country and t - self.lt[-1] < FAST_TRAVEL_S:
            fast = 1
        self.lt.append(t)
        self.lseq.append(seq)
        self.lok.append(1 if success else 0)
        self.lctry.append(country)
        self.ldev.append(device)
        self.lfor.append(foreign)
        self.lfast.append(fast)
        self.f24 += foreign
        if not success:
            self.fail24 += 1
        _inc(self.dev24, device)
        self.f7 += foreign
        self.fast7 += fast
        _inc(self.ctry7, country)
        if foreign:
            self.last_foreign_t = t

    def add_payment(self, t: float, seq: int, is_debit: bool, amount: float, cp: str
                    ) -> tuple[float, float, float, float, float, float]:
        """Append a payment; returns its history look-ups taken *before* it was added:
        (median, log-mean, log-std, secs since previous, first-to-cp, dwell)."""
        cp = _intern(cp)  # one string object per counterparty, however many payments
        d = 1 if is_debit else 0
        amts = self.amts[d]
        m = len(amts)
        if m:
            median = amts[m // 2] if m % 2 else (amts[m // 2 - 1] + amts[m // 2]) / 2
            mean = self.logsum[d] / m
            var = self.logsq[d] / m - mean * mean
            std = math.sqrt(var) if var > 1e-12 else 0.0
        else:
            median = mean = std = NAN
        prev_gap = t - self.last_pay_t if self.last_pay_t > t - W30D else NAN
        first_cp = 0.0 if cp in self.cp30 else 1.0
        dwell = NAN
        new_sender = 0
        if is_debit:
            if self.last_credit_t > t - W30D:
                dwell = t - self.last_credit_t
        else:
            new_sender = 0 if cp in self.snd30 else 1
        self.pt.append(t)
        self.pseq.append(seq)
        self.pdeb.append(d)
        self.pamt.append(amount)
        self.pcp.append(cp)
        self.pdw.append(dwell)
        self.pnew.append(new_sender)
        agg = self.agg
        lg = math.log10(amount)
        insort(amts, amount)
        self.logsum[d] += lg
        self.logsq[d] += lg * lg
        cp30 = self.cp30
        cp30[cp] = cp30.get(cp, 0) + 1
        if is_debit:
            agg[0] += 1
            agg[1] += amount
            agg[4] += 1
            agg[5] += amount
            agg[8] += 1
            agg[9] += amount
            agg[12] += 1
            agg[13] += amount
            out = self.out24
            out[cp] = out.get(cp, 0) + 1
            out = self.out7
            out[cp] = out.get(cp, 0) + 1
            if dwell == dwell:
                self.dwell7 += dwell
                self.dwell7_n += 1
        else:
            agg[2] += 1
            agg[3] += amount
            agg[6] += 1
            agg[7] += amount
            agg[10] += 1
            agg[11] += amount
            agg[14] += 1
            agg[15] += amount
            snd = self.snd24
            snd[cp] = snd.get(cp, 0) + 1
            snd = self.snd7
            snd[cp] = snd.get(cp, 0) + 1
            snd = self.snd30
            snd[cp] = snd.get(cp, 0) + 1
            self.new7 += new_sender
            self.last_credit_t = t
        self.last_pay_t = t
        return median, mean, std, prev_gap, first_cp, dwell

    def raw_history(self) -> list[tuple[Any, ...]]:
        """Retained events as replayable records, in (t, seq) order."""
        rows: list[tuple[Any, ...]] = [
            ("p", t, s, bool(d), a, cp)
            for t, s, d, a, cp in zip(self.pt, self.pseq, self.pdeb, self.pamt, self.pcp,
                                      strict=True)
        ]
        rows += [
            ("l", t, s, bool(ok), c, dev, f)
            for t, s, ok, c, dev, f in zip(self.lt, self.lseq, self.lok, self.lctry, self.ldev,
                                           self.lfor, strict=True)
        ]
        rows.sort(key=lambda r: (r[1], r[2]))
        return rows


class FeatureEngine:
    """Per-account streaming feature state; see the module docstring for the semantics."""

    def __init__(self, reference: ReferenceData | None = None,
                 allowed_lateness_s: float = 300.0) -> None:
        self.reference = reference if reference is not None else ReferenceData()
        self.allowed_lateness_s = float(allowed_lateness_s)
        self.retention_s = W30D + W7D + self.allowed_lateness_s
        self.stats = EngineStats()
        self._accounts: dict[str, _Account] = {}

    # ------------------------------------------------------------------ public API
    def on_login(self, login: Login) -> bool:
        """Apply a login. False when it is a duplicate or later than the allowed lateness."""
        acct = self._accounts.get(login.account_id)
        if acct is None:
            acct = self._accounts[login.account_id] = _Account()
        t = login.t
        if not self._admit(acct, login.event_id, t):
            return False
        self.stats.logins += 1
        info = self.reference.account(login.account_id)
        kyc = info.kyc_country if info is not None else DEFAULT_KYC_COUNTRY
        foreign = 1 if login.country != kyc else 0
        acct.seq += 1
        if t >= acct.max_t:
            acct.advance(t, self.retention_s, self.allowed_lateness_s, payments=False)
            acct.add_login(t, acct.seq, login.success, login.country, login.device_id, foreign)
        else:
            self.stats.reordered += 1
            record = ("l", t, acct.seq, login.success, login.country, login.device_id, foreign)
            self._rebuild(login.account_id, acct, record)
        return True

    def on_payment(self, payment: Payment) -> FeatureVector | None:
        """Apply a payment and return its features, or None (duplicate / too late)."""
        acct = self._accounts.get(payment.account_id)
        if acct is None:
            acct = self._accounts[payment.account_id] = _Account()
        t = payment.t
        if not self._admit(acct, payment.event_id, t):
            return None
        self.stats.payments += 1
        acct.seq += 1
        if t >= acct.max_t:
            acct.advance(t, self.retention_s, self.allowed_lateness_s)
            return self._apply_payment(acct, payment, acct.seq)
        self.stats.reordered += 1
        record = ("p", t, acct.seq, payment.direction == "debit", payment.amount,
                  payment.counterparty_account)
        vector = self._rebuild(payment.account_id, acct, record, payment)
        assert vector is not None
        return vector

    def n_accounts(self) -> int:
        return len(self._accounts)

    def evict_idle(self, now_t: float) -> int:
        """Drop accounts whose newest event is older than the retention; returns how many."""
        horizon = now_t - self.retention_s
        idle = [a for a, s in self._accounts.items() if s.max_t <= horizon]
        for account_id in idle:
            del self._accounts[account_id]
        return len(idle)

    # ------------------------------------------------------------------ snapshot / restore
    def snapshot(self) -> bytes:
        """The engine's state as bytes: every account's retained raw history (replayable)."""
        accounts = {
            account_id: {
                "max_t": acct.max_t,
                "seq": acct.seq,
                "recent": acct.recent,
                "events": acct.raw_history(),
            }
            for account_id, acct in self._accounts.items()
        }
        doc = {
            "format": SNAPSHOT_FORMAT,
            "feature_version": FEATURE_VERSION,
            "allowed_lateness_s": self.allowed_lateness_s,
            "stats": self.stats.as_dict(),
            "accounts": accounts,
        }
        return zlib.compress(orjson.dumps(doc), 1)

    @classmethod
    def restore(cls, data: bytes, reference: ReferenceData | None = None) -> FeatureEngine:
        """Rebuild an engine from :meth:`snapshot` bytes; continuing gives identical vectors."""
        doc = orjson.loads(zlib.decompress(data))
        if doc.get("format") != SNAPSHOT_FORMAT or doc.get("feature_version") != FEATURE_VERSION:
            raise ValueError(
                f"snapshot format {doc.get('format')}/{doc.get('feature_version')} does not match "
                f"engine {SNAPSHOT_FORMAT}/{FEATURE_VERSION}"
            )
        engine = cls(reference, doc["allowed_lateness_s"])
        engine.stats = EngineStats(**doc["stats"])
        for account_id, state in doc["accounts"].items():
            acct = _Account()
            engine._replay_into(acct, [tuple(r) for r in state["events"]])
            acct.max_t = state["max_t"] if state["max_t"] is not None else -math.inf
            acct.seq = state["seq"]
            acct.recent = dict(state["recent"])
            engine._accounts[account_id] = acct
        return engine

    # ------------------------------------------------------------------ internals
    def _admit(self, acct: _Account, event_id: str, t: float) -> bool:
        if event_id in acct.recent:
            self.stats.duplicates += 1
            return False
        if t < acct.max_t - self.allowed_lateness_s:
            self.stats.too_late += 1
            return False
        acct.recent[event_id] = t
        return True

    def _rebuild(self, account_id: str, acct: _Account, record: tuple[Any, ...],
                 payment: Payment | None = None) -> FeatureVector | None:
        """Insert a late event at its event time by replaying the account's history."""
        rows = acct.raw_history()
        rows.append(record)
        rows.sort(key=lambda r: (r[1], r[2]))
        fresh = _Account()
        fresh.recent = acct.recent
        vector = self._replay_into(fresh, rows, target=(record[2], payment))
        fresh.seq = acct.seq
        self._accounts[account_id] = fresh
        return vector

    def _replay_into(self, acct: _Account, rows: list[tuple[Any, ...]],
                     target: tuple[int, Payment | None] | None = None) -> FeatureVector | None:
        vector = None
        retention = self.retention_s
        for r in rows:
            t = r[1]
            if t >= acct.max_t:
                acct.advance(t, retention, self.allowed_lateness_s)
            if r[0] == "l":
                acct.add_login(t, r[2], r[3], r[4], r[5], r[6])
            elif target is not None and r[2] == target[0] and target[1] is not None:
                vector = self._apply_payment(acct, target[1], r[2])
            else:
                acct.add_payment(t, r[2], r[3], r[4], r[5])
        return vector

    def _apply_payment(self, acct: _Account, p: Payment, seq: int) -> FeatureVector:
        t = p.t
        is_debit = p.direction == "debit"
        amount = p.amount
        cp = p.counterparty_account
        median, mean, std, prev_gap, first_cp, dwell = acct.add_payment(
            t, seq, is_debit, amount, cp
        )
        ref = self.reference
        info = ref.account(p.account_id)
        agg = acct.agg
        if median == median:
            ratio = amount / median
            z = (math.log10(amount) - mean) / std if std > 0 else 0.0
        else:
            ratio = z = NAN
        hour = int(((t + LOCAL_OFFSET_S) % DAY) // HOUR)
        if p.currency == "VND":
            round_amount = 1.0 if amount >= 1e6 and amount % 1e6 == 0 else 0.0
        else:
            round_amount = 1.0 if amount >= 100 and amount % 100 == 0 else 0.0
        credit_sum_24h = agg[11]
        n_snd7 = len(acct.snd7)
        kyc = info.kyc_country if info is not None else DEFAULT_KYC_COUNTRY
        n_dev_new = 0
        if acct.dev24:
            old = acct.dev_old
            for device in acct.dev24:
                if device not in old:
                    n_dev_new += 1
        lf = acct.last_foreign_t
        mins_foreign = (t - lf) / MIN if lf == lf and lf > t - W30D else NAN
        if info is not None:
            account_features = (
                0.0,
                1.0 if info.is_business else 0.0,
                (t - info.opened_t) / DAY,
                (t - info.registered_t) / DAY if info.is_business else NAN,
                (p.ts.year - info.birth_year),
            )
            is_business = info.is_business
        else:
            account_features = (1.0, NAN, NAN, NAN, NAN)
            is_business = False
        values = (
            *agg,
            float(len(acct.out24)),
            float(len(acct.out7)),
            amount,
            1.0 if is_debit else 0.0,
            ratio,
            z,
            prev_gap,
            first_cp,
            float(hour),
            1.0 if hour >= 23 or hour < 5 else 0.0,
            round_amount,
            float(CHANNEL_CODES[p.channel]),
            # mule
            float(len(acct.snd24)),
            float(n_snd7),
            agg[9] / credit_sum_24h if credit_sum_24h > 0 else NAN,
            dwell,
            acct.dwell7 / acct.dwell7_n if acct.dwell7_n else NAN,
            acct.new7 / agg[14] if agg[14] > 0 else NAN,
            # counterparty risk (labels confirmed at or before t only)
            *ref.counterparty_risk(cp, t),
            *ref.count_flagged_pair(acct.snd7, acct.out7, t),
            # logins
            float(acct.f24),
            float(acct.f7),
            float(len(acct.ctry7)),
            mins_foreign,
            NAN if p.country is None else (1.0 if p.country != kyc else 0.0),
            float(n_dev_new),
            float(acct.fail24),
            float(acct.fast7),
            float(acct.f7) if is_business else 0.0,
            *account_features,
        )
        return FeatureVector(values)


assert len(FEATURE_NAMES) == 16 + 12 + 6 + 5 + 9 + 5
