"""The device / IP table (features.devices): merging sightings is idempotent and order-free
(what makes the device processor's state exactly-once under at-least-once delivery), its
answers equal brute force, its records survive a round trip, and its decoders turn hostile
bytes into rejections with a reason, never an exception."""

from __future__ import annotations

import json
import math
from array import array
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import devices
from features.devices import (
    DEVICE,
    IP,
    PAYEE,
    PAYEE_CAP,
    DeviceLinks,
    LinksRecord,
    Sighting,
    decode_links,
    decode_sighting,
    decode_sightings,
    encode_links,
    encode_sighting,
    encode_sightings,
    payee_key,
    prune_before,
    sightings_of,
)
from features.events import Label, Payment, Rejection
from features.reference import ReferenceData
from tests.unit.test_hostile_input import HOSTILE_VALUES, mutated_events

T0 = 1_772_330_400.0  # 2026-03-01T02:00:00Z, on an hour
DAY = 86400.0
KEYS = [DEVICE + "phone-1", DEVICE + "phone-2", IP + "10.0.0.1"]
ACCOUNTS = ["A", "B", "C", "D"]

SIGHTINGS = st.lists(st.builds(
    Sighting, st.sampled_from(KEYS), st.sampled_from(ACCOUNTS),
    st.one_of(st.integers(0, 10 * 86400), st.sampled_from([3599, 3600, 3601, 7200])).map(
        lambda s: T0 + s + 0.25)), max_size=60)


def table_of(sightings: list[Sighting]) -> DeviceLinks:
    links = DeviceLinks()
    for s in sightings:
        links.observe(s.key, s.account_id, s.t)
    return links


def snapshot(links: DeviceLinks) -> dict[str, dict[str, list[float]]]:
    return {k: {a: list(ts) for a, ts in (links.get(k) or {}).items()} for k in links.keys()}


