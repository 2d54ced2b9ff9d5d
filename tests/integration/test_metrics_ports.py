"""The scorer's metrics endpoint with `canhgiac score` as a real process: a port already taken
(another scorer on the same host) is one error line and scoring goes on; the server binds
127.0.0.1 unless ``CANHGIAC_METRICS_HOST`` says 0.0.0.0; a gauge fed from outside the
loop (the frozen-object count) reaches the endpoint."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from streaming.broker import free_port
from tests.integration.test_scorer_support import (
    OutputReader,
    create_topics,
    expected_scores,
    make_bank,
    produce_events,
    produce_reference,
    scorer_env,
    shared_models,
    start_scorer,
    stop_scorer,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    (m, d), _ = shared_models(tmp_path_factory.mktemp("models"))
    return m, d


def non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine other than 127.x (``hostname -I``), or None."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True,  # noqa: S607
                             timeout=5, check=False).stdout
    except OSError:
        return None
    for addr in out.split():
        if addr.count(".") == 3 and not addr.startswith("127."):
            return addr
    return None


def get_metrics(host: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=3) as resp:  # noqa: S310
        return resp.read().decode()


def wait_metrics(port: int, proc: subprocess.Popen, log_path: Path, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return get_metrics("127.0.0.1", port)
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"no /metrics on 127.0.0.1:{port}\n{log_path.read_text()[-3000:]}")


def _bank_on_topics(broker, topic_prefix: str, m, **bank) -> dict:
    """A simulated bank's reference data and events on fresh topics; its expected scores."""
    data = make_bank(**bank)
    create_topics(broker.bootstrap, topic_prefix)
    produce_reference(broker.bootstrap, topic_prefix, data)
    produce_events(broker.bootstrap, topic_prefix, data.events())
    return expected_scores(data, m)


def test_a_second_scorer_on_a_taken_metrics_port_says_so_once_and_scores_on(
        broker, topic_prefix, model, tmp_path):
    m, model_dir = model
    expected = _bank_on_topics(broker, topic_prefix, m, n_accounts=60, n_payments=500, seed=51,
                               prefix="M")
    log_path = tmp_path / "scorer.log"
    reader = OutputReader(broker.bootstrap, topic_prefix + "payments.scored")
    with socket.socket() as held:  # what the first scorer on this host holds
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = scorer_env(broker.bootstrap, topic_prefix, tmp_path, metrics_port=port)
        proc = start_scorer(env, model_dir, log_path)
        try:
            reader.wait_for(len(expected), timeout_s=60)
            assert proc.poll() is None, log_path.read_text()[-3000:]  # still running
            code = stop_scorer(proc, signal.SIGTERM)
        finally:
            if proc.poll() is None:
                proc.kill()
            reader.close()
    log = log_path.read_text()
    assert code == 0, log[-3000:]
    assert set(reader.last) == set(expected), log[-3000:]  # every payment scored
    assert all(reader.last[e]["score"] == s for e, s in expected.items())
    lines = [ln for ln in log.splitlines() if f":{port} not available" in ln]
    assert len(lines) == 1, log[-3000:]
    assert " ERROR " in lines[0] and "CANHGIAC_METRICS_PORT" in lines[0]
    assert "Traceback" not in log and "Address already in use" in lines[0]


@pytest.mark.parametrize("host", [None, "0.0.0.0"], ids=["default", "all_interfaces"])  # noqa: S104
def test_the_metrics_server_binds_loopback_unless_the_setting_says_otherwise(
        broker, topic_prefix, model, tmp_path, host):
    outside = non_loopback_ipv4()
    if outside is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect through")
    _, model_dir = model
    create_topics(broker.bootstrap, topic_prefix)
    port = free_port()
    extra = {"metrics_port": port} | ({"metrics_host": host} if host else {})
    log_path = tmp_path / "scorer.log"
    proc = start_scorer(scorer_env(broker.bootstrap, topic_prefix, tmp_path, **extra),
                        model_dir, log_path)
    try:
        assert "canhgiac_scorer_events" in wait_metrics(port, proc, log_path)
        if host == "0.0.0.0":  # noqa: S104
            assert "canhgiac_scorer_events" in get_metrics(outside, port)
        else:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((outside, port), timeout=3).close()
        assert stop_scorer(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def sample(metrics: str, name: str) -> float:
    """The value of an unlabelled sample ``name`` in a /metrics text (fails when absent)."""
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    pytest.fail(f"no sample {name} in:\n{metrics[:3000]}")


def test_the_frozen_object_gauge_is_fed_by_a_running_scorer(broker, topic_prefix, model, tmp_path):
    """`canhgiac_scorer_gc_frozen_objects` is counted by streaming.collector and reaches the
    endpoint only through the scorer's wiring (``on_count``): a running scorer that has restored
    its partitions and scored shows a count above zero (a Python process with numpy and LightGBM
    loaded holds hundreds of thousands of objects, all frozen at start-up)."""
    m, model_dir = model
    expected = _bank_on_topics(broker, topic_prefix, m, n_accounts=40, n_payments=200, seed=53,
                               prefix="G")
    port = free_port()
    log_path = tmp_path / "scorer.log"
    reader = OutputReader(broker.bootstrap, topic_prefix + "payments.scored")
    proc = start_scorer(scorer_env(broker.bootstrap, topic_prefix, tmp_path, metrics_port=port),
                        model_dir, log_path)
    try:
        reader.wait_for(len(expected), timeout_s=60)
        metrics = wait_metrics(port, proc, log_path)
        assert sample(metrics, "canhgiac_scorer_partitions") > 0, metrics[:3000]  # restored
        assert sample(metrics, "canhgiac_scorer_gc_frozen_objects") > 10_000, metrics[:3000]
        assert stop_scorer(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.close()
