"""The demo end to end at a small size: simulate → train → score through the real broker →
the API ranks high-risk accounts that include true fraud accounts."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from canhgiac.settings import Settings
from serving.app import create_app
from serving.store import CaseStore
from streaming.broker import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

BAD_ROLES = {"mule", "shell", "takeover_victim", "victim"}


def test_demo_runs_the_whole_loop(tmp_path):
    prod = tmp_path / "production"  # what an operator's shell may export: never touched
    env = {**os.environ, "CANHGIAC_DATA_DIR": str(prod),
           "CANHGIAC_CASE_STORE_URL": f"sqlite:///{prod / 'cases.db'}",
           "CANHGIAC_MLFLOW_TRACKING_URI": f"sqlite:///{prod / 'mlflow.db'}",
           "CANHGIAC_TOPIC_PREFIX": "prod.", "CANHGIAC_REVIEW_THRESHOLD": "0.01",
           "CANHGIAC_METRICS_PORT": "0"}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "canhgiac.cli", "demo", "--data-dir", str(tmp_path / "state"),
         "--accounts", "800",
         "--history-days", "50", "--warm-days", "10", "--duration", "10",
         "--api-port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the demo stops its broker, scorer and API (no orphans)
        out, err = proc.communicate(timeout=60)
        pytest.fail("the demo did not finish within 600 s:\n" + out[-3000:] + err[-3000:])
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    assert "Top high-risk accounts" in out
    assert "investigator key" in out and f"http://127.0.0.1:{port}/docs" in out
    assert "every process stopped" in out
    assert not prod.exists(), list(prod.rglob("*"))
    assert "The story of the day" in out
    assert "waiting to be scored" in out and " lag " not in out

    # The scorer wrote account risk to the case store; the real API ranks it.
    settings = Settings(data_dir=tmp_path / "state")
    store = CaseStore(settings.store_url)
    _, key = store.create_key("test-viewer", "viewer")
    with TestClient(create_app(settings, store=store)) as client:
        model = client.get("/v1/model", headers={"Authorization": f"Bearer {key}"})
        resp = client.get("/v1/accounts/high-risk?limit=30",
                          headers={"Authorization": f"Bearer {key}"})
    # the scorer recorded the champion it loaded, with its test metrics and thresholds
    assert model.status_code == 200, model.text
    info = model.json()
    assert str(info["version"]) == "1"
    assert "test_average_precision" in info["metrics"]
    assert 0 < info["thresholds"]["review"] <= info["thresholds"]["hold"] <= 1
    assert resp.status_code == 200, resp.text
    body = resp.json()
    items = body["items"] if isinstance(body, dict) else body
    assert len(items) == 30
    sim = next((tmp_path / "state" / "demo").glob("sim-*"))
    roles = dict(zip(*pq.read_table(sim / "accounts_truth.parquet",
                                    columns=["account_id", "role"]).to_pydict().values(),
                     strict=True))
    ranked = [roles.get(item["account_id"]) for item in items]
    assert BAD_ROLES & set(ranked), ranked
    assert "/network" in out  # the story's deep links, once accounts are ranked
