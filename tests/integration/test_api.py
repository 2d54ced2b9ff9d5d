"""The investigator API over a real SQLite case store: every endpoint, role boundary,
illegal transition, the audit trail and the bad-input answers."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.integration.test_api_support import RecordingPublisher, make_api, seed

HIGH_RISK = "/v1/accounts/high-risk"


@pytest.fixture
def api(tmp_path, store_url):
    a = make_api(tmp_path, publisher=RecordingPublisher(), url=store_url, api_max_page=100)
    seed(a.store)
    return a


def test_healthz_is_open_and_everything_else_needs_a_key(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    for path in [HIGH_RISK, "/v1/accounts/biz-1", "/v1/cases", "/v1/cases/1", "/v1/model",
                 "/v1/audit", "/readyz", "/metrics",
                 "/v1/reports/suspicious-accounts?from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z"]:
        r = api.client.get(path)
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
    r = api.client.post("/v1/cases", json={"account_id": "biz-1"})
    assert r.status_code == 401
    assert api.client.get(HIGH_RISK, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert api.client.get(HIGH_RISK, headers={"Authorization": "Basic abc"}).status_code == 401


def test_a_revoked_key_is_refused_at_once(api):
    assert api.client.get(HIGH_RISK, headers=api.h("viewer")).status_code == 200
    assert api.store.revoke_key("viewer")
    r = api.client.get(HIGH_RISK, headers=api.h("viewer"))
    assert r.status_code == 401
    assert "revoked" in r.json()["error"]["message"]


def test_revoke_reads_only_ascii_digits_within_the_key_column_as_a_key_id(api):
    """'٣' is a digit to Python (int('٣') == 3): it names no key and must not revoke key 3; a
    number beyond the key_id column's 32 bits is no key id (the driver raised)."""
    keys = {k["key_id"]: k for k in api.store.list_keys()}
    assert 3 in keys and not keys[3]["revoked_at"]
    assert api.store.revoke_key("\u0663") is False  # ARABIC-INDIC DIGIT THREE
    assert api.store.revoke_key("9" * 30) is False
    assert api.store.revoke_key(str(2**31)) is False  # beyond the INTEGER column (PostgreSQL)
    assert not {k["key_id"]: k for k in api.store.list_keys()}[3]["revoked_at"]
    assert api.store.revoke_key("3") is True


def test_high_risk_ranks_with_reasons_type_trend_and_case_status(api):
    r = api.client.get(HIGH_RISK, headers=api.h("viewer"))
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["account_id"] for i in items] == ["biz-1", "per-1", "per-2"]
    top = items[0]
    # its 0.93 an hour before the newest activity in the store (per-2's): faded by an hour of
    # the 7-day half-life
    assert top["peak_score"] == 0.93
    assert top["score"] == pytest.approx(0.93 * 2 ** (-1 / (7 * 24)), abs=1e-6)
    assert top["type"] == "business"
    assert top["top_reasons"] == ["7 người gửi khác nhau trong 24 giờ",
                                  "tiền vào rồi chuyển đi ngay"]
    assert top["foreign_login"] is True and top["foreign_countries"] == ["KH"]
    assert top["typology"] == "shell_business"
    assert top["last_activity"] == "2026-03-01T11:00:00Z"
    assert top["case_status"] == "none" and top["case_id"] is None
    assert top["prev_score"] is None and top["trend"] is None


def test_item_9a_view_is_one_query(api):
    r = api.client.get(HIGH_RISK, params={"type": "business", "foreign_login": "true",
                                          "min_score": 0.5}, headers=api.h("viewer"))
    assert [i["account_id"] for i in r.json()["items"]] == ["biz-1"]
    assert "type=business&foreign_login=true&min_score=0.5" in api.client.get(
        "/openapi.json").text


def test_filters(api):
    def ids(**params):
        r = api.client.get(HIGH_RISK, params=params, headers=api.h("viewer"))
        assert r.status_code == 200, r.text
        return [i["account_id"] for i in r.json()["items"]]

    assert ids(min_score=0.6) == ["biz-1", "per-1"]
    assert ids(type="personal") == ["per-1", "per-2"]
    assert ids(foreign_login="false") == ["per-1", "per-2"]
    assert ids(since="2026-03-01T10:30:00+00:00") == ["biz-1", "per-2"]
    assert ids(since="2026-03-01T17:30:00+07:00") == ["biz-1", "per-2"]
    assert ids(typology="shell_business") == ["biz-1"]
    assert ids(case_status="none") == ["biz-1", "per-1", "per-2"]
    api.client.post("/v1/cases", json={"account_id": "per-1", "reason": "x"},
                    headers=api.h("investigator"))
    assert ids(case_status="open") == ["per-1"]
    assert ids(case_status="none") == ["biz-1", "per-2"]


