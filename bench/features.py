"""Feature engine benchmark: replay simulator output through the streaming engine.

Run: ``python -m bench.features [--accounts 10000 --days 91]``.

Figures: replay throughput (payments/s, with their logins, one core) and steady-state memory
per tracked account (traced allocations of the engine's state). The default is 91 simulated
days, the scale of the detection targets (issue 16): the engine keeps 37 days of payments, so a
shorter run measures a state that has not reached its size yet (30 days gave 7,253 bytes an
account where 91 days gave 9,260, on the same code), and a replay faster than a real one (the
rate falls from ~67,000/s over the first 10 days to ~45,000/s after 40, as the state grows).
Targets (issue 3): >= 50,000 payments/s; 1 million accounts within 8 GB (<= 8,000 bytes/account).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from itertools import chain
from pathlib import Path

import features
from bench.common import emit
from features.devices import DeviceLinks, prune_before, sightings_of
from features.engine import FeatureEngine
from features.events import Payment
from features.reference import ReferenceData
from features.replay import merge_in_order, reference_for
from training.datadir import from_tables
from training.simulator import SimConfig, simulate


def timed_replay(events: list, ref: ReferenceData, n_pay: int, runs: int
                 ) -> tuple[float, FeatureEngine]:
    """Best payments/s of ``runs`` replays (the machine is shared), and the last engine."""
    best = 0.0
    for _ in range(runs):
        engine = FeatureEngine(ref)
        on_payment, on_login = engine.on_payment, engine.on_login
        gc.collect()
        start = time.perf_counter()
        for ev in events:
            if type(ev) is Payment:
                on_payment(ev)
            else:
                on_login(ev)
        elapsed = time.perf_counter() - start
        best = max(best, n_pay / elapsed)
    return best, engine


def python_source_rate(args: argparse.Namespace) -> float:
    """The same replay on the engine's Python source (no compiled build), in a subprocess."""
    env = {**os.environ, "CANHGIAC_PURE_PYTHON": "1"}
    done = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "bench.features", "--rate-only", "--runs", "1",
         "--accounts", str(args.accounts), "--days", str(args.days), "--seed", str(args.seed)],
        env=env, capture_output=True, text=True, check=True, timeout=1800)
    return float(done.stdout.split("RATE ")[-1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=91)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    result = from_tables(simulate(SimConfig(accounts=args.accounts, days=args.days,
                                            seed=args.seed)))
    ref = reference_for(result.accounts, result.labels, result.payments, result.watchlist,
                        logins=result.logins)
    events = merge_in_order(result.payments, result.logins)
    n_pay = len(result.payments)

    best, engine = timed_replay(events, ref, n_pay, runs=args.runs)
    if args.rate_only:
        print(f"RATE {best:.0f}")
        return

    snapshot = engine.snapshot()
    n_accounts = engine.n_accounts()
    del engine

    # the shared device / IP table (a global table every scorer holds, like the reference):
    # the sightings of its retention (devices and IPs the last 8 days, payees the last 91, or
    # as many days as were simulated), per account of the bank
    newest = max(p.t for p in result.payments)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    table = DeviceLinks()
    for e in chain(result.payments, result.logins):  # keys made here: their strings count
        for s in sightings_of(e):
            if s.t > prune_before(s.key, newest):
                table.observe(s.key, s.account_id, s.t)
    gc.collect()
    table_per_account = (tracemalloc.get_traced_memory()[0] - before) / max(n_accounts, 1)
    tracemalloc.stop()
    del table
    n_logins = len(result.logins)

    # Memory: restore the final state from its snapshot under tracemalloc, once nothing else
    # holds the simulated events: every object the state holds is counted, counterparty and
    # device strings included (the engine interns them: while the events lived, the state's
    # strings were theirs and went uncounted)
    del result, events, ref
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    restored = FeatureEngine.restore(snapshot)
    # the checkpoint's frame cache (one compressed frame per account, kept until the account
    # changes, so that a checkpoint serialises only what changed; a restore keeps the frames it
    # read) is measured apart: dropped here, then made again by a snapshot below
    restored._frames.clear()
    gc.collect()
    state_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert restored.n_accounts() == n_accounts
    per_account = state_bytes / max(n_accounts, 1)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    restored.snapshot()
    gc.collect()
    frames_per_account = (tracemalloc.get_traced_memory()[0] - before) / max(n_accounts, 1)
    tracemalloc.stop()

    print(f"engine={features.ENGINE_BUILD} payments={n_pay} logins={n_logins} "
          f"accounts={n_accounts} "
          f"days={args.days} snapshot_bytes={len(snapshot)}")
    figures = [
        emit("features", "replay_payments_per_s", round(best), ">=50000", best >= 50_000),
        emit("features", "checkpoint_frame_cache_bytes_per_account", round(frames_per_account),
             "info", True),
        emit("features", "device_table_bytes_per_account", round(table_per_account), "info",
             True),
    ]
    if features.ENGINE_BUILD == "mypyc":
        pure = python_source_rate(args)
        for name, value in (("replay_payments_per_s_python_source", round(pure)),
                            ("compiled_speedup", round(best / pure, 2))):
            print(f"RESULT features {name} {value} - -", flush=True)
            figures.append({"bench": "features", "figure": name, "measured": value,
                            "target": "-", "status": "-"})
    figures += [
        emit("features", "state_bytes_per_account", round(per_account), "<=8000",
             per_account <= 8_000),
        emit("features", "state_gb_per_million_accounts", round(per_account * 1e6 / 1e9, 2),
             "<=8", per_account * 1e6 <= 8e9),
    ]
    out = Path("bench/out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "features.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
