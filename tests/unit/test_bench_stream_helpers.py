"""bench.stream's readings of the scorer's Prometheus histograms (pure functions)."""

from __future__ import annotations

import math

import pytest

from bench.stream import histogram_count_over, histogram_quantile

NAME = "canhgiac_scorer_iteration_seconds"


def scrape(counts: dict[str, int]) -> str:
    """A scrape of NAME with cumulative bucket counts."""
    return "\n".join(f'{NAME}_bucket{{le="{le}"}} {c}' for le, c in counts.items()) + "\n"


BEFORE = scrape({"0.01": 5, "0.05": 8, "0.1": 9, "0.25": 9, "+Inf": 9})
AFTER = scrape({"0.01": 50, "0.05": 80, "0.1": 95, "0.25": 99, "+Inf": 100})


def test_the_count_over_a_bound_is_of_the_observations_since_the_earlier_scrape():
    assert histogram_count_over(AFTER, NAME, 0.05) == 20
    assert histogram_count_over(AFTER, NAME, 0.05, since=BEFORE) == 19  # 91 new, 72 at most 50 ms
    assert histogram_count_over(AFTER, NAME, 0.25, since=BEFORE) == 1
    assert histogram_count_over(BEFORE, NAME, 0.05, since=BEFORE) == 0
    with pytest.raises(ValueError, match="no bucket"):
        histogram_count_over(AFTER, NAME, 0.03)


def test_the_quantile_is_the_bound_of_its_bucket():
    assert histogram_quantile(AFTER, NAME, 0.5) == 0.01
    assert histogram_quantile(AFTER, NAME, 1.0, since=BEFORE) == math.inf
    assert math.isnan(histogram_quantile(BEFORE, NAME, 0.5, since=BEFORE))
