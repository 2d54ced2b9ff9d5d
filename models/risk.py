"""The risk model: LightGBM on the feature vector, calibrated, with budget-based thresholds.

``RiskModel.fit`` trains a binary LightGBM classifier with early stopping on the validation
window, optionally adds the unsupervised :class:`models.anomaly.AnomalyScorer` score as an extra
input (kept only if it raises validation average precision; the comparison is recorded in
``metadata["anomaly"]``), calibrates the raw probabilities with Platt scaling on validation
(monotone, so rankings and budgets are unchanged) and chooses the review/hold thresholds from
alert budgets on the calibrated validation scores.

On disk a model is a directory: ``model.txt`` (LightGBM text), ``model.json`` (feature names and
version, thresholds, calibration, version, training metadata) and optionally ``anomaly.npz``.
``load`` refuses a model whose feature layout differs from the engine's (``ValueError``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from features.vector import FEATURE_NAMES, FEATURE_VERSION, check_layout
from models.anomaly import AnomalyScorer
from models.reasons import ANOMALY_FEATURE, Reason, phrase
from models.thresholds import Thresholds, decide, from_budgets

__all__ = ["ModelConfig", "Reason", "RiskModel", "Thresholds"]

log = logging.getLogger(__name__)

FORMAT = "canhgiac-risk/1"
_EPS = 1e-7


@dataclass(frozen=True)
class ModelConfig:
    """Everything that shapes a fitted model (recorded as MLflow params)."""

    seed: int = 7
    num_threads: int = 2
    learning_rate: float = 0.05
    num_leaves: int = 15
    # rare, decisive signals (a beneficiary already reported: ~70 training rows on a 3,000-
    # account bank) need small leaves: 200 → 20 raised mean test AP 0.61 → 0.72 and the recall
    # of payments to already-reported beneficiaries at 1 % 0.51 → 0.90 (3 seeds, 3,000 × 60 d);
    # on a small bank (500 accounts × 38 d) 20 overfits (test AP 0.51 against 0.67 with 100):
    # ``min_data_in_leaf`` and each of ``min_data_in_leaf_candidates`` are fitted and the best
    # on validation is kept (no candidates: ``min_data_in_leaf`` alone)
    min_data_in_leaf: int = 20
    min_data_in_leaf_candidates: tuple[int, ...] = (100,)
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    num_boost_round: int = 1000
    early_stopping_rounds: int = 50
    # log loss on validation: validation labels are incomplete (label delay), so its average
    # precision stops too early (5-10 trees on the 10k-account simulation; test AP 0.61 → 0.84)
    early_stopping_metric: str = "binary_logloss"
    review_budget: float = 0.01  # share of payments sent to review
    hold_budget: float = 0.001  # share of payments held
    anomaly: str = "auto"  # auto: keep if it helps on validation | always | never
    anomaly_trees: int = 100
    anomaly_min_gain: float = 0.0  # validation AP gain the anomaly input must exceed
    negative_sample: float = 0.3  # share of negative training rows kept (seeded); 1 = all

    def __post_init__(self) -> None:
        if self.anomaly not in ("auto", "always", "never"):
            raise ValueError(f"anomaly must be auto, always or never, got {self.anomaly!r}")
        if not 0 < self.hold_budget <= self.review_budget <= 1:
            raise ValueError("need 0 < hold_budget <= review_budget <= 1")
        if not 0 < self.negative_sample <= 1:
            raise ValueError("negative_sample must be in (0, 1]")

    def lgb_params(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "metric": self.early_stopping_metric,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "deterministic": True,
            "force_col_wise": True,
            "verbose": -1,
        }


@dataclass(frozen=True)
class Platt:
    """``p = sigmoid(a * logit(raw) + b)``: monotone calibration fitted on validation."""

    a: float = 1.0
    b: float = 0.0

    @classmethod
    def fit(cls, raw: np.ndarray, y: np.ndarray) -> Platt:
        if y.min() == y.max():
            return cls()
        z = _logit(raw).reshape(-1, 1)
        lr = LogisticRegression(C=1e4, max_iter=1000)
        lr.fit(z, y)
        a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        if not (math.isfinite(a) and math.isfinite(b)) or a <= 0:
            return cls()  # a non-increasing map would reorder payments; keep the raw scores
        return cls(a, b)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        out: np.ndarray = 1.0 / (1.0 + np.exp(-(self.a * _logit(raw) + self.b)))
        return out


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1.0 - _EPS)
    out: np.ndarray = np.log(q) - np.log1p(-q)
    return out


def _ap(y: np.ndarray, s: np.ndarray) -> float:
    return float(average_precision_score(y, s)) if 0 < y.sum() < y.size else float("nan")


@dataclass
class _Fitted:
    booster: lgb.Booster
    valid_raw: np.ndarray
    valid_ap: float
    best_iteration: int


class RiskModel:
    """A trained risk model; construct through :meth:`fit` or :meth:`load`."""

    def __init__(self, booster: lgb.Booster, *, calibration: Platt, thresholds: Thresholds,
                 anomaly: AnomalyScorer | None, version: str,
                 feature_names: tuple[str, ...] = FEATURE_NAMES,
                 feature_version: str = FEATURE_VERSION, num_threads: int = 2,
                 metadata: dict[str, Any] | None = None) -> None:
        self.booster = booster
        self.calibration = calibration
        self._thresholds = thresholds
        self.anomaly = anomaly
        self.version = version
        self.feature_names = tuple(feature_names)
        self.feature_version = feature_version
        self.num_threads = num_threads
        self.metadata: dict[str, Any] = metadata or {}
        self.input_names = self.feature_names + ((ANOMALY_FEATURE,) if anomaly else ())

    # ------------------------------------------------------------------ properties
    @property
    def thresholds(self) -> tuple[float, float]:
        """``(review, hold)``."""
        return self._thresholds.review, self._thresholds.hold

    @property
    def budgets(self) -> Thresholds:
        return self._thresholds

    # ------------------------------------------------------------------ scoring
    def _inputs(self, X: np.ndarray) -> np.ndarray:
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected a matrix of {len(self.feature_names)} feature columns, got {X.shape}")
        X = np.asarray(X, dtype=np.float64)
        if self.anomaly is None:
            return X
        return np.hstack([X, self.anomaly.score(X).reshape(-1, 1)])

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """LightGBM's uncalibrated probability."""
        if X.shape[0] == 0:
            return np.zeros(0)
        return np.asarray(self.booster.predict(self._inputs(X), num_threads=self.num_threads))

    def score(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probability of fraud, ``0..1``, one per row of ``X``."""
        return self.calibration.apply(self.raw_score(X))

    def decide(self, scores: np.ndarray) -> list[str]:
        """``allow`` / ``review`` / ``hold`` per score, by the model's thresholds."""
        review, hold = self.thresholds
        return decide(np.asarray(scores, dtype=np.float64), review, hold)

    def reasons(self, X: np.ndarray, top_k: int = 3) -> list[list[Reason]]:
        """The ``top_k`` largest positive contributions per row, as investigator phrases."""
        if X.shape[0] == 0:
            return []
        inputs = self._inputs(X)
        contrib = np.asarray(self.booster.predict(inputs, pred_contrib=True,
                                                  num_threads=self.num_threads))
        contrib = contrib[:, : len(self.input_names)]  # last column is the bias
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :top_k]
        out: list[list[Reason]] = []
        for row in range(inputs.shape[0]):
            reasons = []
            for col in order[row]:
                c = float(contrib[row, col])
                if c <= 0:
                    break
                name, value = self.input_names[col], float(inputs[row, col])
                reasons.append(Reason(name, value, c, phrase(name, value)))
            out.append(reasons)
        return out

    def feature_importance(self) -> dict[str, float]:
        gains = self.booster.feature_importance(importance_type="gain")
        return {name: float(g) for name, g in zip(self.input_names, gains, strict=True)}

    # ------------------------------------------------------------------ training
    @classmethod
    def fit(cls, X_train: np.ndarray, y_train: np.ndarray, X_valid: np.ndarray,
            y_valid: np.ndarray, config: ModelConfig | None = None,
            training_metadata: dict[str, Any] | None = None) -> RiskModel:
        config = config or ModelConfig()
        for name, X, y in (("train", X_train, y_train), ("validation", X_valid, y_valid)):
            if X.ndim != 2 or X.shape[1] != len(FEATURE_NAMES) or X.shape[0] != y.shape[0]:
                raise ValueError(f"{name}: expected [n, {len(FEATURE_NAMES)}] and n labels")
            if not 0 < int(y.sum()) < y.size:
                raise ValueError(f"{name}: needs both positive and negative examples")
        y_train, y_valid = y_train.astype(np.float64), y_valid.astype(np.float64)
        n_train_rows = int(X_train.shape[0])
        if config.negative_sample < 1.0:
            # fewer negatives train faster; Platt scaling on the untouched validation window
            # brings the probabilities back to the real fraud rate
            sampled = (y_train > 0) | (np.random.default_rng(config.seed).random(y_train.size)
                                       < config.negative_sample)
            X_train, y_train = X_train[sampled], y_train[sampled]

        config, leaf_valid_ap, base = _choose_leaf_size(X_train, y_train, X_valid, y_valid,
                                                        config)
        if config.anomaly == "always":
            base = None
        elif base is None:
            base = _fit_booster(X_train, y_train, X_valid, y_valid, config, FEATURE_NAMES)
        anomaly = None
        with_anomaly = None
        if config.anomaly != "never":
            anomaly = AnomalyScorer.fit(X_train, seed=config.seed,
                                        n_estimators=config.anomaly_trees)
            names = FEATURE_NAMES + (ANOMALY_FEATURE,)
            a_train = np.hstack([X_train, anomaly.score(X_train).reshape(-1, 1)])
            a_valid = np.hstack([X_valid, anomaly.score(X_valid).reshape(-1, 1)])
            with_anomaly = _fit_booster(a_train, y_train, a_valid, y_valid, config, names)

        comparison: dict[str, Any] = {
            "method": "isolation_forest", "mode": config.anomaly,
            "valid_ap_without": base.valid_ap if base else None,
            "valid_ap_with": with_anomaly.valid_ap if with_anomaly else None,
        }
        if base is None:
            assert with_anomaly is not None
            chosen, keep = with_anomaly, True
        elif with_anomaly is None:
            chosen, keep = base, False
        else:
            keep = with_anomaly.valid_ap > base.valid_ap + config.anomaly_min_gain
            chosen = with_anomaly if keep else base
        comparison["kept"] = keep
        log.info("anomaly component compared", extra={
            "valid_ap_without": comparison["valid_ap_without"],
            "valid_ap_with": comparison["valid_ap_with"], "kept": keep})

        calibration = Platt.fit(chosen.valid_raw, y_valid)
        valid_scores = calibration.apply(chosen.valid_raw)
        thresholds = from_budgets(valid_scores, config.review_budget, config.hold_budget)
        model_text = chosen.booster.model_to_string()
        digest = hashlib.sha256(model_text.encode()).hexdigest()[:10]
        version = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + digest
        metadata = {
            "config": asdict(config),
            "best_iteration": chosen.best_iteration,
            "valid_average_precision": chosen.valid_ap,
            "n_train": n_train_rows, "n_train_fitted": int(X_train.shape[0]),
            "n_train_positive": int(y_train.sum()),
            "n_valid": int(X_valid.shape[0]), "n_valid_positive": int(y_valid.sum()),
            "anomaly": comparison,
            "min_data_in_leaf_valid_ap": leaf_valid_ap,
            "model_sha256_10": digest,
            "lightgbm_version": lgb.__version__,
            "training": training_metadata or {},
        }
        return cls(chosen.booster, calibration=calibration, thresholds=thresholds,
                   anomaly=anomaly if keep else None, version=version,
                   num_threads=config.num_threads, metadata=metadata)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "model.txt").write_text(self.booster.model_to_string(), encoding="utf-8")
        anomaly_meta = self.anomaly.save(d / "anomaly.npz") if self.anomaly else None
        doc = {
            "format": FORMAT,
            "version": self.version,
            "feature_names": list(self.feature_names),
            "feature_version": self.feature_version,
            "input_names": list(self.input_names),
            "thresholds": self._thresholds.as_dict(),
            "calibration": {"method": "platt", **asdict(self.calibration)},
            "anomaly": anomaly_meta,
            "num_threads": self.num_threads,
            "metadata": self.metadata,
        }
        (d / "model.json").write_text(json.dumps(doc, indent=2, default=_json_default),
                                      encoding="utf-8")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> RiskModel:
        d = Path(directory)
        try:
            doc = json.loads((d / "model.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{d}: no model.json (not a saved RiskModel)") from None
        if doc.get("format") != FORMAT:
            raise ValueError(f"{d}: unknown model format {doc.get('format')!r}")
        check_layout(tuple(doc["feature_names"]), str(doc["feature_version"]))
        booster = lgb.Booster(model_str=(d / "model.txt").read_text(encoding="utf-8"))
        anomaly = None
        if doc.get("anomaly"):
            anomaly = AnomalyScorer.load(d / doc["anomaly"]["file"], doc["anomaly"])
        t = doc["thresholds"]
        model = cls(
            booster,
            calibration=Platt(float(doc["calibration"]["a"]), float(doc["calibration"]["b"])),
            thresholds=Thresholds(float(t["review"]), float(t["hold"]),
                                  float(t["review_budget"]), float(t["hold_budget"])),
            anomaly=anomaly, version=str(doc["version"]),
            feature_names=tuple(doc["feature_names"]),
            feature_version=str(doc["feature_version"]),
            num_threads=int(doc.get("num_threads", 2)), metadata=doc.get("metadata", {}),
        )
        if list(model.input_names) != list(doc["input_names"]) or \
                booster.num_feature() != len(model.input_names):
            raise ValueError(f"{d}: model inputs do not match its recorded input names")
        return model


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, datetime):
        return obj.isoformat()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _choose_leaf_size(X_train: np.ndarray, y_train: np.ndarray, X_valid: np.ndarray,
                      y_valid: np.ndarray, config: ModelConfig
                      ) -> tuple[ModelConfig, dict[str, float], _Fitted | None]:
    """The config with the ``min_data_in_leaf`` of its candidates that gives the best
    validation average precision (ties: the first), the candidates' validation APs and the
    booster fitted with it (None when there is nothing to choose)."""
    candidates = tuple(dict.fromkeys((config.min_data_in_leaf,
                                      *config.min_data_in_leaf_candidates)))
    if len(candidates) < 2:
        return config, {}, None
    scores: dict[str, float] = {}
    best: tuple[float, int, _Fitted] | None = None
    for leaf in candidates:
        fitted = _fit_booster(X_train, y_train, X_valid, y_valid,
                              replace(config, min_data_in_leaf=leaf), FEATURE_NAMES)
        scores[str(leaf)] = fitted.valid_ap
        if best is None or fitted.valid_ap > best[0]:
            best = (fitted.valid_ap, leaf, fitted)
    assert best is not None
    log.info("leaf size chosen on validation", extra={"valid_ap": scores, "chosen": best[1]})
    return replace(config, min_data_in_leaf=best[1]), scores, best[2]


def _fit_booster(X_train: np.ndarray, y_train: np.ndarray, X_valid: np.ndarray,
                 y_valid: np.ndarray, config: ModelConfig, names: tuple[str, ...]) -> _Fitted:
    params = config.lgb_params()
    train_set = lgb.Dataset(X_train, label=y_train, feature_name=list(names),
                            params={"verbose": -1}, free_raw_data=True)
    valid_set = lgb.Dataset(X_valid, label=y_valid, reference=train_set)
    booster = lgb.train(
        params, train_set, num_boost_round=config.num_boost_round, valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    # keep only the trees up to the best iteration: what is saved is what was validated
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    valid_raw = np.asarray(booster.predict(X_valid, num_threads=config.num_threads))
    return _Fitted(booster, valid_raw, _ap(y_valid, valid_raw), best)

