"""The MLflow side: one run per training, the ``canhgiac-risk`` registry, promotion, loading.

* :func:`log_training` records a run (params, metrics as named in DESIGN.md, feature names and
  version, dataset fingerprint, PR-curve and feature-importance images, a model card, the test
  window as plain arrays) and logs the model as an MLflow pyfunc whose artifact is the saved
  :class:`models.risk.RiskModel` directory; the new registry version gets alias ``challenger``.
* :func:`promote` moves ``champion`` to the challenger only if it beats the champion by
  ``margin`` in average precision, both re-scored on the challenger's test window; a forced
  promotion skips the gate and records its reason as a tag. The first model ever becomes
  champion when there is none.
* :func:`load_model` resolves ``models:/canhgiac-risk@champion`` (or ``models:/name/3``, or a
  local directory) to ``(version, RiskModel)``; :func:`champion_version` is the cheap lookup
  the scorer polls for hot reload.
* Artifacts (models, test windows) live where the experiment says, written and read only
  through MLflow's artifact API: with a tracking server (``http(s)://``) its own artifact
  store (``mlflow server --serve-artifacts`` gives ``mlflow-artifacts:/`` URIs), so a scorer on
  another machine, with another data directory, loads the champion through the server;
  ``CANHGIAC_MLFLOW_ARTIFACT_LOCATION`` names one explicitly (an object store); with the default
  local store, ``<data_dir>/mlartifacts``. See :func:`artifact_location`.

``settings`` is the service's ``canhgiac.settings.Settings`` (anything with the attributes of
:class:`RegistrySettings`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel
from sklearn.metrics import average_precision_score

from features.vector import FEATURE_NAMES, FEATURE_VERSION
from models.pseudonym import Pseudonymiser
from models.risk import RiskModel
from training.dataset import EvalSet

log = logging.getLogger(__name__)

EXPERIMENT = "canhgiac-risk"
CHAMPION, CHALLENGER = "champion", "challenger"
MODEL_ARTIFACT = "risk_model"
TEST_WINDOW = "evaluation/test_window.npz"
LOCATION_SETTING = "CANHGIAC_MLFLOW_ARTIFACT_LOCATION"


class RegistrySettings(Protocol):
    @property
    def tracking_uri(self) -> str: ...
    @property
    def artifact_root(self) -> str: ...
    @property
    def mlflow_artifact_location(self) -> str: ...
    @property
    def registered_model(self) -> str: ...
    @property
    def model_uri(self) -> str: ...
    @property
    def data_dir(self) -> Path: ...
    @property
    def promote_margin(self) -> float: ...


class RegistryError(Exception):
    """Something the user must fix (no challenger, incomparable champion, ...): one line."""


# ---------------------------------------------------------------------- plumbing


def client(settings: RegistrySettings) -> MlflowClient:
    if settings.tracking_uri.startswith("sqlite:///"):
        Path(settings.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    logging.getLogger("mlflow").setLevel(max(logging.WARNING, logging.getLogger().level))
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def _remote(tracking_uri: str) -> bool:
    """A tracking server (other machines reach it), not a store file of this machine."""
    return urlparse(tracking_uri).scheme.lower() in ("http", "https")


def _server(tracking_uri: str) -> str:
    """``scheme://host:port`` of a tracking URI, for a log line (no user or password)."""
    parts = urlparse(tracking_uri)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _local(location: str) -> bool:
    """A path on the machine that writes it: ``file:`` URI, plain path or drive letter."""
    return len(urlparse(location).scheme) <= 1 or location.lower().startswith("file:")


def artifact_location(settings: RegistrySettings) -> str | None:
    """Where a new experiment keeps its artifacts: the setting; else, with a tracking server,
    None (the server decides: ``--serve-artifacts`` proxies to its ``--artifacts-destination``);
    else ``<data_dir>/mlartifacts`` next to the local store."""
    if settings.mlflow_artifact_location:
        return settings.mlflow_artifact_location
    if _remote(settings.tracking_uri):
        return None
    return settings.artifact_root


