"""The global tables (``labels``, ``accounts``, ``watchlist``, ``confirmed_payments``): read
in full by every scorer, outside the group.

A plain consumer (no group) is assigned every partition of both topics from the beginning and
feeds one shared :class:`~features.engine.ReferenceData`. ``caught_up()`` says whether
everything up to the high-water marks has been applied: the aligner holds payments back until
then, so a payment never sees reference data that an uninterrupted scorer would have had.
The high-water marks the client knows come from this reader's last fetch, which can be older
than a payment just polled: the log-end offsets are asked *after* the payment's poll
(:class:`ReadyPayments`, on a helper thread, never waited for), so that a payment is scored only
after every account profile and label produced before it was polled.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from features.events import Account, ConfirmedPayment, Label, Rejection, WatchEntry, decode
from streaming.handler import DeadLetter, RawRecord

if TYPE_CHECKING:
    from features.engine import ReferenceData

log = logging.getLogger(__name__)


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
        # log-end offsets are asked on a connection of their own: a long-polling fetch in flight
        # on the reader's connection would hold the request back (answered in order)
        self._probe = KafkaConsumer(**client_config, group_id=None, enable_auto_commit=False)
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
        log-end offsets :meth:`confirm` last asked, is applied."""
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

    def end_offsets(self) -> dict[TopicPartition, int]:
        """Ask the tables' log-end offsets now (one ListOffsets request, on the probe's own
        connection; safe to call from a helper thread while the loop goes on)."""
        return dict(self._probe.end_offsets(self._tps))

    def require(self, ends: Mapping[TopicPartition, int]) -> None:
        """Until everything up to ``ends`` is applied, :meth:`caught_up` is False."""
        for tp, end in ends.items():
            if end is not None and end > self._required.get(tp, -1):
                self._required[tp] = end

    def confirm(self) -> bool:
        """Ask the log-end offsets now and say whether everything up to them is applied;
        until it is, :meth:`caught_up` is False."""
        self.require(self.end_offsets())
        return self.caught_up()

    def close(self) -> None:
        self._probe.close(autocommit=False)
        self._consumer.close(autocommit=False)


MAX_IN_FLIGHT = 2  # log-end questions asked and not answered yet (a third would only queue)


class Tables(Protocol):
    """What :class:`ReadyPayments` needs of a :class:`ReferenceReader`."""

    def end_offsets(self) -> Mapping[TopicPartition, int]: ...

    def require(self, ends: Mapping[TopicPartition, int]) -> None: ...

    def caught_up(self) -> bool: ...


class ReadyPayments:
    """Which held payments the reference tables are ready for, without waiting for an answer.

    After a poll that brought payments (or with payments held), the tables' log-end offsets
    are asked on a helper thread, marked with each payments partition's position after that
    poll. Once an answer is back, the reader must apply everything up to it
    (:meth:`ReferenceReader.require`); when it has, the payments below the answer's marks may
    pass: every profile, label or listing produced before them was in the log when the question
    was asked. The loop never blocks on the round trip: the answer usually comes back while the
    next poll waits, and the payment waits for that poll anyway for its logins
    (:mod:`streaming.ends`). Before this, the loop waited for each answer inside the batch:
    27 % of the main thread's time at 1,000 payments/s in py-spy.

    ``ask`` runs on ``executor``; :meth:`ask`, :meth:`update` and :meth:`below` on the loop.
    """

    def __init__(self, reader: Tables, executor: Executor) -> None:
        self._reader = reader
        self._executor = executor
        self._in_flight: deque[tuple[Future[Mapping[TopicPartition, int]], dict[int, int]]] = (
            deque())
        self._answered: list[dict[int, int]] = []  # marks whose answer is required, not met
        self._ready: dict[int, int] = {}  # partition -> payments below this offset may pass

    def ask(self, marks: dict[int, int]) -> bool:
        """Ask the log-end offsets; ``marks``: each payments partition's position after the
        poll just made. False when enough questions are in flight (a later one covers these)."""
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            return False
        self._in_flight.append((self._executor.submit(self._reader.end_offsets), marks))
        return True

    def in_flight(self) -> int:
        return len(self._in_flight)

    def update(self) -> None:
        """Take the answers that are back; once the reader has applied everything up to them,
        their marks become ready. Raises what a question raised (the session restarts, as a
        blocking call did)."""
        while self._in_flight and self._in_flight[0][0].done():
            future, marks = self._in_flight.popleft()
            self._reader.require(future.result())
            self._answered.append(marks)
        if self._answered and self._reader.caught_up():
            for marks in self._answered:
                for p, offset in marks.items():
                    if offset > self._ready.get(p, -1):
                        self._ready[p] = offset
            self._answered.clear()

    def below(self, partition: int) -> int:
        """Payments of ``partition`` below this offset may pass (-1: none yet)."""
        return self._ready.get(partition, -1)
