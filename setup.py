"""Build hook: compile the feature engine's hot modules with mypyc (the same Python source).

``features/events.py`` (event types and decoders), ``features/engine.py`` and
``features/reference.py`` are plain, type-checked Python. mypyc turns them into a C extension
that runs the feature engine and the decoders faster; the Python source stays the
reference and ``features/__init__.py`` falls back to it (with a warning) whenever the compiled
build does not match the source on disk. The SHA-256 of the sources a build was made from is
written to ``features/_compiled.json`` only after the extension was built, so a failed build
leaves the previous record (which then no longer matches the source). Set
``CANHGIAC_PURE_PYTHON=1`` at install time to skip the compilation (no C compiler needed), or at
run time to ignore a compiled build.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
# keep in step with features/__init__.py's COMPILED_MODULES
COMPILED = ["features/events.py", "features/devices.py", "features/engine.py",
            "features/reference.py"]
PURE = os.environ.get("CANHGIAC_PURE_PYTHON") == "1"


class BuildExtRecordingSources(build_ext):
    """``build_ext`` that records which sources the extension was built from, once built."""

    def run(self) -> None:
        super().run()
        if PURE:
            return
        digests = {p: hashlib.sha256((ROOT / p).read_bytes()).hexdigest() for p in COMPILED}
        text = json.dumps(digests, indent=1) + "\n"
        targets = [ROOT / "features"] if self.inplace else [Path(self.build_lib) / "features"]
        for folder in targets:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "_compiled.json").write_text(text)


def _ext_modules() -> list:
    if PURE:
        return []
    from mypyc.build import mypycify

    # one shared library inside the package (not a top-level module an editable install misses)
    return mypycify(COMPILED, opt_level="3", group_name="features._native")


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": BuildExtRecordingSources})
