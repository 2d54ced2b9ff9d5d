"""The projection inside the API process: the lag in /readyz, /metrics and the list responses'
header; the API keeps serving when Kafka is down."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from canhgiac.settings import Settings
from serving.app import create_app
from serving.projection import Projection
from serving.store import CaseStore
from streaming.broker import free_port
from tests.integration.test_projection import produce, settings_for

pytestmark = pytest.mark.integration


def _client(s: Settings, projection: Projection) -> tuple[TestClient, dict[str, str]]:
    store = CaseStore(s.store_url)
    app = create_app(s, store=store, projection=projection)
    key = store.create_key("viewer", "viewer")[1]
    return TestClient(app, raise_server_exceptions=False), {"Authorization": f"Bearer {key}"}


def test_the_api_shows_the_projection_and_its_lag(broker, topic_prefix, tmp_path):
    produce(broker, topic_prefix, 300)
    s = settings_for(broker, topic_prefix, tmp_path)
    projection = Projection(s, CaseStore(s.store_url, busy_timeout_ms=s.sink_busy_timeout_ms))
    client, h = _client(s, projection)
    with client:  # runs the lifespan: the projection thread starts and stops with the app
        deadline, items = time.monotonic() + 60, []
        while time.monotonic() < deadline and len(items) < 40:
            r = client.get("/v1/accounts/high-risk?limit=100", headers=h)
            items = r.json()["items"]
            time.sleep(0.3)
        assert len(items) == 40
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and r.headers.get("x-projection-lag") != "0":
            time.sleep(0.3)
            r = client.get("/v1/accounts/high-risk?limit=100", headers=h)
        assert r.headers["x-projection-lag"] == "0"
        ready = client.get("/readyz", headers=h).json()
        assert ready["projection"] == {"state": "running", "lag": 0}
        metrics = client.get("/metrics", headers=h).text
        assert 'canhgiac_sink_records_total{outcome="written",topic="payments.scored"} 300.0' \
            in metrics
        assert 'canhgiac_sink_lag_records{topic="payments.scored"} 0.0' in metrics
    assert projection.status.snapshot().state == "stopped"
    projection.store.close()


def test_the_api_keeps_serving_when_kafka_is_down(tmp_path):
    s = Settings(data_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{free_port()}",
                 sink_metrics_port=0, sink_retry_max_s=1.0)
    projection = Projection(s, CaseStore(s.store_url))
    client, h = _client(s, projection)
    with client:
        # served without waiting for Kafka (whose requests time out after several seconds);
        # 3 s leaves room for a loaded machine, as tests/integration/test_outbox.py does
        deadline = time.monotonic() + 30
        state = None
        while time.monotonic() < deadline and state != "kafka_unavailable":
            t0 = time.monotonic()
            r = client.get("/readyz", headers=h)
            assert r.status_code == 200 and time.monotonic() - t0 < 3.0
            state = r.json()["projection"]["state"]
            time.sleep(0.2)
        assert r.json()["projection"] == {"state": "kafka_unavailable", "lag": None}
        t0 = time.monotonic()
        r = client.get("/v1/accounts/high-risk", headers=h)
        assert r.status_code == 200 and time.monotonic() - t0 < 3.0
        assert r.headers["x-projection-lag"] == "unknown"
    projection.store.close()
