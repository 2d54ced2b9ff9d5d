"""API-key authentication (``Authorization: Bearer <key>``) and role checks.

Keys are looked up by their SHA-256 (see :mod:`serving.keys`). A successful lookup is cached
per *keys version* of the store; creating or revoking a key bumps it, so a revoked key fails on
its next use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError

from serving.cases import ROLE_RANK
from serving.errors import ApiError
from serving.keys import Principal, hash_token
from serving.store import CaseStore, Versions

log = logging.getLogger(__name__)
bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="An API key from `canhgiac keys create`")

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
_MAX_CACHED = 10_000


class KeyCache:
    """token hash -> (keys version, principal); only valid for the version it was read at."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[int, Principal]] = {}

    def get(self, digest: str, version: int) -> Principal | None:
        entry = self._entries.get(digest)
        return entry[1] if entry is not None and entry[0] == version else None

    def put(self, digest: str, version: int, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= _MAX_CACHED:
                self._entries.clear()
            self._entries[digest] = (version, principal)


def token_from_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """(the bearer token, None) or (None, why there is none)."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                return None, "not a bearer key"
            return token, None
    return None, "no key"


def _unavailable(exc: BaseException) -> ApiError:
    log.error("key lookup failed", extra={"error": repr(exc)})
    return ApiError(503, "store_unavailable", "the case store is unreachable",
                    headers={"Retry-After": "5"})


async def fresh_versions(state: Any) -> Versions | None:
    """The store versions read off the event loop (``serving.versionfeed``) when the store
    is remote (PostgreSQL); None when ``check_token`` should read them inline (SQLite: a
    local read of a few microseconds)."""
    shared = getattr(state, "version_reads", None)
    if shared is None:
        return None
    try:
        return await shared.get()
    except SQLAlchemyError as exc:
        raise _unavailable(exc) from None


def check_token(state: Any, token: str, request_state: dict[str, Any] | None = None,
                versions: Versions | None = None) -> Principal | None:
    """The principal of a valid key (cached per keys version), else None; 503 if the store
    cannot be read. The store versions (read here unless given) are left in
    ``request_state`` (``"versions"``) for the rest of the request."""
    if len(token) > 256:
        return None
    store: CaseStore = state.store
    cache: KeyCache = state.key_cache
    digest = hash_token(token)
    try:
        if versions is None:
            versions = store.versions()
        principal = cache.get(digest, versions.keys)
        if principal is None:
            principal = store.authenticate(token)
    except SQLAlchemyError as exc:
        raise _unavailable(exc) from None
    if request_state is not None:
        request_state["versions"] = versions
    if principal is not None:
        cache.put(digest, versions.keys, principal)
        state.metrics.store_version.set(versions.data)
    return principal


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The principal :class:`serving.middleware.AuthGate` found (it runs before the body is
    read); checked again here only if the gate did not run for this path."""
    principal: Principal | None = request.scope.get("state", {}).get("principal")
    if principal is None:
        if credentials is None or not credentials.credentials:
            raise ApiError(401, "unauthorized", "an API key is required: "
                           "'Authorization: Bearer <key>'", headers=_UNAUTHORIZED)
        principal = check_token(request.app.state, credentials.credentials)
        if principal is None:
            raise ApiError(401, "unauthorized", "unknown or revoked API key",
                           headers=_UNAUTHORIZED)
    request.state.principal = principal
    return principal


def require(minimum: str) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        # inline, not in the threadpool: a cache hit is one tiny indexed read
        principal = authenticate(request, credentials)
        if ROLE_RANK.get(principal.role, -1) < ROLE_RANK[minimum]:
            raise ApiError(403, "forbidden",
                           f"this needs the role '{minimum}' or higher; "
                           f"key '{principal.name}' of user '{principal.user}' is "
                           f"'{principal.role}'")
        return principal

    dependency.__name__ = f"require_{minimum}"
    return dependency


Viewer = Annotated[Principal, Depends(require("viewer"))]
Investigator = Annotated[Principal, Depends(require("investigator"))]
Supervisor = Annotated[Principal, Depends(require("supervisor"))]
Admin = Annotated[Principal, Depends(require("admin"))]
