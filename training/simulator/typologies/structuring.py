"""Structuring under the biometric thresholds of Decision 2345/QD-NHNN: a scammer coaches the
victim (or runs a taken-over session) to keep every online transfer at or under 10 M VND and the
day's total at or under 20 M VND, so that no face check is asked.

Mechanism. Over two to five days, the victim's account sends two transfers a day of 9.0–10 M VND
(a day's total just under 20 M) from the victim's own phone, to one beneficiary never paid before
— half the time an account of the scam ring's pool that other victims pay too.

Quiet variant (``structuring_quiet``): one transfer a day of 6–9.9 M VND over two to four days.

Payments are labelled one by one ('fraud', from the victim's complaint); role ``victim``.
"""

from __future__ import annotations

import numpy as np

from training.simulator import texts
from training.simulator.calendar import DAY_S, US
from training.simulator.population import CTRY, VICTIM
from training.simulator.typologies.base import TYP, Case, Context, quiet_next
from training.simulator.typologies.beneficiary import Pool
from training.simulator.typologies.scam_victim import pick_victim

VN = CTRY["VN"]
NAME = "structuring"


def one_case(ctx: Context, pool: Pool, quiet: bool, max_rows: int) -> None:
    pop, rng, cfg = ctx.pop, ctx.rng, ctx.cfg
    victim = pick_victim(ctx)
    if victim is None:
        return
    pop.role[victim] = VICTIM
    name = f"{NAME}_quiet" if quiet else NAME
    case = Case(name, quiet)
    if rng.random() < 0.5:
        beneficiary, day = pool.pick(ctx)
        case.reported.append((beneficiary, 0))  # the time is set below
    else:
        beneficiary = int(pop.new_external("scam", 1)[0])
        day = int(rng.integers(0, cfg.days))
    n_days = int(rng.integers(2, 5)) if quiet else int(rng.integers(2, 6))
    per_day = 1 if quiet else 2
    day = min(day, cfg.days - 1)
    n_days = max(1, min(n_days, cfg.days - day))  # the period ends: fewer days, never more a day
    k = int(max(1, min(n_days * per_day, max_rows // 2)))
    days = day + np.arange(k) // per_day
    hours = rng.uniform(8, 21, size=k)
    if quiet:
        amount = np.round(rng.uniform(6e6, 9.9e6, size=k), -4)
    else:
        amount = np.round(rng.uniform(9.0e6, 9.99e6, size=k), -4)
    ts = ctx.cal.t0_us + days.astype(np.int64) * DAY_S * US + (hours * 3600e6).astype(np.int64)
    acc = np.repeat(np.array([victim]), k)
    desc = texts.P2P if quiet else (texts.INVEST if rng.random() < 0.5 else texts.GENERIC)
    debit, credit = ctx.online_debits(victim, ts, np.full(k, beneficiary), amount, TYP[name],
                                      ip=pop.home_ip(acc), ctry=VN, dev=pop.home_device(acc),
                                      desc=desc)
    case.victim_rows.extend([debit, credit])
    if case.reported:
        case.reported = [(beneficiary, int(ts.min()))]
    ctx.cases.append(case)


def run(ctx: Context, pool: Pool | None, budget: int) -> None:
    if budget <= 0:
        return
    pool = pool or Pool(ctx, 4)
    start = ctx.ledger.fraud_rows
    while ctx.ledger.fraud_rows - start < budget:
        before = ctx.ledger.fraud_rows
        one_case(ctx, pool, quiet_next(ctx, NAME), budget - (ctx.ledger.fraud_rows - start))
        if ctx.ledger.fraud_rows == before:
            return
