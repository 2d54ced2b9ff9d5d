"""Browser tests: Debian's Chromium driven by Selenium through /usr/bin/chromedriver, against a
real API (uvicorn on a free port, in a thread) over a real SQLite case store; both are started
by tests/browser/harness.py, which docs/screenshots/take.py shares.

Nothing is downloaded: the driver path is given explicitly and Selenium Manager runs offline.
Without Chromium the tests are skipped and the run ends with a loud banner saying how to get it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import CHROMEDRIVER, CHROMIUM, chromium, create_keys, serve

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


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """The real app (create_app) with a real SQLite store, served by uvicorn in a thread."""
    from serving.store import CaseStore

    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    try:
        with serve(store, tmp_path, sla_hours="freeze_requested=0.0003") as url:
            yield Server(url, store, create_keys(store))
    finally:
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
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with chromium(tmp_path, downloads) as driver:
        yield Browser(driver, downloads)
