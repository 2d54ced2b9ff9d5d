"""The scorer's pure core without Kafka: real feature engine, real (tiny) LightGBM model."""

from __future__ import annotations

import random
import time

import orjson
import pytest

from features.engine import FeatureEngine
from features.events import Payment, encode
from streaming.handler import ActiveModel, Handler, RawRecord
from tests.integration.test_scorer_support import expected_scores, make_bank, train_model


@pytest.fixture(scope="module")
def bank():
    return make_bank(n_accounts=60, n_payments=600, seed=3, prefix="U")


@pytest.fixture(scope="module")
def model(bank):
    return train_model(bank, rounds=15)


def _records(bank, partitions: int = 2) -> list[RawRecord]:
    """Both topics as a broker would hold them: per topic-partition, in production order."""
    offsets: dict[tuple[str, int], int] = {}
    out = []
    for ev in bank.events():
        kind = "payments" if isinstance(ev, Payment) else "logins"
        p = int(ev.account_id[1:]) % partitions
        off = offsets.get((kind, p), 0)
        offsets[(kind, p)] = off + 1
        out.append(RawRecord(kind, f"x.{kind}", p, off, 0, ev.account_id.encode(), encode(ev)))
    return out


def _handler(bank, partitions: int = 2) -> Handler:
    h = Handler(bank.reference())
    for p in range(partitions):
        h.open_partition(p, FeatureEngine(h.ref), 0, 0)
    return h


def _run(handler, records, model, seed: int) -> dict[str, float]:
    """Feed records in random-sized batches, each topic-partition's records in order, the two
    topics polled at different paces; 'caught up' only when a topic-partition is exhausted."""
    rng = random.Random(seed)
    queues: dict[tuple[str, int], list[RawRecord]] = {}
    for r in records:
        queues.setdefault((r.kind, r.partition), []).append(r)
    scores: dict[str, float] = {}
    while any(queues.values()):
        batch = []
        for key in rng.sample(sorted(queues), k=rng.randint(1, len(queues))):
            n = rng.randint(0, 40)
            batch += queues[key][:n]
            del queues[key][:n]
        result = handler.handle(batch, model, lambda kind, p: not queues[(kind, p)])
        assert not result.dead_letters
        for s in result.scored:
            assert s.event_id not in scores
            scores[s.event_id] = s.score
    return scores


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scores_equal_the_offline_replay_whatever_the_batching(bank, model, seed):
    active = ActiveModel(model.version, model)
    got = _run(_handler(bank), _records(bank), active, seed)
    assert got == expected_scores(bank, model)


def test_every_scored_record_has_the_contract_fields(bank, model):
    h = _handler(bank)
    result = h.handle(_records(bank), ActiveModel("v-test", model), lambda k, p: True)
    assert len(result.scored) == len(bank.payments)
    rec = orjson.loads(result.scored[0].value.to_json())
    assert list(rec)[:8] == ["event_id", "account_id", "ts", "score", "decision", "reasons",
                             "model_version", "scored_at"]  # the payment switch's contract
    assert set(rec) == {*list(rec)[:8], "late", "payment", "features"}
    assert rec["model_version"] == "v-test"
    assert rec["payment"]["amount"] > 0 and "amount_ratio_median_30d" in rec["features"]
    flagged = [s for s in result.scored if s.decision != "allow"]
    assert flagged and all(s.value.reasons for s in flagged)
    assert len(result.logins) == len(bank.logins)


def test_rejects_become_dead_letters_and_valid_records_still_flow(bank, model):
    h = _handler(bank)
    good = _records(bank)[:50]
    bad = RawRecord("payments", "x.payments", 0, 10_000, 0, b"k", b'{"event_id": 1')
    result = h.handle([*good, bad], ActiveModel("v", model), lambda k, p: True)
    assert [d.record for d in result.dead_letters] == [bad]
    headers = dict(result.dead_letters[0].headers())
    assert headers["source_offset"] == b"10000" and headers["source_topic"] == b"x.payments"
    assert result.scored


def test_a_duplicate_payment_is_not_scored_twice(bank, model):
    h = _handler(bank)
    recs = [r for r in _records(bank) if r.kind == "payments" and r.partition == 0][:5]
    dup = RawRecord("payments", "x.payments", 0, 5, 0, recs[0].key, recs[0].value)
    result = h.handle([*recs, dup], ActiveModel("v", model), lambda k, p: True)
    assert len(result.scored) == 5
    assert result.not_scored == [result.scored[0].event_id]


