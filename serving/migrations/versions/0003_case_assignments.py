"""Case assignment for the investigators' queues (issue 18): who a case is assigned to, by whom,
when. A table of its own beside ``cases`` (one row per assigned case).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_assignments",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.case_id"), primary_key=True),
        sa.Column("assignee", sa.String(128), nullable=False),
        sa.Column("assigned_by", sa.String(128), nullable=False),
        sa.Column("assigned_at", sa.Float, nullable=False),
    )
    op.create_index("ix_case_assignments_assignee", "case_assignments", ["assignee"])


def downgrade() -> None:
    op.drop_index("ix_case_assignments_assignee", table_name="case_assignments")
    op.drop_table("case_assignments")
