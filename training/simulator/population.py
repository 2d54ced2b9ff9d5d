"""The bank's population: its accounts (personal and business segments, fraud roles), the
counterparties at other banks, devices and IP addresses, all as integer-indexed tables.

Own accounts are parties ``0 .. n-1``; counterparties at other banks (people, companies,
billers, e-wallets, cash-out accounts) follow. Strings are made once at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from training.simulator.calendar import DAY_S, US, Calendar
from training.simulator.config import SimConfig

SEGMENTS = ("salaried", "student", "elderly", "household", "merchant", "sme", "exporter")
SALARIED, STUDENT, ELDERLY, HOUSEHOLD, MERCHANT, SME, EXPORTER = range(7)
BUSINESS_SEGMENTS = (MERCHANT, SME, EXPORTER)
SEGMENT_SHARES = np.array([0.46, 0.14, 0.14, 0.08, 0.09, 0.06, 0.03])
# mean debits per day and median debit amount (VND) by segment
SEGMENT_RATE = np.array([0.85, 0.75, 0.3, 1.0, 0.5, 1.6, 1.8])
SEGMENT_SCALE = np.array([250e3, 90e3, 300e3, 300e3, 3e6, 12e6, 40e6])

ROLES = ("normal", "mule", "shell", "victim", "takeover_victim")
NORMAL, MULE, SHELL, VICTIM, TAKEOVER_VICTIM = range(5)

COUNTRIES = ("VN", "KH", "CN", "TH", "SG", "KR", "JP", "US", "MY", "LA", "HK", "TW", "AU",
             "DE", "FR", "GB", "PH", "ID")
CTRY = {c: i for i, c in enumerate(COUNTRIES)}
TRAVEL_COUNTRIES = np.array([CTRY[c] for c in ("TH", "SG", "KR", "JP", "US", "MY", "CN", "TW",
                                               "AU", "FR", "HK", "LA", "KH")])
BUSINESS_ABROAD = np.array([CTRY[c] for c in ("CN", "KR", "JP", "SG", "US", "TW", "HK", "DE")])
_FIRST_OCTETS = {
    "VN": (14, 27, 42, 113, 115, 116, 117, 123, 171, 183), "KH": (36, 103, 110, 175, 202),
    "CN": (36, 39, 58, 113, 119, 183, 223), "TH": (1, 49, 58, 110, 171, 184),
    "SG": (8, 13, 103, 119, 175), "KR": (1, 14, 121, 175, 211), "JP": (60, 106, 126, 133, 153),
    "US": (3, 23, 34, 64, 98, 173), "MY": (60, 115, 175, 210), "LA": (115, 183, 202),
    "HK": (14, 42, 113, 203), "TW": (1, 36, 59, 114, 220), "AU": (1, 49, 101, 203),
    "DE": (5, 46, 78, 84, 91), "FR": (2, 31, 78, 90, 109), "GB": (2, 31, 51, 81, 86),
    "PH": (49, 112, 120, 124), "ID": (36, 103, 114, 180, 202),
}
OTHER_BANKS = ("VCB", "BIDV", "VTB", "TCB", "ACB", "MB", "VPB", "TPB", "STB", "AGR", "SHB",
               "HDB", "VIB", "OCB", "MSB")
BANK_WEIGHTS = np.array([14, 12, 12, 11, 7, 11, 8, 5, 6, 6, 4, 4, 3, 3, 3], dtype=float)
CONTACTS = 8
FAMILY_SHARE = 0.25  # personal customers living with another customer (shared home IPs)
FAMILY_PHONE_P = 0.2  # share of their sessions on that person's phone, when they use it


@dataclass
class Parties:
    """Counterparty table: own accounts first, then other banks' accounts by group."""

    n_own: int
    bank: list[int] = field(default_factory=list)  # index into bank names, -1 = own bank
    kind: list[str] = field(default_factory=list)
    groups: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.n_own + len(self.bank)

    def add(self, group: str, n: int, rng: np.random.Generator, bank: int | None = None) -> (
        np.ndarray
    ):
        """Add ``n`` accounts at other banks (weighted by bank size unless ``bank`` given)."""
        start = self.size
        if bank is None:
            banks = rng.choice(len(OTHER_BANKS), size=n, p=BANK_WEIGHTS / BANK_WEIGHTS.sum())
        else:
            banks = np.full(n, bank)
        self.bank.extend(int(b) for b in banks)
        self.kind.extend([group] * n)
        idx = np.arange(start, start + n, dtype=np.int32)
        prev = self.groups.get(group)
        self.groups[group] = idx if prev is None else np.concatenate([prev, idx])
        return idx