def brute(sightings: list[Sighting]) -> dict[str, dict[str, list[float]]]:
    """key -> account -> the earliest sighting of each clock hour, sorted."""
    first: dict[tuple[str, str, int], float] = {}
    for s in sightings:
        k = (s.key, s.account_id, int(s.t // 3600))
        first[k] = min(first.get(k, math.inf), s.t)
    out: dict[str, dict[str, list[float]]] = {}
    for (key, account, _), t in first.items():
        out.setdefault(key, {}).setdefault(account, []).append(t)
    return {k: {a: sorted(ts) for a, ts in v.items()} for k, v in out.items()}


@settings(max_examples=300, deadline=None)
@given(SIGHTINGS, st.randoms(use_true_random=False))
def test_merging_is_idempotent_and_order_free(sightings, rnd):
    """At-least-once delivery in any order (a replay after kill -9 re-delivers a suffix) gives
    the same table: the earliest sighting per (key, account, hour)."""
    once = snapshot(table_of(sightings))
    again = list(sightings) + sightings[rnd.randrange(len(sightings) + 1):]  # a suffix, twice
    rnd.shuffle(again)
    assert snapshot(table_of(again)) == once == brute(sightings)


@settings(max_examples=300, deadline=None)
@given(SIGHTINGS, st.sampled_from(ACCOUNTS), st.integers(0, 11 * 86400),
       st.sampled_from([0.0, 60.0, 3600.0]))
def test_counts_equal_brute_force(sightings, own, offset, delay):
    t = T0 + offset
    ref = ReferenceData.of(labels=[
        Label("m", datetime.fromtimestamp(T0 + 2 * DAY, UTC), "B", "mule"),
        Label("w", datetime.fromtimestamp(T0 + 3 * DAY, UTC) + timedelta(hours=1), "B",
              "legit")])
    links = table_of(sightings)
    links.delay_s = delay
    table = brute(sightings)
    for key in KEYS:
        device = key[2:] if key.startswith(DEVICE) else None
        ip = key[2:] if key.startswith(IP) else None
        got = links.features(device, ip, own, t, True, 1.0, ref)
        accounts = table.get(key, {})

        def n(w: float, accounts: dict[str, list[float]] = accounts) -> set[str]:
            return {a for a, ts in accounts.items()
                    if a != own and any(t - w < s <= t - delay for s in ts)}
        week = n(7 * DAY)
        flagged = sum(1 for a in week if ref.is_flagged(a, t))
        if device is not None:
            assert got[:2] == (len(n(DAY)), len(week)) and got[4] == flagged
            assert got[6] == len(week) and got[7] == float(len(week) > 0)
            assert all(math.isnan(x) for x in (got[2], got[3], got[5]))
        else:
            assert got[2:4] == (len(n(DAY)), len(week)) and got[5] == flagged
            assert all(math.isnan(x) for x in (got[0], got[1], got[4], got[6], got[7]))


PAYEES = [PAYEE + "3:VCB111", PAYEE + "3:VCB222"]
PAYERS = list("ABCDEFGHIJ")  # more than PAYEE_CAP + 1, so that days fill up
# T0 is 02:00 UTC: 79,200 s after it a clock day starts
PAYEE_SIGHTINGS = st.lists(st.builds(
    Sighting, st.sampled_from(PAYEES + [DEVICE + "phone-1"]), st.sampled_from(PAYERS),
    st.one_of(
        st.one_of(st.integers(0, 100 * 86400), st.integers(0, 9 * 86400), st.integers(0, 7200),
                  st.sampled_from([3599, 3600, 3601, 7200, 79199, 79200, 79201])
                  ).map(lambda s: T0 + s + 0.25),
        # exactly midnight UTC (a window's first instant)
        st.integers(-1, 101).map(lambda d: T0 - 7200 + d * 86400))),
    max_size=80)


def brute_payees(sightings: list[Sighting]) -> dict[str, dict[str, list[float]]]:
    """brute() with, per payee key, the accounts' earliest sighting of each clock *day*, and
    per day only the PAYEE_CAP + 1 smallest (time, account) pairs of them."""
    table = brute(sightings)
    for key in list(table):
        if not key.startswith(PAYEE):
            continue
        by_day: dict[int, list[tuple[float, str]]] = {}
        for s in sightings:
            if s.key == key:
                by_day.setdefault(int(s.t // DAY), []).append((s.t, s.account_id))
        kept: dict[str, list[float]] = {}
        for day in by_day.values():
            earliest: dict[str, float] = {}
            for x, a in day:
                earliest[a] = min(earliest.get(a, x), x)
            pairs = [(x, a) for a, x in earliest.items()]
            for x, a in sorted(pairs)[:PAYEE_CAP + 1]:
                kept.setdefault(a, []).append(x)
        table[key] = {a: sorted(ts) for a, ts in kept.items()}
    return table


@settings(max_examples=300, deadline=None)
@given(PAYEE_SIGHTINGS, st.randoms(use_true_random=False), st.sampled_from([0, 3, 48]))
def test_payee_keys_keep_the_earliest_accounts_per_day_in_any_order(sightings, rnd, scan_at):
    """The cap is a selection (the smallest pairs of each clock day): merging twice or in any
    order gives the same table, and a record put back (a restore) answers the same -- with the
    day index (keys above ``scan_at`` accounts) or without it, and across the switch."""
    with mock.patch.object(devices, "PAYEE_SCAN_AT", scan_at):
        _check_order_free(sightings, rnd)


def _check_order_free(sightings: list[Sighting], rnd: Any) -> None:
    once = snapshot(table_of(sightings))
    again = list(sightings) + sightings[rnd.randrange(len(sightings) + 1):]
    rnd.shuffle(again)
    assert snapshot(table_of(again)) == once == brute_payees(sightings)
    restored = DeviceLinks()
    for key in once:
        got = decode_links(key.encode(), encode_links(key, table_of(sightings).get(key) or {}))
        assert isinstance(got, LinksRecord) and got.accounts is not None
        restored.put(key, got.accounts)
    for s in sightings:  # merging after a restore changes nothing
        assert not restored.observe(s.key, s.account_id, s.t)
    assert snapshot(restored) == once


@settings(max_examples=300, deadline=None)
@given(PAYEE_SIGHTINGS, st.sampled_from(PAYERS),
       st.one_of(st.integers(0, 10 * 86400), st.integers(0, 101 * 86400),
                 st.integers(86 * 86400, 94 * 86400),
                 # exactly 7 or 90 days after a midnight, and a second either side
                 st.tuples(st.integers(0, 12), st.sampled_from([7, 90]), st.integers(-1, 1))
                 .map(lambda x: -7200 + (x[0] + x[1]) * 86400 + x[2])),
       st.sampled_from([0.0, 60.0, 3600.0]), st.booleans(), st.sampled_from([0, 48]))
def test_other_payers_equal_brute_force(sightings, own, offset, delay, via_put, scan_at):
    """cp_other_payers_{7d,90d} = min(PAYEE_CAP, accounts other than the payer with a payee
    sighting of the beneficiary from the start of the clock day of t - 7 d (90 d) to
    t - delay), on every sighting (not only the kept ones); a device sighting never counts as
    a payer."""
    t = T0 + offset
    with mock.patch.object(devices, "PAYEE_SCAN_AT", scan_at):  # 0: every key day by day
        _check_other_payers(sightings, own, t, delay, via_put)


def _check_other_payers(sightings: list[Sighting], own: str, t: float, delay: float,
                        via_put: bool) -> None:
    links = table_of(sightings)
    if via_put:  # the scorer's way: whole records from device.links
        built, links = links, DeviceLinks()
        for key in built.keys():
            links.put(key, built.get(key) or {})
    links.delay_s = delay
    for key in PAYEES:
        got = links.features(None, None, own, t, False, 0.0, ReferenceData(), key)[8:10]
        want = []
        for days in (7, 90):
            lo = (t - days * DAY) // DAY * DAY
            want.append(float(min(PAYEE_CAP, len({
                s.account_id for s in sightings
                if s.key == key and s.account_id != own and lo <= s.t <= t - delay}))))
        assert got == tuple(want)
    none = links.features(None, None, own, t, False, 0.0, ReferenceData())
    assert len(none) == 10 and math.isnan(none[8]) and math.isnan(none[9])


def test_a_busy_payee_is_answered_day_by_day_and_saturates():
    links = DeviceLinks(0.0)
    bill = PAYEE + "0:BILL"
    for i in range(200):  # 200 payers, one every 4 hours: 6 a day, 33 days
        links.observe(bill, f"acc{i}", T0 + 4 * 3600 * i)
    kept = links.get(bill) or {}
    assert len(kept) == 200 and max(map(len, kept.values())) == 1  # 6 a day: all kept
    burst_t = T0 + 60 * DAY
    for i in range(60):  # a burst of 60 in one day: only the 6 earliest are kept
        links.observe(bill, f"burst{i}", burst_t + i)
    kept = links.get(bill) or {}
    assert sum(a.startswith("burst") for a in kept) == PAYEE_CAP + 1

    def payers(own: str, t: float) -> tuple[float, ...]:
        return links.features(None, None, own, t, False, 0.0, ReferenceData(), bill)[8:10]

    assert payers("acc3", T0 + 4 * 3600 * 5) == (PAYEE_CAP, PAYEE_CAP)
    assert payers("acc0", T0 + 4 * 3600) == (1.0, 1.0)
    last = T0 + 4 * 3600 * 199
    # 9 days after the last of the 200 (before the burst): nobody in 7 days, 5+ in 90
    assert payers("x", last + 9 * DAY) == (0.0, PAYEE_CAP)
    assert payers("x", burst_t + 3600) == (PAYEE_CAP, PAYEE_CAP)
    # 90 days after the burst's day ended: nobody left in either window
    assert payers("x", burst_t + 92 * DAY) == (0.0, 0.0)


def test_other_payers_in_90_days_span_whole_clock_days():
    """One other payer, then the windows' edges: the 7-day window ends 7 days after the start
    of the payer's clock day, the 90-day one 90 days after it."""
    links = DeviceLinks(60.0)
    key = PAYEE + "3:ACB999"
    day_start = T0 - 2 * 3600  # midnight UTC
    links.observe(key, "P", day_start)  # at the very first instant of its clock day

    def payers(t: float) -> tuple[float, ...]:
        return links.features(None, None, "x", t, False, 0.0, ReferenceData(), key)[8:10]

    assert payers(day_start + 59) == (0.0, 0.0)  # not visible yet
    assert payers(day_start + 60) == (1.0, 1.0)
    assert payers(day_start + 8 * DAY - 1) == (1.0, 1.0)
    assert payers(day_start + 8 * DAY) == (0.0, 1.0)
    assert payers(day_start + 91 * DAY - 1) == (0.0, 1.0)
    assert payers(day_start + 91 * DAY) == (0.0, 0.0)
    assert links.features(None, None, "P", T0 + DAY, False, 0.0, ReferenceData(),
                          key)[8:10] == (0.0, 0.0)  # the payer's own sighting never counts


@settings(max_examples=300, deadline=None)
@given(PAYEE_SIGHTINGS, st.integers(0, len(PAYERS)),
       st.tuples(st.integers(0, 79), st.sampled_from([8 * 86400, 91 * 86400]),
                 st.floats(-3600, 3600)),
       st.randoms(use_true_random=False))
def test_pruning_never_changes_what_later_merges_keep(sightings, cut, at, rnd):
    """The processor prunes (prune_before) before it publishes, and merges re-delivered
    sightings after a prune (a restart): merging, pruning, merging the rest and pruning again
    gives the state of merging everything then pruning -- a payee day is pruned whole, so a
    day's kept selection never loses part of its pairs to a prune."""
    # the processor's event time: a retention after one of the sightings, so that a prune
    # falls among them
    mark = (sightings[at[0] % len(sightings)].t if sightings else T0) + at[1] + at[2]
    cut = min(cut, len(sightings))
    order = list(sightings)
    rnd.shuffle(order)

    def pruned(links: DeviceLinks) -> DeviceLinks:
        for key in links.keys():
            links.prune(key, prune_before(key, mark))
        return links

    whole = snapshot(pruned(table_of(order)))
    links = pruned(table_of(order[:cut]))
    for s in order[cut:]:
        links.observe(s.key, s.account_id, s.t)
    assert snapshot(pruned(links)) == whole


def test_a_prune_inside_an_hour_or_a_day_changes_nothing_later_merges_keep():
    """The cases the property above is about, written out: an account's two sightings of one
    clock hour on a device, a payee day full (6 payers) before a seventh comes, and the
    processor's event time a retention after a moment between them."""
    day = T0 - 7200 + 3 * DAY  # a midnight
    cases = [
        ([Sighting(DEVICE + "phone-1", "A", T0 + 10), Sighting(DEVICE + "phone-1", "A", T0 + 1800)],
         T0 + 900 + 8 * DAY),
        ([Sighting(PAYEES[0], p, day + 3600 * (i + 1)) for i, p in enumerate("ABCDEFG")],
         day + 3600 * 6.5 + 91 * DAY),
    ]
    for sightings, mark in cases:
        whole = table_of(sightings)
        parts = table_of(sightings[:-1])
        for links in (whole, parts):
            for key in links.keys():
                links.prune(key, prune_before(key, mark))
        last = sightings[-1]
        parts.observe(last.key, last.account_id, last.t)
        for key in parts.keys():
            parts.prune(key, prune_before(key, mark))
        assert snapshot(parts) == snapshot(whole) != {}


def test_a_partition_a_day_behind_keeps_its_90_day_window():
    """A payment at the very end of its day whose partition's processor is already past the
    next midnight still sees a payer from the first minute of its 90-day window."""
    links = DeviceLinks(60.0)
    key = PAYEE + "3:ACB999"
    midnight = T0 - 7200
    links.observe(key, "P", midnight + 30)
    t = midnight + 90 * DAY + DAY - 10  # 23:59:50 of the window's last day
    before = links.features(None, None, "x", t, False, 0.0, ReferenceData(), key)[8:10]
    assert before == (0.0, 1.0)
    for ahead in (40, 3600, DAY - 1):  # the processor's event time past the next midnight
        links.prune(key, prune_before(key, midnight + 91 * DAY + ahead))
        assert links.features(None, None, "x", t, False, 0.0, ReferenceData(),
                              key)[8:10] == before
    links.prune(key, prune_before(key, midnight + 92 * DAY))  # two days behind: gone
    assert links.get(key) is None


def test_a_record_of_hourly_payee_sightings_answers_like_daily_ones():
    """A device.links record written before payee keys counted per day (several sightings of
    one account in one day) loses no other payer when put (the day index keeps each
    account's first sighting of the day, then the 6 earliest accounts)."""
    with mock.patch.object(devices, "PAYEE_SCAN_AT", 3):
        day = T0 - 7200 + 10 * DAY
        old: dict[str, list[float]] = {"A": [day, day + 3600, day + 7200, day + 10800]}
        old.update({p: [day + 3600 * (3 + i)] for i, p in enumerate("BCDEF")})
        old.update({f"o{i}": [day - 200 * DAY + i] for i in range(49)})  # out of the windows
        key = PAYEE + "3:VCB111"
        got = decode_links(key.encode(), json.dumps({"key": key, "accounts": old}).encode())
        assert isinstance(got, LinksRecord) and got.accounts is not None
        links = DeviceLinks(0.0)
        links.put(key, got.accounts)
        want = table_of([Sighting(key, a, x) for a, ts in old.items() for x in ts])
        t = day + 10 * 3600
        for links_ in (links, want):
            assert links_.features(None, None, "x", t, False, 0.0, ReferenceData(),
                                   key)[8:10] == (5.0, 5.0)
        assert sorted((links.get(key) or {})["A"]) == [day]


def _payment(**kw: object) -> Payment:
    base: dict[str, object] = dict(
        event_id="e1", ts=datetime.fromtimestamp(T0, UTC), account_id="A", direction="debit",
        amount=1e6, currency="VND", counterparty_account="111", counterparty_bank="VCB",
        channel="mobile", device_id="phone-1", ip="10.0.0.1")
    base.update(kw)
    return Payment(**base)  # type: ignore[arg-type]


def test_only_debit_transfers_make_a_payee_sighting_and_keys_are_unambiguous():
    keys = [s.key for s in sightings_of(_payment())]
    assert keys == [DEVICE + "phone-1", IP + "10.0.0.1", PAYEE + "3:VCB111"]
    for kw in ({"direction": "credit"}, {"channel": "pos"}, {"channel": "atm"},
               {"channel": "api"}):
        assert payee_key(_payment(**kw)) is None
        assert all(not s.key.startswith(PAYEE) for s in sightings_of(_payment(**kw)))
    assert payee_key(_payment(channel="branch", counterparty_bank="")) == PAYEE + "0:111"
    # bank "VC" + account "B111" is not bank "VCB" + account "111"
    assert payee_key(_payment(counterparty_bank="VC", counterparty_account="B111")) != \
        payee_key(_payment())
    got = decode_sighting(encode_sighting(Sighting(PAYEE + "3:VCB111", "A", T0)))
    assert got == Sighting(PAYEE + "3:VCB111", "A", T0)


def test_a_personal_account_is_never_a_shared_business():
    links = table_of([Sighting(DEVICE + "p", "B", T0)])
    got = links.features("p", None, "A", T0 + 3600, False, 5.0, ReferenceData())
    assert got[1] == 1.0 and got[6] == 0.0 and got[7] == 0.0


@settings(max_examples=200, deadline=None)
@given(SIGHTINGS)
def test_table_records_round_trip_exactly(sightings):
    links = table_of(sightings)
    for key in links.keys():
        accounts = links.get(key)
        assert accounts is not None
        got = decode_links(key.encode(), encode_links(key, accounts))
        assert isinstance(got, LinksRecord) and got.key == key
        assert {a: list(ts) for a, ts in (got.accounts or {}).items()} == {
            a: list(ts) for a, ts in accounts.items()}
    for s in sightings:
        assert decode_sighting(encode_sighting(s)) == s
        assert decode_sightings(encode_sighting(s)) == ([s], None)  # the first format
    assert decode_sightings(encode_sightings(sightings)) == (sightings, None)


def test_a_tombstone_deletes_the_key_and_a_mismatched_key_is_rejected():
    assert decode_links(b"d:x", None) == LinksRecord("d:x", None)
    bad = decode_links(b"d:x", encode_links("d:y", {}))
    assert isinstance(bad, Rejection) and bad.field == "key"
    bad = decode_links(None, encode_links("d:y", {}))
    assert isinstance(bad, Rejection) and "no key" in bad.reason
    bad = decode_links(b"d:x", b'{"key":"d:x","accounts":{"A":[2.0,1.0]}}')
    assert isinstance(bad, Rejection) and "increasing" in bad.reason


def test_pruning_drops_old_sightings_and_empty_keys():
    links = table_of([Sighting(DEVICE + "p", "A", T0), Sighting(DEVICE + "p", "A", T0 + DAY),
                      Sighting(DEVICE + "p", "B", T0)])
    assert links.prune(DEVICE + "p", T0)
    assert snapshot(links) == {DEVICE + "p": {"A": [T0 + DAY]}}
    assert links.prune(DEVICE + "p", T0 + DAY) and len(links) == 0


# ------------------------------------------------------------------ hostile records
SIGHTING = {"key": "d:phone-1", "account_id": "A", "t": T0 + 0.5,
            "ts": "2026-03-01T02:00:00.500000Z"}
LINKS = {"key": "d:phone-1", "accounts": {"A": [T0, T0 + 7200.5], "B": [T0 + 1]}}


def _sighting_never_raises(raw: bytes | None) -> None:
    got = decode_sighting(raw)
    if isinstance(got, Rejection):
        assert got.reason and isinstance(got.field, str) and got.kind == "device.sightings"
    else:
        assert isinstance(got, Sighting) and math.isfinite(got.t)
        encode_sighting(got)


def _links_never_raise(key: bytes | None, raw: bytes | None) -> None:
    got = decode_links(key, raw)
    if isinstance(got, Rejection):
        assert got.reason and isinstance(got.field, str) and got.kind == "device.links"
    else:
        assert isinstance(got, LinksRecord)
        if got.accounts is not None:
            links = DeviceLinks()
            links.put(got.key, got.accounts)
            links.features("x", "1.2.3.4", "Z", T0, True, 1.0, ReferenceData())
            encode_links(got.key, got.accounts)


BYTES = st.one_of(st.binary(max_size=2000), st.none(),
                  st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))


@settings(max_examples=300, deadline=None)
@given(BYTES)
def test_arbitrary_bytes_never_raise_in_the_sighting_decoder(raw):
    _sighting_never_raises(raw)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.binary(max_size=40), st.just(b"d:phone-1")), BYTES)
def test_arbitrary_bytes_never_raise_in_the_table_decoder(key, raw):
    _links_never_raise(key, raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_sightings_never_raise(data):
    _sighting_never_raises(data.draw(mutated_events(SIGHTING)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_table_records_never_raise(data):
    _links_never_raise(b"d:phone-1", data.draw(mutated_events(LINKS)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "", " "]), HOSTILE_VALUES), max_size=4))
def test_hostile_account_times_never_raise(pairs):
    body = "{" + ",".join(f"{json.dumps(a)}:[{v}]" for a, v in pairs) + "}"
    _links_never_raise(b"d:phone-1", f'{{"key":"d:phone-1","accounts":{body}}}'.encode(
        "utf-8", "surrogatepass"))


def test_the_valid_examples_are_accepted():
    assert isinstance(decode_sighting(json.dumps(SIGHTING).encode()), Sighting)
    assert isinstance(decode_links(b"d:phone-1", json.dumps(LINKS).encode()), LinksRecord)


# ------------------------------------------------------------------ batch records
BATCH = {"sightings": [["d:phone-1", "A", T0 + 0.5], ["i:10.0.0.1", "B", T0 + 1]]}


def _batch_never_raises(raw: bytes | None) -> None:
    good, bad = decode_sightings(raw)
    assert isinstance(good, list) and all(isinstance(s, Sighting) for s in good)
    assert all(math.isfinite(s.t) for s in good)
    if bad is not None:
        assert bad.reason and isinstance(bad.field, str) and bad.kind == "device.sightings"
    else:
        assert good or raw is not None
    encode_sightings(good)


@settings(max_examples=300, deadline=None)
@given(BYTES)
def test_arbitrary_bytes_never_raise_in_the_batch_decoder(raw):
    _batch_never_raises(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_batches_never_raise(data):
    _batch_never_raises(data.draw(mutated_events(BATCH)))


@settings(max_examples=200, deadline=None)
@given(st.lists(HOSTILE_VALUES, min_size=1, max_size=4))
def test_hostile_batch_elements_lose_only_themselves(values):
    """Each hostile time rides beside a good sighting: the good ones are kept, the record is
    rejected with a count of the bad."""
    elements = ",".join(f'["d:p","A{i}",{v}],["d:p","G{i}",{T0}]' for i, v in enumerate(values))
    good, bad = decode_sightings(f'{{"sightings":[{elements}]}}'.encode("utf-8",
                                                                        "surrogatepass"))
    if (not good and bad is not None and bad.field == ""
            and not bad.reason.startswith("unexpected")):
        return  # not JSON the parser takes (past its digit or nesting limit): the whole record
    assert {s.account_id for s in good} >= {f"G{i}" for i in range(len(values))}
    if len(good) < 2 * len(values):
        assert bad is not None and "sightings rejected" in bad.reason
    else:
        assert bad is None


def test_an_integer_beyond_a_float_loses_only_its_own_sighting():
    """A time written as a 400-digit integer is a bad element (it raised OverflowError inside
    the element's check and lost the whole batch)."""
    raw = b'{"sightings":[["d:p","G0",' + str(T0).encode() + b'],["d:p","A0",' + b"9" * 400 + b"]]}"
    good, bad = decode_sightings(raw)
    assert good == [Sighting("d:p", "G0", T0)]
    assert bad is not None and bad.reason.startswith("1 of 2 sightings rejected; element 1 (t)")
    one = decode_sighting(b'{"key":"d:p","account_id":"A","t":' + b"9" * 400 + b"}")
    assert isinstance(one, Rejection) and one.field == "t"


def test_values_that_are_not_bytes_are_rejections_not_errors():
    """Every device decoder answers a value (or key) that is not bytes with a Rejection, in
    the compiled build and the pure one alike (the handler that reports a rejection once raised
    on a str)."""
    for value in ("abc", 5, -1, 1.5, [1], object()):
        one = decode_sighting(value)
        assert isinstance(one, Rejection) and "not bytes" in one.reason and one.raw == b""
        good, bad = decode_sightings(value)
        assert good == [] and bad is not None and "not bytes" in bad.reason
        links = decode_links(b"d:p", value)
        assert isinstance(links, Rejection) and "not bytes" in links.reason
        keyed = decode_links(value, b"{}")
        assert isinstance(keyed, Rejection) and keyed.field == "key"
    raw = json.dumps({"key": "d:p", "account_id": "A", "t": T0}).encode()
    assert decode_sighting(bytearray(raw)) == decode_sighting(memoryview(raw)) == Sighting(
        "d:p", "A", T0)


def test_a_batch_keeps_its_good_sightings_and_names_the_bad():
    raw = json.dumps({"sightings": [["d:p", "A", T0], ["x:p", "A", T0], ["d:p", "B", "noon"],
                                    "junk"]}).encode()
    good, bad = decode_sightings(raw)
    assert good == [Sighting("d:p", "A", T0)]
    assert bad is not None and bad.reason.startswith("3 of 4 sightings rejected; element 1 (key)")
    assert decode_sightings(b'{"sightings":[],"x":1}')[1] is not None
    assert decode_sightings(b'{"sightings":{}}')[1] is not None
    assert decode_sightings(json.dumps(BATCH).encode()) == (
        [Sighting("d:phone-1", "A", T0 + 0.5), Sighting("i:10.0.0.1", "B", T0 + 1)], None)


# ------------------------------------------------------------------ the fast parser
def _typed(x: Any) -> Any:
    """A parse with each value's type kept (1 == 1.0 in Python; an int and a float are two
    different records here: a rejection quotes the value)."""
    if isinstance(x, dict):
        return ("dict", [(k, _typed(v)) for k, v in x.items()])
    if isinstance(x, list):
        return ("list", [_typed(v) for v in x])
    if isinstance(x, float) and math.isnan(x):
        return ("float", "nan")
    return (type(x).__name__, x)


def _same_as_strict(raw: bytes) -> None:
    """orjson's fast path is kept only where it equals the stdlib parser with duplicate keys
    and NaN refused: the same object with the same types (where it declines, ``_object`` is
    the strict parser itself)."""
    fast = devices._fast_object(raw)
    if fast is None:
        return
    try:
        strict = devices._strict_object(raw)
    except devices._Bad as exc:
        raise AssertionError(f"fast path took what the strict one refuses ({exc.reason}): "
                             f"{raw!r}") from None
    assert _typed(fast) == _typed(strict), raw
    assert _typed(devices._object(raw, 1 << 22)) == _typed(fast)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=4),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(BYTES)
def test_the_fast_parser_equals_the_strict_one_on_arbitrary_bytes(raw):
    if raw is not None:
        _same_as_strict(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_fast_parser_equals_the_strict_one_on_mutated_records(data):
    base = data.draw(st.sampled_from([SIGHTING, LINKS, BATCH]))
    _same_as_strict(data.draw(mutated_events(base)))


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES, st.sampled_from(["compact", "spaced", "duplicated"]))
def test_the_fast_parser_equals_the_strict_one_on_any_json(value, style):
    """Arbitrary JSON, written compact, with spaces, and with an object's first key repeated
    (at any depth; the strict parser refuses it, so must the fast one)."""
    if style == "compact":
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    elif style == "spaced":
        text = json.dumps(value, ensure_ascii=False, indent=1)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        text = text.replace('{"', '{"dup":0,"dup":1,"', 1) if '{"' in text else text
    _same_as_strict(text.encode("utf-8", "surrogatepass"))
    _same_as_strict(("{" + '"v":' + text + "}").encode("utf-8", "surrogatepass"))


def test_the_fast_parser_takes_the_records_it_writes_and_refuses_duplicates():
    accounts = {"A": array("d", [T0, T0 + 7200.5]), "B": array("d", [T0 + 1])}
    for raw in (encode_links(DEVICE + "phone-1", accounts),
                encode_sightings([Sighting(PAYEE + "970436:VCB1", "A", T0)]),
                encode_sighting(Sighting(DEVICE + "p", "A", T0),
                                ts=datetime.fromtimestamp(T0, UTC))):
        assert devices._fast_object(raw) is not None, raw
        _same_as_strict(raw)
    for raw in (b'{"key":"d:p","accounts":{"A":[1.0],"A":[2.0]}}',
                b'{"key":"d:p","key":"d:q","accounts":{}}',
                b'{"sightings":[[{"a":1,"a":2}]]}',
                b'{"key":"d:p","accounts":{"A" :[1.0]}}',
                b'{"t":123456789012345678901234567890}'):
        assert devices._fast_object(raw) is None, raw
    assert decode_links(b"d:p", b'{"key":"d:p","accounts":{"A":[1.0],"A":[2.0]}}').reason == (
        "duplicate key in JSON object")
    # a space before a colon hides a key from the count: `{"a" :1,"a":2}` counts one `":` and
    # orjson keeps one key, so only the spacing rule sends it the strict way (from a review)
    for raw in (b'{"a" :1,"a":2}', b'{"a"\t:1,"a":2}', b'{"a"\n:1,"a":2}'):
        assert devices._fast_object(raw) is None, raw
        assert decode_sighting(raw).reason == "duplicate key in JSON object"
    # nesting the strict parser refuses (and a walk of it would overflow): the strict way
    deep = b'{"key":' + b"[" * 1000 + b"]" * 1000 + b"}"
    assert devices._fast_object(deep) is None
    assert decode_sighting(deep).reason == "JSON nested too deeply"
    assert devices._fast_object(b'{"key":' + b"[" * 32 + b"]" * 32 + b"}") is not None
    assert devices._fast_object(b'{"key":' + b"[" * 33 + b"]" * 33 + b"}") is None


def test_a_key_shared_by_thousands_is_trimmed_to_the_accounts_seen_most_recently():
    """An IP behind a carrier's NAT: its table record keeps the newest accounts that fit, the
    same ones whatever the order they were merged in, and the readers accept it."""
    from streaming.devices import most_recent_accounts

    links = DeviceLinks()
    n = 20_000
    for i in range(n):
        for h in range(i % 5 + 1):
            links.observe(IP + "203.0.113.9", f"{i:012d}", T0 + i * 7.0 + h * 3600.0)
    accounts = links.get(IP + "203.0.113.9")
    assert accounts is not None and len(encode_links(IP + "203.0.113.9", accounts)) > 1 << 20
    kept = most_recent_accounts(accounts, 1 << 20)
    raw = encode_links(IP + "203.0.113.9", kept)
    assert len(raw) <= 1 << 20 and 1_000 < len(kept) < n
    latest = {a: ts[-1] for a, ts in accounts.items()}
    cut = min(latest[a] for a in kept)
    assert all(latest[a] <= cut for a in accounts if a not in kept)  # the newest were kept
    assert most_recent_accounts(dict(reversed(list(accounts.items()))), 1 << 20) == kept
    got = decode_links((IP + "203.0.113.9").encode(), raw)
    assert isinstance(got, LinksRecord) and set(got.accounts or {}) == set(kept)
