"""Where a partition without a usable checkpoint starts, on the real broker: the group's committed
offsets, else ``start_from=latest`` with the state warmed by the look-back; a checkpoint of
another feature version is ignored and the state rebuilt from the retained input. In every case
the history before the start point gets no output (a first start must not re-alert on months of
payments), and every payment after it scores exactly as an uninterrupted scorer's."""

from __future__ import annotations

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from canhgiac.cmd_score import DirectoryModelProvider
from features.engine import FeatureEngine
from features.events import Payment
from features.replay import event_order_key
from streaming.checkpoint import CHECKPOINT_TOPIC, Checkpoint, CheckpointStore
from streaming.scorer import Scorer
from tests.conftest import FAST_GROUP
from tests.integration.test_scorer import _Running, _settings
from tests.integration.test_scorer_faults import _wait
from tests.integration.test_scorer_support import (
    PARTITIONS,
    OutputReader,
    create_topics,
    end_offsets,
    expected_scores,
    make_bank,
    produce_events,
    produce_paced,
    produce_reference,
    shared_models,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    (m, d), _ = shared_models(tmp_path_factory.mktemp("models"))
    return m, d


def _commit(broker, group: str, offsets: dict[TopicPartition, int]) -> None:
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group,
                      enable_auto_commit=False, **FAST_GROUP)
    c.assign(list(offsets))
    c.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()})
    c.close(autocommit=False)


def _old_version_checkpoints(broker, prefix: str, group: str,
                             offsets: dict[TopicPartition, int]) -> None:
    """What a scorer of an older FEATURE_VERSION left: a usable-looking checkpoint per
    partition, at the end of the history, whose snapshot the engine refuses."""
    topic = prefix + CHECKPOINT_TOPIC
    create_topics(broker.bootstrap, prefix)  # idempotent; the checkpoint topic too
    from streaming.topics import ensure_topics

    ensure_topics(broker.bootstrap, [topic], partitions=PARTITIONS, prefix=prefix)
    snap = FeatureEngine().snapshot()  # format 3: magic, header length, header, frames
    n = int.from_bytes(snap[4:8], "big")
    header = orjson.loads(snap[8:8 + n])
    header["feature_version"] = "an-older-layout"
    body = orjson.dumps(header)
    state = snap[:4] + len(body).to_bytes(4, "big") + body + snap[8 + n:]
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    store = CheckpointStore(topic, producer, {"bootstrap_servers": broker.bootstrap}, group)
    store.write([Checkpoint.new(
        p, state, {"payments": offsets[TopicPartition(prefix + "payments", p)],
                   "logins": offsets[TopicPartition(prefix + "logins", p)]}, "old",
        feature_version="an-older-layout") for p in range(PARTITIONS)])
    store.close()
    producer.close()


@pytest.mark.parametrize("how", ["latest", "group offset", "unusable checkpoint"])
def test_history_before_the_start_point_warms_the_state_without_outputs(
        broker, topic_prefix, model, tmp_path, how):
    m, model_dir = model
    data = make_bank(n_accounts=120, n_payments=1500, seed=5, prefix="W")
    expected = expected_scores(data, m)
    create_topics(broker.bootstrap, topic_prefix)
    produce_reference(broker.bootstrap, topic_prefix, data)
    events = sorted(data.events(), key=event_order_key)
    cut = len(events) * 2 // 3
    history, live = events[:cut], events[cut:]
    produce_events(broker.bootstrap, topic_prefix, history)
    group = f"{topic_prefix}g"
    tps = [TopicPartition(topic_prefix + k, p) for k in ("payments", "logins")
           for p in range(PARTITIONS)]
    ends = {tp: end_offsets(broker.bootstrap, tp.topic)[tp.partition] for tp in tps}
    start_from = "latest"
    if how == "group offset":
        _commit(broker, group, ends)
        start_from = "earliest"  # the committed offsets win over it
    elif how == "unusable checkpoint":
        _old_version_checkpoints(broker, topic_prefix, group, ends)
        start_from = "earliest"  # the unusable checkpoint's offsets win over it
    scorer = Scorer(_settings(broker, topic_prefix, start_from=start_from),
                    DirectoryModelProvider(model_dir))
    reader = OutputReader(broker.bootstrap, topic_prefix + "payments.scored")
    running = _Running(scorer)
    try:
        reg = scorer.metrics.registry
        _wait(lambda: reg.get_sample_value("canhgiac_scorer_partitions") == PARTITIONS, 40,
              "the partitions to be assigned")
        produce_paced(broker.bootstrap, topic_prefix, live)
        live_ids = {e.event_id for e in live if isinstance(e, Payment)}
        reader.wait_for(len(live_ids), timeout_s=60)
        reader.read(timeout_ms=1000)
    finally:
        running.stop()
        reader.close()
    assert set(reader.last) == live_ids  # nothing of the history was emitted
    assert {k: v["score"] for k, v in reader.last.items()} == {
        k: expected[k] for k in live_ids}  # ... but it is in the state
    late = sorted(k for k, v in reader.last.items() if v["late"])
    assert not late, f"{len(late)} live payments scored late, e.g. {late[:5]}"
    if how == "unusable checkpoint":
        assert reg.get_sample_value("canhgiac_scorer_checkpoints_ignored_total") == PARTITIONS
