"""Checkpoints on the real broker: chunks, manifests and tombstones; the newest one restored;
groups kept apart; malformed records ignored; restore reads one round, not the history; topic
configs requested compacted."""

from __future__ import annotations

import os

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streaming.checkpoint import (
    CHECKPOINT_TOPIC,
    CHUNK_BYTES,
    FIRST_WINDOW,
    Checkpoint,
    CheckpointStore,
    chunk_key,
    manifest_key,
    parse_manifest,
)
from streaming.topics import (
    ALL_TOPICS,
    ensure_topics,
    new_topics,
    policies_not_compacted,
    topic_configs,
    warn_if_not_compacted,
)

pytestmark = pytest.mark.integration


def _store(broker, topic: str, group: str, producer: KafkaProducer) -> CheckpointStore:
    return CheckpointStore(topic, producer, {"bootstrap_servers": broker.bootstrap}, group)


def _ckpt(p: int, state: bytes, off: int) -> Checkpoint:
    return Checkpoint.new(p, state, {"payments": off, "logins": off + 1}, "v1", emit_from=None,
                          feature_version="fv")


def _all_records(broker, topic: str, partitions: int) -> list:
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                      enable_auto_commit=False, fetch_max_wait_ms=100)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    end = c.end_offsets(tps)
    out = []
    while any(c.position(tp) < end[tp] for tp in tps):
        for recs in c.poll(timeout_ms=200).values():
            out += recs
    c.close()
    return out


@pytest.fixture
def topic(broker, topic_prefix):
    name = topic_prefix + CHECKPOINT_TOPIC
    ensure_topics(broker.bootstrap, [name], partitions=2, prefix=topic_prefix)
    return name


@pytest.fixture
def producer(broker):
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5,
                      max_request_size=2 * 1024 * 1024)
    yield p
    p.close(timeout=5)


def test_write_then_restore_the_newest_with_chunks_manifest_and_tombstones(
        broker, topic, producer):
    store = _store(broker, topic, "g1", producer)
    big = os.urandom(1_300_000)  # three chunks
    first = _ckpt(0, big, 10)
    store.write([first, _ckpt(1, b"one", 20), _ckpt(2, b"two", 30)])
    second = _ckpt(0, big[::-1], 40)
    store.write([second])
    producer.flush()
    records = _all_records(broker, topic, 2)
    # partition 0 and 2 share checkpoint partition 0 (2 % 2), partition 1 the other
    assert {r.partition for r in records if r.key == manifest_key("g1", 1)} == {1}
    assert {r.partition for r in records if r.key == manifest_key("g1", 2)} == {0}
    tombstoned = {r.key for r in records if r.value is None}
    assert tombstoned == {chunk_key("g1", 0, first.ckpt_id, i) for i in range(3)}
    manifest = orjson.loads(next(r.value for r in reversed(records)
                                 if r.key == manifest_key("g1", 0)))
    assert manifest["id"] == second.ckpt_id and manifest["chunks"] == 3
    assert manifest["payments_offset"] == 40 and manifest["feature_version"] == "fv"
    chunk_offsets = {r.offset for r in records
                     if r.key is not None and r.key.startswith(b'["c"') and r.partition == 0
                     and second.ckpt_id.encode() in r.key}
    assert set(manifest["chunk_offsets"]) == chunk_offsets

    fresh = _store(broker, topic, "g1", producer)
    restored = fresh.restore([0, 1, 2, 3])
    assert set(restored) == {0, 1, 2}  # 3 never checkpointed
    assert restored[0].state == big[::-1] and restored[0].ckpt_id == second.ckpt_id
    assert restored[0].payments_offset == 40 and restored[0].logins_offset == 41
    assert restored[1].state == b"one" and restored[2].state == b"two"
    fresh.close()
    store.close()


def test_groups_do_not_see_or_overwrite_each_other(broker, topic, producer):
    a, b = _store(broker, topic, "scorer", producer), _store(broker, topic, "shadow", producer)
    a.write([_ckpt(0, b"A-state", 5)])
    b.write([_ckpt(0, b"B-state", 7)])
    a2, b2 = _store(broker, topic, "scorer", producer), _store(broker, topic, "shadow", producer)
    assert a2.restore([0])[0].state == b"A-state"
    assert b2.restore([0])[0].state == b"B-state"
    assert _store(broker, topic, "other", producer).restore([0]) == {}
    for s in (a, b, a2, b2):
        s.close()


def test_malformed_and_legacy_records_are_ignored_never_raised(broker, topic, producer):
    good = _store(broker, topic, "g", producer)
    good.write([_ckpt(0, b"good", 3)])
    for key, value in [
        (manifest_key("g", 0), b"{not json"),
        (manifest_key("g", 0), orjson.dumps({"partition": 0, "id": 5, "chunk_offsets": "x"})),
        (b"0", orjson.dumps({"partition": 0, "id": "legacy", "chunks": 1})),  # old layout
        (b'["m","g"', b"{}"),
        (None, b"keyless"),
    ]:
        producer.send(topic, key=key, value=value, partition=0)
    producer.flush()
    restored = _store(broker, topic, "g", producer).restore([0])
    assert restored[0].state == b"good"
    assert parse_manifest(b'["m","g",0]', b"[]", "g") is None
    assert parse_manifest(b'["m","g",0]', orjson.dumps(
        {"partition": 0, "id": "x", "chunk_offsets": [1], "payments_offset": "7"}), "g") is None
    good.close()


