"""Feature-state checkpoints kept in Kafka itself, so any scorer on any machine can take over.

Topic ``<prefix>scorer.checkpoints`` (compacted). Input partition ``p`` of consumer group ``g``
checkpoints into partition ``p % n`` of the topic (``n`` its partition count; the service
creates it with as many partitions as the inputs, but any count works). One checkpoint is:

1. the feature engine's ``snapshot()`` bytes in chunks (a Kafka message is limited to ~1 MB),
   keyed ``["c", g, p, id, i]``, written and acknowledged first;
2. then the manifest, keyed ``["m", g, p]`` (JSON: id, the chunks' offsets, the offsets of the
   first payment and login of ``p`` NOT yet applied to the state, the first payment offset to
   emit outputs for, the feature version, the model version, time). A checkpoint exists only
   once its manifest is durable, so a crash while writing leaves the previous one intact;
3. after the manifest, the previous checkpoint's chunks are deleted with tombstones and
   compaction keeps about one checkpoint per group and partition.

Keys carry the group: a second group on the same topics (a shadow scorer) never reads or
overwrites another group's checkpoints.

Restore does not read the topic from its start. It reads the checkpoint partitions it needs
backwards from their ends, all in the same fetches, in windows that double, until it has the
newest manifest of every partition it wants (or reaches the beginning), then reads the chunks at
the offsets that manifest names (offsets survive compaction). Its cost follows one round of
checkpoints, not the number ever written.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from features.events import format_ts

log = logging.getLogger(__name__)

CHECKPOINT_TOPIC = "scorer.checkpoints"
CHUNK_BYTES = 512 * 1024
FIRST_WINDOW = 8  # records read at the end of a checkpoint partition before looking further


@dataclass(frozen=True, slots=True)
class Checkpoint:
    partition: int
    ckpt_id: str
    payments_offset: int | None
    logins_offset: int | None
    model_version: str | None
    created_at: str
    state: bytes
    emit_from: int | None = None  # payments before this offset warm the state, no outputs
    feature_version: str | None = None

    @classmethod
    def new(
        cls, partition: int, state: bytes, offsets: dict[str, int | None],
        model_version: str | None, emit_from: int | None = None,
        feature_version: str | None = None,
    ) -> Checkpoint:
        return cls(
            partition=partition, ckpt_id=uuid.uuid4().hex[:16],
            payments_offset=offsets.get("payments"), logins_offset=offsets.get("logins"),
            model_version=model_version, created_at=format_ts(datetime.now(UTC)), state=state,
            emit_from=emit_from, feature_version=feature_version,
        )

    def chunks(self, size: int = CHUNK_BYTES) -> list[bytes]:
        n = max(1, -(-len(self.state) // size))
        return [self.state[i * size:(i + 1) * size] for i in range(n)]

    def manifest(self, chunk_offsets: list[int]) -> dict[str, Any]:
        return {
            "partition": self.partition, "id": self.ckpt_id, "chunks": len(chunk_offsets),
            "chunk_offsets": chunk_offsets, "size": len(self.state),
            "payments_offset": self.payments_offset, "logins_offset": self.logins_offset,
            "emit_from": self.emit_from, "feature_version": self.feature_version,
            "model_version": self.model_version, "created_at": self.created_at,
        }

    @classmethod
    def from_manifest(cls, m: dict[str, Any], state: bytes) -> Checkpoint:
        return cls(
            partition=int(m["partition"]), ckpt_id=str(m["id"]),
            payments_offset=m["payments_offset"], logins_offset=m["logins_offset"],
            model_version=m.get("model_version"), created_at=m["created_at"], state=state,
            emit_from=m.get("emit_from"), feature_version=m.get("feature_version"),
        )


def manifest_key(group: str, partition: int) -> bytes:
    return orjson.dumps(["m", group, partition])


def chunk_key(group: str, partition: int, ckpt_id: str, i: int) -> bytes:
    return orjson.dumps(["c", group, partition, ckpt_id, i])


def parse_manifest(key: bytes | None, value: bytes | None, group: str) -> dict[str, Any] | None:
    """The manifest in a checkpoint record of ``group``, or None (a chunk, a tombstone, another
    group's record, a record of an older layout, or a malformed one — never an exception)."""
    if key is None or value is None or not key.startswith(b'["m",'):
        return None
    try:
        k = orjson.loads(key)
        if not (isinstance(k, list) and len(k) == 3 and k[1] == group):
            return None
        m = orjson.loads(value)
        if (not isinstance(m, dict) or not _offset(k[2]) or m.get("partition") != k[2]
                or not _offset(m.get("partition"))
                or not isinstance(m.get("chunk_offsets"), list)
                or not all(_offset(o) for o in m["chunk_offsets"])
                or not isinstance(m.get("id"), str)
                or not isinstance(m.get("created_at"), str)):
            raise ValueError("manifest fields missing or of the wrong type")
        if "payments_offset" not in m or "logins_offset" not in m:
            raise ValueError("manifest offsets missing")
        for name in ("payments_offset", "logins_offset", "emit_from"):
            if m.get(name) is not None and not _offset(m[name]):
                raise ValueError(f"{name} is not an offset")
        for name in ("model_version", "feature_version"):
            if m.get(name) is not None and not isinstance(m[name], str):
                raise ValueError(f"{name} is not a string")
        return m
    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
        log.warning("malformed checkpoint manifest ignored",
                    extra={"key": key[:200].decode("utf-8", "replace"), "error": repr(exc)})
        return None


def _offset(value: Any) -> bool:
    """A Kafka offset or partition number: a non-negative int (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class CheckpointStore:
    """Writes checkpoints through the scorer's producer; restores them with its own consumer."""

    def __init__(
        self, topic: str, producer: KafkaProducer, client_config: dict[str, object],
        group: str,
    ) -> None:
        self.topic = topic
        self.group = group
        self.producer = producer
        self.reader = KafkaConsumer(
            **client_config, enable_auto_commit=False, group_id=None,
            fetch_max_wait_ms=100, max_partition_fetch_bytes=4 * CHUNK_BYTES,
            auto_offset_reset="earliest",  # a window below the log start reads from it
        )
        parts = self.reader.partitions_for_topic(topic)
        if not parts:
            raise RuntimeError(f"checkpoint topic {topic} does not exist")
        self.n_partitions = len(parts)
        self._written: dict[int, tuple[str, list[int]]] = {}  # p -> (id, chunk offsets)
        self.records_read = 0  # by restores (tests and the benchmark look at it)

    def tp(self, partition: int) -> TopicPartition:
        return TopicPartition(self.topic, partition % self.n_partitions)

    # ------------------------------------------------------------------ restore
    def restore(self, partitions: list[int], timeout_s: float = 60.0) -> dict[int, Checkpoint]:
        """The newest complete checkpoint of each of ``partitions`` that has one.

        Every checkpoint partition involved is read in the same fetches (one request per
        broker carries them all), so the number of round trips does not grow with the number
        of partitions taken over."""
        deadline = time.monotonic() + timeout_s
        by_tp: dict[TopicPartition, set[int]] = {}
        for p in partitions:
            by_tp.setdefault(self.tp(p), set()).add(p)
        if not by_tp:
            return {}
        seen: dict[TopicPartition, dict[int, Any]] = {tp: {} for tp in by_tp}
        manifests = self._newest_manifests(by_tp, deadline, seen)
        missing: dict[TopicPartition, tuple[int, int]] = {}
        for tp, found in manifests.items():
            for m in found.values():
                offsets = [o for o in m["chunk_offsets"] if o not in seen[tp]]
                if offsets:  # usually the chunks were read while looking for the manifest
                    lo, hi = missing.get(tp, (min(offsets), max(offsets) + 1))
                    missing[tp] = (min(lo, min(offsets)), max(hi, max(offsets) + 1))
        if missing:
            for tp, records in self._read(dict(missing.items()), deadline).items():
                for r in records:
                    seen[tp][r.offset] = r
        out: dict[int, Checkpoint] = {}
        for tp, found in manifests.items():
            for p, m in found.items():
                ckpt = self._load(m, seen[tp])
                if ckpt is not None:
                    out[p] = ckpt
                    self._written[p] = (ckpt.ckpt_id, list(m["chunk_offsets"]))
        return out

    def _newest_manifests(
        self, by_tp: dict[TopicPartition, set[int]], deadline: float,
        seen: dict[TopicPartition, dict[int, Any]],
    ) -> dict[TopicPartition, dict[int, dict[str, Any]]]:
        """Read each partition backwards from its end, in windows that double, until it has
        the newest manifest of every wanted input partition (or reaches the beginning)."""
        tps = list(by_tp)
        end = self.reader.end_offsets(tps)
        begin: dict[TopicPartition, int] = {tp: 0 for tp in tps}  # asked only if needed
        found: dict[TopicPartition, dict[int, dict[str, Any]]] = {tp: {} for tp in tps}
        window = FIRST_WINDOW
        todo: dict[TopicPartition, tuple[int, int | None]] = {
            tp: (max(0, end[tp] - window), None) for tp in tps}  # None: to the high-water mark
        first = True
        while todo:
            for tp, records in self._read(todo, deadline, end).items():
                for r in reversed(records):
                    seen[tp][r.offset] = r
                    m = parse_manifest(r.key, r.value, self.group)
                    if (m is not None and m["partition"] in by_tp[tp]
                            and m["partition"] not in found[tp]):
                        found[tp][m["partition"]] = m
            todo = {tp: rng for tp, rng in todo.items() if len(found[tp]) < len(by_tp[tp])}
            if first and todo:  # the newest round was not in the tail: look further back
                begin.update(self.reader.beginning_offsets(list(todo)))
                first = False
            window *= 2
            todo = {tp: (max(begin[tp], lo - window), lo) for tp, (lo, _) in todo.items()
                    if lo > begin[tp]}
        return found

    def _read(self, ranges: dict[TopicPartition, tuple[int, int | None]], deadline: float,
              ends: dict[TopicPartition, int] | None = None) -> dict[TopicPartition, list[Any]]:
        """The records of each partition from offset ``lo`` up to ``hi`` (excluded), or with
        ``hi`` None up to the high-water mark the first fetch reports (ListOffsets can
        undercount on some brokers, so the log-end offset asked first is only a lower bound).
        All partitions are fetched together; ``ends``, the log-end offsets if already asked."""
        tps = list(ranges)
        self.reader.assign(tps)
        for tp, (lo, _) in ranges.items():
            self.reader.seek(tp, lo)
        open_ended = [tp for tp, (_, hi) in ranges.items() if hi is None]
        if open_ended and (ends is None or any(tp not in ends for tp in open_ended)):
            ends = self.reader.end_offsets(open_ended)
        known = ends or {}
        target = {tp: known[tp] if hi is None else hi for tp, (_, hi) in ranges.items()}
        out: dict[TopicPartition, list[Any]] = {tp: [] for tp in tps}
        pending = set(tps)
        while True:
            for tp in list(pending):
                lo, hi = ranges[tp]
                hw = self.reader.highwater(tp)
                if hi is None and hw is not None:
                    target[tp] = max(target[tp], hw)
                if self.reader.position(tp) >= target[tp] and (
                        hi is not None or hw is not None or target[tp] <= lo):
                    pending.discard(tp)
                    self.reader.pause(tp)
            if not pending:
                self.reader.resume(*tps)
                return out
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"checkpoint partitions {sorted(tp.partition for tp in pending)} "
                    "not read in time")
            for tp, records in self.reader.poll(timeout_ms=100).items():
                hi = ranges[tp][1]
                for r in records:
                    if hi is None or r.offset < hi:
                        out[tp].append(r)
                        self.records_read += 1

    def _load(self, m: dict[str, Any], seen: dict[int, Any]) -> Checkpoint | None:
        offsets: list[int] = m["chunk_offsets"]
        p, ckpt_id = m["partition"], m["id"]
        parts: list[bytes | None] = [None] * len(offsets)
        for i, o in enumerate(offsets):
            r = seen.get(o)
            if r is not None and r.key == chunk_key(self.group, p, ckpt_id, i) \
                    and r.value is not None:
                parts[i] = r.value
        if any(c is None for c in parts):
            log.error("checkpoint chunks missing; ignoring it",
                      extra={"partition": p, "checkpoint": ckpt_id})
            return None
        return Checkpoint.from_manifest(m, b"".join(c for c in parts if c is not None))

    # ------------------------------------------------------------------ write
    def write(self, checkpoints: list[Checkpoint], timeout_s: float = 30.0) -> None:
        """Write checkpoints and wait until they are durable, then drop the previous ones.
        Steps: chunks, flushed and acknowledged (their offsets known); manifests naming them,
        flushed and acknowledged; tombstones for the chunks of the checkpoints replaced."""
        chunk_futures: list[tuple[Checkpoint, list[Any]]] = []
        for c in checkpoints:
            futures = [
                self.producer.send(self.topic, key=chunk_key(self.group, c.partition,
                                                             c.ckpt_id, i),
                                   value=chunk, partition=self.tp(c.partition).partition)
                for i, chunk in enumerate(c.chunks())
            ]
            chunk_futures.append((c, futures))
        self.producer.flush(timeout=timeout_s)
        manifests: list[tuple[Checkpoint, list[int], Any]] = []
        for c, futures in chunk_futures:
            offsets = [_acked(f).offset for f in futures]
            manifests.append((c, offsets, self.producer.send(
                self.topic, key=manifest_key(self.group, c.partition),
                value=orjson.dumps(c.manifest(offsets)),
                partition=self.tp(c.partition).partition)))
        self.producer.flush(timeout=timeout_s)
        for c, offsets, future in manifests:
            _acked(future)
            prev = self._written.get(c.partition)
            if prev is not None and prev[0] != c.ckpt_id:
                for i in range(len(prev[1])):
                    self.producer.send(self.topic,
                                       key=chunk_key(self.group, c.partition, prev[0], i),
                                       value=None, partition=self.tp(c.partition).partition)
            self._written[c.partition] = (c.ckpt_id, offsets)

    def close(self) -> None:
        self.reader.close(autocommit=False)


def _acked(future: Any) -> Any:
    """The record metadata of a flushed send; flush() only logs a batch that failed."""
    if future.failed():
        raise KafkaError(f"checkpoint not written: {future.exception!r}")
    if not future.is_done:
        raise KafkaError("checkpoint not acknowledged in time")
    return future.value
