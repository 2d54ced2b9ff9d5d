"""streaming.collector: the feature state is kept out of full collections, and nothing that
the collector should free is kept because of it."""

from __future__ import annotations

import gc
import weakref

import pytest

from features.engine import FeatureEngine
from streaming.collector import LongLived
from tests.integration.test_scorer_support import make_bank


@pytest.fixture(autouse=True)
def _unfrozen():
    gc.collect()
    gc.unfreeze()
    yield
    gc.unfreeze()


def _engine() -> FeatureEngine:
    bank = make_bank(n_accounts=40, n_payments=400, seed=5, prefix="G")
    engine = FeatureEngine(bank.reference())
    for ev in bank.events():
        (engine.on_payment if hasattr(ev, "direction") else engine.on_login)(ev)
    return FeatureEngine.restore(engine.snapshot(), bank.reference())


def test_a_restored_state_is_frozen_and_freed_by_reference_counting_when_dropped():
    engine = _engine()
    tracked = len(gc.get_objects())
    keeper = LongLived(interval_s=30)
    keeper.after_restore()
    frozen = gc.get_freeze_count()
    assert frozen >= tracked > 0
    assert len(gc.get_objects()) < tracked // 10  # out of the collector's sight
    del engine  # the state holds no reference cycle: dropped at once, no collection needed
    assert gc.get_freeze_count() < frozen


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_a_due_tick_collects_new_cycles_before_it_freezes_the_survivors():
    keeper = LongLived(interval_s=10)
    keeper.after_restore()
    assert keeper.tick(keeper._frozen_at + 5) is None  # not due: nothing done
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    dead = weakref.ref(a)
    survivor = _Node()
    del a, b  # a cycle that became garbage since the last freeze
    before = gc.get_freeze_count()
    took = keeper.tick(keeper._frozen_at + 10)
    assert took is not None and took >= 0
    assert dead() is None  # collected, not frozen
    assert gc.get_freeze_count() > before and survivor is not None
    assert keeper.tick(keeper._frozen_at + 1) is None


def test_the_frozen_objects_are_counted_after_a_restore_then_at_most_every_count_interval():
    """Counting walks every frozen object with the GIL held, so it is never done per scrape:
    when the keeper is made, after a restore, then by a due tick once ``count_every_s`` has
    passed since the last count."""
    counts: list[int] = []
    keeper = LongLived(interval_s=10, on_count=counts.append, count_every_s=100)
    assert counts == [gc.get_freeze_count()]  # at start-up: the gauge is never left unset
    keeper.after_restore()
    assert len(counts) == 2 and counts[1] == gc.get_freeze_count() and counts[1] > 0
    t0 = keeper._frozen_at
    assert keeper.tick(t0 + 5) is None and len(counts) == 2  # not due: nothing at all
    assert keeper.tick(t0 + 10) is not None  # due: collected and frozen ...
    assert len(counts) == 2  # ... but counted 10 s ago: not again
    assert keeper.tick(t0 + 50) is not None
    assert len(counts) == 2
    kept = [_Node() for _ in range(1000)]  # new long-lived objects, frozen by the next tick
    assert keeper.tick(t0 + 100) is not None  # 100 s since the count: counted again
    assert len(counts) == 3 and counts[2] >= counts[1] + len(kept)


def test_without_a_listener_nothing_is_counted(monkeypatch):
    calls = []
    monkeypatch.setattr(gc, "get_freeze_count", lambda: calls.append(1) or 0)
    keeper = LongLived(interval_s=1, count_every_s=0)
    keeper.after_restore()
    keeper.tick(keeper._frozen_at + 1)
    assert calls == []
