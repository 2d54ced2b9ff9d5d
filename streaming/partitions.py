"""Partition ownership: assignment (restore or warm-up, then seek), revocation, checkpoints, lag
and stalls of the partitions a scorer owns.

Rebalance callbacks run inside ``consumer.poll`` on kafka-python's IO thread while the loop
waits for the poll: revocation checkpoints the partitions being given up; assignment pauses the
new partitions, and the loop restores and seeks them right after the poll
(:meth:`Partitions.apply_assignments`).

A checkpoint commits in this order, each step only after the previous one succeeded
(:meth:`Partitions.checkpoint`, and :meth:`Partitions.tick` in the loop):

1. **snapshot** — each partition's feature state with the offsets of its first payment and login
   not yet applied (and the first payment offset to emit for, during a warm-up); every output of
   an event the state holds was sent before (the loop emits before it ticks);
2. **outputs durable** — flush the producer and check every delivery, so no output of an event
   the state holds can be lost;
3. **checkpoint durable** — chunks, then the manifest that names them
   (:class:`streaming.checkpoint.CheckpointStore`);
4. **group offsets** — commit the consumer group's offsets to the checkpoint's (main thread
   only; the loop's checkpoints send the commit without waiting for its answer, revocations and
   the final checkpoint wait for it; a restart resumes from the checkpoint, the group offsets
   are only its fallback);
5. **reference dead letters** — remember how far the global tables' rejects were sent.

In the loop the checkpoints stay off its critical path: when one is due, the owned partitions
are checkpointed one after another; a partition's snapshot is spread over iterations (at most
:data:`PREPARE_BUDGET_S` of serialising changed accounts per iteration,
:meth:`features.engine.FeatureEngine.prepare_snapshot`; the snapshot itself then joins the
frames and serialises the few accounts changed since), steps 2 and 3 run on a helper thread
while the loop goes on, and steps 4 and 5 follow on the loop's thread once it is durable.
Revocation and closing checkpoint synchronously, after any write in flight.

A due round skips a partition whose newest durable checkpoint is still exact: no payment or
login applied since (the same resume offsets), the same warm-up point and model version, and no
account changed, and the round evicted no idle account. An idle scorer therefore writes nothing
every interval, where it used to write its whole state again; such a round still flushes the
outputs and commits how far the reference tables' dead letters were sent (steps 2 and 5).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from features.engine import FeatureEngine, ReferenceData
from features.vector import FEATURE_VERSION
from streaming.align import LOGINS, PAYMENTS
from streaming.checkpoint import Checkpoint, CheckpointStore
from streaming.config import ScorerSettings
from streaming.handler import Handler
from streaming.stalls import StallWatch

log = logging.getLogger(__name__)

KINDS = (PAYMENTS, LOGINS)
# A snapshot is prepared in chunks of FRAME_CHUNK changed accounts for at most PREPARE_BUDGET_S
# per loop iteration (a frame takes ~18 µs alone, but each compresses with zlib, which hands
# the GIL to the process's other threads: measured 250-400 µs each in a busy scorer, so a
# 500-account budget stalled the loop 124-205 ms), until at most FRAME_CHUNK are left for the
# snapshot itself to serialise
FRAME_CHUNK = 8
PREPARE_BUDGET_S = 0.015
MAX_PREPARE_ITERATIONS = 5000  # then the snapshot is taken whatever is left


class Partitions:
    """The partitions one session owns, their restore and their checkpoints."""

    def __init__(self, s: ScorerSettings, consumer: KafkaConsumer, handler: Handler,
                 ref: ReferenceData, store: CheckpointStore, topics: dict[str, str],
                 metrics: Any, flush_outputs: Callable[[], None],
                 commit_reference: Callable[[Any], None], model_version: Callable[[], str | None],
                 reference_positions: Callable[[], Any] = lambda: None,
                 ) -> None:
        self.s = s
        self.consumer = consumer
        self.handler = handler
        self.ref = ref
        self.store = store
        self.topics = topics
        self.metrics = metrics
        self.flush_outputs = flush_outputs
        self.commit_reference = commit_reference
        self.reference_positions = reference_positions
        self.model_version = model_version
        self.pending: set[int] = set()  # assigned in a callback, restored after the poll
        self.parked: dict[int, tuple[str, FeatureEngine]] = {}  # revoked: state kept in memory
        self.stalls = StallWatch(s.stall_after_s, self._refetch)
        self.last_checkpoint = time.monotonic()
        self._queue: list[int] = []  # partitions of the round being checkpointed
        self.tick_steps: list[tuple[str, float]] = []  # the last tick's steps (seconds)
        self._prepared = 0  # iterations spent preparing the head of the queue's snapshot
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="canhgiac-checkpoint")
        self._writing: Future[list[Checkpoint]] | None = None
        self._ref_positions: Any = None  # the reference tables' positions the write covers
        self._round_wrote = False  # a partition of the current round was written
        self._round_evicted = False  # the current round evicted idle accounts
        # partition -> what its newest durable checkpoint holds (see _unchanged)
        self._durable: dict[int, tuple[Any, ...]] = {}

    def tp(self, kind: str, p: int) -> TopicPartition:
        return TopicPartition(self.topics[kind], p)

    # ------------------------------------------------------------------ rebalance callbacks
    def assigned(self, tps: list[TopicPartition]) -> None:
        self.consumer.pause(*tps)  # fetch nothing before the restore's seek
        self.pending.update(tp.partition for tp in tps)

    def revoke(self, partitions: set[int], checkpoint: bool) -> None:
        """Give partitions up (called on kafka-python's IO thread during poll/close)."""
        self.pending -= partitions
        owned = sorted(p for p in partitions if p in self.handler.engines)
        if not owned:
            return
        if checkpoint:
            try:
                written = self.checkpoint(owned, commit=False)  # after any write in flight
                for c in written:
                    self.parked[c.partition] = (c.ckpt_id, self.handler.engines[c.partition])
            except (KafkaError, TimeoutError) as exc:
                log.error("checkpoint on revocation failed; the next owner replays more",
                          extra={"partitions": owned, "error": repr(exc)})
        for p in owned:
            self._durable.pop(p, None)
            self.handler.close_partition(p)
            for kind in KINDS:
                self.stalls.forget(self.tp(kind, p))
        log.info("partitions revoked", extra={"partitions": owned, "checkpointed": checkpoint})

    # ------------------------------------------------------------------ assignment
    def apply_assignments(self) -> set[int]:
        """Restore the newly assigned partitions and seek (main thread). Per partition:

        1. its newest checkpoint of this group, restored: continue right after it;
        2. else (none, or unusable: another feature version, missing chunks) a start point —
           the unusable checkpoint's offsets, else the group's committed offsets, else
           ``start_from`` (``earliest``: the log start; ``latest``: the log end) — and the
           state is warmed by replaying the ``warmup_lookback_s`` of history before it, with
           no outputs for those payments."""
        parts = sorted(self.pending)
        self.pending.clear()
        self.settle()  # the store's reader and bookkeeping are used below
        checkpoints = self.store.restore(parts)
        tps = [self.tp(k, p) for p in parts for k in KINDS]
        begin = self.consumer.beginning_offsets(tps)
        end: dict[TopicPartition, int] | None = None
        warm_from: dict[TopicPartition, Any] | None = None
        for p in parts:
            ckpt = checkpoints.get(p)
            engine = self._restored(p, ckpt)
            offsets: dict[str, int] = {}
            if engine is not None:
                assert ckpt is not None
                self._durable[p] = _held(ckpt)
                for kind in KINDS:
                    tp = self.tp(kind, p)
                    saved = ckpt.payments_offset if kind == PAYMENTS else ckpt.logins_offset
                    offsets[kind] = max(begin[tp], saved) if saved is not None else begin[tp]
                emit_from, how = ckpt.emit_from, "checkpoint"
            else:
                self._durable.pop(p, None)
                engine = FeatureEngine(self.ref, allowed_lateness_s=self.s.allowed_lateness_s)
                if warm_from is None:
                    end = self.consumer.end_offsets(tps)
                    warm_from = self._warm_from(tps)
                assert end is not None
                start, how = self._start_point(p, ckpt, begin, end)
                for kind in KINDS:
                    tp = self.tp(kind, p)
                    w = warm_from.get(tp)
                    w = start[kind] if w is None else w.offset
                    offsets[kind] = max(begin[tp], min(w, start[kind]))
                emit_from = start[PAYMENTS]
            for kind in KINDS:
                self.consumer.seek(self.tp(kind, p), offsets[kind])
            self.handler.open_partition(p, engine, offsets[PAYMENTS], offsets[LOGINS],
                                        emit_from=emit_from)
            log.info("partition assigned", extra={
                "partition": p, "start": how, "checkpoint": ckpt.ckpt_id if ckpt else None,
                "payments_offset": offsets[PAYMENTS], "logins_offset": offsets[LOGINS],
                "emit_from": self.handler.emit_from.get(p)})
        self.consumer.resume(*tps)
        self.metrics.partitions.set(len(self.handler.aligners))
        return set(parts)

    def _restored(self, p: int, ckpt: Checkpoint | None) -> FeatureEngine | None:
        parked = self.parked.pop(p, None)
        if ckpt is None:
            return None
        if parked is not None and parked[0] == ckpt.ckpt_id:
            return parked[1]
        try:
            return FeatureEngine.restore(ckpt.state, self.ref)
        except Exception as exc:  # noqa: BLE001 - another feature version, a corrupt snapshot
            self.metrics.checkpoints_ignored.inc()
            log.warning("checkpoint not usable (%s); rebuilding the state from the retained "
                        "input", exc, extra={"partition": p, "checkpoint": ckpt.ckpt_id})
            return None

    def _start_point(self, p: int, ckpt: Checkpoint | None, begin: dict[TopicPartition, int],
                     end: dict[TopicPartition, int]) -> tuple[dict[str, int], str]:
        """Where a partition without a usable checkpoint starts emitting outputs."""
        tps = {kind: self.tp(kind, p) for kind in KINDS}
        if ckpt is not None and ckpt.payments_offset is not None:
            return {PAYMENTS: ckpt.payments_offset,
                    LOGINS: ckpt.logins_offset or begin[tps[LOGINS]]}, "unusable checkpoint"
        committed = {kind: self.consumer.committed(tp) for kind, tp in tps.items()}
        if committed[PAYMENTS] is not None:
            return {kind: committed[kind] if committed[kind] is not None else begin[tp]
                    for kind, tp in tps.items()}, "group offset"
        if self.s.start_from == "earliest":
            return {kind: begin[tp] for kind, tp in tps.items()}, "earliest"
        return {kind: self._log_end(tp, end[tp]) for kind, tp in tps.items()}, "latest"

    def _log_end(self, tp: TopicPartition, listed: int) -> int:
        """The log-end offset now. Some Kafka-protocol brokers answer ListOffsets(latest) with
        the newest batch's base offset + 1, so fetch from just before it: the fetch response's
        high-water mark is exact (read with the checkpoint store's idle reader)."""
        probe = self.store.reader
        probe.assign([tp])
        probe.seek(tp, max(0, listed - 1))
        deadline = time.monotonic() + 10.0
        while probe.highwater(tp) is None and time.monotonic() < deadline:
            probe.poll(timeout_ms=100, max_records=1)
        return max(listed, probe.highwater(tp) or 0)

    def _warm_from(self, tps: list[TopicPartition]) -> dict[TopicPartition, Any]:
        """Offsets of the first records produced within the warm-up look-back (None where
        there is none; a broker without the lookup: no warm-up)."""
        lookback = self.s.warmup_lookback_s
        if lookback <= 0:
            return {}
        since_ms = max(0, int((time.time() - lookback) * 1000))
        try:
            return dict(self.consumer.offsets_for_times({tp: since_ms for tp in tps}))
        except Exception as exc:  # noqa: BLE001 - an older broker: start without warm-up
            log.warning("offsets by time not available; no warm-up replay",
                        extra={"error": repr(exc)})
            return {}

    # ------------------------------------------------------------------ checkpoints
    def due(self, now: float) -> bool:
        return now - self.last_checkpoint >= self.s.checkpoint_interval_s

    def tick(self, now: float) -> None:
        """The loop's share of checkpointing, once per iteration: finish a write that became
        durable (steps 4-5), then start the next partition's checkpoint of a due round
        (steps 1-2 here, step 3 on the helper thread)."""
        steps = self.tick_steps = []  # (step, seconds): the slow-iteration log shows them
        t = time.perf_counter()
        writing = self._writing
        if writing is not None:
            if not writing.done():
                return
            self._writing = None
            # a failed write fails the session here; the group commit is not waited for (the
            # checkpoint is what a restart resumes from: group offsets are only its fallback)
            self._committed(writing.result(), wait=False, positions=self._ref_positions)
            t = _step(steps, "committed", t)
        if not self._queue:
            if not self.due(now):
                return
            self.last_checkpoint = now
            evicted = self.handler.evict_idle()  # once a round, before its snapshots
            if evicted:
                log.info("idle accounts evicted", extra={"accounts": evicted})
            self._queue = self.handler.partitions()
            self._round_wrote, self._round_evicted = False, evicted > 0
            t = _step(steps, "evict", t)
        while self._queue:
            p = self._queue[0]
            engine = self.handler.engines.get(p)
            if engine is None:
                self._queue.pop(0)
                continue
            if self._prepared == 0 and not self._round_evicted and self._unchanged(p, engine):
                self._queue.pop(0)
                self.metrics.checkpoint_unchanged()
                if not self._queue and not self._round_wrote:
                    # nothing written this round: the reference tables' dead letters still get
                    # flushed and their position committed (steps 2 and 5 alone)
                    self._ref_positions = self.reference_positions()
                    self._writing = self._writer.submit(self._flush_only)
                    return
                continue
            # spread the snapshot: a budget of changed accounts per iteration, until what is
            # left fits one (bounded: an account changing faster than it is serialised would
            # otherwise keep a checkpoint from ever being taken)
            deadline = t + PREPARE_BUDGET_S
            left = engine.prepare_snapshot(FRAME_CHUNK)
            while left > FRAME_CHUNK and time.perf_counter() < deadline:
                left = engine.prepare_snapshot(FRAME_CHUNK)
            t = _step(steps, "prepare", t)
            if left > FRAME_CHUNK and self._prepared < MAX_PREPARE_ITERATIONS:
                self._prepared += 1
                return
            self._queue.pop(0)
            self._prepared = 0
            checkpoints = self._snapshots([p])
            t = _step(steps, "snapshot", t)
            self._round_wrote = True
            self._ref_positions = self.reference_positions()  # what the write's flush covers
            self._writing = self._writer.submit(self._write, checkpoints)
            return

    def settle(self, commit: bool = True) -> None:
        """Wait for a checkpoint write in flight and finish it (before the partitions change
        hands, and before a synchronous checkpoint). ``commit`` False: inside a rebalance
        callback, where the group is not committed to (the checkpoint is what counts)."""
        writing, self._writing = self._writing, None
        if writing is not None:
            written = writing.result()
            if commit:
                self._committed(written, positions=self._ref_positions)

    def checkpoint(self, partitions: list[int], commit: bool) -> list[Checkpoint]:
        """The whole commit, step by step, synchronously (module docstring)."""
        self.settle(commit)
        self.last_checkpoint = time.monotonic()
        self._queue = []
        if not partitions:
            return []
        positions = self.reference_positions()  # before the flush in _write
        checkpoints = self._write(self._snapshots(partitions))
        if commit:
            self._committed(checkpoints, positions=positions)
        return checkpoints

    def _snapshots(self, partitions: list[int]) -> list[Checkpoint]:
        # 1. snapshot
        version = self.model_version()
        return [
            Checkpoint.new(p, self.handler.engines[p].snapshot(),
                           self.handler.resume_offsets(p), version,
                           emit_from=self.handler.emit_from.get(p),
                           feature_version=FEATURE_VERSION)
            for p in partitions
        ]

    def _write(self, checkpoints: list[Checkpoint]) -> list[Checkpoint]:
        # 2. outputs durable (on the helper thread in the loop: the flush waits for acks)
        self.flush_outputs()
        # 3. checkpoint durable
        t0 = time.perf_counter()
        self.store.write(checkpoints)
        for c in checkpoints:
            self._durable[c.partition] = _held(c)
        self.metrics.checkpointed()
        log.debug("checkpoint written", extra={
            "partitions": [c.partition for c in checkpoints],
            "bytes": sum(len(c.state) for c in checkpoints),
            "ms": round((time.perf_counter() - t0) * 1000, 1)})
        return checkpoints

    def _flush_only(self) -> list[Checkpoint]:
        self.flush_outputs()
        return []

    def _unchanged(self, p: int, engine: FeatureEngine) -> bool:
        """Is partition ``p``'s newest durable checkpoint still exactly its state?"""
        held = self._durable.get(p)
        if held is None or engine.prepare_snapshot(0):  # an account changed since its frame
            return False
        offsets = self.handler.resume_offsets(p)
        return held == (offsets[PAYMENTS], offsets[LOGINS], self.handler.emit_from.get(p),
                        self.model_version())

    def _committed(self, checkpoints: list[Checkpoint], wait: bool = True,
                   positions: Any = None) -> None:
        """Steps 4 and 5, on the loop's thread, for checkpoints already durable (none: a flush
        alone). ``wait`` False (the loop's checkpoints): the group commit is sent without
        waiting for its answer (a round trip to the group coordinator; the loop does not need
        it, a restart resumes from the checkpoint). Revocations and the final checkpoint wait.
        ``positions``: the reference tables' positions taken before the flush of step 2 (what
        it made durable)."""
        # 4. group offsets (only of partitions still owned: a revoked one's belong to the
        # next owner now)
        checkpoints = [c for c in checkpoints if c.partition in self.handler.engines]
        if checkpoints:
            self._commit_offsets(checkpoints, wait)
        # 5. reference dead letters
        try:
            self.commit_reference(positions)
        except KafkaError as exc:
            log.warning("reference dead-letter position not committed (they are sent again "
                        "after a restart)", extra={"error": repr(exc)})

    def _commit_offsets(self, checkpoints: list[Checkpoint], wait: bool) -> None:
        offsets = {}
        for c in checkpoints:
            for kind, off in ((PAYMENTS, c.payments_offset), (LOGINS, c.logins_offset)):
                if off is not None:
                    offsets[self.tp(kind, c.partition)] = OffsetAndMetadata(off, "", -1)
        try:
            if wait:
                self.consumer.commit(offsets)
            else:
                self.consumer.commit_async(offsets, callback=_commit_answered)
        except (CommitFailedError, KafkaError) as exc:  # the checkpoint is what counts
            log.warning("group offset commit failed", extra={"error": repr(exc)})

    def close(self) -> None:
        self._writer.shutdown(wait=True)

    # ------------------------------------------------------------------ lag and stalls
    def update_lag(self) -> None:
        m = self.metrics
        m.partitions.set(len(self.handler.aligners))
        now = time.monotonic()
        for p, aligner in self.handler.aligners.items():
            for kind in KINDS:
                tp = self.tp(kind, p)
                hw = self.consumer.highwater(tp)
                consumed = aligner.resume_offsets()[kind]
                if hw is not None and consumed is not None:
                    m.lag.labels(topic=tp.topic, partition=str(p)).set(max(0, hw - consumed))
                self.stalls.observe(tp, aligner.consumed(kind), hw, now)

    def _refetch(self, tp: Any) -> None:
        """Re-establish a stalled partition's fetch: seek to where it is (drops the fetch
        state and whatever is in flight)."""
        self.metrics.stalls.labels(topic=tp.topic, partition=str(tp.partition)).inc()
        try:
            self.consumer.seek(tp, self.consumer.position(tp))
        except Exception as exc:  # noqa: BLE001 - e.g. revoked meanwhile
            log.warning("stalled partition not re-fetched", extra={"error": repr(exc)})


def _held(c: Checkpoint) -> tuple[Any, ...]:
    """What a durable checkpoint holds, as :meth:`Partitions._unchanged` compares it."""
    return (c.payments_offset, c.logins_offset, c.emit_from, c.model_version)


def _commit_answered(offsets: Any, result: Any) -> None:
    """An asynchronous group commit's answer (on the client's IO thread)."""
    if isinstance(result, BaseException):
        log.warning("group offset commit failed (the checkpoint is what counts)",
                    extra={"error": repr(result)})


def _step(steps: list[tuple[str, float]], name: str, since: float) -> float:
    now = time.perf_counter()
    steps.append((name, now - since))
    return now
