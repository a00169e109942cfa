"""review.proposals.care_needs: the household's care categories from match.proposed, passed on with the
approval so the notifier makes the offer only once care is confirmed (issue 16).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "review"


def upgrade() -> None:
    op.add_column("proposals", sa.Column("care_needs", JSONB), schema=S)


def downgrade() -> None:
    op.drop_column("proposals", "care_needs", schema=S)
