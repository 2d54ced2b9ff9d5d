"""The scorer's outputs and their acknowledgements: ``payments.scored``, ``alerts``,
``payments.dlq`` (and ``confirmed_payments``, :mod:`streaming.confirmed`).

:class:`Outputs` owns the producer. :meth:`Outputs.emit` sends one handled batch: every dead
letter (raw bytes + reason headers), one ``payments.scored`` record per scored payment
(:meth:`models.scored.ScoredPayment.to_json`, key = ``account_id``) and the same record on
``alerts`` for review/hold. The sends are handed to :class:`OutputAcks`, a helper thread that
flushes them and measures end-to-end latency when the broker acknowledges, so the loop polls and
scores the next batch meanwhile. A send that failed after the producer's retries, or a flush
that failed, is raised by :meth:`Outputs.check` as :class:`OutputError`; the session then
restarts from the last checkpoint and emits again (outputs are idempotent by ``event_id``), so
nothing is lost behind a checkpoint. :meth:`Outputs.flush` makes everything sent durable (the
first step of a checkpoint).

Producer batches: one iteration's outputs (up to ``batch_size`` payments, ~1 KB each) must
leave in a few batches per partition with one wake-up of the sender thread, not one per record
(kafka-python wakes its sender for every batch it opens; each wake-up hands the GIL away).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from features.events import ConfirmedPayment, encode
from streaming.handler import HandleResult

log = logging.getLogger(__name__)

OUTPUTS = ("payments.scored", "alerts", "payments.dlq")
# One iteration's sends are flushed by OutputAcks right after the iteration, so linger only
# groups an iteration's records into one batch per partition.
PRODUCER_LINGER_MS = 100
PRODUCER_BATCH_BYTES = 1 << 20  # 1 MiB: an iteration's outputs of one partition in one batch
FLUSH_TIMEOUT_S = 30.0


class OutputError(KafkaError):
    """An output could not be written after the producer's retries."""


class OutputAcks:
    """Waits for the outputs' acknowledgements on a helper thread.

    :meth:`sent` (main thread, after an iteration's sends) hands over the produce times of the
    scored payments just sent and wakes the helper; the helper takes everything handed over so
    far, calls ``producer.flush()`` (which sends at once and waits for every batch appended
    before it began, so for all it took) and observes the end-to-end latency of each. A flush
    that fails is kept in :attr:`error`."""

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


class Outputs:
    """The producer of the scorer's outputs (see the module docstring)."""

    def __init__(self, client_config: dict[str, object], topics: dict[str, str],
                 metrics: Any, same_partition: dict[str, bool] | None = None) -> None:
        self.topics = topics
        self.metrics = metrics
        self.producer = KafkaProducer(
            **client_config, acks="all", linger_ms=PRODUCER_LINGER_MS, retries=5,
            batch_size=PRODUCER_BATCH_BYTES, max_request_size=2 * 1024 * 1024)
        self.acks = OutputAcks(self.producer, metrics.latency, FLUSH_TIMEOUT_S)
        # outputs go to their input payment's partition when the counts match: what the
        # default key partitioner picks for the same account_id key, without hashing each
        # key in Python (kafka-python's murmur2 is a measurable part of a send)
        self.same_partition = same_partition or {}
        self._error: BaseException | None = None

    def emit(self, result: HandleResult) -> int:
        """Send a handled batch's dead letters and scored payments; returns the alerts sent."""
        send = self.producer.send
        failed = self._failed
        t_scored, t_alerts = self.topics["payments.scored"], self.topics["alerts"]
        for dl in result.dead_letters:
            r = dl.record
            send(self.topics["payments.dlq"], key=r.key, value=r.value,
                 headers=dl.headers()).add_errback(failed)
            self.metrics.dlq.labels(kind=r.kind).inc()
            log.warning("record rejected to the dead-letter topic",
                        extra={"topic": r.topic, "partition": r.partition, "offset": r.offset,
                               "field": dl.field, "reason": dl.reason})
        alerts = 0
        same_scored = self.same_partition.get(t_scored, False)
        same_alerts = self.same_partition.get(t_alerts, False)
        for sc in result.scored:
            value = sc.value.to_json()
            key = sc.value.account_id.encode()
            # the input's produce time travels along: consumers measure end-to-end latency
            headers = [("source_timestamp_ms", str(sc.timestamp_ms).encode())]
            send(t_scored, key=key, value=value, headers=headers,
                 partition=sc.partition if same_scored else None).add_errback(failed)
            if sc.value.decision != "allow":
                send(t_alerts, key=key, value=value, headers=headers,
                     partition=sc.partition if same_alerts else None).add_errback(failed)
                alerts += 1
        if result.scored:
            now = time.perf_counter()
            observe = self.metrics.sent_after
            for sc in result.scored:
                if sc.polled_at:
                    observe(now - sc.polled_at, now - sc.released_at)
        if result.scored or result.dead_letters:
            self.acks.sent([sc.timestamp_ms for sc in result.scored])
        return alerts

    def publish_confirmed(self, records: list[ConfirmedPayment]) -> None:
        """Send confirmed payments resolved here to the compacted ``confirmed_payments``
        topic, key = ``label_id`` (made durable with the other outputs)."""
        if not records:
            return
        topic = self.topics["confirmed_payments"]
        for record in records:
            self.producer.send(topic, key=record.label_id.encode(),
                               value=encode(record)).add_errback(self._failed)
        self.acks.sent([])

    def _failed(self, exc: BaseException) -> None:
        """Errback of every output send (runs on the producer's thread)."""
        if self._error is None:
            self._error = exc

    def check(self) -> None:
        """Raise :class:`OutputError` if any output failed after the producer's retries
        (``KafkaProducer.flush`` itself only logs a failed batch)."""
        error = self._error or self.acks.error
        if error is not None:
            raise OutputError(f"an output could not be written: {error!r}")

    def flush(self) -> None:
        """Send every output now, wait for the broker's acks, then :meth:`check`."""
        self.producer.flush(timeout=FLUSH_TIMEOUT_S)
        self.check()

    def close(self) -> None:
        self.acks.close()
        try:
            self.producer.close(timeout=10)
        except KafkaError:
            # kafka-python's close flushes first and raises before it stops its sender thread
            # when batches are still undelivered (a broker outage): stop the thread anyway,
            # or every session restart during an outage would leave one running
            sender = getattr(self.producer, "_sender", None)
            if sender is not None:
                sender.force_close()
                sender.join(timeout=5)
            raise
