"""streaming.fetch_hooks on the installed kafka-python and a real broker: every fetch response is
matched to its request, and the responses release records a fetch after they arrived."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from streaming.ends import FetchedEnds
from streaming.fetch_hooks import watch_fetches


def test_fetch_responses_answer_for_the_records_of_earlier_ones(broker, topic_prefix):
    a, b = f"{topic_prefix}a", f"{topic_prefix}b"
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(a, 1, 1), NewTopic(b, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(5):
        producer.send(b, b"login %d" % i)
    for i in range(7):
        producer.send(a, b"payment %d" % i)
    producer.flush()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, fetch_max_wait_ms=100,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    fetched: FetchedEnds[TopicPartition] = FetchedEnds()
    assert watch_fetches(consumer, fetched)  # this kafka-python still has both methods
    ta, tb = TopicPartition(a, 0), TopicPartition(b, 0)
    consumer.assign([ta, tb])
    consumed = {ta: 0, tb: 0}
    bound = -1
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline and bound < 7:
            for tp, records in consumer.poll(timeout_ms=200).items():
                consumed[tp] = records[-1].offset + 1
            bound = fetched.caught_up_below(tb, consumed[tb], consumer.highwater(tb), ta)
        assert bound == 7  # every payment may pass once the logins are consumed to 5
        assert consumed[tb] == 5
        assert fetched.responses >= 2
        assert not fetched._created or len(fetched._created) <= 2  # answered ones are dropped
        # with a login still unread, nothing of a later payment passes on that answer
        producer.send(b, b"login 5")
        producer.flush()
        producer.send(a, b"payment 7")
        producer.flush()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and consumed[ta] < 8:
            for tp, records in consumer.poll(timeout_ms=200).items():
                if tp == ta:
                    consumed[ta] = records[-1].offset + 1
                    # pretend the login is not consumed: payment 7 must not pass
            assert fetched.caught_up_below(tb, 5, consumer.highwater(tb), ta) <= 7
        assert consumed[ta] == 8
    finally:
        consumer.close()
        producer.close()
