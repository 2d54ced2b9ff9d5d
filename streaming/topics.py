"""Topic names and their creation (idempotent) on any Kafka-protocol broker."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)

INPUT_TOPICS = ("payments", "logins")
GLOBAL_TOPICS = ("labels", "accounts")
OUTPUT_TOPICS = ("payments.scored", "alerts", "payments.dlq", "account.actions")
ALL_TOPICS = INPUT_TOPICS + GLOBAL_TOPICS + OUTPUT_TOPICS


def ensure_topics(
    bootstrap: str | list[str],
    names: Iterable[str],
    partitions: int = 4,
    replication: int = 1,
    **client_config: Any,
) -> None:
    """Create the topics that do not exist yet. ``payments`` and ``logins`` must share a
    partition count (co-partitioned by account_id); pass the same ``partitions`` for both."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, **client_config)
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(name=n, num_partitions=partitions, replication_factor=replication)
            for n in names
            if n not in existing
        ]
        for topic in new:
            try:
                admin.create_topics([topic])
            except TopicAlreadyExistsError:
                pass
        if new:
            log.info("topics created", extra={"topics": [t.name for t in new]})
    finally:
        admin.close()


def ensure_topics_with(
    client_config: dict[str, object], names: Iterable[str], partitions: int = 4
) -> None:
    """:func:`ensure_topics` with a kafka-python client configuration as
    ``Settings.kafka_client_config()`` gives it (bootstrap servers, security, SASL)."""
    config: dict[str, Any] = dict(client_config)
    bootstrap = config.pop("bootstrap_servers")
    assert isinstance(bootstrap, str | list), bootstrap
    ensure_topics(bootstrap, names, partitions=partitions, **config)
