"""`canhgiac demo` as an operator runs it, at the smallest size it accepts: ``--metrics-port``
reaches the scorer, Ctrl-C (SIGINT to the demo alone) stops every process it started and exits
0 without a traceback; a second run on a metrics port another process holds says so in one
line of the scorer's log and scores every live payment."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from streaming.broker import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

SMALL = ["--accounts", "200", "--history-days", "40", "--warm-days", "1"]


class Demo:
    """A `canhgiac demo` process whose output is collected as it comes (the progress line
    ends in ``\\r``, not a newline)."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        prod = tmp_path / "production"  # the operator's own settings: never used by the demo
        env = {**os.environ, "CANHGIAC_DATA_DIR": str(prod), "CANHGIAC_METRICS_PORT": "0"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "canhgiac.cli", "demo", "--data-dir",
             str(tmp_path / "state"), *SMALL, *args],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        self._chunks: list[bytes] = []
        self._copy = (tmp_path / f"demo-{self.proc.pid}.out").open("wb")  # all of it, kept
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self._copy:
            while chunk := os.read(self.proc.stdout.fileno(), 65536):
                self._chunks.append(chunk)
                self._copy.write(chunk)

    @property
    def out(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.out:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the demo never said {text!r}:\n{self.out[-4000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the demo and everything under it (after a failure)."""
        if self.proc.poll() is None:
            stray = descendants(self.proc.pid)
            self.proc.kill()
            self.proc.wait(timeout=10)
            kill_all(stray)

    def finish(self, timeout_s: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the demo did not exit within {timeout_s:.0f} s:\n{self.out[-4000:]}")
        self._reader.join(timeout=10)
        return code


def descendants(pid: int) -> dict[int, str]:
    """Every process under ``pid`` (children, their children...), with its command line."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: dict[int, str] = {}
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        try:
            found[p] = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        todo.extend(children.get(p, []))
    return found


def alive(pid: int, cmdline: str) -> bool:
    """Whether that very process still runs (not a zombie, not a new process on its pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        now = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and now == cmdline


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:  # noqa: S310
            return b"canhgiac_scorer_events" in resp.read()
    except OSError:
        return False


def around(text: str, needle: str = "Traceback") -> str:
    """The text around the first ``needle`` (the end of the text when absent)."""
    at = text.find(needle)
    return text[-3000:] if at < 0 else text[max(0, at - 1500):at + 3000]


def kill_all(procs: dict[int, str]) -> None:
    for pid, cmd in procs.items():
        if alive(pid, cmd):
            os.kill(pid, signal.SIGKILL)


def test_demo_metrics_port_ctrl_c_and_a_taken_port(tmp_path):
    metrics_port, api_port = free_port(), free_port()
    demo = Demo(tmp_path, "--api-port", str(api_port), "--metrics-port", str(metrics_port))
    children: dict[int, str] = {}
    try:
        demo.wait_for("investigator API on", 600)  # simulated, trained, all three started
        deadline = time.monotonic() + 60
        while not answers(metrics_port) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert answers(metrics_port), demo.out[-3000:]  # --metrics-port reached the scorer
        demo.wait_for("warming the scorer", 60)
        children = descendants(demo.proc.pid)
        names = " | ".join(children.values())
        assert "tansu" in names or "broker" in names, names
        assert " score" in names and " serve" in names, names
        demo.proc.send_signal(signal.SIGINT)  # Ctrl-C, to the demo alone
        code = demo.finish(90)
    finally:
        if demo.proc.poll() is None:  # a failure above: leave no process behind
            children |= descendants(demo.proc.pid)
            demo.proc.kill()
            demo.proc.wait(timeout=10)
        leftover = {p: c for p, c in children.items() if alive(p, c)}
        kill_all(leftover)
    out = demo.out
    assert code == 0, out[-3000:]
    assert "[demo] stopping" in out and "every process stopped" in out, out[-3000:]
    assert "Traceback" not in out, around(out)
    assert not leftover, leftover
    assert not answers(metrics_port)

    # Again (the simulation and the model are reused): the metrics port is held by another
    # process. The scorer says so once and scores on; the demo runs to its end.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        again = Demo(tmp_path, "--api-port", str(free_port()), "--metrics-port", str(taken),
                     "--duration", "5")
        try:
            code = again.finish(300)
        finally:
            again.kill()
    out = again.out
    assert code == 0, out[-3000:]
    assert "reusing the trained champion model" in out
    scored = re.search(r"payments scored\s+([\d,]+) of ([\d,]+)", out)
    assert scored and scored.group(1) == scored.group(2) != "0", out[-3000:]
    assert "Traceback" not in out, around(out)
    scorer_log = (tmp_path / "state" / "demo" / "scorer.log").read_text()
    lines = [ln for ln in scorer_log.splitlines() if f":{taken} not available" in ln]
    assert len(lines) == 1 and "CANHGIAC_METRICS_PORT" in lines[0], scorer_log[-3000:]
    assert "Traceback" not in scorer_log, around(scorer_log)
