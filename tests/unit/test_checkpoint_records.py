"""Checkpoint records as a restoring scorer meets them: whatever bytes sit in the checkpoint
topic (another writer, a corrupt record, an older layout), ``parse_manifest`` returns a manifest
that :meth:`Checkpoint.from_manifest` can load, or None; it never raises."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.checkpoint import Checkpoint, manifest_key, parse_manifest

GOOD = {"partition": 3, "id": "abc", "chunks": 1, "chunk_offsets": [7], "size": 4,
        "payments_offset": 10, "logins_offset": 11, "emit_from": None,
        "feature_version": "4", "model_version": "m1", "created_at": "2026-11-30T00:00:00Z"}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


def _loads_or_none(key: bytes | None, value: bytes | None) -> None:
    m = parse_manifest(key, value, "g")
    if m is not None:
        c = Checkpoint.from_manifest(m, b"")
        assert c.partition == m["partition"] and isinstance(c.ckpt_id, str)
        assert all(isinstance(o, int) and o >= 0 for o in m["chunk_offsets"])


def test_a_good_manifest_round_trips():
    m = parse_manifest(manifest_key("g", 3), orjson.dumps(GOOD), "g")
    assert m == GOOD
    assert Checkpoint.from_manifest(m, b"data").payments_offset == 10


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | st.none(), st.binary(max_size=256) | st.none())
def test_arbitrary_bytes_never_raise(key, value):
    _loads_or_none(key, value)
    _loads_or_none(manifest_key("g", 3), value)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(GOOD)), json_values, st.booleans())
def test_a_manifest_with_one_field_changed_or_missing_loads_or_is_refused(name, value, drop):
    doc = dict(GOOD)
    if drop:
        doc.pop(name)
    else:
        doc[name] = value
    _loads_or_none(manifest_key("g", 3), orjson.dumps(doc))


def test_fields_a_restore_would_trip_on_are_refused():
    for bad in ({"created_at": None}, {"chunk_offsets": [-1]}, {"chunk_offsets": [True]},
                {"payments_offset": True}, {"model_version": 5}, {"feature_version": []}):
        doc = {**GOOD, **bad}
        assert parse_manifest(manifest_key("g", 3), orjson.dumps(doc), "g") is None, bad
    no_time = {k: v for k, v in GOOD.items() if k != "created_at"}
    assert parse_manifest(manifest_key("g", 3), orjson.dumps(no_time), "g") is None
