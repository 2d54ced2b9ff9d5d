"""Ports: a bad one on the command line is one line and exit 2; a taken metrics port is one
error line and the scorer goes on without /metrics; the metrics server binds loopback."""

from __future__ import annotations

import logging
import socket

import pytest

from canhgiac.cli import main
from canhgiac.settings import Settings
from streaming.metrics import ScorerMetrics


@pytest.mark.parametrize("argv", [["serve", "--port", "99999"], ["serve", "--port", "0"],
                                  ["serve", "--port", "http"], ["demo", "--api-port", "70000"],
                                  ["demo", "--metrics-port", "-1"], ["broker", "--port", "1e3"]])
def test_a_port_outside_1_65535_is_a_one_line_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1-65535" in err, err


def test_a_taken_metrics_port_is_logged_and_not_fatal(caplog):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with caplog.at_level(logging.ERROR):
            assert ScorerMetrics().serve(port) is False
    assert any("not available" in r.getMessage() and "CANHGIAC_METRICS_PORT" in r.getMessage()
               for r in caplog.records)


def test_the_metrics_server_binds_loopback_by_default():
    assert Settings().metrics_host == "127.0.0.1"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics = ScorerMetrics()
    assert metrics.serve(port) is True
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    listening = [line.split()[1] for line in open("/proc/net/tcp").read().splitlines()[1:]
                 if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"]
    assert listening == [f"0100007F:{port:04X}"]  # 127.0.0.1 only, not 0.0.0.0
