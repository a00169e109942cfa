"""Helpers of the review integration tests: tokens, events, waiting, reading the decisions topic."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from schemas.events import make_event
from schemas.topics import DECISIONS, PROPOSALS
from services.platform.auth import AuthSettings, mint_dev_token
from services.review.settings import ReviewSettings

MATCHER_SOURCE = "urn:wijkmatch:matcher"
# The one region of this test run whose policy asks for four eyes.
FOUR_EYES_REGION = f"rv4-{uuid.uuid4().hex[:10]}"


def review_settings(kafka_bootstrap: str, database_url: str, **overrides: Any) -> ReviewSettings:
    return ReviewSettings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        consumer_group=f"review-test-{uuid.uuid4().hex[:8]}",
        relay_poll_interval_s=0.05,
        **overrides,
    )


def token(role: str, regions: list[str], subject: str | None = None, **kwargs: Any) -> str:
    return mint_dev_token(subject or f"staff-{role}", [role], regions, settings=AuthSettings(), **kwargs)


def auth(role: str, regions: list[str], subject: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, regions, subject)}"}


# The optional context of match.proposed and round.completed, as the matcher sends it since issue 9.
CANDIDATES = [{"case": "case-other-1", "rank": 1}, {"case": "case-other-2", "rank": 3}]
CONTEXT = {
    "group": "institution_leaver",
    "eligible_units": 4,
    "eligible_households": 9,
    "rank": 2,
    "candidates": CANDIDATES,
}
UNPLACED = [
    {"case": "case-u-1", "reason": "care_capacity", "eligible_units": 2},
    {"case": "case-u-2", "reason": "outranked", "eligible_units": 5},
]


def proposed_event(
    region: str, round_id: str, *, priority: int = 700_000, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    pid = str(uuid.uuid4())
    data = {
        **(context or {}),
        "region": region,
        "round_id": round_id,
        "proposal_id": pid,
        "case": f"case-{pid[:6]}",
        "unit": f"unit-{pid[:6]}",
        "priority": priority,
        "fit": {"preference": 40, "size": 30, "accessibility": 0, "total": 70},
        "explanation": [
            f"priority {priority}",
            "preference +40: 2nd preferred neighbourhood",
            "size +30: the home fits the household exactly",
            "uses 1 of 3 `ggz` care slots in GM0344 (2 in use after this round)",
        ],
    }
    return make_event(
        "match.proposed", data, source=MATCHER_SOURCE, id=f"proposed-{pid}", time=datetime.now(UTC)
    )


def round_completed_event(
    region: str, round_id: str, *, unplaced: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    data = {
        "unplaced": unplaced,
        "region": region,
        "round_id": round_id,
        "status": "OPTIMAL",
        "objective": {"priority": 1, "quota_points": 0, "fit": 70, "priority_bound": 1, "gap": 0.0},
        "placed_by_group": {"homeless": 2},
        "unplaced_by_group": {"homeless": 1, "statushouder": 1},
        "unplaced_by_reason": {"outranked": 1, "care_capacity": 1},
        "solve_seconds": 0.5,
        "problem_sha256": "ab" * 32,
    }
    return make_event(
        "round.completed", data, source=MATCHER_SOURCE, id=f"completed-{round_id}", time=datetime.now(UTC)
    )


async def publish_round(
    publish: Any, region: str, n: int, *, with_context: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """n proposals and the round's completion; `with_context`: with the optional context fields."""
    round_id = str(uuid.uuid4())
    context = CONTEXT if with_context else None
    events = [
        proposed_event(region, round_id, priority=900_000 - i * 1000, context=context) for i in range(n)
    ]
    for e in events:
        await publish(PROPOSALS, region, e)
    unplaced = UNPLACED if with_context else None
    await publish(PROPOSALS, region, round_completed_event(region, round_id, unplaced=unplaced))
    return round_id, events


async def wait_for(
    check: Callable[[], Awaitable[Any]], timeout: float = 30.0, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


async def wait_visible(client: httpx.AsyncClient, region: str, n: int, headers: dict[str, str]) -> list[dict]:
    async def check() -> list[dict] | None:
        r = await client.get("/v1/proposals", params={"region": region, "limit": 200}, headers=headers)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        return items if len(items) >= n else None

    return await wait_for(check, what=f"{n} proposals of {region} in the API")


async def decisions_on_topic(kafka_bootstrap: str, region: str, idle_s: float = 2.0) -> list[dict[str, Any]]:
    """Every event on wijkmatch.decisions.v1 keyed by `region` (read from the start with a fresh group)."""
    consumer = AIOKafkaConsumer(
        DECISIONS,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"review-test-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        last = time.monotonic()
        while time.monotonic() - last < idle_s:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                last = time.monotonic()
                for record in records:
                    if record.key == region.encode():
                        out.append(json.loads(record.value))
    finally:
        await consumer.stop()
    return out
