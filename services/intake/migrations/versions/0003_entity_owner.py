"""intake.entity_version.owner: the organisation that created a unit or case (only it may change it).

Rows stored before this revision have no owner; the next applied event about them records its sender.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "intake"


def upgrade() -> None:
    op.add_column("entity_version", sa.Column("owner", sa.Text, nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("entity_version", "owner", schema=SCHEMA)
