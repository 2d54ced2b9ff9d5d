"""The mypyc build of the feature engine runs the same code as its Python source.

``setup.py`` compiles ``features/engine.py`` and ``features/reference.py``; ``features``
uses the compiled build only when it was built from the source on disk.
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
from features import compiled_build_state

ROOT = Path(__file__).resolve().parents[2]

# Replays a small simulated bank and writes its feature matrix and final snapshot.
SCRIPT = """
import sys
import numpy as np
import features
import features.engine
from features.engine import FeatureEngine
from features.reference import ReferenceData
from features.replay import merge_in_order, replay
from training.datadir import from_tables
from training.simulator import SimConfig, simulate

r = from_tables(simulate(SimConfig(accounts=300, days=20, seed=5)))
ref = ReferenceData()
for a in r.accounts:
    ref.add_account(a)
for lb in r.labels:
    ref.add_label(lb)
engine = FeatureEngine(ref)
rows = [v.values for _, v in replay(merge_in_order(r.payments, r.logins), engine=engine)]
np.save(sys.argv[1] + ".npy", np.asarray(rows))
open(sys.argv[1] + ".snap", "wb").write(engine.snapshot())
print(features.ENGINE_BUILD)
"""


def _run(out: Path, pure: bool) -> str:
    env = {**os.environ, "CANHGIAC_PURE_PYTHON": "1" if pure else "0"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    return done.stdout.strip().splitlines()[-1]


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
    assert _run(tmp_path / "py", pure=True) == "python"
    assert _run(tmp_path / "c", pure=False) == "mypyc"
    py, c = np.load(tmp_path / "py.npy"), np.load(tmp_path / "c.npy")
    assert py.shape == c.shape and py.shape[0] > 1000
    assert np.array_equal(py, c, equal_nan=True)
    assert (tmp_path / "py.snap").read_bytes() == (tmp_path / "c.snap").read_bytes()


def test_a_build_from_other_source_is_not_used(tmp_path):
    for name in ("engine", "reference"):
        (tmp_path / f"{name}.py").write_text(f"# {name}\n")
    assert compiled_build_state(tmp_path) == "none"
    (tmp_path / f"engine{_ext_suffixes()[0]}").write_bytes(b"")
    assert compiled_build_state(tmp_path).startswith("stale: features/_compiled.json")
    digests = {f"features/{n}.py": hashlib.sha256((tmp_path / f"{n}.py").read_bytes()).hexdigest()
               for n in ("engine", "reference")}
    (tmp_path / "_compiled.json").write_text(json.dumps(digests))
    assert compiled_build_state(tmp_path) == "current"
    (tmp_path / "engine.py").write_text("# engine, edited\n")
    assert compiled_build_state(tmp_path) == (
        "stale: features/engine.py changed since it was compiled")


def _ext_suffixes() -> list[str]:
    import importlib.machinery

    return importlib.machinery.EXTENSION_SUFFIXES
