"""The review service as one ASGI app: `wijkmatch review` (uvicorn) — API, web page, consumer, relay.

FastAPI serves the API (/v1; its OpenAPI document at /openapi.json with a token), the page (/ …) and
/healthz, /readyz (metrics: the internal health port, `wijkmatch review` serves them there); its
lifespan runs migrations, starts the outbox relay and the FastStream broker with the subscriber, and
on shutdown stops the subscriber first (its message in flight finishes), then flushes the outbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from schemas.topics import DECISIONS, INTAKE_REJECTED, OFFERS, PROPOSALS
from services.platform.auth import serve_openapi
from services.platform.kafka import ensure_topics
from services.platform.observability import configure_logging, health_router, make_kafka_broker
from services.review.bootstrap import ReviewRuntime, build_runtime
from services.review.entrypoints.api import bearer_principal, create_api_router
from services.review.entrypoints.consumer import register_consumer
from services.review.entrypoints.page import create_page_router
from services.review.settings import ReviewSettings

SERVICE = "wijkmatch-review"
STATIC = Path(__file__).resolve().parent / "static"


def create_app(
    settings: ReviewSettings | None = None,
    runtime: ReviewRuntime | None = None,
    *,
    configure_logs: bool = True,
    consume: bool = True,
) -> FastAPI:
    settings = settings or ReviewSettings()
    if configure_logs:
        configure_logging(SERVICE, settings.log_level)
    runtime = runtime or build_runtime(settings)
    broker = make_kafka_broker(
        settings.kafka_bootstrap_servers, SERVICE, client_id=SERVICE, graceful_timeout=30.0
    )
    if consume:
        register_consumer(
            broker,
            runtime.sessions,
            group_id=settings.consumer_group,
            probe=runtime.progress,
            state=runtime.consumer_state,
            on_applied=lambda _: runtime.relay.wake(),
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(
            settings.kafka_bootstrap_servers,
            [PROPOSALS, OFFERS, DECISIONS, INTAKE_REJECTED],
            partitions=settings.topic_partitions,
        )
        await runtime.start(migrate=settings.migrate_on_start)
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()
            await runtime.stop()

    app = FastAPI(
        title="wijkmatch review",
        version="1",
        description="Allocation staff review proposed matches: explanation, decisions, four eyes, audit.",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.include_router(
        health_router(broker=broker, engine=runtime.engine, probes=[runtime.progress], metrics=False)
    )
    serve_openapi(app, bearer_principal)
    app.include_router(create_api_router(runtime))
    app.include_router(create_page_router(runtime))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        globals()["app"] = application = create_app()
        return application
    raise AttributeError(name)
