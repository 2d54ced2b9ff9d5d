"""Legitimate behaviour of the whole population, generated vectorised per behaviour.

- personal debits: QR purchases at merchants of this bank and elsewhere, card payments,
  ATM withdrawals, e-wallet top-ups, transfers to a small circle of contacts (Zipf-weighted, so
  beneficiaries repeat; 5 % go to someone new), a daily/weekly rhythm in local time and more
  spending in the weeks before Tết;
- monthly flows: salaries on each employee's salary day (paid by a business of this bank or by
  another bank's company), a Tết bonus, bills, parents' allowances to students, pensions;
- merchants: many small credits from many unrelated customers (legitimate fan-in);
- businesses: customers' invoices in and suppliers out on working days; exporters are paid
  partly in USD and their owners often log in from abroad on their usual devices;
- travellers: card payments and app sessions from the trip country;
- new accounts opened during the period, and rare large legitimate transfers to new
  beneficiaries (house deposits, motorbikes);
- first payments to beneficiaries nobody at this bank has paid before (a seller met online, a
  landlord, a tutor, a tradesman: people at other banks), about once a month, of varied and often
  larger than usual amounts, a quarter of them followed by one or two more payments to the same
  beneficiary within days (deposit, then the balance);
- login-only sessions (balance checks) and failed logins.

Returns the row ids of suspicious-looking legitimate payments, from which a few 'legit' labels
(false alarms confirmed by investigators) are drawn.
"""

from __future__ import annotations

import numpy as np

from training.simulator import texts
from training.simulator.calendar import (
    DAY_S,
    HOURS_BUSINESS,
    HOURS_ELDERLY,
    HOURS_PERSONAL,
    US,
    Calendar,
)
from training.simulator.ledger import API, ATM, BRANCH, CREDIT, INTERNET, MOBILE, POS, Ledger
from training.simulator.population import (
    CONTACTS,
    ELDERLY,
    EXPORTER,
    HOUSEHOLD,
    MERCHANT,
    MULE,
    NORMAL,
    SALARIED,
    SME,
    STUDENT,
    Population,
)
from training.simulator.sessions import on_trip, session_fields

# personal debit kinds
QR_IN, QR_OUT, P2P, CARD, CASH, TOPUP, BRANCH_P2P = range(7)
KIND_P = np.array([
    # QR_IN QR_OUT P2P  CARD  CASH  TOPUP BRANCH
    [0.25, 0.15, 0.30, 0.15, 0.05, 0.08, 0.02],  # salaried
    [0.27, 0.15, 0.30, 0.05, 0.04, 0.19, 0.00],  # student
    [0.10, 0.05, 0.25, 0.05, 0.30, 0.00, 0.25],  # elderly
    [0.20, 0.15, 0.35, 0.05, 0.10, 0.05, 0.10],  # household
])
# first payments to a beneficiary nobody at the bank paid before, per day, by segment
NEW_PAYEE_RATE = np.array([0.04, 0.03, 0.015, 0.05, 0.0, 0.0, 0.0])
CONTACT_P = 1.0 / np.arange(1, CONTACTS + 1) ** 1.1
CONTACT_P /= CONTACT_P.sum()


def round_to(x: np.ndarray, step: float) -> np.ndarray:
    return np.maximum(step, np.round(x / step) * step)


