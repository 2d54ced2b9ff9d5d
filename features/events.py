"""Typed, frozen event types of the Kafka contracts (DESIGN.md) and their validating decoders.

Every decoder takes raw bytes (or an already-parsed mapping) and returns either the event or a
:class:`Rejection` naming the field and the problem. Decoders never raise on bad input and
never guess: a missing timezone, a non-positive amount, an unknown currency, a duplicate JSON
key are all rejections. Unknown extra fields are tolerated and kept in ``extra``.

Timestamps are kept twice: ``ts`` (timezone-aware ``datetime``, as received) and ``t``
(float seconds since the Unix epoch) which the feature engine uses for arithmetic.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, Literal, TypeAlias

import orjson

from features.codes import ISO_3166_ALPHA2, ISO_4217

Direction = Literal["debit", "credit"]
CHANNELS = frozenset({"mobile", "internet", "atm", "branch", "pos", "api"})
DIRECTIONS = frozenset({"debit", "credit"})
ACCOUNT_TYPES = frozenset({"personal", "business"})
LABELS = frozenset({"fraud", "mule", "legit"})
MAX_AMOUNT = 1e15  # 1 million billion VND: anything larger is a unit error, not a payment.
MAX_TEXT = 1024  # longest identifier or free-text field accepted
MAX_EVENT_BYTES = 64 * 1024

_EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an event could not be accepted. ``field`` is the offending field (``""`` = whole)."""

    kind: str
    field: str
    reason: str
    raw: bytes = b""

    def message(self) -> str:
        where = f"field '{self.field}'" if self.field else "event"
        return f"{self.kind}: {where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Payment:
    event_id: str
    ts: datetime
    account_id: str
    direction: str
    amount: float
    currency: str
    counterparty_account: str
    counterparty_bank: str
    channel: str
    session_id: str | None = None
    ip: str | None = None
    country: str | None = None
    device_id: str | None = None
    description: str | None = None
    # the mobile app's device-risk signals at the time of the transfer (Decision 2345/QD-NHNN):
    # a phone call active during the session; a remote-access / screen-sharing app running
    # (AnyDesk, TeamViewer, UltraViewer...). None = not reported (no app session: branch, API,
    # internet banking, or an app that does not report it), which is not the same as False.
    on_call: bool | None = None
    remote_access: bool | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)
    t: float = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", self.ts.timestamp())


@dataclass(frozen=True, slots=True)
class Login:
    event_id: str
    ts: datetime
    account_id: str
    success: bool
    ip: str
    country: str
    device_id: str
    channel: str
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)
    t: float = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", self.ts.timestamp())


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    customer_id: str
    type: str
    opened_at: datetime
    kyc_country: str
    birth_year: int | None = None
    registered_at: datetime | None = None
    segment: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Label:
    label_id: str
    confirmed_at: datetime
    account_id: str
    label: str
    event_id: str | None = None
    typology: str | None = None
    source: str | None = None
    # the other side of the payment concerned: who received the money (optional; when the
    # payment ``event_id`` is known its own fields are used instead)
    counterparty_account: str | None = None
    counterparty_bank: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)
    t: float = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", self.confirmed_at.timestamp())


@dataclass(frozen=True, slots=True)
class WatchEntry:
    """One account on the watch list (``watchlist`` topic, compacted, keyed by bank + account):
    reported by the State Bank's SIMO, the police or another bank."""

    bank: str
    account: str
    source: str
    listed_at: datetime
    reason: str
    delisted_at: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        """The compacted topic's key: ``bank/account``."""
        return f"{self.bank}/{self.account}"

    def in_force(self, t: float) -> bool:
        """Listed at epoch seconds ``t``: from ``listed_at`` until ``delisted_at`` (exclusive)."""
        return self.listed_at.timestamp() <= t and (
            self.delisted_at is None or t < self.delisted_at.timestamp())


@dataclass(frozen=True, slots=True)
class ConfirmedPayment:
    """A payment confirmed fraudulent: who paid whom, how much, when, confirmed when.

    The record a live deployment publishes on a compacted topic keyed by ``label_id`` (the
    "confirmed beneficiaries", contract kind ``confirmed_payments``): the label arrives keyed by
    the victim's account and the payment it names lives in the victim's partition, but payments
    to the same beneficiary come through every partition, so every scorer reads these records as
    a global table. Derived by :func:`features.reference.confirmed_payment` from a label and
    (when known) the payment it names."""

    label_id: str
    confirmed_at: datetime
    label: str  # fraud | mule
    sender_account: str
    receiver_account: str
    sender_bank: str | None = None
    receiver_bank: str | None = None
    event_id: str | None = None
    amount: float | None = None  # None: only the label is known
    paid_at: datetime | None = None  # None: only the label is known (confirmed_at is used)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def t(self) -> float:
        return self.confirmed_at.timestamp()

    @property
    def paid_t(self) -> float:
        return self.paid_at.timestamp() if self.paid_at is not None else self.t


