"""Shared devices and IPs on Kafka: a repartition by device / IP and a global table.

Accounts of one device live in different partitions of ``payments``/``logins`` (keyed by
account), so the links between them are built as Kafka Streams builds a foreign-key join:

1. **publish** — every scorer sends the sightings (:mod:`features.devices`) of the events it
   applies to ``device.sightings``, partitioned by ``d:<device_id>`` or ``i:<ip>``
   and a debit transfer's beneficiary by ``c:<bank>…`` (:class:`SightingPublisher`), one batch
   record per partition per loop iteration. Only the first sighting of a (key, account) per
   clock hour (a payee key: per clock day) is sent (a small cache; after a restart it may send
   one again, which changes nothing).
2. **process** — the device processor (:class:`DeviceProcessor`, consumer group
   ``<group_id>.devices`` over ``device.sightings``; several instances share its partitions)
   merges the sightings per key and publishes each changed key's whole state to the compacted
   ``device.links`` topic, in the partition of the same number (the two topics have the same
   partition count). Its state is a set (the earliest sighting per hour, a payee key's per day:
   a ``min``; a payee day keeps its 6 smallest (time, account): a selection), so merging a
   sighting twice changes nothing: at-least-once delivery gives exactly-once state. Once a
   second (:meth:`_ProcessorSession.publish_and_commit`): produce the keys changed since the
   last round → flush → commit the input offsets. After a
   crash (kill -9 included) a new owner of a partition restores the partition's state from
   ``device.links`` (its own output, compacted), then consumes from the committed offset: what
   is consumed again was already merged, and merging it again is a no-op. Sightings older than
   8 days (the 7-day window plus a day) are pruned, a payee key's by whole clock days, keeping
   91 days and the current one (:func:`features.devices.prune_before`); a key with none left
   gets a tombstone.
3. **read** — every scorer reads ``device.links`` in full as a global table on a thread of its
   own (:class:`DeviceTableReader`): a key's account map is swapped in whole, so the loop
   never sees half a record. At start the scorer reads it up to its end before scoring.

Where it runs: ``canhgiac score`` runs the processor on a thread of its own
(``CANHGIAC_DEVICES_IN_SCORE``, default true): every scorer process is then also an instance of
the device processor's group. ``canhgiac devices`` runs it alone (set
``CANHGIAC_DEVICES_IN_SCORE=false`` on the scorers then).

A malformed sighting or table record goes to ``payments.dlq`` with the reason, never stops
either loop.
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from collections.abc import Callable, Iterable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2
from kafka.structs import OffsetAndMetadata

from features.devices import (
    DEVICE,
    LINKS_KIND,
    MAX_SIGHTINGS_BYTES,
    PAYEE,
    SIGHTING_INTERVAL_S,
    SIGHTINGS_KIND,
    DeviceLinks,
    LinksRecord,
    Sighting,
    bucket_of,
    decode_links,
    decode_sightings,
    encode_links,
    encode_sightings,
    prune_before,
    sightings_of,
)
from features.events import Login, Payment, Rejection
from streaming.handler import DeadLetter, RawRecord
from streaming.topics import ensure_topics_with

log = logging.getLogger(__name__)

SIGHTINGS_TOPIC = "device.sightings"
LINKS_TOPIC = "device.links"
DEVICE_TOPICS = (SIGHTINGS_TOPIC, LINKS_TOPIC)
MAX_CACHE = 200_000
MAX_BACKOFF_S = 30.0
FLUSH_TIMEOUT_S = 30.0
# the processor publishes the keys changed in the last second together: well inside the
# visibility delay (CANHGIAC_DEVICE_VISIBILITY_S, 60 s), and a busy key goes out once a second
# instead of once per sighting batch
PUBLISH_INTERVAL_S = 1.0
# the processor and the table reader wait this long in their fetches (long polls): an idle
# scorer then wakes them once a second (each empty fetch costs about 2 ms of CPU in
# kafka-python: the idle scorer measured 2.0 % of a core at 500 ms, 1.7 % at 1,000 ms), and a
# sighting still reaches the table within a second or two, far inside the visibility delay
# (Apache Kafka answers a long poll as soon as a record arrives; the bundled test broker up to
# half the wait later)
BACKGROUND_FETCH_WAIT_MS = 1000
ACK_WAIT_S = 5.0  # the table reader's wait for its dead letters' acknowledgements
# A key's table record is trimmed to the accounts seen most recently above this size: an IP
# shared by thousands of customers (a carrier's NAT) would otherwise grow past what the readers
# accept (MAX_LINKS_BYTES) and the producer sends, and go out whole every second
MAX_PUBLISHED_BYTES = 1024 * 1024


def send_dead_letter(producer: KafkaProducer, dlq_topic: str, raw: RawRecord,
                     rejection: Rejection, on_error: Callable[[BaseException], None]) -> Any:
    """Send one dead letter; returns the send's future."""
    letter = DeadLetter.of(raw, rejection)
    future = producer.send(dlq_topic, key=raw.key, value=raw.value, headers=letter.headers())
    future.add_errback(on_error)
    return future


