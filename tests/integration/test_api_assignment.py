"""Case assignment by users, not key names (issue 17), on SQLite and on PostgreSQL: a user's
keys share one queue, spellings of a user name are one user, the approval queue leaves out the
caller's user's own freeze and release requests, every assignment is in the audit log, and
migration 0004 turns key-named assignments into users."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, insert, select

from serving import tables as T
from serving.migrate import _config, head
from serving.store import CaseStore
from tests.integration.test_api_support import RecordingPublisher, make_api, seed

ASSIGN = "/v1/cases/assignment"


@pytest.fixture
def api(tmp_path, store_url):
    a = make_api(tmp_path, publisher=RecordingPublisher(), url=store_url)
    seed(a.store)
    return a


def _case(api, account):
    r = api.client.post("/v1/cases", json={"account_id": account, "reason": "x"},
                        headers=api.h("investigator"))
    assert r.status_code == 201, r.text
    return r.json()["case_id"]


def _move(api, case_id, who, to, **extra):
    r = api.client.post(f"/v1/cases/{case_id}/transitions",
                        json={"to": to, "reason": to, **extra}, headers=api.h(who))
    assert r.status_code == 200, r.text


def _ids(api, view, who):
    r = api.client.get(f"/v1/queues/{view}", headers=api.h(who))
    assert r.status_code == 200, r.text
    return [i["case_id"] for i in r.json()["items"]], r.json()


def _audit(api, target):
    r = api.client.get("/v1/audit", params={"target": target, "limit": 100},
                       headers=api.h("admin"))
    return r.json()["items"]


def test_cases_are_assigned_to_users_whose_keys_share_one_queue(api):
    a, b = _case(api, "biz-1"), _case(api, "per-1")
    # a look-alike spelling of the user "supervisor" (held by the keys supervisor and
    # supervisor-laptop) is that user
    r = api.client.post(ASSIGN, json={"case_ids": [a, b], "assignee": "ＳＵＰＥＲＶＩＳＯＲ "},
                        headers=api.h("investigator"))
    assert r.status_code == 200, r.text
    assert r.json() == {"assigned": [a, b], "skipped": [], "assignee": "supervisor"}
    for key in ("supervisor", "supervisor-laptop"):
        ids, page = _ids(api, "mine", key)
        assert ids == [a, b] and page["counts"]["mine"] == 2
        item = page["items"][0]
        assert item["assignee"] == "supervisor" and item["assigned_by"] == "investigator"
        assert item["assigned_by_key"] == "investigator" and item["assigned_at"]
    assert _ids(api, "mine", "supervisor2")[0] == []
    assert api.client.get(f"/v1/cases/{a}/assignment",
                          headers=api.h("viewer")).json()["assignee"] == "supervisor"
    me = api.client.get("/v1/me", headers=api.h("supervisor-laptop")).json()
    assert me == {"user": "supervisor", "name": "supervisor-laptop", "role": "supervisor"}
    people = {p["user"]: p for p in api.client.get("/v1/people",
                                                   headers=api.h("investigator")).json()["items"]}
    assert people["supervisor"]["keys"] == ["supervisor", "supervisor-laptop"]
    assert people["viewer"]["role"] == "viewer"


def test_assignment_refuses_unknown_invisible_and_viewer_only_users(api):
    a = _case(api, "biz-1")
    h = api.h("investigator")
    r = api.client.post(ASSIGN, json={"case_ids": [a], "assignee": "ghost"}, headers=h)
    assert r.status_code == 404 and "ghost" in r.json()["error"]["message"]
    r = api.client.post(ASSIGN, json={"case_ids": [a], "assignee": "inv\u200bestigator"},
                        headers=h)
    assert r.status_code == 422
    r = api.client.post(ASSIGN, json={"case_ids": [a], "assignee": "viewer"}, headers=h)
    assert r.status_code == 422 and "viewer" in r.json()["error"]["message"]
    api.store.revoke_key("investigator2")
    r = api.client.post(ASSIGN, json={"case_ids": [a], "assignee": "investigator2"}, headers=h)
    assert r.status_code == 404
    r = api.client.post(ASSIGN, json={"case_ids": [a], "assignee": "admin"},
                        headers=api.h("viewer"))
    assert r.status_code == 403
    assert _ids(api, "unassigned", "investigator")[0] == [a]


def test_every_assignment_is_audited(api):
    a = _case(api, "biz-1")
    h = api.h("supervisor-laptop")
    api.client.post(ASSIGN, json={"case_ids": [a, 987654], "assignee": "Investigator2"},
                    headers=h)
    api.client.post(ASSIGN, json={"case_ids": [a], "assignee": None}, headers=h)
    got = [(e["action"], e["actor"], e["key"], e["details"]) for e in _audit(api, f"case:{a}")
           if e["action"].startswith("case.")]
    assert ("case.assign", "supervisor", "supervisor-laptop",
            {"assignee": "investigator2"}) in got
    assert ("case.unassign", "supervisor", "supervisor-laptop", {"assignee": None}) in got
    skipped = _audit(api, "case:987654")
    assert [e["action"] for e in skipped] == ["case.assign_skipped"]
    api.client.get("/v1/queues/active", headers=api.h("viewer"))
    read = _audit(api, "active")[0]
    assert read["action"] == "queues.read" and read["details"]["rows"] == 1


def test_the_approval_queue_leaves_out_the_callers_own_requests_freeze_and_release(api):
    a = _case(api, "biz-1")
    _move(api, a, "investigator", "under_review")
    _move(api, a, "supervisor-laptop", "freeze_requested")  # user supervisor asks
    # neither of the requesting user's keys sees it as waiting for them; another person does
    assert _ids(api, "approval", "supervisor")[0] == []
    assert _ids(api, "approval", "supervisor-laptop")[0] == []
    assert _ids(api, "approval", "supervisor2")[0] == [a]
    _move(api, a, "supervisor2", "frozen")
    _move(api, a, "investigator", "release_requested")
    assert _ids(api, "approval", "investigator")[0] == []
    ids, page = _ids(api, "approval", "supervisor")
    assert ids == [a] and page["counts"]["approval"] == 1


def test_migration_0004_turns_key_named_assignments_into_users(store_url):
    engine = create_engine(store_url)
    with engine.begin() as conn:  # the schema as revision 0003 left it, with its data
        command.upgrade(_config(conn), "0003")
    with engine.begin() as conn:
        conn.execute(insert(T.api_keys).values(key_id=1, name="laptop-7", role="investigator",
                                               key_hash="1" * 64, created_at=0.0,
                                               user="nguyen.an"))
        conn.execute(insert(T.api_keys).values(key_id=2, name="sup-key", role="supervisor",
                                               key_hash="2" * 64, created_at=0.0,
                                               user="tran.binh"))
        for case_id in (1, 2):
            conn.execute(insert(T.cases).values(
                case_id=case_id, account_id=f"acc-{case_id}", status="open",
                opened_by="nguyen.an", opened_at=0.0, updated_at=0.0))
        conn.exec_driver_sql(
            "INSERT INTO case_assignments (case_id, assignee, assigned_by, assigned_at) "
            "VALUES (1, 'laptop-7', 'sup-key', 1.0), (2, 'someone-gone', 'sup-key', 2.0)")
    engine.dispose()
    store = CaseStore(store_url)  # opening upgrades to head
    try:
        with store.read() as conn:
            rows = conn.execute(select(T.case_assignments).order_by(
                T.case_assignments.c.case_id)).all()
            revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        assert revision == head() == "0006"
        assert [(r.assignee, r.assigned_by, r.assigned_by_key) for r in rows] == [
            ("nguyen.an", "tran.binh", "sup-key"), ("someone-gone", "tran.binh", "sup-key")]
    finally:
        store.close()

