"""The global tables (``labels``, ``accounts``, ``watchlist``, ``confirmed_payments``): read
in full by every scorer, outside the group.

A plain consumer (no group) is assigned every partition of both topics from the beginning and
feeds one shared :class:`~features.engine.ReferenceData`. ``caught_up()`` says whether
everything up to the high-water marks has been applied (the scorer polls the reader every
iteration until it is). Payments are held back by :class:`ReadyOffsets` instead, so a payment
never sees reference data that an uninterrupted scorer would have had.
The high-water marks the client knows come from this reader's last fetch, which can be older
than a payment just polled: :class:`ReadyOffsets` asks the log-end offsets after each poll that
brought payments, so that a payment is scored only after every account profile, label,
watch-list entry and confirmed payment produced before it was in the log has been applied.

It does so without blocking the loop (the round trip under load took 20-60 ms, waited inside
every iteration that brought payments, in the scorer's slow-iteration log lines). Each
question is marked with every partition's payments offset below which the payments were in the
log when it was asked; once its answer is in and the reader has applied everything up to it,
the payments below the mark may pass. Until then they stay held in the alignment (the loop
polls on, with the short poll wait) and the next iteration that finds the answer met releases
them: the same rule as the alignment's own log-end offsets (:mod:`streaming.ends`).
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Executor, Future, wait
from typing import TYPE_CHECKING, Any

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from features.events import Account, ConfirmedPayment, Label, Rejection, WatchEntry, decode
from streaming.handler import DeadLetter, RawRecord

if TYPE_CHECKING:
    from features.engine import ReferenceData

log = logging.getLogger(__name__)

# the tables' log-end questions in flight at once (each on its own connection and helper
# thread: a batch's question starts at once instead of queueing behind the previous one)
MAX_IN_FLIGHT = 2
MAX_ANSWERS = 8  # answers in and not met yet, kept


class ReferenceReader:
    """``group_id`` (optional) remembers how far rejects were dead-lettered: the tables are
    read from the start on every start, but a malformed record goes to the dead letters once —
    only records at or after the group's committed offset are sent, and
    :meth:`commit_dead_lettered` (called once the dead letters are durable) moves it on."""

    def __init__(
        self, ref: ReferenceData, topics: dict[str, str], client_config: dict[str, object],
        fetch_max_wait_ms: int = 100, timeout_s: float = 30.0, group_id: str | None = None,
    ) -> None:
        self.ref = ref
        self._kind = {topic: kind for kind, topic in topics.items()}
        self._consumer = KafkaConsumer(
            **client_config, group_id=group_id, enable_auto_commit=False,
            fetch_max_wait_ms=fetch_max_wait_ms,
        )
        # log-end offsets are asked on connections of their own: a long-polling fetch in flight
        # on the reader's connection would hold the request back (answered in order); one per
        # question that may be in flight, so a question never queues behind another
        self._probes: queue.SimpleQueue[KafkaConsumer] = queue.SimpleQueue()
        self._all_probes = [KafkaConsumer(**client_config, group_id=None,
                                          enable_auto_commit=False)
                            for _ in range(MAX_IN_FLIGHT)]
        for probe in self._all_probes:
            self._probes.put(probe)
        self._group = group_id
        tps: list[TopicPartition] = []
        for topic in topics.values():
            parts = self._consumer.partitions_for_topic(topic)
            if not parts:
                raise RuntimeError(f"topic {topic} does not exist (or has no partitions)")
            tps.extend(TopicPartition(topic, p) for p in sorted(parts))
        self._tps = tps
        self._consumer.assign(tps)
        begin = self._consumer.beginning_offsets(tps, timeout_ms=int(timeout_s * 1000))
        self._end = self._consumer.end_offsets(tps, timeout_ms=int(timeout_s * 1000))
        for tp in tps:
            self._consumer.seek(tp, begin[tp])
        self._next: dict[TopicPartition, int] = dict(begin)
        self._dead_from: dict[TopicPartition, int] = {}  # dead-lettered up to here already
        if group_id is not None:
            for tp in tps:
                committed = self._consumer.committed(tp)
                if committed is not None:
                    self._dead_from[tp] = committed
        self._committed = dict(self._dead_from)
        self._required: dict[TopicPartition, int] = dict(self._end)  # log-end offsets asked
        self._caught_up = False
        self.labels = 0
        self.accounts = 0
        self.watch_entries = 0
        self.confirmed = 0
        self.rejects_seen_before = 0  # rejects not sent again (dead-lettered by an earlier run)

    def poll(self, timeout_ms: int = 0) -> tuple[list[Account], list[DeadLetter]]:
        """Apply what is available; returns new accounts (for the case store) and rejects."""
        accounts: list[Account] = []
        dead: list[DeadLetter] = []
        for tp, records in self._consumer.poll(timeout_ms=timeout_ms).items():
            kind = self._kind[tp.topic]
            dead_from = self._dead_from.get(tp, 0)
            for r in records:
                self._next[tp] = r.offset + 1
                raw = RawRecord(kind, tp.topic, tp.partition, r.offset, r.timestamp,
                                r.key, r.value)
                try:
                    event = decode(kind, r.value)
                    if isinstance(event, Rejection):
                        letter = DeadLetter.of(raw, event)
                    elif isinstance(event, Label):
                        self.ref.add_label(event)
                        self.labels += 1
                        continue
                    elif isinstance(event, WatchEntry):
                        self.ref.add_watch(event)
                        self.watch_entries += 1
                        continue
                    elif isinstance(event, ConfirmedPayment):
                        self.ref.add_confirmed(event)
                        self.confirmed += 1
                        continue
                    else:
                        self.ref.add_account(event)
                        accounts.append(event)
                        self.accounts += 1
                        continue
                except Exception as exc:  # noqa: BLE001 - one record must never stop a stream
                    letter = DeadLetter.failed(raw, exc)
                if r.offset >= dead_from:
                    dead.append(letter)
                else:
                    self.rejects_seen_before += 1
        return accounts, dead

    def positions(self) -> dict[TopicPartition, int]:
        """How far the tables have been read (and their rejects handed to the dead letters):
        taken before a flush, it is what that flush makes durable."""
        return dict(self._next)

    def commit_dead_lettered(self, upto: dict[TopicPartition, int] | None = None) -> None:
        """Remember (in the group) that every reject read up to ``upto`` (default: so far)
        went to the dead letters. Call it only once those dead letters are durable (the scorer
        does, at checkpoints, with the positions taken before their flush)."""
        if self._group is None:
            return
        upto = self._next if upto is None else upto
        positions = {tp: off for tp, off in upto.items()
                     if off > self._committed.get(tp, -1)}
        if not positions:
            return
        self._consumer.commit({tp: OffsetAndMetadata(off, "", -1)
                               for tp, off in positions.items()})
        self._committed.update(positions)

    def caught_up(self) -> bool:
        """Everything up to the last known high-water mark of every partition, and up to the
        log-end offsets required by :meth:`require`, is applied."""
        for tp in self._tps:
            hw = self._consumer.highwater(tp)
            need = self._required[tp]
            if hw is not None and hw > need:
                need = hw
            if self._next[tp] < need:
                self._caught_up = False
                return False
        if not self._caught_up:
            self._caught_up = True
            log.info("reference data caught up",
                     extra={"labels": self.labels, "accounts": self.accounts})
        return True

    def end_offsets(self) -> Mapping[TopicPartition, int]:
        """The tables' log-end offsets now (one ListOffsets request, on a probe's own
        connection; safe on helper threads, up to MAX_IN_FLIGHT at once: the reader's consumer
        is not touched)."""
        probe = self._probes.get()
        try:
            return probe.end_offsets(self._tps)
        finally:
            self._probes.put(probe)

    def highwaters(self) -> dict[TopicPartition, int]:
        """The high-water mark of each table partition from the reader's last fetch (0: none
        yet)."""
        return {tp: self._consumer.highwater(tp) or 0 for tp in self._tps}

    def require(self, ends: Mapping[TopicPartition, int]) -> None:
        """Until everything up to ``ends`` is applied, :meth:`caught_up` is False (and the
        scorer polls the reader every iteration)."""
        for tp, end in ends.items():
            if end is not None and end > self._required[tp]:
                self._required[tp] = end

    def close(self) -> None:
        for probe in self._all_probes:
            probe.close(autocommit=False)
        self._consumer.close(autocommit=False)


class ReadyOffsets:
    """Per partition, the payments offset below which the reference tables are ready (see the
    module docstring). The loop calls :meth:`ask` after a poll that brought payments and
    :meth:`update` once an iteration before the release; the handler asks :meth:`below`.

    An answer's *target* is what the reader must have applied: its log-end offsets raised to
    the reader's high-water marks when the answer came in, and raised once more to the
    high-water marks of the moment the reader first reaches it. Some Kafka-protocol brokers
    answer ListOffsets(latest) with the newest batch's base offset + 1; the reader reaches that
    only by fetching the batch, and that fetch's high-water mark covers the rest of it. The
    second raise is taken once, so a busy table cannot keep moving an answer's target.

    Offsets are positions in the log, so a bound stays true across restores and rebalances: a
    payment below it was in the log before a question whose answer has been applied."""

    def __init__(self, reader: ReferenceReader, executor: Executor) -> None:
        self._reader = reader
        self._executor = executor
        self._in_flight: deque[tuple[Future[Mapping[TopicPartition, int]], dict[int, int]]] = (
            deque())
        # answers in, not met yet: [target, marks, raised once]; bounded for a reader that
        # stays behind: an answer dropped only delays the payments it covered until a newer
        # one is met (a newer question's marks are positions asked later, except after a
        # restore, when the payments polled again are asked about again)
        self._answered: deque[list[Any]] = deque(maxlen=MAX_ANSWERS)
        self._ready: dict[int, int] = {}
        # payments were polled while MAX_IN_FLIGHT questions were out: ask at the next chance
        self.owed = False

    def ask(self, marks: dict[int, int]) -> bool:
        """Ask the tables' log-end offsets on a helper thread; ``marks``: per partition, the
        payments offset below which every payment is in the log now. False (and
        :attr:`owed`) when enough questions are in flight."""
        self._collect()
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            self.owed = True
            return False
        self._in_flight.append((self._executor.submit(self._reader.end_offsets), marks))
        self.owed = False
        return True

    def update(self, wait_s: float = 0.0) -> float:
        """Take the answers in; once the reader has applied everything up to an answer's
        target (the reader is polled every iteration until it has: :meth:`ReferenceReader.
        require`), that answer's marks become ready bounds. Each answer is judged by its own
        target, so a busy table does not hold payments back behind newer answers.
        ``wait_s``: wait up to this long for the newest question (the one asked for the
        payments just polled). Returns the time waited."""
        waited = 0.0
        if wait_s > 0 and self._in_flight:
            t0 = time.perf_counter()
            wait([self._in_flight[-1][0]], timeout=wait_s)
            waited = time.perf_counter() - t0
        self._collect()
        if not self._answered:
            return waited
        reader = self._reader
        applied = reader.positions()
        hw: dict[TopicPartition, int] | None = None
        ready = self._ready
        waiting: deque[list[Any]] = deque(maxlen=MAX_ANSWERS)
        for answer in self._answered:
            target, marks, raised = answer
            if not _reached(applied, target):
                waiting.append(answer)
                continue
            if not raised:
                if hw is None:
                    hw = reader.highwaters()
                target = answer[0] = {tp: max(end, hw.get(tp, 0)) for tp, end in target.items()}
                answer[2] = True
                reader.require(target)
                if not _reached(applied, target):
                    waiting.append(answer)
                    continue
            for p, mark in marks.items():
                if mark > ready.get(p, -1):
                    ready[p] = mark
        self._answered = waiting
        return waited

    def below(self, partition: int) -> int:
        """Payments of ``partition`` below this offset may pass (-1: none yet)."""
        return self._ready.get(partition, -1)

    def in_flight(self) -> int:
        return len(self._in_flight)

    def _collect(self) -> None:
        """Every answer back, in any order (each is judged on its own)."""
        if not any(future.done() for future, _ in self._in_flight):
            return
        still: deque[tuple[Future[Mapping[TopicPartition, int]], dict[int, int]]] = deque()
        hw = self._reader.highwaters()
        for future, marks in self._in_flight:
            if not future.done():
                still.append((future, marks))
                continue
            if future.cancelled():
                continue
            # a Kafka error ends the session (as the blocking request did)
            ends = future.result()
            target = {tp: max(end if end is not None else 0, hw.get(tp, 0))
                      for tp, end in ends.items()}
            self._reader.require(target)  # caught_up() is False (the reader polled) until met
            self._answered.append([target, marks, False])
        self._in_flight = still


def _reached(applied: Mapping[TopicPartition, int], target: Mapping[TopicPartition, int]) -> bool:
    return all(applied.get(tp, 0) >= end for tp, end in target.items())