def test_restore_reads_one_round_however_many_checkpoints_were_written(broker, topic,
                                                                       producer):
    store = _store(broker, topic, "g", producer)
    for i in range(300):
        store.write([_ckpt(p, f"state-{p}-{i}".encode() * 50, i) for p in range(4)])
    fresh = _store(broker, topic, "g", producer)
    restored = fresh.restore([0, 1, 2, 3])
    assert {p: c.state for p, c in restored.items()} == {
        p: f"state-{p}-299".encode() * 50 for p in range(4)}
    # ~2,400 records per checkpoint partition were written (chunk, manifest, tombstone per
    # checkpoint); restore read the last window of each and the chunks it needed
    assert fresh.records_read <= 2 * (FIRST_WINDOW + 4), fresh.records_read
    fresh.close()
    store.close()


def test_state_topics_are_requested_compacted_with_the_configured_partitions():
    prefix = "bank1."
    specs = {t.name: t for t in new_topics([prefix + n for n in (*ALL_TOPICS, CHECKPOINT_TOPIC)],
                                           partitions=12, replication=3, prefix=prefix)}
    compacted = {n for n, t in specs.items() if (t.topic_configs or {}).get(
        "cleanup.policy") == "compact"}
    assert compacted == {prefix + n for n in ("labels", "accounts", "watchlist",
                                              "confirmed_payments", "device.links",
                                              CHECKPOINT_TOPIC)}
    assert not specs[prefix + "device.sightings"].topic_configs  # a repartition: not compacted
    assert all(t.num_partitions == 12 and t.replication_factor == 3 for t in specs.values())
    assert topic_configs("payments") == {} and topic_configs("bank1.accounts", "bank1.") == {
        "cleanup.policy": "compact"}
    compact = {"cleanup.policy": "compact"}
    assert topic_configs("watchlist") == topic_configs("model.info") == compact


def test_a_checkpoint_of_more_chunks_than_the_first_window_is_restored_whole(broker, topic,
                                                                              producer):
    """A large state: each round writes more chunks (and, after its manifest, more tombstones
    of the round before) than the first window holds, so the newest manifest is only found by
    widening; restore still returns the newest state byte for byte."""
    store = _store(broker, topic, "g", producer)
    n_chunks = FIRST_WINDOW + 2
    rounds = [os.urandom(CHUNK_BYTES * (n_chunks - 1) + 17) for _ in range(3)]
    for i, state in enumerate(rounds):
        store.write([_ckpt(0, state, i)])
    fresh = _store(broker, topic, "g", producer)
    restored = fresh.restore([0])
    assert restored[0].state == rounds[-1] and restored[0].payments_offset == 2
    assert fresh.records_read > FIRST_WINDOW
    fresh.close()
    store.close()


def test_a_manifest_far_behind_the_tail_is_found_by_widening_the_window(broker, topic,
                                                                        producer):
    """The newest checkpoint of group g sits behind ~600 records of another group: restore
    looks further back than the first window (and asks the log start only then), and a
    partition that never had a checkpoint is reported missing, not waited for."""
    old = _store(broker, topic, "g", producer)
    old.write([_ckpt(0, b"g-state", 11)])
    busy = _store(broker, topic, "busy", producer)
    for i in range(200):
        busy.write([_ckpt(0, f"busy-{i}".encode(), i)])
    fresh = _store(broker, topic, "g", producer)
    restored = fresh.restore([0, 4])  # both live in checkpoint partition 0; 4 never wrote
    assert set(restored) == {0}
    assert restored[0].state == b"g-state" and restored[0].payments_offset == 11
    assert fresh.records_read > FIRST_WINDOW  # it did read past the first window
    for s in (old, busy, fresh):
        s.close()


def test_a_state_topic_created_without_compaction_is_named_in_a_warning(broker, caplog):
    """The start-up check describes the state topics on the broker (every config, defaults
    included) and warns about one an operator created with the default delete policy."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    # Apache Kafka reports the default policy ("delete") of a topic created without one; the
    # bundled broker reports only the configs requested at creation, so request it
    admin.create_topics([NewTopic("bad.labels", 1, 1,
                                  topic_configs={"cleanup.policy": "delete"})])
    admin.close()
    ensure_topics(broker.bootstrap, ["bad.accounts"], partitions=1, prefix="bad.")  # compacted
    cfg = {"bootstrap_servers": broker.bootstrap}
    with caplog.at_level("WARNING", logger="streaming.topics"):
        assert warn_if_not_compacted(cfg, ["bad.labels", "bad.accounts", "bad.payments"],
                                     prefix="bad.") == ["bad.labels"]
    assert [r.topic for r in caplog.records if "not compacted" in r.getMessage()] == [
        "bad.labels"]


def test_policies_not_compacted_reads_the_admin_clients_answer():
    described = {"topic": {"a": {"cleanup.policy": {"value": "delete"}},
                           "b": {"cleanup.policy": {"value": "compact,delete"}},
                           "c": {}, "d": {"cleanup.policy": {"value": None}}}}
    assert policies_not_compacted(described) == [("a", "delete")]
    assert policies_not_compacted(None) == [] and policies_not_compacted({"topic": None}) == []
