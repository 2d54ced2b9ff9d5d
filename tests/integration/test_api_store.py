"""The case store as the scorer's sink: idempotent, batched, per-account risk kept current."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from serving import tables as T
from serving.reads import RiskFilter
from serving.store import CaseStore
from tests.integration.test_api_support import BASE, account, login, scored


@pytest.fixture
def store(store_url):
    s = CaseStore(store_url)
    yield s
    s.close()


def _risk(store, account_id):
    rows = {r["account_id"]: r for r in store.high_risk(RiskFilter(), None, 100)}
    return rows.get(account_id)


def _count(store, table):
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_sqlite_runs_in_wal_mode(store):
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_batch_is_one_transaction_and_replays_change_nothing(store):
    batch = [scored(f"e{i}", f"acc-{i % 50}", (i % 100) / 100, BASE + timedelta(seconds=i))
             for i in range(500)]
    v0 = store.version()
    store.write_scored(batch)
    assert store.version() == v0 + 1
    assert _count(store, T.scored) == 500
    ranked = store.high_risk(RiskFilter(), None, 100)
    store.write_scored(batch[:250])  # at-least-once delivery: a replayed half batch
    store.write_scored(batch)
    assert _count(store, T.scored) == 500
    assert store.high_risk(RiskFilter(), None, 100) == ranked
    assert len(ranked) == 50


def test_a_payment_of_an_account_with_no_profile_is_ranked_as_unknown(store):
    """The engine scores unknown accounts with nan account features (null in the stored
    features); the sink must rank them, not fail (it once raised TypeError and stopped the
    scorer)."""
    record = scored("u1", "no-profile", 0.7, BASE,
                    features={"account_unknown": 1.0, "is_business": float("nan")})
    record["features"] = {k: (None if v != v else v) for k, v in record["features"].items()}
    store.write_scored([record])
    risk = _risk(store, "no-profile")
    assert risk["type"] == "unknown" and risk["score"] == pytest.approx(0.7)


def test_duplicates_inside_one_batch_and_bad_records(store):
    good = scored("e1", "a", 0.4, BASE)
    bad_score = scored("e2", "a", 1.7, BASE)
    naive_ts = scored("e3", "a", 0.2, BASE) | {"ts": "2026-03-01T09:00:00"}
    missing = {"event_id": "e4"}
    store.write_scored([good, good, bad_score, naive_ts, missing])
    assert _count(store, T.scored) == 1
    assert _risk(store, "a")["score"] == pytest.approx(0.4)


def test_risk_is_the_max_of_the_last_seven_days_with_a_trend(store):
    store.write_scored([scored("old", "a", 0.9, BASE)])
    store.write_scored([scored("mid", "a", 0.3, BASE + timedelta(days=8))])
    r = _risk(store, "a")
    assert r["score"] == pytest.approx(0.3)  # the 0.9 is older than 7 days before 'mid'
    assert r["prev_score"] == pytest.approx(0.9)
    assert r["trend"] == pytest.approx(-0.6)
    assert r["last_activity"] == "2026-03-09T09:00:00Z"
    store.write_scored([scored("new", "a", 0.6, BASE + timedelta(days=9))])
    r = _risk(store, "a")
    assert (r["score"], r["prev_score"]) == (pytest.approx(0.6), pytest.approx(0.9))
    # an older, late event does not move last activity back
    store.write_scored([scored("late", "a", 0.1, BASE + timedelta(days=8, hours=1))])
    assert _risk(store, "a")["last_activity"] == "2026-03-10T09:00:00Z"


def test_risk_fades_with_inactivity_and_ranks_below_a_recent_lower_peak(store):
    """Half-life 7 days, at the store's clock (the newest activity): a 0.9 peak a month old
    ranks below today's 0.5; a 0.6 a day old still ranks above it; a login is activity."""
    store.write_scored([scored("o1", "old", 0.9, BASE)])
    store.write_scored([scored("r1", "recent", 0.6, BASE + timedelta(days=29))])
    store.write_scored([scored("n1", "new", 0.5, BASE + timedelta(days=30))])
    ranked = store.high_risk(RiskFilter(), None, 10)
    assert [r["account_id"] for r in ranked] == ["recent", "new", "old"]
    by_id = {r["account_id"]: r for r in ranked}
    assert by_id["old"]["score"] == pytest.approx(0.9 * 2 ** (-30 / 7), abs=1e-6)
    assert by_id["recent"]["score"] == pytest.approx(0.6 * 2 ** (-1 / 7), abs=1e-6)
    assert (by_id["new"]["score"], by_id["old"]["peak_score"]) == (0.5, 0.9)
    # the filter is on the current risk; pages of one follow the same order
    assert [r["account_id"] for r in store.high_risk(RiskFilter(min_score=0.3), None, 10)] == [
        "recent", "new"]
    pages, after = [], None
    while True:
        page = store.high_risk(RiskFilter(), after, 1)
        if not page:
            break
        pages.append(page[0]["account_id"])
        after = page[0]["_key"]
    assert pages == ["recent", "new", "old"]
    # the clock moves on: a week later everyone has halved, the order is unchanged
    store.write_scored([scored("x1", "other", 0.01, BASE + timedelta(days=37))])
    later = {r["account_id"]: r for r in store.high_risk(RiskFilter(), None, 10)}
    assert later["new"]["score"] == pytest.approx(0.25, abs=1e-6)
    assert [r["account_id"] for r in store.high_risk(RiskFilter(), None, 3)] == [
        "recent", "new", "old"]
    # the old account logs in: active again, its peak counts in full
    store.write_logins([login("lg", "old", "VN", BASE + timedelta(days=37))])
    assert store.high_risk(RiskFilter(), None, 1)[0]["account_id"] == "old"


