"""The case store as a projection of the topics: its own consumer group, batched, idempotent.

It reads ``payments.scored``, ``logins``, ``accounts`` and ``model.info`` (the group is
``CANHGIAC_SINK_GROUP_ID``; several projections in one group share the partitions) and, for
each poll, commits in this order:

1. decode the records; one that does not decode becomes a dead letter (``payments.scored``,
   ``model.info``) or is counted as the scorer's rejection (``logins``, ``accounts``, and a
   login dated more than ``max_clock_skew_s`` ahead of its record's timestamp);
2. write the batch into the case store in ONE transaction (idempotent, see
   :meth:`serving.store.CaseStore.write_batch`). The store locked, full or down: retry the
   same batch with backoff (one warning when it starts, one line when it ends, a metric
   meanwhile) — nothing is committed and nothing is lost. A record the store refuses
   (integrity or data error) is isolated and becomes a dead letter; the rest is written;
3. send the dead letters to ``payments.dlq`` and wait for the broker's acks;
4. commit the consumer offsets (after the store's commit: at least once; a replay writes
   nothing new).

Every few seconds it measures the lag (high watermark − position) and watches for stalled
partitions (:mod:`serving.stall`). Kafka down: it reconnects with backoff and the API keeps
serving. ``catch_up()`` (``canhgiac sink --once``) reads every partition up to the end
offsets read at start and returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError
from kafka.structs import OffsetAndMetadata
from sqlalchemy.exc import DataError, IntegrityError, StatementError

from features.events import Account, Login, Rejection, decode
from models.model_info import ModelInfo, decode_model_info
from models.scored import ScoredPayment, decode_scored
from serving.projection_status import (
    KAFKA_DOWN,
    RUNNING,
    STOPPED,
    STORE_DOWN,
    ProjectionMetrics,
    ProjectionStatus,
)
from serving.stall import StallWatch
from serving.store import CaseStore

log = logging.getLogger(__name__)

SCORED, LOGINS, ACCOUNTS, MODEL_INFO, DLQ = (
    "payments.scored", "logins", "accounts", "model.info", "payments.dlq")
INPUTS = (SCORED, LOGINS, ACCOUNTS, MODEL_INFO)
POLL_TIMEOUT_MS = 500
GATHER_S = 0.2
WATCH_INTERVAL_S = 2.0
DLQ_TIMEOUT_S = 30.0
REFUSED = "case store refused it"
LOGGED_DEAD_LETTERS = 5  # per batch; the rest in one line (all of them are in the topic)
BOOTSTRAP_TIMEOUT_MS = 5_000  # Kafka unreachable at start: fail the session, retry later
KAFKA_TIMEOUT_MS = 10_000  # offset queries and commits: a broker that does not answer fails
# the session (reconnect with backoff) instead of blocking it
# errors that belong to one record, not to the store: that record is dead-lettered
RECORD_ERRORS = (IntegrityError, DataError, ValueError, TypeError, OverflowError)


class ProjectionSettings(Protocol):
    """What the projection needs from the settings (``canhgiac.settings.Settings``)."""

    @property
    def sink_group_id(self) -> str: ...
    @property
    def sink_batch_size(self) -> int: ...
    @property
    def sink_fetch_max_wait_ms(self) -> int: ...
    @property
    def sink_stall_timeout_s(self) -> float: ...
    @property
    def sink_retry_max_s(self) -> float: ...
    @property
    def max_clock_skew_s(self) -> float: ...
    @property
    def max_poll_interval_ms(self) -> int: ...
    @property
    def session_timeout_ms(self) -> int: ...
    def topic(self, name: str) -> str: ...
    def kafka_client_config(self) -> dict[str, object]: ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record for ``payments.dlq``: the raw bytes plus why (the scorer's header layout)."""

    kind: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    field: str
    reason: str

    def headers(self) -> list[tuple[str, bytes]]:
        return [("reason", self.reason.encode()), ("field", self.field.encode()),
                ("kind", self.kind.encode()), ("source_topic", self.topic.encode()),
                ("source_partition", str(self.partition).encode()),
                ("source_offset", str(self.offset).encode())]


