"""Delivery of the outbox (``tables.outbox``) to Kafka: off the request, in order per account,
one process at a time.

* **Off the request.** A decision commits its events with it (transactional outbox). The
  router's :meth:`Outbox.deliver` asks for a delivery round on the outbox's own thread and
  waits at most ``wait_s`` (0.5 s) for it: with the broker up the response says the action was
  published, with the broker down it answers at once and the round (or the app's retry loop,
  every ``RETRY_INTERVAL_S``) delivers later. A committed decision never fails for Kafka.
* **One deliverer.** A round runs only while its process holds the outbox lease in the store
  (``CaseStore.acquire_outbox_lease``: a database row lock decides between API workers), and
  stops sending before the lease could expire, so two workers never send the same event.
* **Order per account; no head-of-line blocking.** Events go oldest first; an event the broker
  refuses holds back the later events of its account only, the other accounts' go on. A broker
  that cannot be reached ends the round (everything would fail).
* Every ``account.actions`` event carries an ``action_id`` (a uuid stored with the event, so a
  retry sends the same id); consumers de-duplicate on it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from features.events import Label, from_mapping
from serving.actions import ActionPublisher, PublisherUnavailable
from serving.store import CaseStore, PendingEvent

log = logging.getLogger(__name__)
RETRY_INTERVAL_S = 5.0
BATCH = 1000
LEASE_TTL_S = 120
LEASE_MARGIN_S = 40.0  # stop sending this long before the lease ends (> one send's timeout)
REQUEST_WAIT_S = 0.5
_ACTION_NS = uuid.UUID("5b0f3d0e-8f0e-4f55-9a3b-3c1f4d6f2a10")


@dataclass
class Round:
    results: dict[int, bool] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


class Outbox:
    def __init__(self, store: CaseStore, publisher: ActionPublisher) -> None:
        self.store = store
        self.publisher = publisher
        self.holder = secrets.randbelow(2**31 - 2) + 1  # this process, in the lease
        self._lock = threading.Lock()
        self._queued: Round | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")

    def deliver(self, wait_s: float | None = REQUEST_WAIT_S) -> dict[int, bool]:
        """Ask for a delivery round that starts after this call (coalesced with one already
        asked for) and wait up to ``wait_s`` (None: until it ends). Returns ``{outbox id:
        delivered}`` of the events the round got to so far."""
        try:
            with self._lock:
                if self._queued is None:
                    self._queued = Round()
                    self._executor.submit(self._run, self._queued)
                rnd = self._queued
        except RuntimeError:  # closed (the app is stopping): the next start delivers
            return {}
        rnd.done.wait(wait_s)
        return dict(rnd.results)

    def close(self) -> None:
        with self._lock:
            self._executor.shutdown(wait=False, cancel_futures=True)
            if self._queued is not None:
                self._queued.done.set()  # cancelled: nobody waits for it
                self._queued = None

    # ------------------------------------------------------------------ one round
    def _run(self, rnd: Round) -> None:
        with self._lock:
            if self._queued is rnd:
                self._queued = None  # from now on, a new request asks for a new round
        try:
            if not self.store.acquire_outbox_lease(self.holder, LEASE_TTL_S):
                log.debug("outbox delivered by another process")
                return
            try:
                self._deliver(rnd, time.monotonic() + LEASE_TTL_S - LEASE_MARGIN_S)
            finally:
                self.store.release_outbox_lease(self.holder)
        except Exception as exc:  # noqa: BLE001 - the store failing: the next round retries
            log.error("outbox delivery failed: %r", exc)
        finally:
            rnd.done.set()

    def _deliver(self, rnd: Round, stop_at: float) -> None:
        held: set[str] = set()  # accounts whose oldest pending event was refused
        for event in self.store.pending_events(BATCH):
            if event.account_id in held:
                rnd.results[event.id] = False
                continue
            if time.monotonic() > stop_at:
                return  # the lease could run out during the next send
            try:
                ok = self._publish(event)
            except PublisherUnavailable:
                log.warning("outbox delivery paused: broker unavailable",
                            extra={"outbox_id": event.id})
                rnd.results[event.id] = False
                return
            rnd.results[event.id] = ok
            if ok:
                self.store.mark_sent(event.id)
            else:
                held.add(event.account_id)
                log.warning("outbox event refused; the account's later events wait", extra={
                    "outbox_id": event.id, "kind": event.kind, "account_id": event.account_id})

    def _publish(self, event: PendingEvent) -> bool:
        if event.kind == "action":
            payload = dict(event.payload)
            if not payload.get("action_id"):  # queued before action ids: a stable one
                payload["action_id"] = str(uuid.uuid5(
                    _ACTION_NS, f"{event.id}|{event.created_at!r}|{event.account_id}"))
            payload.setdefault("account_id", event.account_id)
            return self.publisher.publish_action(payload)
        label = from_mapping("labels", event.payload)
        if not isinstance(label, Label):
            log.error("outbox label dropped", extra={"reason": label.message()})
            return True  # cannot ever be sent; do not block the queue
        return self.publisher.publish_label(label)
