"""Oracle tests: every streaming feature equals a brute-force recomputation from the raw events.

The oracle knows nothing of the engine's windows, pointers or rebuilds: for each accepted payment
``p`` it takes ``K`` = the accepted events of ``p``'s account that arrived before ``p`` with
``ts <= p.ts``, plus ``p``, ordered by (ts, arrival), and recomputes every feature from that list.
"""

from __future__ import annotations

import math
import statistics
import zlib
from datetime import UTC, datetime, timedelta
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import engine as engine_module
from features.engine import FeatureEngine
from features.events import Account, Label, Login, Payment, WatchEntry
from features.reference import ReferenceData
from features.replay import reference_for, replay_matrix
from features.vector import CHANNEL_CODES, DEVICE_NAMES, FEATURE_NAMES, FEATURE_VERSION
from tests.unit import reference_oracle as ro

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
DAY = 86400.0
LATENESS = 300.0
ACCOUNTS = {
    "A": Account("A", "c-A", "personal", T0 - timedelta(days=40), "VN", 2004),
    "B": Account("B", "c-B", "business", T0 - timedelta(days=3), "VN", None,
                 T0 - timedelta(days=9)),
}
CPS = ["X", "Y", "Z", "A", "B", "M1"]
COUNTRIES = ["VN", "KH", "SG"]
DEVICES = ["d1", "d2", "d3"]
IPS = ["10.0.0.1", "10.0.0.2"]
VISIBILITY = 60.0  # the default visibility delay of the device table
AMOUNTS = [50_000.0, 1_000_000.0, 2_500_000.0, 9_500_000.0, 10_000_000.0, 15_000_000.0,
           123_456.0]
LABELS = [
    Label("lb1", T0 + timedelta(hours=3), "M1", "mule"),
    # names no payment of the log, but says who received the money
    Label("lb2", T0 + timedelta(days=2), "Z", "fraud", event_id="e-x", counterparty_account="X"),
    Label("lb3", T0 + timedelta(days=9), "X", "fraud"),
    Label("lb4", T0 + timedelta(days=1), "Y", "legit"),
    # name payments the generator may have made (p<i>): their counterparty and amount are used
    *(Label(f"lbp{i}", T0 + timedelta(days=d), "A", "fraud", event_id=f"p{i}")
      for i, d in ((1, 0.5), (2, 3), (4, 1), (6, 20), (9, 2), (12, 8), (15, 40))),
    # changes of mind: X cleared on day 12, the fraud on p4 withdrawn on day 5
    Label("lb5", T0 + timedelta(days=12), "X", "legit"),
    Label("lb6", T0 + timedelta(days=5), "A", "legit", event_id="p4"),
    Label("lb7", T0 + timedelta(days=15), "M1", "legit"),
    Label("lb8", T0 + timedelta(days=16), "M1", "mule"),
]
WATCH = [
    WatchEntry("VCB", "Y", "SIMO", T0 + timedelta(days=4), "received scam money"),
    WatchEntry("CGB", "B", "police", T0 + timedelta(hours=6), "mule account",
               T0 + timedelta(days=10)),
    WatchEntry("CGB", "Z", "SIMO", T0 + timedelta(days=30), "fraud"),
]

# time steps: seconds, minutes, hours, days, and steps back in time (out of order)
STEP = st.one_of(
    st.integers(0, 90),
    st.integers(60, 3600),
    st.integers(3600, 2 * 86400),
    st.integers(5 * 86400, 12 * 86400),
    st.integers(-400, -1),
    # exactly a window edge apart, and one second either side: the boundaries are exact
    st.sampled_from([600, 3600, 7200, 86400, 7 * 86400, 30 * 86400, 90 * 86400]).flatmap(
        lambda w: st.sampled_from([w - 1, w, w + 1])),
)


@st.composite
def event_lists(draw: st.DrawFn) -> list[Payment | Login]:
    n = draw(st.integers(1, 45))
    clock = 0
    events: list[Payment | Login] = []
    for i in range(n):
        clock = max(0, clock + draw(STEP))
        ts = T0 + timedelta(seconds=clock)
        account = draw(st.sampled_from(["A", "B", "C"]))
        if events and draw(st.integers(0, 9)) == 0:  # an exact duplicate of an earlier event
            events.append(draw(st.sampled_from(events)))
            continue
        if draw(st.booleans()):
            events.append(Payment(
                event_id=f"p{i}", ts=ts, account_id=account,
                direction=draw(st.sampled_from(["debit", "credit"])),
                amount=draw(st.sampled_from(AMOUNTS)),
                currency=draw(st.sampled_from(["VND", "VND", "VND", "USD"])),
                counterparty_account=draw(st.sampled_from(CPS)),
                counterparty_bank=draw(st.sampled_from(["CGB", "CGB", "VCB"])),
                channel=draw(st.sampled_from(sorted(CHANNEL_CODES))),
                country=draw(st.sampled_from([None, *COUNTRIES])),
                device_id=draw(st.sampled_from([None, *DEVICES])),
                ip=draw(st.sampled_from([None, *IPS])),
                on_call=draw(st.sampled_from([None, False, True])),
                remote_access=draw(st.sampled_from([None, False, True])),
            ))
        else:
            events.append(Login(
                event_id=f"l{i}", ts=ts, account_id=account, success=draw(st.booleans()),
                ip=draw(st.sampled_from(IPS)), country=draw(st.sampled_from(COUNTRIES)),
                device_id=draw(st.sampled_from(DEVICES)), channel="mobile",
            ))
    return events


