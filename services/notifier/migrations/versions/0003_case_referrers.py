"""notifier.case_referrers and offers.referrer: offers reach the case's referrer (care institution) too.

Learnt from the pool's case upserts (`owner`); offers made before this revision keep referrer NULL and
are bound when the case's next pool upsert arrives.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "notifier"


def upgrade() -> None:
    op.add_column("offers", sa.Column("referrer", sa.Text, nullable=True), schema=SCHEMA)
    op.create_table(
        "case_referrers",
        sa.Column("region", sa.Text, primary_key=True),
        sa.Column("case_id", sa.Text, primary_key=True),
        sa.Column("referrer", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("case_referrers", schema=SCHEMA)
    op.drop_column("offers", "referrer", schema=SCHEMA)
