"""Structured (key=value) logging for every process of the service."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from urllib.parse import unquote

from models.pseudonym import Pseudonymiser
from serving.logsafe import escape, field

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_STD.add("color_message")  # uvicorn's copy of the message with terminal colour codes
# fields that hold an account or customer id: written as their pseudonyms (models.pseudonym)
ID_FIELDS = frozenset({"account_id", "account", "customer_id", "counterparty_account",
                       "account_ids"})
# a request path naming an account: /v1/accounts/<id>[/...] (not the ranked list)
_ACCOUNT_PATH = re.compile(r"^(/(?:ui/)?(?:v1/)?accounts/)(?!high-risk(?:/|$))([^/?#]+)")


class KeyValueFormatter(logging.Formatter):
    """``time level logger message key=value ...`` with the ``extra=`` fields appended.

    The message and every value are escaped (:mod:`serving.logsafe`): a newline or other
    control character in data cannot start a forged log line; only a traceback spans lines.
    With a pseudonymiser, the values of :data:`ID_FIELDS` and the account id in a ``path``
    field are written as pseudonyms (the raw ids never reach the log)."""

    def __init__(self, fmt: str | None = None,
                 pseudonymiser: Callable[[], Pseudonymiser] | None = None) -> None:
        super().__init__(fmt)
        self._make = pseudonymiser
        self._p: Pseudonymiser | None = None

    def _pseudonym(self, value: object) -> str:
        if self._p is None:
            assert self._make is not None
            self._p = self._make()  # the key file only when a line names an account
        if isinstance(value, list | tuple | set | frozenset):
            return ",".join(self._p(v) for v in value)
        return self._p(value)

    def _value(self, key: str, value: object) -> object:
        if self._make is None or value is None:
            return value
        if key in ID_FIELDS:
            return self._pseudonym(value)
        if key == "path" and isinstance(value, str):
            m = _ACCOUNT_PATH.match(value)
            if m:
                return m.group(1) + self._pseudonym(unquote(m.group(2))) + value[m.end():]
        return value

    def format(self, record: logging.LogRecord) -> str:
        record.msg, record.args = escape(record.getMessage()), None
        base = super().format(record)
        fields = {k: v for k, v in vars(record).items() if k not in _STD}
        if not fields:
            return base
        return base + " " + " ".join(f"{escape(k)}={field(self._value(k, v))}"
                                     for k, v in fields.items())


# libraries whose logged exceptions are their own transient network trouble (kafka-python logs
# a connection closed under a read at ERROR with its traceback): one line, the exception in
# ``error=``; the traceback only at DEBUG
ONE_LINE_LIBRARIES = ("kafka",)


class LibraryTracebacks(logging.Filter):
    """A library's logged exception as one line (see :data:`ONE_LINE_LIBRARIES`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.exc_info and record.exc_info[1] is not None
                and record.name.split(".", 1)[0] in ONE_LINE_LIBRARIES
                and logging.getLogger().getEffectiveLevel() > logging.DEBUG):
            record.error = repr(record.exc_info[1])
            record.exc_info, record.exc_text = None, None
        return True


def configure_logging(level: str = "INFO",
                      pseudonymiser: Callable[[], Pseudonymiser] | None = None) -> None:
    """``pseudonymiser``: makes the deployment's pseudonymiser (``Settings.pseudonymiser``),
    called on the first line that names an account."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           pseudonymiser))
    handler.addFilter(LibraryTracebacks())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kafka", "urllib3", "alembic", "mlflow", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
