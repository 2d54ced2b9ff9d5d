"""streaming.reference.ReadyOffsets: which payments the reference tables are ready for, without
the loop waiting for the log-end offsets (pure: a stand-in for the reader's four calls; the
reader itself runs against the broker in tests/integration/test_reference_reader.py, and
tests/integration/test_scorer.py checks that payments wait for the profiles produced before
them)."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

from streaming.reference import MAX_ANSWERS, MAX_IN_FLIGHT, ReadyOffsets

T = "labels-0"  # one table partition


class _Reader:
    """Applied offsets (``next``) and the last fetch's high-water mark (``hw``) of one table
    partition; ``ends`` is what the next question answers."""

    def __init__(self) -> None:
        self.next = 0
        self.hw = 0
        self.ends = 0
        self.required = 0

    def end_offsets(self) -> dict[str, int]:
        return {T: self.ends}

    def positions(self) -> dict[str, int]:
        return {T: self.next}

    def highwaters(self) -> dict[str, int]:
        return {T: self.hw}

    def require(self, ends: dict[str, int]) -> None:
        self.required = max(self.required, ends[T])


class _Manual:
    """An executor whose tasks run when the test says, in any order (the helper threads)."""

    def __init__(self) -> None:
        self.queued: list[tuple[Future, object]] = []

    def submit(self, fn, *args):  # type: ignore[no-untyped-def]
        f: Future = Future()
        self.queued.append((f, lambda: fn(*args)))
        return f

    def answer(self, i: int = 0) -> None:
        f, fn = self.queued.pop(i)
        f.set_result(fn())  # type: ignore[operator]


def _ready(reader: _Reader, ex: object) -> ReadyOffsets:
    return ReadyOffsets(reader, ex)  # type: ignore[arg-type]


def test_payments_pass_only_below_an_answer_asked_after_them_and_met():
    reader, ex = _Reader(), _Manual()
    ready = _ready(reader, ex)
    assert ready.below(0) == -1
    reader.ends = 5  # a label produced before payments 0..2 of partition 0
    assert ready.ask({0: 3, 1: 7})
    ready.update()
    assert ready.below(0) == -1  # not answered yet: the loop goes on, the payments wait
    ex.answer()
    ready.update()
    assert reader.required == 5  # the reader is polled until it gets there
    assert ready.below(0) == -1  # answered, but the reader has not applied the label
    reader.next = reader.hw = 5
    ready.update()
    assert (ready.below(0), ready.below(1), ready.below(2)) == (3, 7, -1)


def test_a_base_offset_answer_is_raised_to_the_high_water_mark_of_the_fetch_that_reached_it():
    """Some brokers answer ListOffsets(latest) with the newest batch's base offset + 1: a batch
    of labels 10..19 answers 11. The reader's poll that reaches 11 may hold only part of the
    batch; the fetch that brought it has the high-water mark 20."""
    reader, ex = _Reader(), _Manual()
    ready = _ready(reader, ex)
    reader.next = reader.hw = 10
    reader.ends = 11
    ready.ask({0: 4})
    ex.answer()
    ready.update()
    assert ready.below(0) == -1
    reader.hw, reader.next = 20, 12  # the batch fetched; a poll applied two of its records
    ready.update()
    assert ready.below(0) == -1 and reader.required == 20  # raised: the rest of the batch
    reader.hw = 35  # a busy table: later fetches do not move the target again
    reader.next = 20
    ready.update()
    assert ready.below(0) == 4


def test_each_answer_is_judged_by_its_own_target_in_any_order():
    reader, ex = _Reader(), _Manual()
    ready = _ready(reader, ex)
    ready.ask({0: 3})
    ready.ask({0: 6})
    reader.ends = 5
    ex.answer(1)  # the newer question's request ran first, on the other connection
    reader.ends = 9  # more labels by the time the older one's ran
    ex.answer(0)
    reader.next = reader.hw = 5
    ready.update()
    assert ready.below(0) == 6  # the newer answer is met although the older is not
    reader.next = reader.hw = 9
    ready.update()
    assert ready.below(0) == 6  # the older one met too: its lower mark changes nothing
    ready.ask({0: 12})
    reader.ends = 15
    ex.answer()
    reader.next = 12  # below its target
    ready.update()
    assert ready.below(0) == 6


def test_a_question_refused_while_enough_are_in_flight_is_owed_and_bounds_never_go_down():
    reader, ex = _Reader(), _Manual()
    ready = _ready(reader, ex)
    for i in range(MAX_IN_FLIGHT):
        assert ready.ask({0: 10 + i})
    assert not ready.ask({0: 20}) and ready.owed
    assert ready.in_flight() == MAX_IN_FLIGHT
    ex.answer()
    assert ready.ask({0: 4}) and not ready.owed  # after a restore: a lower mark
    while ex.queued:
        ex.answer()
    ready.update()
    assert ready.below(0) == 10 + MAX_IN_FLIGHT - 1  # the highest met mark stays


def test_answers_kept_for_a_reader_that_stays_behind_are_bounded():
    reader, ex = _Reader(), _Manual()
    ready = _ready(reader, ex)
    for i in range(40):
        reader.ends = 100 + i  # the reader never gets there meanwhile
        ready.ask({0: i + 1})
        ex.answer()
        ready.update()
    assert len(ready._answered) <= MAX_ANSWERS
    assert ready.below(0) == -1
    reader.next = reader.hw = 139
    ready.update()
    assert ready.below(0) == 40  # the newest answer's marks: nothing lost but time


def test_the_loop_waits_for_the_newest_answer_only_up_to_its_budget():
    """An answer back within the wait releases the payments in the same iteration; one that is
    late costs the loop the budget, not the round trip (generous bounds: a loaded machine)."""

    class _Slow(_Reader):
        delay = 0.02

        def end_offsets(self) -> dict[str, int]:
            time.sleep(self.delay)
            return {T: self.ends}

    reader = _Slow()
    with ThreadPoolExecutor(MAX_IN_FLIGHT) as ex:
        ready = _ready(reader, ex)
        ready.ask({0: 3})
        waited = ready.update(wait_s=30.0)
        assert waited < 20.0 and ready.below(0) == 3
        reader.delay = 3.0
        ready.ask({0: 8})
        waited = ready.update(wait_s=0.05)
        assert 0.04 < waited < 2.5 and ready.below(0) == 3  # past the budget: not yet
        assert ready.update(wait_s=30.0) < 20.0 and ready.below(0) == 8
        assert ready.update(wait_s=30.0) == 0.0  # nothing in flight: no wait
