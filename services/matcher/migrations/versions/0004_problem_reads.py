"""matcher.problem_reads: the audit trail of reads of a round's full problem (care categories per case).

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

SCHEMA = "matcher"


def upgrade() -> None:
    op.create_table(
        "problem_reads",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("round_id", sa.Text, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("roles", JSONB, nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("problem_reads_region_read_at", "problem_reads", ["region", "read_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("problem_reads_region_read_at", "problem_reads", schema=SCHEMA)
    op.drop_table("problem_reads", schema=SCHEMA)
