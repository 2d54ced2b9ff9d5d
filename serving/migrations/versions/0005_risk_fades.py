"""The ranked risk fades with inactivity (issue 16): ``account_risk.risk_key`` (the order of
``GET /v1/accounts/high-risk``, see :mod:`serving.risk`), the rank indexes on it instead of the
peak score, and an index on ``last_activity`` (the store's clock). Existing rows get their key
from their score and last activity.
"""

from __future__ import annotations

import math

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

HALF_LIFE_S = 7 * 86400.0  # serving.risk.HALF_LIFE_S when this revision was written
SCORE_FLOOR = 1e-6
RANKS = {  # index -> columns before (peak score) / after (risk_key)
    "ix_risk_rank": (),
    "ix_risk_type_rank": ("type",),
    "ix_risk_type_foreign_rank": ("type", "foreign_login"),
    "ix_risk_status_rank": ("case_status",),
    "ix_risk_typology_rank": ("typology",),
}


def upgrade() -> None:
    with op.batch_alter_table("account_risk") as batch:
        batch.add_column(sa.Column("risk_key", sa.Float, nullable=True))
    risk = sa.table("account_risk", sa.column("account_id", sa.String),
                    sa.column("score", sa.Float), sa.column("last_activity", sa.Float),
                    sa.column("risk_key", sa.Float))
    conn = op.get_bind()
    rows = conn.execute(sa.select(risk.c.account_id, risk.c.score, risk.c.last_activity)).all()
    for account_id, score, last in rows:
        conn.execute(sa.update(risk).where(risk.c.account_id == account_id).values(
            risk_key=last + HALF_LIFE_S * math.log2(max(score, SCORE_FLOOR))))
    with op.batch_alter_table("account_risk") as batch:
        batch.alter_column("risk_key", existing_type=sa.Float, nullable=False)
    for name, head in RANKS.items():
        op.drop_index(name, table_name="account_risk")
        op.create_index(name, "account_risk", [*head, "risk_key", "account_id"])
    op.create_index("ix_risk_last_activity", "account_risk", ["last_activity"])


def downgrade() -> None:
    op.drop_index("ix_risk_last_activity", table_name="account_risk")
    for name, head in RANKS.items():
        op.drop_index(name, table_name="account_risk")
        op.create_index(name, "account_risk", [*head, "score", "account_id"])
    with op.batch_alter_table("account_risk") as batch:
        batch.drop_column("risk_key")
