"""Investigator controls (issue 17), on SQLite and on PostgreSQL: people not key names behind
maker-checker, for freezes and releases; limits before work (the key before the body, a body
limit, failed authentications logged and limited)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import pytest
import uvicorn

from canhgiac.cli import main
from serving.keys import normalise_user
from serving.store import CaseStore
from streaming.broker import free_port
from tests.integration.test_api_support import RecordingPublisher, make_api, seed


@pytest.fixture
def api(tmp_path, store_url):
    a = make_api(tmp_path, publisher=RecordingPublisher(), url=store_url)
    seed(a.store)
    return a


def _open(api, who="investigator", account_id="biz-1"):
    r = api.client.post("/v1/cases", json={"account_id": account_id, "reason": "9a"},
                        headers=api.h(who))
    assert r.status_code == 201, r.text
    return r.json()["case_id"]


def _move(api, case_id, who, to, **extra):
    return api.client.post(f"/v1/cases/{case_id}/transitions",
                           json={"to": to, "reason": who, **extra}, headers=api.h(who))


def _frozen(api, requester="supervisor"):
    case_id = _open(api, requester)
    assert _move(api, case_id, requester, "under_review").status_code == 200
    assert _move(api, case_id, requester, "freeze_requested").status_code == 200
    return case_id


# ------------------------------------------------------------------ people, not key names
def test_a_second_key_of_the_same_person_cannot_approve_their_freeze(api):
    case_id = _frozen(api, "supervisor")
    r = _move(api, case_id, "supervisor-laptop", "frozen")
    assert r.status_code == 403, r.text
    assert "maker-checker" in r.json()["error"]["message"]
    assert _move(api, case_id, "supervisor2", "frozen").status_code == 200


@pytest.mark.parametrize("variant,same", [
    ("Supervisor", True), ("SUPERVISOR ", True), (" supervisor", True),
    ("ｓｕｐｅｒｖｉｓｏｒ", True), ("SUPERVİSOR".replace("İ", "I"), True),
    ("super visor", False),
])
def test_look_alike_user_names_are_one_user(api, variant, same):
    """Case, surrounding spaces and full-width forms are the same person; a different
    spelling is a different user (and shows plainly in the history)."""
    assert (normalise_user(variant) == "supervisor") is same
    _, token = api.store.create_key(f"k-{variant}", "supervisor", user=variant)
    api.keys["variant"] = token
    case_id = _frozen(api, "supervisor")
    r = _move(api, case_id, "variant", "frozen")
    assert r.status_code == (403 if same else 200), (variant, r.text)


@pytest.mark.parametrize("invisible", ["\u200b", "\u200d", "\u202e", "\ufeff", "\x00", "\n"])
def test_invisible_characters_in_user_or_key_names_are_refused(api, invisible):
    from serving.keys import KeyCreationError

    with pytest.raises(KeyCreationError, match="invisible"):
        api.store.create_key("sneaky", "supervisor", user="supervisor" + invisible)
    with pytest.raises(KeyCreationError, match="invisible"):
        api.store.create_key("sneaky" + invisible, "supervisor", user="someone")


def test_a_release_needs_a_second_person_too(api):
    pub = api.client.app.state.publisher
    case_id = _frozen(api, "investigator")
    assert _move(api, case_id, "supervisor", "frozen").status_code == 200
    # one person can no longer lift the freeze alone
    r = _move(api, case_id, "supervisor", "released", outcome="false_positive")
    assert r.status_code == 409
    assert r.json()["error"]["details"]["allowed_transitions"] == [
        "release_requested", "closed"]
    assert _move(api, case_id, "supervisor", "release_requested").status_code == 200
    for same_person in ("supervisor", "supervisor-laptop"):
        r = _move(api, case_id, same_person, "released", outcome="false_positive")
        assert r.status_code == 403 and "maker-checker" in r.json()["error"]["message"]
    # the checker may reject it (the account stays frozen) ...
    r = _move(api, case_id, "supervisor2", "frozen")
    assert r.status_code == 200 and r.json()["action"] == "release_rejected"
    # ... or, on a new request, approve it
    assert _move(api, case_id, "investigator", "release_requested").status_code == 200
    r = _move(api, case_id, "supervisor-laptop", "released", outcome="false_positive")
    assert r.status_code == 200, r.text
    history = r.json()["case"]["history"]
    assert [(h["to_status"], h["user"], h["key"]) for h in history[-5:]] == [
        ("frozen", "supervisor", "supervisor"),
        ("release_requested", "supervisor", "supervisor"),
        ("frozen", "supervisor2", "supervisor2"),
        ("release_requested", "investigator", "investigator"),
        ("released", "supervisor", "supervisor-laptop")]
    assert [a["action"] for a in pub.actions][-4:] == [
        "release_requested", "release_rejected", "release_requested", "released"]
    assert pub.actions[-1]["key"] == "supervisor-laptop"
    assert r.json()["case"]["release_requested_by"] == "investigator"


def test_refused_moves_are_in_the_audit_log(api):
    case_id = _frozen(api, "supervisor")
    _move(api, case_id, "supervisor-laptop", "frozen")
    items = api.client.get("/v1/audit", params={"target": f"case:{case_id}"},
                           headers=api.h("admin")).json()["items"]
    refused = [e for e in items if e["action"] == "case.transition_refused"]
    assert len(refused) == 1
    assert (refused[0]["actor"], refused[0]["key"]) == ("supervisor", "supervisor-laptop")
    assert refused[0]["details"]["status"] == 403


def test_keys_create_with_a_user(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CANHGIAC_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CANHGIAC_CASE_STORE_URL", raising=False)
    assert main(["keys", "create", "--role", "supervisor", "--name", "an-desk",
                 "--user", "Trần Văn An"]) == 0
    first = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["keys", "create", "--role", "supervisor", "--name", "an-phone",
                 "--user", "TRẦN VĂN AN"]) == 0
    second = capsys.readouterr().out.strip().splitlines()[-1]
    assert first.startswith("cg_") and second.startswith("cg_") and first != second
    assert main(["keys", "create", "--role", "viewer", "--name", "solo"]) == 0
    capsys.readouterr()
    assert main(["keys", "create", "--role", "viewer", "--name", "x",
                 "--user", "an\u200b"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "invisible" in err
    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    try:
        a, b = store.authenticate(first), store.authenticate(second)
        assert a.user == b.user == "trần văn an" and a.name != b.name
        assert {k["name"]: k["user"] for k in store.list_keys()}["solo"] == "solo"
    finally:
        store.close()
    assert main(["keys", "list"]) == 0
    assert "an-phone\ttrần văn an\tsupervisor" in capsys.readouterr().out


# ------------------------------------------------------------------ limits before work
def test_deep_or_huge_json_without_a_key_is_401(api):
    deep = b"[" * 50_000 + b"]" * 50_000
    for body in (deep, b"{" * 30, b'{"account_id": "' + b"x" * 500_000 + b'"}'):
        r = api.client.post("/v1/cases", content=body,
                            headers={"Content-Type": "application/json"})
        assert r.status_code == 401, r.text
        r = api.client.post("/v1/cases/1/transitions", content=body,
                            headers={"Content-Type": "application/json",
                                     "Authorization": "Bearer cg_wrong"})
        assert r.status_code == 401


def test_a_body_over_64_kb_is_413_and_deep_json_with_a_key_is_a_4xx(api):
    h = {**api.h("investigator"), "Content-Type": "application/json"}
    r = api.client.post("/v1/cases", content=b'{"reason": "' + b"a" * 70_000 + b'"}', headers=h)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the streamed bytes are counted
        for _ in range(20):
            yield b" " * 8192

    r = api.client.post("/v1/cases", content=chunks(), headers=h)
    assert r.status_code == 413
    r = api.client.post("/v1/cases", content=b"[" * 30_000 + b"]" * 30_000, headers=h)
    assert 400 <= r.status_code < 500, r.text


def test_failed_authentications_are_logged_without_the_key_and_limited(api, caplog):
    from serving.middleware import FailedAuthLimiter

    limit = FailedAuthLimiter().max_failures
    secret = "cg_guess-" + "q" * 20
    with caplog.at_level(logging.WARNING, logger="serving.middleware"):
        for _ in range(limit):
            r = api.client.get("/v1/cases", headers={"Authorization": f"Bearer {secret}"})
            assert r.status_code == 401
        r = api.client.get("/v1/cases", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # while limited even a good key from that address waits (the guessing is what is slowed)
    assert api.client.get("/v1/cases", headers=api.h("viewer")).status_code == 429
    failures = [rec for rec in caplog.records if rec.getMessage() == "authentication failed"]
    assert len(failures) == limit
    assert failures[0].client == "testclient" and failures[0].path == "/v1/cases"
    for rec in caplog.records:
        assert secret not in rec.getMessage() and secret not in json.dumps(
            vars(rec), default=str)


def _serve(app):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    return server, thread, port


def _raw(port, head: bytes, body: bytes = b"") -> bytes:
    """Send ``head`` (and ``body``) and read the answer without sending the rest."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        sock.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_the_key_and_the_size_are_checked_before_the_body_arrives(api):
    """A real server: a 10 MB body is announced but never sent; the answers (401 without a
    key, 413 with one) come at once, so nothing waited for or read the body."""
    server, thread, port = _serve(api.client.app)
    try:
        announce = (b"POST /v1/cases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 10485760\r\n")
        t0 = time.monotonic()
        answer = _raw(port, announce + b"\r\n")
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        key = api.keys["investigator"].encode()
        answer = _raw(port, announce + b"Authorization: Bearer " + key + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert time.monotonic() - t0 < 5
        health = _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert health.startswith(b"HTTP/1.1 200")
    finally:
        server.should_exit = True
        thread.join(10)
