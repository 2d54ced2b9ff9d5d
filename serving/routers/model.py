"""The champion model in use: version, test metrics, decision thresholds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from serving.auth import Viewer
from serving.db import rfc3339
from serving.deps import StoreDep
from serving.errors import ApiError, responses
from serving.schemas import ModelInfo

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", response_model=ModelInfo, summary="Champion model, metrics, thresholds",
            responses=responses(401, 403, 404, 500))
def model(principal: Viewer, store: StoreDep) -> dict[str, Any]:
    info = store.model_info()
    if info is None:
        raise ApiError(404, "not_found", "no model recorded yet: the scorer records the "
                       "champion it loads")
    return {**info, "updated_at": rfc3339(info["updated_at"])}
