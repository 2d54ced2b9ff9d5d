"""`canhgiac simulate`: not built yet."""

from __future__ import annotations

import argparse
import sys

from canhgiac.settings import Settings

HELP = "simulate (not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, settings: Settings) -> int:
    print("canhgiac simulate: not built yet", file=sys.stderr)
    return 1
