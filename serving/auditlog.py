"""The access log: every read of personal data and every decision, one append-only row each
(``tables.audit``): who (user and key), what (action, target, filters, row counts), when, and
the request — the server's id, with the client's ``X-Request-ID`` kept beside it as theirs.

It is the record of processing for personal data (Law 91/2025/QH15): no API route updates or
deletes a row, and database triggers refuse it (migration 0002).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Depends, Request
from starlette.types import Scope

from serving.keys import Principal
from serving.store import CaseStore

MAX_FILTER_TEXT = 1000  # per filter value stored in the log


def query_filters(query_string: bytes) -> dict[str, str]:
    """The query parameters as the client sent them (``cursor`` only as present/absent)."""
    out: dict[str, str] = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)[:50]:
        out[key[:100]] = "<given>" if key == "cursor" else value[:MAX_FILTER_TEXT]
    return out


@dataclass(frozen=True, slots=True)
class Audit:
    store: CaseStore
    principal: Principal
    request_id: str
    client_request_id: str | None

    @classmethod
    def of(cls, store: CaseStore, scope: Scope) -> Audit:
        state = scope.get("state", {})
        return cls(store, state["principal"], state.get("request_id", "-"),
                   state.get("client_request_id"))

    def record(self, action: str, target: str, details: dict[str, Any] | None = None) -> None:
        p = self.principal
        self.store.record_audit(p.user, p.role, action, target, self.request_id, key=p.name,
                                client_request_id=self.client_request_id, details=details)


    def list_read(self, query_string: bytes, body: bytes) -> None:
        """One entry for a page of the ranked list (the route and the cached fast path)."""
        rows = len(orjson.loads(body)["items"])
        self.record("accounts.high_risk", "high-risk",
                    {"filters": query_filters(query_string), "rows": rows})


async def _audit(request: Request) -> Audit:
    return Audit.of(request.app.state.store, request.scope)


AuditDep = Annotated[Audit, Depends(_audit)]
