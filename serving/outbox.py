"""Delivery of the outbox (see ``tables.outbox``) to Kafka, in order, at least once.

Each decision's events are queued in its own transaction; :meth:`Outbox.deliver` runs right
after the decision and again every few seconds from the app (so a broker outage only delays
them). Delivery stops at the first failure to keep each account's actions in order. Two API
workers may both send an event (at least once): consumers key on ``case_id`` + ``action``.
"""

from __future__ import annotations

import logging
import threading

from features.events import Label, from_mapping
from serving.actions import ActionPublisher
from serving.store import CaseStore

log = logging.getLogger(__name__)
RETRY_INTERVAL_S = 5.0
BATCH = 100


class Outbox:
    def __init__(self, store: CaseStore, publisher: ActionPublisher) -> None:
        self.store = store
        self.publisher = publisher
        self._lock = threading.Lock()

    def deliver(self) -> dict[int, bool]:
        """Publish pending events oldest first; {outbox id: delivered} of those attempted."""
        results: dict[int, bool] = {}
        with self._lock:
            for outbox_id, kind, payload in self.store.pending_outbox(BATCH):
                ok = self._publish(kind, payload)
                results[outbox_id] = ok
                if not ok:
                    log.warning("outbox delivery paused", extra={
                        "outbox_id": outbox_id, "kind": kind})
                    break
                self.store.mark_sent(outbox_id)
        return results

    def _publish(self, kind: str, payload: dict[str, object]) -> bool:
        if kind == "action":
            return self.publisher.publish_action(payload)
        label = from_mapping("labels", payload)
        if not isinstance(label, Label):
            log.error("outbox label dropped", extra={"reason": label.message()})
            return True  # cannot ever be sent; do not block the queue
        return self.publisher.publish_label(label)
