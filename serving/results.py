"""The periodic results report (the provincial instruction asks for results every 6 and 12
months): per month and typology, accounts detected, cases opened, freezes requested / approved /
released, accounts handed to the police and money stopped; as rows, XLSX and PDF.

Definitions (also printed in both files):

* *accounts detected*: distinct accounts with a payment scored at or above the review threshold
  in the month (event time);
* *cases opened*, *freezes requested / approved / released*: case decisions made in the month
  (``open``, ``freeze_requested``, ``freeze_requested → frozen``, ``released``);
* *handed to police*: cases closed or released in the month with a confirmed fraud or mule
  outcome (the accounts of the item-9a report);
* *money stopped*: the amount of payments the scorer held (decision ``hold``) in the month.

Months and typologies are those of Asia/Ho_Chi_Minh and of the account's current typology.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from serving import tables as T

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
# the bounds of a report's period: an instant out of them has no date in UTC or in
# Asia/Ho_Chi_Minh that ``datetime`` can write (year 0 or 10000)
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)
MAX_SPAN_DAYS = 400
FONT_DIR = Path(__file__).parent / "static" / "vendor" / "dejavu"
CONFIRMED = ("confirmed_fraud", "confirmed_mule")
DEFINITIONS = [
    "Accounts detected: distinct accounts with a payment scored at or above the review "
    "threshold in the month.",
    "Cases opened, freezes requested / approved / released: case decisions made in the month.",
    "Handed to police: cases closed or released with a confirmed fraud or mule outcome.",
    "Money stopped: amount (VND) of payments the scorer held (decision 'hold').",
    "Months are in Asia/Ho_Chi_Minh time; typology is the account's current one.",
]


@dataclass(frozen=True, slots=True)
class ResultRow:
    month: str  # YYYY-MM (Asia/Ho_Chi_Minh)
    typology: str
    accounts_detected: int = 0
    cases_opened: int = 0
    freezes_requested: int = 0
    freezes_approved: int = 0
    freezes_released: int = 0
    handed_to_police: int = 0
    money_stopped_vnd: float = 0.0


COLUMNS = [f.name for f in fields(ResultRow)]
COUNTS = COLUMNS[2:]
HEADINGS = ["Month", "Typology", "Accounts detected", "Cases opened", "Freezes requested",
            "Freezes approved", "Freezes released", "Handed to police", "Money stopped (VND)"]


@dataclass(frozen=True, slots=True)
class Results:
    t_from: float
    t_to: float
    review_threshold: float
    rows: list[ResultRow]

    def total(self) -> ResultRow:
        sums = {c: sum(getattr(r, c) for r in self.rows) for c in COUNTS}
        return ResultRow("total", "all", **sums)

    def period(self) -> str:
        f = datetime.fromtimestamp(self.t_from, TZ).strftime("%Y-%m-%d %H:%M")
        t = datetime.fromtimestamp(self.t_to, TZ).strftime("%Y-%m-%d %H:%M")
        return f"{f} – {t} (Asia/Ho_Chi_Minh)"


def check_period(t_from: datetime, t_to: datetime, names: tuple[str, str] = ("'from'", "'to'"),
                 max_span_days: int | None = MAX_SPAN_DAYS) -> tuple[float, float]:
    """The period ``[t_from, t_to)`` as epoch seconds, for :func:`compute`; ValueError with a
    message naming the parameter (``names``: how the caller calls them, e.g. ``"--from"``) if
    a bound has no timezone offset, lies outside 1970..9000 (UTC), or the period is empty or
    longer than ``max_span_days`` (None: no limit). Check before any query."""
    f, t = names
    for value, name in ((t_from, f), (t_to, t)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name}: needs a timezone offset (Z or +07:00)")
        if not EARLIEST <= value <= LATEST:
            raise ValueError(f"{name}: must be between 1970 and 9000 (UTC): from "
                             "1970-01-01T00:00:00Z (1970-01-01T07:00:00+07:00; as a whole day "
                             "in Vietnam, 1970-01-02 or later) to 9000-01-01T00:00:00Z")
    if t_to <= t_from:
        raise ValueError(f"{t} must be after {f}")
    if max_span_days is not None and t_to - t_from > timedelta(days=max_span_days):
        raise ValueError(f"at most {max_span_days} days per report")
    return t_from.timestamp(), t_to.timestamp()


def _month(t: float) -> str:
    return datetime.fromtimestamp(t, TZ).strftime("%Y-%m")


def compute(conn: Connection, t_from: float, t_to: float, review: float) -> Results:
    s, r, e = T.scored, T.account_risk, T.case_events
    typ = {row.account_id: row.typology for row in conn.execute(
        select(r.c.account_id, r.c.typology))}
    cells: dict[tuple[str, str], dict[str, Any]] = {}

    def cell(t: float, account_id: str) -> dict[str, Any]:
        key = (_month(t), typ.get(account_id, "unusual_activity"))
        return cells.setdefault(key, {"detected": set(), **{k: 0 for k in COUNTS[1:]}})

    in_period = (s.c.event_t >= t_from) & (s.c.event_t < t_to)
    for row in conn.execute(select(s.c.account_id, s.c.event_t, s.c.score, s.c.decision,
                                   s.c.amount).where(in_period, s.c.score >= review)):
        cl = cell(row.event_t, row.account_id)
        cl["detected"].add(row.account_id)
        if row.decision == "hold":
            cl["money_stopped_vnd"] += float(row.amount)
    # held payments below the review threshold cannot exist (hold >= review), but an operator
    # override could make them: count every held payment
    for row in conn.execute(select(s.c.account_id, s.c.event_t, s.c.amount).where(
            in_period, s.c.decision == "hold", s.c.score < review)):
        cell(row.event_t, row.account_id)["money_stopped_vnd"] += float(row.amount)
    moves = {("open", None): "cases_opened", ("freeze_requested", "under_review"):
             "freezes_requested", ("frozen", "freeze_requested"): "freezes_approved",
             ("released", "frozen"): "freezes_released",  # before releases had four eyes
             ("released", "release_requested"): "freezes_released"}
    for row in conn.execute(select(e.c.account_id, e.c.from_status, e.c.to_status,
                                   e.c.outcome, e.c.at)
                            .where(e.c.at >= t_from, e.c.at < t_to)):
        name = moves.get((row.to_status, row.from_status))
        if name:
            cell(row.at, row.account_id)[name] += 1
        if row.to_status in ("closed", "released") and row.outcome in CONFIRMED:
            cell(row.at, row.account_id)["handed_to_police"] += 1
    rows = [ResultRow(m, t, len(v["detected"]), **{k: v[k] for k in COUNTS[1:]})
            for (m, t), v in sorted(cells.items())]
    return Results(t_from, t_to, review, rows)


def to_json(res: Results) -> dict[str, Any]:
    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")

    return {"from": iso(res.t_from), "to": iso(res.t_to),
            "review_threshold": res.review_threshold, "definitions": DEFINITIONS,
            "columns": COLUMNS, "rows": [_row(r) for r in res.rows], "total": _row(res.total())}


def _row(r: ResultRow) -> dict[str, Any]:
    return {c: getattr(r, c) for c in COLUMNS}


def to_xlsx(res: Results) -> bytes:
    import xlsxwriter  # noqa: PLC0415 - only the report needs it

    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "#,##0"})
    sheet = book.add_worksheet("Results")
    sheet.write(0, 0, "Cảnh Giác — periodic results report", bold)
    sheet.write(1, 0, f"Period: {res.period()}; review threshold {res.review_threshold:.3f}")
    sheet.write_row(3, 0, HEADINGS, bold)
    for i, r in enumerate([*res.rows, res.total()]):
        values = [getattr(r, c) for c in COLUMNS]
        sheet.write_row(4 + i, 0, values[:-1], bold if r.month == "total" else None)
        sheet.write_number(4 + i, len(COLUMNS) - 1, values[-1], money)
    sheet.set_column(0, 1, 18)
    sheet.set_column(2, len(COLUMNS) - 1, 16)
    notes = book.add_worksheet("Definitions")
    for i, text in enumerate(DEFINITIONS):
        notes.write(i, 0, text)
    book.close()
    return buf.getvalue()


def to_pdf(res: Results) -> bytes:
    from fpdf import FPDF  # noqa: PLC0415 - only the report needs it

    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(True, 12)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 14)
    pdf.cell(0, 8, "Cảnh Giác — báo cáo kết quả định kỳ / periodic results report",
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    pdf.cell(0, 6, f"Kỳ / period: {res.period()} · ngưỡng xem xét / review threshold "
             f"{res.review_threshold:.3f}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    with pdf.table(col_widths=(20, 32, 25, 22, 25, 25, 25, 25, 32),
                   text_align=("LEFT", "LEFT", *["RIGHT"] * 7), first_row_as_headings=True,
                   line_height=5) as table:
        table.row(HEADINGS)
        for r in [*res.rows, res.total()]:
            table.row([r.month, r.typology, *[f"{getattr(r, c):,.0f}" for c in COUNTS]])
    pdf.ln(3)
    for text in DEFINITIONS:
        pdf.multi_cell(0, 4.5, "• " + text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
