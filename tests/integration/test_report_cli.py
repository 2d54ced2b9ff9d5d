"""`canhgiac report results --from --to` over the real case store the API writes."""

from __future__ import annotations

import json

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from canhgiac.cli import main
from serving.store import CaseStore
from tests.browser.seed import seed_ring


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CANHGIAC_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CANHGIAC_CASE_STORE_URL", raising=False)
    monkeypatch.delenv("CANHGIAC_REVIEW_THRESHOLD", raising=False)
    monkeypatch.delenv("CANHGIAC_HOLD_THRESHOLD", raising=False)
    s = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    seed_ring(s)
    case = s.create_case("biz-1", "an", "investigator", "x")
    for to, who, role in [("under_review", "an", "investigator"),
                          ("freeze_requested", "an", "investigator"),
                          ("frozen", "chi", "supervisor")]:
        s.transition(case["case_id"], to, actor=who, role=role, reason=to, outcome=None,
                     typology=None)
    yield s
    s.close()


def test_results_table_json_xlsx_and_pdf(store, tmp_path, capsys):
    assert main(["report", "results", "--from", "2026-03-01", "--to", "2026-03-01"]) == 0
    out = capsys.readouterr().out
    total = [line for line in out.splitlines() if line.startswith("total")][0].split("\t")
    # the seeded payments are on 2026-03-01 (UTC); the case decisions are today: not counted
    assert total[2:] == ["2", "0", "0", "0", "0", "0", "26,000,000"]

    assert main(["report", "results", "--from", "2026-01-01", "--to", "2099-01-01",
                 "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert (body["total"]["cases_opened"], body["total"]["freezes_approved"]) == (1, 1)

    xlsx, pdf = tmp_path / "r.xlsx", tmp_path / "r.pdf"
    assert main(["report", "results", "--from", "2026-01-01", "--to", "2099-01-01",
                 "--out", str(xlsx)]) == 0
    rows = list(openpyxl.load_workbook(xlsx).active.iter_rows(values_only=True))
    assert rows[-1][:6] == ("total", "all", 2, 1, 1, 1)
    assert main(["report", "results", "--from", "2026-01-01T00:00:00Z", "--to",
                 "2099-01-01T00:00:00Z", "--out", str(pdf)]) == 0
    assert "26,000,000" in "".join(p.extract_text() for p in PdfReader(pdf).pages)


@pytest.mark.parametrize("argv", [
    ["--from", "2026-03-02", "--to", "2026-03-01"],
    ["--from", "March", "--to", "2026-03-01"],
    ["--from", "2026-03-01T00:00:00", "--to", "2026-03-02"],
    ["--from", "2026-03-01", "--to", "2026-03-02", "--format", "pdf"],
    ["--from", "2026-03-01", "--to", "2026-03-02", "--out", "x.doc"],
])
def test_bad_arguments_are_one_line_and_exit_2(store, capsys, argv):
    assert main(["report", "results", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("canhgiac report: error:") and "\n" not in err


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40), end=st.booleans())
def test_any_date_argument_is_a_time_or_a_usage_error(text, end):
    from canhgiac.cli import UsageError
    from canhgiac.cmd_report import parse_bound

    try:
        value = parse_bound(text, end)
    except UsageError as exc:
        assert str(exc)
    else:
        assert value.tzinfo is not None
