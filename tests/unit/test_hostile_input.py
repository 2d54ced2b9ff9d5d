"""No record can stop a loop: hostile bytes and mutated valid events into every decoder and into
``Handler.handle``; skewed clocks; payments later than the allowed lateness.

Every payment record must come out as exactly one of: a scored payment, a dead letter, or a
duplicate counted in ``not_scored`` — nothing silently dropped, no exception escapes.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.engine import FeatureEngine
from features.events import (
    Payment,
    Rejection,
    decode,
    encode,
    to_dict,
)
from streaming.handler import ActiveModel, Handler, RawRecord
from tests.integration.test_scorer_support import expected_scores, make_bank, train_model
from tests.unit.test_events import ACCOUNT, LABEL, LOGIN, PAYMENT

KINDS = {"payments": PAYMENT, "logins": LOGIN, "accounts": ACCOUNT, "labels": LABEL}

# ------------------------------------------------------------------ hostile JSON fragments
# JSON *text* for one value: things json.dumps cannot write (huge integers, lone surrogates,
# deep nesting), wrong types, empty and odd values
HOSTILE_VALUES = st.one_of(
    st.integers(min_value=1, max_value=6000).map(lambda n: "9" * n),  # digit-limit busters
    st.integers(min_value=1, max_value=400).map(lambda n: "-1e" + "9" * (n % 30 + 1)),
    st.sampled_from([
        "1e-400", "1e400", "-0", "0", "-1", "0.0000000001", "1E308", "123456789012345678901234",
        '""', '" "', '"\\u0000"', '"\\ud800"', '"\\udfff\\ud800"', '"\\ud83d\\ude00"',
        '"\\u202e\\u200b"', "null", "true", "false", "[]", "{}", '[[[[[]]]]]',
        '"0001-01-01T00:00:00+05:00"', '"9999-12-31T23:59:59-05:00"', '"2026-02-30T00:00:00Z"',
        '"2026-01-01T00:00:00"', '"fe80::1%eth0"', '"NaN"', '"Infinity"',
    ]),
    st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=1, max_value=3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.text(max_size=50).map(lambda t: json.dumps(t, ensure_ascii=False)),
    st.integers(min_value=1025, max_value=70_000).map(lambda n: json.dumps("x" * n)),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


def _object_text(pairs: list[tuple[str, str]]) -> str:
    """A JSON object written by hand (keeps duplicate keys and raw value texts)."""
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}"


@st.composite
def mutated_events(draw: st.DrawFn, base: dict) -> bytes:
    pairs = [(k, json.dumps(v, ensure_ascii=False)) for k, v in base.items()]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        op = draw(st.sampled_from(["replace", "drop", "duplicate", "add"]))
        if op == "replace" and pairs:
            i = draw(st.integers(min_value=0, max_value=len(pairs) - 1))
            pairs[i] = (pairs[i][0], draw(HOSTILE_VALUES))
        elif op == "drop" and pairs:
            del pairs[draw(st.integers(min_value=0, max_value=len(pairs) - 1))]
        elif op == "duplicate" and pairs:
            k = draw(st.sampled_from([k for k, _ in pairs]))
            pairs.append((k, draw(HOSTILE_VALUES)))
        else:
            pairs.append((draw(st.text(max_size=20)), draw(HOSTILE_VALUES)))
    text = _object_text(pairs)
    if draw(st.booleans()):
        return text.encode("utf-8", "surrogatepass")
    return text.encode("utf-8", "replace")


def _never_raises(kind: str, raw: bytes | None) -> None:
    result = decode(kind, raw)
    if isinstance(result, Rejection):
        assert result.reason and isinstance(result.field, str)
        return
    # an accepted event must be writable again (the scorer puts its ids into outputs), and
    # what is written must decode again (a replay re-encodes events, extras included)
    orjson.dumps(to_dict(result))
    again = decode(kind, encode(result))
    assert not isinstance(again, Rejection), (again, encode(result)[:300])


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_valid_events_never_raise(kind, data):
    _never_raises(kind, data.draw(mutated_events(KINDS[kind])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_payments_with_the_app_signals_never_raise(data):
    """The optional app signals (``on_call``, ``remote_access``) mutated like any field: an
    accepted payment holds a real boolean or None in each, never a coerced value."""
    raw = data.draw(mutated_events({**PAYMENT, "on_call": True, "remote_access": False}))
    _never_raises("payments", raw)
    result = decode("payments", raw)
    if not isinstance(result, Rejection):
        assert result.on_call in (None, True, False) and type(result.on_call) is not int
        assert result.remote_access in (None, True, False)
        assert type(result.remote_access) is not int


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=100, deadline=None)
@given(payload=st.one_of(st.binary(max_size=2000), st.none(),
                         st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_arbitrary_bytes_never_raise_in_any_decoder(kind, payload):
    _never_raises(kind, payload)


def test_a_number_with_thousands_of_digits_is_a_rejection_with_the_reason():
    raw = _object_text([(k, json.dumps(v)) for k, v in PAYMENT.items() if k != "amount"]
                       + [("amount", "9" * 5000)]).encode()
    result = decode("payments", raw)
    assert isinstance(result, Rejection)
    assert "digit" in result.reason or "limit" in result.reason, result.reason


def test_a_number_beyond_a_double_in_an_extra_field_is_a_rejection():
    """``-1e999`` reads as -infinity, which the event's encoding would write back as
    ``-Infinity`` (not JSON): refused at the door, as orjson's fast path refuses it."""
    for number in ("-1e999", "1e400", "1" + "0" * 400 + ".0"):
        raw = _object_text([(k, json.dumps(v)) for k, v in LOGIN.items()] + [("x", number)])
        result = decode("logins", raw.encode())
        assert isinstance(result, Rejection), (number, result)
        assert "beyond a 64-bit float" in result.reason
    raw = _object_text([(k, json.dumps(v)) for k, v in LOGIN.items()] + [("x", "1e308")])
    assert not isinstance(decode("logins", raw.encode()), Rejection)  # the largest are fine


