"""`canhgiac score`: the real-time scorer; runs until SIGTERM/SIGINT (then checkpoints, exit 0).

Composition root: builds the model provider (MLflow alias, or a local model directory) and
hands it to :class:`streaming.scorer.Scorer`. The scorer talks only to Kafka: the case store is
a projection of its output topics (``canhgiac sink``, or inside ``canhgiac serve``).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import signal
from pathlib import Path
from typing import Any

from canhgiac.settings import Settings

HELP = "score payments from Kafka in real time (runs until SIGTERM/SIGINT)"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="model URI or local model directory (default CANHGIAC_MODEL_URI)")
    parser.add_argument("--no-sink", action="store_true",
                        help="no effect (kept for old scripts): the scorer no longer writes to "
                             "the case store; the projection does")


class DirectoryModelProvider:
    """A saved RiskModel directory (a symlink can be repointed to roll a new version out)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def current_version(self) -> str:
        doc = json.loads((self.directory / "model.json").read_text(encoding="utf-8"))
        return str(doc["version"])

    def __call__(self) -> tuple[str, Any]:
        from models.risk import RiskModel  # noqa: PLC0415

        model = RiskModel.load(self.directory.resolve())
        return model.version, model


class RegistryModelProvider:
    """``models:/<name>@<alias>`` through the MLflow registry (training.registry)."""

    def __init__(self, settings: Settings, uri: str) -> None:
        self.settings = settings
        self.uri = uri

    def current_version(self) -> str:
        from training import registry  # noqa: PLC0415

        version = registry.resolve(self.settings, self.uri)
        if version is None:
            raise registry.RegistryError(f"{self.uri} points to no model version")
        return str(version)

    def __call__(self) -> tuple[str, Any]:
        from training import registry  # noqa: PLC0415

        version, model = registry.load_model(self.settings, self.uri)
        return str(version), model

    def metrics(self, version: str) -> dict[str, float]:
        """The registered version's training-run metrics (test window, model and baseline)."""
        from training import registry  # noqa: PLC0415

        c = registry.client(self.settings)
        mv = c.get_model_version(self.settings.registered_model, version)
        return dict(c.get_run(mv.run_id).data.metrics) if mv.run_id else {}


class ModelInfoPublisher:
    """Wraps a model provider: every model the scorer loads is published to ``model.info``
    (:class:`canhgiac.model_info.ModelInfoProducer`), which the case-store projection writes,
    so the investigators' ``GET /v1/model`` shows the version, metrics and the thresholds in
    force: ``review``/``hold`` as this scorer applies them (an operator's
    ``CANHGIAC_REVIEW_THRESHOLD``/``_HOLD_THRESHOLD`` override included) beside the model's
    own ``model_review``/``model_hold``."""

    def __init__(self, provider: Any, sink: Any, review: float | None = None,
                 hold: float | None = None) -> None:
        self.provider = provider
        self.sink = sink
        self.review = review
        self.hold = hold

    def current_version(self) -> str:
        return str(self.provider.current_version())

    def __call__(self) -> tuple[str, Any]:
        version, model = self.provider()
        try:
            metrics: dict[str, Any] = {}
            if hasattr(self.provider, "metrics"):
                metrics = self.provider.metrics(version)
            else:
                metrics = {k: v for k, v in model.metadata.items()
                           if isinstance(v, int | float) and not isinstance(v, bool)}
            review, hold = model.thresholds
            self.sink.set_model_info(str(version), metrics, {
                "review": review if self.review is None else self.review,
                "hold": hold if self.hold is None else self.hold,
                "model_review": review, "model_hold": hold})
        except Exception as exc:  # noqa: BLE001 - scoring must not stop for the page
            log.error("could not publish the model in force to model.info; scoring goes on",
                      extra={"model_version": version, "error": repr(exc)})
        return version, model


def model_provider(settings: Settings, uri: str) -> Any:
    if uri.startswith("models:/"):
        return RegistryModelProvider(settings, uri)
    path = Path(uri.removeprefix("file://"))
    if not (path / "model.json").exists():
        from canhgiac.cli import UsageError  # noqa: PLC0415

        raise UsageError(f"{uri}: not a model URI (models:/...) nor a saved model directory")
    return DirectoryModelProvider(path)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from canhgiac.model_info import ModelInfoProducer, ensure_model_info_topic  # noqa: PLC0415
    from streaming.scorer import Scorer  # noqa: PLC0415

    provider = model_provider(settings, args.model or settings.model_uri)
    try:
        ensure_model_info_topic(settings)
    except Exception as exc:  # noqa: BLE001 - the broker may come later; the send says so
        log.warning("model.info topic not checked", extra={"error": repr(exc)})
    provider = ModelInfoPublisher(provider, ModelInfoProducer(settings),
                                  settings.review_threshold, settings.hold_threshold)
    scorer = Scorer(settings, provider)

    def _stop(signum: int, _frame: object) -> None:
        log.info("stop requested; finishing the batch", extra={"signal": signum})
        scorer.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # Each record makes a few short-lived containers; the feature state is large and lives
    # long. Start-up's objects (libraries, settings) are never re-scanned, and the young
    # generation is collected less often than CPython's default of every 700 allocations.
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    import features  # noqa: PLC0415

    log.info("scorer starting", extra={
        "bootstrap": settings.kafka_bootstrap, "topic_prefix": settings.topic_prefix,
        "group_id": settings.group_id, "metrics_port": settings.metrics_port,
        "feature_engine": features.ENGINE_BUILD})
    code = scorer.run()
    log.info("scorer stopped", extra={"scored": scorer.scored_total})
    return code
