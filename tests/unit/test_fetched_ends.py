"""streaming.ends.FetchedEnds: a fetch response answers for the records known to be in the log
before its request was created, and for nothing else."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from streaming.ends import MAX_REQUESTS, FetchedEnds

A, B = "payments-0", "logins-0"


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def test_the_next_fetch_answers_for_the_records_an_earlier_response_showed():
    fetched: FetchedEnds[str] = FetchedEnds(_Clock())
    fetched.request_created(1, fetched.clock())
    fetched.response(1, {A: 10, B: 5})  # delivers A@0..9 and B@0..4
    assert fetched.caught_up_below(B, 5, 5, A) == -1  # its own response proves nothing
    fetched.request_created(2, fetched.clock())  # the next fetch, created after
    fetched.response(2, {A: 10, B: 7})  # B grew meanwhile
    assert fetched.caught_up_below(B, 5, 7, A) == -1  # B not consumed to that answer yet
    assert fetched.caught_up_below(B, 7, 7, A) == 10  # A's records below 10 may pass
    assert fetched.caught_up_below(A, 10, 10, B) == 5  # and the other way round


def test_a_request_created_before_a_response_arrived_does_not_answer_for_it():
    fetched: FetchedEnds[str] = FetchedEnds(_Clock())
    fetched.request_created(1, fetched.clock())
    fetched.response(1, {A: 3, B: 2})
    fetched.request_created(2, fetched.clock())  # to another broker, before response 3
    fetched.request_created(3, fetched.clock())
    fetched.response(3, {A: 9})  # A@3..8 arrive
    fetched.response(2, {B: 2})  # created before A@3..8 were known: covers A below 3 only
    assert fetched.caught_up_below(B, 2, 2, A) == 3


def test_a_partition_absent_from_a_response_is_not_answered_for():
    fetched: FetchedEnds[str] = FetchedEnds(_Clock())
    fetched.request_created(1, fetched.clock())
    fetched.response(1, {A: 4, B: 1})
    fetched.request_created(2, fetched.clock())
    fetched.response(2, {A: 4})  # an incremental session left B out
    assert fetched.caught_up_below(B, 1, 1, A) == -1


def test_no_fetch_for_the_other_partition_means_nothing_passes():
    fetched: FetchedEnds[str] = FetchedEnds(_Clock())
    for key in (1, 2):
        fetched.request_created(key, fetched.clock())
        fetched.response(key, {A: 4, B: 0})
    assert fetched.caught_up_below(B, 0, 0, A) == 4
    assert fetched.caught_up_below(B, 0, None, A) == -1  # just assigned: no fetch answered


def test_requests_that_never_answer_are_forgotten():
    fetched: FetchedEnds[str] = FetchedEnds(_Clock())
    for key in range(10 * MAX_REQUESTS):
        fetched.request_created(key, fetched.clock())
    assert len(fetched._created) == MAX_REQUESTS
    fetched.response(0, {A: 1, B: 1})  # long forgotten: counted, answers nothing
    assert fetched.responses == 1
    assert fetched.caught_up_below(B, 1, 1, A) == -1


# ---------------------------------------------------------------- the rule against a log
_OPS = st.lists(
    st.sampled_from(["append_a", "append_b", "create_a", "create_b", "create_ab", "read",
                     "receive", "parse"]),
    max_size=40)


@settings(max_examples=3000, deadline=None)
@example(  # a response to B created before A's record was known, received after it was
    ops=["create_b", "read", "append_b", "append_a", "create_a", "read", "receive", "receive",
         "parse", "parse"],
    consume=[0, 0], pick=[0, 0, 1, 0])
@given(ops=_OPS, consume=st.lists(st.integers(0, 50), max_size=80),
       pick=st.lists(st.integers(0, 3), max_size=80))
def test_no_record_passes_before_every_record_appended_before_it_elsewhere(ops, consume, pick):
    """Simulated brokers and client: records are appended to A and B over time; a request for
    A, B or both is created, later read by a broker (the high-water marks of that moment),
    later received, in any order across requests (the partitions' leaders may differ); the
    client parses received responses later
    (the consumer's high-water mark is the last parsed one's) and consumes B up to some offset
    it has parsed. Whatever the interleaving, a record of A below the returned bound was appended
    after every B record not yet consumed."""
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    fetched: FetchedEnds[str] = FetchedEnds(clock)
    appended: dict[str, list[float]] = {A: [], B: []}  # append time of each offset
    created: list[tuple[int, tuple[str, ...]]] = []  # requests not read yet
    read: list[tuple[int, dict[str, int]]] = []  # read by the broker, not received yet
    key = 0
    received: list[dict[str, int]] = []  # received, not parsed yet
    seen_b: int | None = None  # the mark of B in the last parsed response
    consumed_b = 0
    choices, picks = iter(consume), iter(pick)
    for op in ops:
        if op in ("append_a", "append_b"):
            appended[A if op == "append_a" else B].append(clock())
        elif op.startswith("create"):
            key += 1
            fetched.request_created(key, clock())
            created.append((key, {"create_a": (A,), "create_b": (B,)}.get(op, (A, B))))
        elif op == "read" and created:
            k, parts = created.pop(next(picks, 0) % len(created))
            read.append((k, {p: len(appended[p]) for p in parts}))
            clock()
        elif op == "receive" and read:
            k, hws = read.pop(next(picks, 0) % len(read))
            fetched.response(k, hws)
            received.append(hws)
        elif op == "parse" and received:
            seen_b = received.pop(0).get(B, seen_b)
            if seen_b is not None:
                consumed_b = max(consumed_b, min(seen_b, next(choices, seen_b)))
        bound = fetched.caught_up_below(B, consumed_b, seen_b, A)
        for offset in range(min(bound, len(appended[A]))):
            before = [o for o, t in enumerate(appended[B]) if t < appended[A][offset]]
            assert all(o < consumed_b for o in before), (offset, bound, consumed_b)
