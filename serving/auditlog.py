"""The access log: every read of personal data and every decision, one append-only row each
(``tables.audit``): who (user and key), what (action, target, filters, row counts), when, and
the request — the server's id, with the client's ``X-Request-ID`` kept beside it as theirs.

It is the record of processing for personal data (Law 91/2025/QH15): no API route updates or
deletes a row, and database triggers refuse it (migration 0002).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from fastapi import Depends, Request
from starlette.types import Scope

from serving.db import now
from serving.keys import Principal
from serving.metrics import ApiMetrics
from serving.store import AuditRow, CaseStore, DecisionAudit

log = logging.getLogger(__name__)
MAX_FILTER_TEXT = 1000  # per filter value stored in the log
MAX_BATCH = 500
R = TypeVar("R")
Entry = tuple[str, str, dict[str, Any] | None]  # action, target, details
WAIT_S = 60.0  # longer than any lock wait (serving.db.BUSY_TIMEOUT_MS)


class AuditWriter:
    """Group commit of audit entries: a request hands its entry over and waits until it is
    committed (so no personal data leaves before its read is on record), while a writer
    thread writes every entry waiting at that moment in one transaction — one commit for many
    concurrent requests instead of one each. ``CaseStore.audit_writers`` threads (one on
    SQLite, more on PostgreSQL, so that an entry arriving during a commit starts the next
    commit at once instead of waiting for that one to end), each on a connection of its
    own (``serving.auditdb.AuditAppender``)."""

    def __init__(self, store: CaseStore, metrics: ApiMetrics | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self._cond = threading.Condition()
        self._queue: list[tuple[dict[str, Any], Future[None]]] = []
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, row: dict[str, Any]) -> Future[None]:
        future: Future[None] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the audit writer is closed")
            self._queue.append((row, future))
            if not self._threads:
                self._threads = [threading.Thread(target=self._run, name=f"audit-writer-{n}",
                                                  daemon=True)
                                 for n in range(self.store.audit_writers)]
                for thread in self._threads:
                    thread.start()
            self._cond.notify()
        return future

    def write(self, row: dict[str, Any]) -> None:
        """Append one entry and return once it is committed (raises what the commit raised)."""
        self.submit(row).result(WAIT_S)

    def write_many(self, rows: list[AuditRow]) -> None:
        """Append entries; return once all are committed (they share the group commits)."""
        for future in [self.submit(row) for row in rows]:
            future.result(WAIT_S)

    def _run(self) -> None:
        appender = self.store.audit_appender()
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closed:
                        self._cond.wait()
                    if not self._queue:
                        return
                    batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                start = time.perf_counter()
                try:
                    appender.append([row for row, _ in batch])
                except Exception as exc:  # every waiting request learns it (503 when busy)
                    log.warning("audit write failed", extra={"entries": len(batch),
                                                             "error": repr(exc)})
                    for _, future in batch:
                        future.set_exception(exc)
                else:
                    if self.metrics is not None:
                        self.metrics.audit_commit.observe(time.perf_counter() - start)
                    for _, future in batch:
                        future.set_result(None)
        finally:
            appender.close()

    def close(self) -> None:
        """Write what is queued and stop the threads (a later entry starts new ones)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            threads = self._threads
        for thread in threads:
            thread.join(WAIT_S)
        with self._cond:
            self._closed, self._threads = False, []


def query_filters(query_string: bytes) -> dict[str, str]:
    """The query parameters as the client sent them (``cursor`` only as present/absent)."""
    out: dict[str, str] = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)[:50]:
        out[key[:100]] = "<given>" if key == "cursor" else value[:MAX_FILTER_TEXT]
    return out


@dataclass(frozen=True, slots=True)
class Audit:
    writer: AuditWriter
    principal: Principal
    request_id: str
    client_request_id: str | None

    @classmethod
    def of(cls, writer: AuditWriter, scope: Scope) -> Audit:
        state = scope.get("state", {})
        return cls(writer, state["principal"], state.get("request_id", "-"),
                   state.get("client_request_id"))

    def row(self, action: str, target: str, details: dict[str, Any] | None) -> dict[str, Any]:
        p = self.principal
        return {"at": now(), "actor": p.user, "role": p.role, "action": action,
                "target": target, "request_id": self.request_id, "key_name": p.name,
                "client_request_id": self.client_request_id,
                "details": None if details is None else orjson.dumps(details).decode()}

    def record(self, action: str, target: str, details: dict[str, Any] | None = None) -> None:
        """Append one entry; returns once it is committed (call from a worker thread)."""
        self.writer.write(self.row(action, target, details))

    def record_many(self, entries: list[Entry]) -> None:
        """Append several entries ``(action, target, details)``; returns once all are
        committed (they share the writer's group commits)."""
        self.writer.write_many([self.row(a, t, d) for a, t, d in entries])

    def decision(self, entries: Callable[[R], list[Entry]]) -> DecisionAudit[R]:
        """The entries ``(action, target, details)`` of a decision, built from its result,
        for :meth:`serving.store.CaseStore.decide`: on PostgreSQL written in the decision's
        transaction, on SQLite by this writer's group commit once the decision committed."""
        return DecisionAudit(rows=lambda result: [self.row(*e) for e in entries(result)],
                             later=self.writer.write_many)

    async def record_async(self, action: str, target: str,
                           details: dict[str, Any] | None = None) -> None:
        """The same from the event loop, without a thread of its own."""
        await asyncio.wait_for(asyncio.wrap_future(
            self.writer.submit(self.row(action, target, details))), WAIT_S)


    async def list_read(self, query_string: bytes, body: bytes) -> None:
        """One entry for a page of the ranked list (the route and the cached fast path)."""
        # each item of the page is an object that starts with "account_id" (serving.reads);
        # inside a JSON string the quotes would be escaped, so this counts the items exactly
        rows = body.count(b'{"account_id":')
        await self.record_async("accounts.high_risk", "high-risk",
                                {"filters": query_filters(query_string), "rows": rows})


async def _audit(request: Request) -> Audit:
    return Audit.of(request.app.state.audit_writer, request.scope)


AuditDep = Annotated[Audit, Depends(_audit)]
