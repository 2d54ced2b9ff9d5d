"""The reference tables against brute force: confirmed fraud received / sent, labels that change
their mind, the watch list; any arrival order; the live path (records published and arriving at
their confirmation time) gives the vectors training replay gives."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.engine import FeatureEngine
from features.events import Label, Login, Payment, Rejection, WatchEntry, decode, encode
from features.reference import RESOLVE_HORIZON_S, ReferenceData, confirmed_payment
from features.replay import reference_for, replay_matrix
from tests.unit import reference_oracle as ro

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = 86400.0
ACCOUNTS = ["A", "B", "C", "X", "Y", "M"]
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@st.composite
def worlds(draw: st.DrawFn, max_payments: int = 30, max_labels: int = 25
           ) -> tuple[list[Payment], list[Label], list[WatchEntry]]:
    offsets = st.integers(0, 70 * 86400).map(float)
    payments = [
        Payment(f"p{i}", at(draw(offsets)), draw(st.sampled_from(ACCOUNTS)),
                draw(st.sampled_from(["debit", "credit"])),
                draw(st.sampled_from([1e5, 2.5e6, 9.9e6, 4e7])), "VND",
                draw(st.sampled_from(ACCOUNTS)), "CGB", "mobile")
        for i in range(draw(st.integers(0, max_payments)))
    ]
    labels = []
    for i in range(draw(st.integers(0, max_labels))):
        kind = draw(st.sampled_from(["fraud", "mule", "legit"]))
        event = draw(st.one_of(st.none(), st.sampled_from([f"p{k}" for k in range(40)])))
        cp = draw(st.one_of(st.none(), st.sampled_from(ACCOUNTS)))
        labels.append(Label(f"l{i}", at(draw(offsets)), draw(st.sampled_from(ACCOUNTS)), kind,
                            event_id=event, counterparty_account=cp))
    if labels and draw(st.booleans()):  # a duplicate label id: ignored
        labels.append(labels[0])
    watch = []
    for _ in range(draw(st.integers(0, 5))):
        listed = draw(offsets)
        delisted = draw(st.one_of(st.none(), st.integers(0, 20 * 86400).map(float)))
        watch.append(WatchEntry(draw(st.sampled_from(["CGB", "VCB"])),
                                draw(st.sampled_from(ACCOUNTS)), "SIMO", at(listed), "scam",
                                None if delisted is None else at(listed + delisted)))
    return payments, labels, watch


def expected(account: str, t: float, payments: list[Payment], labels: list[Label],
             watch: list[WatchEntry]) -> tuple:
    recs = ro.records(labels, {p.event_id: p for p in payments})
    return (ro.flagged(account, t, labels, recs, watch), *ro.history(account, t, labels, recs),
            ro.days_since_received(account, t, labels, recs), ro.watch_days(account, t, watch))


def got(ref: ReferenceData, account: str, t: float) -> tuple:
    return (ref.is_flagged(account, t), *ref.fraud_history(account, t),
            ref.days_since_fraud_received(account, t), ref.watch_days(account, t))


def same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) if (isinstance(x, float) and math.isnan(x))
        or (isinstance(y, float) and math.isnan(y)) else math.isclose(x, y, abs_tol=1e-6)
        for x, y in zip(a, b, strict=True))


@SETTINGS
@given(worlds(), st.lists(st.integers(0, 75 * 86400), min_size=1, max_size=12),
       st.randoms(use_true_random=False))
def test_every_query_equals_brute_force_in_any_arrival_order(world, times, rnd):
    payments, labels, watch = world
    ref = reference_for([], labels, payments, watch)
    for offset in times:  # any order of query times: the flagged timeline rewinds
        t = T0.timestamp() + offset
        for account in ACCOUNTS:
            want = expected(account, t, payments, labels, watch)
            assert same(got(ref, account, t), want), (account, offset)
            assert (account in ref.flagged_set(t)) == want[0]
    # the same facts arriving one by one, in another order, between queries
    shuffled = list(labels)
    rnd.shuffle(shuffled)
    by_id = {p.event_id: p for p in payments}
    live = ReferenceData()
    for i, lb in enumerate(shuffled):
        live.add_label(lb, by_id.get(lb.event_id) if lb.event_id else None)
        if i % 3 == 0:
            live.is_flagged("A", T0.timestamp() + times[0])
    for entry in watch:
        live.add_watch(entry)
    for offset in times:
        t = T0.timestamp() + offset
        for account in ACCOUNTS:
            want = expected(account, t, payments, labels, watch)
            assert same(got(live, account, t), want), (account, offset)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(worlds(max_payments=300, max_labels=250), st.lists(st.integers(0, 75 * 86400),
                                                         min_size=1, max_size=4))
def test_long_histories_equal_brute_force(world, times):
    payments, labels, watch = world
    ref = reference_for([], labels, payments, watch)
    for offset in sorted(times):
        t = T0.timestamp() + offset
        for account in ACCOUNTS:
            assert same(got(ref, account, t), expected(account, t, payments, labels, watch))


def test_the_receiver_of_a_confirmed_payment_is_its_payments_counterparty_or_the_label_s():
    debit = Payment("e1", at(0), "V", "debit", 5e6, "VND", "MULE", "ACB", "mobile")
    credit = Payment("e2", at(0), "MULE2", "credit", 7e6, "VND", "VICTIM", "VCB", "mobile")
    lb = Label("l1", at(DAY), "V", "fraud", event_id="e1")
    rec = confirmed_payment(lb, debit)
    assert rec is not None
    # bank codes come from the label (the engine keeps none: a live scorer could not say)
    assert (rec.sender_account, rec.receiver_account, rec.receiver_bank, rec.amount,
            rec.paid_t) == ("V", "MULE", None, 5e6, debit.t)
    rec2 = confirmed_payment(Label("l2", at(DAY), "MULE2", "mule", event_id="e2"), credit)
    assert rec2 is not None and (rec2.sender_account, rec2.receiver_account) == ("VICTIM", "MULE2")
    only = confirmed_payment(Label("l3", at(DAY), "V", "fraud", event_id="e9",
                                   counterparty_account="M", counterparty_bank="TCB"))
    assert only is not None and (only.receiver_account, only.receiver_bank) == ("M", "TCB")
    assert only.amount is None and only.paid_t == at(DAY).timestamp()
    assert confirmed_payment(Label("l4", at(DAY), "V", "fraud", event_id="e9")) is None
    assert confirmed_payment(Label("l5", at(DAY), "V", "legit", event_id="e1"), debit) is None
    assert confirmed_payment(Label("l6", at(DAY), "V", "mule"), debit) is None
    # another account's payment, or one older than the horizon, does not resolve the label
    assert confirmed_payment(Label("l7", at(DAY), "W", "fraud", event_id="e1"), debit) is None
    old = Label("l8", at(RESOLVE_HORIZON_S + 1), "V", "fraud", event_id="e1",
                counterparty_account="M2")
    rec8 = confirmed_payment(old, debit)
    assert rec8 is not None and (rec8.receiver_account, rec8.amount) == ("M2", None)
    edge = confirmed_payment(Label("l9", at(RESOLVE_HORIZON_S), "V", "fraud", event_id="e1"),
                             debit)
    assert edge is not None and edge.receiver_account == "MULE"


def test_a_published_record_replaces_the_label_only_view_of_the_same_label():
    lb = Label("l1", at(DAY), "V", "fraud", event_id="e1", counterparty_account="M")
    pay = Payment("e1", at(0), "V", "debit", 5e6, "VND", "M", "ACB", "mobile")
    ref = ReferenceData()
    ref.add_label(lb)  # the label arrives first: amount unknown, paid at confirmation
    t = at(2 * DAY).timestamp()
    assert ref.fraud_history("M", t)[4:6] == (1.0, 0.0)
    rec = confirmed_payment(lb, pay)
    assert rec is not None
    ref.add_confirmed(rec)  # then the record derived from the payment
    assert ref.fraud_history("M", t)[4:6] == (1.0, 5e6)
    assert ref.days_since_fraud_received("M", t) == 2.0
    assert len(ref.confirmed_payments()) == 1


def test_a_later_legit_label_withdraws_the_flag_from_its_time_on():
    ref = ReferenceData.of(labels=[
        Label("m1", at(DAY), "M", "mule"),
        Label("ok", at(5 * DAY), "M", "legit"),
        Label("f1", at(2 * DAY), "V", "fraud", event_id="x", counterparty_account="N"),
        Label("ok2", at(6 * DAY), "V", "legit", event_id="x"),
    ])
    t = at(0).timestamp()
    assert [ref.is_flagged("M", t + d * DAY) for d in (0.5, 1, 4.9, 5, 30)] == [
        False, True, True, False, False]
    assert [ref.is_flagged("N", t + d * DAY) for d in (1, 2, 5.9, 6, 30)] == [
        False, True, True, False, False]
    assert ref.fraud_history("N", t + 3 * DAY)[4] == 1.0
    assert ref.fraud_history("N", t + 7 * DAY)[4] == 0.0


def test_no_look_ahead_labels_confirmed_after_the_payment_change_nothing():
    """A payment's vector is the same whether the labels confirmed after it exist or not."""
    pays = [Payment(f"p{i}", at(i * 3600.0), "A" if i % 2 else "B", "debit", 2e6, "VND",
                    "M", "CGB", "mobile") for i in range(60)]
    labels = [Label("l1", at(10 * 3600.0), "A", "fraud", event_id="p1"),
              Label("l2", at(40 * 3600.0), "M", "mule"),
              Label("l3", at(50 * 3600.0), "B", "fraud", event_id="p30")]
    watch = [WatchEntry("CGB", "M", "SIMO", at(20 * 3600.0), "scam")]
    X_all, _ = replay_matrix(pays, [], reference_for([], labels, pays, watch))
    for k, p in enumerate(pays):
        known = [lb for lb in labels if lb.t <= p.t]
        listed = [w for w in watch if w.listed_at <= p.ts]
        X_k, _ = replay_matrix(pays[:k + 1], [], reference_for([], known, pays, listed))
        row, want = X_all[k], X_k[k]
        assert all(same((a,), (b,)) for a, b in zip(row, want, strict=True)), p.event_id


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(worlds(max_payments=40, max_labels=20))
def test_live_path_with_records_arriving_at_confirmation_equals_training_replay(world):
    """Parity: a scorer that receives labels, the confirmed-payment records derived from them
    (published by the partition that owns the payment) and watch-list entries as they are
    confirmed, interleaved with the payments, scores exactly what training replay scores."""
    payments, labels, watch = world
    payments.sort(key=lambda p: p.t)
    watch = list({w.key: w for w in watch}.values())  # the compacted topic's final state
    X, scored = replay_matrix(payments, [], reference_for([], labels, payments, watch))
    ref = ReferenceData()
    # the device/payee table is a global table the pipeline keeps up to date
    # (tests/integration/test_devices.py); here it holds every sighting, as replay's does,
    # and the visibility delay hides those not yet visible to a payment
    ref.devices.load(payments)
    engine = FeatureEngine(ref)
    by_id = {p.event_id: p for p in payments}
    facts: list[tuple[float, int, object]] = [(lb.t, 0, lb) for lb in labels]
    # an entry is produced when listed, and produced again with delisted_at when delisted
    facts += [(w.listed_at.timestamp(), 0, replace(w, delisted_at=None)) for w in watch]
    facts += [(w.delisted_at.timestamp(), 0, w) for w in watch if w.delisted_at]
    facts += [(p.t, 1, p) for p in payments]
    facts.sort(key=lambda f: (f[0], f[1]))
    live = []
    for _, _, item in facts:
        if isinstance(item, Label):
            ref.add_label(item)  # the label topic: every scorer reads it
            payment = by_id.get(item.event_id) if item.event_id else None
            record = confirmed_payment(item, payment)
            if payment is not None and record is not None:
                ref.add_confirmed(record)  # the record the owning partition publishes
        elif isinstance(item, WatchEntry):
            ref.add_watch(item)
        elif isinstance(item, Payment):
            v = engine.on_payment(item)
            if v is not None:
                live.append(v.values)
    assert len(live) == len(scored)
    for row, values in zip(X.tolist(), live, strict=True):
        assert same(tuple(row), values)


