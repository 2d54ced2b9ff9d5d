"""Retake the README's screenshots (docs/screenshots/*.png) from the demo bank.

    PYTHONPATH=. .venv/bin/python docs/screenshots/take.py [--out DIR]

Seeds a fresh SQLite case store with the demo bank (demo_bank.py), serves the real app and
drives Debian's headless Chromium with the browser tests' own harness (tests/browser/harness.py),
as the people of the browser tests. The cases are opened and moved through the HTTP API, as the
page does, on a fixed clock (time-machine moves the process's wall clock to the demo's fixed
times), and every picture has a fixed viewport, so a rerun gives the same pictures.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import time_machine
from demo_bank import NOW, Cast, seed_demo

from serving.store import CaseStore
from tests.browser.harness import (
    CHROMEDRIVER,
    CHROMIUM,
    by_id,
    chromium,
    create_keys,
    serve,
    sign_in,
    wait,
)

log = logging.getLogger("screenshots")
HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT = 1280, 900  # the viewport of every picture but the narrow list (900 wide)


class Shots:
    """One Chromium with a fixed viewport, writing PNGs into ``out``."""

    def __init__(self, driver: Any, url: str, keys: dict[str, str], out: Path) -> None:
        self.d, self.url, self.keys, self.out = driver, url, keys, out

    def viewport(self, width: int, height: int) -> None:
        self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def go(self, path: str, ready: Callable[[], Any], what: str) -> None:
        self.d.get(self.url + path)
        wait(self.d, ready, what=what)

    def rows(self, css: str) -> list[Any]:
        return self.d.find_elements("css selector", css)

    def take(self, name: str) -> None:
        # let charts and the network layout finish animating, and the caret stop blinking out
        self.d.execute_script("document.activeElement && document.activeElement.blur()")
        time.sleep(1.5)
        path = self.out / name
        self.d.save_screenshot(str(path))
        log.info("wrote %s", path)

    def sign_in(self, who: str) -> None:
        self.d.get(self.url + "/ui/")
        self.d.execute_script("sessionStorage.clear(); localStorage.clear()")
        sign_in(self.d, self.url, self.keys[who])


def open_the_cases(url: str, keys: dict[str, str], cast: Cast,
                   clock: time_machine.Coordinates) -> None:
    """The morning's work before the pictures, through the API as the page does it, each step at
    its fixed time: a case on the mule moved up to a freeze request, one on the business."""
    def at(hhmmss: str) -> None:
        h, m, s = (int(x) for x in hhmmss.split(":"))
        day = NOW.replace(hour=0, minute=0, second=0) + timedelta(hours=-7)  # local midnight
        clock.move_to(day + timedelta(hours=h, minutes=m, seconds=s))

    def post(who: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = httpx.post(url + path, json=body, headers={"Authorization": f"Bearer {keys[who]}"})
        r.raise_for_status()
        return dict(r.json())

    at("08:47:12")
    biz = post("tran.binh", "/v1/cases", {"account_id": cast.business,
                                          "reason": "DN mới, đăng nhập từ Campuchia"})
    post("tran.binh", "/v1/cases/assignment", {"case_ids": [biz["case_id"]],
                                               "assignee": "tran.binh"})
    at("09:12:04")
    case = post("nguyen.an", "/v1/cases", {
        "account_id": cast.mule, "reason": "nhiều người lạ chuyển vào rồi chuyển đi ngay"})
    case_id = case["case_id"]
    post("nguyen.an", "/v1/cases/assignment", {"case_ids": [case_id], "assignee": "nguyen.an"})
    at("09:31:40")
    post("nguyen.an", f"/v1/cases/{case_id}/transitions",
         {"to": "under_review", "reason": "xem sao kê 7 ngày: 5 người gửi trong 41 phút"})
    at("09:44:10")
    post("nguyen.an", f"/v1/cases/{case_id}/transitions",
         {"to": "freeze_requested", "reason": "đề nghị phong tỏa: chuyển tiếp cho tài khoản la "
          + cast.second_mule})


def take_all(s: Shots, cast: Cast) -> None:
    s.viewport(WIDTH, HEIGHT)
    s.go("/ui/", lambda: s.d.find_element("id", "login-key"), "the sign-in form")
    s.take("00-sign-in.png")

    s.sign_in("nguyen.an")
    s.go("/ui/", lambda: len(s.rows("#accounts tbody tr")) > 5, "the list at the threshold")
    s.take("01-list.png")

    s.go(f"/ui/accounts/{cast.mule}", lambda: s.rows("#payments td.app-signals")
         and s.d.find_element("id", "timeline-chart"), "the account page")
    s.take("02-account.png")

    s.go(f"/ui/accounts/{cast.mule}/network", lambda: s.d.execute_script(
        "return window.cgNetwork && window.cgNetwork.nodes().length"), "the network")
    s.take("03-network.png")

    s.sign_in("le.chi")
    s.go("/ui/queues/approval", lambda: s.rows("#queue tbody tr[data-case-id]"),
         "the approval queue")
    s.take("04-approval-queue.png")

    s.go(f"/ui/accounts/{cast.mule}", lambda: s.d.find_element("id", "move-to"),
         "the decision form")
    from selenium.webdriver.support.ui import Select
    Select(by_id(s.d, "move-to")).select_by_value("frozen")
    by_id(s.d, "move-note").send_keys("đồng ý phong tỏa, báo công an tỉnh")
    s.take("05-case-decision.png")

    s.go("/ui/model", lambda: s.d.find_element("id", "histogram"), "the model page")
    s.take("06-model.png")

    s.go("/ui/", lambda: s.rows("#accounts tbody tr"), "the list")
    by_id(s.d, "view-9a").click()
    wait(s.d, lambda: "foreign_login=true" in s.d.current_url
         and s.rows("#accounts tbody tr"), what="item 9a")
    s.take("07-item-9a.png")

    s.viewport(900, HEIGHT)
    s.go("/ui/", lambda: len(s.rows("#accounts tbody tr")) > 5, "the list")
    s.take("08-list-900px.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where to write the PNGs")
    args = parser.parse_args()
    for program in (CHROMIUM, CHROMEDRIVER):
        if not Path(program).is_file():
            parser.error(f"no {program}: apt-get install -y chromium chromium-driver, or set "
                         "CANHGIAC_CHROMIUM / CANHGIAC_CHROMEDRIVER")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="canhgiac-shots-") as tmp_name, \
            time_machine.travel(NOW - timedelta(hours=2), tick=True) as clock:
        tmp = Path(tmp_name)
        store = CaseStore(f"sqlite:///{tmp / 'cases.db'}")
        try:
            cast = seed_demo(store)
            keys = create_keys(store)
            with serve(store, tmp) as url:
                open_the_cases(url, keys, cast, clock)
                clock.move_to(NOW)
                with chromium(tmp) as driver:
                    take_all(Shots(driver, url, keys, args.out), cast)
        finally:
            store.close()
    log.info("screenshots in %s", args.out)


if __name__ == "__main__":
    main()
