"""Proposal context from match.proposed (target group, eligible homes, candidate ranks) and the
unplaced households of round.completed: optional v1 fields, so every new column is nullable.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "review"


def upgrade() -> None:
    op.add_column("proposals", sa.Column("household_group", sa.Text), schema=S)
    op.add_column("proposals", sa.Column("eligible_units", sa.Integer), schema=S)
    op.add_column("proposals", sa.Column("eligible_households", sa.Integer), schema=S)
    op.add_column("proposals", sa.Column("candidate_rank", sa.Integer), schema=S)
    op.add_column("proposals", sa.Column("candidates", JSONB), schema=S)
    op.add_column("rounds", sa.Column("unplaced", JSONB), schema=S)


def downgrade() -> None:
    op.drop_column("rounds", "unplaced", schema=S)
    for column in ("candidates", "candidate_rank", "eligible_households", "eligible_units"):
        op.drop_column("proposals", column, schema=S)
    op.drop_column("proposals", "household_group", schema=S)
