"""Care requests (issue 16) in schema `notifier`: a request per claimed care need (care.requested on
wijkmatch.care-requests.v1 + a signed webhook to the provider), the providers' answers, deadlines that
expire once, and the offer made only when every care need of the approved match is confirmed."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.envelope import deterministic_id
from schemas.events import CareClaimed, CareExpired, CareRequested, MatchApproved, make_event
from schemas.topics import CARE_REQUESTS
from services.notifier.adapters import metrics
from services.notifier.adapters.repository import (
    Outcome,
    make_offer_for,
    proposal_cancelled,
    schedule_deliveries,
)
from services.notifier.adapters.tables import SCHEMA, care_gates, care_requests
from services.notifier.core import care as core
from services.notifier.core.offers import ResponsePeriods
from services.platform.outbox import enqueue

log = logging.getLogger("wijkmatch.notifier")

WAITING, OFFERED, GATE_CANCELLED = "waiting", "offered", "cancelled"


def _event_id(request_id: str, short_type: str) -> str:
    return deterministic_id("wijkmatch.notifier.care", request_id, short_type)


async def _gate(session: AsyncSession, proposal_id: str) -> dict[str, Any] | None:
    query = select(care_gates).where(care_gates.c.proposal_id == proposal_id).with_for_update()
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row is not None else None


async def _ensure_gate(
    session: AsyncSession,
    *,
    proposal_id: str,
    region: str,
    case: str,
    unit: str,
    needs: list[str],
    lease_provider: str | None,
    approved: bool,
) -> dict[str, Any]:
    stmt = insert(care_gates).values(
        proposal_id=proposal_id,
        region=region,
        case_id=case,
        unit_id=unit,
        needs=needs,
        lease_provider=lease_provider,
        approved=approved,
        status=WAITING,
    )
    set_: dict[str, Any] = {
        "lease_provider": func.coalesce(stmt.excluded.lease_provider, care_gates.c.lease_provider)
    }
    if approved:
        set_["approved"] = True
    else:  # from care.claimed: the matcher names the needs it arranges (those whose providers are known)
        set_["needs"] = stmt.excluded.needs
    await session.execute(stmt.on_conflict_do_update(index_elements=["proposal_id"], set_=set_))
    gate = await _gate(session, proposal_id)
    assert gate is not None
    return gate


async def waits_for_care(session: AsyncSession, approval: MatchApproved) -> bool:
    """match.approved: when the household has care needs (named by the approval, or known from a
    care.claimed already seen) the offer waits for the providers; True then (the gate is recorded)."""
    needs = list(approval.care_needs or ())
    existing = await _gate(session, approval.proposal_id)
    if not needs and existing is None:
        return False
    gate = await _ensure_gate(
        session,
        proposal_id=approval.proposal_id,
        region=approval.region,
        case=approval.case,
        unit=approval.unit,
        needs=needs or list(existing["needs"] if existing else []),
        lease_provider=None,
        approved=True,
    )
    return gate["status"] == WAITING or gate["status"] == OFFERED


async def on_claimed(
    session: AsyncSession, claim: CareClaimed, now: datetime, periods: ResponsePeriods, source: str
) -> Outcome:
    """care.claimed -> one care request to the named provider (+ care.requested, + its webhook)."""
    if await proposal_cancelled(session, claim.proposal_id):
        return Outcome(False, "proposal_cancelled")
    await _ensure_gate(
        session,
        proposal_id=claim.proposal_id,
        region=claim.region,
        case=claim.case,
        unit=claim.unit,
        needs=list(claim.needs),
        lease_provider=claim.lease_provider,
        approved=False,
    )
    respond_by = core.add_working_days(now, periods.care_days(claim.region))
    start = core.planned_start(now, periods.care_start_lead_days)
    inserted = (
        await session.execute(
            insert(care_requests)
            .values(
                request_id=claim.claim_id,
                proposal_id=claim.proposal_id,
                region=claim.region,
                case_id=claim.case,
                unit_id=claim.unit,
                care_type=claim.care_type,
                provider=claim.provider,
                continuity=claim.continuity,
                status=core.OPEN,
                respond_by=respond_by,
                start_date=start,
                made_at=now,
            )
            .on_conflict_do_nothing()
            .returning(care_requests.c.request_id)
        )
    ).first()
    if inserted is None:
        return Outcome(False, "request_exists")
    data = CareRequested(
        region=claim.region,
        request_id=claim.claim_id,
        proposal_id=claim.proposal_id,
        case=claim.case,
        unit=claim.unit,
        care_type=claim.care_type,
        provider=claim.provider,
        neighbourhood=claim.neighbourhood,
        municipality=claim.municipality,
        start_date=start,
        respond_by=respond_by,
        continuity=claim.continuity,
        lease_to_provider=claim.lease_provider is not None and claim.lease_provider == claim.provider,
    )
    event = make_event(
        "care.requested", data, source=source, id=_event_id(claim.claim_id, "care.requested"), time=now
    )
    await enqueue(session, SCHEMA, topic=CARE_REQUESTS, key=claim.region, event=event)
    await schedule_deliveries(session, claim.provider, "care.requested", event)
    metrics.CARE_REQUESTS.labels("care.requested").inc()
    return Outcome(True, claim.claim_id)


async def request_row(session: AsyncSession, request_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    query = select(care_requests).where(care_requests.c.request_id == request_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row is not None else None


async def close_request(
    session: AsyncSession,
    request: dict[str, Any],
    answer: str,
    reason_code: str | None,
    now: datetime,
    periods: ResponsePeriods,
    source: str,
) -> Outcome:
    """A valid answer of the request's own provider (checked by the caller): confirm or decline. A
    confirmation that completes the match's care makes the offer, with the arrangements."""
    status = core.CONFIRMED if answer == "confirm" else core.DECLINED
    await session.execute(
        update(care_requests)
        .where(care_requests.c.request_id == request["request_id"])
        .values(status=status, closed_at=now, close_reason=reason_code or answer)
    )
    metrics.CARE_REQUESTS.labels(f"care.{status}").inc()
    if status == core.CONFIRMED:
        await offer_when_arranged(session, request["proposal_id"], now, periods, source)
    return Outcome(True, status)


