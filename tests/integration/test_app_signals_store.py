"""The app's device-risk signals of a scored payment (`on_call`, `remote_access`) from
`payments.scored` on the real broker, through `canhgiac sink --once`, into the case store
(SQLite and PostgreSQL) and out of `GET /v1/accounts/{id}`: true, false and not reported (null)
each arrive as themselves, and a record with a non-boolean signal is a dead letter naming it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
from kafka import KafkaProducer
from sqlalchemy import select

from serving import tables as T
from serving.store import CaseStore
from streaming.topics import ensure_topics
from tests.integration.test_api_support import make_api
from tests.integration.test_projection import TOPICS, cli_env, dead_letters, scored, settings_for

pytestmark = pytest.mark.integration

ACCOUNT = "acc-0"
# event id -> (on_call, remote_access); None = the app did not report it
STATES = {"p-0": (True, False), "p-1": (False, True), "p-2": (None, None),
          "p-3": (True, None), "p-4": (False, False)}


def test_the_sink_stores_the_app_signals_and_the_api_shows_them(broker, topic_prefix,
                                                                 tmp_path, store_url):
    s = settings_for(broker, topic_prefix, tmp_path, case_store_url=store_url)
    ensure_topics(broker.bootstrap, [topic_prefix + t for t in TOPICS], partitions=2)
    records = [replace(scored(i, 1), on_call=call, remote_access=remote)
               for i, (call, remote) in enumerate(STATES.values())]
    bad = json.loads(replace(scored(99, 1), on_call=True).to_json())
    bad["payment"]["on_call"] = "yes"  # a string is not a boolean: never guessed
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        for sp in records:
            producer.send(topic_prefix + "payments.scored", key=ACCOUNT.encode(),
                          value=sp.to_json())
        producer.send(topic_prefix + "payments.scored", key=ACCOUNT.encode(),
                      value=json.dumps(bad).encode())
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)

    done = subprocess.run([sys.executable, "-m", "canhgiac.cli", "--log-level", "WARNING",
                           "sink", "--once"],
                          env={**cli_env(s), "CANHGIAC_CASE_STORE_URL": store_url},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "6 records read, 5 written, 1 dead-lettered" in done.stdout, done.stdout

    store = CaseStore(store_url)
    try:
        with store.read() as conn:
            rows = conn.execute(select(T.scored.c.event_id, T.scored.c.on_call,
                                       T.scored.c.remote_access)).all()
        assert {r.event_id: (r.on_call, r.remote_access) for r in rows} == STATES
    finally:
        store.close()

    api = make_api(tmp_path, url=store_url)
    r = api.client.get(f"/v1/accounts/{ACCOUNT}", headers=api.h("viewer"))
    assert r.status_code == 200, r.text
    payments = r.json()["payments"]
    assert {p["event_id"]: (p["on_call"], p["remote_access"]) for p in payments} == STATES
    assert all("on_call" in p and "remote_access" in p for p in payments)  # null, not absent
    api.store.close()

    (dead,) = dead_letters(broker, topic_prefix + "payments.dlq", 1)
    headers = dict(dead.headers)
    assert headers["field"] == b"payment.on_call" and b"boolean" in headers["reason"]
