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

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from typing import Generic, TypeVar

P = TypeVar("P")  # a partition id (kafka's TopicPartition in the scorer)

MAX_ANSWERS = 8  # answers kept (an older one is met whenever a newer one is)
MAX_IN_FLIGHT = 2  # questions asked and not answered yet (a third would only queue)
MAX_FETCH_ANSWERS = 16  # fetch responses kept as answers (several arrive per poll)
MAX_REQUESTS = 64  # fetch requests remembered until their response (errors leave some behind)


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
        return _covered(self._answers, other, consumed, hw, waiting)

    def _collect(self) -> None:
        while self._in_flight and self._in_flight[0][0].done():
            future, marks = self._in_flight.popleft()
            if future.cancelled():
                continue
            ends = future.result()  # a Kafka error ends the session, as a blocking call did
            self._answers.append((ends, marks))
            if self._on_answer is not None:
                self._on_answer()


def _covered(answers: Sequence[tuple[Mapping[P, int], Mapping[P, int]]], other: P,
             consumed: int, hw: int | None, waiting: P) -> int:
    """The widest mark for ``waiting`` among the answers (newest first) whose end for ``other``
    has been consumed; -1 when none is, or without a fetch answer for ``other`` (``hw``)."""
    if hw is None or consumed < hw:  # no fetch yet, or the last one showed more
        return -1
    for ends, marks in reversed(answers):  # newest first: the widest mark
        end = ends.get(other)
        if end is not None and consumed >= end:
            return marks.get(waiting, -1)
    return -1


class FetchedEnds(Generic[P]):
    """The consumer's own fetch responses as log-end answers: no extra round trip.

    A fetch response reports each partition's high-water mark, read by the broker after the
    request arrived, so after the moment the request was *created*. A record known to be in the
    log before that moment therefore has every record produced to another partition before it
    below that partition's reported mark. "Known to be in the log" is what earlier responses
    showed: the high-water marks of the responses received before the request was created (the
    *marks*). So a response is an answer exactly like a ListOffsets answer of
    :class:`EndOffsets`: ``ends`` = the marks it reports, ``marks`` = what was known before its
    request was created; and the same rule releases the held records (:func:`_covered`).

    Compared with asking ListOffsets after the poll, this saves a round trip: the fetch sent
    after the response that delivered a payment already answers for the logins partition.
    Only partitions *present* in a response are answered for. A broker with incremental fetch
    sessions (KIP-227) leaves out partitions that did not change; those keep waiting for a
    ListOffsets answer, as before.

    Thread-safe: the client's network thread calls :meth:`request_created` and
    :meth:`response`; the loop calls :meth:`caught_up_below`. Pure otherwise: the Kafka client
    is wired in :mod:`streaming.fetch_hooks`.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._known: dict[P, int] = {}  # the highest high-water mark received per partition
        self._known_at: deque[tuple[float, dict[P, int]]] = deque(maxlen=MAX_REQUESTS)
        self._created: dict[int, float] = {}
        self._answers: deque[tuple[dict[P, int], dict[P, int]]] = deque(
            maxlen=MAX_FETCH_ANSWERS)
        self.responses = 0

    def request_created(self, key: int, t: float) -> None:
        """A fetch request (identified by ``key``) was created; ``t``: :attr:`clock` read
        *before* it was, so earlier than anything the broker does for it."""
        with self._lock:
            if len(self._created) >= MAX_REQUESTS:  # failed requests never answer: forget
                self._created.pop(next(iter(self._created)))
            self._created[key] = t

    def response(self, key: int, high_water: Mapping[P, int]) -> None:
        """The response to request ``key``: each present partition's high-water mark."""
        received = self.clock()
        with self._lock:
            created = self._created.pop(key, None)
            if created is not None and high_water:
                marks: dict[P, int] = {}
                for at, known in reversed(self._known_at):  # newest first
                    if at < created:
                        marks = known
                        break
                if marks:
                    self._answers.append((dict(high_water), marks))
            changed = False
            for tp, hw in high_water.items():
                if hw > self._known.get(tp, -1):
                    self._known[tp] = hw
                    changed = True
            if changed:
                self._known_at.append((received, dict(self._known)))
            self.responses += 1

    def caught_up_below(self, other: P, consumed: int, hw: int | None, waiting: P) -> int:
        """As :meth:`EndOffsets.caught_up_below`, from the fetch responses."""
        with self._lock:
            answers = list(self._answers)
        return _covered(answers, other, consumed, hw, waiting)
