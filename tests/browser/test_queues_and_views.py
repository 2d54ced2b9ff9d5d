"""Queues and the list in Chromium: bulk assignment and bulk closing of false positives, the
maker-checker notice, a viewer who cannot decide, English labels, and a 900 px window."""

from __future__ import annotations

import pytest

from tests.browser.seed import seed_ring
from tests.browser.test_investigator_flow import _id, _wait, move, sign_in

pytestmark = pytest.mark.slow


def _rows(d):
    return d.find_elements("css selector", "#queue tbody tr")


def test_bulk_assign_and_close_false_positives(server, browser):
    seed_ring(server.store)
    ids = [server.store.create_case(a, "tran.binh", "investigator", "auto")["case_id"]
           for a in ("biz-1", "mule-2", "mule-3")]
    d = browser.driver
    sign_in(d, server.url, server.keys["nguyen.an"])
    d.get(server.url + "/ui/queues/unassigned")
    _wait(d, lambda: len(_rows(d)) == 3, what="three unassigned cases")
    for box in d.find_elements("css selector", "#queue input.pick")[:2]:
        box.click()
    _id(d, "bulk-assign-submit").click()  # to me (the default choice)
    _wait(d, lambda: len(_rows(d)) == 1, what="two cases assigned")
    _id(d, "queue-mine").click()
    _wait(d, lambda: {r.get_attribute("data-case-id") for r in _rows(d)}
          == {str(i) for i in ids[:2]}, what="my two cases")
    _id(d, "select-all").click()
    _id(d, "bulk-note").send_keys("khách quen, giao dịch học phí\n")  # Enter submits
    _wait(d, lambda: not _rows(d), what="my cases closed")
    for case_id in ids[:2]:
        case = server.store.get_case(case_id)
        assert (case["status"], case["outcome"]) == ("closed", "false_positive")
        assert case["history"][-1]["actor"] == "nguyen.an"
        assert case["history"][-1]["reason"] == "khách quen, giao dịch học phí"
    assert server.store.get_case(ids[2])["status"] == "open"


def test_maker_checker_notice_and_a_viewer_reads_only(server, browser):
    seed_ring(server.store)
    d = browser.driver
    sign_in(d, server.url, server.keys["le.chi"])  # a supervisor may also request a freeze
    d.get(server.url + "/ui/accounts/mule-2")
    _id(d, "open-case-note").send_keys("chuyển tiếp tiền\n")
    _wait(d, lambda: d.find_element("id", "active-case").get_attribute("data-status") == "open",
          what="case opened")
    move(d, "under_review", "xem")
    move(d, "freeze_requested", "đề nghị")
    assert "người thứ hai" in _id(d, "maker-checker").text
    options = [o.get_attribute("value") for o in
               d.find_elements("css selector", "#move-to option")]
    assert options == ["under_review"]  # may reject, may not approve their own request
    _id(d, "sign-out").click()
    sign_in(d, server.url, server.keys["pham.dung"])  # viewer
    d.get(server.url + "/ui/accounts/mule-2")
    _wait(d, lambda: "freeze_requested" == d.find_element("id", "active-case")
          .get_attribute("data-status"), what="case shown")
    assert not d.find_elements("id", "move-case") and not d.find_elements("id", "take-case")
    d.get(server.url + "/ui/accounts/biz-1")
    _id(d, "case-panel")
    assert not d.find_elements("id", "open-case")


def test_english_labels_and_a_900px_window(server, browser):
    seed_ring(server.store)
    d = browser.driver
    d.set_window_size(900, 800)
    sign_in(d, server.url, server.keys["nguyen.an"])
    _wait(d, lambda: len(d.find_elements("css selector", "#accounts tbody tr")) == 2,
          what="the list")
    _id(d, "lang").click()  # to English; the choice is remembered
    _wait(d, lambda: "2 shown" in d.find_element("id", "counts").text, what="English labels")
    _wait(d, lambda: "HOLD" in d.find_element("css selector", "#accounts tbody tr").text,
          what="the hold badge in English")
    assert d.find_element("id", "nav-queues").text == "Queues"
    # nothing is wider than the window but the table, which scrolls in its own box
    width = d.execute_script("return document.documentElement.scrollWidth")
    assert width <= 900, width
    header = d.find_element("tag name", "header").rect
    assert header["height"] < 90, header  # the header fits in at most two short rows
    # the filters: Enter in the score box submits, and the address keeps the filter
    box = _id(d, "min-score")
    box.clear()
    box.send_keys("0.8\n")
    _wait(d, lambda: "min_score=0.8" in d.current_url, what="filter in the address")
    _wait(d, lambda: [r.text.split()[0] for r in
                      d.find_elements("css selector", "#accounts tbody tr")] == ["biz-1"],
          what="one account at 0.8")
    d.refresh()
    _wait(d, lambda: _id(d, "min-score").get_attribute("value") == "0.8", what="deep link")
    from selenium.webdriver.support.ui import Select
    Select(d.find_element("css selector", "#filters select[name=case_status]")).select_by_value(
        "none")
    _id(d, "apply").click()
    _wait(d, lambda: "case_status=none" in d.current_url and "min_score=0.8" in d.current_url,
          what="both filters in the address")
    _wait(d, lambda: [r.text.split()[0] for r in
                      d.find_elements("css selector", "#accounts tbody tr")] == ["biz-1"],
          what="biz-1 has no case")
    # the compact reason shows the full text on hover (title) and expands on click
    cell = d.find_element("css selector", "#accounts .reason-line")
    assert "\n" in cell.get_attribute("title")
    cell.click()
    _wait(d, lambda: len(d.find_elements("css selector", "#accounts ul.reasons li")) == 2,
          what="the reason expanded into its two lines")
