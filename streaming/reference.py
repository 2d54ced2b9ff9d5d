"""The global tables (``labels``, ``accounts``, ``watchlist``, ``confirmed_payments``): read
in full by every scorer, outside the group.

A plain consumer (no group) is assigned every partition of both topics from the beginning and
feeds one shared :class:`~features.engine.ReferenceData`. ``caught_up()`` says whether
everything up to the high-water marks has been applied: the aligner holds payments back until
then, so a payment never sees reference data that an uninterrupted scorer would have had.
The high-water marks the client knows come from this reader's last fetch, which can be older
than a payment just polled: :meth:`confirm` asks the log-end offsets *now*, so that a payment is
scored only after every account profile and label produced before it was polled.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from features.events import Account, ConfirmedPayment, Label, Rejection, WatchEntry, decode
from streaming.handler import DeadLetter, RawRecord

if TYPE_CHECKING:
    from features.engine import ReferenceData

log = logging.getLogger(__name__)


class ReferenceReader:
    """``group_id`` (optional) remembers how far rejects were dead-lettered: the tables are
    read from the start on every start, but a malformed record goes to the dead letters once —
    only records at or after the group's committed offset are sent, and
    :meth:`commit_dead_lettered` (called once the dead letters are durable) moves it on."""

    def __init__(
        self, ref: ReferenceData, topics: dict[str, str], client_config: dict[str, object],
        fetch_max_wait_ms: int = 100, timeout_s: float = 30.0, group_id: str | None = None,
    ) -> None:
        self.ref = ref
        self._kind = {topic: kind for kind, topic in topics.items()}
        self._consumer = KafkaConsumer(
            **client_config, group_id=group_id, enable_auto_commit=False,
            fetch_max_wait_ms=fetch_max_wait_ms,
        )
        # log-end offsets are asked on a connection of their own: a long-polling fetch in flight
        # on the reader's connection would hold the request back (answered in order)
        self._probe = KafkaConsumer(**client_config, group_id=None, enable_auto_commit=False)
        self._group = group_id
        tps: list[TopicPartition] = []
        for topic in topics.values():
            parts = self._consumer.partitions_for_topic(topic)
            if not parts:
                raise RuntimeError(f"topic {topic} does not exist (or has no partitions)")
            tps.extend(TopicPartition(topic, p) for p in sorted(parts))
        self._tps = tps
        self._consumer.assign(tps)
        begin = self._consumer.beginning_offsets(tps, timeout_ms=int(timeout_s * 1000))
        self._end = self._consumer.end_offsets(tps, timeout_ms=int(timeout_s * 1000))
        for tp in tps:
            self._consumer.seek(tp, begin[tp])
        self._next: dict[TopicPartition, int] = dict(begin)
        self._dead_from: dict[TopicPartition, int] = {}  # dead-lettered up to here already
        if group_id is not None:
            for tp in tps:
                committed = self._consumer.committed(tp)
                if committed is not None:
                    self._dead_from[tp] = committed
        self._committed = dict(self._dead_from)
        self._required: dict[TopicPartition, int] = dict(self._end)  # log-end offsets asked
        self._caught_up = False
        self.labels = 0
        self.accounts = 0
        self.watch_entries = 0
        self.confirmed = 0
        self.rejects_seen_before = 0  # rejects not sent again (dead-lettered by an earlier run)

    def poll(self, timeout_ms: int = 0) -> tuple[list[Account], list[DeadLetter]]:
        """Apply what is available; returns new accounts (for the case store) and rejects."""
        accounts: list[Account] = []
        dead: list[DeadLetter] = []
        for tp, records in self._consumer.poll(timeout_ms=timeout_ms).items():
            kind = self._kind[tp.topic]
            dead_from = self._dead_from.get(tp, 0)
            for r in records:
                self._next[tp] = r.offset + 1
                raw = RawRecord(kind, tp.topic, tp.partition, r.offset, r.timestamp,
                                r.key, r.value)
                try:
                    event = decode(kind, r.value)
                    if isinstance(event, Rejection):
                        letter = DeadLetter.of(raw, event)
                    elif isinstance(event, Label):
                        self.ref.add_label(event)
                        self.labels += 1
                        continue
                    elif isinstance(event, WatchEntry):
                        self.ref.add_watch(event)
                        self.watch_entries += 1
                        continue
                    elif isinstance(event, ConfirmedPayment):
                        self.ref.add_confirmed(event)
                        self.confirmed += 1
                        continue
                    else:
                        self.ref.add_account(event)
                        accounts.append(event)
                        self.accounts += 1
                        continue
                except Exception as exc:  # noqa: BLE001 - one record must never stop a stream
                    letter = DeadLetter.failed(raw, exc)
                if r.offset >= dead_from:
                    dead.append(letter)
                else:
                    self.rejects_seen_before += 1
        return accounts, dead

    def positions(self) -> dict[TopicPartition, int]:
        """How far the tables have been read (and their rejects handed to the dead letters):
        taken before a flush, it is what that flush makes durable."""
        return dict(self._next)

    def commit_dead_lettered(self, upto: dict[TopicPartition, int] | None = None) -> None:
        """Remember (in the group) that every reject read up to ``upto`` (default: so far)
        went to the dead letters. Call it only once those dead letters are durable (the scorer
        does, at checkpoints, with the positions taken before their flush)."""
        if self._group is None:
            return
        upto = self._next if upto is None else upto
        positions = {tp: off for tp, off in upto.items()
                     if off > self._committed.get(tp, -1)}
        if not positions:
            return
        self._consumer.commit({tp: OffsetAndMetadata(off, "", -1)
                               for tp, off in positions.items()})
        self._committed.update(positions)

    def caught_up(self) -> bool:
        """Everything up to the last known high-water mark of every partition, and up to the
        log-end offsets :meth:`confirm` last asked, is applied."""
        for tp in self._tps:
            hw = self._consumer.highwater(tp)
            need = self._required[tp]
            if hw is not None and hw > need:
                need = hw
            if self._next[tp] < need:
                self._caught_up = False
                return False
        if not self._caught_up:
            self._caught_up = True
            log.info("reference data caught up",
                     extra={"labels": self.labels, "accounts": self.accounts})
        return True

    def confirm(self) -> bool:
        """Ask the log-end offsets now (one ListOffsets request) and say whether everything up
        to them is applied; until it is, :meth:`caught_up` is False."""
        ends = self._probe.end_offsets(self._tps)
        for tp, end in ends.items():
            if end is not None and end > self._required[tp]:
                self._required[tp] = end
        return self.caught_up()

    def close(self) -> None:
        self._probe.close(autocommit=False)
        self._consumer.close(autocommit=False)
