"""Labels as a bank learns them: days after the event, for most (not all) fraud cases, plus a
few false alarms confirmed legitimate.

- A confirmed case yields an account-level label for each mule ('mule') or shell ('fraud')
  account, and payment-level 'fraud' labels for most victims' payments and some of the
  fraudsters' own payments. Quiet cases are confirmed less often.
- Delays are log-normal around ``label_delay_median_days``, shorter for chargebacks and longer
  for police reports.
- ``legit_label_rate`` of suspicious-looking legitimate payments (large transfers to new
  beneficiaries, payments from abroad) get a 'legit' label from an investigation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.simulator.calendar import DAY_S, US
from training.simulator.config import SimConfig
from training.simulator.ledger import Columns
from training.simulator.typologies.base import Case

SOURCES = ("investigation", "chargeback", "police")
INVESTIGATION, CHARGEBACK, POLICE = range(3)
SOURCE_DELAY = np.array([1.0, 0.6, 2.0])
LABEL_KINDS = ("fraud", "mule", "legit")
MIN_DELAY_US = 2 * 3600 * US


@dataclass
class LabelRows:
    """Columns of the label stream (before event ids and sorting)."""

    confirmed_us: np.ndarray
    acc: np.ndarray
    row: np.ndarray  # payment row id, -1 = account-level
    label: np.ndarray  # index into LABEL_KINDS
    typology: list[str | None]
    source: np.ndarray


def _delay(rng: np.random.Generator, cfg: SimConfig, source: np.ndarray) -> np.ndarray:
    days = cfg.label_delay_median_days * SOURCE_DELAY[source] * rng.lognormal(
        0.0, cfg.label_delay_sigma, size=source.size)
    return np.maximum((days * DAY_S * US).astype(np.int64), MIN_DELAY_US)


def make_labels(
    cases: list[Case], pay: Columns, legit_rows: np.ndarray, cfg: SimConfig,
    rng: np.random.Generator,
) -> LabelRows:
    conf: list[np.ndarray] = []
    acc: list[np.ndarray] = []
    row: list[np.ndarray] = []
    kind: list[np.ndarray] = []
    typ: list[str | None] = []
    src: list[np.ndarray] = []
    ts, owner = pay["ts"], pay["acc"]

    def add(rows: np.ndarray, label: int, source: np.ndarray, typology: str | None,
            account: np.ndarray | None = None, at: np.ndarray | None = None) -> None:
        when = ts[rows] if at is None else at
        conf.append(when + _delay(rng, cfg, source))
        acc.append(owner[rows] if account is None else account)
        row.append(rows if account is None else np.full(account.size, -1, dtype=np.int64))
        kind.append(np.full(source.size, label, dtype=np.int8))
        src.append(source)
        typ.extend([typology] * int(source.size))

    for case in cases:
        coverage = cfg.label_coverage * (0.75 if case.quiet else 1.0)
        if rng.random() >= coverage:
            continue
        actor = _cat(case.actor_rows)
        victim = _cat(case.victim_rows)
        for account, label in case.account_labels:
            mine = actor[owner[actor] == account] if actor.size else actor
            if not mine.size:
                continue
            first = int(ts[mine].min())
            source = np.array([POLICE if label == "mule" else INVESTIGATION])
            add(mine[:1], LABEL_KINDS.index(label), source, case.typology,
                account=np.array([account], dtype=np.int32), at=np.array([first]))
        pick = victim[rng.random(victim.size) < 0.9]
        if pick.size:
            chargeback = case.typology.startswith("account_takeover")
            p_first = 0.6 if chargeback else 0.5
            source = np.where(rng.random(pick.size) < p_first,
                              CHARGEBACK if chargeback else POLICE, INVESTIGATION)
            add(pick, 0, source.astype(np.int64), case.typology)
        pick = actor[rng.random(actor.size) < 0.4]
        if pick.size:
            add(pick, 0, np.full(pick.size, POLICE), case.typology)
    legit = legit_rows[rng.random(legit_rows.size) < cfg.legit_label_rate]
    if legit.size:
        add(np.sort(legit), 2, np.full(legit.size, INVESTIGATION), None)
    if not conf:
        e = np.empty(0, dtype=np.int64)
        return LabelRows(e, e.astype(np.int32), e, e.astype(np.int8), [], e)
    return LabelRows(np.concatenate(conf), np.concatenate(acc).astype(np.int32),
                     np.concatenate(row).astype(np.int64), np.concatenate(kind),
                     typ, np.concatenate(src).astype(np.int64))


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    parts = [p for p in parts if p.size]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
