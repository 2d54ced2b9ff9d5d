"""Scorers on other machines: a real ``mlflow server --serve-artifacts`` process holds the
models. A trainer logs to it from one data directory; a scorer with another data directory (the
trainer's deleted) loads the champion through it and hot-reloads the next one.

Plus the artifact-location rules on the default local store, and the new setting's boundary.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import ValidationError

from canhgiac.cli import main
from canhgiac.cmd_score import RegistryModelProvider
from canhgiac.settings import Settings
from models.risk import ModelConfig
from streaming.reload import ModelWatcher
from training import registry
from training.datadir import from_tables
from training.dataset import Dataset, Replayed, SplitConfig, build
from training.simulator import SimConfig, simulate
from training.train import TrainOptions, train_on_log

SPLIT = SplitConfig(warmup_days=3, valid_days=7, gap_days=3, test_days=7)
# one LightGBM thread: the shared cores make OpenMP spin-waiting very slow (see test_models)
FAST = ModelConfig(num_boost_round=150, learning_rate=0.1, anomaly="never", num_threads=1)
WEAK = TrainOptions(seed=3, split=SPLIT, register=True, model=dataclasses.replace(
    FAST, num_boost_round=1, num_leaves=2, early_stopping_rounds=1))
GOOD = TrainOptions(seed=3, split=SPLIT, register=True, model=FAST)
SERVER_START_S = 240.0  # first start creates the database; the shared machine is slow


@dataclasses.dataclass(frozen=True)
class Server:
    uri: str  # http://127.0.0.1:<port>
    artifacts: Path  # its --artifacts-destination
    log: Path


def _answers(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=5) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _started(proc: subprocess.Popen[bytes], log: Path) -> str:
    """The server's URI once it answers /health (it binds port 0: the OS picks the port)."""
    deadline = time.monotonic() + SERVER_START_S
    uri = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if uri is None:
            found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", log.read_text())
            uri = found.group(1) if found else None
        if uri is not None and _answers(uri):
            return uri
        time.sleep(0.5)
    pytest.fail(f"mlflow server did not answer in {SERVER_START_S:.0f} s:\n"
                f"{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """The server and its uvicorn worker: the process group it leads (its own session)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    try:  # a worker that outlived its parent
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("mlflow-server")
    artifacts, log = root / "artifacts", root / "server.log"
    # the server's background job runner is not needed (and takes a core's share)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server",
             "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
             "--serve-artifacts", "--artifacts-destination", str(artifacts),
             "--host", "127.0.0.1", "--port", "0", "--workers", "1"],
            cwd=root, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield Server(_started(proc, log), artifacts, log)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    log_ = from_tables(simulate(SimConfig(accounts=500, days=38, seed=11, fraud_rate=0.01)))
    return build(Replayed.from_log(log_), log_.labels, log_.truth, SPLIT)


# ---------------------------------------------------------------------- through a server


