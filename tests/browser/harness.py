"""The browser tests' real server and real Chromium, as plain context managers, so that the
fixtures in conftest.py and docs/screenshots/take.py start them the same way.

:func:`serve` runs the real app (``create_app``) over a given case store with uvicorn in a
thread on a free port; :func:`chromium` starts Debian's headless Chromium through
/usr/bin/chromedriver with Selenium Manager offline (nothing is downloaded)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("CANHGIAC_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CANHGIAC_CHROMEDRIVER", "/usr/bin/chromedriver")
# the people of the browser tests and the screenshots: name -> role
USERS = {"nguyen.an": "investigator", "tran.binh": "investigator", "le.chi": "supervisor",
         "pham.dung": "viewer", "admin": "admin"}


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def create_keys(store: Any) -> dict[str, str]:
    """One API key per person of :data:`USERS`; name -> key."""
    return {name: store.create_key(name, role)[1] for name, role in USERS.items()}


@contextmanager
def serve(store: Any, data_dir: Path, **settings: Any) -> Iterator[str]:
    """The real app over ``store``, served by uvicorn in a thread; yields its base URL."""
    import uvicorn

    from canhgiac.settings import Settings
    from serving.app import create_app
    from tests.integration.test_api_support import RecordingPublisher

    app = create_app(Settings(data_dir=data_dir, **settings), store=store,
                     action_publisher=RecordingPublisher())
    sock = _free_socket()
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not srv.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def chromium(tmp: Path, downloads: Path | None = None,
             size: tuple[int, int] = (1280, 900)) -> Iterator[Any]:
    """Headless Chromium (a Selenium driver) with a fresh profile under ``tmp``, Vietnamese
    first, a window of ``size`` pixels; files it downloads land in ``downloads``."""
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tmp / "chromium-profile"
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                 f"--window-size={size[0]},{size[1]}", "--lang=vi"):
        opts.add_argument(flag)
    prefs: dict[str, Any] = {"safebrowsing.enabled": False}
    if downloads is not None:
        prefs.update({"download.default_directory": str(downloads),
                      "download.prompt_for_download": False})
    opts.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver: Any, predicate: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something true; fail with the browser's console."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - the element may not be there yet
            last = exc
        time.sleep(0.1)
    logs = driver.get_log("browser")
    raise AssertionError(f"timed out waiting for {what}; last error {last!r}; console {logs}")


def by_id(driver: Any, element_id: str) -> Any:
    return wait(driver, lambda: driver.find_element("id", element_id), what=f"#{element_id}")


def sign_in(driver: Any, url: str, key: str) -> None:
    driver.get(url + "/ui/")
    by_id(driver, "login-key").send_keys(key + "\n")  # Enter submits
    by_id(driver, "me")
