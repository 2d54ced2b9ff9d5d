"""Shared devices and IPs: which accounts were seen on a device or an IP, and when.

Accounts of one device live in different partitions of ``payments``/``logins`` (keyed by
account), so the links are built the Kafka way (a repartition, as Kafka Streams does for a
foreign-key join): every scorer publishes *sightings* of its events to ``device.sightings``
keyed by device or IP, a device processor merges them per key and publishes the compacted table
``device.links`` keyed the same way, and every scorer reads that table in full (a global table).
This module is the pure part: sightings, the table, the features, the record decoders.

Definitions (the oracle tests check exactly these):

* A **sighting** ``(key, account, s)``: a payment or login of ``account`` at time ``s`` carrying
  that device id (key ``d:<device_id>``) or IP (key ``i:<ip>``) — failed logins and duplicates
  included. Only the *first* sighting of each ``(key, account)`` in each clock hour (UTC) is
  kept: it bounds what is published and stored, and keeping the earliest of an hour is a
  ``min``, so merging the same sightings twice, or in any order, gives the same table
  (at-least-once delivery gives exactly-once state).
* A sighting is **visible** to a payment at ``t`` when ``s <= t - D``, ``D`` the visibility
  delay (``CANHGIAC_DEVICE_VISIBILITY_S``, default 60 s): the live table is asynchronous, and
  with the delay, replay (which loads every sighting up front and answers as of each payment)
  and the live scorer agree as long as the pipeline keeps up within ``D``.
* For a payment of account ``a`` at ``t``, its device is the payment's ``device_id`` or, when it
  has none (a credit, a branch payment), the device of ``a``'s latest login in the last 24 h;
  its IP is the payment's ``ip`` (nan when absent). ``device_accounts_{24h,7d}``: accounts other
  than ``a`` with a visible sighting on the device in ``(t - W, t - D]``;
  ``device_flagged_accounts_7d``: those of 7 days flagged at ``t`` (a fraud/mule label, received
  confirmed fraud or a watch-list entry in force, :meth:`ReferenceData.is_flagged`); the same
  for the IP. ``business_shared_device_7d``: ``device_accounts_7d`` for a business account, else
  0; ``business_shared_device_foreign_7d``: 1 for a business account on a shared device with a
  login from abroad in 7 days (item 9a), else 0. nan when the device (or IP) is unknown.
* A **payee sighting** (key ``c:<len(bank)>:<bank><account>``, :func:`payee_key`): a debit
  transfer (channel mobile, internet or branch) of ``account`` at ``s`` to that counterparty
  (its bank code and account). Payee keys count in clock *days* (UTC), not hours, and are kept
  ``PAYEE_RETENTION_S`` (91 days): only the first sighting of each ``(key, account)`` in each
  day is kept. A biller's or a big shop's key would collect most of the bank's accounts, so a
  payee key keeps, per clock day, only the ``PAYEE_CAP + 1`` earliest accounts (the smallest
  ``(time, account)`` pairs: a selection, still idempotent and order-free), and the columns
  saturate at ``PAYEE_CAP``: ``cp_other_payers_{7d,90d}`` = min(``PAYEE_CAP``, accounts other
  than ``a`` with a visible payee sighting of the payment's counterparty from the start of the
  clock day of ``t - W`` to ``t - D``), ``W`` 7 or 90 days -- how many other customers of this
  bank paid this beneficiary lately (several unrelated customers paying one beneficiary is how
  money reaches a rented account; none in 90 days is a beneficiary new to the whole bank, where
  an impersonation scam sends its victim); nan when the payment is not such a transfer. (Whole
  clock days at the window's old end keep the capped count exact: of a day's visible
  sightings, the earliest are the ones kept.)
"""

from __future__ import annotations

import json
import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from features.events import (  # the events' own fast path refuses a spaced colon alike
    _SPACED_COLON,
    Login,
    Payment,
    Rejection,
    format_ts,
    parse_timestamp,
)

if TYPE_CHECKING:
    from features.reference import ReferenceData

