"""Care claims against the real PostgreSQL (issue 16): concurrent approvals and a concurrent capacity
report never claim more than a provider reported (the provider rows' lock is the guard, whatever matcher
instance runs the approval); a lowered report keeps the claims and says so; a care request's deadline
releases its claim exactly once, with several expiry loops and across a restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.matcher.decisions import care
from services.matcher.pool import care_store
from services.matcher.pool.tables import care_claims, proposals
from services.notifier.adapters.expiry import ExpiryLoop
from services.notifier.adapters.tables import care_requests
from services.platform.db import create_engine, session_maker

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


@pytest.fixture
async def engine(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


def _proposal(region: str, n: int, needs: list[str]) -> dict[str, Any]:
    return {
        "id": f"{region}-p{n}",
        "region": region,
        "round_id": "r",
        "case_id": f"c{n}",
        "unit_id": f"u{n}",
        "status": "approved",
        "priority": 1,
        "fit": {},
        "case_snapshot": {
            "id": f"c{n}",
            "group": "homeless",
            "household_size": 1,
            "priority": 1,
            "care_needs": needs,
        },
        "unit_snapshot": {
            "id": f"u{n}",
            "kind": "flex",
            "municipality": "GM1",
            "neighbourhood": "BU1",
            "max_persons": 1,
            "rent": 1,
        },
    }


async def _report(engine: AsyncEngine, region: str, providers: dict[str, int], at: datetime) -> None:
    async with session_maker(engine)() as session, session.begin():
        await care_store.set_providers(
            session,
            region,
            "BU1",
            "ggz",
            [{"provider": p, "slots": n, "reported_at": at} for p, n in providers.items()],
        )


async def _approve(engine: AsyncEngine, proposal_id: str) -> None:
    async with session_maker(engine)() as session, session.begin():
        await care.on_approved(session, proposal_id)


async def test_concurrent_approvals_and_reports_never_over_claim(engine: AsyncEngine) -> None:
    region = f"cdb-{uuid.uuid4().hex[:8]}"
    await _report(engine, region, {"prov-a": 3}, NOW)
    async with engine.begin() as conn:
        await conn.execute(insert(proposals), [_proposal(region, n, ["ggz"]) for n in range(8)])
    # Eight approvals (as several matcher instances would apply them) race a report lowering the slots to 2.
    await asyncio.gather(
        *(_approve(engine, f"{region}-p{n}") for n in range(8)),
        _report(engine, region, {"prov-a": 2}, NOW + timedelta(seconds=1)),
    )
    async with session_maker(engine)() as session:
        entries = await care_store.provider_entries(session, region)
        statuses = (
            await session.execute(
                select(proposals.c.status, proposals.c.reason).where(proposals.c.region == region)
            )
        ).all()
    (entry,) = entries
    assert entry.slots == 2 and 2 <= entry.claims <= 3  # never more than the most ever reported
    assert entry.over_claimed == entry.claims - 2  # a lowered report keeps the claims and says so
    cancelled = [s for s in statuses if s.status == "cancelled"]
    assert len(cancelled) == 8 - entry.claims and {s.reason for s in cancelled} == {"care_unavailable"}


async def test_deadline_releases_exactly_once_across_loops_and_a_restart(
    engine: AsyncEngine, migrated_database_url: str
) -> None:
    region = f"cdb-{uuid.uuid4().hex[:8]}"
    await _report(engine, region, {"prov-a": 1, "prov-b": 1}, NOW - timedelta(hours=1))
    async with engine.begin() as conn:
        await conn.execute(insert(proposals), [_proposal(region, 0, ["ggz"])])
    await _approve(engine, f"{region}-p0")
    async with engine.connect() as conn:
        (first,) = (
            (await conn.execute(select(care_claims).where(care_claims.c.region == region))).mappings().all()
        )
        # the notifier's request for it, its deadline already past (it passed while the notifier was down)
        await conn.execute(
            insert(care_requests).values(
                request_id=first["id"],
                proposal_id=first["proposal_id"],
                region=region,
                case_id="c0",
                unit_id="u0",
                care_type="ggz",
                provider=first["provider"],
                status="open",
                respond_by=NOW - timedelta(minutes=1),
                start_date=date.today(),
            )
        )
        await conn.commit()
    # two loops at once (two notifier instances), then a fresh one (a restart with a new engine)
    other = create_engine(migrated_database_url)
    try:
        loops = [ExpiryLoop(session_maker(e), "urn:wijkmatch:notifier") for e in (engine, other)]
        await asyncio.gather(*(loop.run_once() for loop in loops))
        await ExpiryLoop(session_maker(other), "urn:wijkmatch:notifier").run_once()
    finally:
        await other.dispose()
    async with engine.connect() as conn:
        expired_events = (
            await conn.execute(
                text(
                    "SELECT payload FROM notifier.outbox WHERE topic = 'wijkmatch.care-requests.v1' "
                    "AND payload->>'type' = 'nl.wijkmatch.care.expired' "
                    "AND payload->'data'->>'request_id' = :r"
                ),
                {"r": first["id"]},
            )
        ).all()
    assert len(expired_events) == 1
    data = expired_events[0][0]["data"]
    # the matcher applies it (and a redelivery) once: the claim expires, the next provider is claimed once
    for _ in range(2):
        async with session_maker(engine)() as session, session.begin():
            await care.on_expired(session, data)
    async with engine.connect() as conn:
        claims = (
            await conn.execute(
                select(care_claims.c.provider, care_claims.c.status)
                .where(care_claims.c.region == region)
                .order_by(care_claims.c.attempt)
            )
        ).all()
    assert [tuple(c) for c in claims] == [(first["provider"], "expired"), ("prov-b", "requested")]
