"""bench.crossbank's pure parts: the ground-truth labels and the recall count per typology."""

from __future__ import annotations

import numpy as np

from bench.crossbank import recall_by_typology, truth_labels
from training.dataset import Replayed


def test_recall_by_typology_counts_the_top_one_percent() -> None:
    scores = np.arange(1000, dtype=np.float64)  # the top 1 %: rows 990..999
    typology = np.full(1000, None, dtype=object)
    typology[995:1000] = "mule_ring"  # all flagged
    typology[0:5] = "scam_victim_quiet"  # none flagged
    typology[[989, 990]] = "account_takeover"  # one just below the budget, one at its edge
    got = recall_by_typology(scores, typology)
    assert got == {"all": (6 / 12, 12), "mule_ring": (1.0, 5),
                   "scam_victim_quiet": (0.0, 5), "account_takeover": (0.5, 2)}


def test_truth_labels_name_each_fraudulent_payment_at_its_own_time() -> None:
    rows = Replayed(X=np.zeros((3, 1)), t=np.array([1_767_225_600.0, 1_767_225_660.5, 1.8e9]),
                    event_ids=np.array(["p1", "p2", "p3"], dtype=object),
                    account_ids=np.array(["A", "B", "C"], dtype=object),
                    amounts=np.ones(3))
    labels = truth_labels(rows, np.array([0, 1, 1], dtype=np.int8))
    assert [(lb.event_id, lb.account_id, lb.label, lb.t) for lb in labels] == [
        ("p2", "B", "fraud", 1_767_225_660.5), ("p3", "C", "fraud", 1.8e9)]
    assert len({lb.label_id for lb in labels}) == 2


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
