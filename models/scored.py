"""One scored payment: what the scorer emits on ``payments.scored`` and the case store keeps.

:class:`ScoredPayment` is frozen and typed. :meth:`ScoredPayment.to_json` writes ONE JSON
record per payment (key: ``account_id``) whose first fields are the ``payments.scored``
contract a bank's payment switch reads (``event_id, account_id, ts, score, decision, reasons,
model_version, scored_at``); the later fields are additive: ``late``, the payment's own
fields the case store shows (``payment``, with the app's ``on_call`` / ``remote_access`` signals
written only when reported) and the few features it ranks and classifies with (``features``,
:data:`STORE_FEATURES`). See docs/INTERFACES.md.

:func:`decode_scored` turns bytes back into a :class:`ScoredPayment` or a
:class:`~features.events.Rejection` naming the field and the problem. It never raises: any
exception met while decoding becomes a rejection carrying its class and message.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import orjson

from features.events import (
    MAX_TEXT,
    Payment,
    Rejection,
    from_mapping,
    parse_json,
    parse_timestamp,
)
from features.vector import FEATURE_INDEX

KIND = "payments.scored"
DECISIONS = frozenset({"allow", "review", "hold"})
MAX_REASONS = 32
MAX_SCORED_BYTES = 64 * 1024

# The features the case store keeps per scored payment (typology rules, evidence, detail page).
STORE_FEATURES: tuple[str, ...] = (
    "amount_ratio_median_30d",
    "first_payment_to_cp",
    "is_debit",
    "is_business",
    "distinct_senders_24h",
    "distinct_senders_7d",
    "pass_through_24h",
    "mean_dwell_secs_7d",
    "foreign_logins_24h",
    "foreign_logins_7d",
    "distinct_login_countries_7d",
    "session_foreign",
    "new_device_24h",
    "failed_logins_24h",
    "cp_flagged",
    "account_age_days",
)
_STORE_POSITIONS = np.array([FEATURE_INDEX[name] for name in STORE_FEATURES], dtype=np.intp)
# the same positions as one C call over a tuple or list: indexing a tuple with numpy integers,
# one by one, cost 2.5x as much (store_features: 11.7 -> 4.1 us a payment, measured)
_pick_store = operator.itemgetter(*(FEATURE_INDEX[name] for name in STORE_FEATURES))
# written only when not None: absent = not given (for the app signals: not reported, not false)
_PAYMENT_OPTIONAL = ("country", "ip", "device_id", "description", "on_call", "remote_access")


class _ReasonLike(Protocol):
    @property
    def feature(self) -> str: ...
    @property
    def value(self) -> Any: ...
    @property
    def contribution(self) -> Any: ...
    @property
    def text(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ScoreReason:
    """One top feature contribution (``value``/``contribution`` None where not a number)."""

    feature: str
    value: float | None
    contribution: float | None
    text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "value": self.value,
                "contribution": self.contribution, "text": self.text}


@dataclass(frozen=True, slots=True)
class ScoredPayment:
    """A payment's score and decision, with the inputs the case store needs."""

    event_id: str
    account_id: str
    ts: datetime  # the payment's event time (aware)
    score: float  # 0..1
    decision: str  # allow | review | hold
    reasons: tuple[ScoreReason, ...]  # empty for allow (docs/INTERFACES.md)
    model_version: str
    scored_at: datetime  # aware
    late: bool  # scored after the allowed lateness, on the account's current state
    # the payment's fields the case store shows
    direction: str
    amount: float
    currency: str
    counterparty_account: str
    counterparty_bank: str
    channel: str
    country: str | None = None
    ip: str | None = None
    device_id: str | None = None
    description: str | None = None
    # the mobile app's device-risk signals: None = not reported (no app session), not False
    on_call: bool | None = None
    remote_access: bool | None = None
    # STORE_FEATURES values at scoring time (None = missing)
    features: Mapping[str, float | None] = field(default_factory=dict)

    @classmethod
    def of(cls, payment: Payment, *, score: float, decision: str,
           reasons: Iterable[_ReasonLike], model_version: str, scored_at: datetime,
           late: bool, feature_values: Sequence[float]) -> ScoredPayment:
        """Build from the scorer's objects: ``feature_values`` in ``FEATURE_NAMES`` order.

        Called once per scored payment: the arguments are positional (keywords cost 1.6x the
        construction), in the fields' order, which :data:`_OF_ORDER` pins at import."""
        return cls(
            payment.event_id, payment.account_id, payment.ts, float(score), decision,
            tuple(ScoreReason(r.feature, _finite(r.value), _finite(r.contribution), r.text)
                  for r in reasons) if reasons else (),
            model_version, scored_at, late,
            payment.direction, payment.amount, payment.currency, payment.counterparty_account,
            payment.counterparty_bank, payment.channel, payment.country, payment.ip,
            payment.device_id, payment.description, payment.on_call, payment.remote_access,
            store_features(feature_values),
        )

    @property
    def t(self) -> float:
        """Event time as epoch seconds."""
        return self.ts.timestamp()

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (datetimes still ``datetime``: :meth:`to_json` formats them)."""
        payment: dict[str, Any] = {
            "direction": self.direction, "amount": self.amount, "currency": self.currency,
            "counterparty_account": self.counterparty_account,
            "counterparty_bank": self.counterparty_bank, "channel": self.channel,
        }
        for name in _PAYMENT_OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                payment[name] = value
        return {
            "event_id": self.event_id, "account_id": self.account_id, "ts": self.ts,
            "score": self.score, "decision": self.decision,
            "reasons": [r.to_dict() for r in self.reasons],
            "model_version": self.model_version, "scored_at": self.scored_at,
            "late": self.late, "payment": payment, "features": dict(self.features),
        }

    def to_json(self) -> bytes:
        """The ``payments.scored`` value: UTF-8 JSON, RFC 3339 times (UTC written ``Z``), NaN
        written as null."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_UTC_Z)


