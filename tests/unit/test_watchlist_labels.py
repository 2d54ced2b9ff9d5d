"""Watch-list entries as training labels (training.dataset.label_rows): semantics, the
no-look-ahead rule, and an oracle against a brute-force reading of the module docstring."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.events import Label, WatchEntry
from features.vector import FEATURE_NAMES
from training.dataset import UNKNOWN, Replayed, SplitConfig, build, label_rows

DAY = 86400.0
T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def at(days: float) -> datetime:
    return datetime.fromtimestamp(T0 + days * DAY, tz=UTC)


def replayed(accounts: list[str], days: list[float]) -> Replayed:
    n = len(accounts)
    return Replayed(X=np.zeros((n, len(FEATURE_NAMES))), t=T0 + np.array(days) * DAY,
                    event_ids=np.array([f"e{i}" for i in range(n)], dtype=object),
                    account_ids=np.array(accounts, dtype=object), amounts=np.ones(n))


def entry(account: str, listed: float, delisted: float | None = None) -> WatchEntry:
    return WatchEntry("CGB", account, "SIMO", at(listed), "receiving scam money",
                      None if delisted is None else at(delisted))


U = UNKNOWN


def test_a_listing_marks_the_lookback_before_it_and_leaves_later_payments_out():
    rows = replayed(["mule"] * 5 + ["other"], [0, 10, 14, 20, 30, 20])
    y, stats = label_rows(rows, [], T0 + 100 * DAY, 7, [entry("mule", 18)])
    assert y.tolist() == [0, 0, 1, U, U, 0]
    assert stats["watchlist_labels_used"] == 1 and stats["rows_left_out"] == 2
    assert label_rows(rows, [], T0 + 100 * DAY, 7)[0].tolist() == [0] * 6  # no list: as before


def test_no_look_ahead_a_listing_after_the_cutoff_or_withdrawn_by_it_counts_for_nothing():
    rows = replayed(["mule"] * 4, [0, 10, 20, 30])
    later = [entry("mule", 25)]
    assert label_rows(rows, [], T0 + 24.9 * DAY, 7, later)[0].tolist() == [0, 0, 0, 0]
    assert label_rows(rows, [], T0 + 25 * DAY, 7, later)[0].tolist() == [0, 0, 1, U]
    withdrawn = [entry("mule", 15, delisted=22)]
    assert label_rows(rows, [], T0 + 21 * DAY, 7, withdrawn)[0].tolist() == [0, 1, U, U]
    assert label_rows(rows, [], T0 + 22 * DAY, 7, withdrawn)[0].tolist() == [0, 0, 0, 0]


def test_two_listings_of_one_account_reported_activity_wins_whatever_their_order():
    rows = replayed(["mule"] * 4, [0, 10, 20, 30])
    first, second = entry("mule", 12), entry("mule", 25)  # e.g. two banks' numbers collide
    for entries in ([first, second], [second, first]):
        assert label_rows(rows, [], T0 + 100 * DAY, 7, entries)[0].tolist() == [0, 1, 1, U]


def test_labels_decide_before_the_listing_does():
    rows = replayed(["mule"] * 4, [0, 10, 20, 30])
    listing = [entry("mule", 12)]
    cleared = [Label("l1", at(25), "mule", "legit")]  # legit after the listing: cleared
    assert label_rows(rows, cleared, T0 + 100 * DAY, 7, listing)[0].tolist() == [0, 0, 0, 0]
    before = [Label("l1", at(5), "mule", "legit")]  # cleared first, reported afterwards
    assert label_rows(rows, before, T0 + 100 * DAY, 7, listing)[0].tolist() == [0, 1, U, U]
    one_payment = [Label("l2", at(40), "mule", "legit", event_id="e3"),
                   Label("l3", at(40), "mule", "fraud", event_id="e2")]
    assert label_rows(rows, one_payment, T0 + 100 * DAY, 7, listing)[0].tolist() == [0, 1, 1, 0]
    confirmed = [Label("l4", at(29), "mule", "mule")]  # the police confirmed it later
    assert label_rows(rows, confirmed, T0 + 100 * DAY, 7, listing)[0].tolist() == [0, 1, U, 1]


def test_build_leaves_unknown_rows_out_of_fitting_and_the_option_turns_the_list_off():
    days = list(np.arange(0.0, 60.0, 0.5))
    accounts = ["mule" if d >= 30 else "quiet" for d in days]
    rows = replayed(accounts, days)
    labels = [Label(f"f{i}", at(d + 1), "quiet", "fraud", event_id=f"e{i}")
              for i, d in enumerate(days) if i % 3 == 0 and d < 30]
    labels += [Label(f"m{i}", at(d + 0.1), "mule", "fraud", event_id=f"e{i}")
               for i, d in enumerate(days) if i % 7 == 0 and d >= 30]
    cfg = SplitConfig(warmup_days=1, valid_days=10, gap_days=2, test_days=10, min_train_days=1)
    listing = [entry("mule", 33)]
    on = build(rows, labels, None, cfg, watchlist=listing)
    off = build(rows, labels, None, replace(cfg, watchlist_labels=False), watchlist=listing)
    plain = build(rows, labels, None, cfg)
    assert on.summary["watchlist_labels_used"] == 1 and off.summary["watchlist_labels_used"] == 0
    assert set(np.unique(on.y_train)) <= {0, 1} and set(np.unique(on.y_valid)) <= {0, 1}
    y_fit, stats = label_rows(rows, labels, on.windows.cutoff, 7, listing)
    fit = (rows.t >= on.windows.train_start) & (rows.t < on.windows.valid_end)
    assert len(on.y_train) + len(on.y_valid) == int((fit & (y_fit != UNKNOWN)).sum())
    assert stats["rows_left_out"] > 0
    assert len(off.y_train) + len(off.y_valid) == int(fit.sum())
    np.testing.assert_array_equal(off.y_train, plain.y_train)
    np.testing.assert_array_equal(off.y_valid, plain.y_valid)
    np.testing.assert_array_equal(on.test.y, plain.test.y)  # evaluation labels: no list


# ---------------------------------------------------------------------- oracle

ACCOUNTS = ("a", "b", "c")
times = st.integers(0, 60)


@st.composite
def scenarios(draw):
    n_rows = draw(st.integers(1, 12))
    row_acc = draw(st.lists(st.sampled_from(ACCOUNTS), min_size=n_rows, max_size=n_rows))
    row_day = draw(st.lists(times, min_size=n_rows, max_size=n_rows))
    labels = []
    for i in range(draw(st.integers(0, 6))):  # distinct times: i/100 of a day apart
        day = draw(times) + i / 100
        kind = draw(st.sampled_from(("fraud", "mule", "legit")))
        event = draw(st.none() | st.integers(0, n_rows - 1))
        account = row_acc[event] if event is not None else draw(st.sampled_from(ACCOUNTS))
        labels.append(Label(f"l{i}", at(day), account, kind,
                            event_id=None if event is None else f"e{event}"))
    entries = []
    for i in range(draw(st.integers(0, 4))):
        listed = draw(times) + 0.005 + i / 100
        delisted = draw(st.none() | st.integers(0, 30))
        entries.append(entry(draw(st.sampled_from(ACCOUNTS)), listed,
                             None if delisted is None else listed + delisted + 0.001))
    as_of = draw(times) + 0.5
    lookback = draw(st.sampled_from((0.0, 3.0, 7.0)))
    return row_acc, row_day, labels, entries, as_of, lookback


def brute_force(row_acc, row_day, labels, entries, as_of, lookback) -> list[int]:
    """Each row on its own, straight from the module docstring."""
    cut = at(as_of)
    out = []
    for i, (account, day) in enumerate(zip(row_acc, row_day, strict=True)):
        mine = sorted((lb for lb in labels if lb.event_id == f"e{i}" and lb.confirmed_at <= cut),
                      key=lambda lb: lb.confirmed_at)
        if mine:
            out.append(int(mine[-1].label != "legit"))
            continue
        history = sorted((lb.confirmed_at, lb.label != "legit") for lb in labels
                         if lb.event_id is None and lb.account_id == account
                         and lb.confirmed_at <= cut)
        start = None
        for when, bad in history:
            if not bad:
                start = None
            elif start is None:
                start = when
        if start is not None and day >= (start.timestamp() - T0) / DAY - lookback:
            out.append(1)
            continue
        last_legit = max((when for when, bad in history if not bad), default=None)
        value = 0
        for e in entries:
            if (e.account != account or e.listed_at > cut
                    or (e.delisted_at is not None and e.delisted_at <= cut)
                    or (last_legit is not None and last_legit >= e.listed_at)):
                continue
            listed = (e.listed_at.timestamp() - T0) / DAY
            if listed - lookback <= day < listed:
                value = 1
            elif day >= listed and value == 0:
                value = UNKNOWN
        out.append(value)
    return out


@settings(max_examples=500, deadline=None)
@given(scenarios())
def test_label_rows_with_a_watch_list_matches_brute_force(case):
    row_acc, row_day, labels, entries, as_of, lookback = case
    rows = replayed(list(row_acc), [float(d) for d in row_day])
    y, _ = label_rows(rows, labels, T0 + as_of * DAY, lookback, entries)
    assert y.tolist() == brute_force(*case)


def test_a_fit_target_changes_the_verdicts_not_the_rows() -> None:
    days = list(np.arange(0.0, 60.0, 0.5))
    accounts = ["mule" if d >= 30 else "quiet" for d in days]
    rows = replayed(accounts, days)
    labels = [Label(f"m{i}", at(d + 0.1), "mule", "fraud", event_id=f"e{i}")
              for i, d in enumerate(days) if i % 7 == 0 and d >= 30]
    cfg = SplitConfig(warmup_days=1, valid_days=10, gap_days=2, test_days=10, min_train_days=1)
    listing = [entry("mule", 33)]
    target = (np.arange(len(days)) % 2).astype(np.int8)
    base = build(rows, labels, None, cfg, watchlist=listing)
    what_if = build(rows, labels, None, cfg, watchlist=listing, fit_target=target)
    np.testing.assert_array_equal(what_if.X_train, base.X_train)
    np.testing.assert_array_equal(what_if.X_valid, base.X_valid)
    y_fit, _ = label_rows(rows, labels, base.windows.cutoff, 7, listing)
    train = ((rows.t >= base.windows.train_start) & (rows.t < base.windows.train_end)
             & (y_fit != UNKNOWN))
    assert base.summary["rows_left_out"] > 0  # the listing leaves rows out of both
    np.testing.assert_array_equal(what_if.y_train, target[train])
    assert not np.array_equal(what_if.y_train, base.y_train)
    with pytest.raises(ValueError, match="fit_target"):
        build(rows, labels, None, cfg, fit_target=target[:-1])
