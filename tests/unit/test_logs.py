"""canhgiac.logs: a library's logged exception is one line; the service's own keep their
traceback."""

from __future__ import annotations

import logging

import pytest

from canhgiac.logs import configure_logging


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _raised() -> BaseException:
    try:
        raise AttributeError("'NoneType' object has no attribute 'recv'")
    except AttributeError as exc:
        return exc


def test_kafka_pythons_logged_exception_is_one_line_with_the_error(restore_logging, capsys):
    configure_logging("INFO")
    logging.getLogger("kafka.net.transport").error("Error receiving network data closing socket",
                                                   exc_info=_raised())
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert "Error receiving network data" in err and "AttributeError" in err and "recv" in err


def test_the_services_own_exceptions_keep_their_traceback(restore_logging, capsys):
    configure_logging("INFO")
    logging.getLogger("streaming.scorer").error("session failed", exc_info=_raised())
    err = capsys.readouterr().err
    assert "Traceback" in err and "AttributeError" in err


def test_at_debug_a_librarys_traceback_is_kept(restore_logging, capsys):
    configure_logging("DEBUG")
    logging.getLogger("kafka.conn").warning("closed", exc_info=_raised())
    assert "Traceback" in capsys.readouterr().err
