"""Tables of the `matcher` schema (SQLAlchemy Core); the alembic revisions create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from services.matcher.settings import SCHEMA

metadata = MetaData(schema=SCHEMA)


def _now() -> Column:
    return Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now())


region_state = Table(
    "region_state",
    metadata,
    Column("region", Text, primary_key=True),
    Column("pool_partition", Integer),
    Column("change_seq", BigInteger, nullable=False, server_default="0"),
    Column("handled_seq", BigInteger, nullable=False, server_default="0"),
    Column("first_unhandled_at", DateTime(timezone=True)),
    Column("last_change_at", DateTime(timezone=True)),
    Column("requested_at", DateTime(timezone=True)),
    Column("not_before", DateTime(timezone=True)),
    _now(),
)

cases = Table(
    "cases",
    metadata,
    Column("region", Text, nullable=False),
    Column("id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("snapshot", JSONB, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("event_offset", BigInteger, nullable=False, server_default="-1"),
    Column("parked_until", DateTime(timezone=True)),
    _now(),
    PrimaryKeyConstraint("region", "id"),
    Index("cases_region_status", "region", "status"),
)

units = Table(
    "units",
    metadata,
    Column("region", Text, nullable=False),
    Column("id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("snapshot", JSONB, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("event_offset", BigInteger, nullable=False, server_default="-1"),
    Column("vacant_since", DateTime(timezone=True)),
    Column("owner", Text),  # the owning corporation's organisation id (None = not yet known)
    _now(),
    PrimaryKeyConstraint("region", "id"),
    Index("units_region_status", "region", "status"),
)

# Reference data of a region: entity in neighbourhood, complex, care_capacity, quota, policy.
reference = Table(
    "reference",
    metadata,
    Column("region", Text, nullable=False),
    Column("entity", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("snapshot", JSONB),
    Column("removed", Boolean, nullable=False, server_default="false"),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("event_offset", BigInteger, nullable=False, server_default="-1"),
    _now(),
    PrimaryKeyConstraint("region", "entity", "key"),
)

# status: pending -> approved -> offered -> accepted | declined | expired; pending -> rejected;
# pending|approved|offered -> cancelled.
proposals = Table(
    "proposals",
    metadata,
    Column("id", Text, primary_key=True),
    Column("region", Text, nullable=False),
    Column("round_id", Text, nullable=False),
    Column("case_id", Text, nullable=False),
    Column("unit_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("priority", BigInteger, nullable=False),
    Column("fit", JSONB, nullable=False),
    Column("explanation", JSONB),
    Column("case_snapshot", JSONB, nullable=False),
    Column("unit_snapshot", JSONB, nullable=False),
    Column("offer_id", Text),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    _now(),
    Index("proposals_region_status", "region", "status"),
    Index("proposals_case", "region", "case_id"),
    Index("proposals_unit", "region", "unit_id"),
)

forbidden = Table(
    "forbidden",
    metadata,
    Column("region", Text, nullable=False),
    Column("case_id", Text, nullable=False),
    Column("unit_id", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("proposal_id", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("region", "case_id", "unit_id"),
)

# Accepted offers: added to neighbourhood/complex counts and subtracted from quotas until newer reference
# data (which is assumed to include them) arrives.
housed = Table(
    "housed",
    metadata,
    Column("region", Text, nullable=False),
    Column("case_id", Text, nullable=False),
    Column("unit_id", Text, nullable=False),
    Column("group", Text, nullable=False),
    Column("household_size", Integer, nullable=False),
    Column("municipality", Text, nullable=False),
    Column("neighbourhood", Text, nullable=False),
    Column("complex", Text),
    Column("proposal_id", Text, nullable=False),
    Column("housed_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("region", "case_id", "unit_id"),
)

rounds = Table(
    "rounds",
    metadata,
    Column("id", Text, primary_key=True),
    Column("region", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("instance", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("seq_at_build", BigInteger, nullable=False),
    Column("problem", Text, nullable=False),
    Column("problem_sha256", Text, nullable=False),
    Column("ortools_version", Text),
    Column("wijkmatch_version", Text),
    Column("parameters", JSONB, nullable=False),
    Column("result", JSONB),
    Column("summary", JSONB),
    Column("duration_s", Float),
    Column("error", Text),
    Index("rounds_region_started", "region", "started_at"),
)

# ------------------------------------------------------------------ care arranged with the home (issue 16)

# Each provider's reported slots per (area, care_type), from the pool's per-provider breakdown. `slots` is
# the total the provider offers wijkmatch there (claimed slots included): free = slots - active claims.
care_providers = Table(
    "care_providers",
    metadata,
    Column("region", Text, nullable=False),
    Column("area", Text, nullable=False),
    Column("care_type", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("slots", BigInteger, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    _now(),
    PrimaryKeyConstraint("region", "area", "care_type", "provider"),
)

# One claimed slot per care need of an approved match. Status: requested -> confirmed -> ongoing;
# requested|confirmed -> declined | expired | released. Active (counted against capacity): requested,
# confirmed.
care_claims = Table(
    "care_claims",
    metadata,
    Column("id", Text, primary_key=True),
    Column("region", Text, nullable=False),
    Column("proposal_id", Text, nullable=False),
    Column("case_id", Text, nullable=False),
    Column("unit_id", Text, nullable=False),
    Column("care_type", Text, nullable=False),
    Column("area", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("continuity", Boolean, nullable=False, server_default="false"),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("confirmed_at", DateTime(timezone=True)),
    _now(),
    Index("care_claims_provider", "region", "area", "care_type", "provider", "status"),
    Index("care_claims_proposal", "proposal_id"),
)

# (case, provider, care_type) pairings a provider declined or let time out: no round proposes them again
# until the provider reports its capacity anew (care_providers.reported_at > refused_at).
care_refusals = Table(
    "care_refusals",
    metadata,
    Column("region", Text, nullable=False),
    Column("case_id", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("care_type", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("refused_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("region", "case_id", "provider", "care_type"),
)

# Per case: the referrer (the pool's owner), the provider that already cares for the client (continuity)
# and the intermediary lease party; ids only.
case_care = Table(
    "case_care",
    metadata,
    Column("region", Text, nullable=False),
    Column("case_id", Text, nullable=False),
    Column("referrer", Text),
    Column("care_provider", Text),
    Column("lease_provider", Text),
    _now(),
    PrimaryKeyConstraint("region", "case_id"),
)

# Who read a round's full problem (care categories per case) and when: written in the same transaction as
# the read (GET /v1/rounds/{id}?full=true, role auditor). Kept when the round itself is purged.
problem_reads = Table(
    "problem_reads",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("round_id", Text, nullable=False),
    Column("region", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("roles", JSONB, nullable=False),
    Column("read_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("problem_reads_region_read_at", "region", "read_at"),
)
