"""Decisions, offers and offer responses: their effect on proposals and the region's pool.

approved -> pinned (until the offer is answered); rejected, declined, expired -> forbidden pair and
both sides back in the pool (the case parked for N days under refusal_policy=park_case); accepted ->
unit let, case housed, counted in its neighbourhood and complex.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.matcher.pool import repository as repo
from services.matcher.pool.tables import cases, housed, proposals, units

log = logging.getLogger(__name__)

# proposal status a decision may move from -> to. Decisions, offers and responses come on different
# topics, so nothing orders them: an offer event for a still-pending proposal implies its approval
# (only approved matches are offered), and the approval arriving after it is then ignored.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "match.approved": (frozenset({"pending"}), "approved"),
    "match.rejected": (frozenset({"pending"}), "rejected"),
    "offer.made": (frozenset({"pending", "approved"}), "offered"),
    "offer.expired": (frozenset({"pending", "approved", "offered"}), "expired"),
    "offer.accepted": (frozenset({"pending", "approved", "offered"}), "accepted"),
    "offer.declined": (frozenset({"pending", "approved", "offered"}), "declined"),
}
REFUSALS = frozenset({"match.rejected", "offer.expired", "offer.declined"})


@dataclass(frozen=True)
class RefusalPolicy:
    policy: str = "forbid_pair"
    park_days: float = 14.0


@dataclass(frozen=True)
class Outcome:
    applied: bool
    region: str
    detail: str


async def apply_decision(
    session: AsyncSession, short_type: str, data: dict[str, Any], refusal: RefusalPolicy
) -> Outcome:
    """Apply one validated decision/offer/response payload (data as in EVENTS.md)."""
    region = data["region"]
    proposal_id = data["proposal_id"]
    row = (
        (await session.execute(select(proposals).where(proposals.c.id == proposal_id).with_for_update()))
        .mappings()
        .first()
    )
    if row is None:
        return Outcome(False, region, "unknown_proposal")
    if row["region"] != region or row["case_id"] != data["case"] or row["unit_id"] != data["unit"]:
        return Outcome(False, region, "proposal_mismatch")
    allowed, target = TRANSITIONS[short_type]
    if row["status"] not in allowed:
        return Outcome(False, region, f"ignored_in_status_{row['status']}")

    values: dict[str, Any] = {"status": target, "updated_at": func.now()}
    if "offer_id" in data:
        values["offer_id"] = data["offer_id"]
    if data.get("reason_code"):
        values["reason"] = data["reason_code"]
    await session.execute(update(proposals).where(proposals.c.id == proposal_id).values(**values))

    case_id, unit_id = row["case_id"], row["unit_id"]
    if short_type == "offer.made":
        await _set_status(session, region, case_id, unit_id, case_status="offered", unit_status="offered")
    elif short_type in REFUSALS:
        await repo.forbid(session, region, case_id, unit_id, short_type.replace(".", "_"), proposal_id)
        parked = repo.park_until(datetime.now(UTC), refusal.policy, refusal.park_days)
        await repo.release_case(session, region, case_id, parked_until=parked)
        await repo.release_unit(session, region, unit_id)
    elif short_type == "offer.accepted":
        await _set_status(session, region, case_id, unit_id, case_status="housed", unit_status="let")
        await _record_housed(session, row)
    await repo.touch_region(session, region)
    return Outcome(True, region, target)


async def _set_status(
    session: AsyncSession, region: str, case_id: str, unit_id: str, *, case_status: str, unit_status: str
) -> None:
    await session.execute(
        update(cases)
        .where(cases.c.region == region, cases.c.id == case_id, cases.c.status.in_(("proposed", "offered")))
        .values(status=case_status, updated_at=func.now())
    )
    await session.execute(
        update(units)
        .where(units.c.region == region, units.c.id == unit_id, units.c.status.in_(("proposed", "offered")))
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
