"""Structured (key=value) logging for every process of the service."""

from __future__ import annotations

import logging
import sys

from serving.logsafe import escape, field

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    """``time level logger message key=value ...`` with the ``extra=`` fields appended.

    The message and every value are escaped (:mod:`serving.logsafe`): a newline or other
    control character in data cannot start a forged log line; only a traceback spans lines."""

    def format(self, record: logging.LogRecord) -> str:
        record.msg, record.args = escape(record.getMessage()), None
        base = super().format(record)
        fields = {k: v for k, v in vars(record).items() if k not in _STD}
        if not fields:
            return base
        return base + " " + " ".join(f"{escape(k)}={field(v)}" for k, v in fields.items())


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kafka", "urllib3", "alembic", "mlflow", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