def test_without_a_model_or_reference_data_payments_wait(bank, model):
    h = _handler(bank)
    recs = _records(bank)[:100]
    assert h.handle(recs, None, lambda k, p: True).scored == []
    assert h.handle([], ActiveModel("v", model), lambda k, p: True, payments_ready=False
                    ).scored == []
    later = h.handle([], ActiveModel("v", model), lambda k, p: True)
    assert len(later.scored) == sum(r.kind == "payments" for r in recs)


def test_threshold_overrides_decide(bank, model):
    h = _handler(bank)
    result = h.handle(_records(bank)[:200], ActiveModel("v", model, 0.0, 1.0),
                      lambda k, p: True)
    assert {s.decision for s in result.scored} == {"review"}


def test_records_of_unassigned_partitions_are_left_alone(bank, model):
    h = _handler(bank, partitions=1)
    recs = [r for r in _records(bank) if r.partition == 1][:10]
    result = h.handle(recs, ActiveModel("v", model), lambda k, p: True)
    assert result.stale == 10 and not result.scored


def test_alerts_of_a_listed_beneficiary_or_holder_carry_the_watch_list_sentence(bank, model):
    """Every payment alerted (review threshold 0): those to a beneficiary listed at the time
    carry 'beneficiary reported to SIMO on dd/mm for ...', those of a listed account holder
    'account holder reported to the police ...'; before the listing, neither."""
    from datetime import timedelta

    from features.events import WatchEntry
    from models.reasons import watchlist_phrase

    payments = sorted(bank.payments, key=lambda p: p.t)
    middle = payments[len(payments) // 2]
    listed_at = middle.ts
    cp = middle.counterparty_account
    holder = payments[0].account_id
    cp_entry = WatchEntry("VCB", cp, "SIMO", listed_at, "receiving scam money")
    holder_entry = WatchEntry("CGB", holder, "police", listed_at - timedelta(seconds=1),
                              "mule account")
    h = _handler(bank)
    h.ref.add_watch(cp_entry)
    h.ref.add_watch(holder_entry)
    active = ActiveModel("v-test", model, review_threshold=0.0, hold_threshold=1.0)
    result = h.handle(_records(bank), active, lambda k, p: True)
    by_id = {p.event_id: p for p in bank.payments}
    cp_text = watchlist_phrase(cp_entry, beneficiary=True)
    holder_text = watchlist_phrase(holder_entry, beneficiary=False)
    assert cp_text.startswith("beneficiary reported to SIMO on ")
    seen = {"cp": 0, "holder": 0}
    for s in result.scored:
        p = by_id[s.event_id]
        assert s.decision != "allow"
        texts = [r.text for r in s.value.reasons]
        assert len(texts) >= 1
        cp_listed = p.counterparty_account == cp and p.t >= listed_at.timestamp()
        holder_listed = p.account_id == holder and p.t >= holder_entry.listed_at.timestamp()
        assert (cp_text in texts) == cp_listed, (p.event_id, texts)
        assert (holder_text in texts) == holder_listed, (p.event_id, texts)
        seen["cp"] += cp_listed
        seen["holder"] += holder_listed
        if cp_listed:
            [r] = [r for r in s.value.reasons if r.text == cp_text]
            assert r.feature in ("cp_watchlisted", "cp_days_since_listed")
    assert seen["cp"] >= 1 and seen["holder"] >= 1, seen
    # the same payments allowed (review threshold above every score) carry no reasons at all
    h2 = _handler(bank)
    h2.ref.add_watch(cp_entry)
    quiet = ActiveModel("v-test", model, review_threshold=1.0, hold_threshold=1.0)
    assert all(not s.value.reasons for s in h2.handle(_records(bank), quiet,
                                                     lambda k, p: True).scored)


def test_a_held_payment_keeps_its_poll_time_and_gets_its_release_time(bank, model):
    """poll → send splits into waiting in the alignment (poll → release) and processing
    (release → send): a payment held until the logins topic is caught up is released by the
    later call, and carries both times."""
    h = _handler(bank)
    polled_at = time.perf_counter()
    recs = [r._replace(polled_at=polled_at) for r in _records(bank)[:100]
            if r.kind == "payments"]
    active = ActiveModel("v", model)
    held = h.handle(recs, active, lambda kind, p: kind != "logins")
    assert held.scored == []
    before_release = time.perf_counter()
    released = h.handle([], active, lambda kind, p: True)
    after = time.perf_counter()
    assert len(released.scored) == len(recs)
    for s in released.scored:
        assert s.polled_at == polled_at
        assert before_release <= s.released_at <= after
