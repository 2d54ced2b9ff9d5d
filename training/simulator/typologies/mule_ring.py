"""Mule rings: accounts rented or bought to launder victims' money (items 6 and 9b of the
provincial instruction).

Mechanism. Mule accounts are new (opened up to two months before or during the period), most
opened by students. A ring of 2–6 mules is run by one controller. During the ring's active
window, victims at other banks (each a different, unrelated sender) pay a mule in *bursts* of
several credits within an hour; each credit is forwarded out within
``SimConfig.mule_forward_minutes`` (default 1–30 min) — to a cash-out account at another bank,
to the next mule of the ring (a transfer inside the bank, itself forwarded again), or withdrawn
at an ATM. About 45 % of rings are managed from Cambodia ('KH'): every session is a login from a
Cambodian IP on one of the controller's devices, shared across all mules of the ring.

Quiet variant (``mule_ring_quiet``): a locally run ring — logins from Vietnam on the student's
own phone (in half of the rings, half of the sessions from a local handler's phone shared by the
ring's mules), one or two victims a day, smaller amounts, money kept for hours (several times the
loud delay) and forwarded in aggregated sums. Its fan-in is low enough that a naive
"many senders in 24 h" rule misses it; dwell time and first-time senders still give it away.

Accounts are labelled 'mule' as a whole (when the case is confirmed); credits and forwards are
fraud payments of typology ``mule_ring`` / ``mule_ring_quiet``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from training.simulator import texts
from training.simulator.ledger import ATM, CREDIT, MOBILE
from training.simulator.population import CTRY, MULE, NORMAL
from training.simulator.typologies.base import TYP, Case, Context

KH = CTRY["KH"]
VN = CTRY["VN"]
QUIET_HANDLER_P = 0.5  # quiet rings whose local handler logs in to the mules on one phone
HANDLER_SESSION_P = 0.5  # share of such a ring's sessions run from the handler's phone


@dataclass
class Ring:
    mules: np.ndarray
    quiet: bool
    abroad: bool
    start_day: int
    end_day: int
    devices: np.ndarray  # controller devices (abroad, or a quiet ring's local handler's phone)
    ips: np.ndarray
    cashout: np.ndarray  # the ring's cash-out accounts at other banks
    case: Case
    bursts: int = 0
    rows: list[np.ndarray] = field(default_factory=list)

    @property
    def typology(self) -> str:
        return "mule_ring_quiet" if self.quiet else "mule_ring"


def build_rings(ctx: Context) -> list[Ring]:
    """Partition the mule accounts into rings and give each a controller and a window."""
    pop, rng, cfg = ctx.pop, ctx.rng, ctx.cfg
    mules = pop.accounts_with_role(MULE)
    mules = mules[rng.permutation(mules.size)]
    rings: list[Ring] = []
    i = 0
    while i < mules.size:
        size = int(min(rng.integers(2, 7), mules.size - i))
        members = mules[i : i + size]
        i += size
        # the first ring is loud and run from abroad, the second quiet, then at random
        quiet = len(rings) == 1 or (len(rings) > 1 and bool(rng.random() < cfg.quiet_share))
        abroad = (not quiet) and (not rings or bool(rng.random() < 0.45))
        first = max(ctx.active_from_day(int(m)) for m in members)
        first = min(first, cfg.days - 1)
        length = int(rng.integers(3, 15)) if not quiet else int(rng.integers(7, 30))
        start = int(rng.integers(first, max(first + 1, cfg.days - 2)))
        end = min(cfg.days, start + length)
        devices = pop.new_devices(int(rng.integers(1, 3))) if abroad else np.empty(0, np.int32)
        ips = pop.new_ips(KH, 3) if abroad else np.empty(0, np.int32)
        if quiet and rng.random() < QUIET_HANDLER_P:  # a local handler's phone
            devices, ips = pop.new_devices(1), pop.new_ips(VN, 2)
        cashout = pop.new_external("cashout", int(rng.integers(1, 4)))
        case = Case("mule_ring_quiet" if quiet else "mule_ring", quiet,
                    account_labels=[(int(m), "mule") for m in members])
        rings.append(Ring(members, quiet, abroad, start, max(end, start + 1), devices, ips,
                          cashout, case))
    return rings


def controller_fields(ctx: Context, ring: Ring, mule: int, k: int) -> dict[str, np.ndarray]:
    """ip / country / device of ``k`` sessions on ``mule`` run by the ring's controller."""
    pop, rng = ctx.pop, ctx.rng
    if ring.abroad:
        return {"ip": rng.choice(ring.ips, size=k), "ctry": np.full(k, KH, np.int16),
                "dev": rng.choice(ring.devices, size=k)}
    acc = np.full(k, mule, dtype=np.int32)
    ip, dev = pop.home_ip(acc), pop.home_device(acc)
    if ring.devices.size:  # a quiet ring's handler runs some sessions from their own phone
        handler = rng.random(k) < HANDLER_SESSION_P
        ip = np.where(handler, rng.choice(ring.ips, size=k), ip)
        dev = np.where(handler, ring.devices[0], dev)
    return {"ip": ip, "ctry": np.full(k, VN, np.int16), "dev": dev}


