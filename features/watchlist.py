"""The watch list a bank receives as CSV (SIMO, the police, other banks): parse it into
:class:`~features.events.WatchEntry` records, each row validated like a Kafka message.

Pure: text in, (entries, rejects) out. ``canhgiac watchlist load FILE`` produces the entries to the
compacted ``watchlist`` topic and reports the rejects.

Columns (a header row is required; order free, extra columns kept in ``extra``): ``bank``,
``account``, ``source``, ``listed_at`` (RFC 3339 with offset), ``reason``, optional
``delisted_at``. An empty cell is an absent value.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from features.events import Rejection, WatchEntry, from_mapping

REQUIRED_COLUMNS = ("bank", "account", "source", "listed_at", "reason")
MAX_ROWS = 1_000_000


@dataclass(frozen=True, slots=True)
class WatchlistFile:
    entries: list[WatchEntry]
    rejects: list[tuple[int, Rejection]]  # (1-based line number, why)


def parse_watchlist_csv(text: str) -> WatchlistFile:
    """Entries of a watch-list CSV and the rejected rows (never raises on bad content). A later
    row for the same bank and account replaces an earlier one, as the compacted topic would."""
    rejects: list[tuple[int, Rejection]] = []
    reader = csv.reader(io.StringIO(text.replace("\x00", "")))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return WatchlistFile([], [(1, Rejection("watchlist", "", f"unreadable header: {exc}"))])
    if header is None:
        return WatchlistFile([], [(1, Rejection("watchlist", "", "empty file: no header row"))])
    names = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        return WatchlistFile([], [(1, Rejection("watchlist", missing[0],
                                                "column missing from the header row"))])
    latest: dict[str, WatchEntry] = {}
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line += 1
            rejects.append((line, Rejection("watchlist", "", f"unreadable CSV row: {exc}")))
            continue
        line += 1
        if line > MAX_ROWS + 1:
            rejects.append((line, Rejection("watchlist", "", f"more than {MAX_ROWS} rows")))
            break
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            rejects.append((line, Rejection(
                "watchlist", "", f"{len(row)} cells, the header has {len(names)}")))
            continue
        record = {k: v.strip() for k, v in zip(names, row, strict=True) if v.strip()}
        event = from_mapping("watchlist", record, ",".join(row).encode("utf-8", "replace"))
        if isinstance(event, Rejection):
            rejects.append((line, event))
        else:
            latest[event.key] = event
    return WatchlistFile(list(latest.values()), rejects)
