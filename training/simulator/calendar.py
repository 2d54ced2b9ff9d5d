"""Time in the simulated bank: local days in Asia/Ho_Chi_Minh, weekly rhythm, Tết, salary days.

Times are integer microseconds since the Unix epoch (UTC) throughout the simulator; local
clock times are converted with the fixed +07:00 offset of Vietnam (no daylight saving).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np

LOCAL_OFFSET_S = 7 * 3600
DAY_S = 86_400
US = 1_000_000

# First day of the lunar new year (Tết Nguyên Đán).
TET_DATES = (
    date(2024, 2, 10), date(2025, 1, 29), date(2026, 2, 17), date(2027, 2, 6),
    date(2028, 1, 26), date(2029, 2, 13), date(2030, 2, 3), date(2031, 1, 23),
)

# Relative activity by local hour (0..23).
HOURS_PERSONAL = np.array(
    [0.3, 0.15, 0.1, 0.08, 0.1, 0.3, 1.0, 2.0, 2.6, 2.8, 3.0, 3.6, 3.8, 2.8, 2.4, 2.4,
     2.6, 3.0, 3.6, 4.2, 4.4, 4.0, 2.6, 1.0]
)
HOURS_BUSINESS = np.array(
    [0.05, 0.03, 0.02, 0.02, 0.03, 0.1, 0.4, 1.5, 4.0, 5.0, 5.0, 4.5, 2.5, 3.5, 4.8, 5.0,
     4.6, 3.4, 1.2, 0.6, 0.4, 0.3, 0.2, 0.1]
)
HOURS_ELDERLY = np.array(
    [0.05, 0.03, 0.02, 0.02, 0.3, 1.5, 3.0, 4.0, 4.5, 4.5, 4.0, 3.0, 1.8, 1.5, 2.5, 3.0,
     2.8, 2.2, 1.5, 1.2, 0.8, 0.4, 0.15, 0.05]
)


class Calendar:
    """Days of one simulation and their activity multipliers."""

    def __init__(self, start: date, days: int) -> None:
        self.start = start
        self.days = days
        midnight = datetime(start.year, start.month, start.day, tzinfo=UTC)
        self.t0_s = int(midnight.timestamp()) - LOCAL_OFFSET_S
        self.t0_us = self.t0_s * US
        self.dates = [start + timedelta(days=d) for d in range(days)]
        self.weekday = np.array([d.weekday() for d in self.dates])
        self.dom = np.array([d.day for d in self.dates])
        self.weekend = self.weekday >= 5
        tet = np.array([self._tet_offset(d) for d in self.dates])
        self.tet_offset = tet  # days from the nearest Tết (negative = before), large if none
        self.end_us = self.t0_us + days * DAY_S * US

    @staticmethod
    def _tet_offset(d: date) -> int:
        return min(((d - t).days for t in TET_DATES), key=abs)

    def month_starts(self) -> list[int]:
        """Day indexes at which a calendar month starts (plus day 0)."""
        return [0] + [i for i in range(1, self.days) if self.dom[i] == 1]

    def spending_factor(self) -> np.ndarray:
        """Consumer purchase multiplier per day: weekends, the weeks before Tết, Tết itself."""
        f = np.where(self.weekend, 1.25, 1.0)
        tet = self.tet_offset
        f = np.where((tet >= -14) & (tet < -1), f * 1.7, f)
        f = np.where((tet >= -1) & (tet <= 3), f * 0.6, f)
        return f

    def p2p_factor(self) -> np.ndarray:
        """Person-to-person transfer multiplier: lì xì (lucky money) around Tết."""
        tet = self.tet_offset
        f = np.where(self.weekend, 1.1, 1.0)
        f = np.where((tet >= -3) & (tet <= 4), f * 2.5, f)
        return f

    def business_factor(self) -> np.ndarray:
        """Business activity: weekdays, closed over Tết, busy before it."""
        tet = self.tet_offset
        f = np.where(self.weekday == 6, 0.1, np.where(self.weekday == 5, 0.5, 1.0))
        f = np.where((tet >= -20) & (tet < -2), f * 1.4, f)
        f = np.where((tet >= -2) & (tet <= 5), f * 0.15, f)
        return f

    def day_of_month_index(self, dom: int) -> list[int]:
        """Day indexes whose day-of-month equals ``dom`` (clamped to month length)."""
        out = []
        for i, d in enumerate(self.dates):
            nxt = d + timedelta(days=1)
            last = nxt.month != d.month
            if d.day == dom or (last and d.day < dom):
                out.append(i)
        return out

    def local_times(
        self, rng: np.random.Generator, day: np.ndarray, profile: np.ndarray
    ) -> np.ndarray:
        """Microsecond timestamps on the given day indexes at hours drawn from ``profile``."""
        p = profile / profile.sum()
        hour = rng.choice(24, size=day.size, p=p)
        within = rng.integers(0, 3600 * 1000, size=day.size)  # milliseconds
        return (
            self.t0_us
            + day.astype(np.int64) * DAY_S * US
            + hour.astype(np.int64) * 3600 * US
            + within.astype(np.int64) * 1000
        )
