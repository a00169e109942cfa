"""Schema notifier: offers, cancellations, unit owners, endpoints, deliveries, delivery log, dead letters.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "notifier"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    now = sa.func.now()
    op.create_table(
        "offers",
        sa.Column("offer_id", sa.Text, primary_key=True),
        sa.Column("proposal_id", sa.Text, nullable=False, unique=True),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("corporation", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("respond_by", TS, nullable=False),
        sa.Column("made_at", TS, nullable=False, server_default=now),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("close_reason", sa.Text, nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "offers_open_due",
        "offers",
        ["respond_by"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "proposal_cancellations",
        sa.Column("proposal_id", sa.Text, primary_key=True),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("cancelled_at", TS, nullable=False, server_default=now),
        schema=SCHEMA,
    )
    op.create_table(
        "unit_owners",
        sa.Column("region", sa.Text, primary_key=True),
        sa.Column("unit_id", sa.Text, primary_key=True),
        sa.Column("corporation", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False, server_default=now),
        schema=SCHEMA,
    )
    op.create_table(
        "endpoints",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("organisation", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("event_types", ARRAY(sa.Text), nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text, nullable=True),
        sa.Column("previous_secret_until", TS, nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("disabled_reason", sa.Text, nullable=True),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=now),
        sa.Column("updated_at", TS, nullable=False, server_default=now),
        schema=SCHEMA,
    )
    op.create_index("endpoints_organisation", "endpoints", ["organisation"], schema=SCHEMA)
    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column(
            "endpoint_id",
            sa.Text,
            sa.ForeignKey(f"{SCHEMA}.endpoints.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("webhook_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=False, server_default=now),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=now),
        sa.Column("delivered_at", TS, nullable=True),
        sa.UniqueConstraint("endpoint_id", "webhook_id", name="deliveries_once_per_endpoint"),
        schema=SCHEMA,
    )
    op.create_index(
        "deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column(
            "delivery_id",
            sa.BigInteger,
            sa.ForeignKey(f"{SCHEMA}.deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("verdict", sa.Text, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("delivery_attempts_delivery", "delivery_attempts", ["delivery_id"], schema=SCHEMA)
    op.create_table(
        "dead_letters",
        sa.Column(
            "delivery_id",
            sa.BigInteger,
            sa.ForeignKey(f"{SCHEMA}.deliveries.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("endpoint_id", sa.Text, nullable=False),
        sa.Column("webhook_id", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("dead_at", TS, nullable=False, server_default=now),
        sa.Column("replayed_at", TS, nullable=True),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "dead_letters",
        "delivery_attempts",
        "deliveries",
        "endpoints",
        "unit_owners",
        "proposal_cancellations",
        "offers",
    ):
        op.drop_table(table, schema=SCHEMA)
