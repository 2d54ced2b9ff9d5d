"""The scored-payment contract: round trip, the fields a payment switch reads, and a decoder
that never raises (hypothesis over arbitrary bytes and mutations of valid records)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.events import Payment, Rejection
from features.vector import FEATURE_NAMES
from models.model_info import ModelInfo, decode_model_info
from models.reasons import Reason
from models.scored import STORE_FEATURES, ScoredPayment, ScoreReason, decode_scored
from serving.typology import KEY_FEATURES

ICT = timezone(timedelta(hours=7))
T0 = datetime(2026, 3, 1, 9, 0, 0, 250000, tzinfo=ICT)


def sample(**over: object) -> ScoredPayment:
    fields: dict[str, object] = dict(
        event_id="p-1", account_id="acc-1", ts=T0, score=0.91, decision="hold",
        reasons=(ScoreReason("distinct_senders_24h", 7.0, 0.4, "7 người gửi"),
                 ScoreReason("pass_through_24h", None, -0.1, None)),
        model_version="12", scored_at=datetime(2026, 3, 1, 2, 0, 1, tzinfo=UTC), late=False,
        direction="debit", amount=5_000_000.0, currency="VND",
        counterparty_account="0123", counterparty_bank="VCB", channel="mobile",
        country="KH", ip="103.9.76.1", device_id="dev-1", description="học phí",
        features={"is_debit": 1.0, "pass_through_24h": None, "distinct_senders_24h": 7.0})
    fields.update(over)
    return ScoredPayment(**fields)  # type: ignore[arg-type]


def test_round_trip_and_the_switch_fields_are_unchanged():
    sp = sample()
    raw = sp.to_json()
    d = json.loads(raw)
    # the payments.scored contract of before, field for field, in the same order
    assert list(d)[:8] == ["event_id", "account_id", "ts", "score", "decision", "reasons",
                           "model_version", "scored_at"]
    assert d["ts"] == "2026-03-01T09:00:00.250000+07:00"
    assert d["scored_at"] == "2026-03-01T02:00:01Z"
    assert d["reasons"][1] == {"feature": "pass_through_24h", "value": None,
                               "contribution": -0.1, "text": None}
    assert d["late"] is False and d["payment"]["country"] == "KH"
    assert decode_scored(raw) == sp
    no_optionals = sample(country=None, ip=None, device_id=None, description=None, late=True)
    assert "ip" not in json.loads(no_optionals.to_json())["payment"]
    assert decode_scored(no_optionals.to_json()) == no_optionals


def test_of_builds_from_the_scorer_objects():
    p = Payment("p-9", T0, "acc-9", "credit", 10.0, "VND", "cp", "BIDV", "atm",
                session_id="s", ip="1.2.3.4", on_call=True, remote_access=False)
    values = [float("nan")] * len(FEATURE_NAMES)
    values[FEATURE_NAMES.index("is_business")] = 1.0
    sp = ScoredPayment.of(p, score=0.5, decision="review",
                          reasons=[Reason("is_business", 1.0, float("nan"), "doanh nghiệp")],
                          model_version="3", scored_at=T0, late=True, feature_values=values)
    assert sp.features["is_business"] == 1.0 and sp.features["is_debit"] is None
    assert set(sp.features) == set(STORE_FEATURES)
    assert sp.reasons == (ScoreReason("is_business", 1.0, None, "doanh nghiệp"),)
    assert (sp.on_call, sp.remote_access) == (True, False)
    assert decode_scored(sp.to_json()) == sp
    quiet = ScoredPayment.of(Payment("p-8", T0, "acc-9", "credit", 10.0, "VND", "cp", "BIDV",
                                     "atm"), score=0.1, decision="allow", reasons=[],
                             model_version="3", scored_at=T0, late=False, feature_values=values)
    assert (quiet.on_call, quiet.remote_access) == (None, None)



def test_of_puts_each_payment_field_in_its_own_place():
    """ScoredPayment.of passes its fields by position: every field of the payment, each with a
    value no other field has, lands in the field of the same name."""
    p = Payment("p-7", T0, "acc-7", "debit", 12.5, "USD", "cp-7", "ACB", "web",
                session_id="s-7", ip="5.6.7.8", country="KH", device_id="dev-7",
                description="tiền hàng", on_call=False, remote_access=True)
    sp = ScoredPayment.of(p, score=0.25, decision="allow", reasons=[], model_version="m-7",
                          scored_at=T0 + timedelta(seconds=1), late=True,
                          feature_values=[0.0] * len(FEATURE_NAMES))
    for name in ("event_id", "account_id", "ts", "direction", "amount", "currency",
                 "counterparty_account", "counterparty_bank", "channel", "country", "ip",
                 "device_id", "description", "on_call", "remote_access"):
        assert getattr(sp, name) == getattr(p, name), name
    assert (sp.score, sp.decision, sp.reasons, sp.model_version) == (0.25, "allow", (), "m-7")
    assert (sp.scored_at, sp.late) == (T0 + timedelta(seconds=1), True)
    assert sp.features == dict.fromkeys(STORE_FEATURES, 0.0)


SIGNALS = ("on_call", "remote_access")


@pytest.mark.parametrize("on_call", [True, False, None])
@pytest.mark.parametrize("remote_access", [True, False, None])
def test_app_signals_round_trip_in_three_states(on_call, remote_access):
    sp = sample(on_call=on_call, remote_access=remote_access)
    raw = sp.to_json()
    d = json.loads(raw)
    for name, value in zip(SIGNALS, (on_call, remote_access), strict=True):
        # reported: the JSON boolean inside `payment`; not reported: absent (a small record)
        assert d["payment"].get(name, "absent") == ("absent" if value is None else value)
        assert name not in d
    assert list(d)[:8] == ["event_id", "account_id", "ts", "score", "decision", "reasons",
                           "model_version", "scored_at"]
    back = decode_scored(raw)
    assert back == sp and (back.on_call, back.remote_access) == (on_call, remote_access)
    for name in SIGNALS:  # an explicit null is "not reported" too
        d["payment"][name] = d["payment"].get(name)
    nulls = decode_scored(json.dumps(d).encode())
    assert nulls == sp


def test_a_record_of_before_the_signals_reads_as_not_reported():
    d = json.loads(sample(on_call=True, remote_access=True).to_json())
    for name in SIGNALS:
        del d["payment"][name]
    out = decode_scored(json.dumps(d).encode())
    assert isinstance(out, ScoredPayment) and (out.on_call, out.remote_access) == (None, None)


@pytest.mark.parametrize("name", SIGNALS)
@pytest.mark.parametrize("value", ["true", "false", 1, 0, 1.0, [], {}, [True], ""])
def test_app_signals_that_are_not_booleans_are_rejected_with_the_field(name, value):
    d = json.loads(sample(on_call=False, remote_access=False).to_json())
    d["payment"][name] = value
    out = decode_scored(json.dumps(d).encode())
    assert isinstance(out, Rejection) and out.field == f"payment.{name}", out
    assert "boolean" in out.reason


def test_the_store_and_the_contract_share_one_feature_list():
    assert KEY_FEATURES == STORE_FEATURES
    assert set(STORE_FEATURES) <= set(FEATURE_NAMES)


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d.pop("score"), "score"),
    (lambda d: d.update(score=1.5), "score"),
    (lambda d: d.update(score=True), "score"),
    (lambda d: d.update(decision="block"), "decision"),
    (lambda d: d.update(ts="2026-03-01T09:00:00"), "ts"),
    (lambda d: d.update(late="no"), "late"),
    (lambda d: d.pop("payment"), "payment"),
    (lambda d: d["payment"].update(amount=-1), "payment.amount"),
    (lambda d: d["payment"].update(channel="fax"), "payment.channel"),
    (lambda d: d.update(features=[1, 2]), "features"),
    (lambda d: d["features"].update(is_debit="yes"), "features.is_debit"),
    (lambda d: d.update(reasons=[{"value": 1}]), "reasons[0].feature"),
    (lambda d: d.pop("scored_at"), "scored_at"),
    (lambda d: d.update(model_version=""), "model_version"),
])
def test_invalid_records_are_rejected_with_the_field(mutate, field):
    d = json.loads(sample().to_json())
    mutate(d)
    out = decode_scored(json.dumps(d).encode())
    assert isinstance(out, Rejection) and out.field == field, out


def test_huge_numbers_and_tombstones_are_rejections_not_exceptions():
    raw = sample().to_json().replace(b'"score":0.91', b'"score":' + b"9" * 5000)
    out = decode_scored(raw)
    assert isinstance(out, Rejection) and out.kind == "payments.scored"
    assert isinstance(decode_scored(None), Rejection)
    assert isinstance(decode_scored(b"[" * 100_000), Rejection)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw):
    out = decode_scored(raw)
    assert isinstance(out, ScoredPayment | Rejection)
    assert isinstance(decode_model_info(raw), ModelInfo | Rejection)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False) | st.text(max_size=50)
    | st.sampled_from(["", "\ud800", "9" * 5000, "2026-03-01T09:00:00Z", "x" * 2000]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(path=st.lists(st.sampled_from(
    ["event_id", "account_id", "ts", "score", "decision", "reasons", "model_version",
     "scored_at", "late", "payment", "features", "amount", "channel", "is_debit", 0,
     "feature", "value", "on_call", "remote_access"]), min_size=1, max_size=3),
    value=JSON_VALUES,
    drop=st.booleans(), dup=st.booleans())
def test_mutated_valid_records_never_raise(path, value, drop, dup):
    d = json.loads(sample(on_call=True, remote_access=False).to_json())
    node = d
    for key in path[:-1]:
        nxt = node.get(key) if isinstance(node, dict) else (
            node[key] if isinstance(node, list) and isinstance(key, int) and node else None)
        if not isinstance(nxt, dict | list):
            break
        node = nxt
    last = path[-1]
    if isinstance(node, dict) and isinstance(last, str):
        if drop:
            node.pop(last, None)
        else:
            node[last] = value
    try:
        raw = json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except ValueError:
        raw = b"{}"
    if dup:  # a duplicate key at the top
        raw = raw[:-1] + b', "score": 0.1}' if raw.endswith(b"}") else raw
    out = decode_scored(raw)
    assert isinstance(out, ScoredPayment | Rejection)
    if isinstance(out, ScoredPayment):
        assert 0.0 <= out.score <= 1.0 and math.isfinite(out.amount)
        assert decode_scored(out.to_json()) == out  # anything accepted re-encodes identically


ABSENT = object()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(name=st.sampled_from(SIGNALS), value=st.just(ABSENT) | JSON_VALUES, top=st.booleans())
def test_any_value_of_an_app_signal_decodes_or_is_rejected_never_raises(name, value, top):
    d = json.loads(sample(on_call=True, remote_access=False).to_json())
    where = d if top else d["payment"]  # at the top level it is an unknown field: ignored
    if value is ABSENT:
        where.pop(name, None)
    else:
        where[name] = value
    try:
        raw = json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except ValueError:  # a lone surrogate: not JSON text
        return
    out = decode_scored(raw)
    if not _parseable(value):  # the JSON parser refuses the record before any field
        assert isinstance(out, Rejection) and out.field == "", out
    elif top:
        assert isinstance(out, ScoredPayment) and (out.on_call, out.remote_access) == (
            True, False)
    elif value is ABSENT or value is None or type(value) is bool:
        assert isinstance(out, ScoredPayment), out
        assert getattr(out, name) is (None if value is ABSENT else value)
        assert decode_scored(out.to_json()) == out
    else:
        assert isinstance(out, Rejection) and out.field == f"payment.{name}", out


def _parseable(value: object) -> bool:
    """Whether the record's JSON parser takes ``value`` (it refuses integers beyond 64 bits
    text that is not UTF-8 — a lone surrogate — and Python's Infinity before looking at any
    field)."""
    if type(value) is int:
        return -(2**63) <= value < 2**64
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(_parseable(v) for v in value)
    if isinstance(value, dict):
        return all(_parseable(k) and _parseable(v) for k, v in value.items())
    return True


def test_model_info_round_trip_and_rejections():
    info = ModelInfo("12", datetime(2026, 3, 1, tzinfo=UTC), {"test_roc_auc": 0.9},
                     {"review": 0.5, "hold": 0.8})
    assert decode_model_info(info.to_json()) == info
    assert isinstance(decode_model_info(b'{"version": "1"}'), Rejection)
    assert isinstance(decode_model_info(b'{"version": "1", "loaded_at": "2026-03-01T00:00:00Z",'
                                        b' "metrics": {"a": "x"}}'), Rejection)
