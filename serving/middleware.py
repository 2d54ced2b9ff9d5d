"""Pure ASGI middleware, outermost first:

* :class:`RequestContext` — a server-generated request id on every request and response (a
  client's ``X-Request-ID`` is kept beside it as the *client's* id, never instead of it), and
  request metrics;
* :class:`SecurityHeaders` — ``nosniff``, a CSP with ``frame-ancestors 'none'``, and
  ``Cache-Control: no-store`` on everything but liveness and the documentation's assets;
* :class:`AuthGate` — the API key is checked *before* the body is read: no key, an unknown
  key or a revoked key is a 401 whatever the body holds; failures are logged (client address,
  path, reason; never the key) and a client with too many recent failures gets 429 with
  ``Retry-After``;
* :class:`BodyLimit` — bodies over :data:`MAX_BODY` bytes are a 413 before any parsing
  (``Content-Length`` is checked first, streamed bytes are counted too).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import uuid
from collections import OrderedDict, deque
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import ApiError
from serving.logsafe import escape
from serving.metrics import ApiMetrics

log = logging.getLogger(__name__)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MAX_BODY = 64 * 1024
# paths open without a key; everything else needs one (deny by default)
OPEN_EXACT = frozenset({"/healthz", "/", "/openapi.json", "/docs", "/redoc"})
OPEN_PREFIXES = ("/ui", "/docs/")
NO_STORE_EXEMPT_PREFIXES = ("/docs/",)  # vendored, versioned assets: cacheable


def is_open(path: str) -> bool:
    return path in OPEN_EXACT or path.startswith(OPEN_PREFIXES)


def client_request_id(scope: Scope) -> str | None:
    """The client's ``X-Request-ID`` as stored in the audit log: at most 64 characters,
    anything outside ``[A-Za-z0-9._:-]`` escaped (so it cannot forge a log line)."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SAFE_ID.match(text) else escape(text)[:64]
    return None


async def _send_json(send: Send, status: int, body: dict[str, Any],
                     headers: dict[str, str] | None = None) -> None:
    raw = orjson.dumps(body)
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(raw)).encode()), *extra]})
    await send({"type": "http.response.body", "body": raw})


def _error(scope: Scope, code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": None},
            "request_id": scope.get("state", {}).get("request_id", "-")}


class RequestContext:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        state["client_request_id"] = theirs = client_request_id(scope)
        start = time.perf_counter()
        status = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                if theirs is not None and _SAFE_ID.match(theirs):
                    headers.append((b"x-client-request-id", theirs.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path", None) or scope.get("route_path", "unmatched")
            method = scope.get("method", "")
            self.metrics.latency.labels(method, path).observe(time.perf_counter() - start)
            self.metrics.requests.labels(method, path, str(status[0])).inc()


API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'; connect-src 'self'; worker-src 'self' blob:; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


class SecurityHeaders:
    """Headers every response carries (a route or page that sets its own CSP keeps it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/ui") or path == "/":
            csp = PAGE_CSP
        elif path in ("/docs", "/redoc") or path.startswith("/docs/"):
            csp = DOCS_CSP
        else:
            csp = API_CSP
        no_store = not path.startswith(NO_STORE_EXEMPT_PREFIXES)
        fixed = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                 (b"x-frame-options", b"DENY")]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [h for h in fixed if h[0] not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", csp.encode()))
                if no_store:
                    headers = [h for h in headers if h[0].lower() != b"cache-control"]
                    headers += [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class FailedAuthLimiter:
    """Failed authentications per client address in a sliding window; over the limit the
    client is refused (429) until its oldest failure leaves the window."""

    def __init__(self, max_failures: int = 20, window_s: float = 60.0,
                 max_clients: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str, now: float) -> deque[float] | None:
        q = self._failures.get(client)
        if q is None:
            return None
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def retry_after(self, client: str) -> int:
        """Seconds the client must wait (0: not limited)."""
        now = time.monotonic()
        with self._lock:
            q = self._recent(client, now)
            if q is None or len(q) < self.max_failures:
                return 0
            return max(1, math.ceil(q[0] + self.window_s - now))

    def failed(self, client: str) -> int:
        """Record a failure; the number of failures in the window."""
        now = time.monotonic()
        with self._lock:
            q = self._recent(client, now)
            if q is None:
                q = self._failures[client] = deque(maxlen=self.max_failures)
                while len(self._failures) > self.max_clients:
                    self._failures.popitem(last=False)
            q.append(now)
            self._failures.move_to_end(client)
            return len(q)


class AuthGate:
    """Authenticates every request to a protected path before anything reads its body."""

    def __init__(self, app: ASGIApp, limiter: FailedAuthLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        from serving.auth import (  # noqa: PLC0415 - cycle
            check_token,
            fresh_versions,
            token_from_headers,
        )

        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.limiter.retry_after(client)
        if wait:
            await _send_json(send, 429, _error(scope, "too_many_failures",
                             "too many failed authentications from this address; retry later"),
                             {"Retry-After": str(wait)})
            return
        token, problem = token_from_headers(scope["headers"])
        try:  # a key cache hit needs only the store versions (off the loop on PostgreSQL)
            state = scope["app"].state
            principal = None if token is None else check_token(
                state, token, scope.setdefault("state", {}), await fresh_versions(state))
        except ApiError as exc:  # the store is unreachable
            await _send_json(send, exc.status, _error(scope, exc.code, exc.message),
                             exc.headers)
            return
        if principal is None:
            reason = problem or "unknown or revoked API key"
            count = self.limiter.failed(client)
            log.warning("authentication failed", extra={
                "client": escape(client), "path": escape(scope["path"][:200]),
                "reason": reason, "failures_in_window": count,
                "request_id": scope.get("state", {}).get("request_id")})
            message = ("an API key is required: 'Authorization: Bearer <key>'"
                       if token is None else "unknown or revoked API key")
            await _send_json(send, 401, _error(scope, "unauthorized", message),
                             {"WWW-Authenticate": "Bearer"})
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for bodies over ``limit`` bytes, before the app parses anything."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = _error(scope, "payload_too_large",
                           f"the request body is larger than {self.limit} bytes")
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
                if declared > self.limit:
                    await _send_json(send, 413, too_large, {"Connection": "close"})
                    return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        # read the whole (small) body here, counting, then replay it to the app
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _send_json(send, 413, too_large, {"Connection": "close"})
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
