"""Publication of rapid-response actions to ``account.actions`` (for core banking) and of
investigators' outcomes to ``labels`` (for retraining). Key: ``account_id``; value: JSON."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Protocol

from features.events import Label, encode

log = logging.getLogger(__name__)
SEND_TIMEOUT_S = 10.0


class PublisherUnavailable(Exception):
    """The broker cannot be reached: every event would fail now (the outbox stops its round
    and retries later), as opposed to ``False``: this one event was refused."""


class ActionPublisher(Protocol):
    """``publish_*`` return True once the broker acknowledged, False when this event was
    refused, and may raise :class:`PublisherUnavailable` when nothing can be sent now."""

    def publish_action(self, action: dict[str, Any]) -> bool: ...
    def publish_label(self, label: Label) -> bool: ...
    def close(self) -> None: ...


class KafkaActionPublisher:
    """kafka-python producer with ``acks=all``; each publish waits for the broker's ack."""

    def __init__(self, client_config: dict[str, Any], topic: str,
                 labels_topic: str | None = None) -> None:
        self.topic = topic
        self.labels_topic = labels_topic
        self._config = dict(client_config)
        self._lock = threading.Lock()
        self._producer: Any = None

    def _get_producer(self) -> Any:
        """Connect on first use, so the API starts even while the broker is down."""
        with self._lock:
            if self._producer is None:
                from kafka import KafkaProducer  # noqa: PLC0415 - only when Kafka is used

                # a broker outage must not hold an investigator's request for a minute
                self._producer = KafkaProducer(**{"acks": "all", "retries": 3,
                                                  "max_block_ms": 5000,
                                                  "bootstrap_timeout_ms": 5000, **self._config})
            return self._producer

    def _send(self, topic: str, key: str, value: bytes) -> bool:
        from kafka.errors import KafkaConnectionError, KafkaTimeoutError  # noqa: PLC0415

        try:
            producer = self._get_producer()
        except Exception as exc:  # unreachable, or a configuration the client refuses
            log.warning("no producer", extra={"topic": topic, "error": repr(exc)[:300]})
            raise PublisherUnavailable(repr(exc)) from None
        try:
            producer.send(topic, key=key.encode("utf-8"), value=value).get(
                timeout=SEND_TIMEOUT_S)
        except (KafkaTimeoutError, KafkaConnectionError) as exc:
            log.warning("broker unavailable", extra={"topic": topic, "error": repr(exc)[:300]})
            raise PublisherUnavailable(repr(exc)) from None
        except Exception as exc:  # this event was refused: reported to the caller, logged
            log.error("publish failed", extra={"topic": topic, "key": key,
                                               "error": repr(exc)[:300]})
            return False
        return True

    def publish_action(self, action: dict[str, Any]) -> bool:
        value = json.dumps(action, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return self._send(self.topic, str(action["account_id"]), value)

    def publish_label(self, label: Label) -> bool:
        if self.labels_topic is None:
            return True  # not asked to publish labels: they stay in the case store
        return self._send(self.labels_topic, label.account_id, encode(label))

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=SEND_TIMEOUT_S)
                self._producer = None


class NoPublisher:
    """Used when no broker is configured: nothing leaves the process; events wait in the
    outbox (the API reports ``action_published: false``)."""

    def publish_action(self, action: dict[str, Any]) -> bool:
        log.debug("no action publisher configured", extra={"action": action.get("action")})
        return False

    def publish_label(self, label: Label) -> bool:
        return False

    def close(self) -> None:
        return None
