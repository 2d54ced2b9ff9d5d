"""What every typology shares: the context it writes into, the case record that later becomes
labels and ground truth, and helpers for fraudulent online sessions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from training.simulator.calendar import DAY_S, US, Calendar
from training.simulator.config import SimConfig
from training.simulator.ledger import MOBILE, Ledger
from training.simulator.population import Population
from training.simulator.sessions import emit_logins

TYPOLOGIES = (
    "mule_ring", "mule_ring_quiet",
    "account_takeover", "account_takeover_quiet",
    "shell_business", "shell_business_quiet",
    "scam_victim", "scam_victim_quiet",
    "reported_beneficiary", "reported_beneficiary_quiet",
    "structuring", "structuring_quiet",
)
TYP = {name: i + 1 for i, name in enumerate(TYPOLOGIES)}  # 0 = legitimate


def typology_name(code: int) -> str | None:
    return None if code == 0 else TYPOLOGIES[code - 1]


@dataclass
class Case:
    """One fraud case: its typology, the accounts to label as a whole ('mule' / 'fraud'), the
    payment rows on victims' side (labelled one by one) and the rows on fraudsters' accounts."""

    typology: str
    quiet: bool
    account_labels: list[tuple[int, str]] = field(default_factory=list)
    victim_rows: list[np.ndarray] = field(default_factory=list)
    actor_rows: list[np.ndarray] = field(default_factory=list)
    # accounts that victims at other banks report to SIMO: (account, time money first arrived)
    reported: list[tuple[int, int]] = field(default_factory=list)
    # the app's signals on the victim's transfers (training.simulator.app_signals): the
    # probability of an active call and of a detected remote-access app; None = the
    # legitimate rates of the account
    on_call_p: float | None = None
    remote_p: float | None = None


@dataclass
class Context:
    cfg: SimConfig
    pop: Population
    cal: Calendar
    ledger: Ledger
    rng: np.random.Generator
    cases: list[Case] = field(default_factory=list)
    # the stream of the cases' app-signal mechanisms (training.simulator.app_signals), apart
    # from ``rng`` so that the signals change nothing else in a simulation
    app_rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def day_start_us(self, day: float) -> int:
        return int(self.cal.t0_us + int(day * DAY_S) * US)

    def active_from_day(self, acc: int) -> int:
        return max(0, int(np.floor(self.pop.opened_day[acc])) + 1)

    def online_debits(
        self, acc: np.ndarray | int, ts: np.ndarray, cp: np.ndarray, amount: np.ndarray,
        typ: int, *, ip: np.ndarray | int, ctry: np.ndarray | int, dev: np.ndarray | int,
        desc: np.ndarray | int, chan: int = MOBILE, one_session: bool = False,
        credit_typ: int | None = None, failed_p: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Debits made in online sessions (a login on ``dev``/``ip``/``ctry`` before each, or one
        login before the first when ``one_session``); returns (debit rows, credit rows)."""
        ts = np.asarray(ts, dtype=np.int64)
        n = ts.size
        acc_a = np.broadcast_to(np.asarray(acc, dtype=np.int32), (n,)).copy()
        ip_a = np.broadcast_to(np.asarray(ip, dtype=np.int32), (n,)).copy()
        ctry_a = np.broadcast_to(np.asarray(ctry, dtype=np.int16), (n,)).copy()
        dev_a = np.broadcast_to(np.asarray(dev, dtype=np.int32), (n,)).copy()
        chan_a = np.full(n, chan, dtype=np.int8)
        if one_session:
            sess = np.full(n, self.ledger.new_sessions(1)[0], dtype=np.int64)
            first = np.argmin(ts)
            emit_logins(self.ledger, self.rng, self.cal, acc_a[[first]], ts[[first]],
                        ip_a[[first]], ctry_a[[first]], dev_a[[first]], chan_a[[first]],
                        sess[[first]], typ=typ, before_ms=(60_000, 600_000), failed_p=failed_p)
        else:
            sess = self.ledger.new_sessions(n)
            emit_logins(self.ledger, self.rng, self.cal, acc_a, ts, ip_a, ctry_a, dev_a, chan_a,
                        sess, typ=typ, before_ms=(10_000, 240_000), failed_p=failed_p)
        return self.ledger.transfer(
            ts=ts, payer=acc_a, payee=np.asarray(cp, dtype=np.int32), amount=amount, chan=chan_a,
            typ=typ, credit_typ=credit_typ, desc=desc, sess=sess, ip=ip_a, ctry=ctry_a, dev=dev_a,
        )


def quiet_next(ctx: Context, family: str) -> bool:
    """Loud for the first case of a family, quiet for the second, then at random."""
    done = sum(1 for c in ctx.cases if c.typology.startswith(family))
    return done == 1 or (done > 1 and bool(ctx.rng.random() < ctx.cfg.quiet_share))
