"""Training on real simulator output: no label leakage, the promotion gate on a real MLflow
store (SQLite file + local artifacts in tmp_path), reproducibility, the two commands."""

from __future__ import annotations

import csv
import dataclasses
import math
from datetime import timedelta
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from canhgiac.cli import main
from canhgiac.settings import Settings
from features.events import Label
from features.vector import FEATURE_NAMES
from models.risk import ModelConfig, RiskModel
from training import registry
from training.datadir import DataDir, read_dir, write_dir
from training.dataset import Dataset, Replayed, SplitConfig, build, label_rows
from training.simulator import SimConfig, simulate
from training.train import TrainOptions, train_on_log

pytestmark = pytest.mark.slow

SPLIT = SplitConfig(warmup_days=3, valid_days=7, gap_days=3, test_days=7)
WINDOW_ARGS = ["--warmup-days", "3", "--valid-days", "7", "--gap-days", "3", "--test-days", "7"]
# one LightGBM thread: the shared cores make OpenMP spin-waiting very slow (see test_models)
FAST = ModelConfig(num_boost_round=150, learning_rate=0.1, anomaly="never", num_threads=1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = simulate(SimConfig(accounts=500, days=38, seed=11, fraud_rate=0.01))
    return write_dir(result, tmp_path_factory.mktemp("sim") / "bank")


@pytest.fixture(scope="module")
def log_(data_dir: Path) -> DataDir:
    return read_dir(data_dir)


@pytest.fixture(scope="module")
def replayed(log_: DataDir) -> Replayed:
    return Replayed.from_log(log_)


@pytest.fixture(scope="module")
def dataset(replayed: Replayed, log_: DataDir) -> Dataset:
    return build(replayed, log_.labels, log_.truth, SPLIT)


def settings_for(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "state",
                    mlflow_tracking_uri=f"sqlite:///{tmp_path / 'state' / 'mlflow.db'}")


# ---------------------------------------------------------------------- leakage


def test_a_label_confirmed_after_the_cutoff_is_not_used_for_training(replayed, dataset, log_):
    w = dataset.windows
    fit = np.flatnonzero((replayed.t >= w.train_start) & (replayed.t < w.valid_end))
    y_fit, _ = label_rows(replayed, log_.labels, w.cutoff, SPLIT.account_label_lookback_days)
    row = int(next(i for i in fit if y_fit[i] == 0))
    event_id, account_id = replayed.event_ids[row], replayed.account_ids[row]

    def label(at: float, **kw) -> Label:  # ``at``: seconds after the cut-off
        ts = w.cutoff_dt + timedelta(seconds=at)
        return Label(label_id=f"late-{at}-{len(kw)}", confirmed_at=ts, account_id=account_id,
                     label="fraud", **kw)

    a_day_after_the_payment = replayed.t[row] + 86400.0 - w.cutoff  # < 0: before the cut-off
    for extra, expected in (([label(+1.0, event_id=event_id)], 0),
                            ([label(+86400.0)], 0),  # account-level, too late
                            ([label(-1.0, event_id=event_id)], 1),  # just before: known
                            ([label(a_day_after_the_payment)], 1)):  # account-level, known
        y, stats = label_rows(replayed, list(log_.labels) + extra, w.cutoff,
                              SPLIT.account_label_lookback_days)
        assert y[row] == expected, (extra, expected)
    # the built dataset uses exactly the labels known at the cut-off
    known = [lb for lb in log_.labels if lb.t <= w.cutoff]
    late = [lb for lb in log_.labels if lb.t > w.cutoff]
    assert late, "the simulation must have labels confirmed after the cut-off"
    only_known = build(replayed, known, log_.truth, SPLIT)
    np.testing.assert_array_equal(only_known.y_train, dataset.y_train)
    np.testing.assert_array_equal(only_known.y_valid, dataset.y_valid)
    assert dataset.summary["labels_after_cutoff"] == len(late)
    # late labels do exist for payments of the fitting windows: they would have leaked
    fit_events = set(replayed.event_ids[fit])
    assert any(lb.event_id in fit_events for lb in late)


def test_features_of_the_fitting_windows_do_not_see_later_labels(log_, dataset):
    """Replaying with only the labels known at the cut-off gives the same training matrix."""
    known = [lb for lb in log_.labels if lb.t <= dataset.windows.cutoff]
    again = Replayed.from_log(dataclasses.replace(log_, labels=known))
    rebuilt = build(again, known, log_.truth, SPLIT)
    np.testing.assert_array_equal(rebuilt.X_train, dataset.X_train)
    np.testing.assert_array_equal(rebuilt.X_valid, dataset.X_valid)


def test_windows_are_ordered_with_a_gap(dataset, replayed):
    w = dataset.windows
    assert w.start < w.train_start < w.train_end < w.valid_end < w.cutoff < w.end
    assert w.cutoff - w.valid_end == pytest.approx(SPLIT.gap_days * 86400)
    assert dataset.test.t.min() >= w.cutoff
    assert len(dataset.test) + len(dataset.y_train) + len(dataset.y_valid) < len(replayed)
    assert dataset.test.source == "truth"


# ---------------------------------------------------------------------- reproducibility


def test_same_data_options_and_seed_give_the_same_metrics(dataset, tmp_path):
    model = dataclasses.replace(FAST, anomaly="auto", anomaly_trees=20)
    opts = TrainOptions(seed=5, split=SPLIT, model=model, register=False)
    a = train_on_log(None, None, opts, "fp", dataset=dataset)
    b = train_on_log(None, None, opts, "fp", dataset=dataset)
    assert a.metrics.keys() == b.metrics.keys()
    for key, value in a.metrics.items():
        assert (math.isnan(value) and math.isnan(b.metrics[key])) or value == b.metrics[key], key
    np.testing.assert_array_equal(a.model.score(dataset.test.X), b.model.score(dataset.test.X))
    comparison = a.model.metadata["anomaly"]
    assert comparison["valid_ap_without"] is not None and comparison["valid_ap_with"] is not None
    assert a.metrics["anomaly_kept"] == float(comparison["kept"])
    # the done-criterion, on this small simulation too
    assert a.metrics["test_average_precision"] > a.metrics["baseline_test_average_precision"]
    assert a.metrics["test_recall_at_budget_0_5pct"] >= \
        a.metrics["baseline_test_recall_at_budget_0_5pct"]


# ---------------------------------------------------------------------- MLflow and promotion


def test_promotion_gate_on_a_real_mlflow_store(dataset, tmp_path):
    settings = settings_for(tmp_path)
    assert registry.champion_version(settings) is None
    weak = TrainOptions(seed=3, split=SPLIT, register=True, model=dataclasses.replace(
        FAST, num_boost_round=1, num_leaves=2, anomaly="never", early_stopping_rounds=1))
    good = TrainOptions(seed=3, split=SPLIT, register=True, model=FAST)

    v1 = train_on_log(None, settings, weak, "fp", dataset=dataset)
    assert registry.challenger_version(settings) == v1.registry_version
    first = registry.promote(settings)
    assert first.promoted and first.champion_before is None
    assert registry.champion_version(settings) == v1.registry_version

    v2 = train_on_log(None, settings, good, "fp", dataset=dataset)
    better = registry.promote(settings)
    assert better.promoted, better.reason
    assert better.challenger_ap >= better.champion_ap + settings.promote_margin
    assert registry.champion_version(settings) == v2.registry_version
    assert registry.challenger_version(settings) is None

    v3 = train_on_log(None, settings, good, "fp", dataset=dataset)  # same model again
    same = registry.promote(settings)
    assert not same.promoted and same.challenger_ap == pytest.approx(same.champion_ap)
    assert registry.champion_version(settings) == v2.registry_version
    assert registry.challenger_version(settings) == v3.registry_version

    forced = registry.promote(settings, force_reason="hotfix for a new typology")
    assert forced.promoted
    assert registry.champion_version(settings) == v3.registry_version
    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    tags = client.get_model_version(settings.registered_model, v3.registry_version).tags
    assert tags["force_reason"] == "hotfix for a new typology"
    assert tags["promotion_decision"] == "promoted"

    # the champion loads back as a RiskModel that scores like the trained one
    version, model = registry.load_model(settings)
    assert version == v3.registry_version and isinstance(model, RiskModel)
    np.testing.assert_allclose(model.score(dataset.test.X), v3.model.score(dataset.test.X))
    # ... and as an MLflow pyfunc with its signature
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.registered_model}@champion")
    got = pyfunc.predict(pd.DataFrame(dataset.test.X[:50], columns=list(FEATURE_NAMES)))
    np.testing.assert_allclose(np.asarray(got), v3.model.score(dataset.test.X[:50]))
    assert pyfunc.metadata.get_input_schema() is not None

    # the run holds the fixed metric names, the comparison, images, card and test window
    run = client.get_run(v3.run_id)
    for name in ("test_roc_auc", "test_average_precision", "test_recall_at_budget_0_5pct",
                 "test_precision_at_100_accounts_per_day"):
        assert name in run.data.metrics and f"baseline_{name}" in run.data.metrics
    assert "anomaly_valid_ap_without" in run.data.metrics
    assert run.data.tags["dataset_fingerprint"] == "fp"
    artifacts = {f.path for f in client.list_artifacts(v3.run_id)}
    artifacts |= {f.path for f in client.list_artifacts(v3.run_id, "plots")}
    assert {"model_card.md", "feature_names.json", "plots/pr_curve.png",
            "plots/feature_importance.png"} <= artifacts