def test_unresolvable_payment_labels_are_counted():
    ref = ReferenceData.of(labels=[Label("l1", at(0), "A", "fraud", event_id="nowhere")])
    assert ref.unresolved == 1
    assert not ref.is_flagged("A", at(DAY).timestamp())


_ = Login  # the event types a scorer feeds (logins do not touch the reference)


def test_the_published_record_round_trips_through_its_contract():
    """What the owning partition publishes and every scorer reads back: the same record."""
    pay = Payment("e1", at(0), "V", "debit", 5e6, "VND", "M", "ACB", "mobile")
    for rec in (confirmed_payment(Label("l1", at(DAY), "V", "fraud", event_id="e1"), pay),
                confirmed_payment(Label("l2", at(DAY), "V", "mule", event_id="e9",
                                        counterparty_account="M"))):
        assert rec is not None
        assert decode("confirmed_payments", encode(rec)) == rec


@pytest.mark.parametrize(("change", "field"), [
    ({"label": "legit"}, "label"), ({"receiver_account": None}, "receiver_account"),
    ({"amount": -1}, "amount"), ({"paid_at": "yesterday"}, "paid_at"),
    ({"confirmed_at": "2026-03-01T00:00:00"}, "confirmed_at"),
])
def test_a_bad_record_is_rejected_naming_the_field(change, field):
    d = {"label_id": "l1", "confirmed_at": "2026-03-02T00:00:00Z", "label": "fraud",
         "sender_account": "V", "receiver_account": "M", "amount": 5e6,
         "paid_at": "2026-03-01T00:00:00Z", **change}
    if change.get(field, 0) is None:
        del d[field]
    rej = decode("confirmed_payments", json.dumps(d).encode())
    assert isinstance(rej, Rejection) and rej.field == field


@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_rejected_not_raised(payload):
    assert isinstance(decode("confirmed_payments", payload), Rejection)
