"""The investigator API's app factory: ``create_app(settings)``; routes live in ``routers/``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse

from serving import errors
from serving.actions import ActionPublisher, NoPublisher
from serving.auth import KeyCache
from serving.cache import ResponseCache
from serving.config import ApiSettings
from serving.fastpath import HighRiskFastPath
from serving.metrics import ApiMetrics
from serving.middleware import RequestContext
from serving.outbox import RETRY_INTERVAL_S, Outbox
from serving.projection_status import ProjectionLagHeader
from serving.routers import accounts, audit, cases, health, model, reports
from serving.store import CaseStore

if TYPE_CHECKING:
    from serving.projection import Projection

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
DESCRIPTION = """Cảnh Giác investigator API (Official Dispatch 139/CĐ-TTg): ranked high-risk
accounts with reasons, account details, rapid-response cases (item 9c) and the police report
(item 9a). Authenticate with `Authorization: Bearer <key>` (keys from
`canhgiac keys create --role viewer|investigator|supervisor|admin --name NAME`).
Only `/healthz` is open. Errors are `{"error": {"code", "message", "details"}, "request_id"}`.

**Item 9a view:** `GET /v1/accounts/high-risk?type=business&foreign_login=true&min_score=0.5`
"""


def create_app(settings: ApiSettings, store: CaseStore | None = None,
               action_publisher: ActionPublisher | None = None,
               projection: Projection | None = None) -> FastAPI:
    """``projection``: the case-store projection to run on a background thread while the app
    runs (``canhgiac serve``); its lag shows in ``/readyz``, ``/metrics`` and the
    ``X-Projection-Lag`` header of ``/v1/`` responses."""
    owns_store = store is None
    the_store = store if store is not None else CaseStore(settings.store_url)
    publisher = action_publisher if action_publisher is not None else NoPublisher()

    outbox = Outbox(the_store, publisher)

    async def retry_outbox() -> None:
        while True:
            await asyncio.sleep(RETRY_INTERVAL_S)
            try:
                await run_in_threadpool(outbox.deliver, None)
            except Exception as exc:  # keep retrying; the next round may succeed
                log.error("outbox delivery failed", extra={"error": repr(exc)})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(retry_outbox())
        if projection is not None:
            projection.start()
        yield
        task.cancel()
        outbox.close()
        if projection is not None:
            projection.stop()
            await run_in_threadpool(projection.join)
        if owns_store:
            the_store.close()

    app = FastAPI(title="Cảnh Giác investigator API", version="1", description=DESCRIPTION,
                  lifespan=lifespan)
    metrics = ApiMetrics()
    app.state.settings = settings
    app.state.store = the_store
    app.state.publisher = publisher
    app.state.outbox = outbox
    app.state.metrics = metrics
    app.state.projection_status = projection.status if projection is not None else None
    if projection is not None:
        metrics.registry.register(projection.metrics.registry)  # type: ignore[arg-type]
    app.state.cache = cache = ResponseCache()
    app.state.key_cache = key_cache = KeyCache()
    errors.install(app)
    for module in (health, accounts, cases, reports, model, audit):
        app.include_router(module.router)
    app.mount("/ui", StaticFiles(directory=STATIC, html=True), name="ui")
    app.add_api_route("/", lambda: RedirectResponse("/ui/"), include_in_schema=False)
    app.add_middleware(HighRiskFastPath, store=the_store, cache=cache, keys=key_cache,
                       metrics=metrics)
    if projection is not None:
        app.add_middleware(ProjectionLagHeader, status=projection.status)
    app.add_middleware(RequestContext, metrics=metrics)  # outermost: sees every request
    return app
