"""RiskModel on synthetic feature matrices: reasons, thresholds, layout refusal, round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from features.vector import FEATURE_INDEX, FEATURE_NAMES, FEATURE_VERSION
from models.anomaly import AnomalyScorer, behaviour_matrix
from models.reasons import ANOMALY_FEATURE, TEMPLATES, Reason, missing_templates, phrase
from models.risk import ModelConfig, RiskModel
from models.thresholds import decide, from_budgets, threshold_for_budget

N_FEATURES = len(FEATURE_NAMES)
# One LightGBM thread in tests: the 2 cores are shared and OpenMP threads spin-wait for each
# other under contention (20x slower). Production defaults to 2 threads (ModelConfig).
T1 = {"num_threads": 1}


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fan-in + fast forwarding + foreign logins drive the risk; everything else is noise."""
    rng = np.random.default_rng(seed)
    X = rng.poisson(1.0, size=(n, N_FEATURES)).astype(np.float64)
    X[:, FEATURE_INDEX["dwell_secs"]] = rng.exponential(86400.0, n)
    X[rng.random(n) < 0.2, FEATURE_INDEX["dwell_secs"]] = np.nan
    X[:, FEATURE_INDEX["amount"]] = rng.lognormal(13, 1.5, n)
    z = (1.2 * X[:, FEATURE_INDEX["distinct_senders_24h"]]
         + 1.5 * X[:, FEATURE_INDEX["foreign_logins_7d"]]
         - np.nan_to_num(X[:, FEATURE_INDEX["dwell_secs"]], nan=86400.0) / 20000.0 - 7.5)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int8)
    return X, y


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"train": synthetic(20_000, 1), "valid": synthetic(8_000, 2),
            "test": synthetic(8_000, 3)}


@pytest.fixture(scope="module")
def model(data) -> RiskModel:
    cfg = ModelConfig(anomaly="never", num_boost_round=200, review_budget=0.02,
                      hold_budget=0.002, **T1)
    return RiskModel.fit(*data["train"], *data["valid"], cfg)


# ---------------------------------------------------------------------- reasons


def test_every_engine_feature_has_a_phrase():
    assert missing_templates() == []
    assert ANOMALY_FEATURE in TEMPLATES
    for name in TEMPLATES:  # never raises, whatever the value
        for value in (0.0, 1.0, 3.0, 1e9, -2.0, math.nan):
            assert isinstance(phrase(name, value), str) and phrase(name, value)


def test_phrases_read_like_an_investigator_would_write_them():
    assert phrase("distinct_senders_24h", 11) == "11 distinct senders in 24 h"
    assert phrase("dwell_secs", 360) == "money forwarded 6 min after it arrived"
    assert phrase("foreign_logins_7d", 3) == "3 logins from abroad in 7 days"
    assert phrase("debit_sum_24h", 12_500_000) == "12.5 M VND outgoing in 24 h"
    assert phrase("account_age_days", 1) == "account opened 1 day ago"
    assert phrase("secs_since_prev_payment", math.nan) == "first payment seen on this account"


def test_reasons_are_top_positive_contributions_with_text(model, data):
    X_test, _ = data["test"]
    scores = model.score(X_test)
    risky = X_test[np.argsort(-scores)[:20]]
    reasons = model.reasons(risky, top_k=3)
    assert len(reasons) == 20
    contrib = model.booster.predict(risky, pred_contrib=True)[:, :N_FEATURES]
    for row, rs in enumerate(reasons):
        assert 1 <= len(rs) <= 3
        assert all(isinstance(r, Reason) and r.contribution > 0 and r.text for r in rs)
        assert [r.contribution for r in rs] == sorted((r.contribution for r in rs),
                                                       reverse=True)
        positives = np.sort(contrib[row][contrib[row] > 0])[::-1][: len(rs)]
        np.testing.assert_allclose([r.contribution for r in rs], positives)
        for r in rs:
            col = FEATURE_INDEX[r.feature]
            assert (math.isnan(r.value) and math.isnan(risky[row, col])) or \
                r.value == risky[row, col]
            assert r.text == phrase(r.feature, r.value)
    # the planted drivers dominate the explanations of the riskiest payments
    top = {rs[0].feature for rs in reasons}
    assert top <= {"distinct_senders_24h", "foreign_logins_7d", "dwell_secs"}


def test_reasons_of_a_safe_payment_can_be_empty_and_never_negative(model, data):
    X_test, _ = data["test"]
    safest = X_test[np.argsort(model.score(X_test))[:50]]
    for rs in model.reasons(safest, top_k=5):
        assert all(r.contribution > 0 for r in rs)
    assert model.reasons(X_test[:0]) == []


# ---------------------------------------------------------------------- thresholds


def test_thresholds_follow_the_alert_budgets(model, data):
    review, hold = model.thresholds
    assert 0 < review <= hold < 1
    X_valid, _ = data["valid"]
    scores = model.score(X_valid)
    assert np.mean(scores >= review) == pytest.approx(0.02, abs=0.005)
    assert np.mean(scores >= hold) == pytest.approx(0.002, abs=0.002)
    decisions = model.decide(scores)
    assert set(decisions) <= {"allow", "review", "hold"}
    assert decisions.count("hold") == int(np.sum(scores >= hold))
    assert decisions.count("review") == int(np.sum((scores >= review) & (scores < hold)))