def experiment_id(settings: RegistrySettings, c: MlflowClient) -> str:
    """The experiment's id (created on first use); a warning when its artifacts are out of
    reach of other machines or not where the setting now says (an experiment's location is
    fixed when it is created)."""
    exp = c.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        created = c.create_experiment(EXPERIMENT, artifact_location=artifact_location(settings))
        exp = c.get_experiment(created)
    where = str(exp.artifact_location)
    wanted = settings.mlflow_artifact_location
    chosen = bool(wanted) and where.rstrip("/") == wanted.rstrip("/")  # e.g. a shared mount
    if not chosen and _remote(settings.tracking_uri) and _local(where):
        log.warning(
            f"MLflow experiment {EXPERIMENT!r} keeps its artifacts at {where}, a path on the "
            f"machine that writes them, while tracking is at {_server(settings.tracking_uri)}: "
            "a scorer on another machine cannot load its models. Rename the experiment (mlflow "
            f"experiments rename -x {exp.experiment_id} --new-name ...) and train again to "
            "create it on the server's artifact store (mlflow server --serve-artifacts) or at "
            f"{LOCATION_SETTING}",
            extra={"experiment_id": exp.experiment_id})
    elif wanted and not chosen:
        log.warning(
            f"MLflow experiment {EXPERIMENT!r} keeps its artifacts at {where}, not at "
            f"{LOCATION_SETTING}={wanted}: the setting applies only when the experiment is "
            "created (rename the experiment to start a new one there)",
            extra={"experiment_id": exp.experiment_id})
    return str(exp.experiment_id)


def _version_by_alias(c: MlflowClient, name: str, alias: str) -> Any | None:
    try:
        return c.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


# MLflow asks for type hints on predict when the class is created; the signature is explicit.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)

    class RiskPyfunc(PythonModel):
        """MLflow pyfunc of a RiskModel: a DataFrame of FEATURE_NAMES → calibrated score."""

        def load_context(self, context):
            self.model = RiskModel.load(context.artifacts[MODEL_ARTIFACT])

        def predict(self, context, model_input, params=None):
            frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(
                model_input, columns=list(FEATURE_NAMES))
            X = frame[list(self.model.feature_names)].to_numpy(dtype=np.float64)
            return self.model.score(X)


# ---------------------------------------------------------------------- logging a training


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    version: str  # registry version of canhgiac-risk
    experiment_id: str


def _clean_metrics(metrics: dict[str, float]) -> dict[str, float]:
    return {re.sub(r"[^A-Za-z0-9_\-./ ]", "_", k): float(v) for k, v in metrics.items()
            if v is not None and not math.isnan(float(v))}


