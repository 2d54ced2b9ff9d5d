"""What every benchmark prints: one ``RESULT`` line per figure, parsed by ``bench.run_all``."""

from __future__ import annotations

from typing import Any


def emit(bench: str, figure: str, measured: float | int, target: str, met: bool) -> dict[str, Any]:
    """Print ``RESULT <bench> <figure> <measured> <target> <met|not met>`` and return it."""
    status = "met" if met else "not met"
    print(f"RESULT {bench} {figure} {measured} {target} {status}", flush=True)
    return {"bench": bench, "figure": figure, "measured": measured, "target": target,
            "status": status}
