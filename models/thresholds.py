"""Decision thresholds chosen from alert budgets, and the decision rule that applies them.

An alert budget is the share of payments the investigation team can look at: a review budget
of 1 % means the review threshold is the score above which 1 % of the validation payments fall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALLOW, REVIEW, HOLD = "allow", "review", "hold"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Scores ``>= hold`` are held, ``>= review`` reviewed, the rest allowed."""

    review: float
    hold: float
    review_budget: float
    hold_budget: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.review <= self.hold <= 1.0:
            raise ValueError(f"need 0 <= review ({self.review}) <= hold ({self.hold}) <= 1")

    def as_dict(self) -> dict[str, float]:
        return {"review": self.review, "hold": self.hold,
                "review_budget": self.review_budget, "hold_budget": self.hold_budget}


def top_k(n: int, budget: float) -> int:
    """How many of ``n`` payments a budget (share, 0 < budget <= 1) allows; at least one."""
    if not 0.0 < budget <= 1.0:
        raise ValueError(f"budget must be in (0, 1], got {budget}")
    return max(1, math.ceil(budget * n))


def threshold_for_budget(scores: np.ndarray, budget: float) -> float:
    """The smallest score among the top ``budget`` share of ``scores``."""
    if scores.size == 0:
        raise ValueError("cannot choose a threshold from no scores")
    k = top_k(scores.size, budget)
    # the k-th largest value: partition instead of a full sort
    return float(np.partition(scores, scores.size - k)[scores.size - k])


def from_budgets(scores: np.ndarray, review_budget: float, hold_budget: float) -> Thresholds:
    if hold_budget > review_budget:
        raise ValueError("the hold budget must not exceed the review budget")
    review = threshold_for_budget(scores, review_budget)
    hold = max(review, threshold_for_budget(scores, hold_budget))
    return Thresholds(review=review, hold=hold, review_budget=review_budget,
                      hold_budget=hold_budget)


def decide(scores: np.ndarray, review: float, hold: float) -> list[str]:
    """``hold`` / ``review`` / ``allow`` per score (vectorised)."""
    codes = (scores >= review).astype(np.int8) + (scores >= hold).astype(np.int8)
    names = np.array([ALLOW, REVIEW, HOLD], dtype=object)
    out: list[str] = names[codes].tolist()
    return out
