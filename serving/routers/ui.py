"""The investigators' page: one HTML shell for every ``/ui/...`` address (deep links such as
``/ui/accounts/{id}`` work), its assets and vendored libraries under ``/ui/static/``, and the
page's own endpoints (queues, network, histogram, results report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client.core import GaugeMetricFamily
from starlette.responses import FileResponse

from serving import queues as q
from serving.routers import insight, queues
from serving.sla import Sla, parse

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(include_in_schema=False)


def _shell() -> FileResponse:
    # no-cache: a new release's page must not run against an old cached shell
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/ui")
@router.get("/ui/")
def shell() -> FileResponse:
    return _shell()


@router.get("/ui/{rest:path}")
def deep_link(rest: str) -> FileResponse:
    return _shell()


class OverdueFreezeRequests:
    """``canhgiac_api_freeze_requests_overdue``: freeze requests past their deadline, counted
    at scrape time from the store."""

    def __init__(self, store: Any, sla: Sla) -> None:
        self.store, self.sla = store, sla

    def collect(self) -> Any:
        g = GaugeMetricFamily("canhgiac_api_freeze_requests_overdue",
                              "Freeze requests waiting longer than their SLA deadline")
        try:
            with self.store.read() as conn:
                g.add_metric([], q.overdue_freeze_requests(conn, self.sla))
        except Exception:  # noqa: BLE001 - a scrape must not fail on a store hiccup
            g.add_metric([], float("nan"))
        yield g


def install(app: FastAPI, settings: Any, store: Any) -> None:
    """Register the page, its routers, the SLA settings and the overdue metric on ``app``."""
    app.state.sla = sla = parse(getattr(settings, "sla_hours", ""))
    app.include_router(queues.router)
    app.include_router(insight.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.include_router(router)
    app.state.metrics.registry.register(OverdueFreezeRequests(store, sla))
