"""Topic names and their creation (idempotent) on any Kafka-protocol broker."""

from __future__ import annotations

import logging
from collections.abc import Iterable

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
    **client_config: object,
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
