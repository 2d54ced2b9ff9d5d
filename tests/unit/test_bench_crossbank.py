"""bench.crossbank's pure parts: the recall count per typology, the split by what was known of
the beneficiary at the time, the targets, and its argument checks."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from bench.crossbank import cp_known_at, recall_by_typology, target_of


def test_recall_by_typology_counts_the_top_one_percent() -> None:
    scores = np.arange(1000, dtype=np.float64)  # the top 1 %: rows 990..999
    typology = np.full(1000, None, dtype=object)
    typology[995:1000] = "mule_ring"  # all flagged
    typology[0:5] = "scam_victim_quiet"  # none flagged
    typology[[989, 990]] = "account_takeover"  # one just below the budget, one at its edge
    got = recall_by_typology(scores, typology)
    assert got == {"all": (6 / 12, 12), "mule_ring": (1.0, 5),
                   "scam_victim_quiet": (0.0, 5), "account_takeover": (0.5, 2)}


def test_reported_beneficiary_payments_split_by_what_was_known_then() -> None:
    scores = np.arange(200, dtype=np.float64)  # the top 1 %: rows 198, 199
    typology = np.full(200, None, dtype=object)
    typology[[10, 198, 199]] = "reported_beneficiary_quiet"
    typology[[0, 1]] = "scam_victim_quiet"
    cp_known = np.zeros(200, dtype=bool)
    cp_known[[198, 199, 0]] = True  # a scam victim's known flag splits nothing
    got = recall_by_typology(scores, typology, cp_known)
    assert got["reported_beneficiary_quiet"] == (2 / 3, 3)
    assert got["reported_beneficiary_quiet_cp_reported"] == (1.0, 2)
    assert got["reported_beneficiary_quiet_cp_not_yet_reported"] == (0.0, 1)
    assert set(got) == {"all", "reported_beneficiary_quiet", "scam_victim_quiet",
                        "reported_beneficiary_quiet_cp_reported",
                        "reported_beneficiary_quiet_cp_not_yet_reported"}


def test_a_beneficiary_counts_as_reported_from_the_moment_it_was() -> None:
    reported = {"B1": 100.0, "B2": math.inf}
    got = cp_known_at(np.array(["B1", "B1", "B1", "B2", "B3", None], dtype=object),
                      np.array([99.999, 100.0, 500.0, 500.0, 500.0, 500.0]), reported)
    assert got.tolist() == [False, True, True, False, False, False]


def test_targets() -> None:
    assert target_of("scam_victim_quiet") == 0.80
    assert target_of("reported_beneficiary_quiet_cp_reported") == 0.90
    assert target_of("reported_beneficiary_cp_not_yet_reported") is None


@pytest.mark.parametrize(("args", "says"), [
    (["--seeds", "7,x"], "--seeds:"),
    (["--seeds", "7"], "--seeds:"),
    (["--seeds", "7,11,7"], "--seeds:"),
    (["--days", "20"], "--days: each bank needs at least 45 days"),
    (["--accounts", "10"], "accounts must be between 50"),
    (["--seeds=-1,5"], "seed must be >= 0"),
])
def test_bad_arguments_are_one_line_before_any_work(args: list[str], says: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "bench.crossbank", *args],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert says in proc.stderr and "Traceback" not in proc.stderr
