"""`canhgiac sink [--once]`: the case-store projection alone (``serving.projection``).

Without ``--once`` it follows the topics in its consumer group until SIGTERM/SIGINT (several
sinks share the partitions); with ``--once`` it catches up to the end offsets read at start,
prints one summary line and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

from canhgiac.settings import Settings

HELP = "write the scored payments, logins and accounts from Kafka into the case store"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true",
                        help="catch up to the topics' end offsets (read at start) and exit 0")


def ensure_topics(settings: Settings) -> None:
    """The topics the projection reads or writes (created if missing, like the scorer does)."""
    from canhgiac.model_info import ensure_model_info_topic  # noqa: PLC0415
    from streaming.topics import ensure_topics_with  # noqa: PLC0415

    ensure_topics_with(settings.kafka_client_config(),
                       [settings.topic(t) for t in ("payments.scored", "logins", "accounts",
                                                    "payments.dlq")],
                       partitions=settings.topic_partitions,
                       replication=settings.topic_replication, prefix=settings.topic_prefix)
    ensure_model_info_topic(settings)


def build(settings: Settings, metrics: Any = None, status: Any = None) -> Any:
    """A projection with its own store connection (shorter lock wait, retried with backoff)."""
    from serving.projection import Projection  # noqa: PLC0415
    from serving.store import CaseStore  # noqa: PLC0415

    store = CaseStore(settings.store_url, busy_timeout_ms=settings.sink_busy_timeout_ms)
    return Projection(settings, store, metrics=metrics, status=status,
                      prepare=lambda: ensure_topics(settings))


def _serve_metrics(settings: Settings, registry: Any) -> None:
    if not settings.sink_metrics_port:
        return
    from prometheus_client import start_http_server  # noqa: PLC0415

    try:
        start_http_server(settings.sink_metrics_port, addr="127.0.0.1", registry=registry)
    except OSError as exc:
        log.warning("metrics port unavailable; the sink runs without /metrics", extra={
            "port": settings.sink_metrics_port, "error": str(exc)})


def _safe(url: str) -> str:
    """The store URL without its password (it goes to a terminal or a log)."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL: say nothing of it
        return "(unparseable URL)"


def run(args: argparse.Namespace, settings: Settings) -> int:
    from serving.projection import Stopped  # noqa: PLC0415

    try:
        projection = build(settings)
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        print(f"canhgiac sink: error: cannot open the case store {_safe(settings.store_url)}: "
              f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}", file=sys.stderr)
        return 1

    def _stop(signum: int, _frame: object) -> None:
        log.info("stop requested", extra={"signal": signum})
        projection.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        if args.once:
            try:
                result = projection.catch_up()
            except Stopped:
                return 130
            except Exception as exc:  # noqa: BLE001 - one line, not a traceback
                print(f"canhgiac sink: error: {type(exc).__name__}: {exc} (Kafka at "
                      f"{settings.kafka_bootstrap}, store {_safe(settings.store_url)})",
                      file=sys.stderr)
                return 1
            print(f"caught up: {result.records} records read, {result.written} written, "
                  f"{result.dead_letters} dead-lettered in {result.seconds:.2f}s")
            return 0
        _serve_metrics(settings, projection.metrics.registry)
        log.info("case-store projection starting", extra={
            "bootstrap": settings.kafka_bootstrap, "group_id": settings.sink_group_id})
        projection.run_forever()
        return 0
    finally:
        projection.store.close()
