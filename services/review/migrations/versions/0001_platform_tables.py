"""Schema review: inbox and outbox tables.

Revision ID: 0001
Revises:
"""

from services.platform.migrations import create_platform_tables, drop_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "review"


def upgrade() -> None:
    create_platform_tables(SCHEMA)


def downgrade() -> None:
    drop_platform_tables(SCHEMA)