NOT_BYTES = ["abc", 5, -1, 0, 1.5, [1], {"a": 1}, object(), True]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_value_that_is_not_bytes_is_a_rejection_in_the_compiled_build_too(kind):
    """The contract's decoders return a Rejection for anything that is not bytes, also when
    mypyc compiled them (a compiled function checks its arguments' declared types on entry);
    bytearray and memoryview are read as bytes."""
    for value in NOT_BYTES:
        result = decode(kind, value)
        assert isinstance(result, Rejection), (value, result)
        assert "not bytes" in result.reason and result.raw == b""
    raw = json.dumps(KINDS[kind]).encode()
    for value in (bytearray(raw), memoryview(raw)):
        assert decode(kind, value) == decode(kind, raw)


def test_a_lone_surrogate_is_a_rejection_not_a_later_crash():
    raw = _object_text([(k, json.dumps(v)) for k, v in PAYMENT.items() if k != "event_id"]
                       + [("event_id", '"\\ud800"')]).encode()
    result = decode("payments", raw)
    assert isinstance(result, Rejection), result


def test_extreme_timestamps_are_events_or_rejections():
    for ts in ("0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00-05:00",
               "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59+14:00"):
        _never_raises("payments", json.dumps({**PAYMENT, "ts": ts}).encode())


# ------------------------------------------------------------------ the handler
@pytest.fixture(scope="module")
def bank():
    return make_bank(n_accounts=40, n_payments=400, seed=11, prefix="H")


@pytest.fixture(scope="module")
def model(bank):
    return train_model(bank, rounds=10)


def _ms(t: float) -> int:
    return int(t * 1000)


def _records(events, partitions: int = 2, offsets: dict | None = None) -> list[RawRecord]:
    """Records as a broker holds them, each stamped with its event time as produce time."""
    offsets = {} if offsets is None else offsets
    out = []
    for ev in events:
        kind = "payments" if isinstance(ev, Payment) else "logins"
        p = int(ev.account_id[1:]) % partitions
        off = offsets.get((kind, p), 0)
        offsets[(kind, p)] = off + 1
        out.append(RawRecord(kind, f"x.{kind}", p, off, _ms(ev.t), ev.account_id.encode(),
                             encode(ev)))
    return out


def _handler(bank, partitions: int = 2) -> Handler:
    h = Handler(bank.reference())
    for p in range(partitions):
        h.open_partition(p, FeatureEngine(h.ref), 0, 0)
    return h


def _account(outcome) -> int:
    return len(outcome.scored) + len(outcome.not_scored) + sum(
        d.record.kind == "payments" for d in outcome.dead_letters)


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_handle_survives_hostile_records_and_accounts_for_every_payment(bank, model, data):
    records = _records(bank.events())
    n_hostile = data.draw(st.integers(min_value=1, max_value=8))
    batch = list(records)
    for _ in range(n_hostile):
        i = data.draw(st.integers(min_value=0, max_value=len(batch)))
        kind = data.draw(st.sampled_from(["payments", "logins"]))
        p = data.draw(st.integers(min_value=0, max_value=1))
        value = data.draw(st.one_of(mutated_events(PAYMENT if kind == "payments" else LOGIN),
                                    st.binary(max_size=200), st.none()))
        ts = data.draw(st.sampled_from([-1, 0, 1, 2**62]))
        # offsets of hostile records: after the real ones of their topic-partition
        batch.insert(i, RawRecord(kind, f"x.{kind}", p, 10_000 + i, ts, None, value))
    # keep every topic-partition in offset order, as a broker delivers it
    batch.sort(key=lambda r: (r.kind, r.partition, r.offset))
    h = _handler(bank)
    out = h.handle(batch, ActiveModel("v", model), lambda k, p: True)
    n_payments = sum(r.kind == "payments" for r in batch)
    assert _account(out) == n_payments
    for d in out.dead_letters:
        assert d.reason


