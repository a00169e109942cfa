"""Schema review: proposals read model, rounds, the hash-chained audit log (append-only), idempotency keys.

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

S = "review"


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "proposals",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("round_id", sa.Text, nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("unit_id", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("fit_total", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("proposed_at", _tz(), nullable=False),
        sa.Column("first_signer", sa.Text),
        sa.Column("first_signed_at", _tz()),
        sa.Column("decided_by", sa.Text),
        sa.Column("decided_role", sa.Text),
        sa.Column("decided_at", _tz()),
        sa.Column("reason_code", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("cancel_reason", sa.Text),
        sa.Column("offer_status", sa.Text),
        sa.Column("fit", JSONB, nullable=False),
        sa.Column("explanation", JSONB, nullable=False),
        sa.Column("offer_id", sa.Text),
        sa.Column("decision_hash", sa.Text),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        sa.CheckConstraint(
            "status IN ('pending','awaiting_second','approved','rejected','cancelled')",
            name="proposal_status",
        ),
        schema=S,
    )
    op.create_index("ix_review_proposals_region", "proposals", ["region"], schema=S)
    op.create_index("ix_review_proposals_round_id", "proposals", ["round_id"], schema=S)
    op.create_index("ix_review_proposals_status", "proposals", ["status"], schema=S)
    op.create_table(
        "rounds",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("objective", JSONB),
        sa.Column("placed_by_group", JSONB, nullable=False),
        sa.Column("unplaced_by_group", JSONB, nullable=False),
        sa.Column("unplaced_by_reason", JSONB, nullable=False),
        sa.Column("solve_seconds", sa.Float, nullable=False),
        sa.Column("problem_sha256", sa.Text, nullable=False),
        sa.Column("completed_at", _tz(), nullable=False),
        schema=S,
    )
    op.create_index("ix_review_rounds_region", "rounds", ["region"], schema=S)
    op.create_table(
        "audit",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", _tz(), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("proposal_id", sa.Text),
        sa.Column("round_id", sa.Text),
        sa.Column("input_sha256", sa.Text),
        sa.Column("reason_code", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("prev_hash", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False, unique=True),
        schema=S,
    )
    op.create_index("ix_review_audit_region", "audit", ["region"], schema=S)
    # Append-only for the service's own role: UPDATE and DELETE raise. Whoever can disable the trigger
    # (the table owner) can still tamper, which `wijkmatch audit verify` then detects through the chain.
    op.execute(
        f"CREATE OR REPLACE FUNCTION {S}.audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$"
    )
    op.execute(
        f"CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON {S}.audit "
        f"FOR EACH ROW EXECUTE FUNCTION {S}.audit_append_only()"
    )
    op.create_table(
        "idempotency",
        sa.Column("actor", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_sha256", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        schema=S,
    )
    op.create_index("ix_review_idempotency_created_at", "idempotency", ["created_at"], schema=S)


def downgrade() -> None:
    op.drop_table("idempotency", schema=S)
    op.execute(f"DROP TRIGGER IF EXISTS audit_append_only ON {S}.audit")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.audit_append_only()")
    op.drop_table("audit", schema=S)
    op.drop_table("rounds", schema=S)
    op.drop_table("proposals", schema=S)
