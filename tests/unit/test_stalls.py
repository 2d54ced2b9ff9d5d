"""The stalled-partition watch (pure): data waiting and no progress for ``after_s`` → one
warning and a re-fetch, then quiet for another ``after_s``; progress or no data resets it."""

from __future__ import annotations

from streaming.stalls import StallWatch


def test_a_partition_that_stops_moving_while_data_waits_is_refetched_once_per_period():
    refetched: list = []
    w = StallWatch(30.0, refetched.append)
    assert not w.observe("p0", 100, 150, now=0.0)
    assert not w.observe("p0", 100, 160, now=29.0)
    assert w.observe("p0", 100, 170, now=30.5)
    assert refetched == ["p0"]
    assert not w.observe("p0", 100, 180, now=40.0)  # quiet for another period
    assert w.observe("p0", 100, 190, now=61.0)
    assert refetched == ["p0", "p0"] and w.stalled == 2


def test_progress_or_no_waiting_data_is_not_a_stall():
    refetched: list = []
    w = StallWatch(10.0, refetched.append)
    for t in range(0, 100, 5):  # moving
        assert not w.observe("p", t, t + 50, now=float(t))
    for t in range(100, 200, 5):  # idle: caught up, nothing waiting
        assert not w.observe("q", 7, 7, now=float(t))
    assert not w.observe("r", None, None, now=0.0)
    assert not w.observe("r", None, None, now=100.0)
    assert refetched == []
