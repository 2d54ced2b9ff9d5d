"""One training: data directory → dataset (replay) → fit → evaluate vs rules → MLflow → registry.

Reproducible: the same data directory, options and seed give the same model and metrics
(LightGBM runs deterministic with a fixed thread count; the anomaly forest is seeded).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from features.events import Label
from features.vector import FEATURE_VERSION
from models.risk import ModelConfig, RiskModel
from training.dataset import Dataset, EventLog, SplitConfig, build_dataset
from training.evaluate import Rules, evaluate, metric_table, typology_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOptions:
    seed: int = 7
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)  # its seed is replaced by ``seed``
    register: bool = True  # log to MLflow and register the challenger
    promote: bool = False  # run the promotion gate right after registering
    extra_labels: tuple[Label, ...] = ()  # investigators' outcomes
    strict: bool = False  # any row that breaks the contract stops training
    max_reject_share: float = 0.001  # else: rows set aside, up to this share of all rows
    rejects_path: Path | None = None  # where the set-aside rows are written (CSV)


@dataclass
class TrainResult:
    model: RiskModel
    metrics: dict[str, float]  # test_* and baseline_test_* (as logged to MLflow)
    model_metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    table: str
    dataset: Dataset
    fingerprint: str
    timings: dict[str, float]
    run_id: str | None = None
    registry_version: str | None = None
    promotion: Any = None  # training.registry.Promotion when options.promote
    rejects: list[Any] = field(default_factory=list)  # training.datadir.Reject rows set aside
    n_rows: int = 0  # event rows read (kept + rejected)


def fingerprint(data_dir: Path, extra_labels: tuple[Label, ...] = ()) -> str:
    """sha256 over the parquet files of the data directory (names and bytes) and extra labels."""
    h = hashlib.sha256()
    for path in sorted(Path(data_dir).glob("*.parquet")):
        h.update(path.name.encode())
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    for lb in sorted(extra_labels, key=lambda lb: lb.label_id):
        h.update(f"{lb.label_id}|{lb.t}|{lb.account_id}|{lb.event_id}|{lb.label}".encode())
    return h.hexdigest()


def train(data_dir: str | Path, settings: Any, options: TrainOptions | None = None) -> TrainResult:
    """Read ``data_dir`` (DESIGN.md layout), train, evaluate, log and register.

    Raises ``training.datadir.DataDirError`` for a directory that breaks the contract and
    ``training.dataset.DatasetError`` when the log cannot give the windows.
    """
    from training.datadir import DataDirError, read_dir  # noqa: PLC0415

    options = options or TrainOptions()
    t0 = time.perf_counter()
    rejects: list[Any] | None = None if options.strict else []
    data = read_dir(Path(data_dir), rejects)
    read_s = time.perf_counter() - t0
    n_rows = len(data.payments) + len(data.logins) + len(data.accounts) + len(data.labels)
    if rejects:
        n_rows += len(rejects)
        if options.rejects_path is not None:
            write_rejects(rejects, options.rejects_path)
        share = len(rejects) / n_rows
        if share > options.max_reject_share:
            first = rejects[0]
            raise DataDirError(
                f"{len(rejects):,} of {n_rows:,} rows ({share:.2%}) break the contract, more "
                f"than the {options.max_reject_share:.2%} allowed; first: {first.file}: row "
                f"{first.row}, column '{first.column}': {first.reason}")
    result = train_on_log(data, settings, options,
                          fingerprint(Path(data_dir), options.extra_labels),
                          source=str(Path(data_dir).resolve()))
    result.timings["read_s"] = read_s
    result.rejects = list(rejects or [])
    result.n_rows = n_rows
    return result


def write_rejects(rejects: list[Any], path: Path) -> None:
    """The rows set aside, as CSV: file, row, column, reason (a person reads it)."""
    import csv  # noqa: PLC0415

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["file", "row", "column", "reason"])
        for r in rejects:
            out.writerow([r.file, r.row, r.column, r.reason])


def train_on_log(data: EventLog | None, settings: Any, options: TrainOptions, fingerprint_: str,
                 source: str = "", dataset: Dataset | None = None) -> TrainResult:
    """Train from an event log (replayed here) or from an already built ``dataset``."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    if dataset is not None:
        ds = dataset
    elif data is not None:
        _, ds = build_dataset(data, options.split, options.extra_labels)
    else:
        raise ValueError("train_on_log needs an event log or a dataset")
    timings["dataset_s"] = time.perf_counter() - t

    config = replace(options.model, seed=options.seed)
    t = time.perf_counter()
    model = RiskModel.fit(ds.X_train, ds.y_train, ds.X_valid, ds.y_valid, config,
                          training_metadata={"windows": ds.windows.as_dict(),
                                             "dataset_fingerprint": fingerprint_,
                                             "source": source})
    timings["fit_s"] = time.perf_counter() - t

    t = time.perf_counter()
    scores = model.score(ds.test.X)
    baseline_scores = Rules().score(ds.test.X)
    model_metrics = evaluate(scores, ds.test)
    baseline_metrics = evaluate(baseline_scores, ds.test)
    timings["evaluate_s"] = time.perf_counter() - t
    metrics = {f"test_{k}": v for k, v in model_metrics.items()}
    metrics.update({f"baseline_test_{k}": v for k, v in baseline_metrics.items()})
    anomaly = model.metadata["anomaly"]
    metrics["valid_average_precision"] = float(model.metadata["valid_average_precision"])
    for key in ("valid_ap_without", "valid_ap_with"):
        if anomaly.get(key) is not None:
            metrics[f"anomaly_{key}"] = float(anomaly[key])
    metrics["anomaly_kept"] = 1.0 if anomaly["kept"] else 0.0
    table = (metric_table(model_metrics, baseline_metrics)
             + "\n\nrecall per typology (quiet variants included) at each budget\n"
             + typology_table(model_metrics, baseline_metrics))
    result = TrainResult(model, metrics, model_metrics, baseline_metrics, table, ds,
                         fingerprint_, timings)
    log.info("model evaluated", extra={
        "test_average_precision": model_metrics["average_precision"],
        "baseline_test_average_precision": baseline_metrics["average_precision"],
        "anomaly_kept": anomaly["kept"]})

    if options.register:
        from training import registry  # noqa: PLC0415 - MLflow only when registering

        t = time.perf_counter()
        params = {"seed": options.seed, "feature_version": FEATURE_VERSION,
                  "model": asdict(config), "split": asdict(options.split),
                  "n_extra_labels": len(options.extra_labels), "data_source": source,
                  "best_iteration": model.metadata["best_iteration"],
                  "threshold_review": model.thresholds[0], "threshold_hold": model.thresholds[1]}
        logged = registry.log_training(
            settings, model=model, params=params, metrics=metrics, summary=ds.summary,
            fingerprint=fingerprint_, test=ds.test, scores=scores,
            baseline_scores=baseline_scores, table=table)
        result.run_id, result.registry_version = logged.run_id, logged.version
        if options.promote:
            result.promotion = registry.promote(settings)
        timings["mlflow_s"] = time.perf_counter() - t
    return result


def score_throughput(model: RiskModel, X: np.ndarray, repeats: int = 3) -> float:
    """Best-of-``repeats`` batch scoring rate in payments per second."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        model.score(X)
        best = min(best, time.perf_counter() - t)
    return X.shape[0] / best