def test_cursor_pagination_walks_every_account_once(api):
    seen, cursor = [], None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        body = api.client.get(HIGH_RISK, params=params, headers=api.h("viewer")).json()
        seen += [i["account_id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["biz-1", "per-1", "per-2"]


@pytest.mark.parametrize("params,status,code", [
    ({"limit": 101}, 422, "invalid_request"),
    ({"limit": 0}, 422, "invalid_request"),
    ({"limit": "ten"}, 422, "invalid_request"),
    ({"min_score": 1.5}, 422, "invalid_request"),
    ({"min_score": "high"}, 422, "invalid_request"),
    ({"type": "corporate"}, 422, "invalid_request"),
    ({"foreign_login": "maybe"}, 422, "invalid_request"),
    ({"since": "yesterday"}, 422, "invalid_request"),
    ({"since": "2026-03-01T10:00:00"}, 422, "invalid_request"),
    ({"case_status": "lost"}, 422, "invalid_request"),
    ({"typology": "pirate"}, 422, "invalid_request"),
    ({"cursor": "not-a-cursor"}, 400, "invalid_cursor"),
])
def test_bad_parameters_are_4xx_with_a_clear_message(api, params, status, code):
    r = api.client.get(HIGH_RISK, params=params, headers=api.h("viewer"))
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["request_id"] == r.headers["x-request-id"]


def test_a_cursor_from_other_filters_is_refused(api):
    body = api.client.get(HIGH_RISK, params={"limit": 1}, headers=api.h("viewer")).json()
    r = api.client.get(HIGH_RISK, params={"limit": 1, "min_score": 0.2,
                                          "cursor": body["next_cursor"]},
                       headers=api.h("viewer"))
    assert r.status_code == 400


def test_account_detail_and_its_audit_trail(api):
    r = api.client.get("/v1/accounts/biz-1", headers=api.h("investigator"))
    assert r.status_code == 200
    read_request_id = r.headers["x-request-id"]
    d = r.json()
    assert d["profile"]["type"] == "business" and d["profile"]["customer_id"] == "cus-biz-1"
    assert [p["ts"] for p in d["timeline"]] == ["2026-03-01T09:00:00Z", "2026-03-01T11:00:00Z"]
    assert d["payments"][0]["event_id"] == "e2"
    assert d["payments"][0]["reasons"][0]["text"] == "7 người gửi khác nhau trong 24 giờ"
    assert d["payments"][0]["description"] == "chuyển tiền học phí tháng 3"
    assert d["login_summary"]["countries"] == ["KH", "VN"]
    assert d["counterparties"][0]["count"] == 2
    assert d["cases"] == []
    assert api.client.get("/v1/accounts/nobody", headers=api.h("viewer")).status_code == 404
    assert api.client.get("/v1/accounts/" + "x" * 1025, headers=api.h("viewer")).status_code == 422

    r = api.client.get("/v1/audit", headers=api.h("admin"))
    assert r.status_code == 200
    entries = r.json()["items"]
    assert [(e["actor"], e["key"], e["action"], e["target"]) for e in entries] == [
        ("viewer", "viewer", "account.read_unknown", "nobody"),
        ("investigator", "investigator", "account.read", "biz-1")]
    assert entries[1]["request_id"] == read_request_id
    assert entries[1]["details"]["rows"]["payments"] == 2
    for who in ("viewer", "investigator", "supervisor"):
        assert api.client.get("/v1/audit", headers=api.h(who)).status_code == 403
    only = api.client.get("/v1/audit", params={"target": "biz-1", "limit": 1},
                          headers=api.h("admin")).json()
    assert len(only["items"]) == 1 and only["next_cursor"] is None
    assert api.client.get("/v1/audit", params={"cursor": "zz"},
                          headers=api.h("admin")).status_code == 400


def _open_case(api, account_id="biz-1", who="investigator"):
    r = api.client.post("/v1/cases", json={"account_id": account_id, "reason": "nhiều người gửi"},
                        headers=api.h(who))
    assert r.status_code == 201, r.text
    return r.json()["case_id"]


def _move(api, case_id, who, to, **extra):
    return api.client.post(f"/v1/cases/{case_id}/transitions",
                           json={"to": to, "reason": f"{who}: {to}", **extra},
                           headers=api.h(who))


def test_rapid_response_with_maker_checker_and_publication(api):
    pub = api.client.app.state.publisher
    case_id = _open_case(api)
    assert _move(api, case_id, "investigator", "under_review").status_code == 200
    r = _move(api, case_id, "investigator", "freeze_requested")
    assert r.json()["action"] == "freeze_requested" and r.json()["action_published"] is True
    # the requester cannot approve, even with a supervisor's rights
    r = _move(api, case_id, "investigator", "frozen")
    assert r.status_code == 403
    r = _move(api, case_id, "supervisor", "frozen")
    assert r.status_code == 200, r.text
    assert r.json()["case"]["status"] == "frozen"
    assert _move(api, case_id, "investigator", "release_requested").status_code == 200
    r = _move(api, case_id, "supervisor", "released", outcome="confirmed_mule")
    assert r.status_code == 200, r.text
    case = r.json()["case"]
    assert [h["to_status"] for h in case["history"]] == [
        "open", "under_review", "freeze_requested", "frozen", "release_requested", "released"]
    assert [(h["user"], h["key"]) for h in case["history"]] == [
        ("investigator", "investigator")] * 3 + [("supervisor", "supervisor"),
                                                 ("investigator", "investigator"),
                                                 ("supervisor", "supervisor")]
    assert [a["action"] for a in pub.actions] == ["freeze_requested", "freeze_approved",
                                                  "release_requested", "released"]
    assert pub.actions[1] | {"at": None, "action_id": None} == {
        "action": "freeze_approved", "account_id": "biz-1", "case_id": case_id,
        "actor": "supervisor", "key": "supervisor", "reason": "supervisor: frozen",
        "at": None, "action_id": None}
    ids = [a["action_id"] for a in pub.actions]  # every event its own uuid
    assert len(set(ids)) == len(ids) and all(uuid.UUID(i).version == 4 for i in ids)
    assert [(lb.account_id, lb.label, lb.source) for lb in pub.labels] == [
        ("biz-1", "mule", "investigator")]
    labels = api.store.labels_from_outcomes()
    assert [(lb.label_id, lb.label, lb.typology) for lb in labels] == [
        (f"case-{case_id}", "mule", None)]
    item = api.client.get(HIGH_RISK, params={"case_status": "released"},
                          headers=api.h("viewer")).json()["items"][0]
    assert item["account_id"] == "biz-1" and item["typology"] == "mule"
    assert api.client.get(f"/v1/cases/{case_id}", headers=api.h("viewer")).json()[
        "outcome"] == "confirmed_mule"


def test_a_supervisor_cannot_approve_their_own_freeze_request(api):
    case_id = _open_case(api, who="supervisor")
    _move(api, case_id, "supervisor", "under_review")
    _move(api, case_id, "supervisor", "freeze_requested")
    r = _move(api, case_id, "supervisor", "frozen")
    assert r.status_code == 403 and "maker-checker" in r.json()["error"]["message"]
    assert _move(api, case_id, "supervisor2", "frozen").status_code == 200


def test_a_viewer_cannot_decide(api):
    r = api.client.post("/v1/cases", json={"account_id": "biz-1"}, headers=api.h("viewer"))
    assert r.status_code == 403
    case_id = _open_case(api)
    r = _move(api, case_id, "viewer", "under_review")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"


def test_an_investigator_cannot_approve_release_or_reject(api):
    case_id = _open_case(api)
    _move(api, case_id, "investigator", "under_review")
    _move(api, case_id, "investigator", "freeze_requested")
    assert _move(api, case_id, "investigator2", "frozen").status_code == 403
    assert _move(api, case_id, "investigator2", "under_review").status_code == 403
    assert _move(api, case_id, "supervisor", "under_review").status_code == 200  # rejected


@pytest.mark.parametrize("path,to", [
    ([], "frozen"), ([], "freeze_requested"), ([], "released"), ([], "open"),
    (["under_review"], "frozen"), (["under_review"], "released"),
    (["under_review", "freeze_requested"], "released"),
    (["under_review", "freeze_requested"], "closed"),
    (["under_review", "freeze_requested", "frozen"], "under_review"),
    (["under_review", "freeze_requested", "frozen"], "open"),
    (["under_review", "freeze_requested", "frozen"], "released"),
    (["under_review", "freeze_requested", "frozen", "release_requested"], "closed"),
])
def test_illegal_transitions_are_409_with_the_allowed_ones(api, path, to):
    case_id = _open_case(api)
    for step in path:
        who = "supervisor2" if step in ("frozen", "released") else "investigator"
        assert _move(api, case_id, who, step).status_code == 200
    r = _move(api, case_id, "admin", to, **({"outcome": "confirmed_fraud"}
                                            if to in ("released", "closed") else {}))
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"]["code"] == "illegal_transition"
    assert body["error"]["details"]["allowed_transitions"]
    assert to not in body["error"]["details"]["allowed_transitions"]


def test_terminal_cases_refuse_every_move_and_a_new_case_can_open(api):
    case_id = _open_case(api)
    r = _move(api, case_id, "investigator", "closed", outcome="false_positive")
    assert r.status_code == 200 and r.json()["label_published"] is True
    r = _move(api, case_id, "admin", "under_review")
    assert r.status_code == 409
    assert r.json()["error"]["details"]["allowed_transitions"] == []
    assert _open_case(api) != case_id
    assert [lb.label for lb in api.store.labels_from_outcomes()] == ["legit"]


def test_case_errors(api):
    r = api.client.post("/v1/cases", json={"account_id": "ghost"}, headers=api.h("investigator"))
    assert r.status_code == 404
    case_id = _open_case(api)
    r = api.client.post("/v1/cases", json={"account_id": "biz-1"}, headers=api.h("investigator"))
    assert r.status_code == 409
    assert r.json()["error"]["details"] == {"case_id": case_id}
    h = {**api.h("investigator"), "Content-Type": "application/json"}
    r = api.client.post(f"/v1/cases/{case_id}/transitions", content=b'{"to": ', headers=h)
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    r = api.client.post("/v1/cases", content=b"[1, 2", headers=h)
    assert r.status_code == 400
    r = api.client.post(f"/v1/cases/{case_id}/transitions", json={"to": "melted"}, headers=h)
    assert r.status_code == 422
    r = api.client.post(f"/v1/cases/{case_id}/transitions", json={"to": "closed"}, headers=h)
    assert r.status_code == 422 and "outcome" in r.json()["error"]["message"]
    r = api.client.post(f"/v1/cases/{case_id}/transitions",
                        json={"to": "under_review", "colour": "red"}, headers=h)
    assert r.status_code == 422
    assert _move(api, 999, "investigator", "under_review").status_code == 404
    assert api.client.get("/v1/cases/999", headers=h).status_code == 404
    assert api.client.get("/v1/cases/abc", headers=h).status_code == 422
    assert api.client.get("/v1/cases/0", headers=h).status_code == 422


def test_case_list_filters_and_pages(api):
    first = _open_case(api, "biz-1")
    second = _open_case(api, "per-1")
    body = api.client.get("/v1/cases", params={"limit": 1}, headers=api.h("viewer")).json()
    assert [c["case_id"] for c in body["items"]] == [second]
    body = api.client.get("/v1/cases", params={"limit": 1, "cursor": body["next_cursor"]},
                          headers=api.h("viewer")).json()
    assert [c["case_id"] for c in body["items"]] == [first] and body["next_cursor"] is None
    body = api.client.get("/v1/cases", params={"account_id": "per-1"},
                          headers=api.h("viewer")).json()
    assert [c["case_id"] for c in body["items"]] == [second]
    assert api.client.get("/v1/cases", params={"status": "nope"},
                          headers=api.h("viewer")).status_code == 422
    assert api.client.get("/v1/cases", params={"limit": 1000},
                          headers=api.h("viewer")).status_code == 422


def test_model_endpoint(api):
    r = api.client.get("/v1/model", headers=api.h("viewer"))
    assert r.status_code == 404
    api.store.set_model_info("12", {"test_average_precision": 0.61},
                             {"review": 0.4, "hold": 0.85})
    body = api.client.get("/v1/model", headers=api.h("viewer")).json()
    assert body["version"] == "12"
    assert body["metrics"] == {"test_average_precision": 0.61}
    assert body["thresholds"] == {"review": 0.4, "hold": 0.85}


def test_readyz_metrics_and_unknown_routes(api):
    r = api.client.get("/readyz", headers=api.h("viewer"))
    assert r.status_code == 200 and r.json()["status"] == "ready"
    api.client.get(HIGH_RISK, headers=api.h("viewer"))
    r = api.client.get("/metrics", headers=api.h("viewer"))
    assert r.status_code == 200
    assert 'canhgiac_api_requests_total{method="GET",route="/v1/accounts/high-risk",' \
           'status="200"}' in r.text
    # each group commit of the access log is timed; the read above was one or more of them
    commits = re.search(r"^canhgiac_api_audit_commit_seconds_count ([0-9.]+)$", r.text, re.M)
    assert commits is not None and float(commits.group(1)) >= 1
    r = api.client.get("/v1/nothing-here", headers=api.h("viewer"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert api.client.delete("/v1/cases", headers=api.h("admin")).status_code == 405


def test_the_page_is_served(api):
    r = api.client.get("/ui/")
    assert r.status_code == 200 and "Cảnh Giác" in r.text and "/ui/static/app.js" in r.text
    assert "/v1/accounts/high-risk" in api.client.get("/ui/static/list.js").text
    assert api.client.get("/", follow_redirects=False).status_code in (302, 307)


def test_openapi_documents_every_endpoint_model_and_error(api):
    spec = api.client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ["/v1/accounts/high-risk", "/v1/accounts/{account_id}", "/v1/cases",
                 "/v1/cases/{case_id}", "/v1/cases/{case_id}/transitions",
                 "/v1/reports/suspicious-accounts", "/v1/model", "/v1/audit", "/healthz",
                 "/readyz", "/metrics"]:
        assert path in paths, path
    for path, ops in paths.items():
        for method, op in ops.items():
            if path != "/healthz":
                assert "401" in op["responses"], (method, path)
    for model in ["HighRiskPage", "AccountDetail", "CaseOut", "TransitionIn", "ErrorResponse",
                  "AuditPage", "ModelInfo", "Report"]:
        assert model in spec["components"]["schemas"], model
    assert "ApiKey" in spec["components"]["securitySchemes"]


def test_a_scorer_batch_during_reads_is_idempotent(api):
    before = api.client.get(HIGH_RISK, headers=api.h("viewer")).json()
    from tests.integration.test_api_support import BASE, scored

    api.store.write_scored([scored("e2", "biz-1", 0.93, BASE)])  # replayed event: no change
    after = api.client.get(HIGH_RISK, headers=api.h("viewer")).json()
    assert after == before


def test_an_unexpected_failure_is_a_logged_500_with_a_request_id(api, caplog):
    with api.store.write() as conn:
        conn.exec_driver_sql("DROP TABLE logins")  # the database breaks under the API
    with caplog.at_level("ERROR", logger="serving.errors"):
        r = api.client.get("/v1/accounts/biz-1", headers=api.h("viewer"))
    assert r.status_code == 500
    body = r.json()
    assert body["error"]["code"] == "internal_error"
    assert "no such table" not in r.text  # no internals leak
    assert body["request_id"] == r.headers["x-request-id"]
    assert any(getattr(rec, "request_id", None) == body["request_id"] for rec in caplog.records)


def test_paging_is_exact_when_scores_differ_below_the_displayed_precision(api):
    from tests.integration.test_api_support import BASE, scored

    api.store.write_scored([scored(f"z{i}", f"tie-{i}", 0.8 + i * 1e-9, BASE)
                            for i in range(7)] +
                           [scored(f"y{i}", f"same-{i}", 0.8, BASE) for i in range(3)])
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "min_score": 0.75, **({"cursor": cursor} if cursor else {})}
        body = api.client.get(HIGH_RISK, params=params, headers=api.h("viewer")).json()
        seen += [i["account_id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected = ["biz-1"] + [f"tie-{i}" for i in reversed(range(7))] + [
        f"same-{i}" for i in reversed(range(3))]
    assert seen == expected


def test_decisions_show_at_once_and_scorer_writes_within_the_staleness_bound(tmp_path,
                                                                             store_url):
    import time

    from fastapi.testclient import TestClient

    from serving.cache import MAX_STALE_S
    from tests.integration.test_api_support import BASE, scored

    api = make_api(tmp_path, url=store_url)
    seed(api.store)
    with TestClient(api.client.app) as client:  # one event loop for background renders
        h = api.h("investigator")
        first = client.get(HIGH_RISK, headers=h).json()["items"]
        assert first[0]["case_status"] == "none"
        client.post("/v1/cases", json={"account_id": "biz-1"}, headers=h)
        assert client.get(HIGH_RISK, headers=h).json()["items"][0]["case_status"] == "open"

        api.store.write_scored([scored("new", "hot-1", 0.99, BASE)])
        deadline = time.monotonic() + MAX_STALE_S + 2
        asked = time.monotonic()
        while asked < deadline:
            top = client.get(HIGH_RISK, headers=h).json()["items"][0]["account_id"]
            if top == "hot-1":
                break
            time.sleep(0.05)
            asked = time.monotonic()
        assert top == "hot-1" and asked < deadline  # asked within the staleness bound


def test_the_cached_fast_path_still_checks_the_key(api):
    params = {"min_score": 0.2}
    for _ in range(2):  # the second answer comes from the fast path
        assert api.client.get(HIGH_RISK, params=params, headers=api.h("viewer")).status_code == 200
    for headers in [{}, {"Authorization": "Bearer cg_forged"}, {"Authorization": "Bearer"}]:
        r = api.client.get(HIGH_RISK, params=params, headers=headers)
        assert r.status_code == 401, headers
    metrics = api.client.get("/metrics", headers=api.h("viewer")).text
    assert 'canhgiac_api_cache_total{result="hit"} 1.0' in metrics


def test_actions_wait_in_the_outbox_while_the_broker_is_down(tmp_path, store_url):
    class Flaky(RecordingPublisher):
        up = False

        def publish_action(self, action):
            return self.up and super().publish_action(action)

        def publish_label(self, label):
            return self.up and super().publish_label(label)

    pub = Flaky()
    api = make_api(tmp_path, publisher=pub, url=store_url)
    seed(api.store)
    case_id = _open_case(api)
    _move(api, case_id, "investigator", "under_review")
    r = _move(api, case_id, "investigator", "freeze_requested")
    assert r.status_code == 200 and r.json()["action_published"] is False
    r = _move(api, case_id, "supervisor", "frozen")
    assert r.status_code == 200 and r.json()["action_published"] is False
    assert r.json()["case"]["status"] == "frozen"  # the decision stands
    assert pub.actions == []

    pub.up = True
    delivered = api.client.app.state.outbox.deliver()
    assert list(delivered.values()) == [True, True]
    assert [a["action"] for a in pub.actions] == ["freeze_requested", "freeze_approved"]
    assert api.store.pending_outbox(10) == []
    r = _move(api, case_id, "supervisor", "closed", outcome="confirmed_fraud")
    assert r.json()["action_published"] is True and r.json()["label_published"] is True
    assert [lb.label for lb in pub.labels] == ["fraud"]


def test_the_app_retries_the_outbox_in_the_background(tmp_path, store_url, monkeypatch):
    import time

    from fastapi.testclient import TestClient

    monkeypatch.setattr("serving.app.RETRY_INTERVAL_S", 0.05)
    pub = RecordingPublisher()
    api = make_api(tmp_path, publisher=pub, url=store_url)
    seed(api.store)
    case_id = _open_case(api)
    _move(api, case_id, "investigator", "under_review")
    with api.store.write() as conn:  # an event queued while nobody delivered it
        conn.exec_driver_sql(
            "INSERT INTO outbox (kind, account_id, payload, created_at) VALUES "
            "('action', 'biz-1', '{\"action\": \"freeze_requested\", \"account_id\": "
            "\"biz-1\"}', 0)")
    with TestClient(api.client.app):  # runs the lifespan, hence the retry loop
        deadline = time.monotonic() + 10
        while not pub.actions and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [a["action"] for a in pub.actions] == ["freeze_requested"]
    assert api.store.pending_outbox(10) == []


def test_an_app_started_twice_still_renders_pages(api):
    """Shutdown stops the cache's render threads and unfreezes the start-up objects; a second
    start of the same app renders again (and the objects are collectable in between)."""
    import gc

    from fastapi.testclient import TestClient

    app = api.client.app
    for round_ in range(2):
        with TestClient(app) as client:
            assert gc.get_freeze_count() > 0  # frozen while the app runs
            r = client.get(HIGH_RISK, params={"min_score": 0.1 + round_ / 10},
                           headers=api.h("viewer"))
            assert r.status_code == 200 and r.json()["items"], r.text
        assert gc.get_freeze_count() == 0
