"""Intake's own tables in schema `intake` (inbox and outbox come from services.platform)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

SCHEMA = "intake"

metadata = MetaData(schema=SCHEMA)

# Latest accepted version of every entity, with its pseudonymous snapshot (never personal data).
# kind: case, unit, care_capacity_provider, neighbourhood, complex, policy, quota.
entity_version = Table(
    "entity_version",
    metadata,
    Column("region", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("topic", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("kafka_offset", BigInteger, nullable=False),
    Column("removed", Boolean, nullable=False, server_default="false"),
    Column("erased", Boolean, nullable=False, server_default="false"),
    Column("snapshot", JSONB, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Units and cases: the organisation id that first created it; only it may change or withdraw it.
    Column("owner", Text, nullable=True),
    PrimaryKeyConstraint("region", "kind", "key", name="entity_version_pkey"),
)

# One provider's slots per (area, care type); the pool snapshot is the sum over providers.
care_capacity = Table(
    "care_capacity",
    metadata,
    Column("region", Text, nullable=False),
    Column("area", Text, nullable=False),
    Column("care_type", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("slots", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("region", "area", "care_type", "provider", name="care_capacity_pkey"),
)

# Every event that changed state or arrived late, in processing order; ids and times only.
event_log = Table(
    "event_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("region", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("entity_kind", Text, nullable=False),
    Column("entity_key", Text, nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("topic", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("kafka_offset", BigInteger, nullable=False),
    # applied | late | ignored_erased | erased
    Column("outcome", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("event_log_region_seq", "region", "seq"),
)

# Personal data vault: the only place personal data lives, encrypted with a per-case data key.
# Erasure sets wrapped_key to NULL (crypto-shredding); the ciphertext left behind is unreadable.
personal_vault = Table(
    "personal_vault",
    metadata,
    Column("region", Text, nullable=False),
    Column("case_id", Text, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=True),
    Column("ciphertext", LargeBinary, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("erased_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("region", "case_id", name="personal_vault_pkey"),
)