def _flatten(prefix: str, obj: Any, out: dict[str, str]) -> dict[str, str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = str(obj)[:500]
    return out


def _plots(directory: Path, model: RiskModel, test: EvalSet, scores: np.ndarray,
           baseline: np.ndarray) -> list[Path]:
    import matplotlib  # noqa: PLC0415 - only a training run draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from sklearn.metrics import precision_recall_curve  # noqa: PLC0415

    paths = []
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, s in (("model", scores), ("rules baseline", baseline)):
        if 0 < test.y.sum() < test.y.size:
            p, r, _ = precision_recall_curve(test.y, s)
            ap = average_precision_score(test.y, s)
            ax.plot(r, p, label=f"{label} (AP {ap:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall on the test window")
    ax.legend()
    fig.tight_layout()
    paths.append(directory / "pr_curve.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    importance = sorted(model.feature_importance().items(), key=lambda kv: kv[1])[-20:]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.barh([k for k, _ in importance], [v for _, v in importance])
    ax.set_xlabel("total gain")
    ax.set_title("Feature importance (top 20)")
    fig.tight_layout()
    paths.append(directory / "feature_importance.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


def model_card(model: RiskModel, metrics: dict[str, float], summary: dict[str, Any],
               fingerprint: str, table: str) -> str:
    review, hold = model.thresholds
    anomaly = model.metadata.get("anomaly", {})
    top = sorted(model.feature_importance().items(), key=lambda kv: -kv[1])[:10]
    windows = summary.get("windows", {})
    return "\n".join([
        f"# canhgiac-risk model card — {model.version}",
        "",
        "## Intended use",
        "Scores each payment of one bank in real time (Official Dispatch 139/CĐ-TTg): "
        "`review` sends it to an investigator, `hold` stops it until verified. "
        "Not a decision about a person: an investigator confirms every case.",
        "",
        "## Data",
        f"- dataset fingerprint: `{fingerprint}`",
        f"- windows: {json.dumps(windows)}",
        f"- train {summary.get('n_train')} payments ({summary.get('n_train_positive')} "
        f"positive), validation {summary.get('n_valid')} ({summary.get('n_valid_positive')}), "
        f"test {summary.get('n_test')} ({summary.get('n_test_positive')}; evaluated against "
        f"{summary.get('eval_source')})",
        f"- labels known at the cut-off only ({summary.get('labels_used')} used, "
        f"{summary.get('labels_after_cutoff')} confirmed later and ignored)",
        "",
        "## Model",
        f"- LightGBM binary, {model.metadata.get('best_iteration')} trees (early stopping on "
        "validation AP), Platt calibration on validation",
        f"- features: {len(model.feature_names)} (version {model.feature_version})",
        f"- anomaly component (IsolationForest): validation AP without "
        f"{anomaly.get('valid_ap_without')}, with {anomaly.get('valid_ap_with')} → "
        f"{'kept' if anomaly.get('kept') else 'not kept'}",
        f"- thresholds: review {review:.4f} (budget {model.budgets.review_budget:.2%}), hold "
        f"{hold:.4f} (budget {model.budgets.hold_budget:.2%})",
        "- most important features: " + ", ".join(k for k, _ in top),
        "",
        "## Test-window metrics (model vs rules baseline)",
        "```",
        table,
        "```",
        "",
        "## Limitations",
        "- Unlabelled payments count as legitimate: fraud nobody reported teaches the model "
        "that it is normal. Investigators' decisions feed the next training.",
        "- Trained on one bank's (or the simulator's) history; typologies not in it are "
        "covered only by the anomaly component and the rules.",
    ])


def pseudonymiser(settings: RegistrySettings) -> Pseudonymiser:
    """The deployment's pseudonymiser: ``CANHGIAC_PSEUDONYM_KEY`` or the data dir's key."""
    key = getattr(settings, "pseudonym_key", None)
    secret = key.get_secret_value() if hasattr(key, "get_secret_value") else key
    return Pseudonymiser.for_data_dir(settings.data_dir, secret or None)


def pseudonymised(test: EvalSet, p: Pseudonymiser) -> EvalSet:
    """The window with its account and event ids replaced by their pseudonyms."""
    return dataclasses.replace(
        test, account_ids=np.array([p(a) for a in test.account_ids], dtype=object),
        event_ids=np.array([p(e) for e in test.event_ids], dtype=object))


def log_training(settings: RegistrySettings, *, model: RiskModel, params: dict[str, Any],
                 metrics: dict[str, float], summary: dict[str, Any], fingerprint: str,
                 test: EvalSet, scores: np.ndarray, baseline_scores: np.ndarray,
                 table: str) -> LoggedRun:
    """Record one training as an MLflow run and register the model as the new challenger."""
    c = client(settings)
    exp_id = experiment_id(settings, c)
    name = settings.registered_model
    with tempfile.TemporaryDirectory(prefix="canhgiac-train-") as tmp_name:
        tmp = Path(tmp_name)
        model_dir = model.save(tmp / MODEL_ARTIFACT)
        (tmp / "feature_names.json").write_text(json.dumps(
            {"feature_version": FEATURE_VERSION, "feature_names": list(FEATURE_NAMES)},
            indent=1))
        (tmp / "dataset_summary.json").write_text(json.dumps(summary, indent=1, default=str))
        (tmp / "model_card.md").write_text(model_card(model, metrics, summary, fingerprint,
                                                       table), encoding="utf-8")
        (tmp / "metrics.txt").write_text(table + "\n", encoding="utf-8")
        # the evaluation window goes to MLflow with account and event ids pseudonymised
        # (models.pseudonym): per-account metrics still group, the ids do not leave
        pseudonymised(test, pseudonymiser(settings)).save(tmp / "test_window.npz")
        images = _plots(tmp, model, test, scores, baseline_scores)

        with mlflow.start_run(experiment_id=exp_id,
                              run_name=f"train-{model.version}") as run:
            run_id = run.info.run_id
            mlflow.log_params(_flatten("", params, {}))
            mlflow.log_metrics(_clean_metrics(metrics))
            mlflow.set_tags({
                "feature_version": FEATURE_VERSION, "n_features": str(len(FEATURE_NAMES)),
                "dataset_fingerprint": fingerprint, "model_version": model.version,
                "anomaly_kept": str(model.metadata.get("anomaly", {}).get("kept")),
            })
            for path in (tmp / "feature_names.json", tmp / "dataset_summary.json",
                         tmp / "model_card.md", tmp / "metrics.txt"):
                mlflow.log_artifact(str(path))
            for path in images:
                mlflow.log_artifact(str(path), artifact_path="plots")
            mlflow.log_artifact(str(tmp / "test_window.npz"), artifact_path="evaluation")
            example = pd.DataFrame(test.X[:5], columns=list(FEATURE_NAMES))
            signature = infer_signature(example, model.score(test.X[:5]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # cloudpickle notice: the wrapper is our code
                info = _log_pyfunc(model_dir, signature, example, name)
    version = str(info.registered_model_version)

    c.set_registered_model_alias(name, CHALLENGER, version)
    c.set_model_version_tag(name, version, "run_id", run_id)
    c.set_model_version_tag(name, version, "model_version", model.version)
    c.set_model_version_tag(name, version, "test_average_precision",
                            str(metrics.get("test_average_precision")))
    log.info("model registered", extra={"run_id": run_id, "registered_model": name,
                                        "registry_version": version, "alias": CHALLENGER})
    return LoggedRun(run_id, version, exp_id)


def _log_pyfunc(model_dir: Path, signature: Any, example: pd.DataFrame, name: str) -> Any:
    return mlflow.pyfunc.log_model(
        name="model", python_model=RiskPyfunc(),
        artifacts={MODEL_ARTIFACT: str(model_dir)}, signature=signature,
        input_example=example,
        pip_requirements=[f"lightgbm=={_version('lightgbm')}",
                          f"scikit-learn=={_version('sklearn')}",
                          f"numpy=={np.__version__}", f"pandas=={pd.__version__}"],
        registered_model_name=name, await_registration_for=60,
    )


def _version(module: str) -> str:
    import importlib  # noqa: PLC0415

    return str(importlib.import_module(module).__version__)


# ---------------------------------------------------------------------- loading


def _download(settings: RegistrySettings, version: str) -> Path:
    """The RiskModel directory of a registry version (downloaded once, then cached by version
    and training run, so a recreated registry reusing version numbers never hits a stale copy)."""
    c = client(settings)
    mv = c.get_model_version(settings.registered_model, version)
    run = (mv.run_id or "norun")[:12]
    cache = Path(settings.data_dir) / "models" / f"{settings.registered_model}-v{version}-{run}"
    found = next(iter(cache.rglob("model.json")), None) if cache.exists() else None
    if found is None:
        cache.mkdir(parents=True, exist_ok=True)
        try:
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{settings.registered_model}/{version}",
                dst_path=str(cache), tracking_uri=settings.tracking_uri,
                registry_uri=settings.tracking_uri)
        except (MlflowException, OSError) as exc:
            raise _unreadable(settings, c, mv.run_id, f"registry version {version}",
                              exc) from exc
        found = next(iter(cache.rglob("model.json")), None)
    if found is None:
        raise _unreadable(settings, c, mv.run_id,
                          f"registry version {version} (no RiskModel directory downloaded)")
    return found.parent


def _unreadable(settings: RegistrySettings, c: MlflowClient, run_id: str | None, what: str,
                exc: BaseException | None = None) -> RegistryError:
    """One line: what could not be read, from where, and why (a path of another machine)."""
    where = "an unknown location"
    if run_id:
        try:
            where = str(c.get_run(run_id).info.artifact_uri)
        except MlflowException:
            pass
    line = f"{what}: its artifacts at {where} cannot be read"
    if _remote(settings.tracking_uri) and _local(where):
        line += (" (a path on the machine that trained it; train into an experiment on the "
                 f"tracking server's artifact store or at {LOCATION_SETTING})")
    if exc is not None:
        line += f": {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
    return RegistryError(line)


def resolve(settings: RegistrySettings, uri: str) -> str | None:
    """Registry version named by ``models:/name@alias`` or ``models:/name/N`` (None: no alias)."""
    c = client(settings)
    body = uri.removeprefix("models:/")
    if "@" in body:
        name, alias = body.split("@", 1)
        mv = _version_by_alias(c, name, alias)
        return None if mv is None else str(mv.version)
    name, _, version = body.partition("/")
    if not version:
        raise RegistryError(f"{uri}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    return version


def load_model(settings: RegistrySettings, uri: str | None = None) -> tuple[str, RiskModel]:
    """``(version, RiskModel)`` for ``uri`` (default ``settings.model_uri``).

    Raises ``RegistryError`` when the alias points nowhere and ``ValueError`` (from
    ``RiskModel.load``) when the model's feature layout does not match the engine's.
    """
    uri = uri or settings.model_uri
    if not uri.startswith("models:/"):
        model = RiskModel.load(uri)
        return model.version, model
    version = resolve(settings, uri)
    if version is None:
        raise RegistryError(f"{uri} does not point to a model version (train one first)")
    return version, RiskModel.load(_download(settings, version))


def champion_version(settings: RegistrySettings) -> str | None:
    """Current champion's registry version, or None. One registry lookup, no download."""
    mv = _version_by_alias(client(settings), settings.registered_model, CHAMPION)
    return None if mv is None else str(mv.version)


def challenger_version(settings: RegistrySettings) -> str | None:
    mv = _version_by_alias(client(settings), settings.registered_model, CHALLENGER)
    return None if mv is None else str(mv.version)


# ---------------------------------------------------------------------- promotion


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    challenger: str
    champion_before: str | None
    challenger_ap: float | None
    champion_ap: float | None
    margin: float
    reason: str


def promote(settings: RegistrySettings, margin: float | None = None,
            force_reason: str | None = None) -> Promotion:
    """Move ``champion`` to the challenger if it is better by ``margin`` in test AP.

    Both models are scored on the challenger's test window (stored with its run). With
    ``force_reason`` the gate is skipped and the reason recorded as a tag.
    """
    margin = settings.promote_margin if margin is None else margin
    c = client(settings)
    name = settings.registered_model
    challenger = _version_by_alias(c, name, CHALLENGER)
    if challenger is None:
        raise RegistryError(f"{name} has no @{CHALLENGER}: run 'canhgiac train' first")
    v_new = str(challenger.version)
    champion = _version_by_alias(c, name, CHAMPION)
    v_old = None if champion is None else str(champion.version)
    if v_old == v_new:
        return Promotion(False, v_new, v_old, None, None, margin,
                         f"version {v_new} is already the champion")

    ap_new = ap_old = None
    if v_old is not None:
        window = _test_window(settings, c, challenger)
        _, new_model = load_model(settings, f"models:/{name}/{v_new}")
        ap_new = _ap(window, new_model.score(window.X))
        try:
            _, old_model = load_model(settings, f"models:/{name}/{v_old}")
            ap_old = _ap(window, old_model.score(window.X))
        except ValueError as exc:
            if force_reason is None:
                raise RegistryError(
                    f"champion v{v_old} cannot score today's features ({exc}); "
                    "use --force --reason to replace it") from exc
    if v_old is None:
        ok, why = True, "no champion yet: the first model becomes champion"
    elif force_reason is not None:
        ok, why = True, f"forced: {force_reason}"
    else:
        assert ap_new is not None and ap_old is not None
        ok = ap_new >= ap_old + margin
        why = (f"challenger AP {ap_new:.4f} vs champion AP {ap_old:.4f} on the challenger's "
               f"test window (margin {margin:g}): "
               + ("promoted" if ok else "not promoted"))
    now = datetime.now(UTC).isoformat()
    tags = {"promotion_checked_at": now, "promotion_decision": "promoted" if ok else "rejected",
            "promotion_reason": why[:500], "promotion_margin": str(margin),
            "promotion_challenger_ap": str(ap_new), "promotion_champion_ap": str(ap_old),
            "promotion_champion_before": str(v_old)}
    if force_reason is not None:
        tags["force_reason"] = force_reason[:500]
    for key, value in tags.items():
        c.set_model_version_tag(name, v_new, key, value)
    if ok:
        c.set_registered_model_alias(name, CHAMPION, v_new)
        c.delete_registered_model_alias(name, CHALLENGER)
    log.info("promotion decided", extra={"registered_model": name, "challenger": v_new,
                                         "champion_before": v_old, "promoted": ok,
                                         "challenger_ap": ap_new, "champion_ap": ap_old})
    return Promotion(ok, v_new, v_old, ap_new, ap_old, margin, why)


def _ap(window: EvalSet, scores: np.ndarray) -> float:
    return float(average_precision_score(window.y, scores))


def _test_window(settings: RegistrySettings, c: MlflowClient, mv: Any) -> EvalSet:
    run_id = mv.run_id or dict(mv.tags or {}).get("run_id")
    if not run_id:
        raise RegistryError(f"version {mv.version} has no training run to take a test window from")
    with tempfile.TemporaryDirectory(prefix="canhgiac-promote-") as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=TEST_WINDOW, dst_path=tmp,
                tracking_uri=settings.tracking_uri)
            return EvalSet.load(path)
        except (MlflowException, OSError) as exc:
            raise _unreadable(settings, c, run_id,
                              f"the test window of version {mv.version}", exc) from exc
