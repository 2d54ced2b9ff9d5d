"""`canhgiac keys create/list/revoke` against the real case store the API reads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from canhgiac.cli import main
from models.pseudonym import Pseudonymiser
from serving.store import CaseStore
from streaming.broker import free_port


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CANHGIAC_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CANHGIAC_CASE_STORE_URL", raising=False)
    return tmp_path


def test_keys_create_prints_the_key_alone_on_the_last_line(data_dir, capsys):
    assert main(["keys", "create", "--role", "supervisor", "--name", "Trần Văn An"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("cg_") and " " not in key
    store = CaseStore(f"sqlite:///{data_dir / 'cases.db'}")
    principal = store.authenticate(key)
    assert principal is not None and principal.role == "supervisor"

    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "Trần Văn An" in listing and "active" in listing and key not in listing

    assert main(["keys", "revoke", "Trần Văn An"]) == 0
    assert store.authenticate(key) is None
    assert main(["keys", "revoke", "Trần Văn An"]) == 2  # already revoked
    store.close()


def test_keys_create_refuses_bad_input(data_dir, capsys):
    assert main(["keys", "create", "--role", "viewer", "--name", "a"]) == 0
    assert main(["keys", "create", "--role", "viewer", "--name", "a"]) == 2
    assert "already exists" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["keys", "create", "--role", "god", "--name", "b"])
    assert exc.value.code == 2


def test_serve_answers_on_the_given_port(data_dir):
    port = free_port()
    env = {**os.environ, "CANHGIAC_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    proc = subprocess.Popen([sys.executable, "-m", "canhgiac.cli", "--log-level", "WARNING",
                             "serve", "--host", "127.0.0.1", "--port", str(port)], env=env)
    try:
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and status is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code
            except httpx.TransportError:
                time.sleep(0.2)
        assert status == 200
        assert httpx.get(f"http://127.0.0.1:{port}/v1/model").status_code == 401
    finally:
        proc.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM (exit -15)
        assert proc.wait(30) in (0, -15)


def test_every_worker_of_serve_workers_logs_like_the_single_process_server(data_dir):
    """``serve --workers 2``: each worker is a fresh interpreter started by uvicorn; its log
    lines have the service's key=value format and name accounts by pseudonym only."""
    port = free_port()
    env = {**os.environ, "CANHGIAC_KAFKA_BOOTSTRAP": "127.0.0.1:1",
           "CANHGIAC_PSEUDONYM_KEY": "test-key-workers"}
    env.pop("CANHGIAC_LOG_LEVEL", None)
    log_path = data_dir / "serve.log"
    proc = start_serve_workers(port, env, log_path)
    try:
        assert _started_workers(log_path, proc, 60) == 2, log_path.read_text()
        assert _answering(port, proc, 60), log_path.read_text()
        for _ in range(6):  # whichever worker answers, each logs the failure
            r = httpx.get(f"http://127.0.0.1:{port}/v1/accounts/3890001234",
                          headers={"Authorization": "Bearer cg_not-a-key"}, timeout=10)
            assert r.status_code == 401
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "authentication failed" not in log_path.read_text():
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(60)
    text = log_path.read_text()
    pseudonym = Pseudonymiser(b"test-key-workers")("3890001234")
    failures = [line for line in text.splitlines() if "authentication failed" in line]
    assert failures, text
    for line in failures:
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING serving\.middleware "
                        r"authentication failed client=127\.0\.0\.1 path=/v1/accounts/"
                        + pseudonym + " ", line), line
    assert "3890001234" not in text


def start_serve_workers(port: int, env: dict[str, str], log_path) -> subprocess.Popen:
    """``canhgiac serve --workers 2 --no-sink`` on ``port``, its output in ``log_path``."""
    with open(log_path, "wb") as log_file:
        return subprocess.Popen([sys.executable, "-m", "canhgiac.cli", "--log-level", "INFO",
                                 "serve", "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", "2", "--no-sink"],
                                env=env, stdout=log_file, stderr=subprocess.STDOUT)


def _answering(port: int, proc: subprocess.Popen, timeout_s: float) -> bool:
    """Whether the server answers ``/healthz`` within ``timeout_s``. A worker logs "Started
    server process" before its application starts up, and the shared socket listens only once a
    worker has finished starting: requests sent between the two are refused."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            time.sleep(0.2)
    return False


def _started_workers(log_path, proc, timeout_s: float) -> int:
    """How many worker processes (not the supervisor) logged their start in the key=value
    format, once two have or ``timeout_s`` passed."""
    started = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO uvicorn\.error "
                         r"Started server process \[(\d+)\]$", re.MULTILINE)  # no fields
    deadline = time.monotonic() + timeout_s
    while True:
        pids = {int(p) for p in started.findall(log_path.read_text())} - {proc.pid}
        if len(pids) >= 2 or time.monotonic() > deadline or proc.poll() is not None:
            return len(pids)
        time.sleep(0.2)
