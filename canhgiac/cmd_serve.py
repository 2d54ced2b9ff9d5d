"""`canhgiac serve`: the investigator API (FastAPI under uvicorn)."""

from __future__ import annotations

import argparse

from canhgiac.settings import Settings

HELP = "serve the investigator API and web page"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="bind address (default CANHGIAC_API_HOST)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default CANHGIAC_API_PORT)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn  # noqa: PLC0415 - keeps `canhgiac --help` fast

    from serving.actions import KafkaActionPublisher  # noqa: PLC0415
    from serving.app import create_app  # noqa: PLC0415

    publisher = KafkaActionPublisher(settings.kafka_client_config(),
                                     settings.topic("account.actions"), settings.topic("labels"))
    app = create_app(settings, action_publisher=publisher)
    try:
        uvicorn.run(app, host=args.host or settings.api_host, port=args.port or settings.api_port,
                    log_config=None, access_log=False)
    finally:
        publisher.close()
    return 0
