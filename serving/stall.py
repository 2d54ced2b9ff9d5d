"""Stalled-partition watch: a partition whose position does not move while records wait.

A fetch can stall without an error: the bundled test broker stops listing a partition's
batches once there are ~15,000 of them and the fetch wait is short, and a real Kafka can stall
on a broken connection or a leader that stops answering. The consumer then sees nothing, its
lag grows and no exception is raised. :class:`StallWatch` is pure: the caller feeds it each
assigned partition's position and high watermark and re-establishes the fetch when told.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Stall:
    key: Hashable
    position: int
    end: int  # the high watermark now
    end_then: int  # the high watermark when the position last moved
    seconds: float  # how long the position has not moved


@dataclass(slots=True)
class _Seen:
    position: int
    end: int
    since: float


class StallWatch:
    """``observe`` returns a :class:`Stall` when a partition has had records waiting (high
    watermark above its position) and its position has not moved for ``timeout_s``; its timer
    then restarts, so a partition that stays stuck is reported once per ``timeout_s``."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._seen: dict[Hashable, _Seen] = {}

    def observe(self, key: Hashable, position: int, end: int, now: float) -> Stall | None:
        seen = self._seen.get(key)
        if seen is None or position != seen.position or position >= end:
            self._seen[key] = _Seen(position, end, now)
            return None
        if now - seen.since < self.timeout_s:
            return None
        stall = Stall(key, position, end, seen.end, now - seen.since)
        self._seen[key] = _Seen(position, end, now)
        return stall

    def forget(self) -> None:
        """Start over: a pause of the loop (the store down) must not count as a stall."""
        self._seen.clear()

    def retain(self, keys: set[Any]) -> None:
        """Keep only these partitions (the others are no longer assigned)."""
        for key in [k for k in self._seen if k not in keys]:
            del self._seen[key]
