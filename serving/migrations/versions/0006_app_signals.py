"""The mobile app's device-risk signals of a scored payment (issue 16): ``scored.on_call`` and
``scored.remote_access``, nullable booleans. NULL = not reported (no app session), which is not
false; rows written before this revision get NULL: the store never had the values.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SIGNALS = ("on_call", "remote_access")


def upgrade() -> None:
    with op.batch_alter_table("scored") as batch:
        for name in SIGNALS:
            batch.add_column(sa.Column(name, sa.Boolean, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scored") as batch:
        for name in reversed(SIGNALS):
            batch.drop_column(name)
