"""Browser tests: Debian's Chromium driven by Selenium through /usr/bin/chromedriver, against a
real API (uvicorn on a free port, in a thread) over a real SQLite case store.

Nothing is downloaded: the driver path is given explicitly and Selenium Manager runs offline.
Without Chromium the tests are skipped and the run ends with a loud banner saying how to get it.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CANHGIAC_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CANHGIAC_CHROMEDRIVER", "/usr/bin/chromedriver")
HOW_TO = ("apt-get install -y chromium chromium-driver (Debian/Ubuntu; .ci/run does this), "
          "or point CANHGIAC_CHROMIUM / CANHGIAC_CHROMEDRIVER at a Chromium and its driver")
_skipped: list[str] = []


def missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            return f"no executable {path}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -e '.[dev]')"
    return None


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    reason = missing()
    if reason is None:
        return
    for item in items:
        if "tests/browser" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.skip(reason=f"BROWSER TESTS NOT RUN: {reason}"))
            _skipped.append(item.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _skipped:
        return
    tr = terminalreporter
    tr.write_sep("!", "BROWSER TESTS DID NOT RUN", red=True, bold=True)
    tr.write_line(f"{len(_skipped)} browser tests skipped: {missing()}", red=True, bold=True)
    tr.write_line(f"To run them: {HOW_TO}", red=True, bold=True)


@dataclass
class Server:
    url: str
    store: Any
    keys: dict[str, str] = field(default_factory=dict)


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """The real app (create_app) with a real SQLite store, served by uvicorn in a thread."""
    import uvicorn

    from canhgiac.settings import Settings
    from serving.app import create_app
    from serving.store import CaseStore
    from tests.integration.test_api_support import RecordingPublisher

    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    app = create_app(Settings(data_dir=tmp_path, sla_hours="freeze_requested=0.0003"),
                     store=store, action_publisher=RecordingPublisher())
    sock = _free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    s = Server(f"http://127.0.0.1:{port}", store)
    for name, role in [("nguyen.an", "investigator"), ("tran.binh", "investigator"),
                       ("le.chi", "supervisor"), ("pham.dung", "viewer"), ("admin", "admin")]:
        s.keys[name] = store.create_key(name, role)[1]
    try:
        yield s
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()
        store.close()


@dataclass
class Browser:
    driver: Any
    downloads: Path

    def wait_download(self, suffix: str, timeout: float = 20.0) -> Path:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [p for p in self.downloads.iterdir() if p.name.endswith(suffix)]
            if done:
                return done[0]
            time.sleep(0.1)
        raise AssertionError(f"no *{suffix} downloaded; have "
                             f"{[p.name for p in self.downloads.iterdir()]}")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    profile = tmp_path / "chromium-profile"
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                 "--window-size=1280,900", "--lang=vi"):
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "safebrowsing.enabled": False})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield Browser(driver, downloads)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