Event: TypeAlias = Payment | Login | Account | Label | WatchEntry | ConfirmedPayment


class _Invalid(Exception):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


def _pairs_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Invalid(key, "duplicate key in JSON object")
        out[key] = value
    return out


_SPACED_COLON = re.compile(rb'"\s+:').search


def parse_json(raw: bytes) -> dict[str, Any]:
    """Parse one event's JSON object, rejecting duplicate keys, NaN/Infinity and non-objects.

    Fast path: orjson (strict JSON, no NaN/Infinity). orjson keeps the last of duplicate keys
    silently, so its result is accepted only when duplicates are impossible: one object (no
    nesting, no array) and no key's quoted name appearing twice in the bytes. Anything else,
    including every orjson error, goes through the strict stdlib parser, which names the
    problem and refuses what orjson could not write back."""
    if len(raw) <= MAX_EVENT_BYTES and raw.count(b"{") == 1 and b"[" not in raw:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = None
        # every key ends with `":`; more of them than keys means a duplicate (or `":` inside a
        # string value): both go the strict way, as does any `" :` spacing.
        if type(obj) is dict and raw.count(b'":') == len(obj) and not _SPACED_COLON(raw):
            return obj
    return _parse_json_strict(raw)


def _parse_json_strict(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_EVENT_BYTES:
        raise _Invalid("", f"event is {len(raw)} bytes, limit is {MAX_EVENT_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Invalid("", f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        obj = json.loads(
            text, object_pairs_hook=_pairs_no_duplicates, parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise _Invalid("", f"not valid JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise _Invalid("", "JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer longer than the parser's digit limit
        raise _Invalid("", f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _Invalid("", f"expected a JSON object, got {type(obj).__name__}")
    try:  # what orjson cannot write back (a lone surrogate, an integer beyond 64 bits) would
        orjson.dumps(obj)  # fail later, in an output: refuse it here, with the reason
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise _Invalid("", f"not representable: {exc}") from None
    return obj


def _reject_constant(name: str) -> float:
    raise _Invalid("", f"{name} is not allowed in JSON")


def _finite_float(text: str) -> float:
    """A JSON number beyond a double (``1e999``) would be read as infinity, which no output can
    write back as JSON (an extra field is kept and re-encoded): refused, as orjson refuses it."""
    value = float(text)
    if not math.isfinite(value):
        raise _Invalid("", f"number {text[:40]} is beyond a 64-bit float")
    return value


# ---------------------------------------------------------------- field readers


def _text(d: dict[str, Any], name: str) -> str:
    value = d.get(name)
    if type(value) is str and 0 < len(value) <= MAX_TEXT and not value.isspace():
        return value  # the common case; anything else gets its precise reason below
    if name not in d or d[name] is None:
        raise _Invalid(name, "missing (required)")
    value = d[name]
    if not isinstance(value, str):
        raise _Invalid(name, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise _Invalid(name, "must not be empty")
    if len(value) > MAX_TEXT:
        raise _Invalid(name, f"longer than {MAX_TEXT} characters")
    return value


def _opt_text(d: dict[str, Any], name: str) -> str | None:
    if d.get(name) is None:
        return None
    value = d[name]
    if not isinstance(value, str):
        raise _Invalid(name, f"must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise _Invalid(name, f"longer than {MAX_TEXT} characters")
    return value


def _opt_bool(d: dict[str, Any], name: str) -> bool | None:
    """An optional JSON boolean: absent or null is None (unknown); anything but true/false
    (a string "true", 0/1, a list...) is refused, never guessed."""
    value = d.get(name)
    if value is None or type(value) is bool:
        return value
    raise _Invalid(name, f"must be a boolean (true/false) or absent, got {type(value).__name__}")


def _choice(d: dict[str, Any], name: str, allowed: frozenset[str]) -> str:
    value = _text(d, name)
    if value not in allowed:
        raise _Invalid(name, f"'{value}' is not one of {', '.join(sorted(allowed))}")
    return value


def parse_timestamp(value: Any, name: str = "ts") -> datetime:
    """RFC 3339 timestamp with an explicit offset; a ``datetime`` must be timezone-aware."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _Invalid(name, "timestamp has no timezone offset")
        return value
    if not isinstance(value, str):
        raise _Invalid(name, f"must be an RFC 3339 string, got {type(value).__name__}")
    # RFC 3339's shape (Python's ISO 8601 parser takes more: week dates, no seconds, a ','
    # fraction, an offset with seconds): YYYY-MM-DD, T/t/space, hh:mm:ss, an optional '.'
    # fraction, then Z/z or +hh:mm/-hh:mm
    n = len(value)
    if (n < 19 or value[4] != "-" or value[7] != "-" or value[10] not in "Tt "
            or value[13] != ":" or value[16] != ":" or (n > 19 and value[19] not in ".Zz+-")):
        raise _Invalid(name, f"'{value[:40]}' is not an RFC 3339 date-time")
    last = value[n - 1]
    if last == "z":  # RFC 3339 allows a lower-case Z (Python's parser does not)
        value = value[:n - 1] + "Z"
    elif last != "Z" and not (n >= 25 and value[n - 3] == ":" and value[n - 6] in "+-"):
        if "+" not in value[19:] and "-" not in value[19:]:
            raise _Invalid(name, f"'{value[:40]}' has no timezone offset (add Z or +07:00)")
        raise _Invalid(name, f"'{value[:40]}' is not an RFC 3339 date-time "
                             "(its offset must be Z or +hh:mm)")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(name, f"'{value[:40]}' is not an RFC 3339 date-time") from None
    if parsed.tzinfo is None:
        raise _Invalid(name, f"'{value[:40]}' has no timezone offset (add Z or +07:00)")
    try:
        parsed.timestamp()
    except (OverflowError, ValueError):
        raise _Invalid(name, f"'{value[:40]}' is out of range") from None
    return parsed


def _ts(d: dict[str, Any], name: str) -> datetime:
    if name not in d or d[name] is None:
        raise _Invalid(name, "missing (required)")
    return parse_timestamp(d[name], name)


def _opt_ts(d: dict[str, Any], name: str) -> datetime | None:
    return None if d.get(name) is None else parse_timestamp(d[name], name)


def _amount(d: dict[str, Any], name: str) -> float:
    if name not in d or d[name] is None:
        raise _Invalid(name, "missing (required)")
    value = d[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(name, f"must be a number, got {type(value).__name__}")
    if isinstance(value, int) and abs(value) > MAX_AMOUNT:
        raise _Invalid(name, f"{value} exceeds the maximum {MAX_AMOUNT:.0e}")
    amount = float(value)
    if not math.isfinite(amount):
        raise _Invalid(name, "must be finite")
    if amount <= 0:
        raise _Invalid(name, f"must be > 0, got {value}")
    if amount > MAX_AMOUNT:
        raise _Invalid(name, f"{value} exceeds the maximum {MAX_AMOUNT:.0e}")
    return amount


def _country(d: dict[str, Any], name: str, required: bool) -> str | None:
    value = _text(d, name) if required else _opt_text(d, name)
    if value is None:
        return None
    if value not in ISO_3166_ALPHA2:
        raise _Invalid(name, f"'{value}' is not an ISO 3166-1 alpha-2 country code")
    return value


def _account_id(d: dict[str, Any], name: str) -> str:
    """An account number, Unicode NFKC-normalised (full-width digits are the ASCII ones)."""
    value = _text(d, name)
    return value if value.isascii() else unicodedata.normalize("NFKC", value)


@lru_cache(maxsize=65536)
def _is_ip(value: str) -> bool:
    # printable ASCII only, and no IPv6 zone id ('%eth0'): the address alone is the contract
    if not value.isascii() or not value.isprintable() or "%" in value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _ip(d: dict[str, Any], name: str, required: bool) -> str | None:
    value = _text(d, name) if required else _opt_text(d, name)
    if value is None:
        return None
    if not _is_ip(value):
        raise _Invalid(name, f"'{value[:60]}' is not an IP address")
    return value


def _extra(d: dict[str, Any], known: frozenset[str]) -> Mapping[str, Any]:
    if known.issuperset(d):
        return _EMPTY
    return {k: v for k, v in d.items() if k not in known}


# ---------------------------------------------------------------- per-contract builders

PAYMENT_FIELDS = frozenset(
    """event_id ts account_id direction amount currency counterparty_account counterparty_bank
    channel session_id ip country device_id description on_call remote_access""".split()
)
LOGIN_FIELDS = frozenset("event_id ts account_id success ip country device_id channel".split())
ACCOUNT_FIELDS = frozenset(
    "account_id customer_id type opened_at kyc_country birth_year registered_at segment".split()
)
LABEL_FIELDS = frozenset(
    """label_id confirmed_at account_id event_id label typology source counterparty_account
    counterparty_bank""".split()
)
WATCH_FIELDS = frozenset("bank account source listed_at delisted_at reason".split())
CONFIRMED_FIELDS = frozenset(
    """label_id confirmed_at label sender_account receiver_account sender_bank receiver_bank
    event_id amount paid_at""".split()
)
BAD_LABEL_KINDS = frozenset({"fraud", "mule"})


def _payment(d: dict[str, Any]) -> Payment:
    currency = d.get("currency")
    if currency is None:
        currency = "VND"
    elif not isinstance(currency, str) or currency not in ISO_4217:
        raise _Invalid("currency", f"'{currency}' is not an ISO 4217 currency code")
    return Payment(
        event_id=_text(d, "event_id"),
        ts=_ts(d, "ts"),
        account_id=_account_id(d, "account_id"),
        direction=_choice(d, "direction", DIRECTIONS),
        amount=_amount(d, "amount"),
        currency=currency,
        counterparty_account=_account_id(d, "counterparty_account"),
        counterparty_bank=_text(d, "counterparty_bank"),
        channel=_choice(d, "channel", CHANNELS),
        session_id=_opt_text(d, "session_id"),
        ip=_ip(d, "ip", required=False),
        country=_country(d, "country", required=False),
        device_id=_opt_text(d, "device_id"),
        description=_opt_text(d, "description"),
        on_call=_opt_bool(d, "on_call"),
        remote_access=_opt_bool(d, "remote_access"),
        extra=_extra(d, PAYMENT_FIELDS),
    )


def _login(d: dict[str, Any]) -> Login:
    success = d.get("success")
    if not isinstance(success, bool):
        raise _Invalid("success", "missing (required)" if success is None else "must be a boolean")
    country = _country(d, "country", required=True)
    ip = _ip(d, "ip", required=True)
    assert country is not None and ip is not None
    return Login(
        event_id=_text(d, "event_id"),
        ts=_ts(d, "ts"),
        account_id=_account_id(d, "account_id"),
        success=success,
        ip=ip,
        country=country,
        device_id=_text(d, "device_id"),
        channel=_choice(d, "channel", CHANNELS),
        extra=_extra(d, LOGIN_FIELDS),
    )


def _account(d: dict[str, Any]) -> Account:
    birth_year = d.get("birth_year")
    if birth_year is not None:
        if isinstance(birth_year, bool) or not isinstance(birth_year, int):
            raise _Invalid("birth_year", "must be an integer year")
        if not 1900 <= birth_year <= date.today().year:  # noqa: DTZ011 - a year bound only
            raise _Invalid("birth_year", f"{birth_year} is not a plausible birth year")
    kyc = _country(d, "kyc_country", required=True)
    assert kyc is not None
    return Account(
        account_id=_account_id(d, "account_id"),
        customer_id=_text(d, "customer_id"),
        type=_choice(d, "type", ACCOUNT_TYPES),
        opened_at=_ts(d, "opened_at"),
        kyc_country=kyc,
        birth_year=birth_year,
        registered_at=_opt_ts(d, "registered_at"),
        segment=_opt_text(d, "segment"),
        extra=_extra(d, ACCOUNT_FIELDS),
    )


def _label(d: dict[str, Any]) -> Label:
    return Label(
        label_id=_text(d, "label_id"),
        confirmed_at=_ts(d, "confirmed_at"),
        account_id=_account_id(d, "account_id"),
        label=_choice(d, "label", LABELS),
        event_id=_opt_text(d, "event_id"),
        typology=_opt_text(d, "typology"),
        source=_opt_text(d, "source"),
        counterparty_account=_opt_text(d, "counterparty_account"),
        counterparty_bank=_opt_text(d, "counterparty_bank"),
        extra=_extra(d, LABEL_FIELDS),
    )


def _watch(d: dict[str, Any]) -> WatchEntry:
    listed = _ts(d, "listed_at")
    delisted = _opt_ts(d, "delisted_at")
    if delisted is not None and delisted < listed:
        raise _Invalid("delisted_at", "is before listed_at")
    return WatchEntry(
        bank=_text(d, "bank"),
        account=_text(d, "account"),
        source=_text(d, "source"),
        listed_at=listed,
        reason=_text(d, "reason"),
        delisted_at=delisted,
        extra=_extra(d, WATCH_FIELDS),
    )


def _confirmed(d: dict[str, Any]) -> ConfirmedPayment:
    return ConfirmedPayment(
        label_id=_text(d, "label_id"),
        confirmed_at=_ts(d, "confirmed_at"),
        label=_choice(d, "label", BAD_LABEL_KINDS),
        sender_account=_text(d, "sender_account"),
        receiver_account=_text(d, "receiver_account"),
        sender_bank=_opt_text(d, "sender_bank"),
        receiver_bank=_opt_text(d, "receiver_bank"),
        event_id=_opt_text(d, "event_id"),
        amount=None if d.get("amount") is None else _amount(d, "amount"),
        paid_at=_opt_ts(d, "paid_at"),
        extra=_extra(d, CONFIRMED_FIELDS),
    )


_BUILDERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "payments": _payment,
    "logins": _login,
    "accounts": _account,
    "labels": _label,
    "watchlist": _watch,
    "confirmed_payments": _confirmed,
}


def from_mapping(kind: str, d: Mapping[str, Any], raw: bytes = b"") -> Any:
    """Build the event of contract ``kind`` from a mapping; a :class:`Rejection` if invalid.
    Never raises for bad input: anything unexpected is a rejection naming the exception."""
    try:
        # the readers take a dict: a compiled build then reads it with native dict lookups
        return _BUILDERS[kind](d if type(d) is dict else dict(d))
    except _Invalid as exc:
        return Rejection(kind, exc.field, exc.reason, raw)
    except Exception as exc:  # noqa: BLE001 - one record must never stop a stream
        return Rejection(kind, "", unexpected(exc), raw)


def unexpected(exc: BaseException) -> str:
    """The reason for a record that raised where no rule expected it: class and message."""
    message = str(exc)
    if len(message) > 300:
        message = message[:300] + "…"
    return f"unexpected {type(exc).__name__}: {message}"


def decode(kind: str, raw: Any) -> Any:
    """Decode one Kafka message value of contract ``kind`` (payments, logins, accounts, labels,
    watchlist, confirmed_payments). ``raw`` is typed Any: a compiled build checks an argument's
    declared type on entry and would raise on anything but bytes or None, where the contract is
    a Rejection saying what it got."""
    if kind not in _BUILDERS:
        raise ValueError(f"unknown event kind {kind!r}")
    if raw is None:
        return Rejection(kind, "", "empty message (tombstone)", b"")
    if not isinstance(raw, bytes | bytearray | memoryview):
        return Rejection(kind, "", f"message value is {type(raw).__name__}, not bytes", b"")
    raw = bytes(raw)
    try:
        d = parse_json(raw)
    except _Invalid as exc:
        return Rejection(kind, exc.field, exc.reason, raw)
    except Exception as exc:  # noqa: BLE001 - one record must never stop a stream
        return Rejection(kind, "", unexpected(exc), raw)
    return from_mapping(kind, d, raw)


def decode_payment(raw: Any) -> Payment | Rejection:
    result: Payment | Rejection = decode("payments", raw)
    return result


def decode_login(raw: Any) -> Login | Rejection:
    result: Login | Rejection = decode("logins", raw)
    return result


def decode_account(raw: Any) -> Account | Rejection:
    result: Account | Rejection = decode("accounts", raw)
    return result


def decode_label(raw: Any) -> Label | Rejection:
    result: Label | Rejection = decode("labels", raw)
    return result


def decode_watch(raw: Any) -> WatchEntry | Rejection:
    result: WatchEntry | Rejection = decode("watchlist", raw)
    return result


# ---------------------------------------------------------------- encoding


def format_ts(ts: datetime) -> str:
    """RFC 3339 with offset; UTC is written with ``Z``."""
    text = ts.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def to_dict(event: Event) -> dict[str, Any]:
    """The contract's JSON object for an event (``None`` optionals omitted, extras kept)."""
    out: dict[str, Any] = {}
    for name in event.__dataclass_fields__:
        if name in ("extra", "t"):
            continue
        value = getattr(event, name)
        if value is None:
            continue
        out[name] = format_ts(value) if isinstance(value, datetime) else value
    out.update(event.extra)
    return out


def encode(event: Event) -> bytes:
    return json.dumps(to_dict(event), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def utc_from_epoch(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)
