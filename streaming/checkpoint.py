"""Feature-state checkpoints kept in Kafka itself, so any scorer on any machine can take over.

Topic ``<prefix>scorer.checkpoints`` (one partition, compacted). A checkpoint of partition
``p`` is the feature engine's ``snapshot()`` bytes plus the offsets of the first payment and
login of ``p`` NOT yet applied to that state (and the model version, for the record):

* the state is split in chunks (Kafka messages are limited to ~1 MB) keyed ``p/<id>/<i>``;
* then a manifest keyed ``p`` (JSON: id, chunk count, offsets, model version, time) is
  written; a checkpoint exists only once its manifest is durable, so a crash while writing
  leaves the previous one intact;
* after the manifest, the previous checkpoint's chunk keys are deleted with tombstones and
  compaction keeps the topic at about one checkpoint per partition.

Readers read the topic in order and keep, per partition, the newest manifest and its chunks.
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


@dataclass(frozen=True, slots=True)
class Checkpoint:
    partition: int
    ckpt_id: str
    payments_offset: int | None
    logins_offset: int | None
    model_version: str | None
    created_at: str
    state: bytes

    @classmethod
    def new(
        cls, partition: int, state: bytes, offsets: dict[str, int | None],
        model_version: str | None,
    ) -> Checkpoint:
        return cls(
            partition=partition, ckpt_id=uuid.uuid4().hex[:16],
            payments_offset=offsets.get("payments"), logins_offset=offsets.get("logins"),
            model_version=model_version, created_at=format_ts(datetime.now(UTC)), state=state,
        )

    def chunks(self, size: int = CHUNK_BYTES) -> list[bytes]:
        n = max(1, -(-len(self.state) // size))
        return [self.state[i * size:(i + 1) * size] for i in range(n)]

    def manifest(self, n_chunks: int) -> dict[str, Any]:
        return {
            "partition": self.partition, "id": self.ckpt_id, "chunks": n_chunks,
            "size": len(self.state), "payments_offset": self.payments_offset,
            "logins_offset": self.logins_offset, "model_version": self.model_version,
            "created_at": self.created_at,
        }


def chunk_key(partition: int, ckpt_id: str, i: int) -> str:
    return f"{partition}/{ckpt_id}/{i}"


class CheckpointState:
    """The newest complete checkpoint per partition, from the topic's records in order (pure)."""

    def __init__(self) -> None:
        self._manifests: dict[int, dict[str, Any]] = {}
        self._chunks: dict[str, bytes] = {}

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        k = key.decode()
        if "/" in k:
            if value is None:
                self._chunks.pop(k, None)
            else:
                self._chunks[k] = value
            return
        if value is None:
            self._manifests.pop(int(k), None)
            return
        manifest = orjson.loads(value)
        p = int(manifest["partition"])
        old = self._manifests.get(p)
        self._manifests[p] = manifest
        if old is not None and old["id"] != manifest["id"]:
            for i in range(int(old["chunks"])):
                self._chunks.pop(chunk_key(p, old["id"], i), None)

    def manifest(self, partition: int) -> dict[str, Any] | None:
        return self._manifests.get(partition)

    def latest(self, partition: int) -> Checkpoint | None:
        m = self._manifests.get(partition)
        if m is None:
            return None
        parts = [self._chunks.get(chunk_key(partition, m["id"], i)) for i in range(m["chunks"])]
        if any(c is None for c in parts):
            log.error("checkpoint chunks missing; ignoring it",
                      extra={"partition": partition, "checkpoint": m["id"]})
            return None
        state = b"".join(c for c in parts if c is not None)
        return Checkpoint(
            partition=partition, ckpt_id=m["id"], payments_offset=m["payments_offset"],
            logins_offset=m["logins_offset"], model_version=m.get("model_version"),
            created_at=m["created_at"], state=state,
        )


class CheckpointStore:
    """Writes checkpoints through the scorer's producer; reads them with its own consumer."""

    def __init__(
        self, topic: str, producer: KafkaProducer, client_config: dict[str, object],
    ) -> None:
        self.topic = topic
        self.producer = producer
        self.state = CheckpointState()
        self._tp = TopicPartition(topic, 0)
        self._reader = KafkaConsumer(
            **client_config, enable_auto_commit=False, group_id=None,
            fetch_max_wait_ms=10, max_partition_fetch_bytes=4 * CHUNK_BYTES,
        )
        self._reader.assign([self._tp])
        self._reader.seek_to_beginning(self._tp)
        self._reader.pause(self._tp)  # fetch only while catching up
        self._next = 0
        self._written: dict[int, tuple[str, int]] = {}

    def catch_up(self, timeout_s: float = 30.0) -> None:
        """Read the checkpoint topic to its current end."""
        end = self._reader.end_offsets([self._tp])[self._tp]
        deadline = time.monotonic() + timeout_s
        self._reader.resume(self._tp)
        try:
            while True:
                hw = self._reader.highwater(self._tp)
                # ListOffsets may undercount on some brokers (newest batch's base offset + 1):
                # stop at the fetched high-water mark once it is known
                if self._next >= max(end, hw or 0) and (hw is not None or self._next >= end):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"checkpoint topic not read to its end in {timeout_s}s")
                for records in self._reader.poll(timeout_ms=100).values():
                    for r in records:
                        self.state.apply(r.key, r.value)
                        self._next = r.offset + 1
        finally:
            self._reader.pause(self._tp)

    def latest(self, partition: int) -> Checkpoint | None:
        return self.state.latest(partition)

    def write(self, checkpoints: list[Checkpoint], timeout_s: float = 30.0) -> None:
        """Write checkpoints and wait until they are durable, then drop the previous ones."""
        manifests: list[tuple[Checkpoint, int]] = []
        futures = []
        for c in checkpoints:
            chunks = c.chunks()
            for i, chunk in enumerate(chunks):
                futures.append(self.producer.send(
                    self.topic, key=chunk_key(c.partition, c.ckpt_id, i).encode(), value=chunk))
            manifests.append((c, len(chunks)))
        for c, n in manifests:  # manifests after all chunks: a manifest never lacks its chunks
            futures.append(self.producer.send(self.topic, key=str(c.partition).encode(),
                                              value=orjson.dumps(c.manifest(n))))
        self.producer.flush(timeout=timeout_s)
        for f in futures:  # flush() only logs a batch that failed after the retries
            if f.failed():
                raise KafkaError(f"checkpoint not written: {f.exception!r}")
        for c, n in manifests:
            prev = self._written.get(c.partition)
            if prev is None:
                m = self.state.manifest(c.partition)
                prev = (m["id"], int(m["chunks"])) if m is not None else None
            if prev is not None and prev[0] != c.ckpt_id:
                for i in range(prev[1]):
                    self.producer.send(self.topic, key=chunk_key(c.partition, prev[0], i).encode(),
                                       value=None)
            self._written[c.partition] = (c.ckpt_id, n)

    def close(self) -> None:
        self._reader.close(autocommit=False)
