"""HTTP gateway for organisations without a Kafka producer: POST /v1/events -> the event's Kafka topic.

Same contract as the topics: a CloudEvent JSON body, validated by the same core as the consumer, produced
with the region (data.region) as key; 202 only once the broker acknowledged it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter

from schemas.events import INTAKE_TYPES, TOPIC_OF_TYPE, CloudEvent
from schemas.topics import VACANCIES
from services.intake.settings import IntakeSettings
from services.platform.admission import MAX_VALUE_BYTES, Accepted, validate_message
from services.platform.admission.http import read_bounded_body
from services.platform.admission.rate_limit import RateLimiter
from services.platform.admission.registry import Organisation, Registry, load_registry
from services.platform.kafka import CLOUDEVENTS_HEADERS, make_producer
from services.platform.observability import health_router

log = logging.getLogger("wijkmatch.intake.gateway")

GATEWAY_REQUESTS = Counter(
    "wijkmatch_intake_gateway_requests_total",
    "Gateway requests by outcome (accepted, rejected, unauthorized, forbidden, rate_limited, unavailable)",
    ["outcome", "organisation"],
)

_EVENT_SCHEMA = CloudEvent.model_json_schema()
_INTAKE_TYPE_NAMES = sorted(t for types in INTAKE_TYPES.values() for t in types)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def _api_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, credentials = auth.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def _route(value: bytes) -> tuple[str, bytes | None, str | None]:
    """Topic (by the event type), Kafka key (data.region) and claimed `source` of a body; the core judges
    the rest."""
    try:
        document = json.loads(value)
    except (ValueError, RecursionError):
        return VACANCIES, None, None
    if not isinstance(document, dict):
        return VACANCIES, None, None
    claimed_type = document.get("type")
    # Only a string can name a topic (a list or object is not even hashable): anything else goes to the
    # core, which reports it on /type like the consumer does.
    topic = TOPIC_OF_TYPE.get(claimed_type, VACANCIES) if isinstance(claimed_type, str) else VACANCIES
    if topic not in INTAKE_TYPES:
        topic = VACANCIES  # a wijkmatch-internal or unknown type: the core explains why it is refused
    data = document.get("data")
    region = data.get("region") if isinstance(data, dict) else None
    source = document.get("source")
    return (
        topic,
        region.encode("utf-8", "replace") if isinstance(region, str) else None,
        source if isinstance(source, str) else None,
    )


def _forbidden(organisation: Organisation) -> JSONResponse:
    GATEWAY_REQUESTS.labels("forbidden", organisation.id).inc()
    return _error(403, f"this API key belongs to {organisation.id}; it may not send as that source")


def create_gateway(
    settings: IntakeSettings | None = None,
    *,
    registry: Registry | None = None,
    producer: AIOKafkaProducer | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    settings = settings or IntakeSettings()
    registry = registry or load_registry(settings.organisations)
    limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    state: dict[str, AIOKafkaProducer] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["producer"] = producer or make_producer(settings.kafka_bootstrap_servers, linger_ms=0)
        await state["producer"].start()
        try:
            yield
        finally:
            await state["producer"].stop()

    app = FastAPI(
        title="wijkmatch intake gateway",
        version="1",
        description=(
            "Send the CloudEvents of EVENTS.md over HTTP instead of Kafka. Authenticate with your "
            "organisation's API key (`Authorization: Bearer KEY` or `X-Api-Key: KEY`); you may only send "
            "as your own `source`. The event goes to the same Kafka topic, keyed by `data.region`."
        ),
        lifespan=lifespan,
        # Every route but liveness/readiness needs credentials (docs/security.md): the OpenAPI document is
        # served to an organisation's API key, and the port has no interactive docs.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> Any:
        key = _api_key(request)
        if key is None or registry.by_api_key(key) is None:
            return _error(401, "missing or unknown API key", {"WWW-Authenticate": "Bearer"})
        return JSONResponse(app.openapi())

    async def producer_ready() -> bool:
        p = state.get("producer")
        return p is not None and bool(await p.partitions_for(VACANCIES))

    # No /metrics here: this port is public, and the request counters name every organisation. The
    # gateway process serves them on its internal metrics port (WIJKMATCH_INTAKE_GATEWAY_METRICS_PORT).
    app.include_router(health_router(extra_checks={"kafka_producer": producer_ready}, metrics=False))

    @app.post(
        "/v1/events",
        status_code=202,
        summary="Submit one CloudEvent",
        responses={
            202: {"description": "The broker has the event", "content": {"application/json": {}}},
            401: {"description": "Missing or unknown API key"},
            403: {"description": "The event's source belongs to another organisation"},
            413: {"description": "Body larger than 1 MiB"},
            415: {"description": "Content-Type is not application/json or application/cloudevents+json"},
            422: {"description": "Invalid event: `errors` lists {path (JSON Pointer), message}"},
            429: {"description": "Rate limit of your organisation exceeded; see Retry-After"},
            503: {"description": "The broker did not acknowledge the event; retry"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "A CloudEvent (structured mode) of one of: " + ", ".join(_INTAKE_TYPE_NAMES),
                "content": {
                    "application/cloudevents+json": {"schema": _EVENT_SCHEMA},
                    "application/json": {"schema": _EVENT_SCHEMA},
                },
            }
        },
    )
    async def submit_event(request: Request) -> Any:
        key = _api_key(request)
        organisation = registry.by_api_key(key) if key else None
        if organisation is None:
            GATEWAY_REQUESTS.labels("unauthorized", "unknown").inc()
            return _error(401, "missing or unknown API key", {"WWW-Authenticate": "Bearer"})
        wait_s = limiter.take(organisation.id, clock())
        if wait_s > 0:
            GATEWAY_REQUESTS.labels("rate_limited", organisation.id).inc()
            return _error(
                429,
                f"rate limit of {settings.rate_limit_per_s:g} events/s exceeded",
                {"Retry-After": str(max(1, math.ceil(wait_s)))},
            )
        if not _declares_json(request):
            GATEWAY_REQUESTS.labels("rejected", organisation.id).inc()
            return _error(
                415,
                "send the event with Content-Type: application/json or application/cloudevents+json "
                "(structured-mode CloudEvent)",
            )
        body = await read_bounded_body(request)
        if body is None:
            GATEWAY_REQUESTS.labels("rejected", organisation.id).inc()
            return _error(413, f"the body is larger than {MAX_VALUE_BYTES} bytes (1 MiB)")
        topic, kafka_key, source = _route(body)
        owner = registry.by_source(source) if source is not None else None
        if owner is not None and owner.id != organisation.id:
            # Before validation: errors judged by another organisation's rights would reveal them.
            return _forbidden(organisation)
        verdict = validate_message(
            topic=topic, partition=0, offset=0, key=kafka_key, value=body, registry=registry
        )
        if not isinstance(verdict, Accepted):
            GATEWAY_REQUESTS.labels("rejected", organisation.id).inc()
            return JSONResponse(
                {
                    "errors": verdict.errors,
                    "event_id": verdict.event_id,
                    "value_sha256": hashlib.sha256(body).hexdigest(),
                },
                status_code=422,
            )
        if verdict.organisation.id != organisation.id:
            return _forbidden(organisation)
        return await _produce(state["producer"], topic, verdict, body, organisation)

    return app


JSON_MEDIA_TYPES = frozenset({"application/json", "application/cloudevents+json"})


def _declares_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type in JSON_MEDIA_TYPES


async def _produce(
    producer: AIOKafkaProducer, topic: str, event: Accepted, body: bytes, organisation: Organisation
) -> JSONResponse:
    try:
        metadata = await producer.send_and_wait(
            topic, value=body, key=event.region.encode(), headers=CLOUDEVENTS_HEADERS
        )
    except MessageSizeTooLargeError:
        # Within our 1 MiB but over what the producer or broker takes (key, headers and framing count
        # too): retrying cannot help, so not a 503.
        GATEWAY_REQUESTS.labels("rejected", organisation.id).inc()
        return _error(413, "the event is too large for the broker once framed; send a smaller event")
    except Exception as exc:
        GATEWAY_REQUESTS.labels("unavailable", organisation.id).inc()
        log.warning(
            "broker did not acknowledge", extra={"event": "produce_failed", "error": type(exc).__name__}
        )
        return _error(503, "the broker did not acknowledge the event; retry later", {"Retry-After": "5"})
    GATEWAY_REQUESTS.labels("accepted", organisation.id).inc()
    log.info(
        "event accepted",
        extra={
            "event": "gateway_accepted",
            "organisation": organisation.id,
            "type": event.type,
            "event_id": event.event_id,
            "topic": topic,
            "partition": metadata.partition,
            "offset": metadata.offset,
        },
    )
    return JSONResponse(
        {"id": event.event_id, "topic": topic, "partition": metadata.partition, "offset": metadata.offset},
        status_code=202,
    )
