"""Topic names and their creation (idempotent) on any Kafka-protocol broker.

State topics (the global tables and the checkpoints) are created compacted: only the newest
record of each key is needed, and compaction keeps them from growing with time. Partitions and
replication factor of every topic the service creates are settings
(``CANHGIAC_TOPIC_PARTITIONS``, ``CANHGIAC_TOPIC_REPLICATION``). At start the scorer describes
the state topics that already exist and warns once for each that is not compacted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)

INPUT_TOPICS = ("payments", "logins")
GLOBAL_TOPICS = ("labels", "accounts", "watchlist", "confirmed_payments")
OUTPUT_TOPICS = ("payments.scored", "alerts", "payments.dlq", "account.actions")
# shared devices and IPs (streaming.devices): the repartition by device / IP and its table;
# both with the same partition count (the processor writes a key's table record to the
# partition of the same number as its sightings)
DEVICE_TOPICS = ("device.sightings", "device.links")
ALL_TOPICS = INPUT_TOPICS + GLOBAL_TOPICS + OUTPUT_TOPICS + DEVICE_TOPICS
# keyed state: the newest record per key is the truth
COMPACTED_TOPICS = frozenset({"labels", "accounts", "watchlist", "confirmed_payments",
                              "scorer.checkpoints", "model.info", "device.links"})
COMPACT = {"cleanup.policy": "compact"}


def topic_configs(name: str, prefix: str = "") -> dict[str, str]:
    """The configs the service requests for a topic it creates (full name with prefix)."""
    base = name[len(prefix):] if name.startswith(prefix) else name
    return dict(COMPACT) if base in COMPACTED_TOPICS else {}


def new_topics(names: Iterable[str], partitions: int, replication: int,
               prefix: str = "") -> list[NewTopic]:
    """What :func:`ensure_topics` asks the broker to create (pure: the tests read it)."""
    return [
        NewTopic(name=n, num_partitions=partitions, replication_factor=replication,
                 topic_configs=topic_configs(n, prefix) or None)
        for n in names
    ]


def ensure_topics(
    bootstrap: str | list[str],
    names: Iterable[str],
    partitions: int = 4,
    replication: int = 1,
    prefix: str = "",
    **client_config: Any,
) -> None:
    """Create the topics that do not exist yet. ``payments`` and ``logins`` must share a
    partition count (co-partitioned by account_id); pass the same ``partitions`` for both.
    ``prefix`` is the topic prefix of ``names`` (to recognise the state topics to compact)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, **client_config)
    try:
        existing = set(admin.list_topics())
        new = new_topics([n for n in names if n not in existing], partitions, replication,
                         prefix)
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
    client_config: dict[str, object], names: Iterable[str], partitions: int = 4,
    replication: int = 1, prefix: str = "",
) -> None:
    """:func:`ensure_topics` with a kafka-python client configuration as
    ``Settings.kafka_client_config()`` gives it (bootstrap servers, security, SASL)."""
    config: dict[str, Any] = dict(client_config)
    bootstrap = config.pop("bootstrap_servers")
    assert isinstance(bootstrap, str | list), bootstrap
    ensure_topics(bootstrap, names, partitions=partitions, replication=replication,
                  prefix=prefix, **config)


def warn_if_not_compacted(client_config: dict[str, object], names: Iterable[str],
                          prefix: str = "") -> list[str]:
    """Describe the state topics among ``names``; log one warning for each whose
    ``cleanup.policy`` is not compact. Returns those names. A broker that does not report
    topic configs (some Kafka-protocol brokers) is logged once at INFO and nothing is said."""
    state = [n for n in names if topic_configs(n, prefix)]
    if not state:
        return []
    config: dict[str, Any] = dict(client_config)
    try:
        admin = KafkaAdminClient(**config)
    except Exception as exc:  # noqa: BLE001 - a check, never a reason not to start
        log.info("topic configs not checked", extra={"error": repr(exc)})
        return []
    bad: list[str] = []
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in state]
        # every config, defaults included: an unset cleanup.policy is the default "delete"
        described = admin.describe_configs(resources, config_filter="all")
        for name, policy in policies_not_compacted(described):
            bad.append(name)
            log.warning(
                "state topic is not compacted: it grows without bound and restores "
                "slow down; set cleanup.policy=compact on it",
                extra={"topic": name, "cleanup_policy": policy})
    except Exception as exc:  # noqa: BLE001
        log.info("topic configs not reported by the broker; compaction not checked",
                 extra={"error": repr(exc)})
    finally:
        admin.close()
    return bad


def policies_not_compacted(described: Any) -> list[tuple[str, str]]:
    """(topic, cleanup.policy) of the topics whose policy is known and not compact, from
    ``KafkaAdminClient.describe_configs`` (``{"topic": {name: {key: {"value": ...}}}}``)."""
    out: list[tuple[str, str]] = []
    topics = described.get("topic") if isinstance(described, dict) else None
    for name, configs in (topics or {}).items():
        entry = configs.get("cleanup.policy") if isinstance(configs, dict) else None
        policy = entry.get("value") if isinstance(entry, dict) else entry
        if policy is not None and "compact" not in str(policy):
            out.append((str(name), str(policy)))
    return out
