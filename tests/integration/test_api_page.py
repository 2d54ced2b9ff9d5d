"""The page's own endpoints over a real SQLite store: queues and SLA, assignment, /v1/me,
the two-hop network, the score histogram with thresholds in force, the results report, the
/ui deep links, and arbitrary input answered with a 4xx, never a 500."""

from __future__ import annotations

import io
import urllib.parse

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from serving import sla as sla_mod
from tests.browser.seed import seed_ring
from tests.integration.test_api_support import make_api

SPAN = {"from": "2026-01-01T00:00:00+07:00", "to": "2027-01-01T00:00:00+07:00"}


@pytest.fixture
def api(tmp_path):
    a = make_api(tmp_path, sla_hours="freeze_requested=2")
    seed_ring(a.store)
    return a


def _case(api, account="biz-1", who="investigator"):
    r = api.client.post("/v1/cases", json={"account_id": account, "reason": "x"},
                        headers=api.h(who))
    assert r.status_code == 201, r.text
    return r.json()["case_id"]


def _move(api, case_id, who, to, **extra):
    r = api.client.post(f"/v1/cases/{case_id}/transitions",
                        json={"to": to, "reason": f"{who} {to}", **extra}, headers=api.h(who))
    assert r.status_code == 200, r.text


def test_ui_deep_links_serve_the_page_and_vendored_assets(api):
    for path in ("/ui/", "/ui/accounts/biz-1", "/ui/accounts/biz-1/network", "/ui/queues/mine"):
        r = api.client.get(path)
        assert r.status_code == 200 and "importmap" in r.text, path
    for asset in ("vendor/preact/preact.module.js", "vendor/htm/htm.module.js",
                  "vendor/chartjs/chart.umd.min.js", "vendor/cytoscape/cytoscape.min.js",
                  "app.js", "app.css"):
        assert api.client.get("/ui/static/" + asset).status_code == 200, asset
    assert api.client.get("/ui/static/nope.js").status_code == 404


def test_me_people_and_roles(api):
    assert api.client.get("/v1/me", headers=api.h("supervisor")).json() == {
        "user": "supervisor", "name": "supervisor", "role": "supervisor"}
    assert api.client.get("/v1/me").status_code == 401
    names = {p["user"] for p in api.client.get("/v1/people", headers=api.h("investigator"))
             .json()["items"]}
    assert {"investigator", "supervisor2"} <= names
    assert api.client.get("/v1/people", headers=api.h("viewer")).status_code == 403


def test_queues_assignment_and_approval(api):
    a = _case(api, "biz-1")
    b = _case(api, "mule-2")
    h = api.h("investigator")
    r = api.client.post("/v1/cases/assignment", json={"case_ids": [a, b, 999],
                                                       "assignee": "investigator2"}, headers=h)
    assert r.json() == {"assigned": [a, b], "skipped": [999], "assignee": "investigator2"}
    mine = api.client.get("/v1/queues/mine", headers=api.h("investigator2")).json()
    assert [i["case_id"] for i in mine["items"]] == [a, b]
    assert mine["counts"] == {"mine": 2, "approval": 0, "unassigned": 0, "active": 2,
                              "overdue": 0}
    api.client.post("/v1/cases/assignment", json={"case_ids": [b], "assignee": None}, headers=h)
    assert [i["case_id"] for i in api.client.get("/v1/queues/unassigned", headers=h)
            .json()["items"]] == [b]
    assert api.client.get(f"/v1/cases/{a}/assignment", headers=h).json()["assignee"] == \
        "investigator2"
    _move(api, a, "investigator", "under_review")
    _move(api, a, "investigator", "freeze_requested")
    # the requester does not see their own request as waiting for them; a supervisor does
    assert api.client.get("/v1/queues/approval", headers=h).json()["items"] == []
    waiting = api.client.get("/v1/queues/approval", headers=api.h("supervisor")).json()
    assert [i["case_id"] for i in waiting["items"]] == [a]
    assert waiting["items"][0]["sla_s"] == 7200.0 and waiting["items"][0]["overdue"] is False
    assert waiting["sla_hours"]["freeze_requested"] == 2.0
    _move(api, a, "supervisor", "frozen")
    _move(api, a, "supervisor", "closed", outcome="confirmed_mule")
    # a finished case leaves the queues and cannot be assigned
    assert api.client.get("/v1/queues/mine", headers=api.h("investigator2")).json()["items"] == []
    r = api.client.post("/v1/cases/assignment", json={"case_ids": [a], "assignee": "admin"},
                        headers=h)
    assert r.json()["assigned"] == [] and r.json()["skipped"] == [a]


def test_assignment_refuses_unknown_people_and_viewers(api):
    a = _case(api)
    r = api.client.post("/v1/cases/assignment", json={"case_ids": [a], "assignee": "ghost"},
                        headers=api.h("investigator"))
    assert r.status_code == 404 and "ghost" in r.json()["error"]["message"]
    r = api.client.post("/v1/cases/assignment", json={"case_ids": [a], "assignee": "admin"},
                        headers=api.h("viewer"))
    assert r.status_code == 403