def test_foreign_logins_follow_the_kyc_country(store):
    store.write_logins([login("l1", "a", "KH", BASE), login("l2", "b", "KH", BASE),
                        login("l3", "c", "TH", BASE, success=False),
                        login("l4", "a", "VN", BASE)])
    assert _risk(store, "a")["foreign_countries"] == ["KH"]
    assert _risk(store, "c")["foreign_login"] is False  # a failed attempt is not a login
    store.upsert_accounts([account("b", "business", kyc="KH")])
    b = _risk(store, "b")
    assert b["foreign_login"] is False and b["type"] == "business"
    store.write_logins([login("l1", "a", "KH", BASE)])  # replay
    assert _count(store, T.logins) == 4
    # a login 31 days after the foreign one ages it out
    store.write_logins([login("l5", "a", "VN", BASE + timedelta(days=31))])
    assert _risk(store, "a")["foreign_login"] is False


def test_accounts_upsert_updates_the_type_of_scored_accounts(store):
    store.write_scored([scored("e1", "a", 0.5, BASE)])
    assert _risk(store, "a")["type"] == "unknown"
    store.upsert_accounts([account("a", "business")])
    store.upsert_accounts([account("a", "business")])
    assert _risk(store, "a")["type"] == "business"
    assert _count(store, T.accounts) == 1


def test_labels_from_outcomes(store):
    store.upsert_accounts([account("a"), account("b"), account("c")])
    decided = {}
    for acc, outcome in [("a", "confirmed_fraud"), ("b", "false_positive")]:
        case = store.create_case(acc, "ivy", "investigator", "")
        store.transition(case["case_id"], "under_review", actor="ivy", role="investigator",
                         reason="", outcome=None, typology=None)
        t = store.transition(case["case_id"], "closed", actor="ivy", role="investigator",
                             reason="", outcome=outcome, typology="scam_victim")
        decided[acc] = t.at
    store.create_case("c", "ivy", "investigator", "")  # still open: no label
    labels = store.labels_from_outcomes()
    assert [(lb.account_id, lb.label, lb.source, lb.typology) for lb in labels] == [
        ("a", "fraud", "investigator", "scam_victim"),
        ("b", "legit", "investigator", "scam_victim")]
    assert labels[0].confirmed_at.timestamp() == pytest.approx(decided["a"])
    assert labels[0].confirmed_at.tzinfo is not None
    later = labels[1].confirmed_at
    assert [lb.account_id for lb in store.labels_from_outcomes(since=later)] == ["b"]


def test_model_info_is_replaced(store):
    assert store.model_info() is None
    store.set_model_info("1", {"a": 1}, {"review": 0.5})
    store.set_model_info("2", {"a": 2}, {"review": 0.6})
    info = store.model_info()
    assert (info["version"], info["metrics"], info["thresholds"]) == ("2", {"a": 2},
                                                                      {"review": 0.6})


def test_nan_in_reasons_and_features_is_stored_as_null(store):
    record = scored("e1", "a", 0.6, BASE, features={"pass_through_24h": float("nan")})
    record["reasons"][0]["value"] = float("nan")
    store.write_scored([record])
    payment = store.account_detail("a")["payments"][0]
    assert payment["reasons"][0]["value"] is None
    assert payment["features"]["pass_through_24h"] is None