@pytest.mark.integration
@pytest.mark.slow
def test_a_scorer_elsewhere_loads_and_hot_reloads_the_champion_through_the_server(
        mlflow_server: Server, dataset: Dataset, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    machine_a, machine_b, machine_c = (tmp_path / n for n in ("trainer", "scorer", "trainer-2"))
    trainer = Settings(data_dir=machine_a, mlflow_tracking_uri=mlflow_server.uri)
    scorer = Settings(data_dir=machine_b, mlflow_tracking_uri=mlflow_server.uri)
    c = registry.client(trainer)

    # An experiment made with a local artifact location (as before this change): training
    # says so in one line naming the setting, and a scorer elsewhere cannot load the model,
    # with an error that says why. Renaming the experiment away is the fix the line gives.
    old = c.create_experiment(registry.EXPERIMENT,
                              artifact_location=(tmp_path / "old-artifacts").as_uri())
    with caplog.at_level(logging.WARNING, logger="training.registry"):
        v0 = train_on_log(None, trainer, WEAK, "fp", dataset=dataset)
    warned = [r.getMessage() for r in caplog.records if r.name == "training.registry"]
    assert len(warned) == 1 and registry.LOCATION_SETTING in warned[0], warned
    assert "cannot load" in warned[0] and "rename" in warned[0]
    shutil.rmtree(tmp_path / "old-artifacts")
    with pytest.raises(registry.RegistryError, match=registry.LOCATION_SETTING) as refused:
        registry.load_model(scorer, f"models:/{scorer.registered_model}/{v0.registry_version}")
    assert "\n" not in str(refused.value) and "old-artifacts" in str(refused.value)
    c.rename_experiment(old, f"{registry.EXPERIMENT}-local")
    caplog.clear()

    # machine A trains the first model and makes it champion, then is gone
    with caplog.at_level(logging.WARNING, logger="training.registry"):
        v1 = train_on_log(None, trainer, WEAK, "fp", dataset=dataset)
    assert not [r for r in caplog.records if r.name == "training.registry"]
    exp = c.get_experiment_by_name(registry.EXPERIMENT)
    assert exp is not None and exp.experiment_id != old
    assert exp.artifact_location.startswith("mlflow-artifacts:"), exp.artifact_location
    assert registry.promote(trainer).promoted
    assert not (machine_a / "mlartifacts").exists()  # nothing of the run kept on machine A
    shutil.rmtree(machine_a, ignore_errors=True)

    # machine B: the scorer's provider and watcher load @champion through the server
    X = dataset.test.X[:300]
    watcher = ModelWatcher(RegistryModelProvider(scorer, scorer.model_uri), interval_s=3600)
    active = watcher.load()
    assert active.version == v1.registry_version
    np.testing.assert_allclose(active.model.score(X), v1.model.score(X))
    watcher.check_now()
    assert watcher.take() is None  # the alias has not moved

    # machine C registers a better model; B's promotion downloads the challenger's test window
    # and both models through the server
    v2 = train_on_log(None, Settings(data_dir=machine_c, mlflow_tracking_uri=mlflow_server.uri),
                      GOOD, "fp", dataset=dataset)
    shutil.rmtree(machine_c, ignore_errors=True)
    watcher.check_now()
    assert watcher.take() is None  # registered, not champion yet
    decision = registry.promote(scorer)
    assert decision.promoted and decision.champion_before == v1.registry_version, decision
    assert decision.challenger_ap >= decision.champion_ap + scorer.promote_margin

    watcher.check_now()
    swapped = watcher.take()
    assert swapped is not None and swapped.version == v2.registry_version
    np.testing.assert_allclose(swapped.model.score(X), v2.model.score(X))
    assert watcher.take() is None

    # the models and test windows are in the server's artifact store; B holds only its cache
    stored = [p.name for p in mlflow_server.artifacts.rglob("*")]
    assert stored.count("model.json") == 2 and stored.count("test_window.npz") == 2
    assert sorted(p.name for p in machine_b.iterdir()) == ["models"]


# ---------------------------------------------------------------------- local store, setting


@pytest.mark.slow
def test_the_default_local_store_keeps_artifacts_under_the_data_dir_and_the_setting_wins(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    local = Settings(data_dir=tmp_path / "a")
    c = registry.client(local)
    first = registry.experiment_id(local, c)
    assert c.get_experiment(first).artifact_location == \
        (tmp_path / "a" / "mlartifacts").resolve().as_uri()
    c.rename_experiment(first, f"{registry.EXPERIMENT}-before")  # one store for both cases

    elsewhere = (tmp_path / "store").resolve().as_uri()
    chosen = Settings(data_dir=tmp_path / "a", mlflow_artifact_location=elsewhere)
    with caplog.at_level(logging.WARNING, logger="training.registry"):
        exp = c.get_experiment(registry.experiment_id(chosen, c))
        assert exp.artifact_location == elsewhere and exp.experiment_id != first
        assert registry.experiment_id(chosen, c) == exp.experiment_id  # found, not re-made
    assert not [r for r in caplog.records if r.name == "training.registry"]

    # the setting changed after the experiment was made: it no longer applies, and says so
    moved = Settings(data_dir=tmp_path / "a", mlflow_artifact_location="s3://bucket/models")
    with caplog.at_level(logging.WARNING, logger="training.registry"):
        assert registry.experiment_id(moved, c) == exp.experiment_id
    (line,) = [r.getMessage() for r in caplog.records if r.name == "training.registry"]
    assert "CANHGIAC_MLFLOW_ARTIFACT_LOCATION" in line and elsewhere in line


def test_a_bad_artifact_location_is_a_one_line_error(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setenv("CANHGIAC_DATA_DIR", str(tmp_path))  # promote must not touch ./.canhgiac
    monkeypatch.setenv("CANHGIAC_MLFLOW_ARTIFACT_LOCATION", "not a uri")
    assert main(["promote"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("canhgiac: error: "
                                                   "CANHGIAC_MLFLOW_ARTIFACT_LOCATION"), err


@hsettings(max_examples=300, deadline=None)
@given(st.text() | st.from_regex(r"[A-Za-z][A-Za-z0-9+.-]*:.*", fullmatch=True))
def test_any_artifact_location_setting_is_accepted_as_a_uri_or_refused_by_name(text: str) -> None:
    try:
        s = Settings(mlflow_artifact_location=text)
    except ValidationError as exc:
        assert exc.errors()[0]["loc"] == ("mlflow_artifact_location",)
        return
    location = s.mlflow_artifact_location
    assert location == "" or re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]+:\S+", location)
    assert registry.artifact_location(s) == (location or s.artifact_root)
