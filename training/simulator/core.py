"""``simulate(config)``: population → background → typologies → labels → tables."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter

import numpy as np

from training.simulator import app_signals, texts
from training.simulator.background import Background
from training.simulator.calendar import Calendar
from training.simulator.config import SimConfig
from training.simulator.labels import make_labels
from training.simulator.ledger import Columns, Ledger
from training.simulator.output import (
    Strings,
    accounts_tables,
    labels_table,
    logins_table,
    payments_table,
    watchlist_table,
)
from training.simulator.population import NORMAL, Population
from training.simulator.result import SimulationResult
from training.simulator.typologies import (
    account_takeover,
    beneficiary,
    mule_ring,
    scam_victim,
    shell_business,
    structuring,
)
from training.simulator.typologies.base import Context
from training.simulator.watchlist import make_watchlist

log = logging.getLogger(__name__)


def run_tag(cfg: SimConfig) -> str:
    """A short tag that makes event ids of different simulations distinct."""
    return hashlib.sha256(repr(cfg).encode()).hexdigest()[:6]


def simulate(config: SimConfig) -> SimulationResult:
    """Simulate the bank; the same config always gives the same tables."""
    cfg = config.validate()
    started = time.perf_counter()
    root = np.random.SeedSequence(cfg.seed)
    # spawned children depend only on their index: adding streams changes none of the others
    pop_rng, bg_rng, fraud_rng, label_rng, str_rng, watch_rng, case_app_rng, app_rng = (
        np.random.default_rng(s) for s in root.spawn(8))
    cal = Calendar(cfg.start, cfg.days)
    pop = Population(cfg, cal, pop_rng)
    ledger = Ledger(pop.n)
    first_new_party = pop.parties.size  # parties from here on came into being in the period
    # one random stream per stage, so e.g. a new typology does not shift the background
    pop.rng = bg_rng
    legit_marks = Background(pop, cal, ledger, bg_rng).run()
    background_rows = ledger.rows
    target = int(round(cfg.fraud_rate * background_rows / (1.0 - cfg.fraud_rate)))
    pop.rng = fraud_rng
    ctx = Context(cfg, pop, cal, ledger, fraud_rng, app_rng=case_app_rng)
    _typologies(ctx, target)
    pay = ledger.payment_columns()
    assert np.array_equal(pay["row"], np.arange(len(pay)))
    pay.data["on_call"], pay.data["remote_access"] = app_signals.draw(
        pay, pop, ctx.cases, cfg.app, app_rng, cal.t0_us, first_new_party)
    logins = ledger.login_columns()
    order = np.lexsort((pay["row"], pay["ts"]))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    labels = make_labels(ctx.cases, pay, _false_alarm_candidates(pay, legit_marks), cfg,
                         label_rng)
    tag = run_tag(cfg)
    strings = Strings(pop, cfg.bank_code, str_rng)
    sessions = [f"S{tag}-{i:x}" for i in range(ledger.sessions)]
    payments, truth, event_id = payments_table(pay, order, strings, tag, sessions)
    login_table = logins_table(logins, strings, tag, sessions)
    accounts, roles = accounts_tables(pop, strings, str_rng)
    label_table = labels_table(labels, strings, tag, rank, event_id)
    watch = watchlist_table(make_watchlist(ctx.cases, cfg, cal, watch_rng), strings)
    result = SimulationResult(
        cfg, payments, login_table, accounts, label_table, truth, roles,
        cases=dict(Counter(c.typology for c in ctx.cases)), watchlist=watch,
    )
    log.info("simulated", extra={
        "payments": payments.num_rows, "logins": login_table.num_rows,
        "fraud_target": target, "fraud_rows": ledger.fraud_rows,
        "seconds": round(time.perf_counter() - started, 2),
    })
    return result


def _false_alarm_candidates(pay: Columns, marks: np.ndarray) -> np.ndarray:
    """Legitimate payments an investigator might look at: from abroad, or a large purchase."""
    foreign = pay["ctry"][marks] > 0
    large = np.isin(pay["desc"][marks], (texts.HOUSE, texts.MOTORBIKE))
    return np.sort(marks[foreign | large])


def _typologies(ctx: Context, target: int) -> None:
    """Spend the fraud budget: shells, takeovers and scams by share, mules take the rest, and
    takeovers/scams top up whatever could not be spent (e.g. too few mule accounts)."""
    if target <= 0:
        ctx.pop.role[:] = NORMAL  # reserved mule/shell accounts stay ordinary
        return
    mix = np.array(ctx.cfg.typology_mix, dtype=float)
    mix /= mix.sum()
    rings = mule_ring.build_rings(ctx)
    shell_business.run(ctx, int(target * mix[2]))
    account_takeover.run(ctx, rings, int(target * mix[1]))
    scam_victim.run(ctx, rings, int(target * mix[3]))
    pool = beneficiary.run(ctx, int(target * mix[4]))
    structuring.run(ctx, pool, int(target * mix[5]))
    mule_ring.run(ctx, rings, target - ctx.ledger.fraud_rows)
    for _ in range(1000):
        missing = target - ctx.ledger.fraud_rows
        if missing <= 0:
            break
        before = ctx.ledger.fraud_rows
        account_takeover.run(ctx, rings, (missing + 1) // 2)
        scam_victim.run(ctx, rings, target - ctx.ledger.fraud_rows)
        if ctx.ledger.fraud_rows == before:
            break