def reference(events: list[Payment | Login]) -> ReferenceData:
    return reference_for(ACCOUNTS.values(), LABELS, payments_of(events), WATCH,
                         logins=[e for e in events if isinstance(e, Login)])


def payments_of(events: list[Payment | Login]) -> list[Payment]:
    return [e for e in events if isinstance(e, Payment)]


# ----------------------------------------------------------------------------- the oracle


def oracle(events: list[Payment | Login]) -> list[tuple[str, dict[str, float]]]:
    """(event_id, features) for every accepted payment, from first principles."""
    recs = ro.records(LABELS, {p.event_id: p for p in payments_of(events)})
    accepted: dict[str, list[tuple[int, Payment | Login]]] = {}
    out = []
    for seq, ev in enumerate(events):
        hist = accepted.setdefault(ev.account_id, [])
        if any(e.event_id == ev.event_id for _, e in hist):
            continue
        max_t = max((e.t for _, e in hist), default=-math.inf)
        if ev.t < max_t - LATENESS:
            continue
        hist.append((seq, ev))
        if isinstance(ev, Payment):
            known = sorted(((e.t, s, e) for s, e in hist if e.t <= ev.t), key=lambda x: x[:2])
            f = features_of(ev, [(t, s, e) for t, s, e in known], recs)
            f.update(device_features(ev, known, events, recs, f["foreign_logins_7d"]))
            out.append((ev.event_id, f))
    return out


