"""Wire :class:`streaming.ends.FetchedEnds` into kafka-python's fetcher.

kafka-python has no public hook for "a fetch request is created" or "a fetch response arrived
with these high-water marks" (it keeps only the latest mark per partition, with no way to tell
which response set it). Two private methods of ``KafkaConsumer._fetcher`` are wrapped on the
instance, both called on the client's network thread:

* ``_create_fetch_requests()`` returns ``{node: (request, fetch_offsets)}``; the wrapper stamps
  the time *before* creating them and remembers it under ``id(fetch_offsets)``;
* ``_handle_fetch_response(node_id, fetch_offsets, send_time, response)`` gets that same
  ``fetch_offsets`` dict back; the wrapper hands the response's high-water marks over before
  calling the original.

``send_time`` itself is taken after the request was handed to the network layer, so it is not
an upper bound on when the broker read the marks; the stamp before creation is.

Written against kafka-python 3.0.12; ``tests/integration/test_fetch_hooks.py`` checks the
installed one. If another version lacks either method, :func:`watch_fetches` says so once and
returns False: the held payments then wait for the ListOffsets answers of
:class:`streaming.ends.EndOffsets` alone, which is slower but just as correct.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from streaming.ends import FetchedEnds

log = logging.getLogger(__name__)


def watch_fetches(consumer: KafkaConsumer, fetched: FetchedEnds[TopicPartition]) -> bool:
    """Report ``consumer``'s fetch requests and responses to ``fetched``; False if this
    kafka-python has no such methods (nothing is changed then)."""
    fetcher = getattr(consumer, "_fetcher", None)
    create = getattr(fetcher, "_create_fetch_requests", None)
    handle = getattr(fetcher, "_handle_fetch_response", None)
    if fetcher is None or not callable(create) or not callable(handle):
        log.warning("this kafka-python has no fetch hooks: held payments wait for the "
                    "log-end offset answers only (slower, equally correct)")
        return False

    def create_fetch_requests() -> Any:
        before = fetched.clock()
        requests = create()
        for _request, fetch_offsets in requests.values():
            fetched.request_created(id(fetch_offsets), before)
        return requests

    def handle_fetch_response(node_id: Any, fetch_offsets: Any, send_time: Any,
                              response: Any) -> Any:
        try:
            fetched.response(id(fetch_offsets), _high_water(response))
        except Exception:  # never break the client's network thread over a stamp
            log.exception("could not read a fetch response's high-water marks")
        return handle(node_id, fetch_offsets, send_time, response)

    fetcher._create_fetch_requests = create_fetch_requests
    fetcher._handle_fetch_response = handle_fetch_response
    return True


def _high_water(response: Any) -> dict[TopicPartition, int]:
    """Each partition's high-water mark in a fetch response (partitions with an error, or
    without a mark, are left out: they answer nothing)."""
    out: dict[TopicPartition, int] = {}
    for topic_data in response.responses:
        topic = topic_data.topic
        for data in topic_data.partitions:
            if data.error_code == 0 and data.high_watermark >= 0:
                out[TopicPartition(topic, data.partition_index)] = data.high_watermark
    return out