class Population:
    """Accounts with their profiles and fraud roles, plus counterparties, devices and IPs."""

    def __init__(self, cfg: SimConfig, cal: Calendar, rng: np.random.Generator) -> None:
        n = cfg.accounts
        self.n = n
        self.cal = cal
        self.rng = rng
        self.seg = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARES).astype(np.int8)
        self.role = np.zeros(n, dtype=np.int8)
        self._assign_fraud_accounts(cfg)
        self.is_business = np.isin(self.seg, BUSINESS_SEGMENTS) | (self.role == SHELL)
        self.rate = SEGMENT_RATE[self.seg] * rng.lognormal(-0.18, 0.6, size=n)
        self.scale = SEGMENT_SCALE[self.seg] * rng.lognormal(0.0, 0.45, size=n)
        self._dates(cfg)
        self._devices_and_ips()
        self.parties = Parties(n_own=n)
        self._counterparties()

    # ------------------------------------------------------------------ roles
    def _assign_fraud_accounts(self, cfg: SimConfig) -> None:
        est_rows = cfg.accounts * cfg.days * 1.6
        budget = cfg.fraud_rate * est_rows
        mix = np.array(cfg.typology_mix) / sum(cfg.typology_mix)
        n_mule = 0 if budget * mix[0] < 1 else max(2, math.ceil(budget * mix[0] / 36))
        n_shell = 0 if budget * mix[2] < 1 else max(1, math.ceil(budget * mix[2] / 80))
        n_mule = min(n_mule, self.n // 20)
        n_shell = min(n_shell, self.n // 40)
        pick = self.rng.permutation(self.n)[: n_mule + n_shell]
        mules, shells = pick[:n_mule], pick[n_mule:]
        self.role[mules] = MULE
        self.role[shells] = SHELL
        # mules look like students (most) or young workers; shells look like SMEs
        self.seg[mules] = np.where(self.rng.random(n_mule) < 0.7, STUDENT, SALARIED)
        self.seg[shells] = SME

    def accounts_with_role(self, role: int) -> np.ndarray:
        return np.flatnonzero(self.role == role).astype(np.int32)

    # ------------------------------------------------------------------ dates
    def _dates(self, cfg: SimConfig) -> None:
        n, rng, cal = self.n, self.rng, self.cal
        age_days = rng.gamma(2.0, 700.0, size=n) + 30
        age_days = np.where(self.seg == STUDENT, rng.gamma(2.0, 250.0, size=n) + 20, age_days)
        opened_day = -age_days
        new = (rng.random(n) < 0.04) & (self.seg != ELDERLY)
        opened_day = np.where(new, rng.uniform(0, max(cfg.days - 1, 1), size=n), opened_day)
        mule = self.role == MULE
        opened_day = np.where(mule, rng.uniform(-60, max(cfg.days * 0.5, 1), size=n), opened_day)
        shell = self.role == SHELL
        opened_day = np.where(shell, rng.uniform(-45, max(cfg.days * 0.4, 1), size=n),
                              opened_day)
        self.opened_us = (cal.t0_us + (opened_day * DAY_S).astype(np.int64) * US).astype(np.int64)
        self.opened_day = opened_day
        base_year = cfg.start.year
        by = np.select(
            [self.seg == STUDENT, self.seg == ELDERLY],
            [rng.integers(base_year - 23, base_year - 17, size=n),
             rng.integers(base_year - 85, base_year - 60, size=n)],
            rng.integers(base_year - 58, base_year - 22, size=n),
        )
        self.birth_year = by.astype(np.int32)
        reg_days = opened_day - rng.gamma(2.0, 900.0, size=n) - 20
        reg_days = np.where(shell, opened_day - rng.uniform(5, 120, size=n), reg_days)
        self.registered_us = (cal.t0_us + (reg_days * DAY_S).astype(np.int64) * US).astype(
            np.int64
        )
        # salaried: salary day of month; travellers: one trip
        self.salary_dom = rng.choice(np.array([1, 5, 10, 15, 25, 28]), size=n)
        p_trip = min(0.5, 0.07 * cfg.days / 30)
        traveller = (np.isin(self.seg, (SALARIED, HOUSEHOLD, ELDERLY))
                     & (rng.random(n) < p_trip) & (self.role == NORMAL))
        self.trip_start = np.where(traveller, rng.integers(0, max(cfg.days, 1), size=n), -1)
        self.trip_end = self.trip_start + rng.integers(3, 12, size=n)
        self.trip_ctry = rng.choice(TRAVEL_COUNTRIES, size=n).astype(np.int16)
        exporter = self.seg == EXPORTER
        self.abroad_share = np.where(exporter, rng.uniform(0.15, 0.6, size=n), 0.0)
        self.abroad_ctry = rng.choice(BUSINESS_ABROAD, size=n).astype(np.int16)

    # ------------------------------------------------------------------ devices, IPs
    def _devices_and_ips(self) -> None:
        n, rng = self.n, self.rng
        self.n_dev = np.where(rng.random(n) < 0.3, 2, 1).astype(np.int32)
        self.n_dev[self.seg == EXPORTER] = 2
        self.dev0 = np.concatenate([[0], np.cumsum(self.n_dev)[:-1]]).astype(np.int32)
        self.devices = int(self.n_dev.sum())
        # legitimate new devices: a phone replaced during the period, a device used on a trip
        self.new_phone_day = np.where(rng.random(n) < 0.02,
                                      rng.integers(0, max(self.cal.days, 1), size=n), -1)
        self.new_phone_dev = np.where(self.new_phone_day >= 0,
                                      self.devices + np.arange(n, dtype=np.int32), -1)
        self.devices += n
        traveller = self.trip_start >= 0
        self.trip_dev = np.where(traveller & (rng.random(n) < 0.15),
                                 self.devices + np.arange(n, dtype=np.int32), -1)
        self.devices += n
        self.ip_ctry: list[int] = []
        self.home_ip0 = self.new_ips(CTRY["VN"], 3 * n)[::3]  # three home IPs each
        self._families()
        self.trip_ip = self.new_ips_for(self.trip_ctry)
        self.abroad_ip = self.new_ips_for(self.abroad_ctry)

    def _families(self) -> None:
        """Legitimate sharing: a quarter of personal customers live with another customer of
        the bank (spouse, parent, grown-up child): they share the home's IP addresses, and a
        third of them sometimes use that person's phone (an elderly parent's transfers made on
        a child's phone)."""
        n, rng = self.n, self.rng
        self.family_dev = np.full(n, -1, dtype=np.int32)
        personal = np.flatnonzero(~np.isin(self.seg, BUSINESS_SEGMENTS) & (self.role == NORMAL))
        if personal.size < 2:
            return
        members = personal[rng.random(personal.size) < FAMILY_SHARE]
        head = rng.choice(personal, size=members.size)
        ok = head != members
        members, head = members[ok], head[ok]
        self.home_ip0[members] = self.home_ip0[head]
        phone = rng.random(members.size) < 1 / 3
        self.family_dev[members[phone]] = self.dev0[head[phone]]

    def new_devices(self, k: int) -> np.ndarray:
        idx = np.arange(self.devices, self.devices + k, dtype=np.int32)
        self.devices += k
        return idx

    def new_ips(self, ctry: int, k: int) -> np.ndarray:
        start = len(self.ip_ctry)
        self.ip_ctry.extend([ctry] * k)
        return np.arange(start, start + k, dtype=np.int32)

    def new_ips_for(self, ctry: np.ndarray) -> np.ndarray:
        start = len(self.ip_ctry)
        self.ip_ctry.extend(int(c) for c in ctry)
        return np.arange(start, start + ctry.size, dtype=np.int32)

    def home_device(self, acc: np.ndarray, day: np.ndarray | None = None) -> np.ndarray:
        """The customer's usual device(s); from ``new_phone_day`` on, the replacement phone."""
        second = self.rng.random(acc.size) < 0.25
        dev = self.dev0[acc] + np.where(second & (self.n_dev[acc] > 1), 1, 0)
        family = (self.family_dev[acc] >= 0) & (self.rng.random(acc.size) < FAMILY_PHONE_P)
        dev = np.where(family, self.family_dev[acc], dev)
        if day is not None:
            switched = (self.new_phone_day[acc] >= 0) & (day >= self.new_phone_day[acc])
            dev = np.where(switched & ~second, self.new_phone_dev[acc], dev)
        return dev.astype(np.int32)

    def home_ip(self, acc: np.ndarray) -> np.ndarray:
        return self.home_ip0[acc] + self.rng.integers(0, 3, size=acc.size).astype(np.int32)

    # ------------------------------------------------------------------ counterparties
    def _counterparties(self) -> None:
        n, rng, p = self.n, self.rng, self.parties
        p.add("consumer", max(200, 3 * n), rng)
        p.add("company", max(50, n // 4), rng)
        p.add("biller", 12, rng)
        p.add("ewallet", 4, rng)
        p.add("foreign_merchant", max(50, n // 10), rng)
        p.add("ext_merchant", max(50, n // 5), rng)
        p.add("atm", max(10, n // 200), rng, bank=-1)
        consumers = p.groups["consumer"]
        own_personal = np.flatnonzero(~self.is_business & (self.role == NORMAL))
        inside = rng.random((n, CONTACTS)) < 0.35
        ext = rng.choice(consumers, size=(n, CONTACTS))
        own = rng.choice(own_personal, size=(n, CONTACTS)) if own_personal.size else ext
        contacts = np.where(inside, own, ext).astype(np.int32)
        contacts[contacts == np.arange(n)[:, None]] = ext[contacts == np.arange(n)[:, None]]
        self.contacts = contacts
        companies = p.groups["company"]
        employers_in = np.flatnonzero(np.isin(self.seg, (SME, EXPORTER)) & (self.role == NORMAL))
        emp_ext = rng.choice(companies, size=n)
        emp_in = rng.choice(employers_in, size=n) if employers_in.size else emp_ext
        self.employer = np.where(rng.random(n) < 0.3, emp_in, emp_ext).astype(np.int32)
        self.suppliers = rng.choice(companies, size=(n, 12)).astype(np.int32)
        self.customers = rng.choice(companies, size=(n, 20)).astype(np.int32)
        self.merchants_in = np.flatnonzero((self.seg == MERCHANT) & (self.role == NORMAL))
        self.bills = rng.choice(p.groups["biller"], size=(n, 3)).astype(np.int32)

    def new_external(self, group: str, k: int) -> np.ndarray:
        return self.parties.add(group, k, self.rng)
