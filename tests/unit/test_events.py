"""Event contracts: decoding valid events, and a precise rejection for every kind of bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.events import (
    Account,
    Label,
    Login,
    Payment,
    Rejection,
    decode,
    decode_account,
    decode_label,
    decode_login,
    decode_payment,
    encode,
)

PAYMENT = {
    "event_id": "evt-1",
    "ts": "2026-02-16T21:15:00+07:00",
    "account_id": "0011001234567",
    "direction": "debit",
    "amount": 25_000_000,
    "currency": "VND",
    "counterparty_account": "1903555777",
    "counterparty_bank": "TCB",
    "channel": "mobile",
    "session_id": "s-9",
    "ip": "113.161.4.2",
    "country": "VN",
    "device_id": "dev-1",
    "description": "Chuyển tiền học phí — Nguyễn Thị Hằng",
}
LOGIN = {"event_id": "l-1", "ts": "2026-02-16T14:00:00Z", "account_id": "A", "success": True,
         "ip": "2001:db8::1", "country": "KH", "device_id": "d", "channel": "internet"}
ACCOUNT = {"account_id": "A", "customer_id": "C", "type": "business",
           "opened_at": "2025-12-01T00:00:00+07:00", "kyc_country": "VN",
           "registered_at": "2025-11-20T00:00:00+07:00", "segment": "sme"}
LABEL = {"label_id": "lb-1", "confirmed_at": "2026-02-20T10:00:00Z", "account_id": "A",
         "label": "mule", "typology": "mule_ring", "source": "police"}


def raw(d: dict) -> bytes:
    return json.dumps(d, ensure_ascii=False).encode()


def rejected(kind: str, d: dict | bytes) -> Rejection:
    result = decode(kind, d if isinstance(d, bytes) else raw(d))
    assert isinstance(result, Rejection), result
    return result


def test_valid_events_decode_with_their_types():
    p = decode_payment(raw(PAYMENT))
    assert isinstance(p, Payment)
    assert p.amount == 25_000_000.0 and p.direction == "debit"
    assert p.ts.utcoffset() == timedelta(hours=7)
    assert p.t == datetime(2026, 2, 16, 14, 15, tzinfo=UTC).timestamp()
    assert p.description == PAYMENT["description"]  # Vietnamese text intact
    assert isinstance(decode_login(raw(LOGIN)), Login)
    assert isinstance(decode_account(raw(ACCOUNT)), Account)
    assert isinstance(decode_label(raw(LABEL)), Label)


def test_currency_defaults_to_vnd_and_optionals_may_be_absent():
    d = {k: v for k, v in PAYMENT.items()
         if k not in ("currency", "session_id", "ip", "country", "device_id", "description")}
    p = decode_payment(raw(d))
    assert isinstance(p, Payment)
    assert p.currency == "VND" and p.country is None and p.ip is None


def test_unknown_extra_fields_are_kept():
    p = decode_payment(raw({**PAYMENT, "core_ref": "FT2604", "risk_hint": 3}))
    assert isinstance(p, Payment)
    assert p.extra == {"core_ref": "FT2604", "risk_hint": 3}
    assert json.loads(encode(p))["core_ref"] == "FT2604"


def test_encode_decode_round_trip():
    for kind, d in (("payments", PAYMENT), ("logins", LOGIN), ("accounts", ACCOUNT),
                    ("labels", LABEL)):
        event = decode(kind, raw(d))
        assert decode(kind, encode(event)) == event


@pytest.mark.parametrize(
    ("kind", "base", "change", "field", "words"),
    [
        ("payments", PAYMENT, {"event_id": None}, "event_id", "missing"),
        ("payments", PAYMENT, {"event_id": ""}, "event_id", "empty"),
        ("payments", PAYMENT, {"account_id": 12}, "account_id", "string"),
        ("payments", PAYMENT, {"ts": "2026-02-16T21:15:00"}, "ts", "timezone"),
        ("payments", PAYMENT, {"ts": "16/02/2026 21:15"}, "ts", "RFC 3339"),
        ("payments", PAYMENT, {"ts": "2026-02-16"}, "ts", "RFC 3339"),
        ("payments", PAYMENT, {"ts": 1771251300}, "ts", "RFC 3339"),
        ("payments", PAYMENT, {"direction": "out"}, "direction", "one of"),
        ("payments", PAYMENT, {"amount": 0}, "amount", "> 0"),
        ("payments", PAYMENT, {"amount": -5}, "amount", "> 0"),
        ("payments", PAYMENT, {"amount": "100"}, "amount", "number"),
        ("payments", PAYMENT, {"amount": True}, "amount", "number"),
        ("payments", PAYMENT, {"amount": 10**30}, "amount", "maximum"),
        ("payments", PAYMENT, {"amount": 1e300}, "amount", "maximum"),
        ("payments", PAYMENT, {"currency": "VNĐ"}, "currency", "ISO 4217"),
        ("payments", PAYMENT, {"currency": "vnd"}, "currency", "ISO 4217"),
        ("payments", PAYMENT, {"channel": "telepathy"}, "channel", "one of"),
        ("payments", PAYMENT, {"country": "Vietnam"}, "country", "ISO 3166"),
        ("payments", PAYMENT, {"ip": "999.1.1.1"}, "ip", "IP address"),
        ("payments", PAYMENT, {"description": "x" * 5000}, "description", "longer"),
        ("logins", LOGIN, {"success": "yes"}, "success", "boolean"),
        ("logins", LOGIN, {"success": None}, "success", "missing"),
        ("logins", LOGIN, {"country": None}, "country", "missing"),
        ("logins", LOGIN, {"device_id": None}, "device_id", "missing"),
        ("accounts", ACCOUNT, {"type": "corporate"}, "type", "one of"),
        ("accounts", ACCOUNT, {"kyc_country": "XX"}, "kyc_country", "ISO 3166"),
        ("accounts", ACCOUNT, {"birth_year": 1850}, "birth_year", "plausible"),
        ("accounts", ACCOUNT, {"opened_at": "2025-12-01T00:00:00"}, "opened_at", "timezone"),
        ("labels", LABEL, {"label": "suspicious"}, "label", "one of"),
        ("labels", LABEL, {"confirmed_at": None}, "confirmed_at", "missing"),
    ],
)
def test_each_invalid_field_is_named(kind, base, change, field, words):
    d = {**base, **change}
    if change.get(field, 0) is None:
        del d[field]
    rej = rejected(kind, d)
    assert rej.field == field
    assert words in rej.reason
    assert rej.kind == kind and rej.raw  # the raw bytes travel with the rejection
    assert field in rej.message()


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b'{"amount": NaN}', "NaN"),
        (b'{"amount": Infinity}', "Infinity"),
        (b"x" * 70_000, "limit"),
        (b"[" * 100_000 + b"]" * 100_000, "limit"),
    ],
)
def test_malformed_payloads_are_rejected_not_raised(payload, words):
    rej = rejected("payments", payload)
    assert words in rej.reason


def test_duplicate_json_keys_are_rejected_naming_the_key():
    payload = raw(PAYMENT)[:-1] + b', "amount": 1}'
    rej = rejected("payments", payload)
    assert rej.field == "amount" and "duplicate" in rej.reason


def test_deeply_nested_extra_field_is_rejected_cleanly():
    payload = raw(PAYMENT)[:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    result = decode("payments", payload)
    assert isinstance(result, Rejection | Payment)  # never raises


def test_tombstone_is_a_rejection():
    assert isinstance(decode("payments", None), Rejection)  # type: ignore[arg-type]


def test_offsets_are_honoured():
    p = decode_payment(raw({**PAYMENT, "ts": "2026-02-16T23:30:00-05:00"}))
    assert isinstance(p, Payment)
    assert p.ts.utcoffset() == timedelta(hours=-5)
    assert p.t == datetime(2026, 2, 17, 4, 30, tzinfo=timezone.utc).timestamp()  # noqa: UP017


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(payload):
    for kind in ("payments", "logins", "accounts", "labels"):
        assert isinstance(decode(kind, payload), Rejection)


@given(st.text(max_size=200))
def test_arbitrary_unicode_descriptions_round_trip(text):
    p = decode_payment(raw({**PAYMENT, "description": text}))
    assert isinstance(p, Payment)
    assert p.description == text


@pytest.mark.parametrize("ts", [
    "2026-W08-1T21:15:00+07:00",  # an ISO 8601 week date
    "2026-02-16T21:15+07:00",  # no seconds
    "2026-02-16T21:15:00+07:00:30",  # an offset with seconds
    "2026-02-16 21:15:00+0700",  # an offset without its colon
    "2026-02-16T21:15:00,5Z",  # a comma fraction
    "2026-02-16T21:15:00+7:00",
])
def test_iso_8601_forms_that_rfc_3339_does_not_have_are_refused(ts):
    """(From a fuzzing review.) Python's ISO 8601 parser took these; the contract is RFC 3339,
    and what the bank's producers send must be read one way only."""
    result = decode("payments", json.dumps({**PAYMENT, "ts": ts}).encode())
    assert isinstance(result, Rejection) and result.field == "ts", result
    assert "RFC 3339" in result.reason


@pytest.mark.parametrize(("ts", "expected"), [
    ("2026-02-16T14:15:00z", "2026-02-16T14:15:00+00:00"),  # RFC 3339 allows a lower-case z
    ("2026-02-16t21:15:00+07:00", "2026-02-16T21:15:00+07:00"),
    ("2026-02-16 21:15:00.25+07:00", "2026-02-16T21:15:00.250000+07:00"),  # RFC 3339's space
])
def test_rfc_3339_forms_python_alone_would_refuse_or_that_vary_are_read(ts, expected):
    result = decode("payments", json.dumps({**PAYMENT, "ts": ts}).encode())
    assert isinstance(result, Payment), result
    assert result.ts.isoformat() == expected
