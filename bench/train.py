"""Training benchmark: simulator output of 10,000 accounts × 90 days → `training.train.train`.

Run: ``python -m bench.train [--accounts 10000 --days 90]``.

Figures: wall time of dataset build (read the data directory + replay through the feature
engine) + training + evaluation (target: under 5 minutes on 2 cores); batch scoring rate of the
trained model (target: >= 100,000 payments/s); and the issue's done-criterion, the model against
the rules baseline on the test window (average precision, recall at the 0.5 % budget).
MLflow logging/registration time is reported separately (not part of the target).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import emit
from canhgiac.logs import configure_logging
from canhgiac.settings import Settings
from training.datadir import write_dir
from training.simulator import SimConfig, simulate
from training.train import TrainOptions, score_throughput, train

OUT = Path(__file__).with_name("out") / "train.json"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    configure_logging("WARNING")
    logging.getLogger("mlflow").setLevel(logging.ERROR)

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp_name:
        tmp = Path(tmp_name)
        start = time.perf_counter()
        sim = simulate(SimConfig(accounts=args.accounts, days=args.days, seed=args.seed))
        data_dir = write_dir(sim, tmp / "data")
        del sim
        sim_s = time.perf_counter() - start
        settings = Settings(data_dir=tmp / "state")
        result = train(data_dir, settings, TrainOptions(seed=args.seed))
        t = result.timings
        wall = t["read_s"] + t["dataset_s"] + t["fit_s"] + t["evaluate_s"]
        results.append(emit("train", "dataset_train_evaluate_s", round(wall, 1), "<=300",
                            wall <= 300))
        X = result.dataset.test.X
        X = np.tile(X, (max(1, -(-200_000 // X.shape[0])), 1))[:200_000]
        rate = score_throughput(result.model, X)
        results.append(emit("train", "batch_score_payments_per_s", int(rate), ">=100000",
                            rate >= 100_000))
        m = result.metrics
        for name in ("average_precision", "recall_at_budget_0_5pct"):
            model, base = m[f"test_{name}"], m[f"baseline_test_{name}"]
            results.append(emit("train", f"test_{name}", round(model, 4),
                                f">baseline({base:.4f})", model > base))
        summary = result.dataset.summary

    print(result.table)
    print(f"timings (s): simulate+write {sim_s:.1f}, " + ", ".join(
        f"{k} {v:.1f}" for k, v in result.timings.items()))
    print(f"payments {summary['n_payments']:,}: train {summary['n_train']:,}, "
          f"validation {summary['n_valid']:,}, test {summary['n_test']:,}")
    anomaly = result.model.metadata["anomaly"]
    print(f"anomaly component: validation AP without {anomaly['valid_ap_without']}, with "
          f"{anomaly['valid_ap_with']}, kept {anomaly['kept']}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "results": results,
        "config": vars(args),
        "timings_s": {"simulate_write": sim_s, **result.timings},
        "dataset": {k: v for k, v in summary.items() if k != "windows"},
        "windows": summary["windows"],
        "anomaly": anomaly,
        "best_iteration": result.model.metadata["best_iteration"],
        "metrics": result.metrics,
        "table": result.table,
    }, indent=2, default=str))


if __name__ == "__main__":
    main()
