"""Watch-list entries as training labels (training.dataset.label_rows): semantics, the
no-look-ahead rule, and an oracle against a brute-force reading of the module docstring."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from features.events import Label, WatchEntry
from features.vector import FEATURE_NAMES
from training.dataset import Replayed, SplitConfig, build, label_rows

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


def test_a_listing_labels_the_account_from_the_lookback_before_it_on():
    rows = replayed(["mule"] * 5 + ["other"], [0, 10, 14, 20, 30, 20])
    y, stats = label_rows(rows, [], T0 + 100 * DAY, 7, [entry("mule", 18)])
    assert y.tolist() == [0, 0, 1, 1, 1, 0]
    assert stats["watchlist_labels_used"] == 1


def test_no_look_ahead_a_listing_after_the_cutoff_or_withdrawn_by_it_counts_for_nothing():
    rows = replayed(["mule"] * 4, [0, 10, 20, 30])
    later = [entry("mule", 25)]
    assert label_rows(rows, [], T0 + 24.9 * DAY, 7, later)[0].tolist() == [0, 0, 0, 0]
    assert label_rows(rows, [], T0 + 25 * DAY, 7, later)[0].tolist() == [0, 0, 1, 1]
    withdrawn = [entry("mule", 15, delisted=22)]
    assert label_rows(rows, [], T0 + 21 * DAY, 7, withdrawn)[0].tolist() == [0, 1, 1, 1]
    assert label_rows(rows, [], T0 + 22 * DAY, 7, withdrawn)[0].tolist() == [0, 0, 0, 0]


def test_a_later_legit_label_clears_a_listing_and_an_event_level_legit_overrides():
    rows = replayed(["mule"] * 4, [0, 10, 20, 30])
    listing = [entry("mule", 12)]
    cleared = [Label("l1", at(25), "mule", "legit")]
    assert label_rows(rows, cleared, T0 + 100 * DAY, 7, listing)[0].tolist() == [0, 0, 0, 0]
    before = [Label("l1", at(5), "mule", "legit")]  # cleared first, reported afterwards
    assert label_rows(rows, before, T0 + 100 * DAY, 7, listing)[0].tolist() == [0, 1, 1, 1]
    one_payment = [Label("l2", at(40), "mule", "legit", event_id="e2")]
    assert label_rows(rows, one_payment, T0 + 100 * DAY, 7, listing)[0].tolist() == [0, 1, 0, 1]


def test_the_split_option_turns_watchlist_labels_off():
    days = list(np.arange(0.0, 60.0, 0.5))
    accounts = ["mule" if d >= 30 else "quiet" for d in days]
    rows = replayed(accounts, days)
    labels = [Label(f"f{i}", at(d + 1), "quiet", "fraud", event_id=f"e{i}")
              for i, d in enumerate(days) if i % 3 == 0 and d < 30]
    labels += [Label(f"m{i}", at(d + 0.1), "mule", "fraud", event_id=f"e{i}")
               for i, d in enumerate(days) if i % 7 == 0 and d >= 30]
    cfg = SplitConfig(warmup_days=1, valid_days=10, gap_days=2, test_days=10, min_train_days=1)
    listing = [entry("mule", 31)]
    on = build(rows, labels, None, cfg, watchlist=listing)
    off = build(rows, labels, None, SplitConfig(**{**cfg.__dict__, "watchlist_labels": False}),
                watchlist=listing)
    assert on.y_valid.sum() > off.y_valid.sum()
    assert on.summary["watchlist_labels_used"] == 1 and off.summary["watchlist_labels_used"] == 0
    plain = build(rows, labels, None, cfg)
    np.testing.assert_array_equal(off.y_train, plain.y_train)
    np.testing.assert_array_equal(off.y_valid, plain.y_valid)


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
    out = []
    for i, (account, day) in enumerate(zip(row_acc, row_day, strict=True)):
        mine = sorted((lb for lb in labels if lb.event_id == f"e{i}"
                       and lb.confirmed_at <= at(as_of)), key=lambda lb: lb.confirmed_at)
        if mine:
            out.append(int(mine[-1].label != "legit"))
            continue
        history = [(lb.confirmed_at, lb.label != "legit") for lb in labels
                   if lb.event_id is None and lb.account_id == account
                   and lb.confirmed_at <= at(as_of)]
        history += [(e.listed_at, True) for e in entries if e.account == account
                    and e.listed_at <= at(as_of)
                    and (e.delisted_at is None or e.delisted_at > at(as_of))]
        history.sort()
        start = None
        for when, bad in history:
            if not bad:
                start = None
            elif start is None:
                start = when
        out.append(int(start is not None and day >= (start.timestamp() - T0) / DAY - lookback))
    return out


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_label_rows_with_a_watch_list_matches_brute_force(case):
    row_acc, row_day, labels, entries, as_of, lookback = case
    rows = replayed(list(row_acc), [float(d) for d in row_day])
    y, _ = label_rows(rows, labels, T0 + as_of * DAY, lookback, entries)
    assert y.tolist() == brute_force(*case)
