"""The real-time scorer: a consumer group over ``payments`` + ``logins``, micro-batched scoring.

One iteration: poll → (new partitions: restore checkpoint, seek) → apply labels/accounts →
``Handler.handle`` (decode, align, update state, score one matrix) → produce
``payments.scored`` / ``alerts`` / ``payments.dlq`` → case-store sink → periodic checkpoint
(outputs flushed first, then state + offsets, then group commit).

Delivery: outputs are at-least-once and idempotent by ``event_id`` (a replay after a crash
re-emits identical scores); feature state is exactly-once (state and offsets are one
checkpoint record in Kafka, :mod:`streaming.checkpoint`). Rebalance callbacks run inside
``consumer.poll`` on kafka-python's IO thread, while this loop waits for the poll: revocation
checkpoints the partitions being given up; assignment pauses the new partitions, and the loop
restores and seeks them right after the poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from features.engine import FeatureEngine, ReferenceData
from features.events import format_ts
from features.vector import FEATURE_VERSION
from streaming.align import LOGINS, PAYMENTS
from streaming.checkpoint import CHECKPOINT_TOPIC, Checkpoint, CheckpointStore
from streaming.handler import ActiveModel, Handler, HandleResult, RawRecord
from streaming.metrics import ScorerMetrics
from streaming.reference import ReferenceReader
from streaming.reload import ModelProvider, ModelWatcher
from streaming.stalls import StallWatch
from streaming.topics import ensure_topics_with, warn_if_not_compacted

if TYPE_CHECKING:
    from canhgiac.settings import Settings
    from features.events import Login

log = logging.getLogger(__name__)

OUTPUTS = ("payments.scored", "alerts", "payments.dlq")
# Each loop iteration hands its outputs to a helper thread that flushes them (OutputAcks), so
# linger only groups one iteration's records into one batch per partition. kafka-python wakes
# its sender thread for every new batch, through a socket write that gives the GIL away and
# waits to get it back: with a 2 ms linger a batch was cut every 2 ms of an iteration's sends,
# and those wake-ups took 9 % of the scorer's main thread at 3,000 payments/s (py-spy).
PRODUCER_LINGER_MS = 100
OUTPUT_FLUSH_TIMEOUT_S = 30.0
REFERENCE_POLL_S = 0.2  # once caught up, look for new labels/accounts this often (a poll is
# a round trip to the client's IO thread: 5 % of the scorer's time at 0.05 s)
MAX_BACKOFF_S = 30.0


class Stopped(Exception):
    pass


class OutputAcks:
    """Waits for the outputs' acknowledgements on a helper thread, so the loop polls and scores
    the next batch while the broker confirms this one.

    :meth:`sent` (main thread, after an iteration's sends) hands over the produce times of the
    scored payments just sent and wakes the helper; the helper takes everything handed over so
    far, calls ``producer.flush()`` (which sends at once and waits for every batch appended
    before it began, so for all it took) and observes the end-to-end latency of each. A flush
    that fails is kept in :attr:`error`, which the loop raises on its next iteration
    (``_Session._check_outputs``). Checkpoints do not rely on the helper: they flush and check
    on their own thread."""

    def __init__(self, producer: KafkaProducer, latency: Any, timeout_s: float) -> None:
        self._producer = producer
        self._latency = latency
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._pending: list[int] = []
        self._wake = threading.Event()
        self._closing = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="canhgiac-acks", daemon=True)
        self._thread.start()

    def sent(self, timestamps_ms: list[int]) -> None:
        with self._lock:
            self._pending.extend(timestamps_ms)
        self._wake.set()

    def _run(self) -> None:
        closing = False
        while not closing:
            self._wake.wait()
            self._wake.clear()
            closing = self._closing  # one last round for what was handed over before close
            with self._lock:
                taken, self._pending = self._pending, []
            try:
                self._producer.flush(timeout=self._timeout_s)
            except Exception as exc:  # noqa: BLE001 - handed to the loop, which restarts
                if self.error is None:
                    self.error = exc
                continue
            now_ms = time.time() * 1000.0
            observe = self._latency.observe
            for ts in taken:
                observe(max(0.0, now_ms - ts) / 1000.0)

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._thread.join(timeout=self._timeout_s + 1)


class Scorer:
    """Runs scoring sessions until :meth:`stop`; reconnects with exponential backoff."""

    def __init__(
        self, settings: Settings, model_provider: ModelProvider, sink: Any = None,
        metrics: ScorerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.sink = sink
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
                except (KafkaError, OSError, TimeoutError) as exc:
                    log.error("scoring session failed; restarting from the last checkpoints",
                              extra={"error": repr(exc), "retry_in_s": backoff})
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
    def __init__(self, session: _Session) -> None:
        self.session = session

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.session.revoke({tp.partition for tp in revoked}, checkpoint=True)

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        self.session.revoke({tp.partition for tp in lost}, checkpoint=False)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = list(assigned)
        self.session.consumer.pause(*assigned)  # fetch nothing before the restore's seek
        self.session.pending_assigned.update(tp.partition for tp in assigned)


class _Session:
    """One set of Kafka clients and the feature state of the partitions assigned to it."""

    def __init__(self, scorer: Scorer) -> None:
        self._opened: list[Any] = []
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
        self.cfg = cfg
        self.topics = {k: s.topic(k) for k in ("payments", "logins", "labels", "accounts",
                                               *OUTPUTS)}
        self.kind_of = {self.topics[PAYMENTS]: PAYMENTS, self.topics[LOGINS]: LOGINS}
        ckpt_topic = s.topic(CHECKPOINT_TOPIC)
        ensure_topics_with(cfg, [self.topics[k] for k in OUTPUTS] + [ckpt_topic],
                           partitions=s.topic_partitions, replication=s.topic_replication,
                           prefix=s.topic_prefix)
        warn_if_not_compacted(cfg, [self.topics["labels"], self.topics["accounts"], ckpt_topic],
                              prefix=s.topic_prefix)
        self.producer = KafkaProducer(**cfg, acks="all", linger_ms=PRODUCER_LINGER_MS, retries=5,
                                      max_request_size=2 * 1024 * 1024)
        self._opened.append(lambda: self.producer.close(timeout=10))
        self.acks = OutputAcks(self.producer, self.metrics.latency, OUTPUT_FLUSH_TIMEOUT_S)
        self._opened.append(self.acks.close)
        self.ref = ReferenceData()
        self.handler = Handler(self.ref, max_clock_skew_s=s.max_clock_skew_s)
        # the reader's fetch wait is short: a fetch it leaves in flight delays the log-end
        # offset request that releases payments (requests on a connection are answered in order)
        self.reference = ReferenceReader(
            self.ref, {"labels": self.topics["labels"], "accounts": self.topics["accounts"]},
            cfg, fetch_max_wait_ms=s.fetch_max_wait_ms, group_id=f"{s.group_id}.reference",
        )
        self._opened.append(self.reference.close)
        # the reader's log-end offset request runs here while the loop decodes (its only user)
        self._confirming = ThreadPoolExecutor(1, thread_name_prefix="canhgiac-reference")
        self._opened.append(lambda: self._confirming.shutdown(wait=True))
        self.store = CheckpointStore(ckpt_topic, self.producer, cfg, group=s.group_id)
        self._opened.append(self.store.close)
        self.pending_assigned: set[int] = set()
        self.parked: dict[int, tuple[str, FeatureEngine]] = {}
        self.consumer = KafkaConsumer(
            **cfg, group_id=s.group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=s.fetch_max_wait_ms, max_poll_records=s.batch_size,
            max_poll_interval_ms=s.max_poll_interval_ms, session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(100, s.session_timeout_ms // 4),
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        self._opened.append(lambda: self.consumer.close(autocommit=False))
        n_in = self._check_copartitioned()
        # Outputs go to their input payment's partition when the counts match: what the
        # default key partitioner picks for the same account_id key, without hashing each key
        # in Python (kafka-python's murmur2 is a measurable part of a send).
        self.same_partition = {
            self.topics[k]: len(self.consumer.partitions_for_topic(self.topics[k]) or ()) == n_in
            for k in ("payments.scored", "alerts")
        }
        self.consumer.subscribe([self.topics[PAYMENTS], self.topics[LOGINS]],
                                listener=_Listener(self))
        self.stalls = StallWatch(s.stall_after_s, self._refetch)
        self.last_checkpoint = time.monotonic()
        self.last_lag = 0.0
        self._ends: dict[TopicPartition, int] | None = None
        self._ref_polled = 0.0
        self._send_error: BaseException | None = None

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

    # ------------------------------------------------------------------ main loop
    def run(self) -> None:
        scorer = self.scorer
        s = self.s
        while not scorer.stopping:
            polled = self.consumer.poll(timeout_ms=s.poll_wait_ms, max_records=s.batch_size)
            fresh = self._apply_assignments() if self.pending_assigned else set()
            accounts, ref_dead = self._poll_reference()
            new_model = scorer.watcher.take()
            if new_model is not None:
                log.info("model swapped", extra={"model_version": new_model.version,
                                                 "previous": scorer.model.version
                                                 if scorer.model else None})
                scorer.model = new_model
                self.metrics.set_model(new_model.version)
                self.metrics.model_reloads.inc()
            batch = self._batch(polled, fresh)
            self._ends = None
            t0 = time.perf_counter()
            result = self.handler.handle(batch, scorer.model, self._caught_up,
                                         self._reference_ready(batch))
            result.dead_letters.extend(ref_dead)
            self._emit(result, accounts)
            self._check_outputs()
            if batch:
                self.metrics.batch_seconds.observe(time.perf_counter() - t0)
            now = time.monotonic()
            if now - self.last_checkpoint >= s.checkpoint_interval_s:
                evicted = self.handler.evict_idle()
                if evicted:
                    log.info("idle accounts evicted", extra={"accounts": evicted})
                self.checkpoint(self.handler.partitions(), commit=True)
            if now - self.last_lag >= 1.0:
                self._update_lag()
                self.last_lag = now

    def _reference_ready(self, batch: list[RawRecord]) -> bool | Callable[[], bool]:
        """May payments be released: the reference tables hold everything produced before the
        payments polled so far. After a poll that brought payments, the reference topics'
        log-end offsets are asked (one request, on a helper thread while the handler decodes
        the batch: the answer is a callable that waits for it), and payments wait until the
        reader has applied everything up to them."""
        for r in batch:
            if r.kind == PAYMENTS:
                return self._confirming.submit(self.reference.confirm).result
        return self.reference.caught_up()

    def _poll_reference(self) -> tuple[list[Any], list[Any]]:
        """Every iteration while behind; then every REFERENCE_POLL_S (a poll costs a round trip
        to kafka-python's IO thread)."""
        now = time.monotonic()
        if self.reference.caught_up() and now - self._ref_polled < REFERENCE_POLL_S:
            return [], []
        self._ref_polled = now
        return self.reference.poll()

    def _batch(self, polled: dict[TopicPartition, list[Any]], fresh: set[int]) -> list[RawRecord]:
        batch: list[RawRecord] = []
        for tp, records in polled.items():
            if tp.partition in fresh:
                continue  # fetched before the restore's seek
            kind = self.kind_of[tp.topic]
            batch.extend(
                RawRecord(kind, tp.topic, tp.partition, r.offset, r.timestamp, r.key, r.value)
                for r in records
            )
        return batch

    def _caught_up(self, kind: str, partition: int) -> bool:
        """Nothing more to poll from this topic's partition *now*.

        The high-water mark kafka-python keeps per partition comes from that partition's last
        fetch response, which can be older than the response that delivered the other topic's
        record waiting for this answer (partitions with buffered data sit out of fetches). It
        is only trusted to say "not caught up"; "caught up" is confirmed with the log-end
        offsets asked now (one ListOffsets request per loop iteration, only when needed)."""
        tp = TopicPartition(self.topics[kind], partition)
        consumed = self.handler.aligners[partition].consumed(kind)
        if consumed is None:
            return False
        hw = self.consumer.highwater(tp)
        if hw is not None and consumed < hw:
            return False
        if self._ends is None:
            tps = [TopicPartition(self.topics[k], p)
                   for p in self.handler.aligners for k in (PAYMENTS, LOGINS)]
            self._ends = self.consumer.end_offsets(tps)
            self.metrics.end_offset_checks.inc()
        end = self._ends.get(tp)
        # Some Kafka-protocol brokers answer ListOffsets(latest) with the newest batch's base
        # offset + 1: still above ``consumed`` whenever anything new exists, so max() with the
        # high-water mark is exact on Apache Kafka and safe on those.
        return end is not None and consumed >= max(end, hw or 0)

    def _emit(self, result: HandleResult, accounts: list[Any]) -> None:
        m = self.metrics
        send = self.producer.send
        scored_at = format_ts(datetime.now(UTC))
        t_scored = self.topics["payments.scored"]
        t_alerts = self.topics["alerts"]
        failed = self._send_failed
        for dl in result.dead_letters:
            r = dl.record
            send(self.topics["payments.dlq"], key=r.key, value=r.value,
                 headers=dl.headers()).add_errback(failed)
            m.dlq.labels(kind=r.kind).inc()
            log.warning("record rejected to the dead-letter topic",
                        extra={"topic": r.topic, "partition": r.partition, "offset": r.offset,
                               "field": dl.field, "reason": dl.reason})
        alerts = 0
        same_scored, same_alerts = self.same_partition[t_scored], self.same_partition[t_alerts]
        for sc in result.scored:
            value = orjson.dumps(sc.record(scored_at))
            key = sc.payment.account_id.encode()
            # the input's produce time travels along, so consumers can measure end-to-end latency
            headers = [("source_timestamp_ms", str(sc.timestamp_ms).encode())]
            send(t_scored, key=key, value=value, headers=headers,
                 partition=sc.partition if same_scored else None).add_errback(failed)
            if sc.decision != "allow":
                send(t_alerts, key=key, value=value, headers=headers,
                     partition=sc.partition if same_alerts else None).add_errback(failed)
                alerts += 1
        if result.scored or result.dead_letters:
            self.acks.sent([sc.timestamp_ms for sc in result.scored])
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
        if result.not_scored:
            m.events.labels(kind=PAYMENTS, outcome="duplicate").inc(len(result.not_scored))
            log.info("duplicate payments not scored again (same event_id within the lateness)",
                     extra={"count": len(result.not_scored),
                            "event_ids": ",".join(result.not_scored[:10])})
        sink = self.scorer.sink
        if sink is not None:
            if accounts:
                sink.upsert_accounts(accounts)
            if result.logins:
                logins: list[Login] = result.logins
                sink.write_logins(logins)
            if result.scored:
                sink.write_scored([sc.sink_record(scored_at) for sc in result.scored])

    def _send_failed(self, exc: BaseException) -> None:
        """Errback of every output send (runs on the producer's thread)."""
        if self._send_error is None:
            self._send_error = exc

    def _check_outputs(self) -> None:
        """An output that failed after the producer's retries (its errback), or a flush that
        failed on the helper thread, fails the session: it restarts from the last checkpoint
        and emits again (outputs are idempotent by ``event_id``), so no output is lost behind
        a checkpoint. (``KafkaProducer.flush`` itself only logs a failed batch.)"""
        error = self._send_error or self.acks.error
        if error is not None:
            raise KafkaError(f"an output could not be written: {error!r}")

    def _flush_outputs(self) -> None:
        """Send every output now, wait for the broker's acks, then :meth:`_check_outputs`."""
        self.producer.flush(timeout=OUTPUT_FLUSH_TIMEOUT_S)
        self._check_outputs()

    def _update_lag(self) -> None:
        m = self.metrics
        m.partitions.set(len(self.handler.aligners))
        now = time.monotonic()
        for p, aligner in self.handler.aligners.items():
            for kind in (PAYMENTS, LOGINS):
                topic = self.topics[kind]
                tp = TopicPartition(topic, p)
                hw = self.consumer.highwater(tp)
                consumed = aligner.resume_offsets()[kind]
                if hw is not None and consumed is not None:
                    m.lag.labels(topic=topic, partition=str(p)).set(max(0, hw - consumed))
                self.stalls.observe(tp, aligner.consumed(kind), hw, now)

    def _refetch(self, tp: TopicPartition) -> None:
        """Re-establish a stalled partition's fetch: seek to where it is (drops the fetch
        state and whatever is in flight)."""
        self.metrics.stalls.labels(topic=tp.topic, partition=str(tp.partition)).inc()
        try:
            self.consumer.seek(tp, self.consumer.position(tp))
        except Exception as exc:  # noqa: BLE001 - e.g. revoked meanwhile
            log.warning("stalled partition not re-fetched", extra={"error": repr(exc)})

    # ------------------------------------------------------------------ partitions
    def _apply_assignments(self) -> set[int]:
        """Restore the newly assigned partitions and seek (main thread). Per partition:

        1. its newest checkpoint of this group, restored: continue right after it;
        2. else (none, or unusable: another feature version, missing chunks) a start point —
           the unusable checkpoint's offsets, else the group's committed offsets, else
           ``start_from`` (``earliest``: the log start; ``latest``: the log end) — and the
           state is warmed by replaying the ``warmup_lookback_s`` of history before it, with
           no outputs for those payments."""
        parts = sorted(self.pending_assigned)
        self.pending_assigned.clear()
        checkpoints = self.store.restore(parts)
        tps = [TopicPartition(self.topics[k], p) for p in parts for k in (PAYMENTS, LOGINS)]
        begin = self.consumer.beginning_offsets(tps)
        end: dict[TopicPartition, int] | None = None
        warm_from: dict[TopicPartition, Any] | None = None
        for p in parts:
            ckpt = checkpoints.get(p)
            parked = self.parked.pop(p, None)
            engine = None
            if ckpt is not None and parked is not None and parked[0] == ckpt.ckpt_id:
                engine = parked[1]
            elif ckpt is not None:
                try:
                    engine = FeatureEngine.restore(ckpt.state, self.ref)
                except Exception as exc:  # noqa: BLE001 - another version, a corrupt snapshot
                    self.metrics.checkpoints_ignored.inc()
                    log.warning("checkpoint not usable (%s); rebuilding the state from the "
                                "retained input", exc, extra={"partition": p,
                                                              "checkpoint": ckpt.ckpt_id})
            offsets: dict[str, int] = {}
            emit_from: int | None = None
            if engine is not None:
                assert ckpt is not None
                for kind in (PAYMENTS, LOGINS):
                    tp = TopicPartition(self.topics[kind], p)
                    saved = ckpt.payments_offset if kind == PAYMENTS else ckpt.logins_offset
                    offsets[kind] = max(begin[tp], saved) if saved is not None else begin[tp]
                emit_from = ckpt.emit_from
                how = "checkpoint"
            else:
                engine = FeatureEngine(self.ref, allowed_lateness_s=self.s.allowed_lateness_s)
                if warm_from is None:
                    end = self.consumer.end_offsets(tps)
                    warm_from = self._warm_from(tps)
                assert end is not None
                start, how = self._start_point(p, ckpt, begin, end)
                for kind in (PAYMENTS, LOGINS):
                    tp = TopicPartition(self.topics[kind], p)
                    w = warm_from.get(tp)
                    w = start[kind] if w is None else w.offset
                    offsets[kind] = max(begin[tp], min(w, start[kind]))
                emit_from = start[PAYMENTS]
            for kind in (PAYMENTS, LOGINS):
                self.consumer.seek(TopicPartition(self.topics[kind], p), offsets[kind])
            self.handler.open_partition(p, engine, offsets[PAYMENTS], offsets[LOGINS],
                                        emit_from=emit_from)
            log.info("partition assigned", extra={
                "partition": p, "start": how, "checkpoint": ckpt.ckpt_id if ckpt else None,
                "payments_offset": offsets[PAYMENTS], "logins_offset": offsets[LOGINS],
                "emit_from": self.handler.emit_from.get(p)})
        self.consumer.resume(*tps)
        self.metrics.partitions.set(len(self.handler.aligners))
        return set(parts)

    def _start_point(self, p: int, ckpt: Checkpoint | None, begin: dict[TopicPartition, int],
                     end: dict[TopicPartition, int]) -> tuple[dict[str, int], str]:
        """Where a partition without a usable checkpoint starts emitting outputs."""
        tps = {kind: TopicPartition(self.topics[kind], p) for kind in (PAYMENTS, LOGINS)}
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
        hw = probe.highwater(tp)
        return max(listed, hw or 0)

    def _warm_from(self, tps: list[TopicPartition]) -> dict[TopicPartition, Any]:
        """Offsets of the first records produced within the warm-up look-back (None where
        there is none; the broker may not support the lookup: then no warm-up)."""
        lookback = self.s.warmup_lookback_s
        if lookback <= 0:
            return {}
        since_ms = int((time.time() - lookback) * 1000)
        try:
            return dict(self.consumer.offsets_for_times({tp: max(0, since_ms) for tp in tps}))
        except Exception as exc:  # noqa: BLE001 - an older broker: start without warm-up
            log.warning("offsets by time not available; no warm-up replay",
                        extra={"error": repr(exc)})
            return {}

    def revoke(self, partitions: set[int], checkpoint: bool) -> None:
        """Give partitions up (called on kafka-python's IO thread during poll/close)."""
        self.pending_assigned -= partitions
        owned = sorted(p for p in partitions if p in self.handler.engines)
        if not owned:
            return
        if checkpoint:
            try:
                written = self.checkpoint(owned, commit=False)
                for c in written:
                    self.parked[c.partition] = (c.ckpt_id, self.handler.engines[c.partition])
            except (KafkaError, TimeoutError) as exc:
                log.error("checkpoint on revocation failed; the next owner replays more",
                          extra={"partitions": owned, "error": repr(exc)})
        for p in owned:
            self.handler.close_partition(p)
        log.info("partitions revoked", extra={"partitions": owned, "checkpointed": checkpoint})

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, partitions: list[int], commit: bool) -> list[Checkpoint]:
        """Outputs durable first, then state + offsets, then (main thread only) group offsets."""
        self.last_checkpoint = time.monotonic()
        if not partitions:
            return []
        self._flush_outputs()
        version = self.scorer.model.version if self.scorer.model else None
        checkpoints = [
            Checkpoint.new(p, self.handler.engines[p].snapshot(),
                           self.handler.resume_offsets(p), version,
                           emit_from=self.handler.emit_from.get(p),
                           feature_version=FEATURE_VERSION)
            for p in partitions
        ]
        t0 = time.perf_counter()
        self.store.write(checkpoints)
        self.metrics.checkpointed()
        log.debug("checkpoint written", extra={
            "partitions": partitions, "bytes": sum(len(c.state) for c in checkpoints),
            "ms": round((time.perf_counter() - t0) * 1000, 1)})
        if commit:
            offsets = {}
            for c in checkpoints:
                for kind, off in ((PAYMENTS, c.payments_offset), (LOGINS, c.logins_offset)):
                    if off is not None:
                        offsets[TopicPartition(self.topics[kind], c.partition)] = \
                            OffsetAndMetadata(off, "", -1)
            try:
                self.consumer.commit(offsets)
            except CommitFailedError as exc:  # rebalancing: the checkpoint is what counts
                log.warning("group offset commit failed", extra={"error": repr(exc)})
            try:  # the reference tables' dead letters are durable (flushed above): not again
                self.reference.commit_dead_lettered()
            except KafkaError as exc:
                log.warning("reference dead-letter position not committed (they are sent "
                            "again after a restart)", extra={"error": repr(exc)})
        return checkpoints

    def close(self, checkpoint: bool) -> None:
        if checkpoint:
            try:
                self.checkpoint(self.handler.partitions(), commit=True)
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

