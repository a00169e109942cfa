"""Tables of schema `notifier` (SQLAlchemy Core), as created by migrations/versions/0002 and 0003."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

SCHEMA = "notifier"
metadata = sa.MetaData(schema=SCHEMA)
_now = sa.func.now()
TS = sa.DateTime(timezone=True)

offers = sa.Table(
    "offers",
    metadata,
    sa.Column("offer_id", sa.Text, primary_key=True),
    sa.Column("proposal_id", sa.Text, nullable=False, unique=True),
    sa.Column("region", sa.Text, nullable=False),
    sa.Column("case_id", sa.Text, nullable=False),
    sa.Column("unit_id", sa.Text, nullable=False),
    sa.Column("corporation", sa.Text, nullable=True),  # owner of the unit, if known when the offer was made
    sa.Column("referrer", sa.Text, nullable=True),  # owner of the case (care institution), likewise
    sa.Column("status", sa.Text, nullable=False),  # open | accepted | declined | expired | cancelled
    sa.Column("respond_by", TS, nullable=False),
    sa.Column("made_at", TS, nullable=False, server_default=_now),
    sa.Column("closed_at", TS, nullable=True),
    sa.Column("close_reason", sa.Text, nullable=True),
    # Issue 16: the care arranged (one entry per need) and the lease party, as sent in offer.made.
    sa.Column("arrangements", JSONB, nullable=True),
    sa.Column("lease_party", JSONB, nullable=True),
    sa.Index("offers_open_due", "respond_by", postgresql_where=sa.text("status = 'open'")),
)

# match.cancelled may overtake match.approved (different topics): a cancelled proposal is never offered.
proposal_cancellations = sa.Table(
    "proposal_cancellations",
    metadata,
    sa.Column("proposal_id", sa.Text, primary_key=True),
    sa.Column("region", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("cancelled_at", TS, nullable=False, server_default=_now),
)

# Which corporation owns a unit, learnt from the pool's unit upserts (ids only, never the snapshot).
unit_owners = sa.Table(
    "unit_owners",
    metadata,
    sa.Column("region", sa.Text, primary_key=True),
    sa.Column("unit_id", sa.Text, primary_key=True),
    sa.Column("corporation", sa.Text, nullable=False),
    sa.Column("updated_at", TS, nullable=False, server_default=_now),
)

# Which care institution referred a case, learnt from the pool's case upserts (ids only, never the
# snapshot: it carries the case's care categories).
case_referrers = sa.Table(
    "case_referrers",
    metadata,
    sa.Column("region", sa.Text, primary_key=True),
    sa.Column("case_id", sa.Text, primary_key=True),
    sa.Column("referrer", sa.Text, nullable=False),
    sa.Column("updated_at", TS, nullable=False, server_default=_now),
    # The intermediary care provider the lease goes to (issue 16); NULL: the household signs it.
    sa.Column("lease_provider", sa.Text, nullable=True),
)

endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("organisation", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("event_types", ARRAY(sa.Text), nullable=False),  # short names, e.g. offer.made
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text, nullable=True),
    sa.Column("previous_secret_until", TS, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("disabled_reason", sa.Text, nullable=True),
    sa.Column("origin", sa.Text, nullable=False),  # registry | admin
    sa.Column("created_at", TS, nullable=False, server_default=_now),
    sa.Column("updated_at", TS, nullable=False, server_default=_now),
    sa.Index("endpoints_organisation", "organisation"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
    sa.Column("endpoint_id", sa.Text, sa.ForeignKey(endpoints.c.id, ondelete="CASCADE"), nullable=False),
    sa.Column("webhook_id", sa.Text, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),  # pending | delivered | dead
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", TS, nullable=False, server_default=_now),
    sa.Column("lease_until", TS, nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", TS, nullable=False, server_default=_now),
    sa.Column("delivered_at", TS, nullable=True),
    sa.UniqueConstraint("endpoint_id", "webhook_id", name="deliveries_once_per_endpoint"),
    sa.Index("deliveries_due", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")),
)

# The delivery log: one row per attempt.
delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
    sa.Column(
        "delivery_id", sa.BigInteger, sa.ForeignKey(deliveries.c.id, ondelete="CASCADE"), nullable=False
    ),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("verdict", sa.Text, nullable=False),
    sa.Index("delivery_attempts_delivery", "delivery_id"),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column(
        "delivery_id", sa.BigInteger, sa.ForeignKey(deliveries.c.id, ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("endpoint_id", sa.Text, nullable=False),
    sa.Column("webhook_id", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("dead_at", TS, nullable=False, server_default=_now),
    sa.Column("replayed_at", TS, nullable=True),
)

# Care requests (issue 16): one per claimed care need (request id = the matcher's claim id), sent to the
# provider; status open -> confirmed | declined | expired | cancelled.
care_requests = sa.Table(
    "care_requests",
    metadata,
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
    sa.Column("made_at", TS, nullable=False, server_default=_now),
    sa.Column("closed_at", TS, nullable=True),
    sa.Column("close_reason", sa.Text, nullable=True),
    sa.Index("care_requests_open_due", "respond_by", postgresql_where=sa.text("status = 'open'")),
    sa.Index("care_requests_proposal", "proposal_id"),
)

# Approved matches whose offer waits for care (issue 16): the household's care needs, the lease party,
# when it was approved; status waiting -> offered | cancelled.
care_gates = sa.Table(
    "care_gates",
    metadata,
    sa.Column("proposal_id", sa.Text, primary_key=True),
    sa.Column("region", sa.Text, nullable=False),
    sa.Column("case_id", sa.Text, nullable=False),
    sa.Column("unit_id", sa.Text, nullable=False),
    sa.Column("needs", ARRAY(sa.Text), nullable=False),
    sa.Column("lease_provider", sa.Text, nullable=True),
    sa.Column("approved", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False, server_default=_now),
    sa.Column("confirmed_at", TS, nullable=True),
)
