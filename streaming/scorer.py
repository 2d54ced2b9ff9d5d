"""The real-time scorer: a consumer group over ``payments`` + ``logins``, micro-batched scoring.

The loop (:meth:`_Session.run`), one iteration:

    poll → assignments (restore/seek) → reference tables → confirmed labels → model swap
         → Handler.handle (decode, align, update state, score one matrix)
         → emit (payments.scored / alerts / payments.dlq) → checkpoint if due → lag

Each step is a small collaborator owning one resource: :class:`streaming.outputs.Outputs`
(the producer and its acknowledgements), :class:`streaming.partitions.Partitions` (ownership,
restore and the checkpoint's commit order), :class:`streaming.reference.ReferenceReader` (the
global tables), :class:`streaming.handler.Handler` (pure: state and scores). The scorer talks
only to Kafka: the case store is a projection of ``payments.scored`` fed by its own consumer
group (``canhgiac sink``).

Delivery: outputs are at-least-once and idempotent by ``event_id`` (a replay after a crash
re-emits identical scores); feature state is exactly-once (state and offsets are one
checkpoint in Kafka, :mod:`streaming.checkpoint`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaError

from features.engine import ReferenceData
from streaming.align import LOGINS, PAYMENTS, HeldTime
from streaming.checkpoint import CHECKPOINT_TOPIC, CheckpointStore
from streaming.collector import LongLived
from streaming.config import ScorerSettings
from streaming.confirmed import ConfirmedLabels
from streaming.devices import ScorerDevices
from streaming.ends import EndOffsets
from streaming.handler import ActiveModel, Handler, HandleResult, RawRecord
from streaming.metrics import ScorerMetrics
from streaming.outputs import OUTPUTS, Outputs
from streaming.partitions import Partitions
from streaming.reference import MAX_IN_FLIGHT as REFERENCE_QUESTIONS
from streaming.reference import ReadyOffsets, ReferenceReader
from streaming.reload import ModelProvider, ModelWatcher
from streaming.topics import GLOBAL_TOPICS, ensure_topics_with, warn_if_not_compacted

log = logging.getLogger(__name__)

REFERENCE_POLL_S = 0.2  # once caught up, look for new labels/accounts this often (a poll is
# a round trip to the client's IO thread: 5 % of the scorer's time at 0.05 s)
MAX_BACKOFF_S = 30.0
# the longest an iteration waits for the reference tables' log-end answer asked for its
# payments (a round trip: 5.4 ms p50, 22 ms p99 on the bundled broker under the paced benchmark);
# past it the loop goes on and the payments are released by a later iteration
REFERENCE_WAIT_S = 0.010
SLOW_ITERATION_S = 0.25  # an iteration this long is logged with its steps (the loop stalled)


class Scorer:
    """Runs scoring sessions until :meth:`stop`; reconnects with exponential backoff."""

    def __init__(
        self, settings: ScorerSettings, model_provider: ModelProvider,
        metrics: ScorerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or ScorerMetrics()
        self.watcher = ModelWatcher(model_provider, settings.model_poll_interval_s,
                                    settings.review_threshold, settings.hold_threshold)
        self._stop = threading.Event()
        self.model: ActiveModel | None = None
        self.scored_total = 0

    def stop(self) -> None:
        """Ask the loop to finish its batch, checkpoint, commit and return (signal-safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> int:
        self.metrics.serve(self.settings.metrics_port, self.settings.metrics_host)
        backoff = 0.5
        try:
            while not self._stop.is_set():
                if self.model is None and not self._load_model(backoff):
                    backoff = min(MAX_BACKOFF_S, backoff * 2)
                    continue
                try:
                    session = _Session(self)
                except (KafkaError, OSError, RuntimeError, TimeoutError) as exc:
                    log.error("cannot start scoring (broker or model unavailable); retrying",
                              extra={"error": repr(exc), "retry_in_s": backoff})
                    self._stop.wait(backoff)
                    backoff = min(MAX_BACKOFF_S, backoff * 2)
                    continue
                try:
                    session.run()
                    backoff = 0.5
                except Exception as exc:  # noqa: BLE001 - never a crash loop: restart
                    log.error("scoring session failed; restarting from the last checkpoints",
                              extra={"error": repr(exc), "retry_in_s": backoff},
                              exc_info=not isinstance(exc, KafkaError | OSError | TimeoutError))
                    session.close(checkpoint=False)
                    self._stop.wait(backoff)
                    backoff = min(MAX_BACKOFF_S, backoff * 2)
                    continue
                session.close(checkpoint=True)
        finally:
            self.watcher.stop()
        return 0

    def _load_model(self, backoff: float) -> bool:
        try:
            self.model = self.watcher.load()
        except Exception as exc:  # registry down, no champion yet, bad artifact: say so, retry
            log.error("cannot load the model; retrying",
                      extra={"error": repr(exc), "retry_in_s": backoff})
            self._stop.wait(backoff)
            return False
        self.metrics.set_model(self.model.version)
        self.watcher.start()
        return True


class _Listener(ConsumerRebalanceListener):
    def __init__(self, partitions: Partitions) -> None:
        self.partitions = partitions

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.partitions.revoke({tp.partition for tp in revoked}, checkpoint=True)

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        self.partitions.revoke({tp.partition for tp in lost}, checkpoint=False)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.partitions.assigned(list(assigned))


class _Session:
    """One set of Kafka clients and the feature state of the partitions assigned to it."""

    def __init__(self, scorer: Scorer) -> None:
        self._opened: list[Callable[[], Any]] = []
        try:
            self._open(scorer)
        except BaseException:
            self._close_clients()
            raise

    def _open(self, scorer: Scorer) -> None:
        s = scorer.settings
        self.scorer = scorer
        self.s = s
        self.metrics = scorer.metrics
        cfg = s.kafka_client_config()
        self.topics = {k: s.topic(k) for k in ("payments", "logins", *GLOBAL_TOPICS, *OUTPUTS)}
        self.kind_of = {self.topics[PAYMENTS]: PAYMENTS, self.topics[LOGINS]: LOGINS}
        ckpt_topic = s.topic(CHECKPOINT_TOPIC)
        ensure_topics_with(cfg, [self.topics[k] for k in (*OUTPUTS, "watchlist",
                                                          "confirmed_payments")] + [ckpt_topic],
                           partitions=s.topic_partitions, replication=s.topic_replication,
                           prefix=s.topic_prefix)
        warn_if_not_compacted(cfg, [self.topics[k] for k in GLOBAL_TOPICS] + [ckpt_topic],
                              prefix=s.topic_prefix)
        self.outputs = Outputs(cfg, self.topics, self.metrics)
        self._opened.append(self.outputs.close)
        self.ref = ReferenceData()
        self.handler = Handler(self.ref, max_clock_skew_s=s.max_clock_skew_s)
        # shared devices and IPs: publish sightings, read the device table (streaming.devices)
        self.devices = ScorerDevices(s, self.outputs.producer, self.ref.devices)
        self._opened.append(self.devices.close)
        self.handler.on_event = self.devices.publisher.observe
        # the reader asks the log-end offsets that release payments on a connection of its own:
        # its fetches are long polls, and requests on one connection are answered in order
        self.reference = ReferenceReader(
            self.ref, {k: self.topics[k] for k in GLOBAL_TOPICS},
            cfg, fetch_max_wait_ms=s.fetch_max_wait_ms, group_id=f"{s.group_id}.reference",
        )
        self._opened.append(self.reference.close)
        self.confirmed = ConfirmedLabels(self.ref, self.handler, self.metrics)
        # the tables' log-end offsets are asked on these threads (one per question in flight);
        # the loop waits for an answer at most REFERENCE_WAIT_S
        confirming = ThreadPoolExecutor(REFERENCE_QUESTIONS,
                                        thread_name_prefix="canhgiac-reference")
        self._opened.append(lambda: confirming.shutdown(wait=True, cancel_futures=True))
        self.ready = ReadyOffsets(self.reference, confirming)
        # the aligner's log-end offsets are asked on their own connection and thread right
        # after each poll that brought records, while the batch decodes (a ListOffsets round
        # trip no longer blocks the loop)
        self._offsets_probe = KafkaConsumer(**cfg, group_id=None, enable_auto_commit=False)
        self._opened.append(lambda: self._offsets_probe.close(autocommit=False))
        asking = ThreadPoolExecutor(1, thread_name_prefix="canhgiac-offsets")
        self._opened.append(lambda: asking.shutdown(wait=True, cancel_futures=True))
        self.ends: EndOffsets[TopicPartition] = EndOffsets(
            self._offsets_probe.end_offsets, asking, self.metrics.end_offset_checks.inc)
        store = CheckpointStore(ckpt_topic, self.outputs.producer, cfg, group=s.group_id)
        self._opened.append(store.close)
        self.consumer = KafkaConsumer(
            **cfg, group_id=s.group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=s.fetch_max_wait_ms, max_poll_records=s.batch_size,
            max_poll_interval_ms=s.max_poll_interval_ms, session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(100, s.session_timeout_ms // 4),
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        self._opened.append(lambda: self.consumer.close(autocommit=False))
        self.partitions: Partitions = Partitions(
            s, self.consumer, self.handler, self.ref, store, self.topics, self.metrics,
            flush_outputs=self._flush_outputs, commit_reference=self.reference.commit_dead_lettered,
            reference_positions=self.reference.positions,
            model_version=lambda: scorer.model.version if scorer.model else None)
        self._opened.append(self.partitions.close)
        n_in = self._check_copartitioned()
        self.outputs.same_partition = {
            self.topics[k]: len(self.consumer.partitions_for_topic(self.topics[k]) or ()) == n_in
            for k in ("payments.scored", "alerts")
        }
        self.consumer.subscribe([self.topics[PAYMENTS], self.topics[LOGINS]],
                                listener=_Listener(self.partitions))
        self.last_lag = 0.0
        # the feature state out of the collector's full collections (they walked all of it)
        self.long_lived = LongLived(s.checkpoint_interval_s, on_count=self.metrics.gc_frozen.set)
        self._ref_polled = 0.0
        self._held = HeldTime(time.perf_counter())  # canhgiac_scorer_held_payment_seconds

    def _flush_outputs(self) -> None:
        self.outputs.flush()
        self.devices.check()

    def _check_copartitioned(self) -> int:
        counts = {}
        for kind in (PAYMENTS, LOGINS):
            parts = self.consumer.partitions_for_topic(self.topics[kind])
            if not parts:
                raise RuntimeError(f"input topic {self.topics[kind]} does not exist yet")
            counts[kind] = len(parts)
        if counts[PAYMENTS] != counts[LOGINS]:
            raise RuntimeError(f"payments and logins must have the same partition count: {counts}")
        return counts[PAYMENTS]

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        scorer, s, parts = self.scorer, self.s, self.partitions
        while not scorer.stopping:
            polled = self.consumer.poll(timeout_ms=self._poll_wait_ms(), max_records=s.batch_size)
            t0 = time.perf_counter()
            cpu0, proc0 = time.thread_time(), time.process_time()
            fresh = parts.apply_assignments() if parts.pending else set()
            if fresh:
                self.long_lived.after_restore()
            ref_dead = self._poll_reference()
            self.confirmed.resolve(fresh, self.reference.caught_up())
            self._swap_model()
            batch = self._batch(polled, fresh, t0)
            self._ask_ends(polled, fresh, batch)
            self._ask_ready(polled, fresh, batch)
            t1 = time.perf_counter()
            self.metrics.held(self._held.before_release(t1))
            result = self.handler.decode(batch)
            # the tables' answers that came back meanwhile (waiting a little for one asked
            # for these payments: usually back by then, never a long stall of the loop)
            result.ready_wait_s = self.ready.update(
                wait_s=REFERENCE_WAIT_S if self._held_for_reference() else 0.0)
            result = self.handler.release(result, scorer.model, self._caught_up,
                                          self.ready.below)
            result.dead_letters.extend(ref_dead)
            t2 = time.perf_counter()
            self._emit(result)
            self.outputs.publish_confirmed(self.confirmed.take())
            t3 = time.perf_counter()
            if batch:
                self.metrics.batch_seconds.observe(t3 - t0)
            now = time.monotonic()
            parts.tick(now)  # a checkpoint step when one is due (and idle accounts evicted)
            self.long_lived.tick(now)
            if now - self.last_lag >= 1.0:
                parts.update_lag()
                self.last_lag = now
            t4 = time.perf_counter()
            self._count_held(t4, result)
            self.metrics.iteration(t4 - t0)
            if t4 - t0 >= SLOW_ITERATION_S:
                # the loop thread's own CPU time, and the whole process's (the Kafka clients'
                # threads too): a loop far below ms waited, for the GIL when the process
                # was busy, for a core (other processes) when it was not
                log.warning("slow loop iteration", extra={
                    "ms": round((t4 - t0) * 1000),
                    "loop_cpu_ms": round((time.thread_time() - cpu0) * 1000),
                    "process_cpu_ms": round((time.process_time() - proc0) * 1000),
                    "records": len(batch),
                    "scored": len(result.scored), "prepare_ms": round((t1 - t0) * 1000),
                    "handle_ms": round((t2 - t1) * 1000),
                    "reference_wait_ms": round(result.ready_wait_s * 1000),
                    "reference_in_flight": self.ready.in_flight(),
                    "emit_ms": round((t3 - t2) * 1000),
                    "tick_ms": round((t4 - t3) * 1000),
                    "end_offsets_in_flight": self.ends.in_flight(),
                    "tick_steps_ms": {k: round(v * 1000) for k, v in parts.tick_steps}})

    def _count_held(self, now: float, result: HandleResult) -> None:
        """``canhgiac_scorer_held_payment_seconds``: the payments released in this iteration
        waited for the tables' answer; the ones still held waited through the iteration."""
        n = sum(aligner.held_payments() for aligner in self.handler.aligners.values())
        held: dict[str, int] = {}
        if result.held_for_reference:
            held["reference"] = result.held_for_reference
        if n > result.held_for_reference:
            held["logins"] = n - result.held_for_reference
        waited = self._held.after_release(now, held)
        if result.ready_wait_s and result.scored:  # the scored ones waited for that answer
            waited["reference"] = (waited.get("reference", 0.0)
                                   + result.ready_wait_s * len(result.scored))
        self.metrics.held(waited)

    def _poll_wait_ms(self) -> int:
        """Short while payments are held back (the next check may release them), long when
        nothing is: the poll returns as soon as records arrive either way, so an idle scorer
        sleeps instead of spinning (its fetches are long polls too, ``fetch_max_wait_ms``)."""
        if not self.reference.caught_up() or self.partitions.pending or any(
                a.buffered() for a in self.handler.aligners.values()):
            return self.s.poll_wait_ms
        return self.s.idle_poll_wait_ms

    def _swap_model(self) -> None:
        scorer = self.scorer
        new_model = scorer.watcher.take()
        if new_model is None:
            return
        log.info("model swapped", extra={
            "model_version": new_model.version,
            "previous": scorer.model.version if scorer.model else None})
        scorer.model = new_model
        self.metrics.set_model(new_model.version)
        self.metrics.model_reloads.inc()

    def _held_for_reference(self) -> bool:
        """Some partition holds a payment the reference tables are not known ready for."""
        below = self.ready.below
        return any(aligner.holds_payments_from(below(p))
                   for p, aligner in self.handler.aligners.items())

    def _ask_ready(self, polled: dict[TopicPartition, list[Any]], fresh: set[int],
                   batch: list[RawRecord]) -> None:
        """After a poll that brought payments (or when a question is owed), ask the reference
        tables' log-end offsets on a helper thread, marked with each partition's payments
        offset below which every payment is in the log now (its position after this poll,
        raised to the high-water mark of its last fetch). Payments wait in the alignment until
        an answer asked after them is met (:class:`streaming.reference.ReadyOffsets`); the
        loop waits for one at most REFERENCE_WAIT_S."""
        if not (self.ready.owed or any(r.kind == PAYMENTS for r in batch)):
            return
        topic = self.topics[PAYMENTS]
        self.ready.ask({p: self._in_log_below(TopicPartition(topic, p), polled, fresh)
                        for p in self.handler.aligners})

    def _in_log_below(self, tp: TopicPartition, polled: dict[TopicPartition, list[Any]],
                      fresh: set[int]) -> int:
        """The offset of input partition ``tp`` below which every record is in the log now:
        its position after this poll, raised to the high-water mark of its last fetch (records
        below it were in the log before the fetch's answer). Marks the log-end questions."""
        position = self.handler.aligners[tp.partition].consumed(self.kind_of[tp.topic]) or 0
        records = polled.get(tp)
        if records and tp.partition not in fresh:
            position = max(position, records[-1].offset + 1)
        return max(position, self.consumer.highwater(tp) or 0)

    def _poll_reference(self) -> list[Any]:
        """Every iteration while behind; then every REFERENCE_POLL_S (a poll costs a round trip
        to kafka-python's IO thread). Returns the rejects, for the dead letters."""
        now = time.monotonic()
        if self.reference.caught_up() and now - self._ref_polled < REFERENCE_POLL_S:
            return []
        self._ref_polled = now
        return self.reference.poll()[1]

    def _batch(self, polled: dict[TopicPartition, list[Any]], fresh: set[int],
               polled_at: float) -> list[RawRecord]:
        batch: list[RawRecord] = []
        for tp, records in polled.items():
            if tp.partition in fresh:
                continue  # fetched before the restore's seek
            kind = self.kind_of[tp.topic]
            topic, p = tp.topic, tp.partition
            batch.extend(
                RawRecord(kind, topic, p, r.offset, r.timestamp, r.key, r.value, polled_at)
                for r in records
            )
        return batch

    def _input_tps(self) -> list[TopicPartition]:
        return [TopicPartition(self.topics[k], p)
                for p in self.handler.aligners for k in (PAYMENTS, LOGINS)]

    def _ask_ends(self, polled: dict[TopicPartition, list[Any]], fresh: set[int],
                  batch: list[RawRecord]) -> None:
        """After a poll that brought records (or with records held back), ask the log-end
        offsets on the helper thread, marked with each input partition's position after this
        poll (:mod:`streaming.ends`). An idle scorer asks nothing."""
        if not batch and not any(a.buffered() for a in self.handler.aligners.values()):
            return
        tps = self._input_tps()
        self.ends.ask(tps, {tp: self._in_log_below(tp, polled, fresh) for tp in tps})

    def _caught_up(self, kind: str, partition: int) -> int:
        """The offset of the *other* topic's partition below which its held records may pass:
        this topic's partition has been consumed up to a log-end offset asked after they were
        polled (:mod:`streaming.ends`; -1: none yet). The loop never waits for an answer.

        The high-water mark kafka-python keeps per partition comes from that partition's last
        fetch response, which can be older than the response that delivered the other topic's
        record waiting for this answer (partitions with buffered data sit out of fetches). It
        is only trusted to say "not caught up". Some Kafka-protocol brokers answer
        ListOffsets(latest) with the newest batch's base offset + 1, so the end offset is
        also compared with the high-water mark: exact on Apache Kafka, safe on those."""
        consumed = self.handler.aligners[partition].consumed(kind)
        if consumed is None:
            return -1
        other = PAYMENTS if kind == LOGINS else LOGINS
        tp = TopicPartition(self.topics[kind], partition)
        return self.ends.caught_up_below(tp, consumed, self.consumer.highwater(tp),
                                         TopicPartition(self.topics[other], partition))

    def _emit(self, result: HandleResult) -> None:
        m = self.metrics
        # the batch's device sightings first, on the same producer: the acknowledgement round
        # the outputs start covers them, and so does any checkpoint after this iteration
        self.devices.publisher.send()
        alerts = self.outputs.emit(result)
        self.outputs.check()  # an output that failed after the retries fails the session
        if result.scored:
            m.events.labels(kind=PAYMENTS, outcome="scored").inc(len(result.scored))
            self.scorer.scored_total += len(result.scored)
        if alerts:
            m.alerts.labels(decision="review_or_hold").inc(alerts)
        if result.logins:
            m.events.labels(kind=LOGINS, outcome="applied").inc(len(result.logins))
        if result.logins_ignored:
            m.events.labels(kind=LOGINS, outcome="duplicate_or_late").inc(result.logins_ignored)
            log.info("logins ignored (duplicate or too late)",
                     extra={"count": result.logins_ignored})
        if result.late:
            m.events.labels(kind=PAYMENTS, outcome="late").inc(result.late)
            log.info("payments later than the allowed lateness scored on the account's "
                     "current state (late: true)", extra={"count": result.late})
        if result.future:
            m.events.labels(kind="payments_or_logins", outcome="future").inc(result.future)
        if result.warmed:
            m.events.labels(kind=PAYMENTS, outcome="warm_up").inc(result.warmed)
        if result.not_scored:
            m.events.labels(kind=PAYMENTS, outcome="duplicate").inc(len(result.not_scored))
            log.info("duplicate payments not scored again (same event_id within the lateness)",
                     extra={"count": len(result.not_scored),
                            "event_ids": ",".join(result.not_scored[:10])})

    # ------------------------------------------------------------------ closing
    def close(self, checkpoint: bool) -> None:
        if checkpoint:
            try:
                self.partitions.checkpoint(self.handler.partitions(), commit=True)
                log.info("final checkpoint written",
                         extra={"partitions": self.handler.partitions()})
            except (KafkaError, TimeoutError) as exc:
                log.error("final checkpoint failed", extra={"error": repr(exc)})
        for p in self.handler.partitions():
            self.handler.close_partition(p)
        self._close_clients()

    def _close_clients(self) -> None:
        """Consumer first (its close may call the revocation listener: nothing is left to
        checkpoint by then), producer last."""
        for closer in reversed(self._opened):
            try:
                closer()
            except Exception as exc:  # closing is best effort
                log.warning("error while closing a Kafka client", extra={"error": repr(exc)})
        self._opened.clear()
