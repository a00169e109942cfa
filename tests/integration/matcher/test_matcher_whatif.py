"""The matcher's what-if endpoint (POST /v1/regions/{region}/whatif) against the real broker and
PostgreSQL: it answers the comparison of the region's next-round problem as it is and changed, its
"now" side is a direct solve of the same pool, it keeps region scope (404) and roles (403), refuses
unknown changes (422), is rate limited per region (429) — and it changes nothing: not a matcher table of
the region, not the outbox, no record about the region on any topic."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devstack.generate import generate_problem
from services.matcher.entrypoints.http import create_api
from services.matcher.pool.problem import build_problem
from services.matcher.rounds.store import load_pool
from services.matcher.solver import solve_problem
from services.platform.auth import mint_dev_token
from tests.integration.lab.test_lab_pipeline import _db_fingerprint, _scan
from tests.support.matcher_support import pool_events_for, produce_pool, wait_until

pytestmark = pytest.mark.integration


def bearer(roles: list[str], regions: list[str], subject: str = "staff-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(subject, roles, regions)}"}


async def _pool_counts(service: Any, region: str) -> tuple[int, int]:
    from sqlalchemy import func, select

    from services.matcher.pool.tables import cases, units

    async with service.sessions() as session:
        n_cases = (await session.execute(select(func.count()).where(cases.c.region == region))).scalar_one()
        n_units = (await session.execute(select(func.count()).where(units.c.region == region))).scalar_one()
    return int(n_cases), int(n_units)


async def a_pool_without_rounds(
    service: Any, kafka_bootstrap: str, region: str, problem: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The problem's pool in the matcher with no round run on it (so its homes are all still vacant);
    returns the next-round problem as the matcher builds it and its direct solve."""
    service.scheduler.debounce_s = service.scheduler.max_delay_s = 3600.0
    await produce_pool(kafka_bootstrap, region, pool_events_for(problem, region))
    want = (len(problem["cases"]), len(problem["units"]))
    await wait_until(lambda: _counts_are(service, region, want), timeout=90, what="the pool in the matcher")
    async with service.sessions() as session:
        pool, _ = await load_pool(session, region)
        await session.rollback()
    current = build_problem(pool, "direct")
    return current, solve_problem(current, time_limit_s=10, workers=1, deterministic=True)


async def _counts_are(service: Any, region: str, want: tuple[int, int]) -> bool:
    return await _pool_counts(service, region) == want


async def test_whatif_compares_and_writes_nothing(matcher: Any, kafka_bootstrap: str, region: str) -> None:
    at_start, _ = await _scan(kafka_bootstrap, {}, region)
    current, direct = await a_pool_without_rounds(
        matcher, kafka_bootstrap, region, generate_problem(40, 16, seed=6)
    )
    before_db = await _db_fingerprint(matcher, region)
    before_topics, own = await _scan(kafka_bootstrap, at_start, region)
    assert len(own) > 5  # positive control: the pool's own records are found this way
    direct_home = {a["case"]: a["unit"] for a in direct["assignments"]}
    assert len(direct_home) >= 5
    unit_nbh = {u["id"]: u["neighbourhood"] for u in current["units"]}
    code = unit_nbh[next(iter(direct_home.values()))]  # a neighbourhood where the direct solve houses someone

    reviewer = bearer(["reviewer"], [region])
    path = f"/v1/regions/{region}/whatif"
    transport = httpx.ASGITransport(app=create_api(matcher))
    async with httpx.AsyncClient(transport=transport, base_url="http://matcher", timeout=120) as client:
        # scope and roles first: none of these spends the region's rate limit
        assert (await client.post(path, json={"changes": ["policy.quota_bonus=0"]})).status_code == 401
        elsewhere = bearer(["reviewer", "admin"], [f"{region}-b"], "staff-b")
        refused = await client.post(path, json={"changes": ["policy.quota_bonus=0"]}, headers=elsewhere)
        assert (refused.status_code, refused.json()) == (404, {"detail": "no such region in your scope"})
        for roles in (["auditor"], ["service"]):
            answer = await client.post(path, json={"changes": []}, headers=bearer(roles, [region]))
            assert answer.status_code == 403, roles
        unknown = await client.post(
            "/v1/regions/no-such-region/whatif", json={"changes": []}, headers=bearer(["admin"], ["*"])
        )
        assert unknown.status_code == 404
        extra = await client.post(path, json={"changes": [], "publish": True}, headers=reviewer)
        assert extra.status_code == 422

        # 1: removing a neighbourhood moves exactly the households whose home was there (or more)
        answer = await client.post(path, json={"changes": [f"neighbourhood.remove={code}"]}, headers=reviewer)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["cases"] == len(current["cases"]) and body["units"] == len(current["units"])
        assert sum(body["placed_by_group"]["current"].values()) == len(direct["assignments"])
        moved = {d["case"]: d for d in body["households_with_a_different_outcome"]}
        assert moved
        # per household only its pseudonymous id and the two homes: no group (auditors see that, audited)
        assert all(set(d) == {"case", "current", "changed"} for d in moved.values())
        for case, unit in direct_home.items():
            if unit_nbh[unit] == code:
                assert case in moved and moved[case]["current"] == unit
                assert moved[case]["changed"] is None or unit_nbh[moved[case]["changed"]] != code
        for d in moved.values():
            assert d["current"] == direct_home.get(d["case"])  # the "now" side is the direct solve
        assert set(body["mix_share_by_neighbourhood"]) >= {
            n["code"] for n in current["neighbourhoods"] if n["households"]
        }
        # 2: a change that changes nothing changes no household's outcome
        same = current["policy"]["quota_bonus"]
        answer = await client.post(path, json={"changes": [f"policy.quota_bonus={same}"]}, headers=reviewer)
        assert answer.status_code == 200 and answer.json()["households_with_a_different_outcome"] == []
        # 3: an unknown change is refused after the rate limit was taken
        answer = await client.post(path, json={"changes": ["policy.nationality=1"]}, headers=reviewer)
        assert answer.status_code == 422 and "unknown change" in answer.json()["detail"]
        # 4: the burst (3) is spent
        answer = await client.post(path, json={"changes": ["policy.quota_bonus=0"]}, headers=reviewer)
        assert answer.status_code == 429 and int(answer.headers["retry-after"]) >= 1

    assert await _db_fingerprint(matcher, region) == before_db
    assert (await _scan(kafka_bootstrap, before_topics, region))[1] == []
