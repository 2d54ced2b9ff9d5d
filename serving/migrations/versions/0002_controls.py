"""Investigator controls (issue 17): users behind keys, the key in every case event and audit
entry, release maker-checker, one active case per account as a unique index, identifiers as
long as the event contract allows (1,024 characters), an append-only audit table.
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID_LEN = 1024
ACTIVE = ("open", "under_review", "freeze_requested", "frozen", "release_requested")
# (table, column, nullable) of identifiers from the event contract (PostgreSQL enforces
# VARCHAR lengths; SQLite does not, so only PostgreSQL needs the ALTER)
ID_COLUMNS = [
    ("accounts", "account_id", False), ("accounts", "customer_id", False),
    ("accounts", "segment", True),
    ("scored", "event_id", False), ("scored", "account_id", False),
    ("scored", "counterparty_account", False), ("scored", "counterparty_bank", False),
    ("scored", "device_id", True),
    ("logins", "event_id", False), ("logins", "account_id", False),
    ("logins", "device_id", False),
    ("account_risk", "account_id", False), ("account_risk", "top_event_id", True),
    ("cases", "account_id", False), ("case_events", "account_id", False),
    ("outbox", "account_id", False),
]


def _user(name: str) -> str:
    """serving.keys.normalise_user at the time of this revision (frozen here on purpose)."""
    text = " ".join(unicodedata.normalize("NFKC", name).split()).casefold()
    return unicodedata.normalize("NFKC", text)[:128] or "unknown"


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"

    op.add_column("api_keys", sa.Column("user", sa.String(128), nullable=False,
                                        server_default=""))
    keys = sa.table("api_keys", sa.column("key_id", sa.Integer), sa.column("name", sa.String),
                    sa.column("user", sa.String))
    for key_id, name in bind.execute(sa.select(keys.c.key_id, keys.c.name)).all():
        bind.execute(keys.update().where(keys.c.key_id == key_id).values(user=_user(name)))
    if pg:
        op.alter_column("api_keys", "user", server_default=None)
    op.create_index("ix_api_keys_user", "api_keys", ["user"])

    op.add_column("cases", sa.Column("release_requested_by", sa.String(128)))
    op.add_column("case_events", sa.Column("key_name", sa.String(128)))
    op.add_column("audit", sa.Column("key_name", sa.String(128)))
    op.add_column("audit", sa.Column("client_request_id", sa.String(64)))
    op.add_column("audit", sa.Column("details", sa.Text))
    op.create_index("ix_audit_actor", "audit", ["actor"])

    active = sa.column("status").in_(ACTIVE)
    op.create_index("ux_cases_one_active", "cases", ["account_id"], unique=True,
                    postgresql_where=active, sqlite_where=active)

    if pg:
        for table, column, nullable in ID_COLUMNS:
            op.alter_column(table, column, type_=sa.String(ID_LEN), existing_nullable=nullable)
        op.alter_column("scored", "model_version", type_=sa.String(256), existing_nullable=False)
        op.alter_column("audit", "target", type_=sa.Text, existing_nullable=False)
        op.execute("CREATE FUNCTION canhgiac_audit_append_only() RETURNS trigger "
                   "LANGUAGE plpgsql AS $$ BEGIN "
                   "RAISE EXCEPTION 'the audit log is append-only'; END $$")
        op.execute("CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
                   "FOR EACH ROW EXECUTE FUNCTION canhgiac_audit_append_only()")
        op.execute("CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
                   "FOR EACH STATEMENT EXECUTE FUNCTION canhgiac_audit_append_only()")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_no_{verb.lower()} BEFORE {verb} ON audit "
                       "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END")


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
