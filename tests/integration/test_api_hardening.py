"""Headers, offline documentation, escaped logs and a busy database (issue 17), on SQLite and
on PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
import time

import psycopg
import pytest

from canhgiac.logs import KeyValueFormatter
from tests.integration.test_api_support import make_api, seed

PERSONAL = ["/v1/accounts/high-risk", "/v1/accounts/biz-1", "/v1/cases", "/v1/audit",
            "/v1/reports/suspicious-accounts?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z"]


@pytest.fixture
def api(tmp_path, store_url):
    a = make_api(tmp_path, url=store_url)
    seed(a.store)
    return a


def test_personal_data_is_not_cached_sniffed_or_framed(api):
    for path in PERSONAL:
        for _ in range(2):  # the second high-risk answer comes from the fast path
            r = api.client.get(path, headers=api.h("admin"))
            assert r.status_code == 200, (path, r.text)
            assert r.headers["cache-control"] == "no-store", path
            assert r.headers["x-content-type-options"] == "nosniff"
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    r = api.client.get("/v1/accounts/high-risk")  # errors too
    assert r.status_code == 401 and r.headers["cache-control"] == "no-store"
    page = api.client.get("/ui/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_swagger_and_redoc_are_served_by_the_app_itself(api):
    for path, asset in [("/docs", "/docs/assets/swagger-ui-bundle.js"),
                        ("/redoc", "/docs/assets/redoc.standalone.js")]:
        r = api.client.get(path)
        assert r.status_code == 200 and asset in r.text
        assert "http://" not in r.text and "https://" not in r.text  # nothing from a CDN
        assert "<script>" not in r.text  # no inline script: the CSP allows 'self' only
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
        js = api.client.get(asset)
        assert js.status_code == 200 and len(js.content) > 500_000
    init = api.client.get("/docs/assets/init-swagger.js").text
    assert '"/openapi.json"' in init
    assert api.client.get("/docs/assets/swagger-ui.css").status_code == 200
    for licence in ("LICENSE-swagger-ui-dist", "LICENSE-redoc"):
        assert api.client.get(f"/docs/assets/{licence}").status_code == 200


def test_full_width_account_ids_are_the_ascii_ones(api):
    h = api.h("investigator")
    r = api.client.get("/v1/accounts/ｂｉｚ－１", headers=h)  # full-width letters and hyphen
    assert r.status_code == 200 and r.json()["account_id"] == "biz-1"
    r = api.client.post("/v1/cases", json={"account_id": "ｂｉｚ-１"}, headers=h)
    assert r.status_code == 201 and r.json()["account_id"] == "biz-1"
    r = api.client.post("/v1/cases", json={"account_id": "biz-1"}, headers=h)
    assert r.status_code == 409  # one account, not two
    assert api.client.get("/v1/cases", params={"account_id": "ｂｉｚ-1"},
                          headers=h).json()["items"][0]["account_id"] == "biz-1"


def test_a_newline_in_data_cannot_forge_a_log_line():
    record = logging.LogRecord("serving", logging.WARNING, __file__, 1,
                               "scored record skipped %s", ("e1\n2026 ERROR forged",), None)
    record.event_id = "e1\r\n2026-01-01 CRITICAL serving forged=1"
    record.client = "a b"
    line = KeyValueFormatter("%(levelname)s %(name)s %(message)s").format(record)
    assert "\n" not in line and "\r" not in line
    assert "skipped e1\\n2026 ERROR forged" in line
    assert 'event_id="e1\\r\\n2026-01-01 CRITICAL serving forged=1"' in line
    assert 'client="a b"' in line


class _Both:
    def __init__(self, conns):
        self.conns = conns

    def rollback(self):
        for c in self.conns:
            c.rollback()

    def close(self):
        for c in self.conns:
            c.close()


def _hold_write_lock(api, store_url):
    """Another process's open write transaction: (connection, release)."""
    if store_url.startswith("sqlite"):  # the case store and the access log's own file
        conns = [sqlite3.connect(e.url.database, isolation_level=None)
                 for e in (api.store.engine, api.store.audit_engine)]
        for c in conns:
            c.execute("BEGIN IMMEDIATE")
        return _Both(conns)
    uri = store_url.replace("postgresql+psycopg://", "postgresql://")
    conn = psycopg.connect(uri)
    conn.execute("SELECT value FROM meta FOR UPDATE")
    conn.execute("LOCK TABLE audit IN EXCLUSIVE MODE")
    conn.execute("LOCK TABLE cases IN EXCLUSIVE MODE")
    return conn


def test_a_locked_database_is_a_503_with_retry_after_and_readyz_says_so(
        tmp_path, store_url, monkeypatch):
    monkeypatch.setattr("serving.db.BUSY_TIMEOUT_MS", 400)
    api = make_api(tmp_path, url=store_url)
    seed(api.store)
    assert api.client.get("/readyz", headers=api.h("viewer")).status_code == 200
    holder = _hold_write_lock(api, store_url)
    try:
        t0 = time.monotonic()
        r = api.client.get("/readyz", headers=api.h("viewer"))
        assert r.status_code == 503 and r.json()["error"]["code"] == "store_busy"
        assert int(r.headers["retry-after"]) >= 1
        # a read of personal data cannot be audited now, so it is not served
        r = api.client.get("/v1/accounts/biz-1", headers=api.h("viewer"))
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] and r.json()["error"]["code"] == "store_busy"
        assert r.headers["cache-control"] == "no-store" and r.headers["x-request-id"]
        r = api.client.post("/v1/cases", json={"account_id": "per-1"},
                            headers=api.h("investigator"))
        assert r.status_code == 503
        assert time.monotonic() - t0 < 10
    finally:
        holder.rollback()
        holder.close()
    assert api.client.get("/readyz", headers=api.h("viewer")).status_code == 200
    assert api.client.get("/v1/accounts/biz-1", headers=api.h("viewer")).status_code == 200
