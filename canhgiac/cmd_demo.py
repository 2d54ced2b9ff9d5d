"""`canhgiac demo`: not built yet."""

from __future__ import annotations

import argparse
import sys

from canhgiac.settings import Settings

HELP = "demo (not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, settings: Settings) -> int:
    print("canhgiac demo: not built yet", file=sys.stderr)
    return 1
