"""Care arranged with the home (issue 16): the proposal's care categories (passed on with the approval) and
lease party, and the care status of each approved match (one row per care request).

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
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("proposals", sa.Column("care_needs", JSONB), schema=S)
    op.add_column("proposals", sa.Column("lease_provider", sa.Text), schema=S)
    op.create_table(
        "care_requests",
        sa.Column("request_id", sa.Text, primary_key=True),
        sa.Column("proposal_id", sa.Text, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("care_type", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, primary_key=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("continuity", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason_code", sa.Text),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("answered_at", TS),
        schema=S,
    )
    op.create_index("ix_review_care_requests_proposal_id", "care_requests", ["proposal_id"], schema=S)


def downgrade() -> None:
    op.drop_table("care_requests", schema=S)
    op.drop_column("proposals", "lease_provider", schema=S)
    op.drop_column("proposals", "care_needs", schema=S)