def device_features(p: Payment, known: list[tuple[float, int, Payment | Login]],
                    events: list[Payment | Login], recs: list[ro.Rec], foreign_7d: float
                    ) -> dict[str, float]:
    """The shared device / IP columns from first principles (features.devices' docstring): the
    earliest sighting of each (key, account) per clock hour, visible ``VISIBILITY`` s later."""
    t = p.t
    device = p.device_id
    if device is None:
        logins = [(tt, s, e) for tt, s, e in known if isinstance(e, Login)]
        if logins and max(logins, key=lambda x: x[:2])[0] > t - DAY:
            device = max(logins, key=lambda x: x[:2])[2].device_id

    def linked(value: str | None, field: str) -> tuple[float, float, float]:
        if value is None:
            return (math.nan, math.nan, math.nan)
        first: dict[tuple[str, int], float] = {}  # (account, hour) -> earliest use
        for e in events:
            if getattr(e, field) == value and e.account_id != p.account_id:
                k = (e.account_id, int(e.t // 3600))
                first[k] = min(first.get(k, math.inf), e.t)
        def accounts(w: float) -> set[str]:
            return {a for (a, _), s in first.items() if t - w < s <= t - VISIBILITY}
        seven = accounts(7 * DAY)
        return (len(accounts(DAY)), len(seven),
                sum(1 for a in seven if ro.flagged(a, t, LABELS, recs, WATCH)))

    d = linked(device, "device_id")
    i = linked(p.ip, "ip")
    business = bool(ACCOUNTS.get(p.account_id) and ACCOUNTS[p.account_id].type == "business")
    if math.isnan(d[1]):
        shared = foreign = math.nan
    elif business:
        shared, foreign = d[1], float(d[1] > 0 and foreign_7d > 0)
    else:
        shared = foreign = 0.0
    if p.direction == "debit" and p.channel in ("mobile", "internet", "branch"):
        # other accounts whose debit transfer to the same bank and account is visible from the
        # start of the clock day of t - 7 d (90 d)
        def payers_in(days: int) -> float:
            return float(min(5, len({
                e.account_id for e in events
                if isinstance(e, Payment) and e.account_id != p.account_id
                and e.direction == "debit" and e.channel in ("mobile", "internet", "branch")
                and e.counterparty_account == p.counterparty_account
                and (e.counterparty_bank or "") == (p.counterparty_bank or "")
                and (t - days * DAY) // DAY * DAY <= _day_first(e, events) <= t - VISIBILITY})))
        payers, payers90 = payers_in(7), payers_in(90)
    else:
        payers = payers90 = math.nan
    return {"device_accounts_24h": d[0], "device_accounts_7d": d[1], "ip_accounts_24h": i[0],
            "ip_accounts_7d": i[1], "device_flagged_accounts_7d": d[2],
            "ip_flagged_accounts_7d": i[2], "business_shared_device_7d": shared,
            "business_shared_device_foreign_7d": foreign, "cp_other_payers_7d": payers,
            "cp_other_payers_90d": payers90}


def _day_first(e: Payment, events: list[Payment | Login]) -> float:
    """The earliest transfer of ``e``'s account to ``e``'s payee in ``e``'s clock day (one
    payee sighting per account and day is kept)."""
    return min(o.t for o in events
               if isinstance(o, Payment) and o.account_id == e.account_id
               and o.direction == "debit" and o.channel in ("mobile", "internet", "branch")
               and o.counterparty_account == e.counterparty_account
               and (o.counterparty_bank or "") == (e.counterparty_bank or "")
               and int(o.t // DAY) == int(e.t // DAY))


def features_of(p: Payment, known: list[tuple[float, int, Payment | Login]],
                recs: list[ro.Rec]) -> dict[str, float]:
    t = p.t
    info = ACCOUNTS.get(p.account_id)
    kyc = info.kyc_country if info else "VN"
    pays = [(tt, s, e) for tt, s, e in known if isinstance(e, Payment)]
    logins = [(tt, s, e) for tt, s, e in known if isinstance(e, Login)]
    me = next(i for i, (_, _, e) in enumerate(pays) if e is p)
    before = pays[:me] + pays[me + 1:]  # everything known except p itself

    def window(w: float) -> list[Payment]:
        return [e for tt, _, e in pays if t - w < tt <= t]

    f: dict[str, float] = {}
    for label, w in (("10m", 600), ("1h", 3600), ("24h", DAY), ("7d", 7 * DAY)):
        win = window(w)
        for d in ("debit", "credit"):
            sel = [e.amount for e in win if e.direction == d]
            f[f"{d}_count_{label}"] = len(sel)
            f[f"{d}_sum_{label}"] = sum(sel)
    f["distinct_cp_out_24h"] = len({e.counterparty_account for e in window(DAY)
                                    if e.direction == "debit"})
    f["distinct_cp_out_7d"] = len({e.counterparty_account for e in window(7 * DAY)
                                   if e.direction == "debit"})
    f["amount"] = p.amount
    f["is_debit"] = float(p.direction == "debit")
    hist = [e.amount for tt, _, e in before if e.direction == p.direction and tt > t - 30 * DAY]
    if hist:
        f["amount_ratio_median_30d"] = p.amount / statistics.median(hist)
        logs = [math.log10(a) for a in hist]
        mean = sum(logs) / len(logs)
        var = sum(x * x for x in logs) / len(logs) - mean * mean
        std = math.sqrt(var) if var > 1e-12 else 0.0
        f["amount_zscore_30d"] = (math.log10(p.amount) - mean) / std if std > 0 else 0.0
    else:
        f["amount_ratio_median_30d"] = f["amount_zscore_30d"] = math.nan
    prev = [tt for tt, _, _ in before if tt > t - 30 * DAY]
    f["secs_since_prev_payment"] = t - max(prev) if prev else math.nan
    f["first_payment_to_cp"] = float(not any(
        e.counterparty_account == p.counterparty_account and tt > t - 30 * DAY
        for tt, _, e in before))
    hour = (T0.replace(tzinfo=UTC) + timedelta(seconds=t - T0.timestamp())
            ).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh")).hour
    f["local_hour"] = hour
    f["is_night"] = float(hour >= 23 or hour < 5)
    unit = 1e6 if p.currency == "VND" else 100.0
    f["round_amount"] = float(p.amount >= unit and p.amount % unit == 0)
    f["channel_code"] = CHANNEL_CODES[p.channel]
    # mule
    f["distinct_senders_24h"] = len({e.counterparty_account for e in window(DAY)
                                     if e.direction == "credit"})
    f["distinct_senders_7d"] = len({e.counterparty_account for e in window(7 * DAY)
                                    if e.direction == "credit"})
    f["pass_through_24h"] = (f["debit_sum_24h"] / f["credit_sum_24h"]
                             if f["credit_sum_24h"] > 0 else math.nan)

    def dwell(i: int) -> float:
        ti = pays[i][0]
        credits = [tt for tt, _, e in pays[:i] if e.direction == "credit" and tt > ti - 30 * DAY]
        return ti - max(credits) if credits else math.nan

    f["dwell_secs"] = dwell(me) if p.direction == "debit" else math.nan
    dwells = [dwell(i) for i, (tt, _, e) in enumerate(pays)
              if e.direction == "debit" and tt > t - 7 * DAY]
    dwells = [d for d in dwells if not math.isnan(d)]
    f["mean_dwell_secs_7d"] = sum(dwells) / len(dwells) if dwells else math.nan
    credits7 = [(i, e) for i, (tt, _, e) in enumerate(pays)
                if e.direction == "credit" and tt > t - 7 * DAY]
    new = sum(1 for i, e in credits7 if not any(
        e2.direction == "credit" and e2.counterparty_account == e.counterparty_account
        and tt2 > pays[i][0] - 30 * DAY for tt2, _, e2 in pays[:i]))
    f["first_time_sender_share_7d"] = new / len(credits7) if credits7 else math.nan
    # counterparty risk and the account's own confirmed-fraud history
    cp = p.counterparty_account

    def flagged(account: str) -> bool:
        return ro.flagged(account, t, LABELS, recs, WATCH)

    f["cp_flagged"] = float(flagged(cp))
    f.update(zip(_history_names("cp_", False), ro.history(cp, t, LABELS, recs), strict=True))
    f["cp_days_since_fraud_received"] = ro.days_since_received(cp, t, LABELS, recs)
    f["cp_days_since_listed"] = ro.watch_days(cp, t, WATCH)
    f["cp_watchlisted"] = float(not math.isnan(f["cp_days_since_listed"]))
    win7 = window(7 * DAY)
    f["credits_from_flagged_7d"] = sum(1 for e in win7 if e.direction == "credit"
                                       and flagged(e.counterparty_account))
    f["debits_to_flagged_7d"] = sum(1 for e in win7 if e.direction == "debit"
                                    and flagged(e.counterparty_account))
    me_id = p.account_id
    f["account_flagged"] = float(flagged(me_id))
    own = ro.history(me_id, t, LABELS, recs)
    for k, (side, w, wname) in enumerate(
            (s, w, n) for s in ("credit", "debit") for w, n in ((DAY, "1d"), (7 * DAY, "7d"),
                                                               (30 * DAY, "30d"))):
        word = "received" if side == "credit" else "sent"
        n_fraud, total = own[2 * k], own[2 * k + 1]
        seen = len([e for e in window(w) if e.direction == side])
        f[f"fraud_{word}_count_{wname}"] = n_fraud
        f[f"fraud_{word}_sum_{wname}"] = total
        f[f"fraud_{word}_share_{wname}"] = n_fraud / max(n_fraud, seen) if n_fraud else 0.0
    f["days_since_fraud_received"] = ro.days_since_received(me_id, t, LABELS, recs)
    f["account_days_since_listed"] = ro.watch_days(me_id, t, WATCH)
    f["account_watchlisted"] = float(not math.isnan(f["account_days_since_listed"]))
    # logins
    l24 = [e for tt, _, e in logins if tt > t - DAY]
    l7 = [e for tt, _, e in logins if tt > t - 7 * DAY]
    f["foreign_logins_24h"] = sum(1 for e in l24 if e.country != kyc)
    f["foreign_logins_7d"] = sum(1 for e in l7 if e.country != kyc)
    f["distinct_login_countries_7d"] = len({e.country for e in l7})
    foreign = [tt for tt, _, e in logins if e.country != kyc and tt > t - 30 * DAY]
    f["mins_since_foreign_login"] = (t - max(foreign)) / 60 if foreign else math.nan
    f["session_foreign"] = math.nan if p.country is None else float(p.country != kyc)
    old = {e.device_id for tt, _, e in logins if t - 30 * DAY < tt <= t - DAY}
    f["new_device_24h"] = len({e.device_id for e in l24} - old)
    f["failed_logins_24h"] = sum(1 for e in l24 if not e.success)
    fast = 0
    for i, (tt, _, e) in enumerate(logins):
        if i and tt > t - 7 * DAY:
            pt, _, pe = logins[i - 1]
            fast += int(pe.country != e.country and tt - pt < 7200)
    f["fast_country_change_7d"] = fast
    is_business = bool(info and info.type == "business")
    f["business_x_foreign_7d"] = f["foreign_logins_7d"] if is_business else 0.0
    # account
    if info is None:
        f.update(account_unknown=1.0, is_business=math.nan, account_age_days=math.nan,
                 business_age_days=math.nan, customer_age_years=math.nan)
    else:
        f["account_unknown"] = 0.0
        f["is_business"] = float(is_business)
        f["account_age_days"] = (t - info.opened_at.timestamp()) / DAY
        f["business_age_days"] = ((t - info.registered_at.timestamp()) / DAY
                                  if is_business and info.registered_at else math.nan)
        f["customer_age_years"] = (p.ts.year - info.birth_year if info.birth_year
                                   else math.nan)
    # Vietnamese rules
    def local_day(tt: float) -> int:
        return int((tt + 7 * 3600) // DAY)

    def online(e: Payment) -> bool:
        return e.currency == "VND" and e.channel in ("mobile", "internet", "api")

    today = [e.amount for tt, _, e in pays if local_day(tt) == local_day(t)
             and e.direction == "debit" and online(e)]
    mine = p.direction == "debit" and online(p)
    day_sum = sum(today)
    f["online_debit_sum_today"] = day_sum
    f["online_debit_count_today"] = len(today)
    f["over_10m_online"] = float(mine and p.amount > 10e6)
    f["just_under_10m"] = float(mine and 9e6 <= p.amount <= 10e6)
    f["near_10m_debits_today"] = sum(1 for a in today if 9e6 <= a <= 10e6)
    f["online_debit_today_vs_20m"] = day_sum / 20e6
    f["just_under_20m_today"] = float(mine and 18e6 <= day_sum <= 20e6)
    f["debit_from_new_device"] = (math.nan if p.device_id is None else
                                  float(p.direction == "debit" and p.device_id not in old))
    seen_on = [tt for tt, _, e in logins if e.device_id == p.device_id and tt > t - 30 * DAY]
    f["device_age_days"] = (math.nan if p.device_id is None else
                            (t - min(seen_on)) / DAY if seen_on else 0.0)
    f["fan_in_cash_out_24h"] = float(
        p.direction == "debit" and f["distinct_senders_24h"] >= 3 and f["credit_sum_24h"] > 0
        and f["debit_sum_24h"] >= 0.8 * f["credit_sum_24h"])
    if info is None or info.birth_year is None:
        f["young_or_old_credit_7d"] = math.nan
    else:
        age = p.ts.year - info.birth_year
        f["young_or_old_credit_7d"] = f["credit_sum_7d"] if age < 23 or age >= 65 else 0.0
    if info is None:
        f["business_new_12m"] = math.nan
    elif is_business:
        reg = info.registered_at
        f["business_new_12m"] = float(
            (t - info.opened_at.timestamp()) / DAY < 365
            or (reg is not None and (t - reg.timestamp()) / DAY < 365))
    else:
        f["business_new_12m"] = 0.0
    f.update(app_signal_features(p, hist, f["first_payment_to_cp"] == 1.0))
    assert set(f) == set(FEATURE_NAMES) - set(DEVICE_NAMES)
    return f


def app_signal_features(p: Payment, hist: list[float], first: bool) -> dict[str, float]:
    """The app's signals from first principles: ``hist`` = the account's amounts of the same
    direction in the 30 days before ``p``; ``first``: no payment with the counterparty in the
    30 days before (brute-forced by the caller)."""
    debit = p.direction == "debit"
    if hist:
        far = p.amount / statistics.median(hist) >= 3
    else:
        far = p.currency == "VND" and p.amount > 10e6
    f: dict[str, float] = {}
    for signal, value in (("on_call", p.on_call), ("remote_access", p.remote_access)):
        if value is None:
            f[signal] = math.nan
            f[f"{signal}_first_payment_to_cp"] = f[f"{signal}_large_debit"] = math.nan
        else:
            f[signal] = float(value)
            f[f"{signal}_first_payment_to_cp"] = float(value and debit and first)
            f[f"{signal}_large_debit"] = float(value and debit and far)
    return f


def _history_names(prefix: str, share: bool) -> list[str]:
    return [f"{prefix}fraud_{side}_{what}_{w}" for side in ("received", "sent")
            for w in ("1d", "7d", "30d") for what in ("count", "sum", "share")
            if share or what != "share"]


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def engine_vectors(events: list[Payment | Login], engine: FeatureEngine | None = None
                   ) -> list[tuple[str, tuple[float, ...]]]:
    engine = engine or FeatureEngine(reference(events), LATENESS)
    out = []
    for ev in events:
        if isinstance(ev, Payment):
            v = engine.on_payment(ev)
            if v is not None:
                out.append((ev.event_id, v.values))
        else:
            engine.on_login(ev)
    return out


def assert_matches_oracle(got: list[tuple[str, tuple[float, ...]]],
                          expected: list[tuple[str, dict[str, float]]]) -> None:
    assert [e for e, _ in got] == [e for e, _ in expected]
    for (event_id, values), (_, want) in zip(got, expected, strict=True):
        for name, value in zip(FEATURE_NAMES, values, strict=True):
            assert same(value, want[name]), (event_id, name, value, want[name])


# ----------------------------------------------------------------------------- the tests


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_lists())
def test_every_feature_equals_brute_force(events):
    expected = oracle(events)
    got = engine_vectors(events)
    assert_matches_oracle(got, expected)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_lists())
def test_every_feature_equals_brute_force_with_the_counterparty_index(events):
    """Busy accounts look counterparties up in a counter instead of scanning the 30-day window:
    force it (and its build and drop) onto the small generated histories."""
    with mock.patch.object(engine_module, "CP_INDEX_AT", 2):
        got = engine_vectors(events)
    expected = oracle(events)
    assert_matches_oracle(got, expected)


# long single-account histories: hundreds of events over months, so that the retention (30 d
# of look-back for the members of a 7 d window, plus the lateness) and the eviction of old
# history are reached again and again
LONG_STEP = st.one_of(
    st.integers(0, 600),
    st.integers(3600, 3 * 86400),
    st.sampled_from([30 * 86400, 31 * 86400, 33 * 86400, 36 * 86400, 37 * 86400 + 301]),
    st.integers(-300, -1),
)


@st.composite
def long_histories(draw: st.DrawFn) -> list[Payment | Login]:
    n = draw(st.integers(150, 400))
    pace = int(45 * DAY) // n  # the history spans at least 45 days, past the retention
    clock = 0
    events: list[Payment | Login] = []
    for i in range(n):
        clock = max(0, clock + pace + draw(LONG_STEP))
        ts = T0 + timedelta(seconds=clock)
        if draw(st.integers(0, 3)):
            events.append(Payment(
                event_id=f"p{i}", ts=ts, account_id="A",
                direction=draw(st.sampled_from(["debit", "credit"])),
                amount=draw(st.sampled_from(AMOUNTS)), currency="VND",
                counterparty_account=draw(st.sampled_from(CPS)),
                counterparty_bank=draw(st.sampled_from(["CGB", "CGB", "VCB"])),
                channel="mobile", country=draw(st.sampled_from([None, *COUNTRIES])),
            ))
        else:
            events.append(Login(
                event_id=f"l{i}", ts=ts, account_id="A", success=draw(st.booleans()),
                ip="10.0.0.1", country=draw(st.sampled_from(TRAVEL)),
                device_id=draw(st.sampled_from(DEVICES)), channel="mobile",
            ))
    return events


# more login countries than the engine keeps without compacting its country table (4)
TRAVEL = [*COUNTRIES, "TH", "JP", "KR", "US"]


def test_a_rebuild_keeps_the_history_a_7_day_window_member_needs():
    """A credit 6 days back counts as from a repeat sender because that sender paid 35 days
    back: when a late event rebuilds the account from its retained history, that older credit
    must still be there (retention 30 d + 7 d + lateness), or the share of credits from
    first-time senders changes."""
    def credit(i: int, days: float, cp: str) -> Payment:
        return Payment(event_id=f"c{i}", ts=T0 + timedelta(days=days), account_id="A",
                       direction="credit", amount=1_000_000.0, currency="VND",
                       counterparty_account=cp, counterparty_bank="CGB", channel="mobile")

    events: list[Payment | Login] = [credit(0, 0, "X"), credit(1, 29, "X"), credit(2, 35, "Y")]
    events.append(Login(event_id="late", ts=T0 + timedelta(days=35, seconds=-100),
                        account_id="A", success=True, ip="10.0.0.1", country="VN",
                        device_id="d1", channel="mobile"))  # within the lateness: a rebuild
    events.append(credit(3, 35.001, "Z"))
    assert_matches_oracle(engine_vectors(events), oracle(events))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(long_histories())
def test_long_histories_past_the_retention_equal_brute_force(events):
    assert max(e.t for e in events) - min(e.t for e in events) > 40 * DAY
    assert_matches_oracle(engine_vectors(events), oracle(events))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(long_histories(), st.floats(0.2, 0.9))
def test_long_histories_restored_mid_way_equal_an_uninterrupted_run(events, share):
    """A restore replays only the retained history: the dwell times a debit takes back out of
    its 7-day window and the login-country table must come out the same as never stopping."""
    cut = int(len(events) * share)
    uninterrupted = engine_vectors(events, FeatureEngine(reference(events), LATENESS))
    first = FeatureEngine(reference(events), LATENESS)
    head = engine_vectors(events[:cut], first)
    restored = FeatureEngine.restore(first.snapshot(), reference(events))
    got = head + engine_vectors(events[cut:], restored)
    assert [e for e, _ in got] == [e for e, _ in uninterrupted]
    for (event_id, v1), (_, v2) in zip(got, uninterrupted, strict=True):
        # close, as in the restore test above: running sums (log-amount moments) restart
        # from the retained history, so their last bits may differ
        assert all(same(a, b) for a, b in zip(v1, v2, strict=True)), event_id


@pytest.mark.parametrize("index_at", [2, engine_module.CP_INDEX_AT])
def test_a_counterparty_paid_before_is_still_a_first_time_sender(index_at):
    """Debits to X do not make X a known sender: the credit from X is a first-time credit,
    whether the lookup scans the window or uses the counter (a case random lists rarely hit)."""
    events: list[Payment | Login] = [
        Payment(f"p{i}", T0 + timedelta(hours=i), "A", direction, 1e6, "VND", "X", "CGB", "mobile")
        for i, direction in enumerate(["debit", "debit", "debit", "credit", "credit"])
    ]
    engine = FeatureEngine(reference(events), LATENESS)
    with mock.patch.object(engine_module, "CP_INDEX_AT", index_at):
        got = engine_vectors(events, engine)
    assert (engine._accounts["A"].cp30 is not None) == (index_at < len(events))
    expected = oracle(events)
    shares = [values[FEATURE_NAMES.index("first_time_sender_share_7d")] for _, values in got]
    assert shares[3:] == [1.0, 0.5]
    assert_matches_oracle(got, expected)


@settings(max_examples=150, deadline=None)
@given(event_lists(), st.integers(0, 45))
def test_snapshot_restore_at_any_cut_equals_uninterrupted_run(events, cut):
    cut = min(cut, len(events))
    uninterrupted = FeatureEngine(reference(events), LATENESS)
    full = engine_vectors(events, uninterrupted)
    first = FeatureEngine(reference(events), LATENESS)
    head = engine_vectors(events[:cut], first)
    restored = FeatureEngine.restore(first.snapshot(), reference(events))
    tail = engine_vectors(events[cut:], restored)
    assert len(head) + len(tail) == len(full)
    for (e1, v1), (e2, v2) in zip(head + tail, full, strict=True):
        assert e1 == e2
        assert all(same(a, b) for a, b in zip(v1, v2, strict=True)), e1
    assert restored.stats == uninterrupted.stats  # counters survive the restore too


def _document_snapshot(engine: FeatureEngine, fmt: int) -> bytes:
    """A snapshot as formats 1 and 2 wrote it (one compressed JSON document; format 1 events
    carried an arrival number), built from the engine's state."""
    accounts = {}
    for account_id, acct in engine._accounts.items():
        recent = acct.recent or []
        events = acct.raw_history()
        if fmt == 1:
            events = [[r[0], r[1], k + 1, *r[2:]] for k, r in enumerate(events)]
        accounts[account_id] = {"max_t": acct.max_t, "events": events,
                                "recent": dict(zip(recent[::2], recent[1::2], strict=True))}
        if fmt == 1:
            accounts[account_id]["seq"] = len(events)
    doc = {"format": fmt, "feature_version": FEATURE_VERSION,
           "allowed_lateness_s": engine.allowed_lateness_s, "stats": engine.stats.as_dict(),
           "accounts": accounts}
    return zlib.compress(orjson.dumps(doc), 1)


@pytest.mark.parametrize("fmt", [1, 2])
@settings(max_examples=40, deadline=None)
@given(events=event_lists(), cut=st.integers(min_value=0, max_value=60))
def test_format_1_and_2_snapshots_still_restore(fmt, events, cut):
    """Checkpoints written before format 3 (one compressed document; format 1 with an arrival
    number per event) restore to the same engine."""
    cut = min(cut, len(events))
    full = engine_vectors(events)
    first = FeatureEngine(reference(events), LATENESS)
    head = engine_vectors(events[:cut], first)
    restored = FeatureEngine.restore(_document_snapshot(first, fmt), reference(events))
    tail = engine_vectors(events[cut:], restored)
    assert [e for e, _ in head + tail] == [e for e, _ in full]
    for (_, v1), (_, v2) in zip(head + tail, full, strict=True):
        assert all(same(a, b) for a, b in zip(v1, v2, strict=True))


@settings(max_examples=60, deadline=None)
@given(events=event_lists(), cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=4))
def test_repeated_snapshots_reuse_unchanged_accounts_and_stay_exact(events, cuts):
    """Snapshots taken again and again (frames of unchanged accounts reused, changed ones
    rebuilt) always restore to the engine they were taken of."""
    engine = FeatureEngine(reference(events), LATENESS)
    done = 0
    full = engine_vectors(events)
    out = []
    for cut in sorted(min(c, len(events)) for c in cuts):
        out += engine_vectors(events[done:cut], engine)
        done = cut
        cached = engine.snapshot()  # frames of accounts unchanged since the last one reused
        engine._frames.clear()
        assert engine.snapshot() == cached  # ... and still exact: as if serialised anew
        again = FeatureEngine.restore(cached, reference(events))
        engine = again if cut % 2 else engine  # continue on the restored one half the time
    out += engine_vectors(events[done:], engine)
    assert [e for e, _ in out] == [e for e, _ in full]
    for (_, v1), (_, v2) in zip(out, full, strict=True):
        assert all(same(a, b) for a, b in zip(v1, v2, strict=True))


@settings(max_examples=60, deadline=None)
@given(events=event_lists(), cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=4),
       budget=st.integers(min_value=1, max_value=4))
def test_a_snapshot_spread_over_steps_equals_one_taken_at_once(events, cuts, budget):
    """prepare_snapshot(budget) makes at most ``budget`` frames a step and says how many
    changed accounts remain; the snapshot after any number of steps (events applied between
    them) is byte-identical to one serialised from scratch. A restored engine reuses the
    frames it restored where they are exact (the replay dropped nothing past the retention) and
    prepares the others."""
    engine = FeatureEngine(reference(events), LATENESS)
    done = 0
    for cut in sorted(min(c, len(events)) for c in cuts):
        engine_vectors(events[done:cut], engine)
        done = cut
        before = len(engine._frames)
        remaining = engine.prepare_snapshot(budget)
        assert len(engine._frames) - before <= budget
        changed = [a for a in engine._accounts if a not in engine._frames]
        assert remaining == len(changed)
    snap = engine.snapshot()
    assert engine.prepare_snapshot(budget) == 0
    engine._frames.clear()
    assert engine.snapshot() == snap
    restored = FeatureEngine.restore(snap, reference(events))
    while restored.prepare_snapshot(budget):
        pass
    assert set(restored._frames) == set(restored._accounts)
    again = restored.snapshot()
    restored._frames.clear()  # the frames it kept are what a fresh serialisation writes
    assert restored.snapshot() == again


@settings(max_examples=60, deadline=None)
@given(event_lists())
def test_training_replay_matches_streaming_path(events):
    """Parity: replay_matrix (training) gives the vectors the event-by-event path gives when
    the stream arrives in event-time order."""
    ordered = sorted(events, key=lambda e: (e.t, 0 if isinstance(e, Login) else 1))
    payments = [e for e in events if isinstance(e, Payment)]
    logins = [e for e in events if isinstance(e, Login)]
    X, scored = replay_matrix(payments, logins, reference(events), LATENESS)
    live = engine_vectors(ordered)
    assert [p.event_id for p in scored] == [e for e, _ in live]
    for row, (_, values) in zip(X.tolist(), live, strict=True):
        assert all(same(a, b) for a, b in zip(row, values, strict=True))


def test_duplicates_and_too_late_events_are_counted_not_scored():
    engine = FeatureEngine(reference([]), LATENESS)
    p = Payment("e1", T0, "A", "credit", 1e6, "VND", "X", "CGB", "mobile")
    late = Payment("e2", T0 - timedelta(seconds=LATENESS + 1), "A", "credit", 1e6, "VND", "X",
                   "CGB", "mobile")
    assert engine.on_payment(p) is not None
    assert engine.on_payment(p) is None
    assert engine.on_payment(late) is None
    assert (engine.stats.duplicates, engine.stats.too_late, engine.stats.payments) == (1, 1, 1)


def test_labels_confirmed_after_the_payment_are_not_used():
    """No look-ahead: a fraud label on X confirmed at T0+2d does not flag a payment at T0+1d."""
    engine = FeatureEngine(reference([]), LATENESS)
    before = engine.on_payment(Payment("e1", T0 + timedelta(days=1), "A", "debit", 1e6, "VND",
                                       "X", "CGB", "mobile"))
    after = engine.on_payment(Payment("e2", T0 + timedelta(days=2, seconds=1), "A", "debit", 1e6,
                                      "VND", "X", "CGB", "mobile"))
    assert before is not None and after is not None
    assert before["cp_flagged"] == 0.0 and before["cp_fraud_received_count_7d"] == 0.0
    assert before["debits_to_flagged_7d"] == 0.0
    assert after["cp_flagged"] == 1.0 and after["cp_fraud_received_count_7d"] == 1.0
    assert after["debits_to_flagged_7d"] == 2.0  # both debits to X, X now flagged


def test_state_is_bounded_and_idle_accounts_are_evicted():
    """History is cut at once to the retention, 30 + 7 days and the lateness, logins as well
    as payments; then the whole account goes when it has been silent for the retention."""
    engine = FeatureEngine(reference([]), LATENESS)
    for i in range(2000):
        ts = T0 + timedelta(hours=i)
        engine.on_login(Login(f"l{i}", ts, "A", True, "10.0.0.1", "VN", "d1", "mobile"))
        engine.on_payment(Payment(f"e{i}", ts, "A", "credit", 1e6, "VND", f"cp{i}", "CGB", "api"))
    acct = engine._accounts["A"]
    newest = (T0 + timedelta(hours=1999)).timestamp()
    kept_payments = [i for i in range(2000)
                     if (T0 + timedelta(hours=i)).timestamp() > newest - engine.retention_s]
    # one an hour: 37 days of them, and the one exactly that old is inside the lateness
    assert len(acct.pt) == len(kept_payments) == 37 * 24 + 1
    assert len(acct.lt) == len(kept_payments)
    # only the newest instant's ids are kept: [login id, t, payment id, t]
    assert acct.recent == ["l1999", newest, "e1999", newest]
    assert engine.evict_idle((T0 + timedelta(days=200)).timestamp()) == 1
    assert engine.n_accounts() == 0


def test_structuring_under_the_biometric_thresholds_and_the_local_day():
    """Two online transfers of 9.5 M VND on one local day: each just under 10 M, together just
    under 20 M; the day restarts at midnight Vietnam time (17:00 UTC), not UTC midnight."""
    def debit(i: int, hour_utc: float, amount: float, channel: str = "mobile") -> Payment:
        return Payment(f"s{i}", T0.replace(hour=0) + timedelta(hours=hour_utc), "A", "debit",
                       amount, "VND", f"R{i}", "VCB", channel, device_id="d9")

    events: list[Payment | Login] = [
        debit(1, 1, 9_500_000.0), debit(2, 2, 300_000.0, "atm"), debit(3, 3, 9_500_000.0),
        debit(4, 16.5, 1_000_000.0), debit(5, 17.5, 9_000_000.0), debit(6, 18, 12e6)]
    got = engine_vectors(events)
    assert_matches_oracle(got, oracle(events))
    rows = [dict(zip(FEATURE_NAMES, values, strict=True)) for _, values in got]
    assert [r["near_10m_debits_today"] for r in rows] == [1, 1, 2, 2, 1, 1]
    assert [r["just_under_20m_today"] for r in rows] == [0, 0, 1, 1, 0, 0]  # 20 M: not above
    assert [r["online_debit_sum_today"] for r in rows] == [9.5e6, 9.5e6, 19e6, 20e6, 9e6, 21e6]
    assert [r["over_10m_online"] for r in rows] == [0, 0, 0, 0, 0, 1]
    assert rows[0]["debit_from_new_device"] == 1.0  # d9 never seen in a login before


def test_fan_in_then_cash_out_is_one_flag():
    events: list[Payment | Login] = [
        Payment(f"c{i}", T0 + timedelta(minutes=i), "A", "credit", 5e6, "VND", f"V{i}", "TCB",
                "mobile") for i in range(4)]
    events.append(Payment("out", T0 + timedelta(minutes=30), "A", "debit", 19e6, "VND", "K",
                          "ACB", "mobile"))
    got = engine_vectors(events)
    assert_matches_oracle(got, oracle(events))
    assert [v[FEATURE_NAMES.index("fan_in_cash_out_24h")] for _, v in got] == [0, 0, 0, 0, 1]


def test_device_age_counts_from_the_device_s_first_login_in_30_days():
    """The quiet account takeover's sign: a transfer from a device that first logged in to the
    account hours or days ago (a device seen for 30 days or more is old; none: new now)."""
    def log_in(i: int, days: float, device: str) -> Login:
        return Login(f"l{i}", T0 + timedelta(days=days), "A", True, "14.160.1.2", "VN", device,
                     "mobile")

    def pay(i: int, days: float, device: str | None) -> Payment:
        return Payment(f"p{i}", T0 + timedelta(days=days), "A", "debit", 2e6, "VND", f"R{i}",
                       "VCB", "mobile", device_id=device)

    events: list[Payment | Login] = [
        log_in(1, 0, "home"), pay(1, 0.1, "home"), log_in(2, 40, "home"), pay(2, 40.1, "home"),
        log_in(3, 41, "new"), pay(3, 41.5, "new"), pay(4, 43, "new"), pay(5, 43, "never"),
        pay(6, 43, None)]
    got = engine_vectors(events)
    assert_matches_oracle(got, oracle(events))
    ages = [dict(zip(FEATURE_NAMES, v, strict=True))["device_age_days"] for _, v in got]
    assert ages[:5] == [pytest.approx(0.1), pytest.approx(0.1), pytest.approx(0.5),
                        pytest.approx(2.0), 0.0]
    assert math.isnan(ages[5])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=60))
def test_the_counterparty_count_encoding_tracks_debits_and_credits(steps):
    """``cp30``'s count of one counterparty, added to and taken from in any order: zero
    exactly when no payment is left, positive exactly when a credit is."""
    c, debits, credits = 0, 0, 0
    for add, is_debit in steps:
        if add:
            c = engine_module._cp_more(c, is_debit)
        elif (debits if is_debit else credits) > 0:
            c = engine_module._cp_less(c, is_debit)
        else:
            continue
        debits += (1 if add else -1) if is_debit else 0
        credits += 0 if is_debit else (1 if add else -1)
        assert (c == 0) == (debits + credits == 0)
        assert (c > 0) == (credits > 0)
        assert -5 <= c <= 256 or (debits and credits) or debits > 5 or credits > 256


def test_more_login_countries_than_two_bytes_index_still_come_back():
    """The login flags hold the country's index in 13 bits; past 8,192 distinct countries (only
    a Login built around the decoder could carry them) the column widens, nothing is lost."""
    acct = engine_module._Account()
    t = T0.timestamp()
    for i in range(8_200):
        acct.add_login(t + i, True, f"C{i}", "d1", 1)
    assert acct.lflag.typecode == "I"
    assert [r[3] for r in acct.raw_history()] == [f"C{i}" for i in range(8_200)]


def test_a_payment_too_late_by_a_day_is_scored_with_the_logins_of_its_30_days():
    """score_late places a payment that came later than the lateness at its event time on the
    retained history. A day too late, the payments it looks back at (30 d) are all still
    retained (30 d + 7 d + lateness), and so must be the logins: the device that logged in,
    from abroad, 29.5 days before it is not a new device and that foreign login is 29.5 days
    old, as the oracle says of the payment had it come in time."""
    login = Login("sl0", T0, "A", True, "10.0.0.1", "KH", "d1", "mobile")
    later = Payment("s1", T0 + timedelta(days=31), "A", "credit", 1e6, "VND", "X", "CGB",
                    "mobile")
    late = Payment("s2", T0 + timedelta(days=29.5), "A", "debit", 2e6, "VND", "Y", "CGB",
                   "mobile", country="VN", device_id="d1")
    engine = FeatureEngine(reference([login, later, late]), LATENESS)
    engine_vectors([login, later], engine)
    assert engine.on_payment(late) is None  # 1.5 days late: not placed in the state
    got = engine.score_late(late)
    assert got is not None
    want = dict(oracle([login, late]))["s2"]
    assert want["device_age_days"] == pytest.approx(29.5)
    assert want["debit_from_new_device"] == 0.0
    assert want["mins_since_foreign_login"] == pytest.approx(29.5 * 1440)
    assert_matches_oracle([("s2", got.values)], [("s2", want)])
