"""How an account's ranked risk fades with inactivity: one setting for the high-risk list
(:mod:`serving.risk`) and the evaluation of that ranking (:mod:`training.evaluate`).

The risk of an account is its peak payment score halved for every ``RISK_HALF_LIFE_DAYS`` of
inactivity. Seven days: measured on the simulator (5,000 accounts × 90 days, test window), the
precision of the top 20 accounts of the daily ranking is 0.950 without fading, 0.903 / 0.927 /
0.933 / 0.940 with a half-life of 1 / 3 / 7 / 14 days (an account that stopped weeks ago still
counts as involved there), while with 7 days an account quiet for a month keeps 1/16 of its
peak: it ranks below one active today with a lower peak. The case store keeps its order key
(``account_risk.risk_key``) in these units: a new value needs a migration that recomputes the
keys (see ``serving/migrations/versions/0004_risk_fades.py``).
"""

from __future__ import annotations

from typing import Final

RISK_HALF_LIFE_DAYS: Final = 7.0
RISK_HALF_LIFE_S: Final = RISK_HALF_LIFE_DAYS * 86400.0


def faded(score: float, idle_s: float) -> float:
    """``score`` after ``idle_s`` seconds without activity (none when not positive)."""
    return score * 2.0 ** (-max(0.0, idle_s) / RISK_HALF_LIFE_S)
