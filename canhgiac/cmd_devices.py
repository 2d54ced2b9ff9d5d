"""`canhgiac devices`: the device processor alone (``streaming.devices``); runs until
SIGTERM/SIGINT, then commits what it merged and exits 0.

It merges the device / IP sightings every scorer publishes to ``device.sightings`` into the
compacted ``device.links`` table that every scorer reads. Several instances share the
partitions (consumer group ``<CANHGIAC_GROUP_ID>.devices``). ``canhgiac score`` runs the same
processor on a thread unless ``CANHGIAC_DEVICES_IN_SCORE=false``.
"""

from __future__ import annotations

import argparse
import logging
import signal

from canhgiac.settings import Settings

HELP = "merge the scorers' device/IP sightings into the shared device table (until SIGTERM)"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options: everything comes from the settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streaming.devices import DEVICE_TOPICS, processor_for  # noqa: PLC0415
    from streaming.topics import ensure_topics_with  # noqa: PLC0415

    try:
        ensure_topics_with(settings.kafka_client_config(),
                           [settings.topic(t) for t in (*DEVICE_TOPICS, "payments.dlq")],
                           partitions=settings.topic_partitions,
                           replication=settings.topic_replication, prefix=settings.topic_prefix)
    except Exception as exc:  # noqa: BLE001 - the broker may come later; the processor retries
        log.warning("device topics not checked", extra={"error": repr(exc)})
    processor = processor_for(settings)

    def _stop(signum: int, _frame: object) -> None:
        log.info("stop requested", extra={"signal": signum})
        processor.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("device processor starting", extra={
        "bootstrap": settings.kafka_bootstrap, "topic_prefix": settings.topic_prefix,
        "group_id": processor.group_id})
    code = processor.run()
    log.info("device processor stopped", extra={
        "merged": processor.merged, "published": processor.published,
        "rejected": processor.rejected})
    return code
