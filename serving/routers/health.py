"""Liveness (open), readiness (database reachable; the case-store projection's state and lag)
and Prometheus metrics."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from serving.auth import Viewer
from serving.db import write_probe
from serving.deps import MetricsDep, StoreDep
from serving.errors import BUSY_RETRY_AFTER_S, ApiError, responses
from serving.projection_status import readiness
from serving.schemas import Health, Ready

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness (no key needed)")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready,
            summary="Readiness: the database answers and takes writes",
            description="503 `not_ready` if the case store is unreachable, 503 `store_busy` if "
                        "a write transaction cannot start within 0.5 s (a held lock) on the "
                        "case store or the access log: every read of personal data writes an "
                        "audit entry, so a store that cannot write cannot serve.",
            responses=responses(401, 403, 503))
def readyz(principal: Viewer, store: StoreDep, request: Request) -> dict[str, Any]:
    try:
        store.ping()
        version = store.version()
        writable = write_probe(store.engine) and (
            store.audit_engine is store.engine or write_probe(store.audit_engine))
    except SQLAlchemyError as exc:
        log.warning("not ready", extra={"error": repr(exc)})
        raise ApiError(503, "not_ready", "the case store is unreachable",
                       headers={"Retry-After": "5"}) from None
    if not writable:
        raise ApiError(503, "store_busy", "the case store is busy: a write lock is held",
                       headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})
    return {"status": "ready", "store_version": version,
            "projection": readiness(request.app.state.projection_status)}


@router.get("/metrics", summary="Prometheus metrics", responses={
    **responses(401, 403), 200: {"content": {CONTENT_TYPE_LATEST: {}},
                                 "description": "Prometheus text format"}})
def metrics(principal: Viewer, m: MetricsDep) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
