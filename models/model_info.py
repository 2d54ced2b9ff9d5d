"""The model in force, as a small record on the compacted ``model.info`` topic.

A scorer publishes one :class:`ModelInfo` each time it loads a model (key: the model version);
the case-store projection keeps the newest (by ``loaded_at``) so that ``GET /v1/model`` shows
the version, its test metrics and the thresholds in force. :func:`decode_model_info` never
raises.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from features.events import MAX_TEXT, Rejection, parse_json, parse_timestamp

KIND = "model.info"
MAX_ENTRIES = 256


@dataclass(frozen=True, slots=True)
class ModelInfo:
    version: str
    loaded_at: datetime  # aware; the newest wins
    metrics: Mapping[str, float] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)  # review, hold

    def to_json(self) -> bytes:
        return orjson.dumps({"version": self.version, "loaded_at": self.loaded_at,
                             "metrics": dict(self.metrics),
                             "thresholds": dict(self.thresholds)}, option=orjson.OPT_UTC_Z)


def decode_model_info(raw: bytes | None) -> ModelInfo | Rejection:
    """Decode one ``model.info`` value. Never raises."""
    if raw is None:
        return Rejection(KIND, "", "empty message (tombstone)", b"")
    try:
        d = parse_json(raw)
        version = d.get("version")
        if not isinstance(version, str) or not version.strip() or len(version) > MAX_TEXT:
            return Rejection(KIND, "version", "must be a non-empty string", raw)
        if d.get("loaded_at") is None:
            return Rejection(KIND, "loaded_at", "missing (required)", raw)
        loaded_at = parse_timestamp(d["loaded_at"], "loaded_at")
        metrics = _numbers(d.get("metrics"))
        thresholds = _numbers(d.get("thresholds"))
        if metrics is None or thresholds is None:
            return Rejection(KIND, "metrics" if metrics is None else "thresholds",
                             f"must be an object of at most {MAX_ENTRIES} numbers", raw)
        return ModelInfo(version, loaded_at, metrics, thresholds)
    except Exception as exc:  # noqa: BLE001 - a record must never stop a loop
        name = getattr(exc, "field", "")
        reason = getattr(exc, "reason", None)
        if not isinstance(name, str) or not isinstance(reason, str):
            name, reason = "", f"{type(exc).__name__}: {str(exc)[:200]}"
        return Rejection(KIND, name, reason, raw)


def _numbers(value: Any) -> dict[str, float] | None:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or len(value) > MAX_ENTRIES:
        return None
    out: dict[str, float] = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or len(k) > MAX_TEXT:
            return None
        try:
            f = float(v)
        except OverflowError:
            return None
        if math.isfinite(f):
            out[k] = f
    return out
