"""The intake service process: `faststream run services.intake.app:app` (or `wijkmatch intake`).

FastStream app shell (AsgiFastStream): the batch consumer, the outbox relay in the same process,
/healthz (liveness: the consumer makes progress), /readyz (broker, database, the consumer has joined its
group), /metrics.
"""

from __future__ import annotations

from typing import Any

from faststream.asgi import AsgiFastStream

from schemas.topics import INTAKE_REJECTED, INTAKE_TOPIC_TYPES, POOL
from services.intake.bootstrap import IntakeRuntime, build_runtime
from services.intake.entrypoints.consumer import register_consumer
from services.intake.settings import IntakeSettings
from services.platform.kafka import ensure_topics
from services.platform.observability import configure_logging, make_asgi_app, make_kafka_broker

SERVICE = "wijkmatch-intake"


def create_app(
    settings: IntakeSettings | None = None,
    runtime: IntakeRuntime | None = None,
    *,
    configure_logs: bool = True,
) -> AsgiFastStream:
    settings = settings or IntakeSettings()
    if configure_logs:
        configure_logging(SERVICE, settings.log_level)
    runtime = runtime or build_runtime(settings)
    broker = make_kafka_broker(
        settings.kafka_bootstrap_servers, SERVICE, client_id=SERVICE, graceful_timeout=60.0
    )
    register_consumer(broker, runtime)

    async def database_ready() -> bool:
        return runtime.processor.healthy

    async def start() -> None:
        await ensure_topics(
            settings.kafka_bootstrap_servers,
            [*INTAKE_TOPIC_TYPES, INTAKE_REJECTED, POOL],
            partitions=settings.topic_partitions,
        )
        await runtime.start(migrate=settings.migrate_on_start)

    # Shutdown order (FastStream): the subscriber drains its batch in flight (commit + offset commit),
    # the broker stops, then after_shutdown flushes the outbox relay and closes the database.
    return make_asgi_app(
        broker,
        engine=runtime.engine,
        probes=[runtime.progress],
        extra_checks={"batches_commit": database_ready, "consumer_group": runtime.membership.ready},
        on_startup=[start],
        after_shutdown=[runtime.stop],
    )


def __getattr__(name: str) -> Any:
    # `faststream run services.intake.app:app` reads settings only when the app is asked for.
    if name == "app":
        globals()["app"] = application = create_app()
        return application
    raise AttributeError(name)
