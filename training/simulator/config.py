"""The simulator's frozen configuration (:class:`SimConfig`) and its validation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

MAX_FRAUD_RATE = 0.01


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines a simulation: same config, same bytes.

    ``fraud_rate`` is the share of payment rows that are fraudulent (0 .. 1 %).
    ``start`` is the first local (Asia/Ho_Chi_Minh) day simulated.
    Labels are confirmed ``label_delay_median_days`` (log-normal, ``label_delay_sigma``) after
    the event; ``label_coverage`` is the share of fraud cases that are ever confirmed and
    ``legit_label_rate`` the share of legitimate suspicious-looking payments an investigator
    confirms as legit (false alarms).
    """

    accounts: int = 2000
    days: int = 30
    seed: int = 7
    fraud_rate: float = 0.004
    start: date = date(2026, 1, 1)
    bank_code: str = "CGB"
    label_delay_median_days: float = 7.0
    label_delay_sigma: float = 0.8
    label_coverage: float = 0.75
    legit_label_rate: float = 0.03
    mule_forward_minutes: tuple[float, float] = (1.0, 30.0)
    # share of the fraud budget per typology family (mule, takeover, shell, scam, reported
    # beneficiary, structuring)
    typology_mix: tuple[float, ...] = (0.32, 0.12, 0.25, 0.11, 0.12, 0.08)
    # share of reported accounts (mules, scam beneficiaries) SIMO lists, and the median days
    # from the first victim's payment to the listing
    watchlist_coverage: float = 0.7
    watchlist_delay_median_days: float = 5.0
    quiet_share: float = 0.35

    def validate(self) -> SimConfig:
        """Return self, or raise ``ValueError`` naming the bad option."""
        if not 50 <= self.accounts <= 5_000_000:
            raise ValueError(f"accounts must be between 50 and 5000000, got {self.accounts}")
        if not 1 <= self.days <= 3660:
            raise ValueError(f"days must be between 1 and 3660, got {self.days}")
        if not 0.0 <= self.fraud_rate <= MAX_FRAUD_RATE:
            raise ValueError(
                f"fraud_rate must be between 0 and {MAX_FRAUD_RATE}, got {self.fraud_rate}"
            )
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        lo, hi = self.mule_forward_minutes
        if not 0 < lo <= hi:
            raise ValueError(f"mule_forward_minutes must satisfy 0 < lo <= hi, got {lo}, {hi}")
        if self.label_delay_median_days <= 0 or self.label_delay_sigma < 0:
            raise ValueError("label delay median must be > 0 and sigma >= 0")
        for name in ("label_coverage", "legit_label_rate", "quiet_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if len(self.typology_mix) != 6 or min(self.typology_mix) < 0 or sum(
            self.typology_mix
        ) <= 0:
            raise ValueError("typology_mix needs six non-negative shares")
        if not 0.0 <= self.watchlist_coverage <= 1.0 or self.watchlist_delay_median_days <= 0:
            raise ValueError("watchlist_coverage must be between 0 and 1 and the delay > 0")
        if not self.bank_code.strip():
            raise ValueError("bank_code must not be empty")
        return self