def test_future_dated_payments_are_dead_lettered_and_hold_nothing_back(bank, model):
    """Payments dated 2099 and payments in local time labelled Z (7 h ahead), on busy accounts
    of every partition: each goes to the dead letters as 'from the future', and every real
    payment is scored exactly as without them."""
    events = list(bank.events())
    payments = [e for e in events if isinstance(e, Payment)]
    busiest = sorted({p.account_id for p in payments},
                     key=lambda a: -sum(p.account_id == a for p in payments))[:4]
    hostile = []
    for k, base in enumerate(payments[10:400:40]):
        acct = busiest[k % len(busiest)]
        shift = timedelta(days=365 * 73) if k % 2 == 0 else timedelta(hours=7)
        hostile.append((base, Payment(
            event_id=f"FUT{k}", ts=base.ts + shift, account_id=acct, direction="debit",
            amount=1_000_000.0, currency="VND", counterparty_account="CPX",
            counterparty_bank="VCB", channel="mobile")))
    mixed = []
    for ev in events:
        mixed.append(ev)
        mixed += [h for base, h in hostile if base is ev]
    offsets: dict = {}
    records = []
    for ev in mixed:
        rec = _records([ev], offsets=offsets)[0]
        if ev.event_id.startswith("FUT"):  # produced when its base payment was
            base = next(b for b, h in hostile if h is ev)
            rec = rec._replace(timestamp_ms=_ms(base.t))
        records.append(rec)
    h = _handler(bank)
    out = h.handle(records, ActiveModel("v", model), lambda k, p: True)
    assert {d.record.value for d in out.dead_letters} == {encode(x) for _, x in hostile}
    assert all(d.reason.startswith("from the future") and d.field == "ts"
               for d in out.dead_letters)
    assert out.future == len(hostile)
    want = expected_scores(bank, model)
    got = {s.event_id: s.score for s in out.scored}
    assert got == pytest.approx(want)
    assert not any(s.late for s in out.scored)


def test_a_record_without_timestamp_is_checked_against_the_wall_clock(bank, model):
    p = bank.payments[0]
    h = Handler(bank.reference(), clock=lambda: p.t - 3600)  # the wall clock an hour before
    h.open_partition(0, FeatureEngine(h.ref), 0, 0)
    rec = RawRecord("payments", "x.payments", 0, 0, -1, None, encode(p))
    out = h.handle([rec], ActiveModel("v", model), lambda k, q: True)
    assert out.future == 1 and not out.scored
    h2 = Handler(bank.reference(), clock=lambda: p.t + 1)
    h2.open_partition(0, FeatureEngine(h2.ref), 0, 0)
    assert len(h2.handle([rec], ActiveModel("v", model), lambda k, q: True).scored) == 1


def test_a_payment_later_than_allowed_is_scored_late_and_changes_no_state(bank, model):
    payments = [p for p in bank.payments if p.account_id == bank.payments[0].account_id]
    assert len(payments) >= 6
    acct = payments[0].account_id
    late = Payment(event_id="LATE-1", ts=payments[-1].ts - timedelta(hours=6), account_id=acct,
                   direction="debit", amount=77_000_000.0, currency="VND",
                   counterparty_account="CP-new", counterparty_bank="VCB", channel="mobile")
    after = Payment(event_id="AFTER-1", ts=payments[-1].ts + timedelta(minutes=1),
                    account_id=acct, direction="debit", amount=500_000.0, currency="VND",
                    counterparty_account="CP1", counterparty_bank="VCB", channel="mobile")

    def run(events):
        h = Handler(bank.reference())
        for q in range(2):
            h.open_partition(q, FeatureEngine(h.ref), 0, 0)
        recs = [r._replace(timestamp_ms=_ms(payments[-1].t)) for r in _records(events)]
        return h.handle(recs, ActiveModel("v", model), lambda k, q: True), h

    with_late, h = run([*payments, late, after])
    without, _ = run([*payments, after])
    by_id = {s.event_id: s for s in with_late.scored}
    assert by_id["LATE-1"].late and with_late.late == 1
    assert orjson.loads(by_id["LATE-1"].value.to_json())["late"] is True
    assert not by_id["AFTER-1"].late
    # the late payment changed nothing: the next payment scores as if it never came
    assert by_id["AFTER-1"].score == next(
        s.score for s in without.scored if s.event_id == "AFTER-1")
    np.testing.assert_array_equal(by_id["AFTER-1"].vector.values, next(
        s.vector.values for s in without.scored if s.event_id == "AFTER-1"))
    engine = h.engines[int(acct[1:]) % 2]
    assert engine.stats.late_scored == 1 and engine.stats.too_late == 1