def test_overdue_freeze_requests_are_counted_in_the_metric(tmp_path):
    api = make_api(tmp_path, sla_hours="freeze_requested=0.0001")  # 0.36 s
    seed_ring(api.store)
    a = _case(api)
    _move(api, a, "investigator", "under_review")
    _move(api, a, "investigator", "freeze_requested")
    import time
    time.sleep(0.5)
    text = api.client.get("/metrics", headers=api.h("viewer")).text
    assert "canhgiac_api_freeze_requests_overdue 1.0" in text
    q = api.client.get("/v1/queues/overdue", headers=api.h("viewer")).json()
    assert [i["case_id"] for i in q["items"]] == [a] and q["counts"]["overdue"] == 1


def test_network_two_hops_marks_flagged_accounts(api):
    g = api.client.get("/v1/accounts/biz-1/network", headers=api.h("viewer")).json()
    nodes = {n["id"]: n for n in g["nodes"]}
    assert nodes["biz-1"]["hop"] == 0 and nodes["mule-2"]["hop"] == 1
    assert nodes["mule-3"]["hop"] == 2  # reached through mule-2
    assert nodes["biz-1"]["flagged"] and nodes["mule-2"]["flagged"]
    assert not nodes["mule-3"]["flagged"] and not nodes["0901"]["ours"]
    flows = {(e["source"], e["target"]): e for e in g["edges"] if e["kind"] == "money"}
    # biz-1 → mule-2 is seen from both accounts: counted once
    assert flows[("biz-1", "mule-2")]["count"] == 1
    assert flows[("biz-1", "mule-2")]["amount"] == 26_000_000.0
    assert ("0901", "biz-1") in flows and ("mule-2", "mule-3") in flows
    # biz-1 and mule-2 logged in from the same device and IP (tests.browser.seed)
    links = {(e["kind"], e["target"]) for e in g["edges"] if e["source"] == "biz-1"}
    assert {("device", "mule-2"), ("ip", "mule-2")} <= links
    assert api.client.get("/v1/accounts/ghost/network", headers=api.h("viewer")).status_code == 404


def test_histogram_shows_the_thresholds_in_force(tmp_path):
    api = make_api(tmp_path, review_threshold=0.6)
    seed_ring(api.store)
    h = api.client.get("/v1/model/score-histogram?bins=10", headers=api.h("viewer")).json()
    assert sum(h["counts"]) == h["accounts"] == 4
    assert h["counts"][9] == 1 and h["counts"][7] == 1  # biz-1 0.93, mule-2 0.71
    assert h["thresholds"] == {"review": 0.6, "hold": 0.8, "model_review": 0.5,
                               "model_hold": 0.8, "review_overridden": True,
                               "hold_overridden": False}


def test_results_report_counts_decisions_and_held_money(api):
    a = _case(api)
    _move(api, a, "investigator", "under_review")
    _move(api, a, "investigator", "freeze_requested")
    _move(api, a, "supervisor", "frozen")
    _move(api, a, "investigator", "release_requested")  # four eyes on the release too
    _move(api, a, "supervisor", "released", outcome="confirmed_fraud")
    h = api.h("investigator")
    body = api.client.get("/v1/reports/results", params={**SPAN, "format": "json"},
                          headers=h).json()
    total = body["total"]
    assert (total["accounts_detected"], total["cases_opened"], total["freezes_requested"],
            total["freezes_approved"], total["freezes_released"],
            total["handed_to_police"]) == (2, 1, 1, 1, 1, 1)
    assert total["money_stopped_vnd"] == 26_000_000.0  # only the held payment
    assert {r["month"] for r in body["rows"]} >= {"2026-03"}
    x = api.client.get("/v1/reports/results", params={**SPAN, "format": "xlsx"}, headers=h)
    assert x.headers["content-disposition"].endswith('.xlsx"')
    rows = list(openpyxl.load_workbook(io.BytesIO(x.content)).active.iter_rows(values_only=True))
    assert rows[-1][:3] == ("total", "all", 2)
    p = api.client.get("/v1/reports/results", params={**SPAN, "format": "pdf"}, headers=h)
    assert p.headers["content-type"] == "application/pdf"
    text = "".join(pg.extract_text() for pg in PdfReader(io.BytesIO(p.content)).pages)
    assert "Cảnh Giác" in text and "26,000,000" in text
    assert api.client.get("/v1/reports/results", params=SPAN,
                          headers=api.h("viewer")).status_code == 403


