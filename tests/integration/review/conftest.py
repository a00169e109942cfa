"""Review integration fixtures: the review app in-process (its lifespan: migrations, relay, FastStream
consumer) against the real broker and PostgreSQL, an HTTP client, and a producer."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from services.platform.kafka import make_producer
from services.review.app import create_app
from services.review.entrypoints.consumer import TOPICS
from tests.integration.review.helpers import FOUR_EYES_REGION, review_settings
from tests.support.kafka_support import start_group_at_end


@pytest.fixture
def region() -> str:
    return f"rv-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
async def review_app(kafka_bootstrap: str, migrated_database_url: str) -> AsyncIterator[Any]:
    """One running review app per test module; FOUR_EYES_REGION asks for two signatures."""
    settings = review_settings(
        kafka_bootstrap,
        migrated_database_url,
        four_eyes_regions=FOUR_EYES_REGION,
        bulk_per_minute=3,
        bulk_max_items=5,
    )
    # The module's fresh group starts at the current end of its topics, not at what earlier tests left on
    # the shared broker; the module's tests produce their events after this.
    await start_group_at_end(kafka_bootstrap, settings.consumer_group, TOPICS)
    app = create_app(settings, configure_logs=False)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(review_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=review_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://review.test") as c:
        yield c


@pytest.fixture
async def publish(kafka_bootstrap: str) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    producer = make_producer(kafka_bootstrap)
    await producer.start()

    async def send(topic: str, key: str, value: dict[str, Any] | bytes) -> None:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        await producer.send_and_wait(topic, raw, key=key.encode())

    try:
        yield send
    finally:
        await producer.stop()
