"""The suspicious-accounts report for the police (item 9a): one row per account with scored
payments in ``[from, to)`` whose riskiest one scored at least ``min_score`` or whose case was
confirmed fraud / mule, with the evidence of that period an officer needs.

CSV is UTF-8 with a BOM so that Excel shows Vietnamese text correctly; every text cell is
quoted and neutralised (:func:`safe_text`) so that no cell is run as a formula, with a ``,``
or a ``;`` list separator alike. XLSX writes typed cells (text is never a formula).
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from serving import casedb
from serving import tables as T
from serving.db import rfc3339
from serving.risk import DEFAULT_KYC

COLUMNS = (
    "account_id", "customer_id", "account_type", "opened_at", "risk_score", "typology",
    "credits_count", "credits_sum", "debits_count", "debits_sum", "distinct_senders",
    "foreign_login_countries", "foreign_login_ips", "key_payments", "case_id", "case_status",
    "outcome", "decisions", "first_activity", "last_activity",
)
KEY_PAYMENTS = 3


def _candidates(conn: Connection, t_from: float, t_to: float, min_score: float,
                limit: int) -> list[Any]:
    s = T.scored
    credit = s.c.direction == "credit"
    confirmed = select(T.cases.c.account_id).where(
        T.cases.c.outcome.in_(["confirmed_fraud", "confirmed_mule"]))
    q = (
        select(
            s.c.account_id, func.max(s.c.score).label("max_score"),
            func.sum(case((credit, 1), else_=0)).label("credits_count"),
            func.sum(case((credit, s.c.amount), else_=0.0)).label("credits_sum"),
            func.sum(case((credit, 0), else_=1)).label("debits_count"),
            func.sum(case((credit, 0.0), else_=s.c.amount)).label("debits_sum"),
            func.count(func.distinct(case((credit, s.c.counterparty_account), else_=None)))
            .label("distinct_senders"),
            func.min(s.c.event_t).label("first_t"), func.max(s.c.event_t).label("last_t"),
        )
        .where(s.c.event_t >= t_from, s.c.event_t < t_to)
        .group_by(s.c.account_id)
        .having(or_(func.max(s.c.score) >= min_score, s.c.account_id.in_(confirmed)))
        .order_by(func.max(s.c.score).desc(), s.c.account_id)
        .limit(limit)
    )
    return conn.execute(q).all()


def _key_payment(p: Any) -> str:
    arrow = "→" if p.direction == "debit" else "←"
    text = (f"{rfc3339(p.event_t)} {p.direction} {p.amount:,.0f} {p.currency} {arrow} "
            f"{p.counterparty_account}@{p.counterparty_bank} (score {p.score:.2f})")
    return text + (f" “{p.description}”" if p.description else "")


def report_rows(conn: Connection, t_from: float, t_to: float, min_score: float,
                limit: int) -> list[dict[str, Any]]:
    cands = _candidates(conn, t_from, t_to, min_score, limit)
    ids = [c.account_id for c in cands]
    if not ids:
        return []
    a, r, s, lg = T.accounts, T.account_risk, T.scored, T.logins
    accounts = {x.account_id: x for x in conn.execute(select(a).where(a.c.account_id.in_(ids)))}
    risk = {x.account_id: x for x in conn.execute(select(r).where(r.c.account_id.in_(ids)))}
    foreign: dict[str, tuple[set[str], set[str]]] = {}
    kyc = func.coalesce(a.c.kyc_country, DEFAULT_KYC)
    for acc, country, ip in conn.execute(
        select(lg.c.account_id, lg.c.country, lg.c.ip)
        .outerjoin(a, a.c.account_id == lg.c.account_id)
        .where(lg.c.account_id.in_(ids), lg.c.event_t >= t_from, lg.c.event_t < t_to,
               lg.c.country != kyc)
    ):
        countries, ips = foreign.setdefault(acc, (set(), set()))
        countries.add(country)
        ips.add(ip)
    key: dict[str, list[str]] = {}
    for p in conn.execute(select(s).where(and_(s.c.account_id.in_(ids), s.c.event_t >= t_from,
                                                s.c.event_t < t_to)).order_by(s.c.score.desc())):
        if len(key.setdefault(p.account_id, [])) < KEY_PAYMENTS:
            key[p.account_id].append(_key_payment(p))
    rows = []
    for c in cands:
        acc, rk = accounts.get(c.account_id), risk.get(c.account_id)
        cases = casedb.for_account(conn, c.account_id)
        last_case = cases[-1] if cases else None
        countries, ips = foreign.get(c.account_id, (set(), set()))
        decisions = [
            f"{h['at']} case {k['case_id']}: {h['from_status'] or '-'}→{h['to_status']} by "
            f"{h['user']}" + (f" (key {h['key']})" if h.get("key") else "")
            + (f" ({h['outcome']})" if h["outcome"] else "")
            + (f": {h['reason']}" if h["reason"] else "")
            for k in cases for h in k["history"]
        ]
        rows.append({
            "account_id": c.account_id,
            "customer_id": acc.customer_id if acc else None,
            "account_type": acc.type if acc else (rk.type if rk else "unknown"),
            "opened_at": rfc3339(acc.opened_at) if acc else None,
            "risk_score": round(float(c.max_score), 4),
            "typology": rk.typology if rk else None,
            "credits_count": int(c.credits_count), "credits_sum": float(c.credits_sum),
            "debits_count": int(c.debits_count), "debits_sum": float(c.debits_sum),
            "distinct_senders": int(c.distinct_senders),
            "foreign_login_countries": sorted(countries), "foreign_login_ips": sorted(ips),
            "key_payments": key.get(c.account_id, []),
            "case_id": last_case["case_id"] if last_case else None,
            "case_status": last_case["status"] if last_case else "none",
            "outcome": last_case["outcome"] if last_case else None,
            "decisions": decisions,
            "first_activity": rfc3339(c.first_t), "last_activity": rfc3339(c.last_t),
        })
    return rows


# characters that make a spreadsheet read a cell as a formula (ASCII and full-width forms),
# and the separators a spreadsheet may split a line at (',' or ';' by locale, tab)
_FORMULA_START = frozenset("=+-@\uff1d\uff0b\uff0d\uff20\ufe62\ufe63\u2212")
_SEPARATORS = frozenset(",;\t\uff0c\uff1b")
MAX_CELL = 32_767  # Excel's longest cell text


def _flatten(value: Any) -> str:
    text = " | ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    # control characters (line feeds included) become spaces: one record, one line
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
                    for ch in text)


def safe_text(value: Any) -> str:
    """Text a spreadsheet shows as text: lists joined, control characters made spaces, and a
    ``'`` put before every formula start — at the beginning and after any ``,`` / ``;`` / tab
    (after any spaces or quotes), so that a cell stays inert wherever a spreadsheet splits
    the line."""
    text = _flatten(value)
    out: list[str] = []
    at_start = True  # at the start of the cell or of a piece after a separator
    for ch in text:
        if at_start and ch in _FORMULA_START:
            out.append("'")
            at_start = False
        elif ch in _SEPARATORS:
            at_start = True
        elif not ch.isspace() and ch not in "\"'":  # a naive splitter may drop quotes
            at_start = False
        out.append(ch)
    return "".join(out)[:MAX_CELL]


def _cell(value: Any) -> Any:
    """Numbers as numbers; everything else safe text (None is empty)."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return safe_text(value)


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    """UTF-8 with BOM, one header line, lists joined with `` | ``, every text cell quoted."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(col)) for col in COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(rows: list[dict[str, Any]]) -> bytes:
    """An Excel workbook with typed cells: numbers as numbers, text written as text (never a
    formula, whatever it starts with; neutralised as in the CSV as well)."""
    import xlsxwriter  # noqa: PLC0415 - only the export needs it

    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                     "strings_to_urls": False, "strings_to_numbers": False})
    sheet = book.add_worksheet("suspicious-accounts")
    bold = book.add_format({"bold": True})
    for c, name in enumerate(COLUMNS):
        sheet.write_string(0, c, name, bold)
    for r, row in enumerate(rows, start=1):
        for c, col in enumerate(COLUMNS):
            value = _cell(row.get(col))
            if isinstance(value, int | float):
                sheet.write_number(r, c, value)
            elif value != "":
                sheet.write_string(r, c, value)
    sheet.freeze_panes(1, 0)
    book.close()
    return buf.getvalue()


def to_json(rows: list[dict[str, Any]], meta: dict[str, Any]) -> bytes:
    return json.dumps({**meta, "columns": list(COLUMNS), "rows": rows},
                      ensure_ascii=False).encode("utf-8")
