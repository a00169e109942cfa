"""Schema intake: entity versions, care capacity per provider, event log, personal-data vault.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "intake"


def upgrade() -> None:
    op.create_table(
        "entity_version",
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("kafka_offset", sa.BigInteger, nullable=False),
        sa.Column("removed", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("erased", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("snapshot", JSONB, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("region", "kind", "key", name="entity_version_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "care_capacity",
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("area", sa.Text, nullable=False),
        sa.Column("care_type", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("slots", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("region", "area", "care_type", "provider", name="care_capacity_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "event_log",
        sa.Column("seq", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("entity_kind", sa.Text, nullable=False),
        sa.Column("entity_key", sa.Text, nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("kafka_offset", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("event_log_region_seq", "event_log", ["region", "seq"], schema=SCHEMA)
    op.create_table(
        "personal_vault",
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("region", "case_id", name="personal_vault_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("personal_vault", schema=SCHEMA)
    op.drop_index("event_log_region_seq", table_name="event_log", schema=SCHEMA)
    op.drop_table("event_log", schema=SCHEMA)
    op.drop_table("care_capacity", schema=SCHEMA)
    op.drop_table("entity_version", schema=SCHEMA)
