"""The log-end offsets the event-time alignment judges "caught up" by, without waiting for them.

After each poll that brought records (or with records held back) the scorer asks the input
partitions' log-end offsets on a helper thread (one ListOffsets round trip). Each answer is
kept with its *marks*: every input partition's position right after that poll, raised to the
high-water mark of its last fetch response (records below it were in the log before the
question was sent).

The rule (``streaming.align`` states what it protects): a record of topic A at an offset below
an answer's mark for A may pass once topic B's partition has been consumed up to that answer's
end offset for B. Everything produced to B before that record of A was in the log by the time
the question was asked, so it lies below B's end offset and has been polled.

Two things follow from judging each held record by the answer asked after *its* poll rather
than by the newest one:

* the loop never blocks on a round trip: an answer not back yet simply covers nothing yet, and
  the held records pass at the next iteration that finds it (the poll waits only
  ``poll_wait_ms`` while records are held);
* a busy other topic no longer holds records back indefinitely. The newest answer nearly always
  reports records produced after the last fetch, so "consumed up to the newest end" was
  rarely true while logins kept arriving; the older answer is met by the next poll.

Pure except for the callable that asks (tests give it a function; the scorer its probe
consumer's ``end_offsets``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from typing import Generic, TypeVar

P = TypeVar("P")  # a partition id (kafka's TopicPartition in the scorer)

MAX_ANSWERS = 8  # answers kept (an older one is met whenever a newer one is)
MAX_IN_FLIGHT = 2  # questions asked and not answered yet (a third would only queue)


class EndOffsets(Generic[P]):
    """Log-end offsets asked in the background, each valid for the records polled before it."""

    def __init__(self, ask: Callable[[list[P]], Mapping[P, int]], executor: Executor,
                 on_answer: Callable[[], None] | None = None) -> None:
        self._ask = ask
        self._executor = executor
        self._on_answer = on_answer
        self._in_flight: deque[tuple[Future[Mapping[P, int]], dict[P, int]]] = deque()
        # (ends, marks), oldest first
        self._answers: deque[tuple[Mapping[P, int], dict[P, int]]] = deque(maxlen=MAX_ANSWERS)

    def ask(self, partitions: Sequence[P], marks: dict[P, int]) -> bool:
        """Ask the end offsets of ``partitions``; ``marks``: each partition's position (records
        below it are known to be in the log now). False when enough questions are in flight."""
        self._collect()
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            return False
        self._in_flight.append((self._executor.submit(self._ask, list(partitions)), marks))
        return True

    def in_flight(self) -> int:
        return len(self._in_flight)

    def caught_up_below(self, other: P, consumed: int, hw: int | None, waiting: P) -> int:
        """The offset of partition ``waiting`` below which its records may pass, given that
        partition ``other`` has been consumed up to ``consumed`` (``hw``: ``other``'s high-water
        mark from its last fetch; None: no fetch answered since it was assigned). -1: none yet.
        Raises what the last question raised.

        Some Kafka-protocol brokers answer ListOffsets(latest) with the newest batch's base
        offset + 1, below the true end; the high-water mark covers that, so without one (just
        after an assignment) nothing passes: an answer asked before a restore could otherwise
        be met by the restore offset alone."""
        self._collect()
        if hw is None or consumed < hw:  # no fetch yet, or the last one showed more
            return -1
        for ends, marks in reversed(self._answers):  # newest first: the widest mark
            end = ends.get(other)
            if end is not None and consumed >= end:
                return marks.get(waiting, -1)
        return -1

    def _collect(self) -> None:
        while self._in_flight and self._in_flight[0][0].done():
            future, marks = self._in_flight.popleft()
            if future.cancelled():
                continue
            ends = future.result()  # a Kafka error ends the session, as a blocking call did
            self._answers.append((ends, marks))
            if self._on_answer is not None:
                self._on_answer()
