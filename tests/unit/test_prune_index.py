"""The device processor's hourly sweep visits only the keys its PruneIndex files as due, and
must leave the table exactly as a prune of every key would (streaming.devices)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from features.devices import DEVICE, IP, PAYEE, DeviceLinks, prune_before
from streaming.devices import PruneIndex, sweep_partition

T0 = 1_772_330_400.0  # 2026-03-01T02:00:00Z, on an hour
HOUR, DAY = 3600.0, 86400.0
KEYS = [DEVICE + "p1", DEVICE + "p2", IP + "10.0.0.1", PAYEE + "970436:1", PAYEE + "970436:2"]
ACCOUNTS = [f"A{i}" for i in range(9)]  # more than a payee day keeps (its cap drops some)

OPS = st.lists(st.one_of(
    # a sighting, up to 120 days on, at any second
    st.tuples(st.just("see"), st.sampled_from(KEYS), st.sampled_from(ACCOUNTS),
              st.floats(0, 120 * DAY).map(lambda s: T0 + round(s))),
    # the publish step's prune of one changed key at the partition's event time
    st.tuples(st.just("publish"), st.sampled_from(KEYS)),
    # the event time moves on (by up to 20 days), then a sweep
    st.tuples(st.just("sweep"), st.floats(0, 20 * DAY)),
), max_size=120)


def snapshot(links: DeviceLinks) -> dict[str, dict[str, list[float]]]:
    return {k: {a: list(ts) for a, ts in (links.get(k) or {}).items()} for k in links.keys()}


def full_sweep(links: DeviceLinks, mark: float) -> list[str]:
    return [key for key in links.keys() if links.prune(key, prune_before(key, mark))]


@settings(max_examples=400, deadline=None)
@given(OPS, st.booleans())
def test_the_indexed_sweep_equals_a_prune_of_every_key(ops, restored):
    every, indexed = DeviceLinks(), DeviceLinks()
    index = PruneIndex()
    mark = T0
    for i, op in enumerate(ops):
        if op[0] == "see":
            _, key, account, t = op
            changed = every.observe(key, account, t)
            assert indexed.observe(key, account, t) == changed
            if changed:  # as the processor does
                index.note(key, t)
            mark = max(mark, t)
        elif op[0] == "publish":
            every.prune(op[1], prune_before(op[1], mark))
            indexed.prune(op[1], prune_before(op[1], mark))
        else:
            mark += op[1]
            if restored and i % 7 == 3:  # a restore files the table it read afresh
                index = PruneIndex.of(indexed)
            assert sorted(sweep_partition(indexed, index, mark)) == sorted(full_sweep(every, mark))
        assert snapshot(indexed) == snapshot(every)
    assert len(index) >= len(indexed)  # every key the table holds is filed


def test_a_sweep_visits_only_the_keys_holding_something_old():
    """100 keys seen long ago and 1,000 seen lately: a sweep takes the 100, and the next one
    (an hour on, nothing new to drop) takes none."""
    links, index = DeviceLinks(), PruneIndex()
    for i in range(1_100):
        t = T0 + (0 if i < 100 else 20 * DAY) + i
        links.observe(DEVICE + f"d{i}", "A", t)
        index.note(DEVICE + f"d{i}", t)
    mark = T0 + 21 * DAY
    visited = index.take(mark)
    assert sorted(visited) == sorted(DEVICE + f"d{i}" for i in range(100))
    for key in visited:
        links.prune(key, prune_before(key, mark))
        index.refile(key, links.get(key))
    assert len(links) == 1_000 and len(index) == 1_000
    assert index.take(mark + HOUR) == []