@dataclass(slots=True)
class Batch:
    """One poll, decoded. Items keep their source record for a dead letter."""

    accounts: list[tuple[Account, Any]] = field(default_factory=list)
    logins: list[tuple[Login, Any]] = field(default_factory=list)
    scored: list[tuple[ScoredPayment, Any]] = field(default_factory=list)
    model_info: tuple[ModelInfo, Any] | None = None
    dead_letters: list[DeadLetter] = field(default_factory=list)
    rejected: Tally[str] = field(default_factory=Tally)  # kind -> contract rejections
    offsets: dict[TopicPartition, int] = field(default_factory=dict)  # next offset to read

    def items(self) -> int:
        return (len(self.accounts) + len(self.logins) + len(self.scored)
                + (self.model_info is not None))


@dataclass(frozen=True, slots=True)
class CatchUp:
    records: int
    written: int
    dead_letters: int
    seconds: float


class Stopped(Exception):
    """The projection was asked to stop while it waited (nothing committed since)."""


class Projection:
    def __init__(self, settings: ProjectionSettings, store: CaseStore,
                 metrics: ProjectionMetrics | None = None,
                 status: ProjectionStatus | None = None,
                 prepare: Callable[[], None] | None = None) -> None:
        """``prepare`` runs at the start of every Kafka session (the composition root creates
        missing topics with it)."""
        self.settings = settings
        self.prepare = prepare
        self.store = store
        self.metrics = metrics or ProjectionMetrics()
        self.status = status or ProjectionStatus()
        self.kinds = {settings.topic(k): k for k in INPUTS}
        self.dlq_topic = settings.topic(DLQ)
        self.watch = StallWatch(settings.sink_stall_timeout_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._producer: KafkaProducer | None = None
        self._store_failing = False
        self.written = 0  # records written into the store by this projection
        self.dead_lettered = 0
        self.assigned = 0  # partitions assigned to it (following the group)

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        self._stop.set()

    def start(self) -> threading.Thread:
        """Run :meth:`run_forever` on a daemon thread (``canhgiac serve``)."""
        self._thread = threading.Thread(target=self.run_forever, name="canhgiac-projection",
                                        daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout_s: float = 10.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    def run_forever(self) -> None:
        """Follow the topics in the consumer group until :meth:`stop`; Kafka failures
        reconnect with backoff (one warning per kind of failure, not a traceback loop)."""
        delay, last_error = 0.5, ""
        while not self._stop.is_set():
            try:
                self._follow()
                delay, last_error = 0.5, ""
            except Stopped:
                break
            except Exception as exc:  # noqa: BLE001 - the API must outlive any Kafka failure
                error = type(exc).__name__
                self.metrics.kafka_errors.labels(error=error).inc()
                self.status.set(KAFKA_DOWN, lag=None)
                if error != last_error:
                    log.warning("case-store projection: Kafka session failed; reconnecting "
                                "with backoff", extra={"error": repr(exc)[:300]})
                    last_error = error
                self._stop.wait(delay)
                delay = min(delay * 2, self.settings.sink_retry_max_s)
        self._close_producer()
        self.status.set(STOPPED)

    # ------------------------------------------------------------------ sessions
    def _consumer(self, **extra: Any) -> KafkaConsumer:
        s = self.settings
        return KafkaConsumer(
            **s.kafka_client_config(), group_id=s.sink_group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=s.sink_batch_size, fetch_max_wait_ms=s.sink_fetch_max_wait_ms,
            max_poll_interval_ms=s.max_poll_interval_ms,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(100, s.session_timeout_ms // 3),
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS, **extra)

    def _follow(self) -> None:
        if self.prepare is not None:
            self.prepare()
        consumer = self._consumer()
        try:
            joined = threading.Event()
            consumer.subscribe(list(self.kinds), listener=_Joined(joined))
            self.status.set(RUNNING)
            next_watch = 0.0
            while not self._stop.is_set():
                self._step(consumer)
                if time.monotonic() >= next_watch and joined.is_set():
                    parts = consumer.assignment()
                    self.assigned = len(parts)
                    self._watch(consumer, parts)
                    next_watch = time.monotonic() + WATCH_INTERVAL_S
        finally:
            consumer.close(autocommit=False)

    def catch_up(self) -> CatchUp:
        """Read every partition of the inputs from the group's committed offset (or the
        beginning) up to the end offsets read now, write, commit, return."""
        start = time.monotonic()
        if self.prepare is not None:
            self.prepare()
        consumer = self._consumer()
        records, written0, dead0 = 0, self.written, self.dead_lettered
        try:
            parts = [TopicPartition(t, p) for t in self.kinds
                     for p in sorted(consumer.partitions_for_topic(t) or ())]
            consumer.assign(parts)
            for tp in parts:
                committed = consumer.committed(tp)
                if committed is None:
                    consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, committed)
            ends = consumer.end_offsets(parts, timeout_ms=KAFKA_TIMEOUT_MS) if parts else {}
            goals: dict[TopicPartition, int] = {}
            self.status.set(RUNNING)
            next_watch = time.monotonic() + WATCH_INTERVAL_S
            while not self._stop.is_set():
                left = {tp for tp in parts if not _reached(consumer, tp, ends[tp], goals)}
                if not left:
                    break
                records += self._step(consumer)
                if time.monotonic() >= next_watch:
                    self._watch(consumer, left)
                    next_watch = time.monotonic() + WATCH_INTERVAL_S
        finally:
            consumer.close(autocommit=False)
            self._close_producer()
        return CatchUp(records, self.written - written0, self.dead_lettered - dead0,
                       time.monotonic() - start)

    # ------------------------------------------------------------------ one step
    def _step(self, consumer: KafkaConsumer) -> int:
        polled = self._gather(consumer)
        if not polled:
            return 0
        t0 = time.monotonic()
        batch = self.decode(polled)
        batch.dead_letters.extend(self._write(batch))  # 2. (retries until written or stop)
        self._send_dead_letters(batch.dead_letters)  # 3.
        try:  # 4.
            consumer.commit({tp: OffsetAndMetadata(off, "", -1)
                             for tp, off in batch.offsets.items()}, timeout_ms=KAFKA_TIMEOUT_MS)
        except CommitFailedError as exc:  # a rebalance: the next owner replays (idempotent)
            log.warning("offsets not committed (rebalance); the batch will be replayed",
                        extra={"error": repr(exc)[:300]})
        self._count(batch)
        self.metrics.batch_seconds.observe(time.monotonic() - t0)
        return sum(len(recs) for recs in polled.values())

    def _gather(self, consumer: KafkaConsumer) -> dict[TopicPartition, list[Any]]:
        """One batch: polls until ``sink_batch_size`` records or ``GATHER_S`` after the first
        (a store transaction's fixed cost, and the per-account risk refresh, are paid once
        per batch; a poll alone stops at the fetch's byte limits)."""
        size = self.settings.sink_batch_size
        polled: dict[TopicPartition, list[Any]] = {}
        n, first = 0, None
        while n < size:
            got = consumer.poll(timeout_ms=POLL_TIMEOUT_MS if first is None else 0,
                                max_records=size - n)
            for tp, recs in got.items():
                polled.setdefault(tp, []).extend(recs)
                n += len(recs)
            if first is None:
                if not got:
                    break
                first = time.monotonic()
            elif not got:
                if time.monotonic() - first >= GATHER_S:
                    break
                time.sleep(0.01)  # fetches are in flight: give the IO thread the GIL
        return polled

    def decode(self, polled: dict[TopicPartition, list[Any]]) -> Batch:
        """1. Decode one poll (never raises)."""
        batch = Batch()
        newest_info: tuple[ModelInfo, Any] | None = None
        skew = self.settings.max_clock_skew_s
        for tp, recs in polled.items():
            kind = self.kinds.get(tp.topic, "")
            for rec in recs:
                batch.offsets[tp] = rec.offset + 1
                item = _decode(kind, rec.value)
                if isinstance(item, Rejection):
                    if kind in (LOGINS, ACCOUNTS):  # the scorer dead-letters these
                        batch.rejected[kind] += 1
                    else:
                        batch.dead_letters.append(_dead(kind, rec, item.field, item.reason))
                elif isinstance(item, ScoredPayment):
                    batch.scored.append((item, rec))
                elif isinstance(item, Login):
                    if _from_the_future(item.t, rec.timestamp, skew):
                        batch.rejected[LOGINS] += 1  # the scorer dead-letters it too
                    else:
                        batch.logins.append((item, rec))
                elif isinstance(item, Account):
                    batch.accounts.append((item, rec))
                elif isinstance(item, ModelInfo) and (
                        newest_info is None or item.loaded_at >= newest_info[0].loaded_at):
                    newest_info = (item, rec)
        batch.model_info = newest_info
        return batch

    def _write(self, batch: Batch) -> list[DeadLetter]:
        """2. Write, retrying while the store fails; dead letters of refused records."""
        delay = 0.2
        while True:
            try:
                dead = self._write_once(batch)
            except Exception as exc:  # noqa: BLE001 - locked, full, down: wait and retry
                self._store_failed(exc)
                if self._stop.wait(delay):
                    raise Stopped from None
                delay = min(delay * 2, self.settings.sink_retry_max_s)
                continue
            if self._store_failing:
                self._store_failing = False
                self.metrics.store_up.set(1)
                self.status.set(RUNNING)
                self.watch.forget()  # the pause was ours, not a stalled fetch
                log.warning("case store writable again; the projection goes on")
            return dead

    def _write_once(self, batch: Batch) -> list[DeadLetter]:
        try:
            self.store.write_batch(
                accounts=[a for a, _ in batch.accounts], logins=[lg for lg, _ in batch.logins],
                scored=[s for s, _ in batch.scored],
                model_info=batch.model_info[0] if batch.model_info else None)
            self.written += batch.items()
            return []
        except RECORD_ERRORS + (StatementError,) as exc:
            if not _is_record_error(exc):
                raise
        return self._write_each(batch)  # find the record(s) the store refuses

    def _write_each(self, batch: Batch) -> list[DeadLetter]:
        dead: list[DeadLetter] = []
        calls: list[tuple[str, Any, Callable[[], object]]] = []
        for a, rec in batch.accounts:
            calls.append((ACCOUNTS, rec, lambda a=a: self.store.write_batch(accounts=[a])))
        for lg, rec in batch.logins:
            calls.append((LOGINS, rec, lambda lg=lg: self.store.write_batch(logins=[lg])))
        for s, rec in batch.scored:
            calls.append((SCORED, rec, lambda s=s: self.store.write_batch(scored=[s])))
        if batch.model_info is not None:
            info, rec = batch.model_info
            calls.append((MODEL_INFO, rec,
                          lambda info=info: self.store.write_batch(model_info=info)))
        for kind, rec, call in calls:
            try:
                call()
                self.written += 1
            except RECORD_ERRORS + (StatementError,) as exc:
                if not _is_record_error(exc):
                    raise
                dead.append(_dead(kind, rec, "", f"{REFUSED}: "
                                                 f"{type(exc).__name__}: {str(exc)[:300]}"))
        return dead

    def _store_failed(self, exc: Exception) -> None:
        self.metrics.store_errors.labels(error=type(exc).__name__).inc()
        self.metrics.store_up.set(0)
        self.status.set(STORE_DOWN)
        if not self._store_failing:
            self._store_failing = True
            log.warning("case store not writable (locked, full or down); the projection "
                        "retries the batch with backoff and commits nothing meanwhile",
                        extra={"error": repr(exc)[:300]})

    def _send_dead_letters(self, dead: list[DeadLetter]) -> None:
        """3. To ``payments.dlq``, acknowledged before the offsets are committed."""
        if not dead:
            return
        if self._producer is None:
            self._producer = KafkaProducer(**self.settings.kafka_client_config(), acks="all",
                                           retries=5, linger_ms=5,
                                           bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS)
        futures = [self._producer.send(self.dlq_topic, key=d.key, value=d.value,
                                       headers=d.headers()) for d in dead]
        self._producer.flush(timeout=DLQ_TIMEOUT_S)
        for f in futures:
            f.get(timeout=DLQ_TIMEOUT_S)  # raises: the session restarts, the batch replays
        for d in dead[:LOGGED_DEAD_LETTERS]:
            log.warning("record dead-lettered by the case-store projection", extra={
                "topic": d.topic, "partition": d.partition, "offset": d.offset,
                "field": d.field, "reason": d.reason[:300]})
        if len(dead) > LOGGED_DEAD_LETTERS:
            log.warning("more records of this batch dead-lettered (see payments.dlq)",
                        extra={"count": len(dead) - LOGGED_DEAD_LETTERS})
        self.dead_lettered += len(dead)

    def _close_producer(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None

    # ------------------------------------------------------------------ lag and stalls
    def _watch(self, consumer: KafkaConsumer, parts: set[TopicPartition]) -> None:
        if not parts:  # in the group, with no partition (more sinks than partitions)
            for kind in INPUTS:
                self.metrics.lag.labels(topic=kind).set(0)
            self.status.set(lag=0)
            return
        ends = consumer.end_offsets(list(parts), timeout_ms=KAFKA_TIMEOUT_MS)
        now = time.monotonic()
        lag: Tally[str] = Tally()
        for tp in parts:
            position = consumer.position(tp)
            end = ends.get(tp)
            if end is None or position is None:
                continue
            end = max(end, consumer.highwater(tp) or 0)  # see _reached
            lag[self.kinds.get(tp.topic, tp.topic)] += max(0, end - position)
            stall = self.watch.observe(tp, position, end, now)
            if stall is not None:
                self.metrics.stalls.labels(topic=tp.topic, partition=str(tp.partition)).inc()
                log.warning("partition stalled: records wait but the position does not move; "
                            "re-seeking to re-establish the fetch", extra={
                                "topic": tp.topic, "partition": tp.partition,
                                "position": position, "high_watermark": end,
                                "high_watermark_then": stall.end_then,
                                "seconds": round(stall.seconds, 1)})
                if tp in consumer.paused():
                    consumer.resume(tp)
                consumer.seek(tp, position)
        self.watch.retain(set(parts))
        for kind in INPUTS:
            self.metrics.lag.labels(topic=kind).set(lag.get(kind, 0))
        self.status.set(lag=sum(lag.values()))

    def _count(self, batch: Batch) -> None:
        m = self.metrics.records
        refused = Tally(d.kind for d in batch.dead_letters if d.reason.startswith(REFUSED))
        decoded = {SCORED: len(batch.scored), LOGINS: len(batch.logins),
                   ACCOUNTS: len(batch.accounts), MODEL_INFO: int(batch.model_info is not None)}
        for kind, n in decoded.items():
            if n - refused[kind] > 0:
                m.labels(topic=kind, outcome="written").inc(n - refused[kind])
        for kind, n in batch.rejected.items():
            m.labels(topic=kind, outcome="rejected").inc(n)
        for d in batch.dead_letters:
            m.labels(topic=d.kind, outcome="dead_letter").inc()


def _from_the_future(t: float, timestamp_ms: int | None, skew_s: float) -> bool:
    """Dated more than ``skew_s`` ahead of its Kafka record timestamp (the wall clock when the
    record has none): kept out of the store, like the scorer keeps it out of every clock (a
    login dated 2099 would hide an account's real foreign logins)."""
    now = timestamp_ms / 1000.0 if timestamp_ms and timestamp_ms > 0 else time.time()
    return t > now + skew_s


class _Joined(ConsumerRebalanceListener):
    """Sets ``joined`` once the group gave this consumer its (possibly empty) assignment: the
    lag is unknown before, not 0."""

    def __init__(self, joined: threading.Event) -> None:
        self.joined = joined

    def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.joined.set()


def _reached(consumer: KafkaConsumer, tp: TopicPartition, end: int,
             goals: dict[TopicPartition, int]) -> bool:
    """Whether ``tp`` is read up to the end offset asked at start. Some brokers (the bundled
    Tansu) answer ListOffsets with the newest batch's base offset + 1, so the goal becomes the
    high watermark of the partition's first fetch when that is larger."""
    if tp not in goals:
        hw = consumer.highwater(tp)
        if hw is None:  # not fetched yet: only an empty partition is surely done
            return end == 0
        goals[tp] = max(end, hw)
    return bool(consumer.position(tp) >= goals[tp])


def _decode(kind: str, value: bytes | None) -> Any:
    try:
        if kind == SCORED:
            return decode_scored(value)
        if kind == MODEL_INFO:
            return decode_model_info(value)
        return decode(kind, value)
    except Exception as exc:  # noqa: BLE001 - a decoder that raises must not stop the loop
        return Rejection(kind, "", f"{type(exc).__name__}: {str(exc)[:200]}", b"")


def _dead(kind: str, rec: Any, field_name: str, reason: str) -> DeadLetter:
    return DeadLetter(kind, rec.topic, rec.partition, rec.offset, rec.key, rec.value,
                      field_name, reason)


def _is_record_error(exc: BaseException) -> bool:
    """A StatementError wrapping a Python error about the values is the record's fault; one
    wrapping an operational DB-API error is the store's."""
    if isinstance(exc, IntegrityError | DataError | ValueError | TypeError | OverflowError):
        return True
    if isinstance(exc, StatementError):
        return isinstance(exc.orig, ValueError | TypeError | OverflowError)
    return False
