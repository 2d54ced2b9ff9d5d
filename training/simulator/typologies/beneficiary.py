"""Reported beneficiaries: scam accounts at other banks (rented or bought, like mules) that keep
receiving from victims of this bank after earlier victims reported them.

Mechanism. A scam ring holds a few accounts at other banks. Over its active weeks, one victim
after another — ordinary customers of this bank, on their own phone at home — pays one of them:
one or two transfers, each to a beneficiary the victim never paid. Every victim's complaint
becomes a payment-level 'fraud' label days later (the label names the payment, so the bank
learns who received the money), and SIMO lists the account a few days after the first victims'
reports. Later victims pay an account already reported: the beneficiary's confirmed-fraud
history and the watch list are what give them away.

Quiet variant (``reported_beneficiary_quiet``): amounts only 2–4 times the victim's usual, in
daytime, described as an ordinary transfer: nothing but the beneficiary's history stands out.

Payments are fraud of typology ``reported_beneficiary`` / ``_quiet``; victims' role ``victim``.
"""

from __future__ import annotations

import numpy as np

from training.simulator import texts
from training.simulator.calendar import DAY_S, US
from training.simulator.population import CTRY, VICTIM
from training.simulator.typologies.base import TYP, Case, Context, quiet_next
from training.simulator.typologies.scam_victim import pick_victim

VN = CTRY["VN"]
NAME = "reported_beneficiary"


class Pool:
    """The scam ring's accounts at other banks, each with its active window (days)."""

    def __init__(self, ctx: Context, size: int) -> None:
        rng, days = ctx.rng, ctx.cfg.days
        self.accounts = ctx.pop.new_external("scam_beneficiary", size)
        self.start = rng.integers(0, max(1, days - 5), size=size)
        self.length = rng.integers(15, 45, size=size)
        self.first_us: dict[int, int] = {}

    def pick(self, ctx: Context) -> tuple[int, int]:
        """(beneficiary, day) of the next victim's payment."""
        k = int(ctx.rng.integers(0, self.accounts.size))
        lo = int(self.start[k])
        hi = min(ctx.cfg.days, lo + int(self.length[k]))
        return int(self.accounts[k]), int(ctx.rng.integers(lo, max(lo + 1, hi)))


def one_case(ctx: Context, pool: Pool, quiet: bool, max_rows: int) -> None:
    pop, rng, cfg = ctx.pop, ctx.rng, ctx.cfg
    victim = pick_victim(ctx)
    if victim is None:
        return
    pop.role[victim] = VICTIM
    name = f"{NAME}_quiet" if quiet else NAME
    case = Case(name, quiet)
    beneficiary, day = pool.pick(ctx)
    k = int(min(rng.integers(1, 3), max(1, max_rows // 2)))
    days = np.minimum(day + np.sort(rng.integers(0, 3, size=k)), cfg.days - 1)
    if quiet:
        hours = rng.uniform(9, 18, size=k)
        amount = np.round(pop.scale[victim] * rng.uniform(2, 4, size=k), -4)
        desc = texts.P2P
    else:
        hours = np.where(rng.random(k) < 0.4, rng.uniform(20, 23.9, size=k),
                         rng.uniform(8, 20, size=k))
        amount = np.round(pop.scale[victim] * rng.lognormal(np.log(15), 0.5, size=k), -4)
        desc = texts.INVEST if rng.random() < 0.5 else texts.FEE
    amount = np.maximum(amount, 1e5)
    ts = ctx.cal.t0_us + days.astype(np.int64) * DAY_S * US + (hours * 3600e6).astype(np.int64)
    acc = np.repeat(np.array([victim]), k)
    debit, credit = ctx.online_debits(victim, ts, np.full(k, beneficiary), amount, TYP[name],
                                      ip=pop.home_ip(acc), ctry=VN, dev=pop.home_device(acc),
                                      desc=desc)
    case.victim_rows.extend([debit, credit])
    first = int(ts.min())
    if beneficiary not in pool.first_us or first < pool.first_us[beneficiary]:
        pool.first_us[beneficiary] = first
    case.reported.append((beneficiary, first))
    ctx.cases.append(case)


def run(ctx: Context, budget: int) -> Pool | None:
    """Victims pay the pool's accounts until ``budget`` fraud rows are written; returns the
    pool (structuring victims pay it too)."""
    if budget <= 0:
        return None
    pool = Pool(ctx, max(2, budget // 25))
    start = ctx.ledger.fraud_rows
    while ctx.ledger.fraud_rows - start < budget:
        before = ctx.ledger.fraud_rows
        one_case(ctx, pool, quiet_next(ctx, NAME), budget - (ctx.ledger.fraud_rows - start))
        if ctx.ledger.fraud_rows == before:
            break
    return pool
