"""Typed dependencies of the routers (``Annotated`` aliases over the app's state).

They are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in the threadpool,
which for these one-line lookups costs far more than the lookup."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serving.actions import ActionPublisher
from serving.cache import ResponseCache
from serving.config import ApiSettings
from serving.errors import request_id
from serving.metrics import ApiMetrics
from serving.outbox import Outbox
from serving.store import CaseStore


async def _store(request: Request) -> CaseStore:
    return request.app.state.store  # type: ignore[no-any-return]


async def _settings(request: Request) -> ApiSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def _publisher(request: Request) -> ActionPublisher:
    return request.app.state.publisher  # type: ignore[no-any-return]


async def _metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


async def _outbox(request: Request) -> Outbox:
    return request.app.state.outbox  # type: ignore[no-any-return]


async def _cache(request: Request) -> ResponseCache:
    return request.app.state.cache  # type: ignore[no-any-return]


StoreDep = Annotated[CaseStore, Depends(_store)]
SettingsDep = Annotated[ApiSettings, Depends(_settings)]
PublisherDep = Annotated[ActionPublisher, Depends(_publisher)]
MetricsDep = Annotated[ApiMetrics, Depends(_metrics)]
CacheDep = Annotated[ResponseCache, Depends(_cache)]
OutboxDep = Annotated[Outbox, Depends(_outbox)]
async def _request_id(request: Request) -> str:
    return request_id(request)


RequestId = Annotated[str, Depends(_request_id)]