def test_the_scorer_follows_the_champion_alias_of_a_real_mlflow_registry(dataset, tmp_path):
    """Hot reload through the registry: the scorer's watcher loads @champion, sees nothing new
    until the alias moves, then loads the new version in the background, once."""
    from canhgiac.cmd_score import RegistryModelProvider
    from streaming.reload import ModelWatcher

    settings = settings_for(tmp_path)
    weak = TrainOptions(seed=3, split=SPLIT, register=True, model=dataclasses.replace(
        FAST, num_boost_round=1, num_leaves=2, anomaly="never", early_stopping_rounds=1))
    v1 = train_on_log(None, settings, weak, "fp", dataset=dataset)
    assert registry.promote(settings).promoted
    watcher = ModelWatcher(RegistryModelProvider(settings, settings.model_uri), interval_s=3600)
    active = watcher.load()
    assert active.version == v1.registry_version
    watcher.check_now()
    assert watcher.take() is None  # the alias has not moved

    v2 = train_on_log(None, settings, TrainOptions(seed=3, split=SPLIT, register=True,
                                                   model=FAST), "fp", dataset=dataset)
    watcher.check_now()
    assert watcher.take() is None  # registered, but not champion yet
    assert registry.promote(settings, force_reason="test").promoted
    watcher.check_now()
    swapped = watcher.take()
    assert swapped is not None and swapped.version == v2.registry_version
    np.testing.assert_allclose(swapped.model.score(dataset.test.X[:200]),
                               v2.model.score(dataset.test.X[:200]))
    assert watcher.take() is None  # handed over once
    watcher.check_now()
    assert watcher.take() is None  # and not loaded again


