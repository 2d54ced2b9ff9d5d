"""SIMO's watch list as the bank receives it: accounts that victims reported (this bank's mules,
scam beneficiaries at other banks), listed days after the first victim's payment.

``watchlist_coverage`` of the reported accounts are listed, ``watchlist_delay_median_days``
(log-normal, sigma 0.6) after the money first arrived; entries listed after the simulated period
are dropped. One entry per account (the topic is compacted by bank and account)."""

from __future__ import annotations

import numpy as np

from training.simulator.calendar import DAY_S, US, Calendar
from training.simulator.config import SimConfig
from training.simulator.typologies.base import Case

SOURCE = "SIMO"
REASON = "receiving scam money"


def make_watchlist(cases: list[Case], cfg: SimConfig, cal: Calendar, rng: np.random.Generator
                   ) -> list[tuple[int, int, str, str]]:
    """(party, listed_us, source, reason), in listing order."""
    first: dict[int, int] = {}
    for case in cases:
        for party, t in case.reported:
            if party not in first or t < first[party]:
                first[party] = t
    out = []
    for party in sorted(first):
        if rng.random() >= cfg.watchlist_coverage:
            continue
        delay_days = cfg.watchlist_delay_median_days * rng.lognormal(0.0, 0.6)
        listed = first[party] + int(delay_days * DAY_S * US)
        if listed < cal.end_us:
            out.append((party, listed, SOURCE, REASON))
    out.sort(key=lambda e: (e[1], e[0]))
    return out
