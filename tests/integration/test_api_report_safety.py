"""The police report is safe to open (issue 17): no cell runs as a formula in a spreadsheet
that splits at ',' or at ';', with leading spaces, line feeds or full-width forms; XLSX cells
are typed. On SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.events import Rejection, from_mapping
from serving.report import COLUMNS, safe_text
from tests.integration.test_api_support import BASE, login, make_api, scored, seed

URL = "/v1/reports/suspicious-accounts"
WINDOW = {"from": "2026-03-01T00:00:00+07:00", "to": "2026-03-02T00:00:00+07:00"}
FORMULA = tuple("=+-@＝＋－＠﹢﹣−")
NASTY = ["x;=1+1", "  =cmd|' /C calc'!A0", "\n=2+3", "＝HYPERLINK(\"http://x\")",
         "a,\t@SUM(1)", "ok; ; -1", "line1\nline2\r\n+3", '";=9', "\u3000＋1"]


@pytest.fixture
def api(tmp_path, store_url):
    a = make_api(tmp_path, url=store_url)
    seed(a.store)
    a.store.write_scored([
        scored(f"n{i}", "biz-1", 0.9, BASE + timedelta(minutes=i), description=text,
               counterparty=f"cp;={i}+1")
        for i, text in enumerate(NASTY)])
    a.store.write_logins([login("zl", "biz-1", "KH", BASE)])
    case = a.store.create_case("biz-1", "investigator", "investigator", "line1\nline2\r\n+3")
    a.store.transition(case["case_id"], "under_review", actor="investigator",
                       role="investigator", reason=" ＝1+1;@x", outcome=None, typology=None)
    return a


def _pieces(line: str) -> list[str]:
    """Every piece a naive spreadsheet could make of a line, splitting at ',' ';' or tab."""
    return [re.sub(r'^[\s"]+', "", p) for p in re.split(r"[,;\t]", line)]


def _starts_formula(text: str) -> bool:
    return text.startswith(FORMULA)


def test_no_cell_is_a_formula_with_either_list_separator(api):
    r = api.client.get(URL, params={**WINDOW, "format": "csv", "min_score": 0.0},
                       headers=api.h("investigator"))
    assert r.status_code == 200
    text = r.content.decode("utf-8-sig")
    lines = text.split("\r\n")
    assert len(lines) == 1 + 3 + 1  # header, three accounts, the final line end: no LF leaks
    for delimiter in (",", ";"):
        for row in csv.reader(io.StringIO(text), delimiter=delimiter):
            for cell in row:
                assert not _starts_formula(cell.strip()), (delimiter, cell)
    for line in lines:
        for piece in _pieces(line):
            assert not _starts_formula(piece), piece
    rows = list(csv.DictReader(io.StringIO(text)))
    assert "'=1+1" in rows[0]["key_payments"] and "x;'=1+1" in rows[0]["key_payments"]
    # line feeds are spaces (a '+' inside a line is no cell start); ';' starts a piece
    assert "line1 line2  +3 |" in rows[0]["decisions"]
    assert ":  ＝1+1;'@x" in rows[0]["decisions"]
    assert safe_text(" ＝1+1;@x") == " '＝1+1;'@x"
    # every text cell is quoted: a ';' inside a cell never separates for a quote-aware reader
    assert all(line.startswith('"') for line in lines[:-1])


@given(st.text(max_size=80))
def test_safe_text_never_leaves_a_formula_start_anywhere_a_line_can_split(text):
    out = safe_text(text)
    assert "\n" not in out and "\r" not in out
    for piece in _pieces(out):
        assert not _starts_formula(piece), (text, out)
    # only quotes added; only control characters and line/paragraph separators replaced
    expected = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
                       for c in text)
    assert out.replace("'", "") == expected.replace("'", "")


def test_xlsx_has_typed_cells_and_no_formula(api):
    r = api.client.get(URL, params={**WINDOW, "format": "xlsx", "min_score": 0.0},
                       headers=api.h("investigator"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert r.headers["content-disposition"].endswith('.xlsx"')
    with zipfile.ZipFile(io.BytesIO(r.content)) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        strings = book.read("xl/sharedStrings.xml").decode()
    assert "<f>" not in sheet and "<f " not in sheet  # no formula anywhere
    assert 'r="E2"><v>' in sheet  # risk_score: a number cell (no t="s")
    assert "account_id" in strings and "biz-1" in strings and "'=1+1" in strings
    assert len(re.findall(r"<row ", sheet)) == 1 + 3
    assert len(COLUMNS) == 20


def test_ip_zone_ids_and_control_characters_fail_the_contract():
    base = {"event_id": "l", "ts": "2026-03-01T09:00:00Z", "account_id": "a", "success": True,
            "country": "VN", "device_id": "d", "channel": "mobile"}
    for bad in ["fe80::1%;=1+1", "fe80::1%eth0", "10.0.0.1\n", "１０.0.0.1", "::1\x00"]:
        rejected = from_mapping("logins", {**base, "ip": bad})
        assert isinstance(rejected, Rejection) and "ip" in str(rejected), bad
    assert from_mapping("logins", {**base, "ip": "fe80::1"}).ip == "fe80::1"
    assert from_mapping("logins", {**base, "ip": "10.0.0.1",
                                   "account_id": "３８９０１"}).account_id == "38901"


def test_out_of_range_report_dates_are_422(api):
    for params in ({"from": "0001-01-01T00:00:00+14:00", "to": "2026-01-01T00:00:00Z"},
                   {"from": "9999-12-31T00:00:00-12:00", "to": "9999-12-31T23:00:00-12:00"},
                   {"from": "1900-01-01T00:00:00Z", "to": "1900-02-01T00:00:00Z"}):
        r = api.client.get(URL, params=params, headers=api.h("investigator"))
        assert r.status_code == 422, (params, r.text)
    r = api.client.get("/v1/accounts/high-risk", params={"since": "0001-01-01T00:00:00+14:00"},
                       headers=api.h("viewer"))
    assert r.status_code in (200, 422)