def active_counts(
    pop: Population, cal: Calendar, rng: np.random.Generator, acc: np.ndarray,
    rate: np.ndarray, factor: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts per (account, day) from the day after opening; returns (acc, day) rows."""
    days = np.arange(cal.days)
    first = np.floor(pop.opened_day[acc]).astype(np.int64) + 1
    lam = rate[:, None] * factor[None, :] * (days[None, :] >= first[:, None])
    counts = rng.poisson(lam).ravel()
    acc_e = np.repeat(np.repeat(acc, cal.days), counts).astype(np.int32)
    day_e = np.repeat(np.tile(days, acc.size), counts)
    return acc_e, day_e


def times(cal: Calendar, rng: np.random.Generator, day: np.ndarray, elderly: np.ndarray | None,
          profile: np.ndarray = HOURS_PERSONAL) -> np.ndarray:
    ts = cal.local_times(rng, day, profile)
    if elderly is not None and elderly.any():
        ts[elderly] = cal.local_times(rng, day[elderly], HOURS_ELDERLY)
    return ts


class Background:
    """Generates the legitimate activity into a :class:`Ledger`."""

    def __init__(self, pop: Population, cal: Calendar, ledger: Ledger,
                 rng: np.random.Generator) -> None:
        self.pop, self.cal, self.ledger, self.rng = pop, cal, ledger, rng
        self.suspicious_legit: list[np.ndarray] = []

    def run(self) -> np.ndarray:
        self.personal_debits()
        self.new_payees()
        self.monthly()
        self.incoming_p2p()
        self.merchants()
        self.businesses()
        self.large_transfers()
        self.idle_sessions()
        if not self.suspicious_legit:
            return np.empty(0, dtype=np.int64)
        return np.concatenate(self.suspicious_legit)

    # ---------------------------------------------------------------- helpers
    def _day(self, ts: np.ndarray) -> np.ndarray:
        return (ts - self.cal.t0_us) // (DAY_S * US)

    def _debit(self, acc: np.ndarray, ts: np.ndarray, cp: np.ndarray, amount: np.ndarray,
               chan: np.ndarray | int, desc: np.ndarray | int, cur: int = 0) -> np.ndarray:
        chan_arr = np.broadcast_to(np.asarray(chan, dtype=np.int8), acc.shape)
        cp = self._opened_or_elsewhere(np.asarray(cp, dtype=np.int32), ts)
        sess = session_fields(self.pop, self.cal, self.ledger, self.rng, acc, ts, chan_arr)
        debit_rows, _ = self.ledger.transfer(ts=ts, payer=acc, payee=cp, amount=amount,
                                             chan=chan_arr, desc=desc, cur=cur, **sess)
        return debit_rows

    def _incoming(self, acc: np.ndarray, ts: np.ndarray, payer: np.ndarray, amount: np.ndarray,
                  chan: int, desc: int, cur: int = 0) -> None:
        """Credits from any party: own payers are debited too (with their own session)."""
        payer = self._opened_or_elsewhere(np.asarray(payer, dtype=np.int32), ts)
        own = payer < self.pop.n
        if own.any():
            self._debit(payer[own].astype(np.int32), ts[own], acc[own], amount[own], chan, desc,
                        cur)
        ext = ~own
        if ext.any():
            self.ledger.payments(ts=ts[ext], acc=acc[ext], dirn=CREDIT, amount=amount[ext],
                                 cp=payer[ext], chan=chan, desc=desc, cur=cur)

    def _opened_or_elsewhere(self, party: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Own accounts not opened yet at ``ts`` are replaced by someone at another bank."""
        own = party < self.pop.n
        early = own & (self.pop.opened_us[np.where(own, party, 0)] > ts)
        if not early.any():
            return party
        party = party.copy()
        party[early] = self.rng.choice(self.pop.parties.groups["consumer"], size=int(early.sum()))
        return party

    def _accounts(self, segs: tuple[int, ...], roles: tuple[int, ...] = (NORMAL,)) -> np.ndarray:
        pop = self.pop
        return np.flatnonzero(np.isin(pop.seg, segs) & np.isin(pop.role, roles)).astype(np.int32)

    # ---------------------------------------------------------------- behaviours
    def personal_debits(self) -> None:
        pop, cal, rng = self.pop, self.cal, self.rng
        acc = self._accounts((SALARIED, STUDENT, ELDERLY, HOUSEHOLD), (NORMAL, MULE))
        rate = pop.rate[acc] * np.where(pop.role[acc] == MULE, 0.35, 1.0)
        factor = 0.6 * cal.spending_factor() + 0.4 * cal.p2p_factor()
        a, day = active_counts(pop, cal, rng, acc, rate, factor)
        seg = pop.seg[a]
        cum = np.cumsum(KIND_P, axis=1)[seg]
        kind = (rng.random(a.size)[:, None] > cum).sum(axis=1)
        kind = np.minimum(kind, KIND_P.shape[1] - 1)
        ts = times(cal, rng, day, seg == ELDERLY)
        n = a.size
        scale = pop.scale[a]
        p = pop.parties
        cp = np.empty(n, dtype=np.int32)
        amount = np.empty(n)
        chan = np.full(n, MOBILE, dtype=np.int8)
        desc = np.full(n, texts.PURCHASE, dtype=np.int16)
        m = kind == QR_IN
        if pop.merchants_in.size:
            rank = np.minimum(rng.zipf(1.3, size=int(m.sum())) - 1, pop.merchants_in.size - 1)
            cp[m] = pop.merchants_in[rank]
        else:
            cp[m] = rng.choice(p.groups["ext_merchant"], size=int(m.sum()))
        amount[m] = round_to(scale[m] * rng.lognormal(-0.5, 0.8, size=int(m.sum())), 1000)
        m = kind == QR_OUT
        cp[m] = rng.choice(p.groups["ext_merchant"], size=int(m.sum()))
        amount[m] = round_to(scale[m] * rng.lognormal(-0.4, 0.8, size=int(m.sum())), 1000)
        m = (kind == P2P) | (kind == BRANCH_P2P)
        k = int(m.sum())
        pick = pop.contacts[a[m], rng.choice(CONTACTS, size=k, p=CONTACT_P)]
        new = rng.random(k) < 0.05
        pick[new] = rng.choice(p.groups["consumer"], size=int(new.sum()))
        cp[m] = pick
        amount[m] = round_to(scale[m] * rng.lognormal(0.5, 0.9, size=k), 10_000)
        desc[m] = np.where(np.abs(cal.tet_offset[day[m]]) <= 3, texts.LIXI, texts.P2P)
        chan[m] = np.where(rng.random(k) < 0.15, INTERNET, MOBILE)
        chan[kind == BRANCH_P2P] = BRANCH
        m = kind == CARD
        k = int(m.sum())
        abroad = on_trip(pop, cal, a[m], ts[m])
        cp[m] = np.where(abroad, rng.choice(p.groups["foreign_merchant"], size=k),
                         rng.choice(p.groups["ext_merchant"], size=k))
        amount[m] = round_to(scale[m] * rng.lognormal(0.0, 0.8, size=k), 1000)
        chan[m] = POS
        desc[m] = texts.POS_TXT
        m = kind == CASH
        k = int(m.sum())
        cp[m] = rng.choice(p.groups["atm"], size=k)
        amount[m] = rng.choice(np.array([5e5, 1e6, 2e6, 3e6, 5e6]), size=k,
                               p=[0.25, 0.3, 0.25, 0.12, 0.08])
        chan[m] = ATM
        desc[m] = texts.ATM_TXT
        m = kind == TOPUP
        k = int(m.sum())
        cp[m] = rng.choice(p.groups["ewallet"], size=k)
        amount[m] = rng.choice(np.array([5e4, 1e5, 2e5, 5e5]), size=k)
        desc[m] = texts.TOPUP
        rows = self._debit(a, ts, cp, amount, chan, desc)
        trip = on_trip(pop, cal, a, ts)
        self.suspicious_legit.append(rows[trip & (chan == MOBILE)])

    def new_payees(self) -> None:
        """First payments to beneficiaries at other banks that no customer of this bank paid
        before, sometimes repeated within days."""
        pop, cal, rng = self.pop, self.cal, self.rng
        acc = self._accounts((SALARIED, STUDENT, ELDERLY, HOUSEHOLD))
        rate = NEW_PAYEE_RATE[pop.seg[acc]] * rng.lognormal(-0.12, 0.5, size=acc.size)
        a, day = active_counts(pop, cal, rng, acc, rate, cal.p2p_factor())
        if not a.size:
            return
        ts = times(cal, rng, day, pop.seg[a] == ELDERLY)
        cp = pop.new_external("payee", a.size)
        amount = round_to(pop.scale[a] * rng.lognormal(0.8, 1.0, size=a.size), 10_000)
        again = np.repeat(np.arange(a.size), np.where(rng.random(a.size) < 0.25,
                                                      rng.integers(1, 3, size=a.size), 0))
        later = ts[again] + (rng.uniform(0.05, 5.0, size=again.size) * DAY_S * US).astype(
            np.int64)
        keep = later < cal.t0_us + cal.days * DAY_S * US
        again, later = again[keep], later[keep]
        a = np.concatenate([a, a[again]])
        ts = np.concatenate([ts, later])
        cp = np.concatenate([cp, cp[again]])
        amount = np.concatenate([amount, round_to(
            amount[again] * rng.lognormal(0.0, 0.5, size=again.size), 10_000)])
        elderly = pop.seg[a] == ELDERLY
        u = rng.random(a.size)
        chan = np.where(u < np.where(elderly, 0.35, 0.08), BRANCH,
                        np.where(u < 0.9, MOBILE, INTERNET)).astype(np.int8)
        self._debit(a, ts, cp, amount, chan, texts.P2P)

    def monthly(self) -> None:
        pop, cal, rng = self.pop, self.cal, self.rng
        salaried = self._accounts((SALARIED,), (NORMAL,))
        for dom in np.unique(pop.salary_dom[salaried]):
            who = salaried[pop.salary_dom[salaried] == dom]
            for d in cal.day_of_month_index(int(dom)):
                on = who[np.floor(pop.opened_day[who]) + 1 <= d]
                if not on.size:
                    continue
                ts = cal.local_times(rng, np.full(on.size, d), HOURS_BUSINESS)
                amount = round_to(pop.scale[on] * 45 * rng.lognormal(0, 0.05, on.size), 1000)
                self._incoming(on, ts, pop.employer[on], amount, API, texts.SALARY)
        bonus_days = np.flatnonzero(cal.tet_offset == -10)
        if bonus_days.size and salaried.size:
            on = salaried[rng.random(salaried.size) < 0.6]
            on = on[np.floor(pop.opened_day[on]) + 1 <= bonus_days[0]]
            ts = cal.local_times(rng, np.full(on.size, bonus_days[0]), HOURS_BUSINESS)
            amount = round_to(pop.scale[on] * 40 * rng.lognormal(0, 0.3, on.size), 100_000)
            self._incoming(on, ts, pop.employer[on], amount, API, texts.TET_BONUS)
        payers = self._accounts((SALARIED, ELDERLY, HOUSEHOLD), (NORMAL,))
        bill_dom = (pop.salary_dom[payers] + 3) % 12 + 1
        for b in range(3):
            for dom in range(1, 13):
                who = payers[(bill_dom + 3 * b) % 12 + 1 == dom]
                for d in cal.day_of_month_index(dom):
                    on = who[np.floor(pop.opened_day[who]) + 1 <= d]
                    if not on.size:
                        continue
                    ts = cal.local_times(rng, np.full(on.size, d), HOURS_PERSONAL)
                    amount = round_to(pop.scale[on] * (1.0 + b) * rng.lognormal(0, 0.2, on.size),
                                      1000)
                    chan = np.where(rng.random(on.size) < 0.5, API, MOBILE).astype(np.int8)
                    self._debit(on, ts, pop.bills[on, b], amount, chan, texts.BILL)
        students = self._accounts((STUDENT,), (NORMAL,))
        for d in cal.month_starts():
            day = np.minimum(d + rng.integers(0, 5, size=students.size), cal.days - 1)
            on = np.floor(pop.opened_day[students]) + 1 <= day
            ts = cal.local_times(rng, day[on], HOURS_PERSONAL)
            parent = pop.contacts[students[on], 0]
            amount = round_to(rng.lognormal(np.log(3e6), 0.4, int(on.sum())), 100_000)
            self._incoming(students[on], ts, parent, amount, MOBILE, texts.ALLOWANCE)
        elderly = self._accounts((ELDERLY,), (NORMAL,))
        gov = pop.parties.groups["biller"][0]
        for d in cal.day_of_month_index(5):
            on = elderly[np.floor(pop.opened_day[elderly]) + 1 <= d]
            ts = cal.local_times(rng, np.full(on.size, d), HOURS_BUSINESS)
            amount = round_to(pop.scale[on] * 20, 1000)
            self._incoming(on, ts, np.full(on.size, gov, dtype=np.int32), amount, API,
                           texts.PENSION)

    def incoming_p2p(self) -> None:
        pop, cal, rng = self.pop, self.cal, self.rng
        acc = self._accounts((SALARIED, STUDENT, ELDERLY, HOUSEHOLD), (NORMAL, MULE))
        a, day = active_counts(pop, cal, rng, acc, np.full(acc.size, 0.12), cal.p2p_factor())
        ts = times(cal, rng, day, None)
        payer = pop.contacts[a, rng.integers(0, CONTACTS, size=a.size)]
        ext = payer >= pop.n
        amount = round_to(pop.scale[a] * rng.lognormal(0.5, 1.0, size=a.size), 10_000)
        self.ledger.payments(ts=ts[ext], acc=a[ext], dirn=CREDIT, amount=amount[ext],
                             cp=payer[ext], chan=MOBILE, desc=texts.P2P)

    def merchants(self) -> None:
        pop, cal, rng = self.pop, self.cal, self.rng
        acc = self._accounts((MERCHANT,))
        if not acc.size:
            return
        rate = rng.lognormal(np.log(3.0), 0.7, size=acc.size)
        a, day = active_counts(pop, cal, rng, acc, rate, cal.spending_factor())
        ts = times(cal, rng, day, None)
        payer = rng.choice(pop.parties.groups["consumer"], size=a.size)
        amount = round_to(rng.lognormal(np.log(150e3), 0.9, size=a.size), 1000)
        self.ledger.payments(ts=ts, acc=a, dirn=CREDIT, amount=amount, cp=payer, chan=MOBILE,
                             desc=texts.PURCHASE)
        # payouts to suppliers and to the owner
        a, day = active_counts(pop, cal, rng, acc, pop.rate[acc], cal.business_factor())
        ts = times(cal, rng, day, None, HOURS_BUSINESS)
        cp = pop.suppliers[a, rng.integers(0, 12, size=a.size)]
        amount = round_to(pop.scale[a] * rng.lognormal(0, 0.7, size=a.size), 10_000)
        chan = np.where(rng.random(a.size) < 0.6, MOBILE, INTERNET).astype(np.int8)
        self._debit(a, ts, cp, amount, chan, texts.SUPPLIER)

    def businesses(self) -> None:
        pop, cal, rng = self.pop, self.cal, self.rng
        acc = self._accounts((SME, EXPORTER))
        if not acc.size:
            return
        bf = cal.business_factor()
        a, day = active_counts(pop, cal, rng, acc, pop.rate[acc] * 0.9, bf)
        ts = times(cal, rng, day, None, HOURS_BUSINESS)
        payer = pop.customers[a, rng.integers(0, 20, size=a.size)]
        amount = round_to(pop.scale[a] * rng.lognormal(0.3, 0.8, size=a.size), 10_000)
        usd = (pop.seg[a] == EXPORTER) & (rng.random(a.size) < 0.25)
        self._incoming(a[~usd], ts[~usd], payer[~usd], amount[~usd], INTERNET, texts.INVOICE)
        self._incoming(a[usd], ts[usd], payer[usd], round_to(amount[usd] / 25_000, 10),
                       INTERNET, texts.INVOICE, cur=1)
        a, day = active_counts(pop, cal, rng, acc, pop.rate[acc], bf)
        ts = times(cal, rng, day, None, HOURS_BUSINESS)
        cp = pop.suppliers[a, rng.integers(0, 12, size=a.size)]
        amount = round_to(pop.scale[a] * rng.lognormal(0, 0.8, size=a.size), 10_000)
        u = rng.random(a.size)
        chan = np.where(u < 0.5, INTERNET, np.where(u < 0.8, MOBILE, API)).astype(np.int8)
        rows = self._debit(a, ts, cp, amount, chan, texts.SUPPLIER)
        exporter = pop.seg[a] == EXPORTER
        self.suspicious_legit.append(rows[exporter & (chan != API)])

    def large_transfers(self) -> None:
        pop, cal, rng = self.pop, self.cal, self.rng
        acc = self._accounts((SALARIED, HOUSEHOLD, ELDERLY))
        p = min(0.9, 0.6 * cal.days / 365)
        who = acc[rng.random(acc.size) < p]
        day = rng.integers(0, cal.days, size=who.size)
        keep = np.floor(pop.opened_day[who]) + 1 <= day
        who, day = who[keep], day[keep]
        if not who.size:
            return
        ts = cal.local_times(rng, day, HOURS_BUSINESS)
        cp = pop.new_external("seller", who.size)
        amount = round_to(pop.scale[who] * rng.lognormal(np.log(150), 0.6, size=who.size), 1e6)
        chan = np.where(rng.random(who.size) < 0.4, BRANCH, MOBILE).astype(np.int8)
        desc = np.where(rng.random(who.size) < 0.5, texts.HOUSE, texts.MOTORBIKE)
        self.suspicious_legit.append(self._debit(who, ts, cp, amount, chan, desc))

    def idle_sessions(self) -> None:
        pop, cal, rng = self.pop, self.cal, self.rng
        acc = np.flatnonzero(np.isin(pop.role, (NORMAL, MULE))).astype(np.int32)
        a, day = active_counts(pop, cal, rng, acc, np.full(acc.size, 0.35), np.ones(cal.days))
        ts = times(cal, rng, day, pop.seg[a] == ELDERLY)
        chan = np.where(rng.random(a.size) < 0.85, MOBILE, INTERNET).astype(np.int8)
        fields = session_fields(pop, cal, self.ledger, rng, a, ts, chan)
        del fields  # the logins are the point; no payment follows