# ScoredPayment.of passes its fields by position, in this order
_OF_ORDER = ("event_id", "account_id", "ts", "score", "decision", "reasons", "model_version",
             "scored_at", "late", "direction", "amount", "currency", "counterparty_account",
             "counterparty_bank", "channel", "country", "ip", "device_id", "description",
             "on_call", "remote_access", "features")
if tuple(f.name for f in fields(ScoredPayment)) != _OF_ORDER:  # pragma: no cover - a guard
    raise ImportError("ScoredPayment's fields changed order: update ScoredPayment.of and "
                      "_OF_ORDER together")


def store_features(values: Sequence[float] | np.ndarray) -> dict[str, float | None]:
    """The :data:`STORE_FEATURES` subset of a vector in ``FEATURE_NAMES`` order (a tuple, a
    list or a numpy row; nan and inf → None)."""
    if isinstance(values, np.ndarray):
        picked: Sequence[Any] = values.take(_STORE_POSITIONS).tolist()
    else:
        picked = _pick_store(values)
    # x - x is 0.0 for a finite float, nan for nan and inf
    return {name: (float(v) if v - v == 0.0 else None)
            for name, v in zip(STORE_FEATURES, picked, strict=True)}


# ---------------------------------------------------------------- decoding


class _Bad(Exception):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


def decode_scored(raw: bytes | None) -> ScoredPayment | Rejection:
    """Decode one ``payments.scored`` value. Never raises."""
    if raw is None:
        return Rejection(KIND, "", "empty message (tombstone)", b"")
    try:
        if len(raw) > MAX_SCORED_BYTES:
            return Rejection(KIND, "", f"record is {len(raw)} bytes, limit is "
                                       f"{MAX_SCORED_BYTES}", raw)
        return _from_mapping(_parse(raw), raw)
    except Exception as exc:  # noqa: BLE001 - a record must never stop a loop
        return _rejection(exc, raw)


