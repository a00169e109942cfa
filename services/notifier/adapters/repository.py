"""Offer state, deliveries and endpoints in schema `notifier`: every change with its outbox rows and its
delivery rows in the caller's transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.events import MatchApproved, MatchCancelled, OfferExpired, OfferMade, make_event
from schemas.topics import OFFERS
from services.notifier.adapters import metrics
from services.notifier.adapters.tables import (
    SCHEMA,
    case_referrers,
    deliveries,
    offers,
    proposal_cancellations,
    unit_owners,
)
from services.notifier.core.offers import (
    CANCELLED,
    EXPIRED,
    OPEN,
    ResponsePeriods,
    answer_refusal,
    event_id_for,
    make_offer,
)
from services.platform.outbox import dumps, enqueue

log = logging.getLogger("wijkmatch.notifier")


@dataclass(frozen=True)
class Outcome:
    applied: bool
    detail: str


async def schedule_deliveries(
    session: AsyncSession, organisation: str | None, short_type: str, event: dict[str, Any]
) -> int:
    """One delivery per enabled endpoint of `organisation` subscribed to the type; the webhook-id is the
    CloudEvent id, so a replayed input never delivers twice (unique per endpoint)."""
    if organisation is None:
        return 0
    result = await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.deliveries (endpoint_id, webhook_id, event_type, body) "
            f"SELECT id, :webhook_id, :event_type, :body FROM {SCHEMA}.endpoints "
            "WHERE organisation = :org AND enabled AND :event_type = ANY(event_types) "
            "ON CONFLICT ON CONSTRAINT deliveries_once_per_endpoint DO NOTHING"
        ),
        {"webhook_id": event["id"], "event_type": short_type, "body": dumps(event), "org": organisation},
    )
    return int(result.rowcount or 0)


async def schedule_for_offer(
    session: AsyncSession, recipients: tuple[str | None, ...], short_type: str, event: dict[str, Any]
) -> int:
    """Deliveries of an offer's event to each known recipient (the unit's corporation, the case's
    referrer); one organisation that is both gets it once (unique per endpoint and webhook-id)."""
    total = 0
    for organisation in dict.fromkeys(recipients):
        total += await schedule_deliveries(session, organisation, short_type, event)
    return total


async def corporation_of(session: AsyncSession, region: str, unit_id: str) -> str | None:
    return (
        await session.execute(
            select(unit_owners.c.corporation).where(
                unit_owners.c.region == region, unit_owners.c.unit_id == unit_id
            )
        )
    ).scalar_one_or_none()


async def referrer_of(session: AsyncSession, region: str, case_id: str) -> str | None:
    return (
        await session.execute(
            select(case_referrers.c.referrer).where(
                case_referrers.c.region == region, case_referrers.c.case_id == case_id
            )
        )
    ).scalar_one_or_none()


async def lease_party_of(session: AsyncSession, region: str, case_id: str) -> dict[str, Any] | None:
    """The lease party of a case as its pool upserts said (None: the case is not known here yet)."""
    row = (
        await session.execute(
            select(case_referrers.c.lease_provider).where(
                case_referrers.c.region == region, case_referrers.c.case_id == case_id
            )
        )
    ).first()
    if row is None:
        return None
    return {"kind": "care_provider", "provider": row[0]} if row[0] else {"kind": "household"}


async def record_unit_owner(
    session: AsyncSession, region: str, unit_id: str, corporation: str, source: str
) -> int:
    """Remember who owns a unit (from a pool unit upsert). Pool events and approvals travel on different
    topics, so an offer may have been made before its unit's owner was known: such open offers get their
    corporation now, and its endpoints the offer.made they missed (the same event, rebuilt from the
    row). Returns how many."""
    stmt = insert(unit_owners).values(region=region, unit_id=unit_id, corporation=corporation)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[unit_owners.c.region, unit_owners.c.unit_id],
            set_={"corporation": stmt.excluded.corporation, "updated_at": func.now()},
        )
    )
    return await _bind_open_offers(
        session, offers.c.unit_id, unit_id, offers.c.corporation, region, corporation, source
    )


async def record_case_referrer(
    session: AsyncSession,
    region: str,
    case_id: str,
    referrer: str,
    source: str,
    lease_provider: str | None = None,
) -> int:
    """Remember which care institution referred a case and who takes its lease (from a pool case upsert:
    the newest version says both); open offers for the case made before it was known get their referrer
    now, and its endpoints the offer.made they missed."""
    stmt = insert(case_referrers).values(
        region=region, case_id=case_id, referrer=referrer, lease_provider=lease_provider
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[case_referrers.c.region, case_referrers.c.case_id],
            set_={
                "referrer": stmt.excluded.referrer,
                "lease_provider": stmt.excluded.lease_provider,
                "updated_at": func.now(),
            },
        )
    )
    return await _bind_open_offers(
        session, offers.c.case_id, case_id, offers.c.referrer, region, referrer, source
    )


async def _bind_open_offers(
    session: AsyncSession,
    key_column: Any,
    key: str,
    recipient_column: Any,
    region: str,
    organisation: str,
    source: str,
) -> int:
    orphans = (
        (
            await session.execute(
                update(offers)
                .where(
                    offers.c.region == region,
                    key_column == key,
                    offers.c.status == OPEN,
                    recipient_column.is_(None),
                )
                .values({recipient_column.name: organisation})
                .returning(*offers.c)
            )
        )
        .mappings()
        .all()
    )
    for row in orphans:
        await schedule_deliveries(session, organisation, "offer.made", offer_made_event(row, source))
    return len(orphans)


def offer_made_event(row: Any, source: str) -> dict[str, Any]:
    """The offer.made CloudEvent of an offer row (identical to the one its creation put in the outbox)."""
    data = OfferMade(
        region=row["region"],
        offer_id=row["offer_id"],
        proposal_id=row["proposal_id"],
        case=row["case_id"],
        unit=row["unit_id"],
        respond_by=row["respond_by"],
        arrangements=row.get("arrangements"),
        lease_party=row.get("lease_party"),
    )
    return make_event(
        "offer.made", data, source=source, id=event_id_for(row["offer_id"], "offer.made"), time=row["made_at"]
    )


async def proposal_cancelled(session: AsyncSession, proposal_id: str) -> bool:
    """match.cancelled may overtake match.approved (different topics): a cancelled proposal is never
    offered, nor asked care for."""
    query = select(proposal_cancellations.c.proposal_id).where(
        proposal_cancellations.c.proposal_id == proposal_id
    )
    return (await session.execute(query)).first() is not None


async def make_offer_for(
    session: AsyncSession,
    approval: MatchApproved,
    now: datetime,
    periods: ResponsePeriods,
    source: str,
    *,
    arrangements: list[dict[str, Any]] | None = None,
    lease_party: dict[str, Any] | None = None,
) -> Outcome:
    """match.approved (or, for a household with care needs, the last care confirmation) -> one offer
    (never two: the proposal id is unique) + offer.made in the outbox, with the care arranged and the
    lease party when given (issue 16)."""
    if await proposal_cancelled(session, approval.proposal_id):
        return Outcome(False, "proposal_cancelled")
    if lease_party is None:  # a household without care needs: the lease party its case upsert named
        lease_party = await lease_party_of(session, approval.region, approval.case)
    offer = make_offer(approval, now, periods, arrangements=arrangements, lease_party=lease_party)
    corporation = await corporation_of(session, approval.region, approval.unit)
    referrer = await referrer_of(session, approval.region, approval.case)
    inserted = (
        await session.execute(
            insert(offers)
            .values(
                offer_id=offer.offer_id,
                proposal_id=offer.proposal_id,
                region=offer.region,
                case_id=offer.case,
                unit_id=offer.unit,
                corporation=corporation,
                referrer=referrer,
                status=OPEN,
                respond_by=offer.respond_by,
                made_at=now,
                arrangements=arrangements,
                lease_party=lease_party,
            )
            .on_conflict_do_nothing()
            .returning(offers.c.offer_id)
        )
    ).first()
    if inserted is None:
        return Outcome(False, "offer_exists")
    row = {
        "region": offer.region,
        "offer_id": offer.offer_id,
        "proposal_id": offer.proposal_id,
        "case_id": offer.case,
        "unit_id": offer.unit,
        "respond_by": offer.respond_by,
        "made_at": now,
        "arrangements": arrangements,
        "lease_party": lease_party,
    }
    event = offer_made_event(row, source)
    await enqueue(session, SCHEMA, topic=OFFERS, key=offer.region, event=event)
    if corporation is None:
        metrics.OFFERS_WITHOUT_RECIPIENT.labels("corporation").inc()
        log.warning("offer made for a unit of unknown corporation", extra={"offer_id": offer.offer_id})
    if referrer is None:
        metrics.OFFERS_WITHOUT_RECIPIENT.labels("referrer").inc()
        log.warning("offer made for a case of unknown referrer", extra={"offer_id": offer.offer_id})
    await schedule_for_offer(session, (corporation, referrer), "offer.made", event)
    metrics.OFFERS.labels("offer.made").inc()
    return Outcome(True, offer.offer_id)


async def cancel_proposal(
    session: AsyncSession, cancellation: MatchCancelled, event: dict[str, Any]
) -> Outcome:
    """match.cancelled: the proposal is never offered; an open offer for it closes (it will not expire) and
    its corporation and the case's referrer are told through their webhooks."""
    await session.execute(
        insert(proposal_cancellations)
        .values(proposal_id=cancellation.proposal_id, region=cancellation.region, reason=cancellation.reason)
        .on_conflict_do_nothing()
    )
    closed = (
        await session.execute(
            update(offers)
            .where(offers.c.proposal_id == cancellation.proposal_id, offers.c.status == OPEN)
            .values(status=CANCELLED, closed_at=func.now(), close_reason=cancellation.reason)
            .returning(offers.c.corporation, offers.c.referrer)
        )
    ).first()
    if closed is None:
        return Outcome(False, "no_open_offer")
    await schedule_for_offer(session, (closed.corporation, closed.referrer), "match.cancelled", event)
    return Outcome(True, "offer_cancelled")