def forward(ctx: Context, ring: Ring, mule: int, credit_ts: np.ndarray, amount: np.ndarray,
            depth: int = 0) -> None:
    """Forward money that just arrived on ``mule`` out of the bank (or to the next mule)."""
    rng, cfg = ctx.rng, ctx.cfg
    typ = TYP[ring.typology]
    lo, hi = cfg.mule_forward_minutes
    n = credit_ts.size
    if ring.quiet:
        minutes = rng.uniform(hi * 2, hi * 8, size=n)
    else:
        minutes = rng.uniform(lo, hi, size=n)
    ts = credit_ts + (minutes * 60e6).astype(np.int64)
    out = np.round(amount * rng.uniform(0.9, 0.99, size=n), -3)
    u = rng.random(n)
    others = ring.mules[ring.mules != mule]
    to_mule = (u < 0.25) & (depth == 0) & (others.size > 0)
    atm = (~to_mule) & (u > 0.9) & (out <= 5e7) & (not ring.abroad)
    online = ~atm
    cp = np.where(to_mule, rng.choice(others, size=n) if others.size else 0,
                  rng.choice(ring.cashout, size=n)).astype(np.int32)
    if online.any():
        f = controller_fields(ctx, ring, mule, int(online.sum()))
        debit_rows, credit_rows = ctx.online_debits(
            mule, ts[online], cp[online], out[online], typ, desc=texts.GENERIC, **f
        )
        ring.case.actor_rows.extend([debit_rows, credit_rows])
        nxt = to_mule[online]
        for j in np.flatnonzero(nxt):
            forward(ctx, ring, int(cp[online][j]), ts[online][[j]], out[online][[j]], depth + 1)
    if atm.any():
        rows = ctx.ledger.payments(
            ts=ts[atm], acc=mule, dirn=0, amount=np.clip(np.round(out[atm], -5), 1e5, 5e7),
            cp=rng.choice(ctx.pop.parties.groups["atm"], size=int(atm.sum())), chan=ATM,
            ctry=VN, desc=texts.ATM_TXT, typ=typ,
        )
        ring.case.actor_rows.append(rows)


def burst(ctx: Context, ring: Ring, max_rows: int = 1_000_000) -> None:
    """One burst of victims' credits onto one mule of the ring, each forwarded out."""
    rng, pop = ctx.rng, ctx.pop
    mule = int(rng.choice(ring.mules))
    day = int(rng.integers(max(ring.start_day, ctx.active_from_day(mule)),
                           max(ring.end_day, ctx.active_from_day(mule) + 1)))
    day = min(day, ctx.cfg.days - 1)
    hour = rng.choice(np.arange(7, 23))
    t0 = ctx.day_start_us(day) + int(hour * 3600e6)
    if ring.quiet:
        k = int(min(rng.integers(1, 3), max(1, max_rows // 2)))
        ts = t0 + np.sort(rng.integers(0, int(10 * 3600e6), size=k))
        amount = np.round(rng.lognormal(np.log(2.5e6), 0.5, size=k), -3)
    else:
        k = int(min(rng.integers(3, 9), max(1, max_rows // 2)))
        ts = t0 + np.sort(rng.integers(0, int(3600e6), size=k))
        amount = np.round(rng.lognormal(np.log(8e6), 0.8, size=k), -4)
    amount = np.maximum(amount, 1e5)
    senders = pop.new_external("victim", k)
    typ = TYP[ring.typology]
    rows = ctx.ledger.payments(ts=ts, acc=mule, dirn=CREDIT, amount=amount, cp=senders,
                               chan=MOBILE, desc=texts.GENERIC, typ=typ)
    ring.case.actor_rows.append(rows)
    ring.case.reported.append((mule, int(ts.min())))  # the victims report it at their bank
    if ring.quiet and k > 1:
        forward(ctx, ring, mule, ts[[-1]], np.array([amount.sum()]))
    else:
        forward(ctx, ring, mule, ts, amount)
    ring.bursts += 1


def run(ctx: Context, rings: list[Ring], budget: int) -> None:
    """Add bursts round-robin over the rings until ``budget`` fraud rows are written; mules of
    rings that never got a burst go back to being ordinary accounts."""
    start = ctx.ledger.fraud_rows
    i = 0
    while rings and ctx.ledger.fraud_rows - start < budget:
        burst(ctx, rings[i % len(rings)], budget - (ctx.ledger.fraud_rows - start))
        i += 1
    for ring in rings:
        if ring.bursts == 0 and not ring.case.actor_rows:
            ctx.pop.role[ring.mules] = NORMAL
        else:
            ctx.cases.append(ring.case)


def receive(ctx: Context, ring: Ring, mule: int, ts: np.ndarray, amount: np.ndarray) -> None:
    """Money from a takeover or scam victim of this bank landed on ``mule``: forward it."""
    forward(ctx, ring, mule, ts, amount)
