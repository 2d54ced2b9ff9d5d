"""Benchmark of the bank simulator (issue 2): 10,000 accounts over 90 days.

Measures the wall time of ``simulate`` plus writing the Parquet directory, the payments
generated per second, the peak resident memory (``resource.getrusage``), and then the time
reading it back as typed events takes: the payments file alone (target: under a minute) and the
whole directory with ``read_dir``.

Run: ``.venv/bin/python -m bench.simulate [--accounts N] [--days D] [--no-read]``.
Prints ``RESULT simulate <figure> <measured> <target> <met|not met>`` lines and writes them to
``bench/out/simulate.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from training.datadir import read_dir, read_events, write_dir
from training.simulator import SimConfig, simulate

OUT = Path(__file__).parent / "out"


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return round(kb / 1024 if sys.platform != "darwin" else kb / 1024 / 1024, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-read", action="store_true", help="skip the read_dir measurement")
    args = parser.parse_args(argv)
    cfg = SimConfig(accounts=args.accounts, days=args.days, seed=args.seed)

    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = simulate(cfg)
    sim_s = time.perf_counter() - wall0
    with tempfile.TemporaryDirectory(prefix="canhgiac-bench-") as tmp:
        write_dir(result, Path(tmp) / "data")
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        rss = peak_rss_mb()
        summary = result.summary()
        payments = summary["payments"]
        del result
        read_s = read_pay_s = None
        if not args.no_read:
            r0, c0 = time.perf_counter(), time.process_time()
            events = read_events(Path(tmp) / "data", "payments")
            read_pay_s = time.perf_counter() - r0
            read_pay_cpu = time.process_time() - c0
            assert len(events) == payments
            del events
            r0 = time.perf_counter()
            data = read_dir(Path(tmp) / "data")
            read_s = time.perf_counter() - r0
            assert len(data.payments) == payments
            del data
    results = [
        ("wall_seconds", round(wall, 1), "<=120", wall <= 120),
        ("cpu_seconds", round(cpu, 1), "-", None),
        ("simulate_seconds", round(sim_s, 1), "-", None),
        ("payments", payments, "1000000..2000000", 1_000_000 <= payments <= 2_000_000),
        ("payments_per_s", round(payments / wall), "-", None),
        ("logins", summary["logins"], "-", None),
        ("fraud_rate", round(summary["fraud_rate"], 5), "0.001..0.01",
         0.001 <= summary["fraud_rate"] <= 0.01),
        ("peak_rss_mb", rss, "<=2048", rss <= 2048),
    ]
    if read_s is not None and read_pay_s is not None:
        results.append(("read_payments_seconds", round(read_pay_s, 1), "<=60",
                        read_pay_s <= 60))
        results.append(("read_payments_cpu_seconds", round(read_pay_cpu, 1), "-", None))
        results.append(("read_dir_seconds", round(read_s, 1), "-", None))
        results.append(("read_peak_rss_mb", peak_rss_mb(), "-", None))
    rows = []
    for name, value, target, ok in results:
        verdict = "-" if ok is None else ("met" if ok else "not met")
        print(f"RESULT simulate {name} {value} {target} {verdict}")
        rows.append({"figure": name, "measured": value, "target": target, "verdict": verdict})
    OUT.mkdir(exist_ok=True)
    (OUT / "simulate.json").write_text(json.dumps({
        "accounts": cfg.accounts, "days": cfg.days, "seed": cfg.seed,
        "typology_payments": summary["typology_payments"], "results": rows,
    }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
