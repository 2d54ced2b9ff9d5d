"""streaming.reference.ReadyOffsets: which payments the reference tables are ready for, without
the loop waiting for the log-end offsets (pure: a stand-in for the reader's four calls; the
reader itself runs against the broker in tests/integration/test_reference_reader.py)."""

from __future__ import annotations

from concurrent.futures import Future

from streaming.reference import MAX_ANSWERS, MAX_IN_FLIGHT, ReadyOffsets


class _Reader:
    """Applied offsets per table partition; ``ends`` is what the next question answers."""

    def __init__(self) -> None:
        self.next = {"labels-0": 0}
        self.ends = {"labels-0": 0}
        self.required: dict[str, int] = {}

    def end_offsets(self) -> dict[str, int]:
        return dict(self.ends)

    def target(self, ends: dict[str, int]) -> dict[str, int]:
        return dict(ends)

    def require(self, ends: dict[str, int]) -> None:
        self.required.update(ends)

    def has_applied(self, target: dict[str, int]) -> bool:
        return all(self.next[tp] >= end for tp, end in target.items())


class _Manual:
    """An executor whose tasks run when the test says (the helper thread's answer)."""

    def __init__(self) -> None:
        self.queued: list[tuple[Future, object]] = []

    def submit(self, fn, *args):  # type: ignore[no-untyped-def]
        f: Future = Future()
        self.queued.append((f, lambda: fn(*args)))
        return f

    def answer(self) -> None:
        f, fn = self.queued.pop(0)
        f.set_result(fn())  # type: ignore[operator]


def test_payments_pass_only_below_an_answer_asked_after_them_and_met():
    reader, ex = _Reader(), _Manual()
    ready = ReadyOffsets(reader, ex)  # type: ignore[arg-type]
    assert ready.below(0) == -1
    reader.ends = {"labels-0": 5}  # a label produced before payments 0..2 of partition 0
    assert ready.ask({0: 3, 1: 7})
    ready.update()
    assert ready.below(0) == -1  # not answered yet: the loop goes on, the payments wait
    ex.answer()
    ready.update()
    assert reader.required == {"labels-0": 5}
    assert ready.below(0) == -1  # answered, but the reader has not applied the label
    reader.next["labels-0"] = 5
    ready.update()
    assert (ready.below(0), ready.below(1), ready.below(2)) == (3, 7, -1)


def test_each_answer_is_judged_by_its_own_ends_so_a_busy_table_does_not_starve_payments():
    reader, ex = _Reader(), _Manual()
    ready = ReadyOffsets(reader, ex)  # type: ignore[arg-type]
    reader.ends = {"labels-0": 5}
    ready.ask({0: 3})
    ex.answer()
    reader.ends = {"labels-0": 9}  # more labels by the time of the second question
    ready.ask({0: 6})
    ex.answer()
    reader.next["labels-0"] = 5
    ready.update()
    assert ready.below(0) == 3  # the first answer is met although the second is not
    reader.next["labels-0"] = 9
    ready.update()
    assert ready.below(0) == 6


def test_a_question_refused_while_enough_are_in_flight_is_owed_and_bounds_never_go_down():
    reader, ex = _Reader(), _Manual()
    ready = ReadyOffsets(reader, ex)  # type: ignore[arg-type]
    for i in range(MAX_IN_FLIGHT):
        assert ready.ask({0: 10 + i})
    assert not ready.ask({0: 20}) and ready.owed
    assert ready.in_flight() == MAX_IN_FLIGHT
    ex.answer()
    assert ready.ask({0: 4}) and not ready.owed  # after a restore: a lower mark
    while ex.queued:
        ex.answer()
    ready.update()
    assert ready.below(0) == 11  # the highest met mark; the lower one does not lower it


def test_the_loop_waits_for_an_answer_only_up_to_its_budget():
    """An answer back within the wait releases the payments in the same iteration; one that is
    late costs the loop the budget, not the round trip."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    class _Slow(_Reader):
        delay = 0.02

        def end_offsets(self) -> dict[str, int]:
            time.sleep(self.delay)
            return dict(self.ends)

    reader = _Slow()
    with ThreadPoolExecutor(1) as ex:
        ready = ReadyOffsets(reader, ex)  # type: ignore[arg-type]
        ready.ask({0: 3})
        waited = ready.update(wait_s=5.0)
        assert 0.005 < waited < 2.0 and ready.below(0) == 3
        reader.delay = 1.0
        ready.ask({0: 8})
        waited = ready.update(wait_s=0.05)
        assert 0.04 < waited < 0.5 and ready.below(0) == 3  # past the budget: not yet
        assert ready.update(wait_s=5.0) < 2.0 and ready.below(0) == 8
        assert ready.update(wait_s=5.0) == 0.0  # nothing in flight: no wait


def test_answers_kept_for_a_reader_that_stays_behind_are_bounded():
    reader, ex = _Reader(), _Manual()
    ready = ReadyOffsets(reader, ex)  # type: ignore[arg-type]
    for i in range(40):
        reader.ends = {"labels-0": 100 + i}  # the reader never gets there meanwhile
        ready.ask({0: i + 1})
        ex.answer()
        ready.update()
    assert len(ready._answered) <= MAX_ANSWERS
    assert ready.below(0) == -1
    reader.next["labels-0"] = 139
    ready.update()
    assert ready.below(0) == 40  # the newest answer's marks: nothing lost but time
