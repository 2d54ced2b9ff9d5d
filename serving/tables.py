"""The case store's schema (SQLAlchemy Core). Times are float epoch seconds (UTC) so that SQLite
and PostgreSQL compare them the same way; the API renders them as RFC 3339.

``account_risk`` is the denormalised read model of the ranked list: one row per account, kept
current by the scorer's sink, so ``GET /v1/accounts/high-risk`` is one indexed query.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()
ID_LEN = 1024  # features.events.MAX_TEXT: the longest identifier the event contract accepts
USER_LEN = 128  # serving.keys.MAX_NAME
ACTIVE_STATUSES = ("open", "under_review", "freeze_requested", "frozen", "release_requested")

accounts = Table(
    "accounts", metadata,
    Column("account_id", String(ID_LEN), primary_key=True),
    Column("customer_id", String(ID_LEN), nullable=False),
    Column("type", String(16), nullable=False),
    Column("opened_at", Float, nullable=False),
    Column("kyc_country", String(2), nullable=False),
    Column("birth_year", Integer),
    Column("registered_at", Float),
    Column("segment", String(ID_LEN)),
)

scored = Table(
    "scored", metadata,
    Column("event_id", String(ID_LEN), primary_key=True),
    Column("account_id", String(ID_LEN), nullable=False),
    Column("event_t", Float, nullable=False),
    Column("score", Float, nullable=False),
    Column("decision", String(8), nullable=False),
    Column("reasons", Text, nullable=False),  # JSON list of {feature, value, contribution, text}
    Column("model_version", String(256), nullable=False),
    Column("scored_at", Float, nullable=False),
    Column("direction", String(8), nullable=False),
    Column("amount", Float, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("counterparty_account", String(ID_LEN), nullable=False),
    Column("counterparty_bank", String(ID_LEN), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("country", String(2)),
    Column("ip", String(64)),
    Column("device_id", String(ID_LEN)),
    Column("description", Text),
    Column("features", Text, nullable=False),  # JSON of the KEY_FEATURES subset
    # the mobile app's device-risk signals (migration 0006): NULL = not reported, not false
    Column("on_call", Boolean),
    Column("remote_access", Boolean),
    Index("ix_scored_account_t", "account_id", "event_t"),
)

logins = Table(
    "logins", metadata,
    Column("event_id", String(ID_LEN), primary_key=True),
    Column("account_id", String(ID_LEN), nullable=False),
    Column("event_t", Float, nullable=False),
    Column("success", Boolean, nullable=False),
    Column("ip", String(64), nullable=False),
    Column("country", String(2), nullable=False),
    Column("device_id", String(ID_LEN), nullable=False),
    Column("channel", String(16), nullable=False),
    Index("ix_logins_account_t", "account_id", "event_t"),
)

account_risk = Table(
    "account_risk", metadata,
    Column("account_id", String(ID_LEN), primary_key=True),
    Column("type", String(16), nullable=False),  # personal | business | unknown
    Column("score", Float, nullable=False),  # max score in the 7 days before last activity
    Column("prev_score", Float),  # max score in the 7 days before that
    Column("last_activity", Float, nullable=False),
    # the ranked list's order: last_activity + 7 d * log2(score), serving.risk (risk fades)
    Column("risk_key", Float, nullable=False),
    Column("top_event_id", String(ID_LEN)),
    Column("top_reasons", Text, nullable=False),  # JSON list of readable phrases
    Column("typology", String(32), nullable=False),  # rule_typology unless a case says more
    Column("rule_typology", String(32), nullable=False),
    Column("foreign_login", Boolean, nullable=False),
    Column("foreign_countries", Text, nullable=False),  # JSON list of ISO codes
    Column("case_id", Integer),
    Column("case_status", String(20), nullable=False),  # 'none' when no case
    Column("updated_at", Float, nullable=False),
    Index("ix_risk_rank", "risk_key", "account_id"),
    Index("ix_risk_type_rank", "type", "risk_key", "account_id"),
    Index("ix_risk_type_foreign_rank", "type", "foreign_login", "risk_key", "account_id"),
    Index("ix_risk_status_rank", "case_status", "risk_key", "account_id"),
    Index("ix_risk_typology_rank", "typology", "risk_key", "account_id"),
    Index("ix_risk_last_activity", "last_activity"),
)

cases = Table(
    "cases", metadata,
    Column("case_id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(ID_LEN), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("outcome", String(20)),
    Column("typology", String(32)),
    Column("opened_by", String(USER_LEN), nullable=False),  # user
    Column("opened_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("freeze_requested_by", String(USER_LEN)),  # user (maker of the freeze)
    Column("decided_at", Float),
    Column("release_requested_by", String(USER_LEN)),  # user (maker of the release)
)
# one active case per account, enforced by the database (a check-then-insert races)
_active = cases.c.status.in_(ACTIVE_STATUSES)
Index("ux_cases_one_active", cases.c.account_id, unique=True,
      postgresql_where=_active, sqlite_where=_active)

case_events = Table(
    "case_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("cases.case_id"), nullable=False, index=True),
    Column("account_id", String(ID_LEN), nullable=False, index=True),
    Column("from_status", String(20)),
    Column("to_status", String(20), nullable=False),
    Column("outcome", String(20)),
    Column("actor", String(USER_LEN), nullable=False),  # the user (a person)
    Column("role", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", Float, nullable=False),
    Column("key_name", String(USER_LEN)),  # the key the user used (null before migration 0002)
)

api_keys = Table(
    "api_keys", metadata,
    Column("key_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(USER_LEN), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("user", String(USER_LEN), nullable=False, index=True),  # serving.keys.normalise_user
)

# append-only: no API route updates or deletes a row, and database triggers refuse it
audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(USER_LEN), nullable=False),  # the user
    Column("role", String(16), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", Text, nullable=False),
    Column("request_id", String(64), nullable=False),  # generated by the server
    Column("key_name", String(USER_LEN)),
    Column("client_request_id", String(64)),  # the client's X-Request-ID, as sent (escaped)
    Column("details", Text),  # JSON: filters, row counts, outcome
    Index("ix_audit_target", "target"),
    Index("ix_audit_actor", "actor"),
)

# events for Kafka, written in the transaction of the decision they report (transactional
# outbox): a broker outage delays them, it cannot lose them
outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),  # action | label
    Column("account_id", String(ID_LEN), nullable=False),
    Column("payload", Text, nullable=False),  # JSON
    Column("created_at", Float, nullable=False),
    Column("sent_at", Float),
    Index("ix_outbox_pending", "sent_at", "id"),
)

model_info = Table(
    "model_info", metadata,
    Column("id", Integer, primary_key=True),
    Column("version", String(64), nullable=False),
    Column("metrics", Text, nullable=False),
    Column("thresholds", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

meta = Table(
    "meta", metadata,
    Column("key", String(32), primary_key=True),
    Column("value", Integer, nullable=False),
)

# who works a case (the investigator's page: queues and bulk assignment). A table of its own,
# so that an existing store gains it with create_all and the cases table stays unchanged.
case_assignments = Table(
    "case_assignments", metadata,
    Column("case_id", Integer, ForeignKey("cases.case_id"), primary_key=True),
    Column("assignee", String(USER_LEN), nullable=False, index=True),  # a user (normalised)
    Column("assigned_by", String(USER_LEN), nullable=False),  # the user who assigned it
    Column("assigned_at", Float, nullable=False),
    Column("assigned_by_key", String(USER_LEN)),  # the key used (migration 0004)
)
