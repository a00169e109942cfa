"""The matcher's API with the stack's OIDC tokens, against the real broker and PostgreSQL: region scope
(a token for region B on region A's data answers 404, as data that does not exist), the full problem of
a round for auditors only with every read in matcher.problem_reads, on-demand rounds for admins and
service identities and regions with pool data only, rate limited per region."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import delete, insert, select

from devstack.generate import generate_problem
from services.matcher.bootstrap import MatcherService
from services.matcher.entrypoints.http import create_api
from services.matcher.pool.tables import problem_reads, region_state, rounds
from services.matcher.settings import MatcherSettings
from services.platform.auth import DEV_KEY_ID, _dev_private_key, mint_dev_token
from tests.support.matcher_support import pool_events_for, produce_pool, wait_until

pytestmark = pytest.mark.integration


def bearer(roles: list[str], regions: list[str], subject: str = "staff-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(subject, roles, regions)}"}


async def _reads(service: Any, round_id: str) -> list[dict[str, Any]]:
    async with service.sessions() as session:
        query = select(problem_reads).where(problem_reads.c.round_id == round_id)
        return [dict(r) for r in (await session.execute(query)).mappings().all()]


async def test_region_scope_and_the_audited_full_problem(
    matcher: Any, kafka_bootstrap: str, region: str
) -> None:
    elsewhere = f"{region}-b"
    await produce_pool(kafka_bootstrap, region, pool_events_for(generate_problem(12, 6, seed=4), region))

    async def completed() -> str | None:
        async with matcher.sessions() as session:
            query = select(rounds.c.id).where(rounds.c.region == region, rounds.c.status == "completed")
            return (await session.execute(query.limit(1))).scalar()

    round_id = await wait_until(completed, timeout=60, what="the first round")
    reviewer = bearer(["reviewer"], [region])
    intruder = bearer(["reviewer", "auditor", "admin"], [elsewhere], "staff-b")
    auditor = bearer(["auditor"], [region], "auditor-a")
    everywhere = bearer(["approver"], ["*"])
    machine = bearer(["service"], [region], "svc-scheduler")
    now = int(time.time())
    foreign = jwt.encode(
        {"iss": "https://idp.example.org", "aud": "wijkmatch", "sub": "x", "iat": now, "exp": now + 600,
         "roles": ["auditor"], "wijkmatch_regions": ["*"]},
        _dev_private_key(), algorithm="ES256", headers={"kid": DEV_KEY_ID},
    )  # fmt: skip
    expired = mint_dev_token("late", ["auditor"], ["*"], ttl_s=60, now=now - 3600)

    transport = httpx.ASGITransport(app=create_api(matcher))
    async with httpx.AsyncClient(transport=transport, base_url="http://matcher") as client:
        region_paths = [f"/v1/regions/{region}/{what}" for what in ("pool", "proposals", "rounds")]
        for path in region_paths:
            assert (await client.get(path, headers=reviewer)).status_code == 200, path
            assert (await client.get(path, headers=everywhere)).status_code == 200, path
            # BOLA: region B's token on region A's data is told nothing exists
            refused = await client.get(path, headers=intruder)
            assert (refused.status_code, refused.json()) == (404, {"detail": "no such region in your scope"})
            assert (await client.get(path, headers=machine)).status_code == 403  # no staff role
            for token in (foreign, expired):
                answer = await client.get(path, headers={"Authorization": f"Bearer {token}"})
                assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        proposals = (await client.get(region_paths[1], headers=reviewer)).json()["proposals"]
        assert proposals and all(p["round_id"] == round_id for p in proposals)

        one = f"/v1/rounds/{round_id}"
        summary = await client.get(one, headers=reviewer)
        assert summary.status_code == 200 and "problem" not in summary.json()
        unknown = await client.get(f"/v1/rounds/{uuid.uuid4()}", headers=reviewer)
        assert (
            (await client.get(one, headers=intruder)).json() == unknown.json() == {"detail": "unknown round"}
        )
        assert (await client.get(one, params={"full": "true"}, headers=intruder)).status_code == 404
        # The full problem (care categories per case) is for auditors; nobody else leaves a trace of it
        for staff in (reviewer, everywhere, bearer(["admin"], ["*"])):
            refused = await client.get(one, params={"full": "true"}, headers=staff)
            assert refused.status_code == 403 and "problem" not in refused.json()
        assert await _reads(matcher, round_id) == []

        full = await client.get(one, params={"full": "true"}, headers=auditor)
        assert full.status_code == 200
        assert "care" in full.json()["problem"] and full.json()["result"]
        (read,) = await _reads(matcher, round_id)
        assert (read["region"], read["subject"], read["roles"]) == (region, "auditor-a", ["auditor"])
        await client.get(one, params={"full": "true"}, headers=auditor)
        assert len(await _reads(matcher, round_id)) == 2  # every read, not only the first


async def test_on_demand_rounds_are_for_admins_and_services_and_rate_limited_per_region(
    matcher_settings: MatcherSettings, region: str
) -> None:
    other = f"{region}-b"
    settings = matcher_settings.model_copy(
        update={"round_requests_per_minute": 1.0, "round_requests_burst": 2}
    )
    service = MatcherService(settings)  # not started: the route only records the request in PostgreSQL
    try:
        transport = httpx.ASGITransport(app=create_api(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://matcher") as client:

            async def start(where: str, headers: dict[str, str]) -> httpx.Response:
                return await client.post(f"/v1/rounds/{where}", headers=headers)

            for role in ("reviewer", "approver", "auditor"):
                assert (await start(region, bearer([role], ["*"]))).status_code == 403
            assert (await start(region, bearer(["admin"], [other]))).status_code == 404
            assert (await start(region, {})).status_code == 401
            unknown = await start(region, bearer(["admin"], [region]))  # no pool data has arrived yet
            assert (unknown.status_code, unknown.json()) == (404, {"detail": "no such region"})
            async with service.sessions() as session:
                query = select(region_state.c.requested_at).where(region_state.c.region == region)
                assert (await session.execute(query)).scalar() is None  # refused requests changed nothing
            async with service.engine.begin() as conn:  # what the first pool event of a region creates
                await conn.execute(insert(region_state), [{"region": region}, {"region": other}])

            admin = await start(region, bearer(["admin"], [region]))
            assert admin.status_code == 202 and admin.json()["status"] == "requested"
            assert (await start(region, bearer(["service"], ["*"], "svc-1"))).status_code == 202
            limited = await start(region, bearer(["admin"], ["*"]))
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            # the bucket is the region's, whoever asks; another region has its own
            assert (await start(region, bearer(["service"], [region], "svc-2"))).status_code == 429
            assert (await start(other, bearer(["admin"], [other]))).status_code == 202
            async with service.sessions() as session:
                query = select(region_state.c.requested_at).where(region_state.c.region == region)
                assert (await session.execute(query)).scalar() is not None
    finally:
        async with service.engine.begin() as conn:  # no other test's matcher should run these rounds
            await conn.execute(delete(region_state).where(region_state.c.region.in_([region, other])))
        await service.engine.dispose()
