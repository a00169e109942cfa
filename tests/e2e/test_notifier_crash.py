"""`wijkmatch notifier` as a real process, SIGKILLed while webhook deliveries are in flight: after the
restart every delivery completes with its first webhook-id, no offer is made twice, and an offer whose
deadline passed during the downtime expires once."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from devstack.webhook_receiver import Answer, Received, WebhookReceiver, for_regions
from schemas.topics import DECISIONS, OFFERS, POOL
from services.notifier.core.offers import offer_id_for
from services.notifier.core.signing import new_secret
from services.platform.db import create_engine
from tests.conftest import TEST_PARTITIONS
from tests.support.matcher_support import TopicWatcher, produce, wait_until
from tests.support.notifier_support import NotifierProcess, approval, drain_backlog, pool_unit, write_registry

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


async def test_sigkill_mid_delivery_completes_after_restart_with_the_same_ids_and_expires_once(
    tmp_path: Path, kafka_bootstrap: str, migrated_database_url: str
) -> None:
    region = f"k-{uuid.uuid4().hex[:8]}"
    fast = f"{region}-fast"
    secret = new_secret()
    release = threading.Event()

    def behaviour(request: Received, index: int) -> Answer:
        # while `release` is unset every request hangs: the notifier is killed with them in flight
        return Answer(204) if release.is_set() else Answer(204, delay_s=30)

    # keep only this test's webhooks: the shared broker still carries earlier tests' events
    receiver = WebhookReceiver(behaviour=behaviour, keep=for_regions(region, fast)).start()
    registry = write_registry(
        tmp_path,
        [region, fast],
        [
            {
                "id": f"wh-{region}",
                "url": receiver.url,
                "events": ["offer.made", "offer.expired"],
                "secret": secret,
            }
        ],
    )
    env = {
        "DATABASE_URL": migrated_database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "WIJKMATCH_ORGANISATIONS": str(registry),
        "WIJKMATCH_NOTIFIER_GROUP_ID": f"notifier-e2e-{uuid.uuid4().hex[:8]}",
        # 30 s: the kill must come before the deadline even when the notifier first replays a long backlog
        # of earlier tests' events (a fresh consumer group reads from the start)
        "WIJKMATCH_NOTIFIER_RESPONSE_PERIOD_BY_REGION": json.dumps({fast: 30 / 3600}),
        "WIJKMATCH_NOTIFIER_EXPIRY_POLL_S": "0.2",
        "WIJKMATCH_NOTIFIER_WEBHOOK_ALLOW_HTTP": "true",
        "WIJKMATCH_NOTIFIER_WEBHOOK_ALLOW_PRIVATE": "true",
        "WIJKMATCH_NOTIFIER_WEBHOOK_TIMEOUT_S": "5",
        "WIJKMATCH_NOTIFIER_WEBHOOK_LEASE_S": "6",
        "WIJKMATCH_NOTIFIER_WEBHOOK_BACKOFF_BASE_S": "0.5",
        "WIJKMATCH_NOTIFIER_WEBHOOK_POLL_S": "0.1",
        "WIJKMATCH_NOTIFIER_RELAY_POLL_INTERVAL_S": "0.05",
    }
    engine = create_engine(migrated_database_url)
    first = NotifierProcess(tmp_path / "notifier-1.log", **env).start()
    second = NotifierProcess(tmp_path / "notifier-2.log", **env)
    slow_approval = approval(region, f"p-slow-{region}", "c-1", "u-1")
    due_approval = approval(fast, f"p-due-{region}", "c-2", "u-2")
    try:
        async with TopicWatcher(kafka_bootstrap, OFFERS, {region, fast}) as offers:
            await first.ready()
            # the 30 s deadline below must not be spent replaying earlier tests' events
            await drain_backlog(engine, kafka_bootstrap, TEST_PARTITIONS)
            await produce(kafka_bootstrap, POOL, region, [pool_unit(region, "u-1")])
            await produce(kafka_bootstrap, POOL, fast, [pool_unit(fast, "u-2")])
            await produce(kafka_bootstrap, DECISIONS, region, [slow_approval])
            await produce(kafka_bootstrap, DECISIONS, fast, [due_approval])
            await wait_until(lambda: len(receiver.received) >= 2, timeout=60, what="both webhooks in flight")
            in_flight = {r.webhook_id for r in receiver.received}
            first.kill()
            respond_by = await _respond_by(engine, offer_id_for(due_approval["data"]["proposal_id"]))
            # the deadline passes while the notifier is down
            await asyncio.sleep(max(0.0, (respond_by - datetime.now(UTC)).total_seconds()) + 1.0)
            assert await _status(engine, offer_id_for(due_approval["data"]["proposal_id"])) == "open"
            release.set()
            second.start()
            await second.ready()
            # the same approval again after the restart: still one offer
            await produce(
                kafka_bootstrap, DECISIONS, region, [approval(region, f"p-slow-{region}", "c-1", "u-1")]
            )
            await wait_until(lambda: offers.of_type("offer.expired", fast), timeout=60, what="offer.expired")
            done = await wait_until(
                lambda: _all_delivered(engine, f"wh-{region}", 3, {region, fast}),
                timeout=60,
                what="three deliveries delivered",
            )
            await asyncio.sleep(2.0)  # room for anything doubled to show up
            made = offers.of_type("offer.made")
            assert sorted({e["data"]["proposal_id"] for e in made}) == sorted(
                [slow_approval["data"]["proposal_id"], due_approval["data"]["proposal_id"]]
            )
            assert len({e["id"] for e in made}) == 2  # a relay replay may repeat an id, never a new offer
            expired = offers.of_type("offer.expired")
            assert len({e["id"] for e in expired}) == 1
            assert expired[0]["data"]["offer_id"] == offer_id_for(due_approval["data"]["proposal_id"])
        assert await _offer_count(engine, [slow_approval, due_approval]) == 2
        # every delivery in flight at the kill completed later with the same webhook-id
        delivered_ids = {row["webhook_id"] for row in done}
        assert in_flight <= delivered_ids
        expired_id = expired[0]["id"]
        assert delivered_ids == in_flight | {expired_id}
        counts = Counter(r.webhook_id for r in receiver.received)
        assert counts[expired_id] == 1
        for request in receiver.received:
            Webhook(secret).verify(request.body, request.headers)
    finally:
        first.kill()
        second.stop()
        receiver.stop()
        await engine.dispose()


async def _respond_by(engine, offer_id: str) -> datetime:
    async def read() -> datetime | None:
        async with engine.connect() as conn:
            return (
                await conn.execute(
                    text("SELECT respond_by FROM notifier.offers WHERE offer_id = :o"), {"o": offer_id}
                )
            ).scalar()

    return await wait_until(read, timeout=30, what="offer row")


async def _status(engine, offer_id: str) -> str:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT status FROM notifier.offers WHERE offer_id = :o"), {"o": offer_id}
            )
        ).scalar_one()


async def _offer_count(engine, approvals: list[dict]) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT count(*) FROM notifier.offers WHERE proposal_id = ANY(:p)"),
                {"p": [a["data"]["proposal_id"] for a in approvals]},
            )
        ).scalar_one()


async def _all_delivered(engine, endpoint_id: str, expected: int, regions: set[str]) -> list[dict] | None:
    # Only this test's regions: the endpoint's organisation may also be sent offers that earlier tests left
    # on the shared broker and database (a fresh consumer group replays them).
    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    text(
                        "SELECT webhook_id, status FROM notifier.deliveries WHERE endpoint_id = :e "
                        "AND (body::jsonb -> 'data' ->> 'region') = ANY(:regions)"
                    ),
                    {"e": endpoint_id, "regions": sorted(regions)},
                )
            )
            .mappings()
            .all()
        )
    mine = [dict(r) for r in rows]
    delivered = [r for r in mine if r["status"] == "delivered"]
    return delivered if len(delivered) >= expected and len(delivered) == len(mine) else None
