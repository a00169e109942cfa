"""Review and matcher together (in-process, real broker and PostgreSQL): the matcher proposes, the
proposal shows in the review API, a reviewer approves it, the matcher marks its proposal approved and
pins the pair in its next round."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from devstack.generate import generate_problem
from services.matcher.adapters.consumer import TOPICS as MATCHER_TOPICS
from services.matcher.bootstrap import MatcherService
from services.matcher.pool import repository as repo
from services.matcher.pool.tables import proposals, rounds
from services.matcher.settings import MatcherSettings
from services.review.app import create_app
from services.review.entrypoints.consumer import TOPICS as REVIEW_TOPICS
from tests.integration.review.helpers import auth, review_settings, wait_visible
from tests.support.kafka_support import start_group_at_end
from tests.support.matcher_support import pool_events_for, produce_pool, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


async def _matcher_status(service: MatcherService, proposal_id: str) -> str | None:
    async with service.sessions() as session:
        return (
            await session.execute(select(proposals.c.status).where(proposals.c.id == proposal_id))
        ).scalar_one_or_none()


async def _round_after(service: MatcherService, region: str, since: Any) -> dict[str, Any] | None:
    async with service.sessions() as session:
        row = (
            (
                await session.execute(
                    select(rounds)
                    .where(
                        rounds.c.region == region, rounds.c.started_at > since, rounds.c.status == "completed"
                    )
                    .order_by(rounds.c.started_at)
                    .limit(1)
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


async def test_an_approval_in_review_is_pinned_by_the_matcher(
    kafka_bootstrap: str, migrated_database_url: str
) -> None:
    region = f"rvm-{uuid.uuid4().hex[:8]}"
    matcher = MatcherService(
        MatcherSettings(
            database_url=migrated_database_url,
            kafka_bootstrap_servers=kafka_bootstrap,
            debounce_s=0.5,
            max_delay_s=5.0,
            scheduler_interval_s=0.1,
            consumer_group=f"matcher-rv-{uuid.uuid4().hex[:8]}",
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            shutdown_grace_s=5.0,
            instance_id=f"rv-{uuid.uuid4().hex[:6]}",
        )
    )
    settings = review_settings(kafka_bootstrap, migrated_database_url)
    app = create_app(settings, configure_logs=False)
    # Both fresh groups start where the test starts, not at what earlier tests left on the shared broker
    # (the full suite's run of 2026-12-07 timed out here after 30 s, both groups replaying that backlog).
    await start_group_at_end(kafka_bootstrap, matcher.settings.consumer_group, MATCHER_TOPICS)
    await start_group_at_end(kafka_bootstrap, settings.consumer_group, REVIEW_TOPICS)
    await matcher.start()
    try:
        async with app.router.lifespan_context(app):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://review.test")
            await produce_pool(
                kafka_bootstrap, region, pool_events_for(generate_problem(30, 20, seed=3), region)
            )
            reviewer = auth("reviewer", [region])
            items = await wait_visible(client, region, 3, reviewer)
            # Only requested rounds from here on, so the round inspected below is ours.
            matcher.scheduler.debounce_s = matcher.scheduler.max_delay_s = 3600.0
            await wait_until(lambda: not matcher.scheduler.tasks, timeout=60, what="no round in flight")
            chosen = items[0]
            # The matcher's context reaches the review detail (issue 9): eligible homes, rank, candidates.
            detail = (await client.get(f"/v1/proposals/{chosen['id']}", headers=reviewer)).json()
            assert detail["group"] is not None and detail["eligible_units"] >= 1
            others = detail["eligible_households"] - 1
            assert 1 <= detail["rank"] <= detail["eligible_households"]
            assert len(detail["candidates"]) == min(5, others)
            assert detail["explanation"]["competition"] != ""
            answer = await client.post(
                f"/v1/proposals/{chosen['id']}/approve", headers={**reviewer, "Idempotency-Key": "e2e-1"}
            )
            assert answer.status_code == 200 and answer.json()["status"] == "approved"

            async def approved_in_matcher() -> bool:
                return await _matcher_status(matcher, chosen["id"]) == "approved"

            await wait_until(approved_in_matcher, timeout=60, what="the matcher to apply match.approved")
            async with matcher.sessions() as session, session.begin():
                since = (await session.execute(select(func.now()))).scalar_one()
                await repo.request_round(session, region)
            row = await wait_until(
                lambda: _round_after(matcher, region, since), timeout=90, what="next round"
            )
            problem = json.loads(row["problem"])
            assert {"case": chosen["case"], "unit": chosen["unit"]} in problem["pinned"]
            await client.aclose()
    finally:
        await matcher.stop()
