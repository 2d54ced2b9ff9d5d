"""The mobile app's device-risk signals of a payment (``on_call``, ``remote_access``): the
contract (absent = unknown, never false; anything but a JSON boolean is a rejection naming the
field), the four features on hand-made histories, the reason phrases, and the simulator's rates.
The features are also checked against brute force on generated histories in
``test_features_oracle.py``."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import engine as engine_module
from features.engine import FeatureEngine
from features.events import Payment, Rejection, decode, encode, to_dict
from features.vector import APP_SIGNAL_NAMES, FAR_ABOVE_USUAL, FEATURE_NAMES
from models.reasons import phrase
from tests.unit.test_events import PAYMENT
from training.datadir import from_tables
from training.simulator import SimConfig, simulate
from training.simulator.config import AppSignalRates

FIELDS = ("on_call", "remote_access")
T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


def _decode(d: dict) -> Payment | Rejection:
    return decode("payments", json.dumps(d, ensure_ascii=False).encode())


# ------------------------------------------------------------------ the contract


@pytest.mark.parametrize("name", FIELDS)
def test_absent_or_null_is_unknown_and_false_stays_false(name):
    absent = _decode(PAYMENT)
    null = _decode({**PAYMENT, name: None})
    no = _decode({**PAYMENT, name: False})
    yes = _decode({**PAYMENT, name: True})
    assert getattr(absent, name) is None and getattr(null, name) is None
    assert getattr(no, name) is False and getattr(yes, name) is True
    # written back: absent stays absent, false stays false (not dropped as "falsy")
    assert name not in to_dict(absent)
    assert to_dict(no)[name] is False and to_dict(yes)[name] is True
    for p in (absent, no, yes):
        assert decode("payments", encode(p)) == p
    assert name not in absent.extra and name not in yes.extra  # a contract field, not an extra


@pytest.mark.parametrize("name", FIELDS)
@settings(max_examples=100, deadline=None)
@given(value=st.one_of(
    st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10),
    st.sampled_from(["true", "false", "yes", "", "1", "0"]),
    st.lists(st.booleans(), max_size=3), st.dictionaries(st.text(max_size=3), st.booleans(),
                                                         max_size=2)))
def test_anything_but_a_boolean_is_a_rejection_naming_the_field(name, value):
    result = _decode({**PAYMENT, name: value})
    assert isinstance(result, Rejection)
    assert result.field == name
    assert result.reason.startswith("must be a boolean (true/false) or absent, got ")
    assert result.message() == f"payments: field '{name}': {result.reason}"


# ------------------------------------------------------------------ the features


def _pay(i: int, hours: float, amount: float, cp: str, direction: str = "debit",
         on_call: bool | None = None, remote: bool | None = None,
         channel: str = "mobile") -> Payment:
    return Payment(event_id=f"p{i}", ts=T0 + timedelta(hours=hours), account_id="A",
                   direction=direction, amount=amount, currency="VND", counterparty_account=cp,
                   counterparty_bank="VCB", channel=channel, on_call=on_call,
                   remote_access=remote)


def _app(vector) -> dict[str, float]:
    return {name: vector[name] for name in APP_SIGNAL_NAMES}


def _nan_or(expected: dict[str, float], got: dict[str, float]) -> None:
    for name, want in expected.items():
        if math.isnan(want):
            assert math.isnan(got[name]), (name, got[name])
        else:
            assert got[name] == want, (name, got[name], want)


def test_the_flags_and_their_interactions_on_a_history():
    engine = FeatureEngine()
    history = [_pay(i, i, 500_000.0, "FRIEND") for i in range(5)]  # usual: 500 k to a friend
    for p in history:
        v = engine.on_payment(p)
        _nan_or(dict.fromkeys(APP_SIGNAL_NAMES, math.nan), _app(v))  # nothing reported
    cases = [
        # on a call, first transfer to a new payee, 3x the usual: both interactions' inputs
        (_pay(10, 10, 1_500_000.0, "NEW1", on_call=True, remote=False),
         {"on_call": 1, "remote_access": 0, "on_call_first_payment_to_cp": 1,
          "on_call_large_debit": 1, "remote_access_first_payment_to_cp": 0,
          "remote_access_large_debit": 0}),
        # on a call to a payee already paid: no first-payment interaction
        (_pay(11, 11, 400_000.0, "FRIEND", on_call=True),
         {"on_call": 1, "on_call_first_payment_to_cp": 0, "on_call_large_debit": 0,
          "remote_access": math.nan, "remote_access_first_payment_to_cp": math.nan,
          "remote_access_large_debit": math.nan}),
        # remote access at exactly 3x the median: far above usual
        (_pay(12, 12, 1_500_000.0, "FRIEND", remote=True),
         {"remote_access": 1, "remote_access_large_debit": 1,
          "remote_access_first_payment_to_cp": 0, "on_call": math.nan,
          "on_call_large_debit": math.nan}),
        # remote access during a first transfer to a new payee, of a usual amount
        (_pay(15, 12.5, 500_000.0, "NEW4", remote=True),
         {"remote_access": 1, "remote_access_first_payment_to_cp": 1,
          "remote_access_large_debit": 0}),
        # remote access just under 3x: not far above
        (_pay(13, 13, 1_490_000.0, "FRIEND", remote=True, on_call=False),
         {"remote_access": 1, "remote_access_large_debit": 0, "on_call": 0,
          "on_call_first_payment_to_cp": 0}),
        # a credit is never a "first payment to a payee" nor a large debit
        (_pay(14, 14, 9e7, "NEW2", direction="credit", on_call=True, remote=True),
         {"on_call": 1, "remote_access": 1, "on_call_first_payment_to_cp": 0,
          "on_call_large_debit": 0, "remote_access_first_payment_to_cp": 0,
          "remote_access_large_debit": 0}),
    ]
    for p, expected in cases:
        _nan_or(expected, _app(engine.on_payment(p)))


def test_without_history_a_large_debit_is_one_above_the_biometric_threshold():
    engine = FeatureEngine()
    small = engine.on_payment(_pay(1, 0, 10_000_000.0, "X", remote=True, on_call=True))
    assert small["remote_access_large_debit"] == small["on_call_large_debit"] == 0.0
    engine = FeatureEngine()
    large = engine.on_payment(_pay(1, 0, 10_000_001.0, "X", remote=True, on_call=True))
    assert large["remote_access_large_debit"] == large["on_call_large_debit"] == 1.0


def test_a_late_payment_keeps_its_own_flags_and_the_state_stays_flag_free():
    """The flags belong to the payment: a payment placed at its event time by a rebuild, or
    scored late, keeps them; the retained history (the snapshot) holds none."""
    engine = FeatureEngine(allowed_lateness_s=3600)
    for i in range(3):
        engine.on_payment(_pay(i, i, 500_000.0, "FRIEND"))
    before = engine.snapshot()
    rebuilt = engine.on_payment(_pay(9, 1.5, 2_000_000.0, "NEW", on_call=True, remote=True))
    assert engine.stats.reordered == 1
    _nan_or({"on_call": 1, "on_call_first_payment_to_cp": 1, "on_call_large_debit": 1,
             "remote_access": 1, "remote_access_first_payment_to_cp": 1,
             "remote_access_large_debit": 1}, _app(rebuilt))
    late = engine.score_late(_pay(10, -5, 2_000_000.0, "NEW3", on_call=True))
    _nan_or({"on_call": 1, "on_call_first_payment_to_cp": 1}, _app(late))
    # the same payments without flags leave exactly the same state
    plain = FeatureEngine(allowed_lateness_s=3600)
    for i in range(3):
        plain.on_payment(_pay(i, i, 500_000.0, "FRIEND"))
    assert plain.snapshot() == before
    plain.on_payment(_pay(9, 1.5, 2_000_000.0, "NEW"))
    assert plain.snapshot() == engine.snapshot()


def test_the_engine_and_the_vector_agree_on_far_above_usual():
    assert engine_module.FAR_ABOVE_USUAL == FAR_ABOVE_USUAL
    assert FEATURE_NAMES[-len(APP_SIGNAL_NAMES):] == APP_SIGNAL_NAMES


# ------------------------------------------------------------------ the reasons


def test_the_phrases_say_what_an_investigator_needs():
    text = phrase("on_call_first_payment_to_cp", 1.0)
    assert "phone call" in text and "first transfer to a new payee" in text
    assert "impersonation" in text
    assert "AnyDesk" in phrase("remote_access", 1.0)
    assert "far above" in phrase("remote_access_large_debit", 1.0)
    assert "far above" in phrase("on_call_large_debit", 1.0)
    assert "first transfer to a new payee" in phrase("remote_access_first_payment_to_cp", 1.0)
    assert phrase("on_call", 0.0) == "no phone call during the transfer"
    for name in APP_SIGNAL_NAMES:  # unknown is said as unknown, never as "no"
        assert "not reported" in phrase(name, math.nan)
        assert phrase(name, 1.0) != phrase(name, 0.0)


# ------------------------------------------------------------------ the simulator


@pytest.fixture(scope="module")
def sim():
    result = simulate(SimConfig(accounts=1500, days=30, seed=5, fraud_rate=0.01))
    pay = result.payments.to_pandas().merge(result.truth.to_pandas(), on="event_id")
    return result, pay


def test_only_mobile_app_debits_report_the_signals(sim):
    _, pay = sim
    for name in FIELDS:
        reported = pay[name].notna()
        assert reported.any()
        app = (pay.channel == "mobile") & (pay.direction == "debit") & pay.session_id.notna()
        assert (reported == app).all()


def test_the_rates_follow_the_configuration(sim):
    _, pay = sim
    app = pay[pay.on_call.notna()]
    legit = app[~app.is_fraud]
    rates = AppSignalRates()
    call = legit.on_call.astype(float).mean()
    # between the base rates and the highest rate for a first payment to a new payee
    assert rates.on_call_personal <= call <= rates.on_call_business * 2
    assert legit.remote_access.astype(float).mean() < 0.01
    victims = app[app.typology.isin(["scam_victim", "scam_victim_quiet"])]
    assert len(victims) >= 20
    assert victims.on_call.astype(float).mean() > 4 * call


def test_the_signals_change_nothing_else_of_a_simulation():
    """Their own random streams: with every rate at zero (and no takeover by remote control)
    the other columns are those of the same simulation with the default rates, except the
    devices of the remote-controlled takeovers."""
    zero = AppSignalRates(**{f.name: 0.0 for f in dataclasses.fields(AppSignalRates)})
    cfg = SimConfig(accounts=600, days=20, seed=3, fraud_rate=0.01)
    one, other = simulate(cfg), simulate(dataclasses.replace(cfg, app=zero))
    a, b = one.payments.to_pandas(), other.payments.to_pandas()
    assert (b.on_call.dropna() == False).all() and (b.remote_access.dropna() == False).all()  # noqa: E712
    assert a.on_call.fillna(False).astype(bool).any()
    # event and session ids carry a tag of the whole configuration
    keep = [c for c in a.columns if c not in ("event_id", "session_id", "on_call",
                                               "remote_access", "device_id", "ip", "country")]
    assert a[keep].equals(b[keep])
    typ = one.truth.to_pandas().typology.fillna("")
    takeover = typ.str.startswith("account_takeover").to_numpy()
    session = ["device_id", "ip", "country"]
    assert a.loc[~takeover, session].equals(b.loc[~takeover, session])
    assert not a.loc[takeover, session].equals(b.loc[takeover, session])


def test_a_victims_on_call_rate_can_be_halved_for_a_sensitivity_run():
    rates = AppSignalRates()
    half = dataclasses.replace(rates, victim_on_call_impersonation=0.425, victim_on_call_chat=0.15)
    cfg = SimConfig(accounts=300, days=10, seed=3, app=half).validate()
    assert cfg.app.victim_on_call_impersonation == 0.425
    with pytest.raises(ValueError, match="app.victim_on_call_chat"):
        SimConfig(app=dataclasses.replace(rates, victim_on_call_chat=1.5)).validate()


def test_the_data_directory_reads_the_signals_back(sim):
    result, pay = sim
    data = from_tables(result)
    got = {p.event_id: (p.on_call, p.remote_access) for p in data.payments[:20_000]}
    for row in pay.head(20_000).itertuples():
        want = tuple(None if v is None or (isinstance(v, float) and np.isnan(v)) else bool(v)
                     for v in (row.on_call, row.remote_access))
        assert got[row.event_id] == want
