"""The scorer's share of confirmed payments (streaming.confirmed.ConfirmedLabels) without Kafka:
it waits for the tables to catch up, searches a partition opened meanwhile for every awaiting
label, hands each record over once, and stops waiting after the horizon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from features.engine import FeatureEngine
from features.events import Label, Payment
from features.reference import RESOLVE_HORIZON_S, ReferenceData, confirmed_payment
from streaming.confirmed import ConfirmedLabels
from streaming.handler import Handler
from streaming.metrics import ScorerMetrics

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _pay(event_id: str, account: str, days: float) -> Payment:
    return Payment(event_id, T0 + timedelta(days=days), account, "debit", 3e6, "VND", "MULE",
                   "ACB", "mobile")


def test_resolution_waits_for_the_tables_then_publishes_once_and_expires():
    ref = ReferenceData()
    handler = Handler(ref)
    metrics = ScorerMetrics()
    confirmed = ConfirmedLabels(ref, handler, metrics)
    engine = FeatureEngine(ref)
    pay = _pay("e1", "V", 0)
    engine.on_payment(pay)
    handler.open_partition(0, engine, 0, 0)
    label = Label("l1", T0 + timedelta(days=2), "V", "fraud", event_id="e1")
    ref.add_label(label)
    lost = Label("l2", T0 + timedelta(days=2), "V", "fraud", event_id="e-nowhere")
    ref.add_label(lost)
    confirmed.resolve({0}, caught_up=False)  # behind: nothing yet, partition 0 remembered
    assert confirmed.take() == []
    confirmed.resolve(set(), caught_up=True)
    assert confirmed.take() == [confirmed_payment(label, pay)]
    assert metrics.registry.get_sample_value("canhgiac_scorer_confirmed_published_total") == 1
    confirmed.resolve(set(), caught_up=True)
    assert confirmed.take() == []  # once
    # the partition's event time passes the horizon: the unknown payment is no longer awaited
    handler.event_time[0] = label.t + RESOLVE_HORIZON_S + 1
    assert confirmed.expire() == 1 and ref.n_awaiting() == 0
    assert metrics.registry.get_sample_value("canhgiac_scorer_labels_expired_total") == 1
    assert metrics.registry.get_sample_value("canhgiac_scorer_labels_awaiting") == 0


def test_a_label_read_after_the_partition_opened_is_searched_in_every_owned_partition():
    ref = ReferenceData()
    handler = Handler(ref)
    confirmed = ConfirmedLabels(ref, handler, ScorerMetrics())
    engines = {p: FeatureEngine(ref) for p in (0, 1)}
    engines[1].on_payment(_pay("e7", "W", 0))
    for p, engine in engines.items():
        handler.open_partition(p, engine, 0, 0)
    confirmed.resolve({0, 1}, caught_up=True)
    ref.add_label(Label("l7", T0 + timedelta(days=1), "W", "mule", event_id="e7"))
    confirmed.resolve(set(), caught_up=True)
    [record] = confirmed.take()
    assert (record.label_id, record.sender_account, record.receiver_account) == (
        "l7", "W", "MULE")
