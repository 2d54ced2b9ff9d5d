"""`canhgiac promote`: move ``canhgiac-risk@champion`` to the challenger if it beats the champion
by CANHGIAC_PROMOTE_MARGIN in average precision on the challenger's test window (both models
re-scored on it). ``--force --reason TEXT`` skips the gate; the reason is recorded as a tag.
Exit code 0 when promoted, 1 when the gate refused.
"""

from __future__ import annotations

import argparse
import math

from canhgiac.cli import finite_float
from canhgiac.settings import Settings

HELP = "promote the challenger model to champion if it beats the champion (or --force)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="skip the gate (needs --reason)")
    parser.add_argument("--reason", metavar="TEXT", default=None,
                        help="why the gate is skipped (recorded on the model version)")
    parser.add_argument("--margin", type=finite_float, default=None,
                        help="minimum gain in test AP (default: CANHGIAC_PROMOTE_MARGIN)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from canhgiac.cli import UsageError  # noqa: PLC0415

    if args.force and not (args.reason and args.reason.strip()):
        raise UsageError("--force needs --reason TEXT (it is recorded on the model version)")
    if args.reason and not args.force:
        raise UsageError("--reason only goes with --force")
    if args.margin is not None and not 0 <= args.margin < math.inf:
        raise UsageError("--margin must be a number >= 0")
    from canhgiac.cli import first_line, quiet_import, redact_url  # noqa: PLC0415

    quiet_import("training.registry")
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    from training.registry import RegistryError, promote  # noqa: PLC0415

    try:
        result = promote(settings, args.margin, args.reason.strip() if args.force else None)
    except RegistryError as exc:
        raise UsageError(str(exc)) from None
    except (MlflowException, OSError) as exc:  # the tracking store cannot be opened or read
        setting = ("CANHGIAC_MLFLOW_TRACKING_URI" if settings.mlflow_tracking_uri
                   else "CANHGIAC_DATA_DIR")
        raise UsageError(f"MLflow at {redact_url(settings.tracking_uri)}: {first_line(exc)}; "
                         f"check {setting} (a database URI such as "
                         "sqlite:////absolute/path/mlflow.db, or http(s)://tracking-server)"
                         ) from None
    before = result.champion_before or "none"
    if result.promoted:
        print(f"promoted {settings.registered_model} version {result.challenger} to @champion "
              f"(was {before}): {result.reason}")
        return 0
    print(f"not promoted: {settings.registered_model} version {result.challenger} stays "
          f"@challenger, champion stays {before}: {result.reason}")
    return 1
