"""streaming.ends: each log-end answer covers only the records polled before it was asked, and
the loop never waits for one."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from streaming.ends import MAX_IN_FLIGHT, EndOffsets

A, B = "payments-0", "logins-0"


class _Log:
    """Log-end offsets a test moves by hand; ``gate`` holds answers back while it is clear."""

    def __init__(self) -> None:
        self.end = {A: 0, B: 0}
        self.gate = threading.Event()
        self.gate.set()
        self.asked = 0

    def __call__(self, partitions: list[str]) -> dict[str, int]:
        self.asked += 1
        answer = {p: self.end[p] for p in partitions}
        self.gate.wait(10)
        return answer


@pytest.fixture
def pool():
    with ThreadPoolExecutor(1) as executor:
        yield executor


def _settle(ends: EndOffsets, log: _Log) -> None:
    """Wait until every question in flight has been answered."""
    while ends.in_flight():
        ends.caught_up_below(B, 0, 0, A)
        threading.Event().wait(0.001)


def test_an_answer_covers_the_records_polled_before_it_was_asked(pool):
    log, answers = _Log(), []
    ends = EndOffsets(log, pool, on_answer=lambda: answers.append(1))
    log.end = {A: 10, B: 5}
    ends.ask([A, B], {A: 10, B: 5})  # after a poll that reached A@10 and B@5
    _settle(ends, log)
    assert answers == [1]
    assert ends.caught_up_below(B, 4, 0, A) == -1  # B not consumed to its end yet
    assert ends.caught_up_below(B, 5, 5, A) == 10  # A's records below 10 may pass
    log.end = {A: 20, B: 9}  # B grew since: the newer answer asks more of B...
    ends.ask([A, B], {A: 20, B: 9})
    _settle(ends, log)
    # ...but the older one still covers what was polled before it (the point of the marks)
    assert ends.caught_up_below(B, 5, 5, A) == 10
    assert ends.caught_up_below(B, 9, 9, A) == 20


def test_the_loop_does_not_wait_for_an_answer(pool):
    log = _Log()
    log.gate.clear()
    ends = EndOffsets(log, pool)
    log.end = {A: 3, B: 2}
    assert ends.ask([A, B], {A: 3, B: 2})
    assert ends.caught_up_below(B, 2, 2, A) == -1  # not back yet: nothing covered, no wait
    assert ends.ask([A, B], {A: 3, B: 2})
    assert ends.in_flight() == MAX_IN_FLIGHT
    assert not ends.ask([A, B], {A: 3, B: 2})  # a third would only queue behind them
    log.gate.set()
    _settle(ends, log)
    assert ends.caught_up_below(B, 2, 2, A) == 3
    assert log.asked == 2


def test_the_high_water_mark_of_the_last_fetch_can_only_say_not_yet(pool):
    log = _Log()
    ends = EndOffsets(log, pool)
    log.end = {A: 4, B: 3}
    ends.ask([A, B], {A: 4, B: 3})
    _settle(ends, log)
    assert ends.caught_up_below(B, 3, 3, A) == 4
    assert ends.caught_up_below(B, 3, 7, A) == -1  # a fetch showed B@7: more to poll
    # no fetch answered since B was (re)assigned: a broker may understate its end offsets,
    # and the answer may predate a restore, so nothing passes on the end offset alone
    assert ends.caught_up_below(B, 3, None, A) == -1


def test_a_failed_question_ends_the_session(pool):
    def broken(partitions):
        raise ConnectionError("broker went away")

    ends = EndOffsets(broken, pool)
    ends.ask([A, B], {A: 1, B: 1})
    with pytest.raises(ConnectionError):
        for _ in range(10_000):
            ends.caught_up_below(B, 1, 1, A)
            threading.Event().wait(0.001)
