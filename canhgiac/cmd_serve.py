"""`canhgiac serve`: the investigator API (FastAPI under uvicorn)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from canhgiac.cli import port_number
from canhgiac.settings import Settings

HELP = "serve the investigator API and web page"
LOG_LEVEL_ENV = "CANHGIAC_LOG_LEVEL"  # canhgiac.cli's --log-level default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="bind address (default CANHGIAC_API_HOST)")
    parser.add_argument("--port", type=port_number, default=None,
                        help="port, 1-65535 (default CANHGIAC_API_PORT)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes sharing the port (default 1)")
    parser.add_argument("--no-sink", action="store_true",
                        help="do not run the case-store projection here (run `canhgiac sink`; "
                             "default from CANHGIAC_SINK_IN_SERVE)")


def build_app(settings: Settings | None = None) -> Any:
    """The app with its Kafka action publisher and (unless ``CANHGIAC_SINK_IN_SERVE=false``)
    the case-store projection on a background thread, from ``CANHGIAC_*`` (one per worker:
    the workers' projections share the partitions in their consumer group)."""
    from canhgiac import cmd_sink  # noqa: PLC0415 - keeps --help fast
    from serving.actions import KafkaActionPublisher  # noqa: PLC0415
    from serving.app import create_app  # noqa: PLC0415

    settings = settings if settings is not None else Settings()
    publisher = KafkaActionPublisher(settings.kafka_client_config(),
                                     settings.topic("account.actions"), settings.topic("labels"))
    projection = cmd_sink.build(settings) if settings.sink_in_serve else None
    return create_app(settings, action_publisher=publisher, projection=projection)


def build_worker_app() -> Any:
    """``build_app`` in a worker process of ``serve --workers N``: uvicorn starts each worker
    as a fresh interpreter that imports this factory and never runs ``canhgiac.cli.main``, so
    the worker configures its logging here as ``main`` does for the single-process server:
    the key=value format, the level given on the command line (``CANHGIAC_LOG_LEVEL``, set by
    ``run``) and pseudonyms for account and customer ids."""
    from canhgiac.logs import configure_logging  # noqa: PLC0415

    settings = Settings()
    configure_logging(os.environ.get(LOG_LEVEL_ENV, "INFO"), settings.pseudonymiser)
    return build_app(settings)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn  # noqa: PLC0415 - keeps `canhgiac --help` fast

    if args.workers < 1:
        from canhgiac.cli import UsageError  # noqa: PLC0415

        raise UsageError("--workers must be at least 1")
    host, port = args.host or settings.api_host, args.port or settings.api_port
    if args.no_sink:  # build_app reads the settings again (once per worker)
        os.environ["CANHGIAC_SINK_IN_SERVE"] = "false"
    if args.workers == 1:
        app = build_app()
        try:
            uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
        finally:
            app.state.publisher.close()
    else:  # each worker is a new interpreter: it configures its logging from the environment
        os.environ[LOG_LEVEL_ENV] = args.log_level
        uvicorn.run("canhgiac.cmd_serve:build_worker_app", factory=True,
                    workers=args.workers, host=host, port=port, log_config=None,
                    access_log=False)
    return 0
