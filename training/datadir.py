"""The data directory (DESIGN.md "Simulator output directory"): write a simulation, read any
directory in that layout back as typed events.

Layout: ``payments``, ``logins``, ``accounts``, ``labels`` (the event contracts), an optional
``watchlist`` (the watch-list contract; one entry per bank and account) and optional
``truth`` / ``accounts_truth`` (simulator ground truth), each as ``<name>.parquet`` (timestamps
``timestamp[us, tz=UTC]``) or ``<name>.jsonl`` (one contract JSON object per line). Rows are in
event-time order (labels by ``confirmed_at``).

:func:`read_dir` builds every event with :func:`features.events.from_mapping` (the same
validation as the Kafka path) and raises :class:`DataDirError` naming the file, column and row of
the first contract violation: a missing file or column, an invalid value, a duplicate id, rows
out of time order.
"""

from __future__ import annotations

import gc
import heapq
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.events import (
    ACCOUNT_FIELDS,
    LABEL_FIELDS,
    LOGIN_FIELDS,
    PAYMENT_FIELDS,
    WATCH_FIELDS,
    Account,
    Label,
    Login,
    Payment,
    Rejection,
    WatchEntry,
    decode,
    from_mapping,
)

log = logging.getLogger(__name__)

EVENT_KINDS = ("payments", "logins", "accounts", "labels")
TRUTH_FILES = {"truth": ("event_id", "is_fraud", "typology"),
               "accounts_truth": ("account_id", "role")}
REQUIRED = {
    "payments": ("event_id", "ts", "account_id", "direction", "amount", "counterparty_account",
                 "counterparty_bank", "channel"),
    "logins": ("event_id", "ts", "account_id", "success", "ip", "country", "device_id",
               "channel"),
    "accounts": ("account_id", "customer_id", "type", "opened_at", "kyc_country"),
    "labels": ("label_id", "confirmed_at", "account_id", "label"),
    "watchlist": ("bank", "account", "source", "listed_at", "reason"),
}
OPTIONAL_KINDS = ("watchlist",)  # read when present: an empty watch list otherwise
TIME_COLUMNS = {"payments": ("ts",), "logins": ("ts",), "accounts": ("opened_at", "registered_at"),
                "labels": ("confirmed_at",), "watchlist": ("listed_at", "delisted_at")}
ORDER_COLUMN = {"payments": "ts", "logins": "ts", "labels": "confirmed_at"}
ID_COLUMN = {"payments": "event_id", "logins": "event_id", "accounts": "account_id",
             "labels": "label_id", "watchlist": "key"}  # key: bank/account
KNOWN_FIELDS = {"payments": PAYMENT_FIELDS, "logins": LOGIN_FIELDS, "accounts": ACCOUNT_FIELDS,
                "labels": LABEL_FIELDS, "watchlist": WATCH_FIELDS}
UNIQUE_COLUMNS = frozenset({"event_id", "label_id", "session_id"})
Format = Literal["parquet", "jsonl"]


class DataDirError(ValueError):
    """A data directory breaks the contract; the message names file, column and row."""


@dataclass(frozen=True, slots=True)
class Reject:
    """One row set aside because it breaks the contract (the rest of the file is used)."""

    file: str
    row: int
    column: str
    reason: str


class _HasTables(Protocol):
    def tables(self) -> dict[str, pa.Table]: ...


@dataclass(frozen=True)
class DataDir:
    payments: list[Payment]
    logins: list[Login]
    accounts: list[Account]
    labels: list[Label]
    truth: pd.DataFrame | None = None
    accounts_truth: pd.DataFrame | None = None
    watchlist: list[WatchEntry] = field(default_factory=list)


# ------------------------------------------------------------------------------ writing


def write_dir(result: _HasTables, path: str | Path, fmt: Format = "parquet") -> Path:
    """Write every table of ``result`` (e.g. a ``SimulationResult``) into ``path``."""
    if fmt not in ("parquet", "jsonl"):
        raise ValueError(f"format must be 'parquet' or 'jsonl', got {fmt!r}")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    for stem, table in result.tables().items():
        target = out / f"{stem}.{fmt}"
        if fmt == "parquet":
            pq.write_table(table, target, compression="zstd")
        else:
            _write_jsonl(table, target)
        log.info("table written", extra={"file": str(target), "rows": table.num_rows})
    return out


