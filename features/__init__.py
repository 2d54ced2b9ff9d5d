"""Streaming features: events, reference data, the feature engine, vectors and replay.

``events``, ``engine`` and ``reference`` are plain Python that the install may also compile
with mypyc (``setup.py``) for speed. A compiled build is used only when it was built from
exactly the source files on disk; otherwise, or when ``CANHGIAC_PURE_PYTHON=1`` is set, the
Python source is loaded instead (with a warning when the build is stale: rebuild with
``make compile``). Both run the same code: ``tests/unit/test_engine_build.py`` checks they give
identical vectors.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# in import order; compiled (or not) together
COMPILED_MODULES = ("events", "devices", "reference", "engine")


def compiled_build_state(here: Path = _HERE) -> str:
    """'none' (no compiled build), 'current', or why the build cannot be used."""
    builds = [
        here / f"{name}{suffix}"
        for name in COMPILED_MODULES
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if (here / f"{name}{suffix}").exists()
    ]
    if not builds:
        return "none"
    try:
        manifest = json.loads((here / "_compiled.json").read_text())
    except (OSError, ValueError):
        return "stale: features/_compiled.json is missing or unreadable"
    for name in COMPILED_MODULES:
        source = here / f"{name}.py"
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        if manifest.get(f"features/{name}.py") != digest:
            return f"stale: features/{name}.py changed since it was compiled"
    return "current"


def load_source_module(name: str) -> object:
    """Execute ``features/<name>.py`` from source and register it as ``features.<name>``."""
    spec = importlib.util.spec_from_file_location(f"features.{name}", _HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_state = compiled_build_state()
if _state == "current" and os.environ.get("CANHGIAC_PURE_PYTHON") != "1":
    ENGINE_BUILD = "mypyc"
else:
    ENGINE_BUILD = "python"
    if _state.startswith("stale"):
        warnings.warn(f"compiled feature engine not used ({_state}); running the Python source. "
                      "Rebuild it with `make compile`.", RuntimeWarning, stacklevel=2)
    if _state != "none":  # shadow the compiled modules with their source
        for _name in COMPILED_MODULES:
            load_source_module(_name)
