"""Evaluation metrics against brute force on small windows: recall per typology and amount
recall at each budget, top-K accounts per day, and the account ranking the API serves."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from features.vector import FEATURE_NAMES
from training.dataset import EvalSet
from training.evaluate import (
    BUDGETS,
    account_ranking_precision,
    budget_suffix,
    evaluate,
    flagged_mask,
    typology_table,
)

DAY = 86400.0
T0 = 1_767_225_600.0 - 7 * 3600.0  # local midnight, 2026-01-01 in Vietnam


@st.composite
def windows(draw: st.DrawFn) -> tuple[EvalSet, np.ndarray]:
    n = draw(st.integers(20, 120))
    t = np.sort(np.array(draw(st.lists(st.floats(0, 6 * DAY), min_size=n, max_size=n)))) + T0
    accounts = np.array([f"a{draw(st.integers(0, 12))}" for _ in range(n)], dtype=object)
    y = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.int8)
    y[0] = 1
    typ = np.array([draw(st.sampled_from(["mule_ring", "mule_ring_quiet", "structuring"]))
                    if v else None for v in y], dtype=object)
    amounts = np.array(draw(st.lists(st.floats(1e4, 1e8), min_size=n, max_size=n)))
    scores = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    ev = EvalSet(X=np.zeros((n, len(FEATURE_NAMES))), y=y, t=t, account_ids=accounts,
                 amounts=amounts, typology=typ, event_ids=np.arange(n).astype(str).astype(object),
                 source="truth")
    return ev, scores


def brute_ranking(scores: np.ndarray, ev: EvalSet, k: int, half_life: float | None) -> float:
    involved = {a for a, v in zip(ev.account_ids, ev.y, strict=True) if v}
    days = sorted({math.floor((t + 7 * 3600) / DAY) for t in ev.t})
    out = []
    for d in days:
        end = (d + 1) * DAY - 7 * 3600
        best: dict[str, tuple[float, float]] = {}
        for a in set(ev.account_ids[ev.t < end]):
            rows = [(t, s) for t, s, acc in zip(ev.t, scores, ev.account_ids, strict=True)
                    if acc == a and t < end]
            last = max(t for t, _ in rows)
            score = max(s for t, s in rows if t > last - 7 * DAY)
            if half_life is not None:
                score *= 0.5 ** ((end - last) / DAY / half_life)
            best[a] = (score, last)
        ranked = sorted(best, key=lambda a: -best[a][0])[:k]
        out.append(sum(a in involved for a in ranked) / len(ranked))
    return float(np.mean(out))


@settings(max_examples=20, deadline=None)
@given(windows())
def test_per_typology_and_amount_recall_at_every_budget(window):
    ev, scores = window
    m = evaluate(scores, ev)
    y = ev.y.astype(bool)
    for budget in BUDGETS:
        mask = flagged_mask(scores, budget)
        suffix = budget_suffix(budget)
        assert math.isclose(m[f"amount_recall_at_budget_{suffix}"],
                            ev.amounts[y & mask].sum() / ev.amounts[y].sum())
        for name in set(ev.typology[y]):
            rows = y & (ev.typology == name)
            assert m[f"recall_typology_{name}_at_budget_{suffix}"] == mask[rows].mean()
    assert 0.0 <= m["precision_at_20_accounts_per_day"] <= 1.0


@settings(max_examples=25, deadline=None)
@given(windows(), st.sampled_from([1, 3, 20]), st.sampled_from([None, 3.0]))
def test_account_ranking_equals_brute_force(window, k, half_life):
    ev, scores = window
    # distinct scores: ties would make the top k depend on the tie-break
    scores = scores + np.arange(scores.size) * 1e-9
    got = account_ranking_precision(scores, ev, k, half_life)
    assert math.isclose(got, brute_ranking(scores, ev, k, half_life))


@settings(max_examples=5, deadline=None)
@given(windows())
def test_the_typology_table_has_one_row_per_typology_and_a_column_per_budget(window):
    ev, scores = window
    m = evaluate(scores, ev)
    table = typology_table(m, m).splitlines()
    names = sorted(set(ev.typology[ev.y.astype(bool)]))
    assert [line.split()[0] for line in table[2:]] == names
    assert all(budget_suffix(b) in table[0] for b in BUDGETS)
    typ = ev.typology[ev.y.astype(bool)]
    assert [int(line.split()[1]) for line in table[2:]] == [int((typ == n).sum()) for n in names]


# ---------------------------------------------------------------------- known beneficiary


def test_reported_since_takes_the_receiving_side_of_each_report():
    from datetime import UTC, datetime

    from features.events import Label, Payment, WatchEntry
    from training.dataset import reported_since

    def at(days: float) -> datetime:
        return datetime.fromtimestamp(T0 + days * DAY, tz=UTC)

    def pay(eid: str, account: str, direction: str, cp: str) -> Payment:
        return Payment(eid, at(0), account, direction, 1e6, "VND", cp, "XB", "mobile")

    payments = [pay("d1", "victim", "debit", "benef"), pay("c1", "mule", "credit", "victim2"),
                pay("d2", "victim", "debit", "other")]
    labels = [
        Label("l1", at(5), "victim", "fraud", event_id="d1"),  # a debit: its counterparty
        Label("l2", at(3), "mule", "fraud", event_id="c1"),  # a credit: the account itself
        Label("l3", at(2), "victim", "fraud", event_id="gone", counterparty_account="benef2"),
        Label("l4", at(1), "victim", "legit", event_id="d2"),  # not a report
        Label("l5", at(4), "shell", "mule"),  # account-level
        Label("l6", at(9), "victim", "fraud", event_id="d1"),  # later: the first one counts
    ]
    watch = [WatchEntry("XB", "benef", "SIMO", at(4), "scam"),
             WatchEntry("XB", "listed", "SIMO", at(6), "scam")]
    got = reported_since(payments, labels, watch)
    assert got == {"benef": T0 + 4 * DAY, "mule": T0 + 3 * DAY, "benef2": T0 + 2 * DAY,
                   "shell": T0 + 4 * DAY, "listed": T0 + 6 * DAY}


def test_known_beneficiary_recall_counts_only_payments_after_the_report():
    # rows: 0-3 reported-beneficiary fraud (loud/quiet), 4 another typology, 5-9 legitimate
    n = 10
    y = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=np.int8)
    typ = np.array(["reported_beneficiary", "reported_beneficiary_quiet",
                    "reported_beneficiary", "reported_beneficiary_quiet", "mule_ring",
                    None, None, None, None, None], dtype=object)
    t = T0 + np.arange(n) * 3600.0
    reported = t.copy()
    reported[1] = t[1] + 1.0  # reported just after the payment: not counted
    reported[3] = np.inf  # never reported
    ev = EvalSet(X=np.zeros((n, len(FEATURE_NAMES))), y=y, t=t,
                 account_ids=np.array([f"a{i}" for i in range(n)], dtype=object),
                 amounts=np.ones(n), typology=typ,
                 event_ids=np.arange(n).astype(str).astype(object), source="truth",
                 cp_reported_t=reported)
    # the 1 % budget of 10 rows flags one payment: row 0 (counted) ranks first
    scores = np.array([0.9, 0.95, 0.1, 0.99, 0.98, 0, 0, 0, 0, 0], dtype=float)
    scores[0] = 1.0
    m = evaluate(scores, ev)
    assert m["n_known_beneficiary"] == 2.0  # rows 0 and 2
    assert m["known_beneficiary_recall_at_budget_1pct"] == 0.5
    scores[0] = 0.5  # now row 3 (never reported) takes the one alert
    assert evaluate(scores, ev)["known_beneficiary_recall_at_budget_1pct"] == 0.0
    assert "n_known_beneficiary" not in evaluate(scores, EvalSet(
        X=ev.X, y=y, t=t, account_ids=ev.account_ids, amounts=ev.amounts, typology=typ,
        event_ids=ev.event_ids, source="truth"))


def test_an_eval_set_keeps_its_report_times_through_save_and_load(tmp_path):
    n = 3
    ev = EvalSet(X=np.zeros((n, len(FEATURE_NAMES))), y=np.array([1, 0, 0], dtype=np.int8),
                 t=T0 + np.arange(n), account_ids=np.array(["a", "b", "c"], dtype=object),
                 amounts=np.ones(n), typology=np.array(["reported_beneficiary", None, None],
                                                       dtype=object),
                 event_ids=np.array(["e0", "e1", "e2"], dtype=object), source="truth",
                 cp_reported_t=np.array([T0, np.inf, T0 + 5]))
    ev.save(tmp_path / "with.npz")
    assert np.array_equal(EvalSet.load(tmp_path / "with.npz").cp_reported_t, ev.cp_reported_t)
    ev.cp_reported_t = None  # a window saved before the field existed
    ev.save(tmp_path / "without.npz")
    assert EvalSet.load(tmp_path / "without.npz").cp_reported_t is None
