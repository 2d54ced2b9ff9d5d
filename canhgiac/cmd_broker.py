"""`canhgiac broker`: run the bundled Kafka-protocol test broker (Tansu) in the foreground."""

from __future__ import annotations

import argparse
import signal
import time

from canhgiac.cli import port_number
from canhgiac.settings import Settings

HELP = "start the bundled test broker (Tansu, memory storage) until Ctrl-C"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port_number, default=9092)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streaming.broker import Broker  # noqa: PLC0415

    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with Broker(host=args.host, port=args.port) as broker:
        print(f"broker listening on {broker.bootstrap}; "
              f"export CANHGIAC_KAFKA_BOOTSTRAP={broker.bootstrap}", flush=True)
        while not stop and broker.proc is not None and broker.proc.poll() is None:
            time.sleep(0.2)
    return 0