def _write_jsonl(table: pa.Table, target: Path, batch: int = 100_000) -> None:
    """One JSON object per row, ``None`` omitted, timestamps RFC 3339 in UTC (``Z``)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            utc = table.column(i).cast(pa.timestamp("us", tz="UTC"))
            table = table.set_column(i, f.name, pc.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ"))
    names = table.column_names
    with target.open("wb") as fh:
        for start in range(0, table.num_rows, batch):
            part = table.slice(start, batch)
            lists = [part.column(n).to_pylist() for n in names]
            fh.write(b"".join(
                orjson.dumps({k: v for k, v in zip(names, values, strict=True) if v is not None})
                + b"\n" for values in zip(*lists, strict=True)
            ))


# ------------------------------------------------------------------------------ reading


def read_dir(path: str | Path, rejects: list[Reject] | None = None) -> DataDir:
    """Read a data directory into typed events (see the module docstring).

    ``rejects`` None: the first row that breaks the contract raises :class:`DataDirError`.
    A list: such rows (an invalid value, a duplicate id, a row out of time order) are left out
    and appended to it, and the rest is read; a problem of a whole file (missing, unreadable,
    a missing column, naive timestamps) still raises."""
    base = Path(path)
    if not base.is_dir():
        raise DataDirError(f"{base}: not a directory")
    events = {kind: _read_events(kind, _find(base, kind, required=True), rejects)
              for kind in EVENT_KINDS}
    truth = {name: _read_frame(name, _find(base, name, required=False), cols)
             for name, cols in TRUTH_FILES.items()}
    watch_file = _find(base, "watchlist", required=False)
    watchlist = _read_events("watchlist", watch_file) if watch_file is not None else []
    return DataDir(events["payments"], events["logins"], events["accounts"], events["labels"],
                   truth["truth"], truth["accounts_truth"], watchlist)


def read_events(path: str | Path, kind: str) -> list[Any]:
    """Only one event file of a data directory (``payments``, ``logins``, ``accounts`` or
    ``labels``), with the same checks as :func:`read_dir`."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(EVENT_KINDS)}, got {kind!r}")
    return _read_events(kind, _find(Path(path), kind, required=True))


def from_tables(result: _HasTables) -> DataDir:
    """The :class:`DataDir` of an in-memory result, through the same validation as files."""
    tables = result.tables()
    events = {kind: _events_from_table(kind, tables[kind], f"<{kind}>") for kind in EVENT_KINDS}
    truth = {n: tables[n].to_pandas() if n in tables else None for n in TRUTH_FILES}
    watchlist = (_events_from_table("watchlist", tables["watchlist"], "<watchlist>")
                 if "watchlist" in tables else [])
    return DataDir(events["payments"], events["logins"], events["accounts"], events["labels"],
                   truth["truth"], truth["accounts_truth"], watchlist)


def _find(base: Path, stem: str, required: bool) -> Path | None:
    for ext in ("parquet", "jsonl"):
        candidate = base / f"{stem}.{ext}"
        if candidate.is_file():
            return candidate
    if required:
        raise DataDirError(f"{base / (stem + '.parquet')}: missing file "
                           f"(need {stem}.parquet or {stem}.jsonl)")
    return None


def _read_events(kind: str, file: Path | None, rejects: list[Reject] | None = None) -> list[Any]:
    assert file is not None
    started = time.perf_counter()
    if file.suffix == ".jsonl":
        events = _events_from_jsonl(kind, file, rejects)
    else:
        try:
            table = pq.read_table(file)
        except (OSError, pa.ArrowException) as exc:
            raise DataDirError(f"{file}: not a readable Parquet file: {exc}") from None
        events = _events_from_table(kind, table, str(file), rejects)
    log.info("events read", extra={"file": str(file), "rows": len(events),
                                   "seconds": round(time.perf_counter() - started, 2)})
    return events


def _events_from_table(kind: str, table: pa.Table, where: str,
                       rejects: list[Reject] | None = None) -> list[Any]:
    names = table.column_names
    for column in REQUIRED[kind]:
        if column not in names:
            raise DataDirError(f"{where}: column '{column}' missing (row -)")
    for column in TIME_COLUMNS[kind]:
        if column in names:
            t = table.schema.field(column).type
            if not pa.types.is_timestamp(t) or t.tz is None:
                raise DataDirError(
                    f"{where}: column '{column}' must be timezone-aware timestamps "
                    f"(timestamp[us, tz=UTC]), got {t} (row -)")
    lists = [_pylist(table.column(n), unique=n in UNIQUE_COLUMNS) for n in names]
    plain = set(names) <= KNOWN_FIELDS[kind]  # no extra columns: a null is simply "absent"
    build = from_mapping
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of new objects: generational GC passes would find no garbage
    try:
        if plain:
            out = [build(kind, dict(zip(names, values, strict=True)))
                   for values in zip(*lists, strict=True)]
        else:
            out = [build(kind, {k: v for k, v in zip(names, values, strict=True)
                                if v is not None})
                   for values in zip(*lists, strict=True)]
    finally:
        if gc_was_enabled:
            gc.enable()
    if rejects is None:
        for i, event in enumerate(out):
            if event.__class__ is Rejection:
                column = event.field or "-"
                raise DataDirError(f"{where}: row {i}, column '{column}': {event.reason}")
        _check_table_ids_and_order(kind, table, where)
        return out
    if not any(event.__class__ is Rejection for event in out):
        try:
            _check_table_ids_and_order(kind, table, where)
            return out
        except DataDirError:
            pass  # set the offending rows aside, one by one
    checker = _Checker(kind, where, rejects)
    return [e for i, e in enumerate(out) if checker.check(i, e) is not None]