def test_threshold_helpers():
    s = np.arange(1000, dtype=np.float64) / 1000.0
    assert threshold_for_budget(s, 0.01) == pytest.approx(0.990)
    t = from_budgets(s, 0.01, 0.001)
    assert (t.review, t.hold) == (pytest.approx(0.990), pytest.approx(0.999))
    assert decide(np.array([0.1, 0.995, 0.9995]), t.review, t.hold) == ["allow", "review",
                                                                         "hold"]
    with pytest.raises(ValueError):
        from_budgets(s, 0.001, 0.01)


def test_scores_are_calibrated_probabilities(model, data):
    X_test, y_test = data["test"]
    s = model.score(X_test)
    assert s.min() >= 0 and s.max() <= 1
    # calibration: mean predicted ≈ observed rate (synthetic data has the same distribution)
    assert s.mean() == pytest.approx(y_test.mean(), rel=0.25)
    # monotone: calibration never reorders payments
    raw = model.raw_score(X_test)
    order = np.argsort(raw)
    assert np.all(np.diff(s[order]) >= -1e-12)


# ---------------------------------------------------------------------- layout and persistence


def test_save_load_round_trip(model, data, tmp_path):
    X_test, _ = data["test"]
    model.save(tmp_path / "m")
    loaded = RiskModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score(X_test), model.score(X_test))
    assert loaded.thresholds == model.thresholds
    assert loaded.version == model.version
    assert loaded.feature_names == FEATURE_NAMES and loaded.feature_version == FEATURE_VERSION
    assert loaded.reasons(X_test[:5]) == model.reasons(X_test[:5])
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    assert doc["metadata"]["anomaly"]["kept"] is False


@pytest.mark.parametrize("change", ["version", "renamed", "reordered", "dropped"])
def test_load_refuses_another_feature_layout(model, tmp_path, change):
    model.save(tmp_path / "m")
    path = tmp_path / "m" / "model.json"
    doc = json.loads(path.read_text())
    names = list(doc["feature_names"])
    if change == "version":
        doc["feature_version"] = FEATURE_VERSION + "-old"
    elif change == "renamed":
        names[0] = "debit_count_5m"
    elif change == "reordered":
        names[0], names[1] = names[1], names[0]
    else:
        names = names[:-1]
    doc["feature_names"] = names
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="feature"):
        RiskModel.load(tmp_path / "m")


def test_score_refuses_a_matrix_of_another_width(model):
    with pytest.raises(ValueError, match="feature columns"):
        model.score(np.zeros((3, N_FEATURES - 1)))


def test_fit_needs_both_classes(data):
    X, y = data["train"]
    with pytest.raises(ValueError, match="positive and negative"):
        RiskModel.fit(X, np.zeros_like(y), *data["valid"], ModelConfig(anomaly="never", **T1))


# ---------------------------------------------------------------------- anomaly component


def test_anomaly_component_matches_sklearn_and_survives_save(tmp_path, data):
    from sklearn.ensemble import IsolationForest

    X, _ = data["train"]
    scorer = AnomalyScorer.fit(X, seed=3, n_estimators=20)
    reference = IsolationForest(n_estimators=20, max_samples=256, random_state=3, n_jobs=1)
    reference.fit(behaviour_matrix(X, scorer.columns))
    expected = -reference.score_samples(behaviour_matrix(X[:500], scorer.columns))
    np.testing.assert_allclose(scorer.score(X[:500]), expected, rtol=1e-12)
    meta = scorer.save(tmp_path / "anomaly.npz")
    again = AnomalyScorer.load(tmp_path / "anomaly.npz", json.loads(json.dumps(meta)))
    np.testing.assert_array_equal(again.score(X[:500]), scorer.score(X[:500]))


def test_anomaly_comparison_is_recorded_and_kept_model_round_trips(data, tmp_path):
    cfg = ModelConfig(anomaly="always", anomaly_trees=20, num_boost_round=60, **T1)
    m = RiskModel.fit(*data["train"], *data["valid"], cfg)
    assert m.anomaly is not None and m.input_names[-1] == ANOMALY_FEATURE
    assert m.metadata["anomaly"]["kept"] is True
    m.save(tmp_path / "a")
    loaded = RiskModel.load(tmp_path / "a")
    X_test, _ = data["test"]
    np.testing.assert_array_equal(loaded.score(X_test[:300]), m.score(X_test[:300]))

    auto = RiskModel.fit(*data["train"], *data["valid"],
                         ModelConfig(anomaly="auto", anomaly_trees=20, num_boost_round=60,
                                     **T1))
    cmp_ = auto.metadata["anomaly"]
    assert cmp_["valid_ap_without"] is not None and cmp_["valid_ap_with"] is not None
    assert cmp_["kept"] == (cmp_["valid_ap_with"] > cmp_["valid_ap_without"])
    assert (auto.anomaly is not None) == cmp_["kept"]


def test_fit_is_reproducible(data):
    cfg = ModelConfig(anomaly="never", num_boost_round=60, seed=11, **T1)
    a = RiskModel.fit(*data["train"], *data["valid"], cfg)
    b = RiskModel.fit(*data["train"], *data["valid"], cfg)
    X_test, _ = data["test"]
    np.testing.assert_array_equal(a.score(X_test), b.score(X_test))
