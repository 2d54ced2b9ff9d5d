"""`canhgiac train --data DIR`: replay the data directory through the feature engine, train the
risk model, evaluate it against the rules baseline on the test window, log the run to MLflow and
register the model as ``canhgiac-risk@challenger``.

Investigators' outcomes: ``--case-store`` adds the decisions recorded in the case store
(``serving.store.CaseStore.labels_from_outcomes()``; default URL: CANHGIAC_CASE_STORE_URL) to
the labels of ``labels.parquet``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from canhgiac.cli import finite_float
from canhgiac.settings import Settings

HELP = "train the risk model on a data directory, compare with the rules baseline, register it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="DIR", required=True,
                        help="data directory (payments/logins/accounts/labels.parquet, "
                             "optional truth.parquet)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed (default: CANHGIAC_SEED, 7)")
    parser.add_argument("--promote", action="store_true",
                        help="run the promotion gate after registering (see 'canhgiac promote')")
    parser.add_argument("--case-store", metavar="URL", nargs="?", const="", default=None,
                        help="also learn from investigators' decisions in the case store "
                             "(URL default: CANHGIAC_CASE_STORE_URL)")
    parser.add_argument("--no-register", action="store_true",
                        help="evaluate only: no MLflow run, no registry version")
    parser.add_argument("--strict", action="store_true",
                        help="refuse the data directory at its first row that breaks the "
                             "contract (default: set such rows aside and train on the rest)")
    parser.add_argument("--max-rejects", type=finite_float, default=0.001, metavar="SHARE",
                        help="largest share of rows that may be set aside (default 0.001)")
    parser.add_argument("--rejects", metavar="FILE", default=None,
                        help="CSV of the rows set aside (default: "
                             "CANHGIAC_DATA_DIR/rejects/train-<time>.csv)")
    g = parser.add_argument_group("time windows (days)")
    g.add_argument("--warmup-days", type=finite_float, default=7.0)
    g.add_argument("--valid-days", type=finite_float, default=14.0)
    g.add_argument("--gap-days", type=finite_float, default=7.0,
                   help="label delay between validation and the training cut-off")
    g.add_argument("--test-days", type=finite_float, default=14.0)
    g.add_argument("--account-label-lookback-days", type=finite_float, default=7.0,
                   help="an account-level label marks the account's payments from this long "
                        "before its confirmation (default 7)")
    m = parser.add_argument_group("model")
    m.add_argument("--review-budget", type=finite_float, default=0.01,
                   help="share of payments sent to review (default 0.01)")
    m.add_argument("--hold-budget", type=finite_float, default=0.001,
                   help="share of payments held (default 0.001)")
    m.add_argument("--anomaly", choices=["auto", "always", "never"], default="auto",
                   help="IsolationForest input: keep if it helps on validation (auto)")
    m.add_argument("--threads", type=int, default=2, help="LightGBM threads (default 2)")
    m.add_argument("--negative-sample", type=finite_float, default=None, metavar="SHARE",
                   help="share of legitimate training payments kept (default: the model's)")


def _case_store_labels(url: str) -> list[Any]:
    """Investigators' outcomes as labels; a clear UsageError when the store is unavailable."""
    from canhgiac.cli import UsageError, first_line, redact_url  # noqa: PLC0415

    try:
        from serving.store import CaseStore  # noqa: PLC0415

        store = CaseStore(url)
        try:
            return list(store.labels_from_outcomes())
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - any failure of the optional source is reported
        raise UsageError(f"--case-store: cannot read investigators' outcomes from "
                         f"{redact_url(url)}: {first_line(exc)}") from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    from canhgiac.cli import UsageError, quiet_import  # noqa: PLC0415

    quiet_import("training.registry")  # without mlflow's notice on stderr
    from models.risk import ModelConfig  # noqa: PLC0415
    from training.datadir import DataDirError  # noqa: PLC0415
    from training.dataset import DatasetError, SplitConfig  # noqa: PLC0415
    from training.registry import RegistryError  # noqa: PLC0415
    from training.train import TrainOptions, train  # noqa: PLC0415

    seed = settings.seed if args.seed is None else args.seed
    for option, value, may_be_zero in (
            ("--warmup-days", args.warmup_days, True), ("--valid-days", args.valid_days, False),
            ("--gap-days", args.gap_days, True), ("--test-days", args.test_days, False),
            ("--account-label-lookback-days", args.account_label_lookback_days, True)):
        if may_be_zero and not value >= 0:
            raise UsageError(f"{option} must be 0 days or more, got {value:g}")
        if not may_be_zero and not value > 0:
            raise UsageError(f"{option} must be more than 0 days, got {value:g}")
    if args.threads < 1:
        raise UsageError(f"--threads must be 1 or more, got {args.threads}")
    try:
        split = SplitConfig(warmup_days=args.warmup_days, valid_days=args.valid_days,
                            gap_days=args.gap_days, test_days=args.test_days,
                            account_label_lookback_days=args.account_label_lookback_days)
        model = ModelConfig(seed=seed, review_budget=args.review_budget,
                            hold_budget=args.hold_budget, anomaly=args.anomaly,
                            num_threads=args.threads)
        if args.negative_sample is not None:
            model = dataclasses.replace(model, negative_sample=args.negative_sample)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    extra = ()
    if args.case_store is not None:
        extra = tuple(_case_store_labels(args.case_store or settings.store_url))
        print(f"investigators' outcomes: {len(extra)} labels from the case store")
    if not 0 <= args.max_rejects <= 1:
        raise UsageError(f"--max-rejects must be a share between 0 and 1, got {args.max_rejects}")
    rejects_path = Path(args.rejects) if args.rejects else (
        settings.data_dir / "rejects" / f"train-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.csv")
    options = TrainOptions(seed=seed, split=split, model=model, register=not args.no_register,
                           promote=args.promote, extra_labels=extra, strict=args.strict,
                           max_reject_share=args.max_rejects, rejects_path=rejects_path)
    try:
        result = train(args.data, settings, options)
    except (DataDirError, DatasetError) as exc:
        if rejects_path.exists():
            print(f"rows set aside: see {rejects_path}", file=sys.stderr)
        raise UsageError(str(exc).splitlines()[0]) from None
    except RegistryError as exc:  # the registry or the champion to compare with
        raise UsageError(f"MLflow registry: {(str(exc).splitlines() or [''])[0]}") from None
    if result.rejects:
        print(f"rejected rows: {len(result.rejects):,} of {result.n_rows:,} broke the contract "
              f"and were set aside (file, row, column, reason in {rejects_path})")

    s = result.dataset.summary
    print(f"data: {s['n_payments']:,} payments; train {s['n_train']:,} "
          f"({s['n_train_positive']} labelled positive), validation {s['n_valid']:,} "
          f"({s['n_valid_positive']}), test {s['n_test']:,} ({s['n_test_positive']} fraudulent, "
          f"from {s['eval_source']})")
    print(f"labels: {s['labels_used']} known at the cut-off {s['windows']['cutoff']}, "
          f"{s['labels_after_cutoff']} confirmed later (not used for training)")
    a = result.model.metadata["anomaly"]
    print(f"anomaly component (IsolationForest): validation AP without "
          f"{_f(a['valid_ap_without'])}, with {_f(a['valid_ap_with'])} -> "
          f"{'kept' if a['kept'] else 'dropped'}")
    review, hold = result.model.thresholds
    print(f"model {result.model.version}: {result.model.metadata['best_iteration']} trees, "
          f"review >= {review:.4f}, hold >= {hold:.4f}")
    print()
    print(result.table)
    print()
    if result.run_id:
        print(f"MLflow run: {result.run_id} ({settings.tracking_uri})")
        print(f"registered {settings.registered_model} version {result.registry_version} "
              f"as @challenger")
    if result.promotion is not None:
        p = result.promotion
        print(("promoted" if p.promoted else "not promoted") + f": {p.reason}")
    sys.stdout.flush()
    return 0


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"
