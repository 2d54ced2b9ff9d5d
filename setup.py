"""Build hook: compile the feature engine's hot modules with mypyc (the same Python source).

``features/engine.py`` and ``features/reference.py`` are plain, type-checked Python. mypyc turns
them into a C extension that runs the feature engine about 1.5x faster; the Python source stays
the reference and ``features/__init__.py`` falls back to it (with a warning) whenever the
compiled build does not match the source on disk. Set ``CANHGIAC_PURE_PYTHON=1`` at install time
to skip the compilation (no C compiler needed), or at run time to ignore a compiled build.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
COMPILED = ["features/engine.py", "features/reference.py"]  # keep in step with features/__init__


def _ext_modules() -> list:
    manifest = ROOT / "features" / "_compiled.json"
    if os.environ.get("CANHGIAC_PURE_PYTHON") == "1":
        manifest.unlink(missing_ok=True)
        return []
    from mypyc.build import mypycify

    digests = {p: hashlib.sha256((ROOT / p).read_bytes()).hexdigest() for p in COMPILED}
    manifest.write_text(json.dumps(digests, indent=1) + "\n")
    # one shared library inside the package (not a top-level module an editable install misses)
    return mypycify(COMPILED, opt_level="3", group_name="features._native")


setup(ext_modules=_ext_modules())
