"""Scam victims: customers talked into paying fraudsters themselves (impersonation of police or
tax officials, fake investment platforms, "task" scams).

Mechanism. The victim — an elderly customer in 60 % of cases, otherwise an ordinary adult — logs
in from home on their own device (nothing suspicious about the session) and makes an unusually
large transfer (tens of times their usual amount, often at odd hours while on the phone with the
scammer) to a beneficiary they have never paid, usually a mule account of this bank or an account
at another bank. Investment scams repeat: 2–5 transfers over up to ten days with growing
amounts ("fees", "taxes" to withdraw fake profits). Elderly victims sometimes go to a branch.

Quiet variant (``scam_victim_quiet``): one or two transfers only three to six times the usual
amount, in daytime, described as an ordinary transfer, to an account at another bank. Only the
first-time beneficiary and the amount against the account's own history stand out.

The mobile app's signals (``training.simulator.app_signals``, rates in
``SimConfig.app``: :class:`~training.simulator.config.AppSignalRates`), loud and quiet alike:
each case is an impersonation scam (the victim kept on the phone: on a call in most
transfers) or an investment / "task" scam run over chat (sometimes on a call); a minority of
victims were made to install a remote-access or fake app. Branch transfers report neither.

Payments are labelled one by one ('fraud', from the victim's complaint: 'police' or
'investigation'); the account's role is ``victim``.
"""

from __future__ import annotations

import numpy as np

from training.simulator import texts
from training.simulator.calendar import DAY_S, US
from training.simulator.ledger import BRANCH
from training.simulator.population import (
    CTRY,
    ELDERLY,
    HOUSEHOLD,
    NORMAL,
    SALARIED,
    VICTIM,
)
from training.simulator.typologies import mule_ring
from training.simulator.typologies.base import TYP, Case, Context, quiet_next

VN = CTRY["VN"]
NAME = "scam_victim"


def pick_victim(ctx: Context) -> int | None:
    pop, rng = ctx.pop, ctx.rng
    seg = (ELDERLY,) if rng.random() < 0.6 else (SALARIED, HOUSEHOLD)
    ok = np.flatnonzero(np.isin(pop.seg, seg) & (pop.role == NORMAL) & (pop.opened_day < -30))
    return None if not ok.size else int(rng.choice(ok))


def one_case(ctx: Context, rings: list[mule_ring.Ring], quiet: bool, max_rows: int) -> None:
    pop, rng, cfg = ctx.pop, ctx.rng, ctx.cfg
    victim = pick_victim(ctx)
    if victim is None:
        return
    pop.role[victim] = VICTIM
    name = "scam_victim_quiet" if quiet else "scam_victim"
    typ = TYP[name]
    case = Case(name, quiet)
    day = int(rng.integers(0, cfg.days))
    ring: mule_ring.Ring | None = None
    if quiet:
        k = int(min(rng.integers(1, 3), max(1, max_rows)))
        days = day + np.sort(rng.integers(0, 4, size=k))
        hours = rng.uniform(9, 17, size=k)
        amount = np.round(pop.scale[victim] * rng.uniform(3, 6, size=k), -4)
        cp = np.full(k, pop.new_external("scam", 1)[0])
        desc = texts.P2P
    else:
        k = int(min(rng.integers(1, 6), max(1, max_rows // 2)))
        days = day + np.sort(rng.integers(0, 10, size=k))
        hours = np.where(rng.random(k) < 0.4, rng.uniform(20, 23.9, size=k),
                         rng.uniform(8, 20, size=k))
        amount = np.round(pop.scale[victim] * rng.lognormal(np.log(30), 0.5, size=k)
                          * np.linspace(1, 2.5, k), -5)
        live = [r for r in rings if r.start_day <= day < r.end_day + 10]
        if live and rng.random() < 0.6:
            ring = live[int(rng.integers(0, len(live)))]
            cp = rng.choice(ring.mules, size=k)
        else:
            cp = np.full(k, pop.new_external("scam", 1)[0])
        desc = texts.INVEST if rng.random() < 0.5 else texts.FEE
    days = np.minimum(days, cfg.days - 1)
    ts = ctx.cal.t0_us + days.astype(np.int64) * DAY_S * US + (hours * 3600e6).astype(np.int64)
    acc = np.array([victim])
    dev = pop.home_device(np.repeat(acc, k))
    ip = pop.home_ip(np.repeat(acc, k))
    branch = (not quiet) and pop.seg[victim] == ELDERLY and rng.random() < 0.3
    if branch:
        debit, credit = ctx.ledger.transfer(ts=ts, payer=np.repeat(acc, k), payee=cp,
                                            amount=amount, chan=BRANCH, typ=typ, desc=desc,
                                            ctry=VN)
    else:
        debit, credit = ctx.online_debits(victim, ts, cp, amount, typ, ip=ip, ctry=VN, dev=dev,
                                          desc=desc)
    case.victim_rows.extend([debit, credit])
    app_mechanism(ctx, case)
    if not quiet and ring is not None:
        for j in range(k):
            mule_ring.receive(ctx, ring, int(cp[j]), ts[[j]], amount[[j]])
    ctx.cases.append(case)


def app_mechanism(ctx: Context, case: Case) -> None:
    """The case's call and remote-access probabilities, drawn from the app-signal stream."""
    rates, rng = ctx.cfg.app, ctx.app_rng
    impersonation = rng.random() < rates.victim_impersonation_share
    case.on_call_p = (rates.victim_on_call_impersonation if impersonation
                      else rates.victim_on_call_chat)
    if rng.random() < rates.victim_remote_share:
        case.remote_p = rates.victim_remote_p


def run(ctx: Context, rings: list[mule_ring.Ring], budget: int) -> None:
    start = ctx.ledger.fraud_rows
    while ctx.ledger.fraud_rows - start < budget:
        before = ctx.ledger.fraud_rows
        quiet = quiet_next(ctx, NAME)
        one_case(ctx, rings, quiet, budget - (ctx.ledger.fraud_rows - start))
        if ctx.ledger.fraud_rows == before:
            return
