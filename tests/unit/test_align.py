"""The event-time aligner: merged order independent of how records are batched."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.align import LOGINS, PAYMENTS, HeldTime, PartitionAligner


def _never(_: str) -> bool:
    return False


def _always(_: str) -> bool:
    return True


def _keys(items):
    return [p.item for p in items]


def test_merges_heads_by_key_logins_first_at_equal_time():
    a: PartitionAligner[str] = PartitionAligner(0, 0, 0)
    a.add(PAYMENTS, 0, (10.0, 1), "p10")
    a.add(PAYMENTS, 1, (20.0, 1), "p20")
    a.add(LOGINS, 0, (10.0, 0), "l10")
    a.add(LOGINS, 1, (30.0, 0), "l30")
    assert _keys(a.release(_never)) == ["l10", "p10", "p20"]  # l30 waits: payments may follow
    assert _keys(a.release(_always)) == ["l30"]


def test_a_head_waits_until_the_other_topic_is_caught_up():
    a: PartitionAligner[str] = PartitionAligner(0, 0, 0)
    a.add(PAYMENTS, 0, (5.0, 1), "p5")
    assert a.release(lambda k: k == PAYMENTS) == []
    assert _keys(a.release(lambda k: k == LOGINS)) == ["p5"]


def test_a_caught_up_answer_as_an_offset_covers_only_the_heads_below_it():
    """The scorer's answer may be older than the newest records: it then lets through only
    what was polled before it was asked (streaming.ends)."""
    a: PartitionAligner[str] = PartitionAligner(0, 0, 0)
    for offset in range(4):
        a.add(PAYMENTS, offset, (float(offset), 1), f"p{offset}")
    assert _keys(a.release(lambda k: 2 if k == LOGINS else -1)) == ["p0", "p1"]
    assert a.release(lambda k: 2 if k == LOGINS else -1) == []
    assert a.release(lambda k: -1) == []
    assert _keys(a.release(lambda k: 4 if k == LOGINS else -1)) == ["p2", "p3"]
    a.add(LOGINS, 0, (9.0, 0), "l9")
    assert a.release(lambda k: 0 if k == PAYMENTS else -1) == []  # offset 0 is not below 0
    assert _keys(a.release(lambda k: 1 if k == PAYMENTS else -1)) == ["l9"]


def test_payments_wait_for_reference_data_but_earlier_logins_go():
    a: PartitionAligner[str] = PartitionAligner(0, 0, 0)
    a.add(LOGINS, 0, (1.0, 0), "l1")
    a.add(PAYMENTS, 0, (2.0, 1), "p2")
    a.add(LOGINS, 1, (3.0, 0), "l3")
    assert _keys(a.release(_always, payments_ready=False)) == ["l1"]
    assert _keys(a.release(_always, payments_ready=True)) == ["p2", "l3"]


def test_reference_readiness_as_an_offset_lets_through_only_the_payments_below_it():
    """The scorer's reference answer covers the payments in the log when it was asked: a
    later payment waits, and the login after it in the merge waits with it."""
    a: PartitionAligner[str] = PartitionAligner(0, 0, 0)
    a.add(PAYMENTS, 0, (1.0, 1), "p1")
    a.add(PAYMENTS, 1, (2.0, 1), "p2")
    a.add(LOGINS, 0, (3.0, 0), "l3")
    assert a.first_held_payment() == 0
    assert _keys(a.release(_always, payments_ready=1)) == ["p1"]
    assert a.first_held_payment() == 1
    assert a.holds_payments_from(1) and a.holds_payments_from(False)
    assert not a.holds_payments_from(2) and not a.holds_payments_from(True)
    assert a.release(_always, payments_ready=1) == []  # offset 1 is not below 1
    assert a.release(_always, payments_ready=-1) == []
    assert _keys(a.release(_always, payments_ready=2)) == ["p2", "l3"]
    assert a.first_held_payment() is None


def test_resume_offsets_point_at_the_first_unapplied_record():
    a: PartitionAligner[str] = PartitionAligner(0, 7, None)
    assert a.resume_offsets() == {PAYMENTS: 7, LOGINS: None}
    a.add(PAYMENTS, 7, (1.0, 1), "p")
    a.skip(PAYMENTS, 8)  # a rejected record
    a.add(PAYMENTS, 9, (2.0, 1), "q")
    assert a.resume_offsets()[PAYMENTS] == 7
    a.release(_always)
    assert a.resume_offsets() == {PAYMENTS: 10, LOGINS: None}
    a.add(LOGINS, 0, (5.0, 0), "l")
    assert a.resume_offsets()[LOGINS] == 0


def _merge(pay, log):
    i = j = 0
    out = []
    while i < len(pay) or j < len(log):
        if j < len(log) and (i == len(pay) or log[j][0] <= pay[i][0]):
            out.append(log[j][1])
            j += 1
        else:
            out.append(pay[i][1])
            i += 1
    return out


@settings(max_examples=200, deadline=None)
@given(
    pay=st.lists(st.integers(0, 50), max_size=25),
    log=st.lists(st.integers(0, 50), max_size=25),
    cuts=st.lists(st.integers(1, 6), min_size=1, max_size=40),
    data=st.data(),
)
def test_release_order_does_not_depend_on_batching(pay, log, cuts, data):
    pay_items = [((float(t), 1), f"p{i}") for i, t in enumerate(pay)]
    log_items = [((float(t), 0), f"l{i}") for i, t in enumerate(log)]
    # the records arrive interleaved in arbitrary chunks, each topic in offset order
    streams = {PAYMENTS: list(pay_items), LOGINS: list(log_items)}
    a: PartitionAligner[str] = PartitionAligner(0, 0, 0)
    offsets = {PAYMENTS: 0, LOGINS: 0}
    out: list[str] = []
    k = 0
    while streams[PAYMENTS] or streams[LOGINS]:
        kind = data.draw(st.sampled_from([k for k in (PAYMENTS, LOGINS) if streams[k]]))
        n = cuts[k % len(cuts)]
        k += 1
        for key, item in streams[kind][:n]:
            a.add(kind, offsets[kind], key, item)
            offsets[kind] += 1
        del streams[kind][:n]
        out += _keys(a.release(lambda kd, s=streams: not s[kd]))
    out += _keys(a.release(_always))
    assert out == _merge([(k, i) for k, i in pay_items], [(k, i) for k, i in log_items])
    assert a.buffered() == 0


def test_held_time_counts_each_held_payment_until_its_release():
    held = HeldTime(now=10.0)
    assert held.before_release(10.5) == {}  # nothing was held
    # after a release at 11.0: 3 payments still held for logins, 1 for the tables
    assert held.after_release(11.0, {"logins": 3, "reference": 1}) == {"logins": 1.5,
                                                                      "reference": 0.5}
    # they waited until the next release started at 11.25...
    assert held.before_release(11.25) == {"logins": 0.75, "reference": 0.25}
    # ...which let all but one go by 11.5
    assert held.after_release(11.5, {"logins": 1}) == {"logins": 0.25}
    assert held.before_release(12.0) == {"logins": 0.5}
    assert held.after_release(12.5, {}) == {}
    assert held.before_release(13.0) == {}


def test_an_aligner_counts_the_payments_it_holds():
    a: PartitionAligner[str] = PartitionAligner(0, 0, 0)
    a.add(LOGINS, 0, (1.0, 0), "l1")
    assert a.held_payments() == 0  # a login is not a held payment
    a.add(PAYMENTS, 0, (2.0, 1), "p2")
    a.add(PAYMENTS, 1, (3.0, 1), "p3")
    assert a.held_payments() == 2
    a.release(_always)
    assert a.held_payments() == 0
