"""The police report (item 9a): CSV with BOM that Excel reads as UTF-8, and its JSON twin."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from serving.report import COLUMNS
from tests.integration.test_api_support import BASE, make_api, scored, seed

URL = "/v1/reports/suspicious-accounts"
WINDOW = {"from": "2026-03-01T00:00:00+07:00", "to": "2026-03-02T00:00:00+07:00"}


@pytest.fixture
def api(tmp_path, store_url):
    a = make_api(tmp_path, url=store_url)
    seed(a.store)
    a.store.write_scored([
        scored("e5", "biz-1", 0.81, BASE + timedelta(hours=3), direction="debit",
               amount=120_000_000, description="Chuyển khoản đầu tư – Nguyễn Thị Hằng",
               counterparty="9988776655"),
        scored("e6", "per-2", 0.66, BASE + timedelta(hours=4), description="=HYPERLINK(1)"),
        scored("e7", "per-1", 0.99, BASE + timedelta(days=5)),  # outside the window
    ])
    case = a.store.create_case("biz-1", "investigator", "investigator", "nhiều người gửi")
    a.store.transition(case["case_id"], "under_review", actor="investigator",
                       role="investigator", reason="xem xét", outcome=None, typology=None)
    return a


def _csv_rows(content: bytes) -> list[dict[str, str]]:
    assert content.startswith(b"\xef\xbb\xbf")
    text = content.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_has_bom_header_and_vietnamese_text(api):
    r = api.client.get(URL, params={**WINDOW, "format": "csv", "min_score": 0.5},
                       headers=api.h("investigator"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    header = r.content.decode("utf-8-sig").splitlines()[0]
    assert header.split(",") == [f'"{c}"' for c in COLUMNS]  # every text cell quoted
    rows = _csv_rows(r.content)
    assert [row["account_id"] for row in rows] == ["biz-1", "per-1", "per-2"]
    biz = rows[0]
    assert biz["customer_id"] == "cus-biz-1" and biz["account_type"] == "business"
    assert biz["opened_at"] == "2026-01-30T09:00:00Z"
    assert float(biz["risk_score"]) == pytest.approx(0.93)
    assert biz["typology"] == "shell_business"
    assert (biz["credits_count"], biz["debits_count"]) == ("2", "1")
    assert float(biz["credits_sum"]) == 10_000_000 and float(biz["debits_sum"]) == 120_000_000
    assert biz["distinct_senders"] == "1"
    assert biz["foreign_login_countries"] == "KH" and biz["foreign_login_ips"] == "103.9.76.1"
    assert "Chuyển khoản đầu tư – Nguyễn Thị Hằng" in biz["key_payments"]
    assert "120,000,000 VND → 9988776655@VCB" in biz["key_payments"]
    assert biz["case_status"] == "under_review"
    assert "open→under_review by investigator: xem xét" in biz["decisions"]
    assert "nhiều người gửi" in biz["decisions"]
    assert biz["first_activity"] == "2026-03-01T09:00:00Z"
    # a description that Excel would run as a formula is neutralised
    assert "“=HYPERLINK(1)”" in rows[2]["key_payments"]
    assert rows[2]["key_payments"].startswith("2026-")
    assert all(not v.startswith("=") for row in rows for v in row.values())


def test_json_report_and_min_score(api):
    r = api.client.get(URL, params={**WINDOW, "format": "json", "min_score": 0.75},
                       headers=api.h("supervisor"))
    assert r.status_code == 200
    body = r.json()
    assert body["columns"] == list(COLUMNS)
    assert body["from"] == "2026-02-28T17:00:00Z"
    assert [row["account_id"] for row in body["rows"]] == ["biz-1"]
    assert body["rows"][0]["foreign_login_countries"] == ["KH"]
    assert "Nguyễn Thị Hằng" in r.content.decode("utf-8")


def test_confirmed_cases_are_reported_even_below_min_score(api):
    case = api.store.create_case("per-2", "investigator", "investigator", "")
    api.store.transition(case["case_id"], "closed", actor="investigator", role="investigator",
                         reason="", outcome="confirmed_mule", typology=None)
    body = api.client.get(URL, params={**WINDOW, "format": "json", "min_score": 0.99},
                          headers=api.h("investigator")).json()
    assert "per-2" in [row["account_id"] for row in body["rows"]]


def test_report_exports_are_audited_and_need_an_investigator(api):
    assert api.client.get(URL, params=WINDOW, headers=api.h("viewer")).status_code == 403
    api.client.get(URL, params=WINDOW, headers=api.h("investigator"))
    items = api.client.get("/v1/audit", headers=api.h("admin")).json()["items"]
    assert items[0]["action"] == "report.export" and items[0]["actor"] == "investigator"


@pytest.mark.parametrize("params", [
    {},
    {"from": WINDOW["from"]},
    {"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
    {"from": "2026-03-01T00:00:00", "to": "2026-03-02T00:00:00"},
    {**WINDOW, "format": "pdf"},
    {**WINDOW, "min_score": "-1"},
    {"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    {"from": "soon", "to": "later"},
])
def test_bad_report_parameters_are_422(api, params):
    r = api.client.get(URL, params=params, headers=api.h("investigator"))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"]
