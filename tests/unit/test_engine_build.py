"""The mypyc build of the feature engine runs the same code as its Python source.

``setup.py`` compiles ``features/events.py``, ``devices.py``, ``engine.py`` and ``reference.py``;
``features`` uses the compiled build only when it was built from the source on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import features
import features.engine
from features import COMPILED_MODULES, compiled_build_state

ROOT = Path(__file__).resolve().parents[2]

# Replays a small simulated bank for 45 days (30-day eviction and retention deletion happen),
# with some events delivered out of order (rebuilds, too-late refusals) and some twice
# (duplicates), restoring from a snapshot half way; writes the feature matrix, the final
# snapshot and the engine's counters.
SCRIPT = """
import json, sys
import numpy as np
import features
from features.engine import FeatureEngine
from features.replay import merge_in_order, reference_for, replay
from training.datadir import from_tables
from training.simulator import SimConfig, simulate

r = from_tables(simulate(SimConfig(accounts=300, days=45, seed=5)))
ref = reference_for(r.accounts, r.labels, r.payments, r.watchlist)
events = merge_in_order(r.payments, r.logins)
for i in range(0, len(events) - 1, 97):
    events[i], events[i + 1] = events[i + 1], events[i]
for i in range(len(events) - 10, 0, -211):
    events.insert(i + 5, events[i])
half = len(events) // 2
engine = FeatureEngine(ref)
rows = [v.values for _, v in replay(events[:half], engine=engine)]
engine = FeatureEngine.restore(engine.snapshot(), ref)
rows += [v.values for _, v in replay(events[half:], engine=engine)]
np.save(sys.argv[1] + ".npy", np.asarray(rows))
open(sys.argv[1] + ".snap", "wb").write(engine.snapshot())
print(json.dumps(engine.stats.as_dict()))
print(features.ENGINE_BUILD)
"""


def _run(out: Path, pure: bool) -> tuple[str, dict[str, int]]:
    env = {**os.environ, "CANHGIAC_PURE_PYTHON": "1" if pure else "0"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    *_, stats, build = done.stdout.strip().splitlines()
    return build, json.loads(stats)


def test_the_compiled_build_is_current_and_used():
    """`make install` / `make compile` build it; a stale or missing build would silently cost
    the engine its speed, so the suite says so (skip with CANHGIAC_PURE_PYTHON=1)."""
    if os.environ.get("CANHGIAC_PURE_PYTHON") == "1":
        pytest.skip("pure Python requested")
    assert compiled_build_state() == "current"
    assert features.ENGINE_BUILD == "mypyc"
    assert features.engine.__file__.endswith(tuple(_ext_suffixes()))


def test_python_source_and_compiled_build_give_identical_vectors_and_snapshots(tmp_path):
    if compiled_build_state() != "current":
        pytest.skip("no compiled build to compare with")
    py_build, py_stats = _run(tmp_path / "py", pure=True)
    c_build, c_stats = _run(tmp_path / "c", pure=False)
    assert (py_build, c_build) == ("python", "mypyc")
    assert py_stats == c_stats
    assert min(c_stats["reordered"], c_stats["duplicates"], c_stats["too_late"]) > 0, c_stats
    py, c = np.load(tmp_path / "py.npy"), np.load(tmp_path / "c.npy")
    assert py.shape == c.shape and py.shape[0] > 1000
    assert np.array_equal(py, c, equal_nan=True)
    assert (tmp_path / "py.snap").read_bytes() == (tmp_path / "c.snap").read_bytes()


def test_the_oracle_tests_pass_on_the_python_source_too():
    """The suite's own run uses the compiled build; the Python source must pass them as well."""
    if compiled_build_state() != "current":
        pytest.skip("the suite already runs the Python source")
    env = {**os.environ, "CANHGIAC_PURE_PYTHON": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/unit/test_features_oracle.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_a_build_from_other_source_is_not_used(tmp_path):
    for name in COMPILED_MODULES:
        (tmp_path / f"{name}.py").write_text(f"# {name}\n")
    assert compiled_build_state(tmp_path) == "none"
    (tmp_path / f"engine{_ext_suffixes()[0]}").write_bytes(b"")
    assert compiled_build_state(tmp_path).startswith("stale: features/_compiled.json")
    digests = {f"features/{n}.py": hashlib.sha256((tmp_path / f"{n}.py").read_bytes()).hexdigest()
               for n in COMPILED_MODULES}
    (tmp_path / "_compiled.json").write_text(json.dumps(digests))
    assert compiled_build_state(tmp_path) == "current"
    (tmp_path / "engine.py").write_text("# engine, edited\n")
    assert compiled_build_state(tmp_path) == (
        "stale: features/engine.py changed since it was compiled")


def _ext_suffixes() -> list[str]:
    import importlib.machinery

    return importlib.machinery.EXTENSION_SUFFIXES