# ---------------------------------------------------------------- 1. publish (in the scorer)
class SightingPublisher:
    """Sends the sightings of the scorer's events to ``device.sightings`` (on the scorer's
    producer, so a checkpoint's first step, flushing the outputs, makes them durable too).

    :meth:`observe` (per event) only keeps the sightings that are new for their hour, grouped
    by the partition their key hashes to (kafka-python's default partitioner, so a key always
    lands where the processor that owns it reads); :meth:`send` (once per iteration, before
    anything can be checkpointed) sends them as one batch record per partition
    (:func:`features.devices.encode_sightings`). One send per partition and iteration instead of
    one per sighting: kafka-python's per-record send and parse were most of the pipeline's
    cost."""

    def __init__(self, producer: KafkaProducer, topic: str, max_cache: int = MAX_CACHE,
                 partitions: int | None = None) -> None:
        self.producer = producer
        self.topic = topic
        self.max_cache = max_cache
        if partitions is None:
            found = producer.partitions_for(topic)
            if not found:
                raise RuntimeError(f"topic {topic} does not exist (or has no partitions)")
            partitions = len(found)
        self.partitions = partitions
        # (key, account) -> hour (a payee key: day), t
        self._sent: dict[tuple[str, str], tuple[int, float]] = {}
        self._partition_of: dict[str, int] = {}
        self._pending: dict[int, list[Sighting]] = {}
        self._error: BaseException | None = None

    def partition_of(self, key: str) -> int:
        p = self._partition_of.get(key)
        if p is None:
            if len(self._partition_of) >= self.max_cache:
                self._partition_of.clear()
            p = (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % self.partitions
            self._partition_of[key] = p
        return p

    def observe(self, event: Payment | Login) -> None:
        for s in sightings_of(event):
            self.add(s)

    def add(self, s: Sighting) -> None:
        """Keep ``s`` for the next :meth:`send` unless its hour's (a payee key's: day's)
        earliest sighting of the same (key, account) is out already."""
        sent = self._sent
        pair = (s.key, s.account_id)
        hour = bucket_of(s.key, s.t)
        last = sent.get(pair)
        if last is not None and last[0] == hour and last[1] <= s.t:
            return
        if len(sent) >= self.max_cache:
            sent.clear()  # forgetting only means sending a sighting again: harmless
        sent[pair] = (hour, s.t)
        self._pending.setdefault(self.partition_of(s.key), []).append(s)

    def send(self) -> None:
        """Send what :meth:`observe` kept: one record per partition (split when large)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        for p, items in pending.items():
            for chunk in _chunks(items):
                self.producer.send(self.topic, value=encode_sightings(chunk), partition=p
                                   ).add_errback(self._failed)

    def _failed(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc

    def check(self) -> None:
        """Raise if a sighting could not be written (the session restarts from its last
        checkpoint and publishes again)."""
        if self._error is not None:
            raise KafkaError(f"a device sighting could not be written: {self._error!r}")


def _chunks(items: list[Sighting], budget: int = MAX_SIGHTINGS_BYTES // 2) -> list[list[Sighting]]:
    """Split so that each batch record stays under its size limit (keys and accounts may be
    up to ~1 KB each). The estimate (3 bytes a character) is exact for UTF-8 but not for JSON
    escapes (up to 6 bytes a character): the budget, half the limit, covers those."""
    out: list[list[Sighting]] = []
    chunk: list[Sighting] = []
    size = 0
    for s in items:
        n = len(s.key) * 3 + len(s.account_id) * 3 + 40
        if chunk and size + n > budget:
            out.append(chunk)
            chunk, size = [], 0
        chunk.append(s)
        size += n
    if chunk:
        out.append(chunk)
    return out


# ---------------------------------------------------------------- 3. read (in the scorer)
class DeviceTableReader:
    """Reads ``device.links`` in full into a :class:`DeviceLinks` (a global table).

    ``group_id`` (optional) remembers how far rejects were dead-lettered, as the reference
    reader does: the table is read from the start on every start, but a malformed record goes
    to the dead letters once. Only records at or after the group's committed offset are sent;
    after a poll that sent any, the reader waits for their acknowledgements and commits the
    positions it has read to (rejects are rare: a record another producer wrote)."""

    def __init__(self, links: DeviceLinks, client_config: dict[str, object], topic: str,
                 dead_letter: Callable[[RawRecord, Rejection], Any] | None = None,
                 fetch_max_wait_ms: int = 100, group_id: str | None = None) -> None:
        self.links = links
        self.topic = topic
        self.dead_letter = dead_letter
        self._group = group_id
        self._consumer = KafkaConsumer(**client_config, group_id=group_id,
                                       enable_auto_commit=False,
                                       fetch_max_wait_ms=max(100, fetch_max_wait_ms))
        parts = self._consumer.partitions_for_topic(topic)
        if not parts:
            raise RuntimeError(f"topic {topic} does not exist (or has no partitions)")
        self._tps = [TopicPartition(topic, p) for p in sorted(parts)]
        self._consumer.assign(self._tps)
        self._consumer.seek_to_beginning(*self._tps)
        self._dead_from: dict[TopicPartition, int] = {}  # dead-lettered up to here already
        if group_id is not None:
            for tp in self._tps:
                committed = self._consumer.committed(tp)
                if committed is not None:
                    self._dead_from[tp] = committed
        self.rejects_seen_before = 0  # rejects not sent again (dead-lettered by an earlier run)
        self._commits_stopped = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one poller at a time (catch_up, then the thread)
        self.records = 0
        self.rejected = 0

    def poll(self, timeout_ms: int = 100) -> int:
        """Apply what is available; returns how many records were applied."""
        n = 0
        sent: list[Any] = []
        with self._lock:
            polled = self._consumer.poll(timeout_ms=timeout_ms)
            for tp, records in polled.items():
                dead_from = self._dead_from.get(tp, 0)
                for r in records:
                    got = decode_links(r.key, r.value)
                    if isinstance(got, Rejection):
                        self.rejected += 1
                        if r.offset < dead_from:
                            self.rejects_seen_before += 1
                        elif self.dead_letter is not None:
                            sent.append(self.dead_letter(RawRecord(
                                LINKS_KIND, tp.topic, tp.partition, r.offset, r.timestamp,
                                r.key, r.value), got))
                        continue
                    self.apply(got)
                    n += 1
            if sent and self._group is not None:
                self._commit_dead_lettered(sent, list(polled))
        self.records += n
        return n

    def _commit_dead_lettered(self, sent: list[Any], tps: list[TopicPartition]) -> None:
        """Once this poll's dead letters are acknowledged, remember in the group that every
        reject read so far was sent. A dead letter that failed or was not acknowledged in
        time stops this reader's commits for good (its errback fails the scorer's session; a
        later commit past it would lose it): the next start sends the rejects again."""
        if self._commits_stopped:
            return
        deadline = time.monotonic() + ACK_WAIT_S
        for future in sent:
            if future is None:
                continue
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - reported by the send's errback
                self._commits_stopped = True
                return
        offsets = {tp: OffsetAndMetadata(self._consumer.position(tp), "", -1) for tp in tps}
        try:
            self._consumer.commit(offsets)
        except KafkaError as exc:  # sent again after a restart: a duplicate, not a loss
            log.warning("device-table dead-letter position not committed",
                        extra={"error": repr(exc)})
            return
        for tp, meta in offsets.items():
            self._dead_from[tp] = meta.offset

    def apply(self, record: LinksRecord) -> None:
        if record.accounts is None:
            self.links.delete(record.key)
        else:
            self.links.put(record.key, record.accounts)

    def catch_up(self, timeout_s: float = 30.0) -> bool:
        """Read up to the log-end offsets of now (before the first payment is scored)."""
        ends = self._consumer.end_offsets(self._tps)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self._consumer.position(tp) >= ends[tp] for tp in self._tps):
                return True
            self.poll(timeout_ms=100)
        log.warning("device table not read to its end in time; scoring goes on",
                    extra={"topic": self.topic, "timeout_s": timeout_s})
        return False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="canhgiac-device-table",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll(timeout_ms=500)
            except Exception as exc:  # noqa: BLE001 - the table reader must keep reading
                log.warning("device table read failed; retrying", extra={"error": repr(exc)})
                self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._consumer.close(autocommit=False)


# ---------------------------------------------------------------- 2. process
class _Listener(ConsumerRebalanceListener):
    def __init__(self, processor: _ProcessorSession) -> None:
        self.processor = processor

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.processor.revoke({tp.partition for tp in revoked}, commit=True)

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        self.processor.revoke({tp.partition for tp in lost}, commit=False)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.processor.pending.update(tp.partition for tp in assigned)


class DeviceProcessor:
    """The device processor: runs sessions until :meth:`stop` (reconnects with backoff)."""

    def __init__(self, client_config: dict[str, object], topics: dict[str, str],
                 group_id: str, fetch_max_wait_ms: int = 100, batch_size: int = 500,
                 max_poll_interval_ms: int = 300_000, session_timeout_ms: int = 10_000,
                 publish_interval_s: float = PUBLISH_INTERVAL_S) -> None:
        self.client_config = client_config
        self.topics = topics  # device.sightings, device.links, payments.dlq -> full names
        self.group_id = group_id
        self.fetch_max_wait_ms = max(100, fetch_max_wait_ms)
        self.batch_size = batch_size  # records (each a batch of sightings)
        self.publish_interval_s = publish_interval_s
        self.max_poll_interval_ms = max_poll_interval_ms
        self.session_timeout_ms = session_timeout_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.merged = 0
        self.published = 0
        self.rejected = 0

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> int:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                session = _ProcessorSession(self)
            except (KafkaError, OSError, RuntimeError, TimeoutError) as exc:
                log.error("device processor cannot start; retrying",
                          extra={"error": repr(exc), "retry_in_s": backoff})
                self._stop.wait(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            try:
                session.run()
                backoff = 0.5
                session.close(commit=True)
            except Exception as exc:  # noqa: BLE001 - never a crash loop: restart
                log.error("device processor session failed; restarting from the table and the "
                          "committed offsets", extra={"error": repr(exc), "retry_in_s": backoff})
                session.close(commit=False)
                self._stop.wait(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
        return 0

    def start(self) -> None:
        """Run on a thread of its own (inside ``canhgiac score``)."""
        self._thread = threading.Thread(target=self.run, name="canhgiac-devices", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=60)


class PruneIndex:
    """Which keys of one partition's table may hold a sighting the hourly sweep drops, so that
    the sweep visits those keys instead of every key (0.8-1.5 s for 537,500 keys, taken from
    the scorer's GIL when the processor runs on its thread).

    Each key is filed under a clock hour at or before its oldest sighting: the hour of its
    first sighting, lowered when an older one is merged (:meth:`note`). Nothing else lowers a
    key's oldest sighting, so a key holding a sighting at or before its cut is filed under an
    hour starting at or before that cut, and :meth:`take` finds it. A key filed too low (a
    prune at publish time, a payee day's cap dropping a sighting) is only visited early and
    filed again (:meth:`refile`). Payee keys, kept 91 days, are filed apart from devices and
    IPs, kept 8 days, so each kind is taken at its own cut."""

    __slots__ = ("_hour", "_devices", "_payees")

    def __init__(self) -> None:
        self._hour: dict[str, int] = {}  # key -> the hour it is filed under
        # hour -> keys filed under it (and stale entries of keys filed lower since)
        self._devices: dict[int, set[str]] = {}
        self._payees: dict[int, set[str]] = {}

    def note(self, key: str, t: float) -> None:
        """``key`` got a sighting at ``t``."""
        h = int(t // SIGHTING_INTERVAL_S)
        filed = self._hour.get(key)
        if filed is None or h < filed:
            self._hour[key] = h
            hours = self._payees if key.startswith(PAYEE) else self._devices
            keys = hours.get(h)
            if keys is None:
                hours[h] = {key}
            else:
                keys.add(key)

    def refile(self, key: str, accounts: dict[str, array[float]] | None) -> None:
        """File ``key`` again under its oldest sighting (forget it when it is gone)."""
        self._hour.pop(key, None)
        oldest = [times[0] for times in (accounts or {}).values() if len(times)]
        if oldest:
            self.note(key, min(oldest))

    def take(self, mark: float) -> list[str]:
        """Remove and return the keys that may hold a sighting at or before their cut when the
        partition's event time is ``mark`` (:func:`features.devices.prune_before`)."""
        out: list[str] = []
        for hours, probe in ((self._devices, DEVICE), (self._payees, PAYEE)):
            before = prune_before(probe + "x", mark)
            for h in sorted(h for h in hours if h * SIGHTING_INTERVAL_S <= before):
                for key in hours.pop(h):
                    if self._hour.get(key) == h:  # else filed lower since, or forgotten
                        out.append(key)
        return out

    def __len__(self) -> int:
        return len(self._hour)

    @classmethod
    def of(cls, links: DeviceLinks) -> PruneIndex:
        index = cls()
        for key in links.keys():
            index.refile(key, links.get(key))
        return index


def sweep_partition(links: DeviceLinks, index: PruneIndex, mark: float) -> list[str]:
    """Prune the keys of a partition whose event time is ``mark`` as a prune of every key with
    ``prune_before(key, mark)`` would, visiting only the keys ``index`` finds; the keys that
    changed (to publish), in the order visited."""
    changed: list[str] = []
    for key in index.take(mark):
        if links.prune(key, prune_before(key, mark)):
            changed.append(key)
        index.refile(key, links.get(key))
    return changed


class _ProcessorSession:
    """One consumer + producer and the state of the partitions assigned to them."""

    def __init__(self, owner: DeviceProcessor) -> None:
        self.owner = owner
        cfg = owner.client_config
        t = owner.topics
        self.sightings, self.links_topic, self.dlq = (t[SIGHTINGS_TOPIC], t[LINKS_TOPIC],
                                                      t["payments.dlq"])
        self.pending: set[int] = set()
        self.state: dict[int, DeviceLinks] = {}
        self.index: dict[int, PruneIndex] = {}  # per partition: the keys a sweep may prune
        self.watermark: dict[int, float] = {}
        self.swept: dict[int, float] = {}
        self.offsets: dict[int, int] = {}  # next offset to commit, per owned partition
        self.changed: set[tuple[int, str]] = set()  # merged, not yet published
        self.trimmed: set[str] = set()  # keys whose record was trimmed (logged once)
        self.uncommitted = False
        self.last_publish = time.monotonic()
        self._error: BaseException | None = None
        # a publish round is flushed at once (publish_and_commit): batches of 1 MiB carry it in
        # a few requests; the default 16 KB filled every few records, each waking the sender
        self.producer = KafkaProducer(**cfg, acks="all", linger_ms=20, retries=5,
                                      batch_size=1 << 20, max_request_size=8 * 1024 * 1024)
        try:
            self.restorer = KafkaConsumer(**cfg, group_id=None, enable_auto_commit=False,
                                          fetch_max_wait_ms=owner.fetch_max_wait_ms)
            self.consumer = KafkaConsumer(
                **cfg, group_id=owner.group_id, enable_auto_commit=False,
                auto_offset_reset="earliest", fetch_max_wait_ms=owner.fetch_max_wait_ms,
                max_poll_records=owner.batch_size,
                max_poll_interval_ms=owner.max_poll_interval_ms,
                session_timeout_ms=owner.session_timeout_ms,
                heartbeat_interval_ms=max(100, owner.session_timeout_ms // 4))
            n_in = len(self.consumer.partitions_for_topic(self.sightings) or ())
            n_out = len(self.consumer.partitions_for_topic(self.links_topic) or ())
            if not n_in or n_in != n_out:
                raise RuntimeError(f"{self.sightings} and {self.links_topic} must exist with the "
                                   f"same partition count: {n_in} and {n_out}")
            self.consumer.subscribe([self.sightings], listener=_Listener(self))
        except BaseException:
            self.producer.close(timeout=5)
            raise

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        owner = self.owner
        while not owner.stopping:
            wait = max(0.0, self.last_publish + owner.publish_interval_s - time.monotonic())
            polled = self.consumer.poll(timeout_ms=int(min(500.0, wait * 1000.0)) + 1,
                                        max_records=owner.batch_size)
            if self.pending:
                self.restore(sorted(self.pending))
            for tp, records in polled.items():
                p = tp.partition
                links = self.state.get(p)
                if links is None:
                    continue  # revoked meanwhile
                index = self.index[p]
                for r in records:
                    self.offsets[p] = r.offset + 1
                    got, rejection = decode_sightings(r.value)
                    if rejection is not None:
                        owner.rejected += 1
                        send_dead_letter(self.producer, self.dlq, RawRecord(
                            SIGHTINGS_KIND, tp.topic, p, r.offset, r.timestamp, r.key, r.value),
                            rejection, self._failed)
                    for one in got:
                        if links.observe(one.key, one.account_id, one.t):
                            self.changed.add((p, one.key))
                            index.note(one.key, one.t)
                        if one.t > self.watermark.get(p, -1e18):
                            self.watermark[p] = one.t
                        owner.merged += 1
                self.uncommitted = True
            if time.monotonic() - self.last_publish >= owner.publish_interval_s:
                self.publish_and_commit()

    def publish_and_commit(self, partitions: Iterable[int] | None = None) -> None:
        """The processor's commit, in this order: (1) send the changed keys' table records
        (coalesced since the last round: a key that changed ten times is sent once), (2) send
        the keys pruned by the hourly sweep, (3) flush and check every send, (4) commit the
        input offsets. A crash before (4) replays sightings that were merged already:
        merging them again changes nothing."""
        only = None if partitions is None else set(partitions)
        changed = {c for c in self.changed if only is None or c[0] in only}
        self.changed.difference_update(changed)
        self.publish(changed)
        if only is None:
            self.sweep()
        if self.uncommitted or changed:
            self.commit(partitions)
            if only is None:
                self.uncommitted = False
        self.last_publish = time.monotonic()

    def publish(self, changed: set[tuple[int, str]]) -> None:
        for p, key in sorted(changed):
            links = self.state.get(p)
            if links is None:
                continue  # revoked meanwhile
            links.prune(key, prune_before(key, self.watermark.get(p, -1e18)))
            self._send(p, key, links)

    def _send(self, p: int, key: str, links: DeviceLinks) -> None:
        accounts = links.get(key)
        value = None if accounts is None else encode_links(key, accounts)
        if value is not None and len(value) > MAX_PUBLISHED_BYTES:
            kept = most_recent_accounts(accounts or {}, MAX_PUBLISHED_BYTES)
            value = encode_links(key, kept)
            if key not in self.trimmed:
                self.trimmed.add(key)
                log.warning("device table record trimmed to the accounts seen most recently "
                            "(a device or IP shared by thousands of accounts: a carrier's NAT?)",
                            extra={"key": key[:80], "accounts": len(accounts or {}),
                                   "kept": len(kept)})
        self.producer.send(self.links_topic, key=key.encode("utf-8"), value=value,
                           partition=p).add_errback(self._failed)
        self.owner.published += 1

    def sweep(self) -> None:
        """Once the event time of a partition moved an hour on: prune every key of it (the
        keys its index says may hold something to prune: :func:`sweep_partition`)."""
        for p, mark in self.watermark.items():
            if mark - self.swept.get(p, mark - SIGHTING_INTERVAL_S - 1) < SIGHTING_INTERVAL_S:
                continue
            self.swept[p] = mark
            links = self.state.get(p)
            if links is None:
                continue
            for key in sweep_partition(links, self.index[p], mark):
                self._send(p, key, links)

    def commit(self, partitions: Iterable[int] | None = None) -> None:
        """Flush the table records, check them, then commit the input offsets."""
        self.producer.flush(timeout=FLUSH_TIMEOUT_S)
        if self._error is not None:
            raise KafkaError(f"a device table record could not be written: {self._error!r}")
        owned = self.offsets if partitions is None else {
            p: o for p, o in self.offsets.items() if p in set(partitions)}
        if owned:
            self.consumer.commit({TopicPartition(self.sightings, p): OffsetAndMetadata(o, "", -1)
                                  for p, o in owned.items()})

    def _failed(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc

    # ------------------------------------------------------------------ ownership
    def restore(self, partitions: list[int]) -> None:
        """Each partition's state from its own output (``device.links``, same partition)."""
        self.pending.difference_update(partitions)
        tps = [TopicPartition(self.links_topic, p) for p in partitions]
        self.restorer.assign(tps)
        self.restorer.seek_to_beginning(*tps)
        ends = self.restorer.end_offsets(tps)
        fresh = {p: DeviceLinks() for p in partitions}
        deadline = time.monotonic() + 120.0
        while any(self.restorer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"restoring {self.links_topic} {partitions} timed out")
            for tp, records in self.restorer.poll(timeout_ms=200).items():
                links = fresh[tp.partition]
                for r in records:
                    got = decode_links(r.key, r.value)
                    if isinstance(got, Rejection):
                        continue  # dead-lettered by every scorer that reads the table
                    if got.accounts is None:
                        links.delete(got.key)
                    else:
                        links.put(got.key, got.accounts)
        for p in partitions:
            links = fresh[p]
            self.index[p] = PruneIndex.of(links)
            self.state[p] = links
            marks = [times[-1] for key in links.keys()
                     for times in (links.get(key) or {}).values()]
            if marks:
                self.watermark[p] = max(marks)
                self.swept[p] = self.watermark[p]
            log.info("device partition restored", extra={"partition": p, "keys": len(links)})

    def revoke(self, partitions: set[int], commit: bool) -> None:
        owned = [p for p in partitions if p in self.state]
        self.pending.difference_update(partitions)
        if commit and owned:
            try:
                self.publish_and_commit(owned)
            except Exception as exc:  # noqa: BLE001 - the next owner replays (idempotent)
                log.warning("device offsets not committed on revocation",
                            extra={"error": repr(exc)})
        self.changed = {c for c in self.changed if c[0] not in partitions}
        for p in owned:
            self.state.pop(p, None)
            self.index.pop(p, None)
            self.watermark.pop(p, None)
            self.swept.pop(p, None)
            self.offsets.pop(p, None)

    def close(self, commit: bool) -> None:
        try:
            if commit:
                self.publish_and_commit()
        except Exception as exc:  # noqa: BLE001 - replayed by the next owner (idempotent)
            log.warning("device offsets not committed at close", extra={"error": repr(exc)})
        for closer in (lambda: self.consumer.close(autocommit=False),
                       lambda: self.restorer.close(autocommit=False),
                       lambda: self.producer.close(timeout=10)):
            try:
                closer()
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                log.warning("error while closing a device processor client",
                            extra={"error": repr(exc)})


def most_recent_accounts(accounts: dict[str, array[float]],
                         budget: int) -> dict[str, array[float]]:
    """The accounts seen most recently (latest sighting, then account id), as many as fit
    ``budget`` bytes of a table record. Deterministic: the same state gives the same record."""
    order = sorted(accounts.items(), key=lambda kv: (-kv[1][-1] if len(kv[1]) else 0.0, kv[0]))
    kept: dict[str, array[float]] = {}
    size = 200
    for account, times in order:
        # an upper bound of its JSON: a character escapes to at most 6 bytes, a float to 24
        size += 6 * len(account) + 8 + 25 * len(times)
        if size > budget:
            break
        kept[account] = times
    return kept


def device_topics(topic: Callable[[str], str]) -> dict[str, str]:
    """Full names (with the prefix) of the topics the device pipeline uses."""
    return {name: topic(name) for name in (*DEVICE_TOPICS, "payments.dlq")}


def processor_for(settings: Any) -> DeviceProcessor:
    """A device processor configured from the settings (``canhgiac score`` / ``devices``)."""
    return DeviceProcessor(
        settings.kafka_client_config(), device_topics(settings.topic),
        group_id=f"{settings.group_id}.devices",
        fetch_max_wait_ms=max(BACKGROUND_FETCH_WAIT_MS, settings.fetch_max_wait_ms),
        max_poll_interval_ms=settings.max_poll_interval_ms,
        session_timeout_ms=settings.session_timeout_ms)


class ScorerDevices:
    """The device pipeline's part in a scoring session: the topics, the sighting publisher (on
    the scorer's producer), the table reader (read to its end before the first payment), and
    the embedded processor thread when ``devices_in_score`` is set."""

    def __init__(self, settings: Any, producer: KafkaProducer, links: DeviceLinks) -> None:
        s = settings
        cfg = s.kafka_client_config()
        self.topics = device_topics(s.topic)
        ensure_topics_with(cfg, [self.topics[SIGHTINGS_TOPIC], self.topics[LINKS_TOPIC]],
                           partitions=s.topic_partitions, replication=s.topic_replication,
                           prefix=s.topic_prefix)
        links.delay_s = float(s.device_visibility_s)
        self.producer = producer
        self._error: BaseException | None = None
        self.publisher = SightingPublisher(producer, self.topics[SIGHTINGS_TOPIC])
        self.processor: DeviceProcessor | None = None
        self.reader: DeviceTableReader | None = None
        try:
            if s.devices_in_score:
                self.processor = processor_for(s)
                self.processor.start()
            self.reader = DeviceTableReader(links, cfg, self.topics[LINKS_TOPIC],
                                            dead_letter=self._dead_letter,
                                            fetch_max_wait_ms=max(BACKGROUND_FETCH_WAIT_MS,
                                                                  s.fetch_max_wait_ms),
                                            group_id=f"{s.group_id}.device-table")
            self.reader.catch_up()
            self.reader.start()
        except BaseException:
            self.close()
            raise

    def _dead_letter(self, raw: RawRecord, rejection: Rejection) -> Any:
        return send_dead_letter(self.producer, self.topics["payments.dlq"], raw, rejection,
                                self._failed)

    def _failed(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc

    def check(self) -> None:
        self.publisher.check()
        if self._error is not None:
            raise KafkaError(f"a device-table dead letter could not be written: "
                             f"{self._error!r}")

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        if self.processor is not None:
            self.processor.close()
