"""The garbage collector and a large feature state.

The feature state holds about 12 objects the collector tracks per account (measured on the
simulator's bank: 240,000 for 20,000 accounts). CPython's full collection walks every tracked
object, so it grew with the state: 164 ms with 20,000 accounts, about ten times as long at
100,000 and seconds at a million, a stall of the whole loop whenever one came. Its own
trigger (once a quarter of the long-lived objects are new) makes them rare but unbounded.

The state lives for hours and is freed by reference counting (an account's state holds no
reference cycle: an engine dropped after ``gc.freeze()`` leaves the frozen generation at once),
so it need not be walked. :class:`LongLived` moves it out of the collector's sight with
``gc.freeze()``:

* right after a restore (the restored state is the bulk of it), without a collection first,
  which would walk it once more: only reference cycles that are garbage at that moment stay
  uncollected (one-time, small);
* then every ``interval_s``: a full collection (of what was created since the last freeze, the
  frozen objects are not walked) and a freeze of the survivors, so that accounts added since
  the last freeze are moved out too and a cycle that became garbage is collected first.

Objects frozen and dropped later are still freed by reference counting; only a reference cycle
among frozen objects would never be collected, and the feature state makes none.

Counting the frozen objects (``gc.get_freeze_count()``) walks all of them with the GIL held:
8.5 ms for 1.2 million objects on the benchmark machine, so about 85 ms at a million accounts.
It is therefore counted when the keeper is made (at start-up), after a restore (assignment
work, not per payment) and then at most every ``count_every_s`` (10 minutes), never when the
metrics are scraped: a ``Gauge.set_function`` did it on every scrape, and under
``bench.stream``'s scrapes every 0.2 s the count took 10.7 % of the scorer's GIL samples (the
whole metrics handler 11.7 %).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

COUNT_EVERY_S = 600.0  # how often a tick recounts the frozen objects for the metric


class LongLived:
    """Keeps the scorer's long-lived objects (the feature state) out of full collections."""

    def __init__(self, interval_s: float, on_count: Callable[[int], None] | None = None,
                 count_every_s: float = COUNT_EVERY_S) -> None:
        self.interval_s = float(interval_s)
        self._frozen_at = time.monotonic()
        self._on_count = on_count
        self.count_every_s = float(count_every_s)
        self._counted_at = self._frozen_at
        self._count(self._frozen_at)  # what start-up froze (cmd_score), before any restore

    def after_restore(self) -> None:
        gc.freeze()
        self._frozen_at = time.monotonic()
        self._count(self._frozen_at)

    def _count(self, now: float) -> None:
        """Report the frozen objects' count (a walk of all of them: see the module's text)."""
        self._counted_at = now
        if self._on_count is not None:
            self._on_count(gc.get_freeze_count())

    def tick(self, now: float) -> float | None:
        """When due: collect what is new and freeze the survivors. Returns the seconds it took
        (None when not due)."""
        if now - self._frozen_at < self.interval_s:
            return None
        start = time.perf_counter()
        gc.collect()
        gc.freeze()
        self._frozen_at = now
        took = time.perf_counter() - start
        if now - self._counted_at >= self.count_every_s:
            self._count(now)
        log.debug("long-lived objects frozen", extra={"ms": round(took * 1000, 1)})
        return took
