"""Decisions, offers and offer responses: load the proposal, let the pool model decide
(pool/model.py `decide`), save what it decided."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.matcher.pool import model
from services.matcher.pool import repository as repo
from services.matcher.pool.model import RefusalPolicy
from services.matcher.pool.tables import cases, housed, proposals, units

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    applied: bool
    region: str
    detail: str


async def apply_decision(
    session: AsyncSession, short_type: str, data: dict[str, Any], refusal: RefusalPolicy
) -> Outcome:
    """Apply one validated decision/offer/response payload (data as in EVENTS.md)."""
    decision = model.Decision(
        short_type, data["region"], data["case"], data["unit"], data.get("offer_id"), data.get("reason_code")
    )
    proposal_id = data["proposal_id"]
    query = select(proposals).where(proposals.c.id == proposal_id).with_for_update()
    row = (await session.execute(query)).mappings().first()
    proposal = None
    if row is not None:
        proposal = model.Proposal(row["id"], row["region"], row["case_id"], row["unit_id"], row["status"])
    decided = model.decide(proposal, decision, refusal, datetime.now(UTC))
    region = decision.region
    if not decided.applied:
        return Outcome(False, region, decided.detail)
    assert row is not None
    values: dict[str, Any] = {"status": decided.proposal_status, "updated_at": func.now()}
    if decided.offer_id is not None:
        values["offer_id"] = decided.offer_id
    if decided.reason:
        values["reason"] = decided.reason
    await session.execute(update(proposals).where(proposals.c.id == proposal_id).values(**values))
    case_id, unit_id = row["case_id"], row["unit_id"]
    if decided.set_status is not None:
        case_status, unit_status = decided.set_status
        await _set_status(session, region, case_id, unit_id, case_status=case_status, unit_status=unit_status)
    if decided.forbid is not None:
        await repo.forbid(session, region, case_id, unit_id, decided.forbid, proposal_id)
    if decided.release:
        await repo.release_case(session, region, case_id, parked_until=decided.parked_until)
        await repo.release_unit(session, region, unit_id)
    if decided.housed:
        await _record_housed(session, row)
    await _follow_claims(session, short_type, proposal_id, decided)
    await repo.touch_region(session, region)
    return Outcome(True, region, decided.detail)


async def _follow_claims(
    session: AsyncSession, short_type: str, proposal_id: str, decided: model.Decided
) -> None:
    """Issue 16: an approval claims care slots; an accepted offer makes them ongoing clients; a refusal
    (declined, expired, rejected) releases them."""
    from services.matcher.decisions import care
    from services.matcher.pool import care_store

    if short_type == "match.approved":
        await care.on_approved(session, proposal_id)
    elif decided.housed:
        await care_store.release_claims(session, [proposal_id], to="ongoing")
    elif decided.release:
        await care_store.release_claims(session, [proposal_id])


async def _set_status(
    session: AsyncSession, region: str, case_id: str, unit_id: str, *, case_status: str, unit_status: str
) -> None:
    await session.execute(
        update(cases)
        .where(cases.c.region == region, cases.c.id == case_id, cases.c.status.in_(model.HELD))
        .values(status=case_status, updated_at=func.now())
    )
    await session.execute(
        update(units)
        .where(units.c.region == region, units.c.id == unit_id, units.c.status.in_(model.HELD))
        .values(status=unit_status, updated_at=func.now())
    )


async def _record_housed(session: AsyncSession, row: Any) -> None:
    case_snap, unit_snap = row["case_snapshot"], row["unit_snapshot"]
    await session.execute(
        insert(housed)
        .values(
            region=row["region"],
            case_id=row["case_id"],
            unit_id=row["unit_id"],
            group=case_snap["group"],
            household_size=case_snap["household_size"],
            municipality=unit_snap["municipality"],
            neighbourhood=unit_snap["neighbourhood"],
            complex=unit_snap.get("complex"),
            proposal_id=row["id"],
            housed_at=func.now(),
        )
        .on_conflict_do_nothing()
    )
