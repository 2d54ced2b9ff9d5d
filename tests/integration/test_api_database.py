"""The case store's database, on SQLite and on a real PostgreSQL (issue 17): transitions and
case creation that hold under concurrency, identifiers as long as the event contract allows,
schema migrations from an empty database, from the pre-migration schema and from 0005 (the app
signals of stored payments stay unknown), private files."""

from __future__ import annotations

import importlib
import stat
import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, select, text

from canhgiac.cli import main
from serving import casedb
from serving import tables as T
from serving.cases import TransitionError
from serving.migrate import _config, head
from serving.reads import RiskFilter
from serving.store import CaseStore
from tests.integration.test_api_support import BASE, account, login, make_api, scored, seed


@pytest.fixture
def store(store_url):
    s = CaseStore(store_url)
    s.upsert_accounts([account("biz-1", "business")])
    yield s
    s.close()


def _to_freeze_requested(store):
    case = store.create_case("biz-1", "ivy", "investigator", "")
    for to in ("under_review", "freeze_requested"):
        store.transition(case["case_id"], to, actor="ivy", role="investigator", reason="",
                         outcome=None, typology=None)
    return case["case_id"]


def _in_thread(fn):
    """Run ``fn`` in a thread; (thread, result box)."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except Exception as exc:  # the assertion is on the type
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, box


# ------------------------------------------------------------------ concurrency
def test_approve_and_reject_racing_on_one_case_exactly_one_wins(store):
    """A's approval is inside its open transaction when B's rejection starts: B must wait for
    the row (SELECT … FOR UPDATE; SQLite: the write lock) and then be judged against the
    frozen case (409), not the stale 'freeze_requested' it would have read without a lock."""
    case_id = _to_freeze_requested(store)
    with store.write(api=True) as conn:
        casedb.transition(store.engine, conn, case_id, "frozen", actor="sam", role="supervisor",
                          reason="approve", outcome=None, typology=None)
        thread, box = _in_thread(lambda: store.transition(
            case_id, "under_review", actor="tam", role="supervisor", reason="reject",
            outcome=None, typology=None))
        time.sleep(0.5)
        assert thread.is_alive(), "the rejection did not wait for the approval's lock"
    thread.join(30)
    assert isinstance(box.get("error"), TransitionError), box
    assert box["error"].status == 409
    case = store.get_case(case_id)
    assert case["status"] == "frozen"
    assert [h["to_status"] for h in case["history"]][-1] == "frozen"
    pending = [p for _, _, p in store.pending_outbox(100)]
    assert [p["action"] for p in pending if p.get("case_id") == case_id] == [
        "freeze_requested", "freeze_approved"]  # one decision published, not two


def test_two_creates_racing_on_one_account_exactly_one_wins(store):
    with store.write(api=True) as conn:
        first = casedb.create(store.engine, conn, "biz-1", "ivy", "investigator", "a")
        thread, box = _in_thread(lambda: store.create_case("biz-1", "tam", "investigator", "b"))
        time.sleep(0.5)
        assert thread.is_alive(), "the second create did not wait for the first"
    thread.join(30)
    assert isinstance(box.get("error"), casedb.CaseConflict), box
    assert box["error"].case_id == first
    assert [c["case_id"] for c in store.list_cases(None, "biz-1", None, 10)] == [first]


def test_racing_http_decisions_have_exactly_one_winner(tmp_path, store_url):
    api = make_api(tmp_path, url=store_url)
    seed(api.store)
    for round_ in range(4):
        account_id = f"race-{round_}"
        api.store.upsert_accounts([account(account_id)])
        barrier = threading.Barrier(2)
        results: list[int] = []

        def create(who, account_id=account_id, barrier=barrier, results=results):
            barrier.wait()
            r = api.client.post("/v1/cases", json={"account_id": account_id},
                                headers=api.h(who))
            results.append(r.status_code)

        threads = [threading.Thread(target=create, args=(w,))
                   for w in ("investigator", "investigator2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results) == [201, 409], results
        case_id = api.client.get("/v1/cases", params={"account_id": account_id},
                                 headers=api.h("viewer")).json()["items"][0]["case_id"]
        for to in ("under_review", "freeze_requested"):
            api.client.post(f"/v1/cases/{case_id}/transitions", json={"to": to},
                            headers=api.h("investigator"))
        barrier = threading.Barrier(2)
        results = []

        def decide(who, to, case_id=case_id, barrier=barrier, results=results):
            barrier.wait()
            r = api.client.post(f"/v1/cases/{case_id}/transitions", json={"to": to},
                                headers=api.h(who))
            results.append(r.status_code)

        threads = [threading.Thread(target=decide, args=("supervisor", "frozen")),
                   threading.Thread(target=decide, args=("supervisor2", "under_review"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results) == [200, 409], results


# ------------------------------------------------------------------ contract sizes
def test_identifiers_as_long_as_the_event_contract_allows(store):
    long_ascii = "A" * 1024
    long_text = "tài-khoản-" + "ệ" * 1014  # 1,024 characters, several bytes each
    for account_id in (long_ascii, long_text):
        store.upsert_accounts([replace(account(account_id), customer_id=long_text)])
        store.write_scored([scored(account_id[:1000] + "-e", account_id, 0.9, BASE,
                                   counterparty=long_ascii)])
        store.write_logins([login(account_id[:1000] + "-l", account_id, "KH",
                                  BASE + timedelta(minutes=1))])
        case = store.create_case(account_id, "ivy", "investigator", "")
        assert store.get_case(case["case_id"])["account_id"] == account_id
        detail = store.account_detail(account_id)
        assert detail["payments"][0]["counterparty_account"] == long_ascii
        assert detail["login_summary"]["countries"] == ["KH"]


# ------------------------------------------------------------------ migrations
def _tables(url):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names()), conn.execute(
                text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def test_an_empty_database_is_migrated_to_the_model(store_url):
    s = CaseStore(store_url)
    try:
        tables, revision = _tables(store_url)
        assert revision == head() == "0006"
        assert {"cases", "audit", "api_keys", "alembic_version"} <= tables
        with s.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(
                conn, opts={"compare_type": conn.dialect.name == "postgresql"}), T.metadata)
        assert diff == [], diff
    finally:
        s.close()


def test_the_pre_migration_schema_is_upgraded_with_its_data(store_url):
    baseline = importlib.import_module("serving.migrations.versions.0001_baseline")
    old = baseline.baseline_metadata()
    engine = create_engine(store_url)
    old.create_all(engine)  # what create_all made before migrations existed
    with engine.begin() as conn:
        conn.execute(insert(old.tables["meta"]), [{"key": k, "value": 3}
                                                  for k in ("version", "keys", "api")])
        conn.execute(insert(old.tables["api_keys"]).values(
            key_id=1, name="Sup1", role="supervisor",
            key_hash="0" * 64, created_at=0.0))
        conn.execute(insert(old.tables["cases"]).values(
            case_id=1, account_id="biz-1", status="freeze_requested", opened_by="Sup1",
            opened_at=0.0, updated_at=0.0, freeze_requested_by="sup1"))
        conn.execute(insert(old.tables["audit"]).values(
            at=0.0, actor="Sup1", role="supervisor", action="account.read", target="biz-1",
            request_id="abc"))
        conn.execute(insert(old.tables["account_risk"]), [dict(
            account_id=a, type="business", score=score, prev_score=None, last_activity=t,
            top_event_id="e", top_reasons="[]", typology="unusual_activity",
            rule_typology="unusual_activity", foreign_login=False, foreign_countries="[]",
            case_id=None, case_status="none", updated_at=0.0)
            for a, score, t in (("old-peak", 0.9, 0.0), ("new-low", 0.5, 30 * 86400.0))])
    engine.dispose()
    store = CaseStore(store_url)  # start-up stamps the baseline and upgrades
    try:
        assert _tables(store_url)[1] == head()
        assert [(k["name"], k["user"]) for k in store.list_keys()] == [("Sup1", "sup1")]
        # ranked rows got their fading-risk key: the month-old 0.9 now ranks below today's 0.5
        ranked = store.high_risk(RiskFilter(), None, 10)
        assert [(r["account_id"], r["peak_score"]) for r in ranked] == [
            ("new-low", 0.5), ("old-peak", 0.9)]
        assert ranked[1]["score"] == pytest.approx(0.9 * 2 ** (-30 / 7), abs=1e-6)
        case = store.get_case(1)
        assert case["status"] == "freeze_requested" and case["release_requested_by"] is None
        with pytest.raises(TransitionError):  # maker-checker holds on the migrated case
            store.transition(1, "frozen", actor="sup1", role="supervisor", reason="",
                             outcome=None, typology=None)
        assert store.audit_page(None, 10, None, None)[0]["key"] is None
        with pytest.raises(Exception, match="append-only"):
            with store.audit_write() as conn:
                conn.execute(text("DELETE FROM audit"))
        with store.read() as conn:
            assert conn.execute(select(T.meta.c.value).where(
                T.meta.c.key == "version")).scalar() == 4  # kept (+1: the start-up write)
    finally:
        store.close()


def test_migration_0006_leaves_stored_payments_not_reported(store_url):
    engine = create_engine(store_url)
    with engine.begin() as conn:  # a store at 0005, with scored payments in it
        command.upgrade(_config(conn), "0005")
    with engine.begin() as conn:  # the row as 0005 knew it (no app-signal columns)
        conn.exec_driver_sql(
            "INSERT INTO scored (event_id, account_id, event_t, score, decision, reasons, "
            "model_version, scored_at, direction, amount, currency, counterparty_account, "
            "counterparty_bank, channel, features) VALUES "
            + ", ".join(f"('old-{i}', 'acc-0', {i}.0, 0.5, 'review', '[]', '7', {i}.5, "
                        "'debit', 1000.0, 'VND', 'cp', 'VCB', 'mobile', '{}')"
                        for i in range(3)))
    engine.dispose()
    store = CaseStore(store_url)  # opening upgrades to head
    try:
        assert _tables(store_url)[1] == head() == "0006"
        store.write_scored([scored("new-1", "acc-0", 0.7, BASE, on_call=True,
                                   remote_access=False)])
        with store.read() as conn:
            rows = conn.execute(select(T.scored.c.event_id, T.scored.c.on_call,
                                       T.scored.c.remote_access).order_by(
                T.scored.c.event_id)).all()
        assert [tuple(r) for r in rows] == [
            ("new-1", True, False), *((f"old-{i}", None, None) for i in range(3))]
        payments = {p["event_id"]: p for p in store.account_detail("acc-0")["payments"]}
        assert [(p["on_call"], p["remote_access"]) for _, p in sorted(payments.items())] == [
            (True, False), (None, None), (None, None), (None, None)]
    finally:
        store.close()
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:  # and back: the columns go, the rows stay
            command.downgrade(_config(conn), "0005")
        with engine.connect() as conn:
            names = {c["name"] for c in inspect(conn).get_columns("scored")}
            count = conn.exec_driver_sql("SELECT count(*) FROM scored").scalar()
        assert not names & {"on_call", "remote_access"} and count == 4
    finally:
        engine.dispose()


def test_canhgiac_db_upgrade_and_concurrent_starts(store_url, monkeypatch, capsys):
    monkeypatch.setenv("CANHGIAC_CASE_STORE_URL", store_url)
    assert main(["db", "current"]) == 0
    assert "none" in capsys.readouterr().out
    starts = [_in_thread(lambda: CaseStore(store_url)) for _ in range(3)]
    for thread, _ in starts:
        thread.join(60)
    stores = [box.get("value") for _, box in starts]
    assert all(stores), [box for _, box in starts]
    for s in stores:
        s.close()
    assert main(["db", "upgrade"]) == 0
    assert f"already at revision {head()}" in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.strip() == f"{head()} (newest)"


def test_sqlite_files_are_private(tmp_path):
    store = CaseStore(f"sqlite:///{tmp_path / 'new' / 'cases.db'}")
    store.upsert_accounts([account("a")])
    try:
        for name in ("cases.db", "cases.db-wal", "cases.db-shm"):
            mode = stat.S_IMODE((tmp_path / "new" / name).stat().st_mode)
            assert mode & 0o077 == 0, (name, oct(mode))
        assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    finally:
        store.close()


# ------------------------------------------------------------------ retention
def test_purge_deletes_old_events_but_keeps_the_evidence_of_cases(store_url, monkeypatch,
                                                                  capsys):
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    old, recent = now - timedelta(days=200), now - timedelta(days=2)
    store = CaseStore(store_url)
    try:
        store.upsert_accounts([account("gone"), account("cased"), account("active")])
        store.write_scored([scored("g1", "gone", 0.9, old), scored("c1", "cased", 0.9, old),
                            scored("a1", "active", 0.9, old), scored("a2", "active", 0.4,
                                                                     recent)])
        store.write_logins([login("gl", "gone", "KH", old), login("cl", "cased", "KH", old)])
        store.create_case("cased", "ivy", "investigator", "evidence")
        monkeypatch.setenv("CANHGIAC_CASE_STORE_URL", store_url)
        assert main(["db", "purge", "--dry-run"]) == 0
        assert "would delete 2 scored payments and 1 logins" in capsys.readouterr().out
        assert main(["db", "purge", "--days", "30"]) == 2  # shorter than the risk's window
        capsys.readouterr()
        assert main(["db", "purge"]) == 0
        assert "deleted 2 scored payments and 1 logins older than 180 days (1 accounts" in \
            capsys.readouterr().out
        with store.read() as conn:
            left = sorted(conn.execute(select(T.scored.c.event_id)).scalars())
            logins = sorted(conn.execute(select(T.logins.c.event_id)).scalars())
        assert left == ["a2", "c1"] and logins == ["cl"]
        assert store.account_detail("gone")["risk"] is None
        assert store.account_detail("cased")["payments"][0]["event_id"] == "c1"
    finally:
        store.close()


def test_the_version_read_survives_a_lost_connection(store):
    """The version read (every API request) has a connection of its own on PostgreSQL; when
    the server drops it, the next read reconnects."""
    before = store.versions()
    if store.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    with store.engine.connect() as conn:
        killed = conn.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND datname = current_database()").scalar()
    assert killed >= 1
    assert store.versions() == before
    store.upsert_accounts([account("after")])
    assert store.versions().data == before.data + 1
