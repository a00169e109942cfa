"""matcher.units.owner: the corporation that owns the unit (from intake's pool events); only it may
answer an offer of the unit.

Units stored before this revision have no owner until their next pool event names it.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "matcher"


def upgrade() -> None:
    op.add_column("units", sa.Column("owner", sa.Text, nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("units", "owner", schema=SCHEMA)
