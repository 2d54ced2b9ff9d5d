"""Confirmed payments, live: labels that name a payment become records every scorer reads.

A label arrives keyed by the victim's account and every scorer reads the whole ``labels`` topic,
but the payment it names lives in one partition: only the scorer that owns that account holds
it (``FeatureEngine`` keeps a hash of each retained payment's ``event_id``). That scorer
resolves the label against the payment (:meth:`features.engine.FeatureEngine.resolve`, or
``ReferenceData.paid`` when the payment is applied after the label was read) and publishes the
:class:`~features.events.ConfirmedPayment` on the compacted ``confirmed_payments`` topic, keyed
by ``label_id``; every scorer's :class:`streaming.reference.ReferenceReader` reads that topic as
a global table, so payments to the same beneficiary through any partition see the confirmed
fraud, as training replay does (``features.replay.reference_for``).

Delivery: a record is sent on the outputs' producer in the iteration it was resolved, so the
next checkpoint's first step (outputs durable) covers it. Nothing is lost if the process dies
before that: resolution is a function of the labels and the retained payments, and a
restarted scorer re-reads every label, restores or rebuilds its partitions' state, and resolves
again every label that no record read back from the topic has settled (publishing the same
record under the same key again is harmless). To avoid those repeats, resolution waits until
the reference tables are caught up (the records already published are read first).

A label whose payment is not found stays awaiting; once every partition this scorer owns is
more than ``RESOLVE_HORIZON_S`` (35 days) past the label's confirmation it is dropped and
counted (``canhgiac_scorer_labels_expired``: no scorer published a record for it, i.e. the
payment is unknown or older than the retained history). Such a label still counts through its
own ``counterparty_account`` when it names one (every scorer applies that from the label).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from features.engine import ReferenceData
    from streaming.handler import Handler

log = logging.getLogger(__name__)

EXPIRE_EVERY_S = 60.0


class ConfirmedLabels:
    """The scorer's share of confirmed payments: resolve, then hand the records to publish."""

    def __init__(self, ref: ReferenceData, handler: Handler, metrics: Any) -> None:
        self.ref = ref
        self.handler = handler
        self.metrics = metrics
        self._deferred: set[int] = set()  # partitions opened before the tables caught up
        self._expired_at = time.monotonic()

    def resolve(self, fresh: set[int], caught_up: bool) -> None:
        """Once per iteration, after assignments and the reference poll: partitions just
        opened are searched for every label awaiting its payment, the other owned partitions
        for the labels read since the last call. Waits while the tables are behind."""
        engines = self.handler.engines
        if not caught_up:
            self._deferred |= fresh
            return
        opened = {p for p in self._deferred | fresh if p in engines}
        self._deferred.clear()
        for p in sorted(opened):
            engines[p].resolve()
        labels = self.ref.take_new_awaiting()
        if labels:
            for p, engine in engines.items():
                if p not in opened:
                    engine.resolve(labels)
        now = time.monotonic()
        if now - self._expired_at >= EXPIRE_EVERY_S:
            self._expired_at = now
            self.expire()

    def expire(self) -> int:
        """Stop waiting for labels confirmed more than the horizon before the oldest event
        time of the owned partitions (none owned or none applied yet: nothing expires)."""
        times = [t for p, t in self.handler.event_time.items() if p in self.handler.engines]
        dropped = self.ref.expire_awaiting(min(times)) if times else 0
        if dropped:
            self.metrics.labels_expired.inc(dropped)
            log.info("labels whose payment no scorer found within the horizon are no longer "
                     "awaited", extra={"labels": dropped})
        self.metrics.labels_awaiting.set(self.ref.n_awaiting())
        return dropped

    def take(self) -> list[Any]:
        """The records resolved here since the last call (to publish)."""
        records = self.ref.take_outbox()
        if records:
            self.metrics.confirmed_published.inc(len(records))
        return records
