"""streaming.reference.ReadyPayments: the reference tables' readiness is asked after each poll in
the background, and covers only the payments polled before the question."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from streaming.reference import MAX_IN_FLIGHT, ReadyPayments

T = "accounts-0"


class _Tables:
    """A reference reader the test moves by hand: ``end`` grows as records are produced,
    ``applied`` as the reader applies them; ``gate`` holds answers back while clear."""

    def __init__(self) -> None:
        self.end = 0
        self.applied = 0
        self.required = 0
        self.gate = threading.Event()
        self.gate.set()
        self.asked = 0
        self.fail: Exception | None = None

    def end_offsets(self) -> dict[str, int]:
        self.asked += 1
        answer = {T: self.end}
        self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        return answer

    def require(self, ends: dict[str, int]) -> None:
        self.required = max(self.required, ends[T])

    def caught_up(self) -> bool:
        return self.applied >= self.required


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as executor:
        yield executor


def _settle(ready: ReadyPayments) -> None:
    while ready.in_flight():
        ready.update()
        threading.Event().wait(0.001)


def test_payments_pass_once_the_tables_hold_everything_produced_before_their_poll(pool):
    tables = _Tables()
    ready = ReadyPayments(tables, pool)
    assert ready.below(0) == -1  # nothing asked yet: nothing passes
    tables.end = 5  # five profiles in the log when payments 0..9 were polled
    ready.ask({0: 10, 1: 3})
    _settle(ready)
    assert ready.below(0) == -1  # the reader has not applied them yet
    tables.applied = 5
    ready.update()
    assert (ready.below(0), ready.below(1)) == (10, 3)
    tables.end = 8  # a profile produced after those payments, before the next ones
    ready.ask({0: 12})
    _settle(ready)
    assert ready.below(0) == 10  # the earlier payments stay ready, the new ones wait
    tables.applied = 8
    ready.update()
    assert ready.below(0) == 12


def test_the_loop_does_not_wait_for_an_answer(pool):
    tables = _Tables()
    tables.gate.clear()
    ready = ReadyPayments(tables, pool)
    assert ready.ask({0: 1})
    ready.update()  # returns at once, the answer is not back
    assert ready.below(0) == -1
    assert ready.ask({0: 2})
    assert ready.in_flight() == MAX_IN_FLIGHT
    assert not ready.ask({0: 3})  # a third would only queue: a later poll asks again
    tables.gate.set()
    _settle(ready)
    assert ready.below(0) == 2
    assert tables.asked == 2


def test_a_failed_question_ends_the_session(pool):
    tables = _Tables()
    tables.fail = TimeoutError("broker gone")
    ready = ReadyPayments(tables, pool)
    ready.ask({0: 1})
    with pytest.raises(TimeoutError):
        _settle(ready)
