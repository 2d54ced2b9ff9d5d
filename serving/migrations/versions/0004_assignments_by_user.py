"""Case assignment by users, not key names (issue 17): ``case_assignments.assignee`` and
``assigned_by`` hold normalised user names (``serving.keys.normalise_user``), and the key
the assignment was made with is kept beside them (``assigned_by_key``). Existing rows made
with key names are converted to the users of those keys (a name that is no key is kept).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("case_assignments", sa.Column("assigned_by_key", sa.String(128)))
    op.execute("UPDATE case_assignments SET assigned_by_key = assigned_by")
    for column in ("assignee", "assigned_by"):
        op.execute(f'UPDATE case_assignments SET {column} = (SELECT k."user" FROM api_keys k '
                   f"WHERE k.name = case_assignments.{column}) WHERE EXISTS (SELECT 1 FROM "
                   f"api_keys k WHERE k.name = case_assignments.{column})")


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before the upgrade")
