"""Schema matcher: region pool (cases, units, reference data), proposals, forbidden pairs, housed, rounds.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:07:40.190805
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "matcher"


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_offset", sa.BigInteger(), server_default="-1", nullable=False),
        sa.Column("parked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("region", "id"),
        schema="matcher",
    )
    op.create_index("cases_region_status", "cases", ["region", "status"], unique=False, schema="matcher")
    op.create_table(
        "forbidden",
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Text(), nullable=False),
        sa.Column("unit_id", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("proposal_id", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("region", "case_id", "unit_id"),
        schema="matcher",
    )
    op.create_table(
        "housed",
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Text(), nullable=False),
        sa.Column("unit_id", sa.Text(), nullable=False),
        sa.Column("group", sa.Text(), nullable=False),
        sa.Column("household_size", sa.Integer(), nullable=False),
        sa.Column("municipality", sa.Text(), nullable=False),
        sa.Column("neighbourhood", sa.Text(), nullable=False),
        sa.Column("complex", sa.Text(), nullable=True),
        sa.Column("proposal_id", sa.Text(), nullable=False),
        sa.Column("housed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("region", "case_id", "unit_id"),
        schema="matcher",
    )
    op.create_table(
        "proposals",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("round_id", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Text(), nullable=False),
        sa.Column("unit_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("priority", sa.BigInteger(), nullable=False),
        sa.Column("fit", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("explanation", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("case_snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("unit_snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("offer_id", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        schema="matcher",
    )
    op.create_index("proposals_case", "proposals", ["region", "case_id"], unique=False, schema="matcher")
    op.create_index(
        "proposals_region_status", "proposals", ["region", "status"], unique=False, schema="matcher"
    )
    op.create_index("proposals_unit", "proposals", ["region", "unit_id"], unique=False, schema="matcher")
    op.create_table(
        "reference",
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("removed", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_offset", sa.BigInteger(), server_default="-1", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("region", "entity", "key"),
        schema="matcher",
    )
    op.create_table(
        "region_state",
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("pool_partition", sa.Integer(), nullable=True),
        sa.Column("change_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("handled_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("first_unhandled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_change_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("region"),
        schema="matcher",
    )
    op.create_table(
        "rounds",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("instance", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seq_at_build", sa.BigInteger(), nullable=False),
        sa.Column("problem", sa.Text(), nullable=False),
        sa.Column("problem_sha256", sa.Text(), nullable=False),
        sa.Column("ortools_version", sa.Text(), nullable=True),
        sa.Column("wijkmatch_version", sa.Text(), nullable=True),
        sa.Column("parameters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("summary", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        schema="matcher",
    )
    op.create_index(
        "rounds_region_started", "rounds", ["region", "started_at"], unique=False, schema="matcher"
    )
    op.create_table(
        "units",
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_offset", sa.BigInteger(), server_default="-1", nullable=False),
        sa.Column("vacant_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("region", "id"),
        schema="matcher",
    )
    op.create_index("units_region_status", "units", ["region", "status"], unique=False, schema="matcher")


def downgrade() -> None:
    for table in (
        "rounds",
        "housed",
        "forbidden",
        "proposals",
        "reference",
        "units",
        "cases",
        "region_state",
    ):
        op.drop_table(table, schema=SCHEMA)
