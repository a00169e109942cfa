"""notifier.case_referrers.lease_provider: the intermediary care provider a case's lease goes to (issue 16).

Learnt from the pool's case upserts, so every offer names its lease party — also for a household without
care needs, whose offer does not wait for a care confirmation. NULL: the household signs the lease (or the
case is not known yet).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "notifier"


def upgrade() -> None:
    op.add_column("case_referrers", sa.Column("lease_provider", sa.Text, nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("case_referrers", "lease_provider", schema=SCHEMA)
