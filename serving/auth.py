"""API-key authentication (``Authorization: Bearer <key>``) and role checks.

Keys are looked up by their SHA-256 (see :mod:`serving.keys`). A successful lookup is cached
per *keys version* of the store; creating or revoking a key bumps it, so a revoked key fails on
its next use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError

from serving.cases import ROLE_RANK
from serving.errors import ApiError
from serving.keys import Principal, hash_token
from serving.store import CaseStore

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


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "unauthorized", "an API key is required: "
                       "'Authorization: Bearer <key>'", headers=_UNAUTHORIZED)
    token = credentials.credentials
    if len(token) > 256:
        raise ApiError(401, "unauthorized", "unknown or revoked API key", headers=_UNAUTHORIZED)
    store: CaseStore = request.app.state.store
    cache: KeyCache = request.app.state.key_cache
    digest = hash_token(token)
    try:
        versions = store.versions()
        principal = cache.get(digest, versions.keys)
        if principal is None:
            principal = store.authenticate(token)
    except SQLAlchemyError as exc:
        log.error("key lookup failed", extra={"error": repr(exc)})
        raise ApiError(503, "store_unavailable", "the case store is unreachable") from None
    request.state.versions = versions
    if principal is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key",
                       headers=_UNAUTHORIZED)
    cache.put(digest, versions.keys, principal)
    request.app.state.metrics.store_version.set(versions.data)
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
                           f"key '{principal.name}' is '{principal.role}'")
        return principal

    dependency.__name__ = f"require_{minimum}"
    return dependency


Viewer = Annotated[Principal, Depends(require("viewer"))]
Investigator = Annotated[Principal, Depends(require("investigator"))]
Supervisor = Annotated[Principal, Depends(require("supervisor"))]
Admin = Annotated[Principal, Depends(require("admin"))]
