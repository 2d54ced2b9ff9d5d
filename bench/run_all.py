"""``make bench``: run every benchmark and rewrite bench/RESULTS.md from what they print.

Each benchmark is a module run in its own process; its ``RESULT`` lines (see bench/common.py)
become rows of the table. Nothing in RESULTS.md is typed by hand.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS = ("simulate", "features", "train", "crossbank", "stream", "restore", "projection",
              "api", "outbox")
RESULTS = Path(__file__).with_name("RESULTS.md")


def machine_facts() -> list[str]:
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import features  # noqa: PLC0415 - after the build check Makefile's `compile` ran

    return [
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- feature engine: {features.ENGINE_BUILD} build (see setup.py)",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GiB",
        f"- python: {platform.python_version()} ({platform.platform()})",
    ]


def run(name: str) -> tuple[list[list[str]], str, float]:
    start = time.monotonic()
    proc = subprocess.run(  # noqa: S603 - our own modules
        [sys.executable, "-m", f"bench.{name}"], capture_output=True, text=True, check=False,
    )
    elapsed = time.monotonic() - start
    rows = parse(proc.stdout)
    sys.stdout.write(proc.stdout)
    note = "" if proc.returncode == 0 else f"exit code {proc.returncode}: {proc.stderr[-500:]}"
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
    return rows, note, elapsed


def parse(output: str) -> list[list[str]]:
    """The RESULT lines of a benchmark's output; informational figures get status ``-``."""
    rows = []
    for line in output.splitlines():
        if line.startswith("RESULT "):
            parts = line.split(None, 5)
            if len(parts) == 6:
                if parts[4] in ("info", "-"):
                    parts[4], parts[5] = "-", "-"
                rows.append(parts[1:])
    return rows


def previous_rows(names: list[str]) -> tuple[list[str], list[str]]:
    """Table rows and run-time notes of benchmarks NOT in ``names``, from the current
    RESULTS.md (a partial run, ``python -m bench.run_all features``, keeps the others)."""
    if not RESULTS.exists():
        return [], []
    rows, notes = [], []
    for line in RESULTS.read_text().splitlines():
        if line.startswith("| ") and not line.startswith(("| benchmark", "|---")):
            if line.split("|")[1].strip() not in names:
                rows.append(line)
        elif line.startswith("- bench."):
            if line[len("- bench."):].split(":")[0] not in names:
                notes.append(line + (" (earlier run)" if "earlier run" not in line else ""))
    return rows, notes


def main() -> int:
    only = sys.argv[1:] or list(BENCHMARKS)
    table = ["| benchmark | figure | measured | target | status |", "|---|---|---|---|---|"]
    notes = []
    kept_rows, kept_notes = previous_rows(only) if sys.argv[1:] else ([], [])
    for name in only:
        print(f"== bench.{name}", flush=True)
        rows, note, elapsed = run(name)
        for bench, figure, measured, target, status in rows:
            table.append(f"| {bench} | {figure} | {measured} | {target} | {status} |")
        if not rows:
            table.append(f"| {name} | (no figures) | - | - | not met |")
        notes.append(f"- bench.{name}: {elapsed:.0f} s" + (f" — {note}" if note else ""))
    table += kept_rows
    notes += kept_notes
    text = "\n".join([
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench.run_all`) from the benchmarks' own output.",
        "",
        *machine_facts(),
        "",
        *table,
        "",
        "Run times:",
        *notes,
        "",
    ])
    RESULTS.write_text(text)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
