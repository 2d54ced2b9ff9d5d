"""The case state machine (pure), the typology rules and the opaque cursors."""

from __future__ import annotations

import itertools

import pytest

from serving import cases as sm
from serving import cursor
from serving.errors import ApiError
from serving.typology import classify, from_case

HAPPY = [("open", "under_review"), ("under_review", "freeze_requested"),
         ("freeze_requested", "frozen"), ("frozen", "release_requested"),
         ("release_requested", "released")]


def move(frm, to, role="admin", actor="a", outcome=None, requester="someone-else"):
    return sm.validate(frm, to, actor=actor, role=role, outcome=outcome,
                       requested_by=requester)


def test_the_happy_path_and_its_actions():
    actions = []
    for frm, to in HAPPY:
        outcome = "confirmed_fraud" if to == "released" else None
        actions.append(move(frm, to, outcome=outcome).action)
    assert actions == [None, "freeze_requested", "freeze_approved", "release_requested",
                       "released"]


@pytest.mark.parametrize("frm,to", [
    (f, t) for f, t in itertools.product(sm.STATUSES, sm.STATUSES)
    if (f, t) not in sm.TRANSITIONS
])
def test_every_illegal_transition_is_409_with_the_allowed_ones(frm, to):
    with pytest.raises(sm.TransitionError) as err:
        move(frm, to, outcome="false_positive")
    assert err.value.status == 409
    assert err.value.allowed == sm.allowed_from(frm)


def test_terminal_states_allow_nothing():
    for status in sm.TERMINAL:
        assert sm.allowed_from(status) == []


@pytest.mark.parametrize("frm,to", [("freeze_requested", "frozen"),
                                    ("release_requested", "released")])
def test_maker_checker_forbids_approving_ones_own_request(frm, to):
    outcome = "false_positive" if to == "released" else None
    for requester in ("sam", None):  # a request nobody is recorded for cannot be approved
        with pytest.raises(sm.TransitionError) as err:
            move(frm, to, role="supervisor", actor="sam", requester=requester, outcome=outcome)
        assert err.value.status == 403 and "maker-checker" in err.value.message
    assert move(frm, to, role="supervisor", actor="sam", requester="ivy",
                outcome=outcome).to_status == to


def test_every_move_that_imposes_or_lifts_a_restriction_is_checked_or_a_request():
    """A freeze takes effect only by an approval, and so does a release: no single move goes
    into or out of 'frozen' to a released account without a second person."""
    into_frozen = [m for m in sm.TRANSITIONS if m[1] == "frozen"]
    assert into_frozen == [("freeze_requested", "frozen"), ("release_requested", "frozen")]
    assert ("freeze_requested", "frozen") in sm.CHECKED
    assert [m for m in sm.TRANSITIONS if m[1] == "released"] == [
        ("release_requested", "released")]
    assert ("release_requested", "released") in sm.CHECKED


@pytest.mark.parametrize("frm,to", list(sm.TRANSITIONS))
def test_role_boundaries(frm, to):
    minimum = sm.TRANSITIONS[(frm, to)]
    outcome = "false_positive" if to in sm.NEEDS_OUTCOME else None
    for role in sm.ROLES:
        if sm.ROLE_RANK[role] >= sm.ROLE_RANK[minimum]:
            assert move(frm, to, role=role, outcome=outcome).to_status == to
        else:
            with pytest.raises(sm.TransitionError) as err:
                move(frm, to, role=role, outcome=outcome)
            assert err.value.status == 403


def test_outcomes_are_required_exactly_for_terminal_moves():
    with pytest.raises(sm.TransitionError) as err:
        move("frozen", "closed")
    assert err.value.status == 422
    with pytest.raises(sm.TransitionError):
        move("open", "under_review", outcome="confirmed_mule")
    with pytest.raises(sm.TransitionError):
        move("frozen", "closed", outcome="maybe")
    assert move("frozen", "closed", outcome="confirmed_mule").outcome == "confirmed_mule"


def test_unknown_target_is_422():
    with pytest.raises(sm.TransitionError) as err:
        move("open", "vaporised")
    assert err.value.status == 422


def test_outcome_labels_cover_every_outcome():
    assert set(sm.OUTCOME_LABELS) == set(sm.OUTCOMES)
    assert set(sm.OUTCOME_LABELS.values()) == {"fraud", "mule", "legit"}


def test_typology_rules():
    assert classify({"is_debit": 1, "session_foreign": 1, "new_device_24h": 1,
                     "first_payment_to_cp": 1}) == "account_takeover"
    assert classify({"is_business": 1, "foreign_logins_7d": 2,
                     "pass_through_24h": 0.9}) == "shell_business"
    assert classify({"distinct_senders_24h": 5, "pass_through_24h": 0.7}) == "mule"
    assert classify({"is_debit": 1, "first_payment_to_cp": 1,
                     "amount_ratio_median_30d": 12}) == "scam_victim"
    assert classify({"mean_dwell_secs_7d": float("nan")}) == "unusual_activity"
    assert from_case("scam_victim", "confirmed_mule", None) == "mule"
    assert from_case("mule", None, "shell_business") == "shell_business"


def test_cursor_round_trip_and_rejections():
    filters = ("x", 0.5)
    token = cursor.encode([0.75, "acc-1"], filters)
    assert cursor.decode(token, filters, (float, str)) == [0.75, "acc-1"]
    for bad in ["", "!!!", "e30", token[:-3], "A" * 2000]:
        with pytest.raises(ApiError):
            cursor.decode(bad, filters, (float, str))
    with pytest.raises(ApiError):  # a cursor from other filters
        cursor.decode(token, ("x", 0.6), (float, str))
    with pytest.raises(ApiError):  # right filters, wrong shape
        cursor.decode(cursor.encode(["a", "b"], filters), filters, (float, str))
