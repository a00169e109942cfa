"""The review read model and audit log (PostgreSQL schema `review`), as SQLModel classes.

`ProposalBase` / `RoundBase` / `AuditBase` are the fields the API returns; the `table=True` classes add
what only the service needs. Every column holds ids, codes and numbers — never personal data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Float, Integer, MetaData, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from services.review.settings import SCHEMA

metadata = MetaData(schema=SCHEMA)


class ReviewModel(SQLModel, registry=registry(metadata=metadata)):
    pass


def _tz() -> Any:
    return DateTime(timezone=True)


class ProposalBase(ReviewModel):
    id: str = Field(sa_column=Column(Text, primary_key=True), description="proposal id (from the matcher)")
    region: str = Field(sa_column=Column(Text, nullable=False, index=True))
    round_id: str = Field(sa_column=Column(Text, nullable=False, index=True))
    case: str = Field(sa_column=Column("case_id", Text, nullable=False), description="pseudonymous case id")
    unit: str = Field(sa_column=Column("unit_id", Text, nullable=False))
    priority: int = Field(sa_column=Column(Integer, nullable=False))
    fit_total: int = Field(sa_column=Column(Integer, nullable=False))
    status: str = Field(
        sa_column=Column(Text, nullable=False, index=True),
        description="pending | awaiting_second | approved | rejected | cancelled",
    )
    proposed_at: datetime = Field(sa_column=Column(_tz(), nullable=False))
    first_signer: str | None = Field(default=None, sa_column=Column(Text))
    first_signed_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    decided_by: str | None = Field(default=None, sa_column=Column(Text))
    decided_role: str | None = Field(default=None, sa_column=Column(Text))
    decided_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    reason_code: str | None = Field(default=None, sa_column=Column(Text))
    note: str | None = Field(default=None, sa_column=Column(Text))
    cancel_reason: str | None = Field(default=None, sa_column=Column(Text))
    offer_status: str | None = Field(default=None, sa_column=Column(Text), description="offered | expired")
    group: str | None = Field(
        default=None,
        sa_column=Column("household_group", Text),
        description="the household's target group (null: the proposal event did not carry it)",
    )
    eligible_units: int | None = Field(
        default=None,
        sa_column=Column(Integer),
        description="homes in the round this household was eligible for (hard rules 1-8; null: not given)",
    )


class Proposal(ProposalBase, table=True):
    __tablename__ = "proposals"

    fit: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    explanation: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    eligible_households: int | None = Field(default=None, sa_column=Column(Integer))
    rank: int | None = Field(default=None, sa_column=Column("candidate_rank", Integer))
    candidates: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSONB(none_as_null=True)))
    offer_id: str | None = Field(default=None, sa_column=Column(Text))
    # Issue 16: the household's care categories (from match.proposed; passed on with the approval).
    care_needs: list[str] | None = Field(default=None, sa_column=Column(JSONB(none_as_null=True)))
    # Issue 16, intermediary letting: the care provider that takes the lease (null: the household).
    lease_provider: str | None = Field(default=None, sa_column=Column(Text))
    decision_hash: str | None = Field(default=None, sa_column=Column(Text))
    version: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))


class RoundBase(ReviewModel):
    id: str = Field(sa_column=Column(Text, primary_key=True))
    region: str = Field(sa_column=Column(Text, nullable=False, index=True))
    status: str = Field(sa_column=Column(Text, nullable=False))
    objective: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    placed_by_group: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    unplaced_by_group: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    unplaced_by_reason: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    solve_seconds: float = Field(sa_column=Column(Float, nullable=False))
    problem_sha256: str = Field(sa_column=Column(Text, nullable=False))
    completed_at: datetime = Field(sa_column=Column(_tz(), nullable=False))


class Round(RoundBase, table=True):
    __tablename__ = "rounds"

    # round.completed's per-household list [{case, reason, eligible_units}], most urgent first (null: the
    # event did not carry it); read a slice at a time (repository.unplaced_of)
    unplaced: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSONB(none_as_null=True)))


class AuditBase(ReviewModel):
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    at: datetime = Field(sa_column=Column(_tz(), nullable=False))
    actor: str = Field(sa_column=Column(Text, nullable=False), description="pseudonymous staff id (sub)")
    role: str = Field(sa_column=Column(Text, nullable=False))
    action: str = Field(sa_column=Column(Text, nullable=False))
    region: str = Field(sa_column=Column(Text, nullable=False, index=True))
    proposal_id: str | None = Field(default=None, sa_column=Column(Text))
    round_id: str | None = Field(default=None, sa_column=Column(Text))
    input_sha256: str | None = Field(default=None, sa_column=Column(Text))
    reason_code: str | None = Field(default=None, sa_column=Column(Text))
    note: str | None = Field(default=None, sa_column=Column(Text))
    prev_hash: str = Field(sa_column=Column(Text, nullable=False))
    hash: str = Field(sa_column=Column(Text, nullable=False, unique=True))


class AuditEntry(AuditBase, table=True):
    __tablename__ = "audit"


class IdempotencyRecord(ReviewModel, table=True):
    __tablename__ = "idempotency"

    actor: str = Field(sa_column=Column(Text, primary_key=True))
    key: str = Field(sa_column=Column(Text, primary_key=True))
    request_sha256: str = Field(sa_column=Column(Text, nullable=False))
    status_code: int = Field(sa_column=Column(Integer, nullable=False))
    body: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = Field(sa_column=Column(_tz(), nullable=False, index=True))


class CareRequestBase(ReviewModel):
    """One care need of an approved match, asked of one provider (issue 16): what staff see."""

    # Keyed by (request, provider): an answer read before its claim, or from another provider, never
    # overwrites the claimed provider's row (only rows with a claim, attempt >= 1, are shown).
    request_id: str = Field(sa_column=Column(Text, primary_key=True))
    proposal_id: str = Field(sa_column=Column(Text, nullable=False, index=True))
    region: str = Field(sa_column=Column(Text, nullable=False))
    care_type: str = Field(sa_column=Column(Text, nullable=False))
    provider: str = Field(sa_column=Column(Text, primary_key=True))
    attempt: int = Field(sa_column=Column(Integer, nullable=False))
    continuity: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="false"))
    status: str = Field(
        sa_column=Column(Text, nullable=False), description="requested | confirmed | declined | timed_out"
    )
    reason_code: str | None = Field(default=None, sa_column=Column(Text))
    requested_at: datetime = Field(sa_column=Column(_tz(), nullable=False))
    answered_at: datetime | None = Field(default=None, sa_column=Column(_tz()))


class CareRequest(CareRequestBase, table=True):
    __tablename__ = "care_requests"
