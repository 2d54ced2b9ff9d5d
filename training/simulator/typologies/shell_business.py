"""Shell businesses: companies registered only to move money (item 9a's focus: business accounts
that log in from abroad and show many abnormal transactions).

Mechanism. The company was registered weeks before the account was opened (both recent). It has
no real activity — no payroll, no bills, no regular suppliers. Its sessions are logins from
abroad (Cambodia, China) on the controllers' devices. Every active day, many different payers
(dozens of accounts at other banks, plus mules) send it round sums described as invoices or
orders, and within hours it pays almost all of it out (90–100 % pass-through) to many different
beneficiaries.

Quiet variant (``shell_business_quiet``): managed from Vietnam, fewer and smaller flows that
reuse a handful of front companies as counterparties, money kept up to two days. It looks like a
small trading company; the new registration, the absence of any ordinary expense and the
pass-through ratio give it away.

The account is labelled 'fraud' as a whole; its payments are fraud of typology
``shell_business`` / ``shell_business_quiet``.
"""

from __future__ import annotations

import numpy as np

from training.simulator import texts
from training.simulator.ledger import CREDIT, INTERNET
from training.simulator.population import CTRY, NORMAL, SHELL
from training.simulator.typologies.base import TYP, Case, Context

ABROAD = np.array([CTRY[c] for c in ("KH", "KH", "CN", "CN", "LA", "MY")])
VN = CTRY["VN"]


class Shell:
    def __init__(self, ctx: Context, acc: int, quiet: bool) -> None:
        pop, rng = ctx.pop, ctx.rng
        self.acc, self.quiet = acc, quiet
        self.typology = "shell_business_quiet" if quiet else "shell_business"
        self.ctry = VN if quiet else int(rng.choice(ABROAD))
        self.ips = pop.new_ips(self.ctry, 2)
        self.devices = pop.new_devices(int(rng.integers(1, 3)))
        self.front = pop.new_external("front_company", 6)
        self.first_day = min(ctx.active_from_day(acc), ctx.cfg.days - 1)
        self.case = Case(self.typology, quiet, account_labels=[(acc, "fraud")])
        self.days = 0


def one_day(ctx: Context, shell: Shell, max_rows: int) -> None:
    pop, rng, cfg = ctx.pop, ctx.rng, ctx.cfg
    typ = TYP[shell.typology]
    day = int(rng.integers(shell.first_day, cfg.days))
    if shell.quiet:
        k_in = int(min(rng.integers(2, 5), max(1, max_rows // 2)))
        senders = rng.choice(shell.front, size=k_in)
        amount = np.round(rng.lognormal(np.log(40e6), 0.5, size=k_in), -6)
        span_h = 9.0
    else:
        k_in = int(min(rng.integers(6, 25), max(1, max_rows // 2)))
        senders = pop.new_external("payer", k_in)
        amount = np.round(rng.lognormal(np.log(90e6), 0.8, size=k_in), -6)
        span_h = 12.0
    amount = np.maximum(amount, 1e6)
    t0 = ctx.day_start_us(day) + int(8 * 3600e6)
    ts_in = t0 + np.sort(rng.integers(0, int(span_h * 3600e6), size=k_in))
    desc = np.where(rng.random(k_in) < 0.5, texts.INVOICE, texts.ORDER)
    rows = ctx.ledger.payments(ts=ts_in, acc=shell.acc, dirn=CREDIT, amount=amount, cp=senders,
                               chan=INTERNET, desc=desc, typ=typ)
    shell.case.actor_rows.append(rows)
    total = amount.sum() * rng.uniform(0.9, 1.0)
    k_out = max(1, int(k_in * rng.uniform(0.6, 1.2)))
    share = rng.dirichlet(np.ones(k_out))
    out = np.maximum(np.round(total * share, -5), 1e5)
    delay_h = rng.uniform(0.2, 4.0, size=k_out) if not shell.quiet else rng.uniform(4, 40, k_out)
    ts_out = np.sort(ts_in[-1] + (delay_h * 3600e6).astype(np.int64))
    cp = (rng.choice(shell.front, size=k_out) if shell.quiet
          else pop.new_external("beneficiary", k_out))
    debit, credit = ctx.online_debits(
        shell.acc, ts_out, cp, out, typ, ip=rng.choice(shell.ips, size=k_out), ctry=shell.ctry,
        dev=rng.choice(shell.devices, size=k_out), desc=texts.SUPPLIER, chan=INTERNET,
    )
    shell.case.actor_rows.extend([debit, credit])
    shell.days += 1


def _quiet(ctx: Context, i: int) -> bool:
    """The first shell is loud, the second quiet, the rest at random."""
    return i == 1 or (i > 1 and bool(ctx.rng.random() < ctx.cfg.quiet_share))


def run(ctx: Context, budget: int) -> None:
    """Active days round-robin over the shell accounts until ``budget`` fraud rows exist; shells
    never used become ordinary (dormant) accounts."""
    shells = [Shell(ctx, int(a), _quiet(ctx, i))
              for i, a in enumerate(ctx.pop.accounts_with_role(SHELL))]
    start = ctx.ledger.fraud_rows
    i = 0
    while shells and ctx.ledger.fraud_rows - start < budget:
        one_day(ctx, shells[i % len(shells)], budget - (ctx.ledger.fraud_rows - start))
        i += 1
    for s in shells:
        if s.days:
            ctx.cases.append(s.case)
        else:
            ctx.pop.role[s.acc] = NORMAL