def _parse(raw: bytes) -> Any:
    """orjson when the result provably has no duplicate key (every key of every object ends
    with ``":``, so as many of those in the bytes as keys in the result means none was
    dropped); anything else, and every orjson error, goes through the strict parser."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        obj = None
    if type(obj) is dict and raw.count(b'":') == _keys(obj) and not _SPACED_COLON(raw):
        return obj
    return parse_json(raw)


def _keys(d: dict[str, Any]) -> int:
    """Keys of every object in a parsed JSON value (numbers and strings are skipped inline:
    this runs once per record)."""
    n = len(d)
    for v in d.values():
        t = type(v)
        if t is dict:
            n += _keys(v)
        elif t is list:
            n += _list_keys(v)
    return n


def _list_keys(items: list[Any]) -> int:
    n = 0
    for v in items:
        t = type(v)
        if t is dict:
            n += _keys(v)
        elif t is list:
            n += _list_keys(v)
    return n


_SPACED_COLON = re.compile(rb'"\s+:').search


def scored_from_mapping(d: Mapping[str, Any]) -> ScoredPayment | Rejection:
    """Validate an already-parsed record (same rules as :func:`decode_scored`). Never raises."""
    try:
        return _from_mapping(d, b"")
    except Exception as exc:  # noqa: BLE001 - as above
        return _rejection(exc, b"")


def _rejection(exc: Exception, raw: bytes) -> Rejection:
    name = getattr(exc, "field", "")
    reason = getattr(exc, "reason", None)
    if not isinstance(name, str) or not isinstance(reason, str):
        name, reason = "", f"{type(exc).__name__}: {str(exc)[:200]}"
    return Rejection(KIND, name, reason, raw)


def _from_mapping(d: Mapping[str, Any], raw: bytes) -> ScoredPayment | Rejection:
    if not isinstance(d, Mapping):
        raise _Bad("", f"expected a JSON object, got {type(d).__name__}")
    event_id = _text(d, "event_id")
    account_id = _text(d, "account_id")
    if "ts" not in d or d["ts"] is None:
        raise _Bad("ts", "missing (required)")
    score = _number(d, "score")
    if score is None or not 0.0 <= score <= 1.0:
        raise _Bad("score", f"must be a number in 0..1, got {_show(d.get('score'))}")
    decision = _text(d, "decision")
    if decision not in DECISIONS:
        raise _Bad("decision", f"'{decision[:40]}' is not one of allow, hold, review")
    model_version = _text(d, "model_version")
    if "scored_at" not in d or d["scored_at"] is None:
        raise _Bad("scored_at", "missing (required)")
    scored_at = parse_timestamp(d["scored_at"], "scored_at")
    late = d.get("late", False)
    if not isinstance(late, bool):
        raise _Bad("late", f"must be a boolean, got {type(late).__name__}")
    reasons = _reasons(d.get("reasons"))
    features = _features(d.get("features"))
    sub = d.get("payment")
    if not isinstance(sub, Mapping):
        raise _Bad("payment", "missing (required)" if sub is None
                   else f"must be an object, got {type(sub).__name__}")
    payment = from_mapping("payments", {**sub, "event_id": event_id, "account_id": account_id,
                                        "ts": d["ts"]})
    if isinstance(payment, Rejection):
        where = payment.field if payment.field in ("ts", "", "event_id", "account_id") \
            else f"payment.{payment.field}"
        return Rejection(KIND, where, payment.reason, raw)
    return ScoredPayment(
        event_id=event_id, account_id=account_id, ts=payment.ts, score=score,
        decision=decision, reasons=reasons, model_version=model_version, scored_at=scored_at,
        late=late, direction=payment.direction, amount=payment.amount,
        currency=payment.currency, counterparty_account=payment.counterparty_account,
        counterparty_bank=payment.counterparty_bank, channel=payment.channel,
        country=payment.country, ip=payment.ip, device_id=payment.device_id,
        description=payment.description, on_call=payment.on_call,
        remote_access=payment.remote_access, features=features,
    )


def _show(value: Any) -> str:
    return repr(value)[:40]


def _text(d: Mapping[str, Any], name: str) -> str:
    value = d.get(name)
    if value is None:
        raise _Bad(name, "missing (required)")
    if not isinstance(value, str):
        raise _Bad(name, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise _Bad(name, "must not be empty")
    if len(value) > MAX_TEXT:
        raise _Bad(name, f"longer than {MAX_TEXT} characters")
    return value


def _opt_text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(name, f"must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise _Bad(name, f"longer than {MAX_TEXT} characters")
    return value


def _as_float(value: Any, name: str) -> float | None:
    """A JSON number as a finite float; null (or an unrepresentable number) as None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(name, f"must be a number or null, got {type(value).__name__}")
    try:
        f = float(value)
    except OverflowError:
        raise _Bad(name, "number out of range") from None
    return f if math.isfinite(f) else None


def _number(d: Mapping[str, Any], name: str) -> float | None:
    if d.get(name) is None:
        raise _Bad(name, "missing (required)")
    return _as_float(d[name], name)


def _finite(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def _reasons(value: Any) -> tuple[ScoreReason, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Bad("reasons", f"must be a list, got {type(value).__name__}")
    if len(value) > MAX_REASONS:
        raise _Bad("reasons", f"more than {MAX_REASONS} reasons")
    out = []
    for i, r in enumerate(value):
        where = f"reasons[{i}]"
        if not isinstance(r, Mapping):
            raise _Bad(where, f"must be an object, got {type(r).__name__}")
        feature = r.get("feature")
        if not isinstance(feature, str) or not feature or len(feature) > MAX_TEXT:
            raise _Bad(f"{where}.feature", "must be a non-empty string")
        out.append(ScoreReason(feature, _as_float(r.get("value"), f"{where}.value"),
                               _as_float(r.get("contribution"), f"{where}.contribution"),
                               _opt_text(r.get("text"), f"{where}.text")))
    return tuple(out)


def _features(value: Any) -> dict[str, float | None]:
    if value is None:
        raise _Bad("features", "missing (required)")
    if not isinstance(value, Mapping):
        raise _Bad("features", f"must be an object, got {type(value).__name__}")
    # only the features the store uses are kept; others (a full vector) are ignored
    out: dict[str, float | None] = {}
    for name in STORE_FEATURES:
        v = value.get(name, _ABSENT)
        if v is _ABSENT:
            continue
        if type(v) is float and math.isfinite(v):
            out[name] = v  # the common case
        else:
            out[name] = _as_float(v, "features." + name)
    return out


_ABSENT = object()
