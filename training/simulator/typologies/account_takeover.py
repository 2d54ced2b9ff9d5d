"""Account takeover: a fraudster gets a customer's credentials (phishing, fake apps) and empties
the account.

Mechanism. The victim is an ordinary personal customer with a history. At one moment, after a
few failed attempts, a login succeeds from abroad (Cambodia, China, Malaysia, the Philippines…)
on a device the account has never used; within minutes, in that same session, 1–4 large debits
(tens of times the customer's usual amount) go to beneficiaries the account never paid before —
usually mule accounts of this bank (which forward the money on) or cash-out accounts at other
banks.

Quiet variant (``account_takeover_quiet``): the attacker uses a Vietnamese IP (proxy/VPN) on the
new device and drains the account slowly — 3–8 moderate transfers (a few times usual), each in
its own session, spread over one to three days, to accounts at other banks. No foreign login and
no single huge amount: only the new device and the new beneficiaries give it away.

Remote control (both variants, ``SimConfig.app.ato_remote_share`` of the cases): the fraudster
had the victim install a fake app (a fake VNeID, tax or power-company app) that gives remote
control of the phone, and makes the same transfers from the victim's own usual device, home IP
and Vietnam: no new device, no foreign login; the bank's app detects the remote-access tool in
``ato_remote_p`` of the transfers (``remote_access``). The choice comes from the app-signal
stream, so the other random draws are the same as without it.

Payments are labelled one by one ('fraud', typically via a chargeback or the police); the
victim's role is ``takeover_victim``.
"""

from __future__ import annotations

import numpy as np

from training.simulator import texts
from training.simulator.population import (
    CTRY,
    ELDERLY,
    HOUSEHOLD,
    NORMAL,
    SALARIED,
    TAKEOVER_VICTIM,
)
from training.simulator.typologies import mule_ring
from training.simulator.typologies.base import TYP, Case, Context, quiet_next

ATTACKER_COUNTRIES = np.array([CTRY[c] for c in ("KH", "KH", "CN", "MY", "PH", "ID", "LA")])
VN = CTRY["VN"]
NAME = "account_takeover"


def pick_victim(ctx: Context) -> int | None:
    pop, rng = ctx.pop, ctx.rng
    ok = np.flatnonzero(np.isin(pop.seg, (SALARIED, HOUSEHOLD, ELDERLY))
                        & (pop.role == NORMAL) & (pop.opened_day < -30))
    return None if not ok.size else int(rng.choice(ok))


def one_case(ctx: Context, rings: list[mule_ring.Ring], quiet: bool, max_rows: int) -> None:
    pop, rng, cfg = ctx.pop, ctx.rng, ctx.cfg
    victim = pick_victim(ctx)
    if victim is None:
        return
    pop.role[victim] = TAKEOVER_VICTIM
    name = "account_takeover_quiet" if quiet else "account_takeover"
    typ = TYP[name]
    case = Case(name, quiet)
    day = int(rng.integers(0, cfg.days))
    t0 = ctx.day_start_us(day) + int(rng.uniform(0, 24) * 3600e6)
    dev = int(pop.new_devices(1)[0])
    remote = ctx.app_rng.random() < cfg.app.ato_remote_share
    if remote:
        case.remote_p = cfg.app.ato_remote_p
    if quiet:
        k = int(min(rng.integers(3, 9), max(1, max_rows)))
        ts = t0 + np.sort(rng.integers(0, int(rng.uniform(1, 3) * 86400e6), size=k))
        amount = np.round(pop.scale[victim] * rng.lognormal(np.log(4), 0.4, size=k), -4)
        ip = pop.new_ips(VN, 1)[0]
        cp = pop.new_external("cashout", int(rng.integers(1, 3)))
        cp = rng.choice(cp, size=k)
        if remote:
            dev, ip = own_device(ctx, victim, day)
        debit, credit = ctx.online_debits(victim, ts, cp, amount, typ, ip=ip, ctry=VN, dev=dev,
                                          desc=texts.P2P)
        case.victim_rows.extend([debit, credit])
    else:
        k = int(min(rng.integers(1, 5), max(1, max_rows // 3)))
        ts = t0 + np.sort(rng.integers(0, int(40 * 60e6), size=k))
        amount = np.round(pop.scale[victim] * rng.lognormal(np.log(40), 0.5, size=k), -5)
        ctry = int(rng.choice(ATTACKER_COUNTRIES))
        ip = pop.new_ips(ctry, 1)[0]
        if remote:
            dev, ip = own_device(ctx, victim, day)
            ctry = VN
        live = [r for r in rings if r.start_day <= day < r.end_day + 3]
        to_mule = bool(live) and rng.random() < 0.7
        if to_mule:
            ring = live[int(rng.integers(0, len(live)))]
            cp = rng.choice(ring.mules, size=k)
        else:
            cp = rng.choice(pop.new_external("cashout", 2), size=k)
        debit, credit = ctx.online_debits(victim, ts, cp, amount, typ, ip=ip, ctry=ctry, dev=dev,
                                          desc=texts.GENERIC, one_session=True, failed_p=0.6)
        case.victim_rows.extend([debit, credit])
        if to_mule:
            for j in range(k):
                mule_ring.receive(ctx, ring, int(cp[j]), ts[[j]], amount[[j]])
    ctx.cases.append(case)


def own_device(ctx: Context, victim: int, day: int) -> tuple[int, int]:
    """The victim's usual phone (the replacement once switched) and first home IP: what a
    remote-controlled session shows (no random draw, so the other draws stay the same)."""
    pop = ctx.pop
    dev = int(pop.dev0[victim])
    if 0 <= pop.new_phone_day[victim] <= day:
        dev = int(pop.new_phone_dev[victim])
    return dev, int(pop.home_ip0[victim])


def run(ctx: Context, rings: list[mule_ring.Ring], budget: int) -> None:
    start = ctx.ledger.fraud_rows
    while ctx.ledger.fraud_rows - start < budget:
        before = ctx.ledger.fraud_rows
        quiet = quiet_next(ctx, NAME)
        one_case(ctx, rings, quiet, budget - (ctx.ledger.fraud_rows - start))
        if ctx.ledger.fraud_rows == before:
            return
