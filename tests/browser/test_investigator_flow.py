"""The whole rapid-response flow from the page, in Chromium, against the real API and store:
sign in with a key, find an account, open its network view, open a case, review, request a
freeze as one investigator, approve it as a supervisor from the approval queue, close it with
an outcome, read the history, and download the police and results reports and parse them."""

from __future__ import annotations

import csv
import io
import time

import pytest

from tests.browser.harness import by_id as _id
from tests.browser.harness import sign_in
from tests.browser.harness import wait as _wait
from tests.browser.seed import seed_ring

pytestmark = pytest.mark.slow


def _text(driver, element_id):
    return _id(driver, element_id).text


def set_date(driver, box, value):
    """What a date picker does: set the value and fire the input event."""
    driver.execute_script(
        "const [el, v] = arguments; Object.getOwnPropertyDescriptor("
        "HTMLInputElement.prototype, 'value').set.call(el, v);"
        "el.dispatchEvent(new Event('input', {bubbles: true}));", box, value)


def sign_out(driver):
    _id(driver, "sign-out").click()
    _id(driver, "login-key")


def move(driver, to, note, outcome=None):
    from selenium.webdriver.support.ui import Select

    Select(_id(driver, "move-to")).select_by_value(to)
    if outcome:
        Select(_id(driver, "move-outcome")).select_by_value(outcome)
    _id(driver, "move-note").send_keys(note)
    _id(driver, "move-submit").click()
    _wait(driver, lambda: driver.find_element("id", "active-case").get_attribute("data-status")
          == to if to not in ("closed", "released") else
          not driver.find_elements("id", "active-case"), what=f"case moved to {to}")


