"""The app's device-risk signals on an account's payments, in Chromium: a call or a remote-access
app reported (marked), reported absent, and not reported (which the page never shows as "no"),
in Vietnamese and in English."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.browser.test_investigator_flow import _id, _wait, sign_in
from tests.integration.test_api_support import BASE, account, scored

pytestmark = pytest.mark.slow

# event id -> (on_call, remote_access)
STATES = {"s-call": (True, False), "s-remote": (False, True), "s-none": (None, None),
          "s-half": (True, None)}


def _cells(d):
    """Per payment row: (data-on-call, data-remote-access, text, marked texts)."""
    out = {}
    for row in d.find_elements("css selector", "#payments tbody tr"):
        cell = row.find_element("css selector", "td.app-signals")
        out[row.get_attribute("data-event-id")] = (
            cell.get_attribute("data-on-call"), cell.get_attribute("data-remote-access"),
            cell.text, [m.text for m in cell.find_elements("css selector", ".foreign")])
    return out


def test_the_payments_show_the_app_signals_in_three_states(server, browser):
    server.store.upsert_accounts([account("sig-1")])
    server.store.write_scored([
        scored(event_id, "sig-1", 0.6 + 0.05 * i, BASE + timedelta(minutes=i),
               direction="debit", on_call=call, remote_access=remote)
        for i, (event_id, (call, remote)) in enumerate(STATES.items())])
    d = browser.driver
    sign_in(d, server.url, server.keys["nguyen.an"])
    d.get(server.url + "/ui/accounts/sig-1")
    _wait(d, lambda: len(d.find_elements("css selector", "#payments tbody tr")) == 4,
          what="four payments")
    assert "Tín hiệu ứng dụng" in _id(d, "payments").find_element("tag name", "thead").text
    cells = _cells(d)
    flags = {k: (v[0], v[1]) for k, v in cells.items()}
    assert flags == {k: tuple("null" if x is None else str(x).lower() for x in v)
                     for k, v in STATES.items()}
    assert cells["s-call"][2].split("\n") == ["⚠ đang trong cuộc gọi", "không điều khiển từ xa"]
    assert cells["s-call"][3] == ["⚠ đang trong cuộc gọi"]
    assert cells["s-remote"][2].split("\n") == ["không có cuộc gọi",
                                                "⚠ có ứng dụng điều khiển từ xa"]
    assert cells["s-none"][2] == "ứng dụng không báo" and cells["s-none"][3] == []
    assert cells["s-half"][2].split("\n") == ["⚠ đang trong cuộc gọi",
                                              "điều khiển từ xa: không báo"]

    _id(d, "lang").click()  # English
    _wait(d, lambda: "App signals" in _id(d, "payments").text, what="English labels")
    cells = _cells(d)
    assert cells["s-remote"][2].split("\n") == ["no call", "⚠ remote-access app running"]
    assert cells["s-none"][2] == "not reported by the app"
    assert cells["s-half"][2].split("\n") == ["⚠ on a call", "remote access: not reported"]