def _check_table_ids_and_order(kind: str, table: pa.Table, where: str) -> None:
    """Unique ids and non-decreasing event time, checked on whole columns (rows are valid)."""
    id_column = ID_COLUMN[kind]
    if id_column == "key":  # the watch list: one entry per bank and account
        ids = pc.binary_join_element_wise(table.column("bank"), table.column("account"), "/")
    else:
        ids = table.column(id_column)
    if pc.count_distinct(ids).as_py() != len(ids):
        seen: set[str] = set()
        for i, key in enumerate(ids.to_pylist()):
            if key in seen:
                raise DataDirError(f"{where}: row {i}, column '{id_column}': duplicate id '{key}'")
            seen.add(key)
    order = ORDER_COLUMN.get(kind)
    if order is not None and table.num_rows > 1:
        micros = table.column(order).cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        values = micros.to_numpy()
        back = np.flatnonzero(values[1:] < values[:-1])
        if back.size:
            raise DataDirError(f"{where}: row {int(back[0]) + 1}, column '{order}': out of time "
                               f"order (earlier than the previous row)")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _pylist(column: pa.ChunkedArray, unique: bool = False) -> list[Any]:
    """Python values of a column; timestamps become aware UTC datetimes (fast path); repeated
    strings (accounts, channels, countries…) share one ``str`` object each (memory)."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        if unique:
            return column.to_pylist()
        encoded = pc.dictionary_encode(column.combine_chunks())
        values = [*encoded.dictionary.to_pylist(), None]  # index -1 → None (null)
        indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        return [values[i] for i in indices.tolist()]
    if not pa.types.is_timestamp(column.type):
        return column.to_pylist()
    micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
    epoch, delta = _EPOCH, timedelta
    return [None if x is None else epoch + delta(microseconds=x) for x in micros]


def _events_from_jsonl(kind: str, file: Path, rejects: list[Reject] | None = None) -> list[Any]:
    checker = _Checker(kind, str(file), rejects)
    out = []
    with file.open("rb") as fh:
        row = 0
        for line in fh:
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            event = checker.check(row, decode(kind, raw))
            if event is not None:
                out.append(event)
            row += 1
    return out


class _Checker:
    """Per-row contract checks beyond one event: unique ids and time order. Without a
    ``rejects`` list the first failure raises; with one, the row is appended to it and
    :meth:`check` returns None (a duplicate id keeps its first row; a row earlier than the
    previous kept row is out of order)."""

    def __init__(self, kind: str, where: str, rejects: list[Reject] | None = None) -> None:
        self.kind, self.where = kind, where
        self.rejects = rejects
        self.seen: set[str] = set()
        self.prev = float("-inf")
        self.order = ORDER_COLUMN.get(kind)
        self.id_column = ID_COLUMN[kind]

    def check(self, row: int, event: Any) -> Any:
        if isinstance(event, Rejection):
            return self._fail(row, event.field or "-", event.reason)
        key = getattr(event, self.id_column, None)
        if key is None or key in self.seen:
            return self._fail(row, self.id_column, f"duplicate id '{key}'")
        if self.order is not None:
            t = event.t
            if t < self.prev:
                return self._fail(row, self.order,
                                  "out of time order (earlier than the previous row)")
            self.prev = t
        self.seen.add(key)
        return event

    def _fail(self, row: int, column: str, reason: str) -> None:
        if self.rejects is None:
            raise DataDirError(f"{self.where}: row {row}, column '{column}': {reason}")
        self.rejects.append(Reject(self.where, row, column, reason))


def _read_frame(name: str, file: Path | None, columns: tuple[str, ...]) -> pd.DataFrame | None:
    if file is None:
        return None
    if file.suffix == ".jsonl":
        with file.open("rb") as fh:
            frame = pd.DataFrame.from_records(
                [orjson.loads(line) for line in fh if line.strip()], columns=list(columns))
    else:
        frame = pq.read_table(file).to_pandas()
    for column in columns:
        if column not in frame.columns:
            raise DataDirError(f"{file}: column '{column}' missing (row -)")
    return frame


# ------------------------------------------------------------------------------ ordering

_KIND_RANK = {Login: 0, Payment: 1, Label: 2}


def ordered_events(
    data: DataDir, start: datetime | None = None, end: datetime | None = None,
) -> Iterator[Account | Login | Payment | Label]:
    """Accounts first, then logins, payments and labels merged in event time (labels at
    ``confirmed_at``; a login before a payment at the same instant), limited to
    ``start <= t < end`` when given."""
    lo = start.timestamp() if start is not None else float("-inf")
    hi = end.timestamp() if end is not None else float("inf")
    yield from data.accounts
    streams: list[Iterable[Login | Payment | Label]] = [data.logins, data.payments, data.labels]

    def keyed(rank: int, events: Iterable[Login | Payment | Label]) -> Iterator[tuple]:
        for i, ev in enumerate(events):
            if lo <= ev.t < hi:
                yield (ev.t, rank, i, ev)

    merged = heapq.merge(*(keyed(r, s) for r, s in enumerate(streams)))
    for _t, _rank, _i, ev in merged:
        yield ev
