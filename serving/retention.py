"""Retention of personal data in the case store: scored payments and logins older than the
retention period are deleted (``canhgiac db purge``), except those of accounts with a case —
a case's evidence is kept with it. Cases, their decisions and the audit log are never purged.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, exists, func, select

from serving import tables as T

MIN_DAYS = 31  # the longest window the per-account risk looks back (foreign logins: 30 days)


@dataclass(frozen=True, slots=True)
class Purge:
    cutoff: float
    scored: int
    logins: int
    risk_rows: int


def purge(conn: Connection, cutoff: float, dry_run: bool = False) -> Purge:
    """Delete (or, ``dry_run``, count) the rows older than ``cutoff`` (epoch seconds)."""
    with_case = select(T.cases.c.account_id)
    s, lg, r = T.scored, T.logins, T.account_risk
    old_scored = (s.c.event_t < cutoff, s.c.account_id.not_in(with_case))
    old_logins = (lg.c.event_t < cutoff, lg.c.account_id.not_in(with_case))
    if dry_run:
        count = conn.execute(select(func.count()).select_from(s).where(*old_scored)).scalar()
        logins = conn.execute(select(func.count()).select_from(lg).where(*old_logins)).scalar()
        return Purge(cutoff, int(count or 0), int(logins or 0), 0)
    scored = conn.execute(delete(s).where(*old_scored)).rowcount
    logins = conn.execute(delete(lg).where(*old_logins)).rowcount
    # an account left with no event and no case leaves the ranked list
    risk = conn.execute(delete(r).where(
        r.c.case_id.is_(None),
        ~exists().where(s.c.account_id == r.c.account_id),
        ~exists().where(lg.c.account_id == r.c.account_id))).rowcount
    return Purge(cutoff, scored, logins, risk)
