"""Every endpoint of the API under hostile input, on SQLite and on PostgreSQL: arbitrary path
segments, query strings (parameter names the API knows, with hostile values, and raw bytes),
JSON and non-JSON bodies, other methods. Nothing may answer 5xx or raise out of the client; a
4xx carries a message. (A fuzzing review found 500s on PostgreSQL alone — a NUL, a 32-bit
overflow — that SQLite answered quietly, so this runs on both stores.)"""

from __future__ import annotations

import json
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.test_api_support import make_api, seed

# what broke a store or a parser before (a NUL, an integer past 32 or 64 bits, a lone
# surrogate, a number past a double), drawn as often as everything else together
NASTY = st.sampled_from(["\x00", "a\x00b", str(2**31), str(2**63), "9" * 400, "\ud800",
                         "1e309", "NaN", "-1", "0001-01-01T00:00:00+23:59"])
HOSTILE = st.one_of(
    NASTY,
    st.text(max_size=30),
    st.sampled_from([
        "", " ", "%00", "inf", "-inf", "0", str(2**64), "1.5", "true", "null", "2026-01-01",
        "2026-01-01T00:00:00", "2026-01-01T00:00:00Z", "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-23:59", "1970-01-01T00:00:00+07:00", "\u202e", "３８９",
        "../../etc/passwd", "'; drop table cases;--", "x" * 3000, "é" * 1100, "business",
        "mule", "open", "json", "pdf", "eyJwIjpbXX0", "====",
    ]),
    st.integers(min_value=-2**70, max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
PARAMS = ["min_score", "type", "foreign_login", "since", "case_status", "typology", "limit",
          "cursor", "status", "account_id", "from", "to", "format", "actor", "target", "bins"]
GET_PATHS = ["/healthz", "/readyz", "/v1/accounts/high-risk", "/v1/accounts/{s}", "/v1/cases",
             "/v1/cases/{s}", "/v1/reports/suspicious-accounts", "/v1/model", "/v1/audit",
             "/v1/queues/{s}", "/v1/people", "/v1/me", "/v1/cases/{s}/assignment",
             "/v1/accounts/{s}/network", "/v1/model/score-histogram", "/v1/reports/results"]
POST_PATHS = ["/v1/cases", "/v1/cases/{s}/transitions", "/v1/cases/assignment"]
SEGMENTS = st.one_of(NASTY, HOSTILE, st.sampled_from(["biz-1", "1", "mine", "approval"]))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats()
    | HOSTILE,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=10)
BODY_KEYS = {"/v1/cases": ["account_id", "reason", "x"],
             "/v1/cases/{s}/transitions": ["to", "reason", "outcome", "typology"],
             "/v1/cases/assignment": ["case_ids", "assignee"]}
FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def _enc(text: str) -> str:
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")


@pytest.fixture
def api(tmp_path, store_url):
    a = make_api(tmp_path, url=store_url)
    seed(a.store)
    r = a.client.post("/v1/cases", json={"account_id": "biz-1", "reason": "x"},
                      headers=a.h("admin"))
    assert r.status_code == 201, r.text
    return a


def _answered(r) -> None:
    assert r.status_code < 500, (r.request.method, str(r.request.url)[:300], r.text[:300])
    if r.status_code >= 400 and r.headers.get("content-type", "").startswith(
            "application/json"):
        assert r.json()["error"]["message"], r.text


@pytest.mark.parametrize("path", GET_PATHS)
@FUZZ
@given(segment=SEGMENTS,
       query=st.lists(st.tuples(st.sampled_from(PARAMS), HOSTILE), max_size=5),
       raw=st.binary(max_size=60).map(lambda b: urllib.parse.quote(b, safe="=&")),
       use_raw=st.booleans())
def test_any_get_on_any_endpoint_is_answered_below_500(api, path, segment, query, raw, use_raw):
    qs = raw if use_raw else "&".join(f"{k}={_enc(v)}" for k, v in query)
    url = path.replace("{s}", _enc(segment) or "x") + ("?" + qs if qs else "")
    _answered(api.client.get(url, headers=api.h("admin")))


@pytest.mark.parametrize("path", POST_PATHS)
@FUZZ
@given(data=st.data(), segment=SEGMENTS,
       kind=st.sampled_from(["json", "raw", "method"]))
def test_any_body_or_method_on_any_endpoint_is_answered_below_500(api, data, path, segment,
                                                                  kind):
    url = path.replace("{s}", "1" if data.draw(st.booleans()) else (_enc(segment) or "x"))
    h = api.h("admin")
    if kind == "json":
        body = data.draw(st.dictionaries(st.sampled_from(BODY_KEYS[path]), JSON_VALUES,
                                         max_size=4))
        content = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
        r = api.client.post(url, content=content, headers={**h, "Content-Type": "application/json"})
    elif kind == "raw":
        content = data.draw(st.binary(max_size=200) | st.sampled_from([
            b"", b"null", b"[]", b"{", b"1e999", b'{"account_id": "\\ud800"}',
            b'{"account_id": "biz-1", "reason": "a\\u0000b"}', b'{"case_ids":[1e400]}',
            b'{"case_ids":[NaN]}', b"[" * 3000, b'{"account_id":"biz-1","account_id":"x"}']))
        ctype = data.draw(st.sampled_from(["application/json", "text/plain", ""]))
        r = api.client.post(url, content=content,
                            headers={**h, "Content-Type": ctype} if ctype else h)
    else:
        method = data.draw(st.sampled_from(["PUT", "DELETE", "PATCH", "OPTIONS", "FOO"]))
        r = api.client.request(method, url, content=b"{}", headers=h)
    _answered(r)
