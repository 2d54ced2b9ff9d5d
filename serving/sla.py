"""Deadlines per case state (the SLA clock of the investigators' queues).

A case's clock starts when it enters its state (``cases.updated_at``; assignment does not reset
it). ``CANHGIAC_SLA_HOURS`` overrides the defaults, e.g. ``freeze_requested=2,open=12``.
"""

from __future__ import annotations

from dataclasses import dataclass

from serving.cases import STATUSES, TERMINAL

# hours a case may stay in a state before it is overdue; a freeze request waits for a second
# person while the money can still leave, so its clock is the shortest
DEFAULT_HOURS: dict[str, float] = {
    "open": 24.0, "under_review": 72.0, "freeze_requested": 4.0, "frozen": 168.0,
}


class SlaConfigError(ValueError):
    """``CANHGIAC_SLA_HOURS`` cannot be read."""


@dataclass(frozen=True, slots=True)
class Sla:
    hours: tuple[tuple[str, float], ...]

    def limit_s(self, status: str) -> float | None:
        for state, h in self.hours:
            if state == status:
                return h * 3600.0
        return None

    def as_dict(self) -> dict[str, float]:
        return dict(self.hours)


def parse(text: str | None) -> Sla:
    """``state=hours,...`` over the defaults; unknown states or bad numbers raise."""
    hours = dict(DEFAULT_HOURS)
    for part in (text or "").split(","):
        if not part.strip():
            continue
        state, sep, value = part.partition("=")
        state = state.strip()
        if not sep or state not in STATUSES or state in TERMINAL:
            raise SlaConfigError(f"CANHGIAC_SLA_HOURS: '{part.strip()}' is not "
                                 f"state=hours with a state of {', '.join(DEFAULT_HOURS)}")
        try:
            h = float(value)
        except ValueError:
            raise SlaConfigError(f"CANHGIAC_SLA_HOURS: '{value.strip()}' is not a number "
                                 "of hours") from None
        if not 0 < h < 24 * 3650:
            raise SlaConfigError(f"CANHGIAC_SLA_HOURS: {state} needs 0 < hours < 87600")
        hours[state] = h
    return Sla(tuple((s, hours[s]) for s in STATUSES if s in hours))


@dataclass(frozen=True, slots=True)
class Clock:
    age_s: float
    limit_s: float | None
    overdue: bool


def clock(sla: Sla, status: str, entered_at: float, at: float) -> Clock:
    limit = sla.limit_s(status)
    age = max(0.0, at - entered_at)
    return Clock(age, limit, limit is not None and age > limit)
