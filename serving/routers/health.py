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
from serving.deps import MetricsDep, StoreDep
from serving.errors import ApiError, responses
from serving.projection_status import readiness
from serving.schemas import Health, Ready

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness (no key needed)")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, summary="Readiness: the database answers",
            responses=responses(401, 403, 503))
def readyz(principal: Viewer, store: StoreDep, request: Request) -> dict[str, Any]:
    try:
        store.ping()
        version = store.version()
    except SQLAlchemyError as exc:
        log.warning("not ready", extra={"error": repr(exc)})
        raise ApiError(503, "not_ready", "the case store is unreachable") from None
    return {"status": "ready", "store_version": version,
            "projection": readiness(request.app.state.projection_status)}


@router.get("/metrics", summary="Prometheus metrics", responses={
    **responses(401, 403), 200: {"content": {CONTENT_TYPE_LATEST: {}},
                                 "description": "Prometheus text format"}})
def metrics(principal: Viewer, m: MetricsDep) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