async def close_answered(session: AsyncSession, data: Any, organisation: str, status: str) -> Outcome:
    """offer.accepted / offer.declined seen on the responses topic, from registered sender `organisation`:
    the open offer closes (no expiry) only if that sender may answer it and the answer names the offer's
    own region, proposal, case and unit (`answer_refusal`, the HTTP endpoint's rules); a refused answer
    changes nothing (Outcome detail `refused:<why>`)."""
    offer = await offer_row(session, data.offer_id, lock=True)
    if offer is None:
        return Outcome(False, "no_offer")
    refusal = answer_refusal(offer, organisation, data.model_dump())
    if refusal is not None:
        return Outcome(False, f"refused:{refusal}")
    if offer["status"] != OPEN:
        return Outcome(False, "not_open")
    await session.execute(
        update(offers)
        .where(offers.c.offer_id == data.offer_id, offers.c.status == OPEN)
        .values(status=status, closed_at=func.now(), close_reason="answered")
    )
    return Outcome(True, status)


async def expire_due(session: AsyncSession, now: datetime, source: str, limit: int = 100) -> list[str]:
    """Expire open offers past their deadline, each exactly once: the row lock (SKIP LOCKED lets several
    instances share the work) and the status change commit together with offer.expired in the outbox."""
    rows = (
        (
            await session.execute(
                select(offers)
                .where(offers.c.status == OPEN, offers.c.respond_by <= now)
                .order_by(offers.c.respond_by)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        .mappings()
        .all()
    )
    expired: list[str] = []
    for row in rows:
        await session.execute(
            update(offers)
            .where(offers.c.offer_id == row["offer_id"])
            .values(status=EXPIRED, closed_at=now, close_reason="deadline")
        )
        data = OfferExpired(
            region=row["region"],
            offer_id=row["offer_id"],
            proposal_id=row["proposal_id"],
            case=row["case_id"],
            unit=row["unit_id"],
            respond_by=row["respond_by"],
        )
        event = make_event(
            "offer.expired", data, source=source, id=event_id_for(row["offer_id"], "offer.expired"), time=now
        )
        await enqueue(session, SCHEMA, topic=OFFERS, key=row["region"], event=event)
        await schedule_for_offer(session, (row["corporation"], row["referrer"]), "offer.expired", event)
        metrics.OFFERS.labels("offer.expired").inc()
        expired.append(row["offer_id"])
    return expired


async def offer_row(session: AsyncSession, offer_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    query = select(offers).where(offers.c.offer_id == offer_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row is not None else None


__all__ = [
    "Outcome",
    "cancel_proposal",
    "close_answered",
    "corporation_of",
    "deliveries",
    "expire_due",
    "make_offer_for",
    "offer_row",
    "record_case_referrer",
    "record_unit_owner",
    "referrer_of",
    "schedule_deliveries",
    "schedule_for_offer",
]
