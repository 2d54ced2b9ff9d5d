"""`canhgiac keys create/list/revoke` against the real case store the API reads."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from canhgiac.cli import main
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