# ---------------------------------------------------------------------- commands


def test_train_and_promote_commands(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CANHGIAC_DATA_DIR", str(tmp_path / "state"))
    assert main(["promote"]) == 2
    assert "no @challenger" in capsys.readouterr().err
    assert main(["train", "--data", str(data_dir), "--seed", "3", "--anomaly", "never",
                 "--threads", "1", *WINDOW_ARGS]) == 0
    out = capsys.readouterr().out
    assert "MLflow run: " in out and "average_precision" in out and "baseline" in out
    assert main(["promote"]) == 0
    assert "to @champion" in capsys.readouterr().out
    assert main(["promote", "--force"]) == 2
    assert "--reason" in capsys.readouterr().err


def test_train_refuses_a_data_dir_that_breaks_the_contract(data_dir, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in data_dir.glob("*.parquet"):
        (bad / f.name).write_bytes(f.read_bytes())
    table = pq.read_table(bad / "payments.parquet")
    pq.write_table(table.drop(["amount"]), bad / "payments.parquet")
    assert main(["train", "--data", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "amount" in err


# ---------------------------------------------------------------------- label semantics


def test_label_semantics_event_and_account_level():
    from datetime import UTC, datetime

    day = 86400.0
    t0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    t = t0 + np.array([0, 20, 40, 45, 50, 50, 60], dtype=float) * day
    rows = Replayed(
        X=np.zeros((7, len(FEATURE_NAMES))), t=t,
        event_ids=np.array([f"e{i}" for i in range(7)], dtype=object),
        account_ids=np.array(["mule", "mule", "mule", "mule", "victim", "cleared", "mule"],
                             dtype=object),
        amounts=np.ones(7))

    def at(days: float) -> datetime:
        return datetime.fromtimestamp(t0 + days * day, tz=UTC)

    labels = [
        Label("l1", at(46), "mule", "mule"),  # account-level: from 30 days before, onwards
        Label("l2", at(47), "mule", "legit", event_id="e3"),  # an investigator cleared e3
        Label("l3", at(52), "victim", "fraud", event_id="e4"),  # victim's payment only
        Label("l4", at(51), "cleared", "fraud"),
        Label("l5", at(53), "cleared", "legit"),  # later account-level legit clears it
        Label("l6", at(53), "victim", "fraud", event_id="not-in-log"),
    ]
    y, stats = label_rows(rows, labels, as_of=t0 + 100 * day, lookback_days=30)
    assert y.tolist() == [0, 1, 1, 0, 1, 0, 1]
    assert stats["labels_unknown_event"] == 1
    y, stats = label_rows(rows, labels, as_of=t0 + 51.5 * day, lookback_days=30)
    assert y.tolist() == [0, 1, 1, 0, 0, 1, 1]  # l3 and l5 not yet confirmed
    assert stats["labels_after_cutoff"] == 3


def _copy_with_bad_amounts(data_dir: Path, target: Path, rows: list[int]) -> int:
    target.mkdir()
    for f in data_dir.glob("*.parquet"):
        (target / f.name).write_bytes(f.read_bytes())
    table = pq.read_table(target / "payments.parquet")
    amounts = table.column("amount").to_pylist()
    for i in rows:
        amounts[i] = -5.0
    idx = table.column_names.index("amount")
    pq.write_table(table.set_column(idx, "amount", pa.array(amounts, table.schema.field(
        "amount").type)), target / "payments.parquet")
    return table.num_rows


def test_train_sets_bad_rows_aside_prints_the_count_and_writes_the_rejects_file(
        data_dir, tmp_path, capsys):
    bad = tmp_path / "bank-export"
    _copy_with_bad_amounts(data_dir, bad, [3, 1500])
    rejects = tmp_path / "rejects.csv"
    assert main(["train", "--data", str(bad), "--no-register", "--anomaly", "never",
                 "--threads", "1", "--rejects", str(rejects), *WINDOW_ARGS]) == 0
    out = capsys.readouterr().out
    assert "rejected rows: 2 of " in out and str(rejects) in out
    rows = list(csv.DictReader(rejects.open()))
    assert [(r["row"], r["column"]) for r in rows] == [("3", "amount"), ("1500", "amount")]
    assert all(r["file"].endswith("payments.parquet") and "> 0" in r["reason"] for r in rows)
    # --strict: the first bad row refuses the whole export, in one line
    assert main(["train", "--data", str(bad), "--strict", "--no-register"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "row 3, column 'amount'" in err


def test_train_refuses_an_export_with_more_bad_rows_than_allowed(data_dir, tmp_path, capsys):
    bad = tmp_path / "bad-export"
    n = pq.read_metadata(data_dir / "payments.parquet").num_rows
    _copy_with_bad_amounts(data_dir, bad, list(range(0, n, 200)))  # 0.5 % of the payments
    rejects = tmp_path / "rejects.csv"
    assert main(["train", "--data", str(bad), "--no-register", "--rejects", str(rejects)]) == 2
    captured = capsys.readouterr()
    assert "break the contract, more than the 0.10% allowed" in captured.err
    assert str(rejects) in captured.err
    assert len(list(csv.DictReader(rejects.open()))) == len(range(0, n, 200))
