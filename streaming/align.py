"""Event-time alignment of the two co-partitioned input topics (``payments`` and ``logins``).

Why: the scorer must give exactly the scores of an uninterrupted single scorer whatever the
poll batching, restarts or rebalances. Payments and logins of one account live in partition
``p`` of two topics, so *how* the two record streams are interleaved decides the features.
An uninterrupted scorer and a restarted one poll different batches; the interleaving must not
depend on them.

The rule (one :class:`PartitionAligner` per partition number ``p``):

* each topic's records are kept in a FIFO in offset order (never re-sorted within a topic);
* the two FIFO heads are merged by ``features.replay.event_order_key`` (the same order as the
  training replay: at equal time a login precedes a payment);
* a head is released only when the *other* topic's FIFO has a head that is later or equal, or
  when the other topic's partition ``p`` is caught up *for that head* (everything up to its
  log-end offset, asked after the head was polled, has been polled, so nothing earlier can be
  waiting there). ``caught_up(kind)`` answers with an offset of the waiting topic: heads below
  it may pass (``True``: every head may pass; ``False``: none). The caller's answer may come
  from an older log-end offset than the newest: it then covers only the heads polled before
  it was asked (``streaming.ends``);
* payments are additionally held until the global reference tables are caught up *for them*:
  ``payments_ready`` is an offset of the payments topic (or ``True``/``False``), below which
  the tables have applied everything up to log-end offsets asked after those payments were in
  the log (``streaming.reference.ReadyOffsets``).

Released events therefore follow a merge of the two offset-ordered sequences that depends only
on the data in the log, not on batching, as long as the log itself is ordered. Its limit: a
login *produced after* a later-timestamped payment of the same partition was already released
(because the logins partition looked caught up) is applied after that payment — it is treated
like any late event by the feature engine. A restarted scorer may then see both at once and
merge them differently, so scores are identical across restarts only for events that are
*in the log* in event-time order across the two topics. Sent in that order by one producer is
not enough: the producer batches each partition on its own and a broker appends one request's
batches one after the other, so a login can be readable before a payment sent ahead of it.
Within the allowed lateness that changes nothing (the engine places the payment at its time);
beyond it the payment is scored ``late`` and not added to the account's history.

The aligner is pure: no Kafka. ``resume_offsets()`` gives, per topic, the offset of the first
record not yet applied to the feature state; a checkpoint stores it with the state snapshot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

PAYMENTS = "payments"
LOGINS = "logins"
KINDS = (PAYMENTS, LOGINS)

T = TypeVar("T")


class Pending(NamedTuple, Generic[T]):
    """A decoded record waiting for its turn (a tuple: cheaper to make than a dataclass, and
    one is made per polled record)."""

    key: tuple[Any, ...]
    offset: int
    item: T


class PartitionAligner(Generic[T]):
    """Merges the payments and logins of one partition number by event time."""

    __slots__ = ("partition", "_queues", "_consumed")

    def __init__(
        self, partition: int, payments_offset: int | None = None,
        logins_offset: int | None = None,
    ) -> None:
        self.partition = partition
        self._queues: dict[str, deque[Pending[T]]] = {PAYMENTS: deque(), LOGINS: deque()}
        # offset after the last record polled from each topic (None: nothing polled yet)
        self._consumed: dict[str, int | None] = {PAYMENTS: payments_offset, LOGINS: logins_offset}

    def add(self, kind: str, offset: int, key: tuple[Any, ...], item: T) -> None:
        """Buffer a decoded record (records of one topic must come in offset order)."""
        self._queues[kind].append(Pending(key, offset, item))
        self._consumed[kind] = offset + 1

    def skip(self, kind: str, offset: int) -> None:
        """A polled record that will never be released (rejected: sent to the dead letters)."""
        self._consumed[kind] = offset + 1

    def consumed(self, kind: str) -> int | None:
        return self._consumed[kind]

    def buffered(self) -> int:
        return len(self._queues[PAYMENTS]) + len(self._queues[LOGINS])

    def held_payments(self) -> int:
        return len(self._queues[PAYMENTS])

    def first_held_payment(self) -> int | None:
        """The offset of the oldest payment held (None: none held)."""
        q = self._queues[PAYMENTS]
        return q[0].offset if q else None

    def holds_payments_from(self, payments_ready: bool | int) -> bool:
        """A payment is held at or above ``payments_ready`` (:meth:`release`'s bound): it
        waits for the reference tables."""
        first = self.first_held_payment()
        return first is not None and first >= _bound(payments_ready)

    def release(
        self, caught_up: Callable[[str], bool | int], payments_ready: bool | int = True
    ) -> list[Pending[T]]:
        """Release every record whose turn has come, in merged event-time order.

        ``caught_up(kind)``: that topic's partition has nothing more to poll for the other
        topic's heads below the returned offset (``True``: for all of them, ``False``: none).
        ``payments_ready``: the global reference tables are caught up for the payments below
        this offset (``True``: for all of them, ``False``: none); a payment at or above it
        waits, and so does every record after it in the merge.
        """
        ready_below = _bound(payments_ready)
        pq, lq = self._queues[PAYMENTS], self._queues[LOGINS]
        out: list[Pending[T]] = []
        logins_done: int | None = None  # payments below this offset may pass without logins
        payments_done: int | None = None  # and logins below this one without payments
        while pq or lq:
            if pq and lq:
                if lq[0].key <= pq[0].key:
                    out.append(lq.popleft())
                elif pq[0].offset < ready_below:
                    out.append(pq.popleft())
                else:
                    break
            elif lq:
                if payments_done is None:
                    payments_done = _bound(caught_up(PAYMENTS))
                if lq[0].offset >= payments_done:
                    break
                out.append(lq.popleft())
            else:
                if logins_done is None:
                    logins_done = _bound(caught_up(LOGINS))
                if pq[0].offset >= ready_below or pq[0].offset >= logins_done:
                    break
                out.append(pq.popleft())
        return out

    def resume_offsets(self) -> dict[str, int | None]:
        """Per topic: the offset of the first record not yet applied (None = from the start)."""
        out: dict[str, int | None] = {}
        for kind in KINDS:
            q = self._queues[kind]
            out[kind] = q[0].offset if q else self._consumed[kind]
        return out


def _bound(answer: bool | int) -> int:
    """``caught_up``'s answer as an offset bound (``True``: every offset, ``False``: none)."""
    if answer is True:
        return _EVERY
    if answer is False:
        return -1
    return int(answer)


_EVERY = 1 << 62


class HeldTime:
    """Payment-seconds spent held in the alignment, by what the payments waited for, counted
    around each release: a payment held after one iteration's release has waited until the
    next release starts (:meth:`before_release`), and one still held after that release has
    waited through it too (:meth:`after_release`). The part of a release before a payment
    passes (the reference tables' answer) is added by the caller. Pure: the caller gives the
    times."""

    def __init__(self, now: float) -> None:
        self._since = now
        self._held: dict[str, int] = {}

    def before_release(self, now: float) -> dict[str, float]:
        """The payments held after the last release waited until ``now`` (the next one)."""
        out = {why: n * (now - self._since) for why, n in self._held.items()}
        self._since = now
        return out

    def after_release(self, now: float, held: dict[str, int]) -> dict[str, float]:
        """``held``: payments still held after the release, by reason; they waited through it."""
        out = {why: n * (now - self._since) for why, n in held.items()}
        self._since = now
        self._held = held
        return out
