"""The model in force, published to the compacted ``model.info`` topic for the case store.

``ModelInfoProducer(settings)`` has the ``set_model_info(version, metrics, thresholds)`` of the
case store it replaces in :class:`canhgiac.cmd_score.ModelInfoPublisher`: the scorer records
each model it loads on Kafka and the case-store projection (``serving.projection``) writes it
into the store, so ``GET /v1/model`` shows it without the scorer touching the database.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from canhgiac.settings import Settings
from models.model_info import ModelInfo

log = logging.getLogger(__name__)
TOPIC = "model.info"
SEND_TIMEOUT_S = 10.0


def ensure_model_info_topic(settings: Settings) -> None:
    """Create ``model.info`` (1 partition, compacted, the configured replication) if it does
    not exist."""
    from streaming.topics import ensure_topics_with  # noqa: PLC0415

    ensure_topics_with(settings.kafka_client_config(), [settings.topic(TOPIC)], partitions=1,
                       replication=settings.topic_replication, prefix=settings.topic_prefix)


class ModelInfoProducer:
    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic(TOPIC)
        self._config = settings.kafka_client_config()
        self._producer: Any = None

    def set_model_info(self, version: str, metrics: dict[str, Any],
                       thresholds: dict[str, Any]) -> None:
        from kafka import KafkaProducer  # noqa: PLC0415

        if self._producer is None:
            # a broker that does not answer costs the model load seconds, not minutes
            self._producer = KafkaProducer(**self._config, acks="all", retries=5,
                                           bootstrap_timeout_ms=5000, max_block_ms=5000)
        info = ModelInfo(str(version), datetime.now(UTC),
                         {k: float(v) for k, v in metrics.items()
                          if isinstance(v, int | float) and not isinstance(v, bool)},
                         {k: float(v) for k, v in thresholds.items()})
        self._producer.send(self.topic, key=info.version.encode(), value=info.to_json()).get(
            timeout=SEND_TIMEOUT_S)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=SEND_TIMEOUT_S)
            self._producer = None
