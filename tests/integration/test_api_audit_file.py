"""The access log's own SQLite file (serving.auditdb): recording a read never waits for the
projection's write transaction on the case store, the file is private and append-only, and a
store made before the file existed keeps its earlier entries."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError

from serving import tables as T
from serving.auditdb import audit_url
from serving.store import CaseStore
from tests.integration.test_api_support import make_api, seed


def test_audit_url_only_for_sqlite_files():
    assert audit_url("sqlite:////d/cases.db") == "sqlite:////d/cases.audit.db"
    assert audit_url("sqlite:////d/store") == "sqlite:////d/store.audit.db"
    assert audit_url("sqlite://") is None
    assert audit_url("postgresql+psycopg://u:p@h/db") is None


def test_an_audited_read_is_served_while_the_projection_holds_the_write_lock(
        tmp_path, monkeypatch):
    monkeypatch.setattr("serving.db.BUSY_TIMEOUT_MS", 2000)
    api = make_api(tmp_path, url=f"sqlite:///{tmp_path / 'cases.db'}")
    seed(api.store)
    projection = sqlite3.connect(api.store.engine.url.database, isolation_level=None)
    projection.execute("BEGIN IMMEDIATE")  # a projection batch in progress
    try:
        r = api.client.get("/v1/accounts/high-risk", params={"limit": 5},
                           headers=api.h("viewer"))
        assert r.status_code == 200, r.text
        rid = r.headers["x-request-id"]
    finally:
        projection.rollback()
        projection.close()
    with api.store.audit_read() as conn:
        rows = conn.execute(select(T.audit.c.action, T.audit.c.request_id)).all()
    assert ("accounts.high_risk", rid) in rows
    path = api.store.audit_engine.url.database
    assert path.endswith("cases.audit.db")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(DBAPIError, match="append-only"):
        with api.store.audit_write() as conn:
            conn.execute(text("DELETE FROM audit"))


def test_entries_of_a_store_made_before_the_audit_file_are_kept(tmp_path):
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    CaseStore(url).close()
    # the same store as an earlier version left it: its entries in the case store's table
    audit_file = tmp_path / "cases.audit.db"
    with sqlite3.connect(tmp_path / "cases.db") as conn:
        conn.execute("INSERT INTO audit (at, actor, role, action, target, request_id) "
                     "VALUES (1.0, 'old', 'viewer', 'account.read', 'per-1', 'r0')")
    for suffix in ("", "-wal", "-shm"):
        audit_file.with_name(audit_file.name + suffix).unlink(missing_ok=True)
    store = CaseStore(url)
    try:
        store.record_audit("inv1", "investigator", "case.read", "case:1", "r2")
        got = [(e["actor"], e["target"]) for e in store.audit_page(None, 10, None, None)]
        assert got == [("inv1", "case:1"), ("old", "per-1")]
        with store.audit_write() as conn:  # ids kept: the next one follows the copied ones
            conn.execute(insert(T.audit).values(at=2.0, actor="x", role="viewer",
                                                action="a", target="t", request_id="r3"))
    finally:
        store.close()
