"""The scorer's pure core: ``Handler.handle(batch) -> HandleResult(scored, dead_letters, ...)``.

No Kafka here. A batch is a list of :class:`RawRecord` (what a poll returned, already tagged
with its contract kind). The handler decodes them (a bad record becomes a :class:`DeadLetter`
carrying its raw bytes and why — never a crash, never a silent drop), aligns payments and
logins of each partition by event time (:mod:`streaming.align`), applies them to that
partition's :class:`~features.engine.FeatureEngine` in that order, and scores every new payment
of the batch with ONE call of the model on one matrix.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from features.events import (
    Login,
    Payment,
    Rejection,
    decode,
    format_ts,
    unexpected,
    utc_from_epoch,
)
from features.replay import event_order_key
from models.reasons import with_watchlist
from models.scored import ScoredPayment, ScoreReason
from models.thresholds import decide
from streaming.align import PartitionAligner

if TYPE_CHECKING:
    from features.engine import FeatureEngine, ReferenceData
    from features.vector import FeatureVector
    from models.risk import RiskModel

log = logging.getLogger(__name__)

TOP_K_REASONS = 3
DEFAULT_MAX_CLOCK_SKEW_S = 300.0


class RawRecord(NamedTuple):
    """One Kafka record of an input topic, as polled (a tuple: one is made per polled record,
    and a frozen dataclass's ``__init__`` costs four times as much)."""

    kind: str  # contract: payments | logins | labels | accounts
    topic: str  # the full topic name (with prefix)
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    polled_at: float = 0.0  # time.perf_counter() when the poll returned it (0: unknown)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected record for ``payments.dlq``: the raw bytes plus why."""

    record: RawRecord
    field: str
    reason: str

    def headers(self) -> list[tuple[str, bytes]]:
        r = self.record
        return [
            ("reason", self.reason.encode()),
            ("field", self.field.encode()),
            ("kind", r.kind.encode()),
            ("source_topic", r.topic.encode()),
            ("source_partition", str(r.partition).encode()),
            ("source_offset", str(r.offset).encode()),
        ]

    @classmethod
    def of(cls, record: RawRecord, rejection: Rejection) -> DeadLetter:
        return cls(record, rejection.field, rejection.reason)

    @classmethod
    def failed(cls, record: RawRecord, exc: BaseException) -> DeadLetter:
        """A record whose handling raised where no rule expected it (never stops the loop)."""
        return cls(record, "", unexpected(exc))


@dataclass(frozen=True, slots=True)
class ActiveModel:
    """The model in use for a batch, with the (optional) threshold overrides of the settings."""

    version: str
    model: RiskModel
    review_threshold: float | None = None
    hold_threshold: float | None = None
    def thresholds(self) -> tuple[float, float]:
        review, hold = self.model.thresholds
        if self.review_threshold is not None:
            review = self.review_threshold
        if self.hold_threshold is not None:
            hold = self.hold_threshold
        return float(review), float(hold)

    def decide(self, scores: np.ndarray) -> list[str]:
        """The one decision rule (:func:`models.thresholds.decide`) at the thresholds in
        force."""
        review, hold = self.thresholds()
        return decide(scores, review, hold)


class Scored(NamedTuple):
    """One scored payment (the typed record every consumer of a score shares) and where its
    input came from (for the output's partition and the end-to-end latency)."""

    value: ScoredPayment
    vector: FeatureVector
    partition: int
    offset: int
    timestamp_ms: int  # produce time of the input record
    polled_at: float = 0.0  # perf_counter() when its input was polled (in-process latency)
    released_at: float = 0.0  # perf_counter() when the alignment released it (its inputs in)

    @property
    def event_id(self) -> str:
        return self.value.event_id

    @property
    def score(self) -> float:
        return self.value.score

    @property
    def decision(self) -> str:
        return self.value.decision

    @property
    def late(self) -> bool:
        return self.value.late


@dataclass(slots=True)
class HandleResult:
    scored: list[Scored] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    logins: list[Login] = field(default_factory=list)  # logins applied in this batch
    not_scored: list[str] = field(default_factory=list)  # duplicate event_ids
    late: int = 0  # payments later than the allowed lateness (scored, marked late)
    future: int = 0  # records dead-lettered as dated ahead of their record timestamp
    warmed: int = 0  # payments applied to the state only (warm-up before the start point)
    logins_ignored: int = 0
    stale: int = 0  # records of partitions not (or no longer) assigned here
    # payments still held after the release because the reference tables (or the model) were
    # not ready for them; the others held wait for the logins topic
    held_for_reference: int = 0
    ready_wait_s: float = 0.0  # time the release waited for the reference tables' answer


def _caught_up_in(caught_up: Callable[[str, int], bool | int], partition: int,
                  kind: str) -> bool | int:
    return caught_up(kind, partition)


class Handler:
    """Per-partition feature state + alignment; turns polled batches into scored payments."""

    def __init__(
        self, ref: ReferenceData, top_k: int = TOP_K_REASONS,
        max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ref = ref
        self.top_k = top_k
        self.max_clock_skew_s = float(max_clock_skew_s)
        self.clock = clock
        self.engines: dict[int, FeatureEngine] = {}
        self.aligners: dict[int, PartitionAligner[tuple[Payment | Login, RawRecord]]] = {}
        self.event_time: dict[int, float] = {}  # newest event time applied, per partition
        # per partition: payments before this offset only warm the state (no outputs)
        self.emit_from: dict[int, int] = {}
        # called with every event released to the engines (streaming.devices publishes its
        # device / IP sightings)
        self.on_event: Callable[[Payment | Login], None] | None = None

    # ------------------------------------------------------------ partition lifecycle
    def open_partition(
        self, partition: int, engine: FeatureEngine,
        payments_offset: int | None = None, logins_offset: int | None = None,
        emit_from: int | None = None,
    ) -> None:
        """Own a partition. With ``emit_from``, payments at lower offsets are applied to the
        state only (a warm-up replay of history): they get no output."""
        self.engines[partition] = engine
        self.aligners[partition] = PartitionAligner(partition, payments_offset, logins_offset)
        if emit_from is not None and (payments_offset is None or emit_from > payments_offset):
            self.emit_from[partition] = emit_from
        else:
            self.emit_from.pop(partition, None)

    def close_partition(self, partition: int) -> FeatureEngine | None:
        self.aligners.pop(partition, None)
        self.event_time.pop(partition, None)
        self.emit_from.pop(partition, None)
        return self.engines.pop(partition, None)

    def evict_idle(self) -> int:
        """Drop accounts idle for longer than the engine's retention, by event time."""
        return sum(self.engines[p].evict_idle(t) for p, t in self.event_time.items()
                   if p in self.engines)

    def partitions(self) -> list[int]:
        return sorted(self.engines)

    def resume_offsets(self, partition: int) -> dict[str, int | None]:
        return self.aligners[partition].resume_offsets()

    # ------------------------------------------------------------ the core
    def handle(
        self,
        batch: Sequence[RawRecord],
        model: ActiveModel | None,
        caught_up: Callable[[str, int], bool | int],
        payments_ready: bool | Callable[[int], bool | int] = True,
    ) -> HandleResult:
        """Decode, align, update state, score. ``caught_up(kind, partition)`` tells the aligner
        whether a topic's partition has nothing more to poll (``True``/``False``, or an offset
        of the other topic: its records below it may pass, :meth:`PartitionAligner.release`);
        ``payments_ready`` whether the global reference tables are loaded for the payments:
        ``True``/``False`` for all, or ``payments_ready(partition)``, an offset of that
        partition's payments below which they are (the scorer's
        :class:`streaming.reference.ReadyOffsets`). ``model`` None holds payments back (no
        model yet). The two halves, :meth:`decode` and :meth:`release`, can be called apart
        (the scorer takes the reference tables' answers in between).
        """
        return self.release(self.decode(batch), model, caught_up, payments_ready)

    def decode(self, batch: Sequence[RawRecord]) -> HandleResult:
        """Decode and buffer a polled batch in the alignment (rejects become dead letters in
        the result :meth:`release` then fills)."""
        result = HandleResult()
        self._buffer(batch, result)
        return result

    def release(
        self,
        result: HandleResult,
        model: ActiveModel | None,
        caught_up: Callable[[str, int], bool | int],
        payments_ready: bool | Callable[[int], bool | int] = True,
    ) -> HandleResult:
        """Release what the alignment lets through, update the state, score (see
        :meth:`handle`)."""
        payments: list[Payment] = []
        vectors: list[FeatureVector] = []
        meta: list[tuple[bool, RawRecord, float]] = []
        for p in sorted(self.aligners):
            aligner = self.aligners[p]
            if not aligner.buffered():
                continue
            engine = self.engines[p]
            quiet_until = self.emit_from.get(p, -1)
            if model is None:
                ready: bool | int = False
            elif callable(payments_ready):
                ready = payments_ready(p)
            else:
                ready = payments_ready
            released = aligner.release(functools.partial(_caught_up_in, caught_up, p), ready)
            released_at = time.perf_counter()
            if aligner.holds_payments_from(ready):
                result.held_for_reference += aligner.held_payments()
            if released:
                newest = max(pending.item[0].t for pending in released)
                if newest > self.event_time.get(p, float("-inf")):
                    self.event_time[p] = newest
            on_event = self.on_event
            for pending in released:
                event, rec = pending.item
                if on_event is not None:
                    on_event(event)
                try:
                    if isinstance(event, Login):
                        if engine.on_login(event):
                            result.logins.append(event)
                        else:
                            result.logins_ignored += 1
                        continue
                    if pending.offset < quiet_until:  # warm-up: state only
                        engine.on_payment(event)
                        result.warmed += 1
                        continue
                    late = False
                    vector = engine.on_payment(event)
                    if vector is None:
                        # too late to be placed in the state (or a duplicate): a late one is
                        # still scored, on the account's current state, and marked late
                        vector = engine.score_late(event)
                        if vector is None:
                            result.not_scored.append(event.event_id)
                            continue
                        late = True
                        result.late += 1
                except Exception as exc:  # noqa: BLE001 - one record must never stop a stream
                    result.dead_letters.append(DeadLetter.failed(rec, exc))
                    continue
                payments.append(event)
                vectors.append(vector)
                meta.append((late, rec, released_at))
        if payments:
            assert model is not None
            result.scored = self._score(payments, vectors, meta, model, result)
        return result

    def _buffer(self, batch: Sequence[RawRecord], result: HandleResult) -> None:
        now: float | None = None
        skew = self.max_clock_skew_s
        for rec in batch:
            aligner = self.aligners.get(rec.partition)
            if aligner is None:
                result.stale += 1
                continue
            try:
                event = decode(rec.kind, rec.value)
                if isinstance(event, Rejection):
                    aligner.skip(rec.kind, rec.offset)
                    result.dead_letters.append(DeadLetter.of(rec, event))
                    continue
                # an event dated ahead of its record (a skewed clock, local time labelled Z)
                # must not hold back the merge nor move the account's clock: dead-letter it
                ts_ms = rec.timestamp_ms
                if ts_ms is not None and ts_ms > 0:
                    reference = ts_ms / 1000.0
                else:  # no record timestamp: the wall clock
                    if now is None:
                        now = self.clock()
                    reference = now
                if event.t > reference + skew:
                    aligner.skip(rec.kind, rec.offset)
                    result.future += 1
                    result.dead_letters.append(DeadLetter(rec, "ts", (
                        f"from the future: {format_ts(event.ts)} is "
                        f"{event.t - reference:,.0f} s ahead of the record's timestamp "
                        f"{format_ts(utc_from_epoch(reference))} (allowed skew {skew:g} s)")))
                    continue
                key = event_order_key(event)
            except Exception as exc:  # noqa: BLE001 - one record must never stop a stream
                aligner.skip(rec.kind, rec.offset)
                result.dead_letters.append(DeadLetter.failed(rec, exc))
                continue
            aligner.add(rec.kind, rec.offset, key, (event, rec))

    def _score(
        self, payments: list[Payment], vectors: list[FeatureVector],
        meta: list[tuple[bool, RawRecord, float]], model: ActiveModel, result: HandleResult,
    ) -> list[Scored]:
        """One model call for the whole batch; if it raises, each payment alone, so that one
        payment the model cannot score goes to the dead letters and the others are scored."""
        try:
            return self._score_batch(payments, vectors, meta, model)
        except Exception as exc:  # noqa: BLE001 - find the record(s) at fault, one by one
            log.warning("batch scoring failed; scoring its payments one by one",
                        extra={"error": repr(exc), "payments": len(payments)})
        scored: list[Scored] = []
        for i in range(len(payments)):
            try:
                scored += self._score_batch(payments[i:i + 1], vectors[i:i + 1],
                                            meta[i:i + 1], model)
            except Exception as exc:  # noqa: BLE001
                result.dead_letters.append(DeadLetter.failed(meta[i][1], exc))
        return scored

    def _score_batch(
        self, payments: list[Payment], vectors: list[FeatureVector],
        meta: list[tuple[bool, RawRecord, float]], model: ActiveModel,
    ) -> list[Scored]:
        x = np.array([v.values for v in vectors], dtype=np.float64)
        scores = np.asarray(model.model.score(x), dtype=np.float64)
        decisions = model.decide(scores)
        # reasons (exact TreeSHAP contributions, ~200x the cost of a prediction) only for the
        # payments that get a review or hold: an allowed payment's reasons list is empty
        explain = np.flatnonzero(scores >= model.thresholds()[0])
        reasons: list[list[Any]] = [[] for _ in payments]
        if explain.size:
            for i, r in zip(explain, model.model.reasons(x[explain], top_k=self.top_k),
                            strict=True):
                reasons[i] = r
        scored_at = datetime.now(UTC)
        version = model.version
        of = ScoredPayment.of
        return [
            Scored(of(pay, score=float(s), decision=d,
                      reasons=self._alert_reasons(pay, r, float(s), d),
                      model_version=version, scored_at=scored_at, late=late,
                      feature_values=vec.values),
                   vec, rec.partition, rec.offset, rec.timestamp_ms, rec.polled_at, released_at)
            for pay, vec, s, d, r, (late, rec, released_at) in zip(
                payments, vectors, scores, decisions, reasons, meta, strict=True
            )
        ]


    def _alert_reasons(self, payment: Payment, reasons: list[Any], score: float,
                       decision: str) -> list[Any]:
        """A review's or hold's reasons: the model's (or :func:`_no_standout`), with the
        watch-list sentence of a listed beneficiary or account holder
        (:func:`models.reasons.with_watchlist`). An allowed payment's stay as computed."""
        if decision == "allow":
            return reasons
        return with_watchlist(reasons or _no_standout(score, decision), self.ref, payment)


def _no_standout(score: float, decision: str) -> list[ScoreReason]:
    """The reason of an alert that no feature pushed above the model's base rate (every
    contribution is <= 0: the threshold itself is below the base rate). Every review and hold
    carries at least one reason an investigator can read."""
    return [ScoreReason("score", score, 0.0,
                        f"score {score:.4f} reaches the {decision} threshold; no single feature "
                        "stands out (the model's base rate)")]

