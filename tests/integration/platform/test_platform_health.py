"""/healthz, /readyz and /metrics of a FastStream app and a FastAPI app, against the real broker and DB."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from services.platform.db import create_engine
from services.platform.observability import (
    ProgressProbe,
    health_router,
    make_asgi_app,
    make_kafka_broker,
)

pytestmark = pytest.mark.integration


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")


async def test_faststream_app_is_ready_with_broker_and_database(
    kafka_bootstrap: str, engine: AsyncEngine
) -> None:
    registry = CollectorRegistry()
    Counter("wijkmatch_test_things", "things", registry=registry).inc(3)
    broker = make_kafka_broker(kafka_bootstrap, "pftest", registry=registry)
    probe = ProgressProbe("consumer", max_silence_s=60)
    app = make_asgi_app(broker, engine=engine, probes=[probe], registry=registry)
    await broker.start()
    try:
        async with _client(app) as client:
            ready = await client.get("/readyz")
            live = await client.get("/healthz")
            metrics = await client.get("/metrics")
    finally:
        await broker.stop()
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"broker": "ok", "database": "ok"}
    assert live.status_code == 200
    assert live.json()["checks"]["consumer"]["ok"] is True
    assert "wijkmatch_test_things_total 3.0" in metrics.text


async def test_faststream_app_is_not_ready_when_the_database_is_unreachable(kafka_bootstrap: str) -> None:
    broker = make_kafka_broker(kafka_bootstrap, "pftest", registry=CollectorRegistry())
    dead_db = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nothing", pool_timeout=1)
    app = make_asgi_app(broker, engine=dead_db, registry=CollectorRegistry(), ready_timeout_s=1)
    await broker.start()
    try:
        async with _client(app) as client:
            ready = await client.get("/readyz")
    finally:
        await broker.stop()
        await dead_db.dispose()
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"broker": "ok", "database": "fail"}


async def test_stale_progress_probe_fails_liveness_unless_there_is_no_work() -> None:
    probe = ProgressProbe("consumer", max_silence_s=0.0)
    idle = ProgressProbe("idle", max_silence_s=0.0, has_pending_work=lambda: False)
    app = FastAPI()
    app.include_router(health_router(probes=[probe, idle], registry=CollectorRegistry()))
    async with _client(app) as client:
        stale = await client.get("/healthz")
        probe.max_silence_s = 60
        probe.touch()
        fresh = await client.get("/healthz")
    assert stale.status_code == 503
    assert stale.json()["checks"]["consumer"]["ok"] is False
    assert stale.json()["checks"]["idle"]["ok"] is True
    assert fresh.status_code == 200


async def test_fastapi_router_checks_the_database(engine: AsyncEngine) -> None:
    registry = CollectorRegistry()
    Counter("wijkmatch_test_http", "requests", registry=registry).inc()
    app = FastAPI()
    app.include_router(health_router(engine=engine, registry=registry))
    async with _client(app) as client:
        ready = await client.get("/readyz")
        metrics = await client.get("/metrics")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok"}
    assert "wijkmatch_test_http_total 1.0" in metrics.text


async def test_make_kafka_broker_exports_faststream_metrics_for_consumed_messages(
    kafka_bootstrap: str, make_topic: Callable[..., str], unique_group: str
) -> None:
    topic = make_topic("metrics")
    registry = CollectorRegistry()
    broker = make_kafka_broker(kafka_bootstrap, "pfmetrics", registry=registry)
    received = asyncio.Event()

    @broker.subscriber(topic, group_id=unique_group, auto_offset_reset="earliest")
    async def handle(body: dict) -> None:
        received.set()

    app = make_asgi_app(broker, registry=registry)
    await broker.start()
    try:
        await broker.publish({"hello": "world"}, topic, key=b"r1")
        async with asyncio.timeout(20):
            await received.wait()
        async with _client(app) as client:
            metrics = await client.get("/metrics")
    finally:
        await broker.stop()
    sample = registry.get_sample_value(
        "faststream_received_messages_total",
        {"app_name": "pfmetrics", "broker": "kafka", "handler": topic},
    )
    assert sample == 1.0
    assert "faststream_received_messages_total" in metrics.text