DEFAULT_VISIBILITY_S: Final = 60.0
SIGHTING_INTERVAL_S: Final = 3600.0  # one sighting per (key, account) per clock hour
DAY: Final = 86400.0
WEEK: Final = 7 * DAY
RETENTION_S: Final = WEEK + DAY  # the processor drops sightings older than this
# payee keys: one sighting per (key, account) per clock day, for cp_other_payers_90d
PAYEE_INTERVAL_S: Final = DAY
PAYEE_WINDOW_S: Final = 90 * DAY
# the processor keeps a payee key's sightings of whole clock days: the 91 days before the day of
# its partition's event time, and that day (a payment's 90-day window starts at the clock day
# of t - 90 d: a day of slack for a partition a day behind, as for the 7-day window)
PAYEE_RETENTION_S: Final = PAYEE_WINDOW_S + DAY
DEVICE: Final = "d:"
IP: Final = "i:"
PAYEE: Final = "c:"
# debits that send money to a beneficiary (cards, ATMs and billers' API debits do not)
TRANSFER_CHANNELS: Final = frozenset({"mobile", "internet", "branch"})
PAYEE_CAP: Final = 5  # cp_other_payers_{7d,90d} saturate here ("5 or more")
# payee keys with more accounts are answered day by day (not Final: a test lowers it)
PAYEE_SCAN_AT = 48
NAN: Final = math.nan
# "c:1024:" + a bank code and an account of at most 1024 characters each (the longest key)
MAX_KEY_CHARS: Final = 2056
MAX_LINKS_BYTES: Final = 4 * 1024 * 1024
MAX_SIGHTINGS_BYTES: Final = 1024 * 1024  # one batch record of device.sightings
MAX_TIMES: Final = int(RETENTION_S // SIGHTING_INTERVAL_S) + 2
SIGHTINGS_KIND: Final = "device.sightings"
LINKS_KIND: Final = "device.links"

NO_LINKS: tuple[float, float, float] = (0.0, 0.0, 0.0)
NO_PAYERS: tuple[float, float] = (0.0, 0.0)
NOT_A_TRANSFER: tuple[float, float] = (NAN, NAN)
UNKNOWN: tuple[float, float, float] = (NAN, NAN, NAN)


@dataclass(frozen=True, slots=True)
class Sighting:
    """One record of ``device.sightings``: ``account_id`` used ``key`` at ``t``."""

    key: str  # d:<device_id>, i:<ip> or c:<len(bank)>:<bank><account> (payee_key)
    account_id: str
    t: float


def payee_key(p: Payment) -> str | None:
    """The payee key of a debit transfer (see the module's definitions), else None."""
    if p.direction != "debit" or p.channel not in TRANSFER_CHANNELS:
        return None
    bank = p.counterparty_bank
    return f"{PAYEE}{len(bank)}:{bank}{p.counterparty_account}"


def sightings_of(event: Payment | Login) -> list[Sighting]:
    """The sightings an event makes (its device id and its IP when present, and a debit
    transfer's payee)."""
    out = []
    if event.device_id is not None:
        out.append(Sighting(DEVICE + event.device_id, event.account_id, event.t))
    if event.ip is not None:
        out.append(Sighting(IP + event.ip, event.account_id, event.t))
    if isinstance(event, Payment):
        payee = payee_key(event)
        if payee is not None:
            out.append(Sighting(payee, event.account_id, event.t))
    return out


def hour_of(t: float) -> int:
    return int(t // SIGHTING_INTERVAL_S)


def day_of(t: float) -> int:
    return int(t // PAYEE_INTERVAL_S)


def interval_of(key: str) -> float:
    """How often a (key, account) keeps a sighting: once a clock day for payee keys, once a
    clock hour for devices and IPs."""
    return PAYEE_INTERVAL_S if key.startswith(PAYEE) else SIGHTING_INTERVAL_S


def prune_before(key: str, mark: float) -> float:
    """The processor drops a key's sightings at or before this time when its partition's event
    time is ``mark``, whole clock hours (devices, IPs) or days (payee keys) at a time: the
    hours before ``hour_of(mark) - 192`` (8 days), the days before ``day_of(mark) - 91``. A
    bucket is all kept or all gone, so a prune never changes what a later merge of that bucket
    keeps (the earliest sighting, a payee day's 6 smallest pairs): merging, pruning and merging
    again gives the state of merging everything once."""
    if key.startswith(PAYEE):
        start = day_of(mark) * PAYEE_INTERVAL_S - PAYEE_RETENTION_S
    else:
        start = hour_of(mark) * SIGHTING_INTERVAL_S - RETENTION_S
    return math.nextafter(start, -math.inf)


def bucket_of(key: str, t: float) -> int:
    """The clock day (payee keys) or hour (devices, IPs) of a sighting of ``key`` at ``t``."""
    return int(t // interval_of(key))


def merge_time(times: array[float], t: float, interval: float = SIGHTING_INTERVAL_S) -> bool:
    """Merge sighting time ``t`` into sorted ``times`` (at most one per ``interval``, the
    earliest); returns whether ``times`` changed."""
    start = (t // interval) * interval
    i = bisect_left(times, start)
    if i < len(times) and times[i] < start + interval:
        if t < times[i]:
            times[i] = t
            return True
        return False
    times.insert(i, t)
    return True


class DeviceLinks:
    """The device/IP table: key -> {account: sorted sighting times}, answered as of a time.

    Replay and the device processor :meth:`observe` sightings; the live scorer replaces whole
    keys with the table records it reads (:meth:`put`, :meth:`delete`: a key's account map is
    never changed after it is put, so the scorer's reader thread can swap it in while the loop
    reads)."""

    __slots__ = ("delay_s", "_table", "_days")

    def __init__(self, delay_s: float = DEFAULT_VISIBILITY_S) -> None:
        self.delay_s = float(delay_s)
        # times as array('d'): 8 bytes a sighting (a list of floats costs 32)
        self._table: dict[str, dict[str, array[float]]] = {}
        # payee keys with more than PAYEE_SCAN_AT accounts: clock day -> its kept (time,
        # account) pairs, sorted (at most PAYEE_CAP + 1); derived from _table, rebuilt after
        # put / prune
        self._days: dict[str, dict[int, list[tuple[float, str]]]] = {}

    # ------------------------------------------------------------------ updates
    def observe(self, key: str, account: str, t: float) -> bool:
        """Merge one sighting; True when the key's state changed."""
        if key.startswith(PAYEE):
            return self._observe_payee(key, account, t)
        accounts = self._table.get(key)
        if accounts is None:
            accounts = self._table[key] = {}
        times = accounts.get(account)
        if times is None:
            accounts[account] = array("d", (t,))
            return True
        return merge_time(times, t)

    def load(self, events: Iterable[Payment | Login]) -> None:
        """Observe every sighting of ``events`` (replay loads the whole log up front)."""
        observe = self.observe
        for event in events:
            if event.device_id is not None:
                observe(DEVICE + event.device_id, event.account_id, event.t)
            if event.ip is not None:
                observe(IP + event.ip, event.account_id, event.t)
            if isinstance(event, Payment):
                payee = payee_key(event)
                if payee is not None:
                    observe(payee, event.account_id, event.t)

    def _observe_payee(self, key: str, account: str, t: float) -> bool:
        """Merge a payee sighting: the day keeps its PAYEE_CAP + 1 smallest (time, account)."""
        accounts = self._table.get(key)
        if accounts is None:
            accounts = self._table[key] = {}
        days = self._days.get(key)
        if days is None and len(accounts) > PAYEE_SCAN_AT:
            days = self._index(key, accounts)
        d = day_of(t)
        if days is None:  # a small key: the day's pairs from its accounts (not kept)
            bucket = self._day_pairs(accounts, d)
        else:
            got = days.get(d)
            if got is None:
                got = days[d] = []
            bucket = got
        for i in range(len(bucket)):
            if bucket[i][1] == account:
                if t >= bucket[i][0]:
                    return False
                bucket[i] = (t, account)
                bucket.sort()
                merge_time(accounts[account], t, PAYEE_INTERVAL_S)
                return True
        pair = (t, account)
        if len(bucket) > PAYEE_CAP:
            last = bucket[-1]
            if pair >= last:
                return False
            bucket.pop()
            self._drop(accounts, last[1], last[0])
        bucket.insert(bisect_left(bucket, pair), pair)
        times = accounts.get(account)
        if times is None:
            accounts[account] = array("d", (t,))
        else:
            merge_time(times, t, PAYEE_INTERVAL_S)
        return True

    @staticmethod
    def _day_pairs(accounts: dict[str, array[float]], d: int) -> list[tuple[float, str]]:
        lo = d * PAYEE_INTERVAL_S
        hi = lo + PAYEE_INTERVAL_S
        out = []
        for account, times in accounts.items():
            i = bisect_left(times, lo)
            if i < len(times) and times[i] < hi:
                out.append((times[i], account))
        out.sort()
        return out

    @staticmethod
    def _drop(accounts: dict[str, array[float]], account: str, t: float) -> None:
        times = accounts[account]
        i = bisect_left(times, t)
        del times[i]
        if not times:
            del accounts[account]

    def _index(self, key: str, accounts: dict[str, array[float]]
               ) -> dict[int, list[tuple[float, str]]]:
        """The day index of a payee key with more than PAYEE_SCAN_AT accounts, built from
        its accounts when missing (a record that keeps more than PAYEE_CAP + 1 accounts in a
        day is cut to the earliest). Small keys keep no index: it would double their memory."""
        days = self._days.get(key)
        if days is not None:
            return days
        days = {}
        for account, times in list(accounts.items()):
            last = -1
            firsts: list[float] = []
            for x in times:
                d = day_of(x)
                if d == last:  # a later sighting of the day (a record written per hour)
                    continue
                last = d
                firsts.append(x)
                bucket = days.get(d)
                if bucket is None:
                    days[d] = [(x, account)]
                else:
                    bucket.append((x, account))
            if len(firsts) < len(times):
                accounts[account] = array("d", firsts)
        for bucket in days.values():
            bucket.sort()
            while len(bucket) > PAYEE_CAP + 1:
                extra = bucket.pop()
                self._drop(accounts, extra[1], extra[0])
        self._days[key] = days
        return days

    def put(self, key: str, accounts: dict[str, array[float]]) -> None:
        if key.startswith(PAYEE):
            # the index first: a reader thread's put must never leave a newer map with an
            # older index (the query reads one of the two, each consistent)
            self._days.pop(key, None)
            if len(accounts) > PAYEE_SCAN_AT:
                self._index(key, accounts)
        self._table[key] = accounts

    def delete(self, key: str) -> None:
        self._table.pop(key, None)
        self._days.pop(key, None)

    def prune(self, key: str, before: float) -> bool:
        """Drop the key's sightings at or before ``before``; True when something was dropped
        (the key disappears when nothing is left)."""
        accounts = self._table.get(key)
        if accounts is None:
            return False
        changed = False
        for account in list(accounts):
            times = accounts[account]
            k = bisect_right(times, before)
            if k:
                changed = True
                if k == len(times):
                    del accounts[account]
                else:
                    del times[:k]
        if not accounts:
            del self._table[key]
        if changed:
            self._days.pop(key, None)
        return changed

    # ------------------------------------------------------------------ queries
    def get(self, key: str) -> dict[str, array[float]] | None:
        return self._table.get(key)

    def keys(self) -> list[str]:
        return list(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def features(self, device: str | None, ip: str | None, own: str, t: float,
                 is_business: bool, foreign_7d: float, ref: ReferenceData,
                 payee: str | None = None) -> tuple[float, ...]:
        """The vector's device columns (:data:`DEVICE_NAMES`) for a payment of ``own`` at
        ``t`` made from ``device`` / ``ip`` (None: unknown) to ``payee`` (its
        :func:`payee_key`; None: not a debit transfer)."""
        if not self._table:
            d = UNKNOWN if device is None else NO_LINKS
            i = UNKNOWN if ip is None else NO_LINKS
            payers = NOT_A_TRANSFER if payee is None else NO_PAYERS
        else:
            d = UNKNOWN if device is None else self._count(DEVICE + device, own, t, ref)
            i = UNKNOWN if ip is None else self._count(IP + ip, own, t, ref)
            payers = NOT_A_TRANSFER if payee is None else self._others(payee, own, t)
        d7 = d[1]
        if is_business:
            shared = d7
            foreign = (1.0 if d7 > 0 and foreign_7d > 0 else 0.0) if d7 == d7 else NAN
        else:
            shared = 0.0 if d7 == d7 else NAN
            foreign = shared
        return (d[0], d7, i[0], i[1], d[2], i[2], shared, foreign, payers[0], payers[1])

    def _others(self, key: str, own: str, t: float) -> tuple[float, float]:
        """min(PAYEE_CAP, accounts other than ``own`` with a visible sighting of payee
        ``key`` from the start of the clock day of ``t - 7 d``), and the same from the start
        of the clock day of ``t - 90 d``."""
        accounts = self._table.get(key)
        if accounts is None:
            return NO_PAYERS
        hi = t - self.delay_s
        first_day7 = day_of(t - WEEK)
        first_day = day_of(t - PAYEE_WINDOW_S)
        lo7 = first_day7 * PAYEE_INTERVAL_S
        lo = first_day * PAYEE_INTERVAL_S
        days = self._days.get(key)
        if days is None or len(accounts) <= PAYEE_SCAN_AT:
            n7 = n = 0
            for account, times in accounts.items():
                if account == own:
                    continue
                k = bisect_right(times, hi)
                if k and times[k - 1] >= lo:
                    if n < PAYEE_CAP:
                        n += 1
                    if times[k - 1] >= lo7:
                        n7 += 1
                        if n7 >= PAYEE_CAP:
                            break
            return float(n7), float(n)
        seen: set[str] = set()
        n7 = -1
        d = day_of(hi)
        while d >= first_day:
            if n7 < 0 and d < first_day7:
                n7 = len(seen)
            bucket = days.get(d)
            if bucket is not None:
                for x, account in bucket:
                    if x <= hi and account != own:
                        seen.add(account)
                if len(seen) >= PAYEE_CAP:
                    break
            d -= 1
        n = min(len(seen), PAYEE_CAP)
        return float(n if n7 < 0 else min(n7, PAYEE_CAP)), float(n)

    def _count(self, key: str, own: str, t: float, ref: ReferenceData
               ) -> tuple[float, float, float]:
        accounts = self._table.get(key)
        if accounts is None:
            return NO_LINKS
        hi = t - self.delay_s
        lo7 = t - WEEK
        lo24 = t - DAY
        n24 = n7 = flagged = 0
        for account, times in accounts.items():
            if account == own:
                continue
            k = bisect_right(times, hi)  # the latest visible sighting: times[k - 1]
            if k == 0 or times[k - 1] <= lo7:
                continue
            n7 += 1
            if times[k - 1] > lo24:
                n24 += 1
            if ref.is_flagged(account, t):
                flagged += 1
        return float(n24), float(n7), float(flagged)


# ---------------------------------------------------------------- records (JSON on Kafka)


def encode_sighting(s: Sighting, ts: Any = None) -> bytes:
    """``device.sightings`` value: ``{"key", "account_id", "t"}`` (``t``: epoch seconds, the
    event's own time, exact; ``ts``: the same instant in RFC 3339, for people)."""
    doc: dict[str, Any] = {"key": s.key, "account_id": s.account_id, "t": s.t}
    if ts is not None:
        doc["ts"] = format_ts(ts)
    return orjson.dumps(doc)


def encode_sightings(sightings: Iterable[Sighting]) -> bytes:
    """A batch record of ``device.sightings``: ``{"sightings": [[key, account_id, t], ...]}``
    (every key of the batch belongs to the record's partition). A scorer sends one such
    record per partition per iteration instead of one record per sighting."""
    return orjson.dumps({"sightings": [[s.key, s.account_id, s.t] for s in sightings]})


def encode_links(key: str, accounts: Mapping[str, array[float]]) -> bytes:
    """``device.links`` value: ``{"key", "accounts": {account: [sighting times]}}``."""
    return orjson.dumps({"key": key, "accounts": {a: times.tolist()
                                                  for a, times in accounts.items()}})


class _Bad(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Bad(k, "duplicate key in JSON object")
        out[k] = v
    return out


def _reject_constant(name: str) -> float:
    raise _Bad("", f"{name} is not allowed in JSON")


def _object(raw: Any, limit: int) -> dict[str, Any]:
    """One record's JSON object. Fast path: orjson, whose result is kept only when it must equal
    the strict parser's (:func:`_fast_object`); anything else, every error included, goes
    through :func:`_strict_object`, which names the problem."""
    if raw is None:
        raise _Bad("", "empty message (tombstone)")
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise _Bad("", f"message value is {type(raw).__name__}, not bytes")
    raw = bytes(raw)
    if len(raw) > limit:
        raise _Bad("", f"record is {len(raw)} bytes, limit is {limit}")
    fast = _fast_object(raw)
    return fast if fast is not None else _strict_object(raw)


MAX_FAST_DEPTH: Final = 32  # deeper goes the strict way (whose limit is the recursion limit)
# orjson reads an integer beyond 64 bits as a float, the stdlib as an int (a rejection quotes
# it): a float this large may have been one, so it goes the strict way
_BIG: Final = 9.2e18


def _fast_object(raw: bytes) -> dict[str, Any] | None:
    """orjson's parse of ``raw`` when it equals the stdlib's with duplicate keys refused, else
    None. orjson keeps the last of duplicate keys silently, so its object is accepted only when
    the bytes prove there were none: every key is followed by ``":`` (a space before a colon
    goes the strict way), so as many ``":`` in the bytes as keys in the parse means no key was
    dropped; a duplicate, or a key or string holding ``":``, makes the counts differ and the
    strict parser decide."""
    if _SPACED_COLON(raw) is not None:
        return None
    try:
        obj = orjson.loads(raw)
    except Exception:  # noqa: BLE001 - the strict parser names the error
        return None
    if type(obj) is not dict:
        return None
    keys = _keys_in(obj, 0)
    if keys < 0 or raw.count(b'":') != keys:
        return None
    return obj


def _keys_in(x: Any, depth: int) -> int:
    """The keys of every object in ``x`` (a parse), or -1 (go the strict way) past
    :data:`MAX_FAST_DEPTH` or at a float beyond 64-bit integers."""
    if depth > MAX_FAST_DEPTH:
        return -1
    keys = 0
    if type(x) is dict:
        keys = len(x)
        values: Iterable[Any] = x.values()
    else:
        values = x
    for v in values:
        if type(v) is float:
            if not -_BIG < v < _BIG:
                return -1
        elif type(v) is dict or type(v) is list:
            k = _keys_in(v, depth + 1)
            if k < 0:
                return -1
            keys += k
    return keys


def _strict_object(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Bad("", f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates,
                         parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _Bad("", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                   ) from None
    except RecursionError:
        raise _Bad("", "JSON nested too deeply") from None
    except ValueError as exc:
        raise _Bad("", f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _Bad("", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _key(value: Any, name: str = "key") -> str:
    if not isinstance(value, str):
        raise _Bad(name, "missing (required)" if value is None
                   else f"must be a string, got {type(value).__name__}")
    if not (value.startswith(DEVICE) or value.startswith(IP) or value.startswith(PAYEE)
            ) or len(value) <= 2:
        raise _Bad(name, f"'{value[:60]}' is not d:<device_id>, i:<ip> or c:<payee>")
    if len(value) > MAX_KEY_CHARS or not value.isprintable():
        raise _Bad(name, "too long or not printable")
    return value


def _account(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise _Bad(name, "missing (required)" if value is None
                   else f"must be a string, got {type(value).__name__}")
    if not value.strip() or len(value) > 1024:
        raise _Bad(name, "empty or longer than 1024 characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad(name, "not valid Unicode (a lone surrogate)") from None
    return value


MIN_T: Final = -62135596800.0  # 0001-01-01T00:00:00Z
MAX_T: Final = 253402300799.0  # 9999-12-31T23:59:59Z


def _time(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(name, "must be a number (epoch seconds)")
    try:
        t = float(value)
    except OverflowError:  # an integer beyond a float's range
        raise _Bad(name, "is not a time in years 1-9999 (a number beyond a float)") from None
    if not math.isfinite(t) or not MIN_T <= t <= MAX_T:
        raise _Bad(name, f"{value!r} is not a time in years 1-9999")
    return t


def _kept(raw: Any) -> bytes:
    """What a rejection keeps of a record value: its first 8 KiB, or nothing when it is not
    bytes (a caller's mistake must not raise inside the handler that reports it)."""
    if isinstance(raw, bytes | bytearray | memoryview):
        return bytes(raw[:8192])
    return b""


# (raw and key are typed Any: a compiled build checks an argument's declared type on entry and
# would raise on anything else, where the contract is a Rejection saying what it got)
def decode_sighting(raw: Any) -> Sighting | Rejection:
    """A ``device.sightings`` record, or a :class:`Rejection` saying why (never raises)."""
    try:
        d = _object(raw, 8192)
        t = _time(d.get("t"), "t")
        if d.get("ts") is not None:
            ts = parse_timestamp(d["ts"], "ts")
            if abs(ts.timestamp() - t) > 1e-3:
                raise _Bad("ts", "does not match t")
        return Sighting(_key(d.get("key")), _account(d.get("account_id"), "account_id"), t)
    except _Bad as exc:
        return Rejection(SIGHTINGS_KIND, exc.field, exc.reason, _kept(raw))
    except Exception as other:  # noqa: BLE001 - one record must never stop a stream
        # (another name than the clause above: a compiled build types each name once)
        field = getattr(other, "field", "")
        reason = (getattr(other, "reason", None)
                  or f"unexpected {type(other).__name__}: {other}"[:300])
        return Rejection(SIGHTINGS_KIND, str(field), str(reason), _kept(raw))


def decode_sightings(raw: Any) -> tuple[list[Sighting], Rejection | None]:
    """A ``device.sightings`` record, a batch (:func:`encode_sightings`) or one sighting
    (:func:`encode_sighting`): the valid sightings, and a :class:`Rejection` naming the bad
    ones (None when every one is good). Never raises; one bad element does not lose the
    others."""
    try:
        d = _object(raw, MAX_SIGHTINGS_BYTES)
        if "sightings" not in d:
            one = decode_sighting(raw)
            return ([], one) if isinstance(one, Rejection) else ([one], None)
        if len(d) != 1:
            raise _Bad("", "a batch has only the field 'sightings'")
        items = d["sightings"]
        if not isinstance(items, list):
            raise _Bad("sightings", "must be a list")
        good: list[Sighting] = []
        bad = 0
        first = ""
        for i, item in enumerate(items):
            try:
                if not isinstance(item, list) or len(item) != 3:
                    raise _Bad("sightings", "must be [key, account_id, t]")
                good.append(Sighting(_key(item[0]), _account(item[1], "account_id"),
                                     _time(item[2], "t")))
            except _Bad as exc:
                bad += 1
                if not first:
                    first = f"element {i} ({exc.field}): {exc.reason}"
        if not bad:
            return good, None
        return good, Rejection(SIGHTINGS_KIND, "sightings",
                               f"{bad} of {len(items)} sightings rejected; {first}"[:300],
                               _kept(raw))
    except _Bad as exc:
        return [], Rejection(SIGHTINGS_KIND, exc.field, exc.reason, _kept(raw))
    except Exception as other:  # noqa: BLE001 - one record must never stop a stream
        field = getattr(other, "field", "")
        reason = (getattr(other, "reason", None)
                  or f"unexpected {type(other).__name__}: {other}"[:300])
        return [], Rejection(SIGHTINGS_KIND, str(field), str(reason), _kept(raw))


@dataclass(frozen=True, slots=True)
class LinksRecord:
    """One record of ``device.links``: a key's accounts with their sighting times (None: the
    key was deleted, a tombstone)."""

    key: str
    accounts: dict[str, array[float]] | None


def decode_links(key: Any, raw: Any) -> LinksRecord | Rejection:
    """A ``device.links`` record (its Kafka key and value), or a :class:`Rejection`."""
    try:
        if not isinstance(key, bytes | bytearray):
            raise _Bad("key", "record has no key" if key is None
                       else f"record key is {type(key).__name__}, not bytes")
        try:
            k = _key(bytes(key).decode("utf-8"))
        except UnicodeDecodeError:
            raise _Bad("key", "key is not UTF-8") from None
        if raw is None:
            return LinksRecord(k, None)
        d = _object(raw, MAX_LINKS_BYTES)
        if _key(d.get("key")) != k:
            raise _Bad("key", "value's key differs from the record key")
        accounts = d.get("accounts")
        if not isinstance(accounts, dict):
            raise _Bad("accounts", "must be an object of account -> [times]")
        out: dict[str, array[float]] = {}
        for account, times in accounts.items():
            _account(account, "accounts")
            if not isinstance(times, list) or not times or len(times) > MAX_TIMES:
                raise _Bad("accounts", f"times of {account[:40]!r} must be a non-empty list of"
                           f" at most {MAX_TIMES} numbers")
            # a float in range is its own time (the common case, without a call)
            values = [x if type(x) is float and MIN_T <= x <= MAX_T else _time(x, "accounts")
                      for x in times]
            for i in range(1, len(values)):
                if values[i] <= values[i - 1]:
                    raise _Bad("accounts", f"times of {account[:40]!r} are not increasing")
            out[account] = array("d", values)
        return LinksRecord(k, out)
    except _Bad as exc:
        return Rejection(LINKS_KIND, exc.field, exc.reason, _kept(raw))
    except Exception as other:  # noqa: BLE001 - one record must never stop a stream
        return Rejection(LINKS_KIND, "", f"unexpected {type(other).__name__}: {other}"[:300],
                         _kept(raw))
