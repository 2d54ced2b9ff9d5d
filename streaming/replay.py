"""Produce an event stream to Kafka in event-time order, optionally paced (demos, load tests,
replaying a bank's history).

Every event goes to the topic of its kind (``payments``, ``logins``, ``accounts``, ``labels``),
keyed by ``account_id`` so one account's payments and logins land in co-partitioned partitions;
the value is the contract JSON (:func:`features.events.encode`). ``rate`` paces *payments* per
second against a monotonic clock (other events go out as they come, between payments); ``None``
sends as fast as the producer accepts. Delivery failures are counted and raised at the end, never
silently dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer

from features.events import Account, Event, Label, Login, Payment, encode

log = logging.getLogger(__name__)

KIND_OF = {Payment: "payments", Login: "logins", Account: "accounts", Label: "labels"}
PROGRESS_EVERY_S = 1.0


class ReplayError(RuntimeError):
    """Some events could not be delivered."""


@dataclass
class ReplayStats:
    sent: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    first_error: str = ""
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def payments_per_s(self) -> float:
        return self.sent.get("payments", 0) / self.seconds if self.seconds > 0 else 0.0


def kind_of(event: Event) -> str:
    try:
        return KIND_OF[type(event)]
    except KeyError:
        raise TypeError(f"not an event: {type(event).__name__}") from None


def produce_events(
    producer_config: Mapping[str, Any],
    events_in_ts_order: Iterable[Event],
    topic_for_kind: Mapping[str, str],
    rate: float | None,
    on_progress: Callable[[ReplayStats], None] | None = None,
) -> ReplayStats:
    """Send every event to ``topic_for_kind[kind]``; returns counts per kind.

    ``producer_config`` holds kafka-python ``KafkaProducer`` options (bootstrap_servers, security
    …); ``acks='all'`` and a short linger are defaults it may override. Kinds missing from
    ``topic_for_kind`` are skipped. Raises :class:`ReplayError` if any send failed.
    """
    if rate is not None and rate <= 0:
        raise ValueError(f"rate must be > 0 payments/s or None, got {rate}")
    config = {"acks": "all", "linger_ms": 5, "retries": 5, **producer_config}
    producer = KafkaProducer(**config)
    stats = ReplayStats(sent={k: 0 for k in topic_for_kind})
    start = time.monotonic()
    last_progress = start

    def failed(exc: BaseException) -> None:
        stats.failed += 1
        if not stats.first_error:
            stats.first_error = f"{type(exc).__name__}: {exc}"

    try:
        for event in events_in_ts_order:
            kind = kind_of(event)
            topic = topic_for_kind.get(kind)
            if topic is None:
                continue
            if kind == "payments" and rate is not None:
                due = start + stats.sent[kind] / rate
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            producer.send(topic, key=event.account_id.encode("utf-8"),
                          value=encode(event)).add_errback(failed)
            stats.sent[kind] += 1
            now = time.monotonic()
            if on_progress is not None and now - last_progress >= PROGRESS_EVERY_S:
                stats.seconds = now - start
                on_progress(stats)
                last_progress = now
        producer.flush()
    finally:
        producer.close()
    stats.seconds = time.monotonic() - start
    log.info("replay produced", extra={"sent": stats.sent, "failed": stats.failed,
                                       "seconds": round(stats.seconds, 2)})
    if on_progress is not None:
        on_progress(stats)
    if stats.failed:
        raise ReplayError(f"{stats.failed} of {stats.total} events were not delivered; "
                          f"first error: {stats.first_error}")
    return stats