async def answer_from_topic(
    session: AsyncSession, data: Any, organisation: str, now: datetime, periods: ResponsePeriods, source: str
) -> Outcome:
    """care.answered read from wijkmatch.care-responses.v1 (sender = `organisation`, registry-checked):
    the HTTP endpoint's rules (core.check_care_answer), except that a late answer is simply not applied."""
    request = await request_row(session, data.request_id, lock=True)
    check = core.check_care_answer(
        request=request, organisation=organisation, data=data.model_dump(), now=now
    )
    if not check.ok:
        return Outcome(False, f"refused:{check.reason}")
    assert request is not None
    return await close_request(session, request, data.answer, data.reason_code, now, periods, source)


async def offer_when_arranged(
    session: AsyncSession, proposal_id: str, now: datetime, periods: ResponsePeriods, source: str
) -> Outcome:
    """The offer of a waiting, approved match once every care need has a confirmed request."""
    gate = await _gate(session, proposal_id)
    if gate is None or gate["status"] != WAITING or not gate["approved"]:
        return Outcome(False, "not_waiting")
    confirmed = (
        (
            await session.execute(
                select(care_requests).where(
                    care_requests.c.proposal_id == proposal_id, care_requests.c.status == core.CONFIRMED
                )
            )
        )
        .mappings()
        .all()
    )
    if not core.all_confirmed(gate["needs"], (r["care_type"] for r in confirmed)):
        return Outcome(False, "care_pending")
    by_need = {r["care_type"]: r for r in confirmed}
    arrangements = [
        {
            "care_type": need,
            "provider": by_need[need]["provider"],
            "start_date": by_need[need]["start_date"].isoformat(),
        }
        for need in sorted(gate["needs"])
    ]
    lease = gate["lease_provider"]
    lease_party = {"kind": "care_provider", "provider": lease} if lease else {"kind": "household"}
    approval = MatchApproved(
        region=gate["region"],
        proposal_id=proposal_id,
        case=gate["case_id"],
        unit=gate["unit_id"],
        decided_at=now,
    )
    outcome = await make_offer_for(
        session, approval, now, periods, source, arrangements=arrangements, lease_party=lease_party
    )
    await session.execute(
        update(care_gates)
        .where(care_gates.c.proposal_id == proposal_id)
        .values(status=OFFERED, confirmed_at=now)
    )
    return outcome


async def cancel_for_proposal(session: AsyncSession, proposal_id: str, now: datetime) -> int:
    """match.cancelled: open care requests of the proposal close (`cancelled`), the gate too."""
    result = await session.execute(
        update(care_requests)
        .where(
            care_requests.c.proposal_id == proposal_id,
            care_requests.c.status.in_((core.OPEN, core.CONFIRMED)),
        )
        .values(status=core.CANCELLED, closed_at=now, close_reason="match_cancelled")
    )
    await session.execute(
        update(care_gates)
        .where(care_gates.c.proposal_id == proposal_id, care_gates.c.status == WAITING)
        .values(status=GATE_CANCELLED)
    )
    return int(result.rowcount or 0)


async def expire_care_due(session: AsyncSession, now: datetime, source: str, limit: int = 100) -> list[str]:
    """Open care requests past their deadline expire, each exactly once (row lock, SKIP LOCKED, the status
    change and care.expired in the outbox commit together — across instances and restarts)."""
    rows = (
        (
            await session.execute(
                select(care_requests)
                .where(care_requests.c.status == core.OPEN, care_requests.c.respond_by <= now)
                .order_by(care_requests.c.respond_by)
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
            update(care_requests)
            .where(care_requests.c.request_id == row["request_id"])
            .values(status=core.EXPIRED, closed_at=now, close_reason="deadline")
        )
        data = CareExpired(
            region=row["region"],
            request_id=row["request_id"],
            proposal_id=row["proposal_id"],
            case=row["case_id"],
            care_type=row["care_type"],
            provider=row["provider"],
        )
        event = make_event(
            "care.expired", data, source=source, id=_event_id(row["request_id"], "care.expired"), time=now
        )
        await enqueue(session, SCHEMA, topic=CARE_REQUESTS, key=row["region"], event=event)
        await schedule_deliveries(session, row["provider"], "care.expired", event)
        metrics.CARE_REQUESTS.labels("care.expired").inc()
        expired.append(row["request_id"])
    return expired


async def requests_of(session: AsyncSession, organisation: str, request_id: str) -> dict[str, Any] | None:
    row = await request_row(session, request_id)
    return row if row is not None and row["provider"] == organisation else None


__all__ = [
    "answer_from_topic",
    "cancel_for_proposal",
    "close_request",
    "expire_care_due",
    "offer_when_arranged",
    "on_claimed",
    "request_row",
    "waits_for_care",
]
