"""Prometheus metrics of the scorer (own registry: several scorers can live in one process)."""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from streaming.collector import COUNT_EVERY_S

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.035, 0.05,
                   0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ScorerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("canhgiac_scorer_events", "Input records by topic kind and outcome",
                              ["kind", "outcome"], registry=r)
        self.dlq = Counter("canhgiac_scorer_dead_letters", "Records sent to payments.dlq",
                           ["kind"], registry=r)
        self.alerts = Counter("canhgiac_scorer_alerts", "Alerts produced", ["decision"],
                              registry=r)
        self.lag = Gauge("canhgiac_scorer_consumer_lag", "High-water mark minus position",
                         ["topic", "partition"], registry=r)
        self.latency = Histogram(
            "canhgiac_scorer_end_to_end_seconds",
            "Input record produce time to scored record produced", buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram("canhgiac_scorer_batch_seconds", "Time to handle a batch",
                                       registry=r)
        self.poll_to_send = Histogram(
            "canhgiac_scorer_poll_to_send_seconds",
            "In-process latency of a payment: its poll returned to its output sent",
            buckets=LATENCY_BUCKETS, registry=r)
        self.release_to_send = Histogram(
            "canhgiac_scorer_release_to_send_seconds",
            "Processing latency of a payment: released by the event-time alignment (its "
            "inputs all polled) to its output sent. Poll to send minus this is the time it "
            "waited for the other topic's records or for the reference tables",
            buckets=LATENCY_BUCKETS, registry=r)
        self.iteration_seconds = Histogram(
            "canhgiac_scorer_iteration_seconds", "One loop iteration (poll excluded)",
            buckets=LATENCY_BUCKETS, registry=r)
        self.iteration_max = Gauge("canhgiac_scorer_iteration_max_seconds",
                                   "Longest loop iteration since start (poll excluded)",
                                   registry=r)
        self._iteration_max = 0.0
        self.poll_to_send_max = Gauge("canhgiac_scorer_poll_to_send_max_seconds",
                                      "Longest in-process latency since start", registry=r)
        self._poll_to_send_max = 0.0
        self.model_info = Gauge("canhgiac_scorer_model_info", "Model version in use (value 1)",
                                ["version"], registry=r)
        self.model_reloads = Counter("canhgiac_scorer_model_reloads", "Models swapped in",
                                     registry=r)
        self.checkpoints = Counter("canhgiac_scorer_checkpoints", "Checkpoints written",
                                   registry=r)
        self.checkpoints_unchanged = Counter(
            "canhgiac_scorer_checkpoints_unchanged",
            "Due checkpoints not written again: the partition's newest one is still exact "
            "(no input applied since)", registry=r)
        self.checkpoint_age = Gauge("canhgiac_scorer_checkpoint_age_seconds",
                                    "Seconds since the last durable checkpoint was written or "
                                    "found still exact", registry=r)
        self.held_seconds = Counter(
            "canhgiac_scorer_held_payment_seconds",
            "Seconds summed over payments held back by the event-time alignment, by what they "
            "waited for: 'logins' (the logins partition to be caught up for them) or "
            "'reference' (the labels/accounts/watch-list/confirmed-payments tables, or the "
            "model). rate(this) / rate(canhgiac_scorer_events_total{outcome=\"scored\"}) is "
            "the mean wait of a payment; decoding, features, model and sending are not in it",
            ["waiting_for"], registry=r)
        self._held_by = {why: self.held_seconds.labels(waiting_for=why)
                         for why in ("logins", "reference")}
        self.end_offset_checks = Counter(
            "canhgiac_scorer_end_offset_checks",
            "Log-end offset answers (ListOffsets) the aligner received", registry=r)
        self.checkpoints_ignored = Counter(
            "canhgiac_scorer_checkpoints_ignored",
            "Checkpoints not usable (another feature version, corrupt): state rebuilt",
            registry=r)
        self.stalls = Counter(
            "canhgiac_scorer_partition_stalls",
            "Partitions whose high-water mark grew while the position did not move for "
            "CANHGIAC_STALL_AFTER_S (each time, the fetch is re-established)",
            ["topic", "partition"], registry=r)
        self.partitions = Gauge("canhgiac_scorer_partitions", "Partitions assigned", registry=r)
        self.gc_frozen = Gauge(
            "canhgiac_scorer_gc_frozen_objects",
            "Long-lived objects (the feature state) kept out of full garbage collections "
            f"(streaming.collector), counted at start, after each restore and then every "
            f"{COUNT_EVERY_S / 60:g} minutes", registry=r)
        self.confirmed_published = Counter(
            "canhgiac_scorer_confirmed_published",
            "Confirmed payments resolved here from a label and its payment, and published",
            registry=r)
        self.labels_awaiting = Gauge(
            "canhgiac_scorer_labels_awaiting",
            "Payment-level fraud/mule labels whose payment no scorer has resolved yet",
            registry=r)
        self.labels_expired = Counter(
            "canhgiac_scorer_labels_expired",
            "Labels no longer awaited: no scorer found their payment within 35 days",
            registry=r)
        self._last_checkpoint = time.monotonic()
        self.checkpoint_age.set_function(lambda: time.monotonic() - self._last_checkpoint)
        self._version: str | None = None

    def sent_after(self, seconds: float, processing: float | None = None) -> None:
        """One payment's in-process latency (its poll returned → its output sent) and, when
        known, the part of it after its release by the alignment (``processing``)."""
        self.poll_to_send.observe(seconds)
        if processing is not None:
            self.release_to_send.observe(processing)
        if seconds > self._poll_to_send_max:
            self._poll_to_send_max = seconds
            self.poll_to_send_max.set(seconds)

    def iteration(self, seconds: float) -> None:
        self.iteration_seconds.observe(seconds)
        if seconds > self._iteration_max:
            self._iteration_max = seconds
            self.iteration_max.set(seconds)

    def held(self, seconds: dict[str, float]) -> None:
        """Add payment-seconds held, by reason (``streaming.align.HeldTime``)."""
        for why, value in seconds.items():
            if value > 0:
                self._held_by[why].inc(value)

    def checkpointed(self) -> None:
        self._last_checkpoint = time.monotonic()
        self.checkpoints.inc()

    def checkpoint_unchanged(self) -> None:
        self._last_checkpoint = time.monotonic()
        self.checkpoints_unchanged.inc()

    def set_model(self, version: str) -> None:
        if self._version is not None:
            self.model_info.remove(self._version)
        self.model_info.labels(version=version).set(1)
        self._version = version

    def serve(self, port: int, host: str = "127.0.0.1") -> bool:
        """Serve /metrics; a port already taken is logged (one line, what and how to fix) and
        scoring goes on without the endpoint. Returns whether it is served."""
        if not port:
            return False
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log.error("metrics port %s:%d not available (%s): scoring goes on without "
                      "/metrics; set CANHGIAC_METRICS_PORT to a free port (0 = off)",
                      host, port, exc.strerror or exc)
            return False
        log.info("metrics served", extra={"host": host, "port": port})
        return True
