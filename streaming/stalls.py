"""Stalled partitions: the high-water mark grows, the position does not move (pure).

A fetch can stall without an error: a broken connection, a leader that stops answering, or the
bundled test broker, whose fetch lists every batch of a partition and returns nothing once that
takes longer than the fetch wait. The consumer then polls empty batches forever while its lag
grows. :class:`StallWatch` is told, about once a second, each assigned partition's position and
high-water mark; when data is waiting (high-water mark above the position) and the position has
not moved for ``after_s``, it logs one warning and calls ``refetch(tp)``, then waits another
``after_s`` before it says so again. The scorer and the case-store projection both use it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)


class StallWatch:
    def __init__(self, after_s: float, refetch: Callable[[Hashable], None]) -> None:
        self.after_s = after_s
        self.refetch = refetch
        self._since: dict[Hashable, tuple[int | None, float]] = {}  # position, since when
        self.stalled = 0

    def observe(self, tp: Hashable, position: int | None, highwater: int | None,
                now: float) -> bool:
        """One observation; True when the partition is declared stalled now."""
        last = self._since.get(tp)
        if last is None or last[0] != position:
            self._since[tp] = (position, now)
            return False
        waiting = highwater is not None and (position is None or highwater > position)
        if not waiting:
            self._since[tp] = (position, now)
            return False
        if now - last[1] < self.after_s:
            return False
        self.stalled += 1
        log.warning("partition stalled: data waits but the position has not moved; "
                    "re-establishing the fetch", extra={
                        "partition": str(tp), "position": position, "highwater": highwater,
                        "seconds": round(now - last[1], 1)})
        self._since[tp] = (position, now)
        self.refetch(tp)
        return True

    def forget(self, tp: Hashable) -> None:
        self._since.pop(tp, None)
