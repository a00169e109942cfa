"""Care arranged with the home (issue 16): per-provider care capacity, claimed slots, refused pairings and
each case's continuity / lease party (ids only).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "matcher"


def _now() -> sa.Column:
    return sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "care_providers",
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("area", sa.Text, nullable=False),
        sa.Column("care_type", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("slots", sa.BigInteger, nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        _now(),
        sa.PrimaryKeyConstraint("region", "area", "care_type", "provider"),
        schema=SCHEMA,
    )
    op.create_table(
        "care_claims",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("proposal_id", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("care_type", sa.Text, nullable=False),
        sa.Column("area", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("continuity", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
        _now(),
        schema=SCHEMA,
    )
    op.create_index(
        "care_claims_provider",
        "care_claims",
        ["region", "area", "care_type", "provider", "status"],
        schema=SCHEMA,
    )
    op.create_index("care_claims_proposal", "care_claims", ["proposal_id"], schema=SCHEMA)
    op.create_table(
        "care_refusals",
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("care_type", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("refused_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("region", "case_id", "provider", "care_type"),
        schema=SCHEMA,
    )
    op.create_table(
        "case_care",
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("referrer", sa.Text),
        sa.Column("care_provider", sa.Text),
        sa.Column("lease_provider", sa.Text),
        _now(),
        sa.PrimaryKeyConstraint("region", "case_id"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("case_care", "care_refusals", "care_claims", "care_providers"):
        op.drop_table(table, schema=SCHEMA)