def test_rapid_response_from_the_page(server, browser):
    seed_ring(server.store)
    d = browser.driver

    # an investigator signs in, sees the list at the review threshold with badges
    sign_in(d, server.url, server.keys["nguyen.an"])
    _wait(d, lambda: len(d.find_elements("css selector", "#accounts tbody tr")) == 2,
          what="two accounts at or above the review threshold")
    assert _id(d, "min-score").get_attribute("value") == "0.5"
    rows = d.find_elements("css selector", "#accounts tbody tr")
    assert rows[0].text.startswith("biz-1")
    assert "GIỮ LẠI" in rows[0].text and "KH" in rows[0].text  # hold badge, foreign country
    assert "mule-3" not in _text(d, "accounts")  # below the threshold
    counts = _text(d, "counts")
    assert "2 đang hiển thị" in counts and "2 tài khoản trên ngưỡng" in counts

    # the item-9a view is one click away
    _id(d, "view-9a").click()
    _wait(d, lambda: [r.text.split()[0] for r in
                      d.find_elements("css selector", "#accounts tbody tr")] == ["biz-1"],
          what="item 9a view")
    assert "type=business" in d.current_url and "foreign_login=true" in d.current_url

    # find the account by search, open its network view
    search = _id(d, "search")
    search.send_keys("biz-1\n")
    _wait(d, lambda: d.current_url.endswith("/ui/accounts/biz-1"), what="deep link")
    assert _text(d, "account-title") == "biz-1"
    _id(d, "timeline-chart")
    _id(d, "tab-network").click()
    _wait(d, lambda: d.execute_script("return window.cgNetwork && window.cgNetwork.nodes().length"),
          what="network drawn")
    nodes = d.execute_script(
        "return window.cgNetwork.nodes().map(n => [n.id(), n.hasClass('flagged')])")
    flagged = {n for n, f in nodes if f}
    assert {"biz-1", "mule-2"} <= flagged  # two hops: biz-1 → mule-2 → mule-3
    assert "mule-3" in {n for n, _ in nodes} and "mule-3" not in flagged
    assert d.current_url.endswith("/ui/accounts/biz-1/network")

    # open a case, review, request a freeze
    _id(d, "open-case-note").send_keys("nhiều người gửi rồi chuyển đi ngay\n")
    _wait(d, lambda: d.find_element("id", "active-case").get_attribute("data-status") == "open",
          what="case opened")
    case_id = _id(d, "active-case").get_attribute("data-case-id")
    _id(d, "take-case").click()
    _wait(d, lambda: _text(d, "assignee") == "nguyen.an", what="assigned to me")
    move(d, "under_review", "xem sao kê 3 ngày")
    move(d, "freeze_requested", "dòng tiền qua mule-2, đề nghị phong tỏa")
    assert not [o for o in d.find_elements("css selector", "#move-to option")
                if o.get_attribute("value") == "frozen"]  # cannot approve their own request
    sign_out(d)

    # a supervisor finds it waiting for approval, overdue (the test SLA is ~1 s)
    sign_in(d, server.url, server.keys["le.chi"])
    _id(d, "nav-queues").click()
    _id(d, "queue-approval").click()
    row = _wait(d, lambda: d.find_element("css selector", f"#queue tr[data-case-id='{case_id}']"),
                what="the case in the approval queue")
    time.sleep(1.2)
    d.refresh()
    row = _wait(d, lambda: d.find_element("css selector", f"#queue tr[data-case-id='{case_id}']"),
                what="the case after reload")
    assert "overdue" in row.get_attribute("class")
    assert "nguyen.an" in row.text
    metrics = d.execute_async_script(
        "const done = arguments[0]; fetch('/metrics', {headers: {Authorization: 'Bearer ' +"
        " sessionStorage.getItem('cg-key')}}).then(r => r.text()).then(done)")
    assert "canhgiac_api_freeze_requests_overdue 1.0" in metrics
    row.find_element("link text", "biz-1").click()
    _wait(d, lambda: d.find_element("id", "active-case").get_attribute("data-status")
          == "freeze_requested", what="account page with the request")
    move(d, "frozen", "đồng ý phong tỏa")
    move(d, "closed", "chuyển công an", outcome="confirmed_mule")

    # the history says who, when, which move and the notes
    d.refresh()
    _wait(d, lambda: d.find_elements("css selector", "details.past-case"), what="past case")
    d.execute_script("document.querySelectorAll('details.past-case').forEach(x => x.open = true)")
    history = [li.text for li in d.find_elements("css selector", f"#history-{case_id} li")]
    assert len(history) == 5
    assert "nguyen.an" in history[0] and "nhiều người gửi" in history[0]
    assert "tiền vào rồi chuyển đi ngay" in history[0]  # the model's reasons, kept
    assert "nguyen.an" in history[2] and "đề nghị phong tỏa" in history[2]
    assert "le.chi" in history[3] and "đồng ý phong tỏa" in history[3]
    assert "le.chi" in history[4] and "xác nhận tài khoản la" in history[4]
    assert all("/2026" in h for h in history)  # local dates, not raw RFC 3339

    # the reports download from the page and parse
    _id(d, "nav-reports").click()
    form = _id(d, "police-form")
    for name, value in (("from", "2026-01-01"), ("to", "2026-12-31")):
        set_date(d, form.find_element("name", name), value)
    _id(d, "police-csv").click()
    police = browser.wait_download(".csv")
    table = list(csv.DictReader(io.StringIO(police.read_text(encoding="utf-8-sig"))))
    assert table and table[0]["account_id"] == "biz-1"
    _id(d, "police-xlsx").click()  # the same report as an Excel workbook (typed cells)
    import openpyxl
    police_xlsx = browser.wait_download(".xlsx")
    book = openpyxl.load_workbook(police_xlsx).active
    header, *cells = [[c.value for c in r] for r in book.iter_rows()]
    assert "account_id" in header
    assert cells[0][header.index("account_id")] == "biz-1"
    police_xlsx.unlink()  # the results report's workbook is awaited next

    results_form = _id(d, "results-form")
    assert results_form.find_element("name", "from").get_attribute("value") == "2026-01-01"
    _id(d, "results-xlsx").click()
    xlsx = browser.wait_download(".xlsx")
    _id(d, "results-pdf").click()
    pdf = browser.wait_download(".pdf")

    import openpyxl
    sheet = openpyxl.load_workbook(xlsx).active
    rows = [[c.value for c in r] for r in sheet.iter_rows(min_row=5)]
    total = next(r for r in rows if r[0] == "total")
    # detected: biz-1 and mule-2; 1 case, 1 freeze requested and approved, 1 handed to police;
    # money stopped = the held payment (26,000,000)
    assert total[2:] == [2, 1, 1, 1, 0, 1, 26_000_000]

    from pypdf import PdfReader
    text = "".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert "báo cáo kết quả" in text and "26,000,000" in text
