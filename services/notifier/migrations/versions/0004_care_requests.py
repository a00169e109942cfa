"""Care arranged with the home (issue 16): care requests to providers, offers waiting for care, and the
arrangements and lease party of an offer.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "notifier"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("offers", sa.Column("arrangements", JSONB, nullable=True), schema=SCHEMA)
    op.add_column("offers", sa.Column("lease_party", JSONB, nullable=True), schema=SCHEMA)
    op.create_table(
        "care_requests",
        sa.Column("request_id", sa.Text, primary_key=True),
        sa.Column("proposal_id", sa.Text, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("care_type", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("continuity", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("respond_by", TS, nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("made_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("close_reason", sa.Text, nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "care_requests_open_due",
        "care_requests",
        ["respond_by"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("care_requests_proposal", "care_requests", ["proposal_id"], schema=SCHEMA)
    op.create_table(
        "care_gates",
        sa.Column("proposal_id", sa.Text, primary_key=True),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("needs", ARRAY(sa.Text), nullable=False),
        sa.Column("lease_provider", sa.Text, nullable=True),
        sa.Column("approved", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("confirmed_at", TS, nullable=True),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("care_gates", schema=SCHEMA)
    op.drop_table("care_requests", schema=SCHEMA)
    op.drop_column("offers", "lease_party", schema=SCHEMA)
    op.drop_column("offers", "arrangements", schema=SCHEMA)
