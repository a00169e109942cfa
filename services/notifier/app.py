"""The notifier process: `wijkmatch notifier` (or `faststream run services.notifier.app:app`).

FastStream app shell: the subscriber (decisions, proposals, offer responses, pool), the expiry loop,
the webhook delivery worker and the outbox relay in one process; /healthz (the loops make progress),
/readyz (broker, database); every other path goes to the HTTP API (answers, admin). /metrics: the internal
health port (`wijkmatch notifier` serves it, WIJKMATCH_NOTIFIER_METRICS_PORT).
"""

from __future__ import annotations

from typing import Any

from faststream.asgi import AsgiFastStream

from schemas.topics import OFFER_RESPONSES, OFFERS
from services.notifier.adapters.consumer import TOPICS, register_consumer
from services.notifier.bootstrap import NotifierRuntime, build_runtime
from services.notifier.settings import NotifierSettings
from services.platform.kafka import ensure_topics
from services.platform.observability import configure_logging, health_routes, make_kafka_broker, ready_checks

SERVICE = "wijkmatch-notifier"


class NotifierAsgi(AsgiFastStream):
    """AsgiFastStream matches exact paths only; everything else goes to the FastAPI API."""

    api: Any = None

    async def not_found(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.api is not None:
            await self.api(scope, receive, send)
            return
        await super().not_found(scope, receive, send)


def create_app(
    settings: NotifierSettings | None = None,
    runtime: NotifierRuntime | None = None,
    *,
    configure_logs: bool = True,
) -> NotifierAsgi:
    settings = settings or NotifierSettings()
    if configure_logs:
        configure_logging(SERVICE, settings.log_level)
    runtime = runtime or build_runtime(settings)
    broker = make_kafka_broker(
        settings.kafka_bootstrap_servers, SERVICE, client_id=SERVICE, graceful_timeout=30.0
    )
    register_consumer(
        broker,
        runtime.sessions,
        runtime.applier,
        group_id=settings.group_id,
        on_applied=runtime.events_committed,
    )

    async def start() -> None:
        await ensure_topics(
            settings.kafka_bootstrap_servers,
            [*TOPICS, OFFERS, OFFER_RESPONSES],
            partitions=settings.topic_partitions,
        )
        await runtime.start(migrate=settings.migrate_on_start)

    # No /metrics on this port (it serves the API): `wijkmatch notifier` serves them on the health port.
    routes = health_routes(
        probes=runtime.probes, checks=ready_checks(broker=broker, engine=runtime.engine), metrics=False
    )
    app = NotifierAsgi(broker, asgi_routes=routes, on_startup=[start], after_shutdown=[runtime.stop])
    app.api = runtime.api()
    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        globals()["app"] = application = create_app()
        return application
    raise AttributeError(name)