@pytest.mark.parametrize("params", [
    {"from": "2026-01-01T00:00:00", "to": "2026-02-01T00:00:00Z"},
    {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    {"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    {"from": "yesterday", "to": "2026-01-01T00:00:00Z"},
    {**SPAN, "format": "doc"},
])
def test_results_report_bad_parameters_are_422(api, params):
    r = api.client.get("/v1/reports/results", params=params, headers=api.h("investigator"))
    assert r.status_code == 422 and r.json()["error"]["message"]


def test_sla_configuration_is_checked():
    assert sla_mod.parse("freeze_requested=1.5, open=2").as_dict()["freeze_requested"] == 1.5
    assert sla_mod.parse("").as_dict() == sla_mod.DEFAULT_HOURS
    for bad in ("closed=3", "frozen", "open=soon", "open=-1", "nope=2"):
        with pytest.raises(sla_mod.SlaConfigError):
            sla_mod.parse(bad)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/v1/queues/", "/v1/accounts/", "/v1/cases/"]),
       tail=st.text(max_size=40), query=st.dictionaries(
           st.sampled_from(["limit", "bins", "from", "to", "format"]), st.text(max_size=20),
           max_size=3))
def test_arbitrary_paths_and_queries_never_500(api, path, tail, query):
    suffix = {"/v1/accounts/": "/network", "/v1/cases/": "/assignment"}.get(path, "")
    url = path + urllib.parse.quote(tail, safe="") + suffix
    for u in (url, "/v1/model/score-histogram", "/v1/reports/results"):
        r = api.client.get(u, params=query, headers=api.h("investigator"))
        assert r.status_code < 500, (u, query, r.text)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=80), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["case_ids", "assignee", "x"]), inner, max_size=3), max_leaves=8)))
def test_arbitrary_assignment_bodies_are_4xx(api, body):
    import json as _json
    content = body if isinstance(body, bytes) else _json.dumps(body).encode()
    r = api.client.post("/v1/cases/assignment", content=content,
                        headers={**api.h("investigator"), "Content-Type": "application/json"})
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.json()["error"]["message"]


def test_recorded_thresholds_with_the_models_own_show_an_override(tmp_path):
    api = make_api(tmp_path)
    # what a scorer applying CANHGIAC_HOLD_THRESHOLD=0.7 over its model's 0.9 records
    api.store.set_model_info("4", {"test_average_precision": 0.5},
                             {"review": 0.3, "hold": 0.7, "model_review": 0.3, "model_hold": 0.9})
    h = api.client.get("/v1/model/score-histogram", headers=api.h("viewer")).json()
    assert h["thresholds"] == {"review": 0.3, "hold": 0.7, "model_review": 0.3,
                               "model_hold": 0.9, "review_overridden": False,
                               "hold_overridden": True}
    # a record with the applied thresholds only: nothing to call an override
    api.store.set_model_info("5", {}, {"review": 0.2, "hold": 0.6})
    h = api.client.get("/v1/model/score-histogram", headers=api.h("viewer")).json()
    assert (h["thresholds"]["hold"], h["thresholds"]["hold_overridden"]) == (0.6, False)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_any_sla_setting_is_read_or_refused_with_a_message(text):
    try:
        parsed = sla_mod.parse(text)
    except sla_mod.SlaConfigError as exc:
        assert str(exc).startswith("CANHGIAC_SLA_HOURS")
    else:
        assert all(0 < h < 87600 for h in parsed.as_dict().values())


def test_a_bad_sla_setting_stops_the_command_with_one_line(monkeypatch, capsys):
    from canhgiac.cli import main

    monkeypatch.setenv("CANHGIAC_SLA_HOURS", "closed=3")
    assert main(["keys", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("canhgiac: error: CANHGIAC_SLA_HOURS") and "\n" not in err


def test_an_ip_shared_by_many_accounts_is_not_a_link(api):
    from datetime import timedelta

    from features.events import Login
    from tests.integration.test_api_support import BASE, account

    crowd = [f"nat-{i}" for i in range(7)]
    api.store.upsert_accounts([account(a) for a in crowd])
    api.store.write_logins([Login(f"n{i}", BASE + timedelta(minutes=i), a, True, "113.160.0.1",
                                  "VN", f"d-{a}", "mobile") for i, a in enumerate(crowd)]
                           + [Login("n-per9", BASE, "per-9", True, "113.160.0.1", "VN", "d-p9",
                                    "mobile")])
    g = api.client.get("/v1/accounts/per-9/network", headers=api.h("viewer")).json()
    assert not [e for e in g["edges"] if e["kind"] == "ip"]
    api.store.write_logins([Login("n-per9b", BASE, "per-9", True, "14.1.1.1", "VN", "d-p9",
                                  "mobile"),
                            Login("n-mule3", BASE, "mule-3", True, "14.1.1.1", "VN", "d-m3",
                                  "mobile")])
    g = api.client.get("/v1/accounts/per-9/network", headers=api.h("viewer")).json()
    assert [(e["kind"], e["target"]) for e in g["edges"] if e["kind"] == "ip"] == [
        ("ip", "mule-3")]
