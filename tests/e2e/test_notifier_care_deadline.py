"""Issue 16, "deadline passes (also across a notifier restart) -> released exactly once", with real processes:
`wijkmatch notifier` takes a care claim and asks the provider (care.requested, signed webhook), is SIGKILLed,
the deadline passes while it is down, and then two notifier processes start at once (a restart onto two
replicas). The request expires exactly once: one care.expired on the topic, one row in the outbox, one
care.expired webhook, the request `expired`.

The deadline counts working days (at least one), so it cannot pass within a test's minutes: while no notifier
runs, the test moves the request's `respond_by` into the past, which is the state a real deadline passing
during the downtime leaves in the database. The in-process loop test (tests/integration/care/test_care_db.py)
covers several loops on one database; this one covers what a killed process leaves behind."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from devstack.webhook_receiver import Received, WebhookReceiver, for_regions
from schemas.events import TYPE_PREFIX, CareClaimed, make_event
from schemas.topics import CARE_REQUESTS, PROPOSALS
from services.notifier.adapters.consumer import TOPICS as NOTIFIER_TOPICS
from services.notifier.core.signing import new_secret
from services.platform.db import create_engine
from tests.support.kafka_support import start_group_at_end
from tests.support.matcher_support import TopicWatcher, produce, wait_until
from tests.support.notifier_support import NotifierProcess

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

PROVIDER = "prov-dl"


def _registry(tmp_path: Path, region: str, url: str, secret: str) -> Path:
    provider = {
        "id": PROVIDER,
        "sources": [f"urn:org:provider:{PROVIDER}"],
        "types": ["care.capacity.set", "care.answered"],
        "regions": [region],
        "webhooks": [
            {
                "id": f"care-{region}",
                "url": url,
                "events": ["care.requested", "care.expired"],
                "secret": secret,
            }
        ],
    }
    path = tmp_path / "organisations.yaml"
    path.write_text(yaml.safe_dump({"organisations": [provider]}))
    return path


def _claim(region: str) -> dict[str, Any]:
    data = CareClaimed(
        region=region,
        claim_id=f"cl-{region}",
        proposal_id=f"p-{region}",
        case="c-1",
        unit="u-1",
        care_type="ggz",
        provider=PROVIDER,
        area="wijk-a",
        neighbourhood="wijk-a",
        municipality="gem-a",
        attempt=1,
        continuity=False,
        needs=["ggz"],
    )
    now = datetime.now(UTC)
    return make_event("care.claimed", data, source="urn:wijkmatch:matcher", id=str(uuid.uuid4()), time=now)


async def test_a_care_deadline_passing_while_the_notifier_is_killed_expires_once_on_two_new_replicas(
    tmp_path: Path, kafka_bootstrap: str, migrated_database_url: str
) -> None:
    region = f"cdl-{uuid.uuid4().hex[:8]}"
    secret = new_secret()
    receiver = WebhookReceiver(keep=for_regions(region)).start()
    group = f"notifier-care-dl-{uuid.uuid4().hex[:8]}"
    env = {
        "DATABASE_URL": migrated_database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "WIJKMATCH_ORGANISATIONS": str(_registry(tmp_path, region, receiver.url, secret)),
        "WIJKMATCH_NOTIFIER_GROUP_ID": group,
        "WIJKMATCH_NOTIFIER_EXPIRY_POLL_S": "0.2",
        "WIJKMATCH_NOTIFIER_WEBHOOK_ALLOW_HTTP": "true",
        "WIJKMATCH_NOTIFIER_WEBHOOK_ALLOW_PRIVATE": "true",
        "WIJKMATCH_NOTIFIER_WEBHOOK_POLL_S": "0.1",
        "WIJKMATCH_NOTIFIER_RELAY_POLL_INTERVAL_S": "0.05",
    }
    # the fresh group starts where the test starts, not at what earlier tests left on the shared broker
    await start_group_at_end(kafka_bootstrap, group, NOTIFIER_TOPICS)
    engine = create_engine(migrated_database_url)
    first = NotifierProcess(tmp_path / "notifier-1.log", **env)
    replicas = [NotifierProcess(tmp_path / f"notifier-{i}.log", **env) for i in (2, 3)]
    claim = _claim(region)
    request_id = claim["data"]["claim_id"]
    try:
        async with TopicWatcher(kafka_bootstrap, CARE_REQUESTS, {region}) as requests:
            first.start()
            await first.ready()
            await produce(kafka_bootstrap, PROPOSALS, region, [claim])
            await wait_until(
                lambda: requests.of_type("care.requested", region), timeout=60, what="care.requested"
            )
            await wait_until(
                lambda: receiver.received, timeout=30, what="the provider's care.requested webhook"
            )
            before = await _request(engine, request_id)
            # a working-day deadline: days away, not seconds
            assert before["status"] == "open"
            assert before["respond_by"] - datetime.now(UTC) > timedelta(hours=12)
            first.kill()

            # the deadline passes while no notifier runs
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE notifier.care_requests SET respond_by = now() - interval '1 minute' "
                        "WHERE request_id = :r"
                    ),
                    {"r": request_id},
                )
            for replica in replicas:
                replica.start()
            await asyncio.gather(*(replica.ready() for replica in replicas))
            # the same claim again after the restart (a redelivery): no second request
            await produce(kafka_bootstrap, PROPOSALS, region, [claim])
            await wait_until(
                lambda: requests.of_type("care.expired", region), timeout=60, what="care.expired"
            )
            await wait_until(
                lambda: any(_kind(r) == "care.expired" for r in receiver.received),
                timeout=60,
                what="the provider's care.expired webhook",
            )
            await asyncio.sleep(3.0)  # room for anything doubled to show up
            expired = requests.of_type("care.expired", region)
            requested = requests.of_type("care.requested", region)

        assert len({e["id"] for e in expired}) == 1  # a relay replay may repeat an id, never a new event
        assert expired[0]["data"]["request_id"] == request_id
        assert len({e["id"] for e in requested}) == 1
        row = await _request(engine, request_id)
        assert row["status"] == "expired" and row["close_reason"] == "deadline"
        async with engine.connect() as conn:
            outbox = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM notifier.outbox WHERE topic = :t "
                        "AND payload->>'type' = 'nl.wijkmatch.care.expired' "
                        "AND payload->'data'->>'request_id' = :r"
                    ),
                    {"t": CARE_REQUESTS, "r": request_id},
                )
            ).scalar_one()
        assert outbox == 1
        hooks = Counter((_kind(r), r.webhook_id) for r in receiver.received)
        assert sorted(kind for kind, _ in hooks) == ["care.expired", "care.requested"]
        for request in receiver.received:
            Webhook(secret).verify(request.body, request.headers)
    finally:
        first.kill()
        for replica in replicas:
            replica.stop()
        receiver.stop()
        await engine.dispose()


def _kind(received: Received) -> str:
    return str(received.json()["type"]).removeprefix(TYPE_PREFIX)


async def _request(engine, request_id: str) -> dict[str, Any]:
    async def read() -> dict[str, Any] | None:
        async with engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        text("SELECT * FROM notifier.care_requests WHERE request_id = :r"), {"r": request_id}
                    )
                )
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    return await wait_until(read, timeout=30, what="care request row")
