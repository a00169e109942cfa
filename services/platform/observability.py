"""Structured JSON logging without personal data, and liveness/readiness/metrics endpoints for every service.

- `configure_logging(service, level)`: one JSON object per line on stderr.
- `ProgressProbe`: a consumer touches it on every poll or batch; /healthz fails when it goes stale.
- `health_routes(...)` / `make_asgi_app(...)`: /healthz, /readyz, /metrics for a FastStream app.
- `health_router(...)`: the same three endpoints for a FastAPI app.
- `make_kafka_broker(...)`: a FastStream KafkaBroker with Prometheus middleware, our logger and safe producer
  settings (acks=all, no idempotence: the bundled broker has none).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from faststream.asgi import AsgiFastStream, AsgiResponse, get
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

if TYPE_CHECKING:
    from fastapi import APIRouter
    from faststream.kafka import KafkaBroker
    from sqlalchemy.ext.asyncio import AsyncEngine

# -- logging ---------------------------------------------------------------------------------------------

PERSONAL_KEYS: frozenset[str] = frozenset(
    {"name", "email", "phone", "citizen_number", "birth_date", "personal", "contact", "bsn", "address"}
)
REDACTED = "[personal data removed]"

_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "taskName"}


def scrub(value: Any, keys: frozenset[str] = PERSONAL_KEYS) -> Any:
    """A copy of value with every mapping entry whose key is personal removed, at any depth."""
    if isinstance(value, Mapping):
        return {k: scrub(v, keys) for k, v in value.items() if str(k).lower() not in keys}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(v, keys) for v in value]
    return value


class PersonalDataFilter(logging.Filter):
    """Drops personal keys from a record's extra fields and dict arguments, at any depth."""

    def __init__(self, keys: Iterable[str] = PERSONAL_KEYS) -> None:
        super().__init__()
        self.keys = frozenset(k.lower() for k in keys)

    def filter(self, record: logging.LogRecord) -> bool:
        for attr in list(vars(record)):
            if attr in _RECORD_ATTRS:
                continue
            if attr.lower() in self.keys:
                delattr(record, attr)
            else:
                setattr(record, attr, scrub(getattr(record, attr), self.keys))
        if isinstance(record.args, Mapping):
            record.args = scrub(record.args, self.keys)
        elif isinstance(record.args, tuple):
            record.args = tuple(
                scrub(a, self.keys) if isinstance(a, Mapping | list | tuple) else a for a in record.args
            )
        return True


class JsonFormatter(logging.Formatter):
    """ts, level, service, logger, msg, then the record's extra fields; exceptions as `exc`."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(service_name: str, level: str | int = "INFO", *, stream: Any = None) -> logging.Handler:
    """Route every logger (root, uvicorn, faststream, aiokafka) to one JSON-lines handler on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service_name))
    handler.addFilter(PersonalDataFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream", "faststream.access"):
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
    logging.getLogger("aiokafka").setLevel(max(root.level, logging.WARNING))
    return handler


# -- liveness --------------------------------------------------------------------------------------------


class ProgressProbe:
    """Proof that a consumer loop is making progress: touch() on every poll/batch.

    Stale when untouched for `max_silence_s`. A consumer that only runs on messages (a FastStream handler)
    cannot touch while its topics are idle: give `has_pending_work` (e.g. "lag > 0") so that idleness with
    nothing to do is not counted as a hang.
    """

    def __init__(
        self,
        name: str = "consumer",
        max_silence_s: float = 120.0,
        has_pending_work: Callable[[], bool | Awaitable[bool]] | None = None,
    ) -> None:
        self.name = name
        self.max_silence_s = max_silence_s
        self.has_pending_work = has_pending_work
        self._last = time.monotonic()
        self.touches = 0

    def touch(self) -> None:
        self._last = time.monotonic()
        self.touches += 1

    def age_s(self) -> float:
        return time.monotonic() - self._last

    async def alive(self) -> bool:
        if self.age_s() <= self.max_silence_s:
            return True
        if self.has_pending_work is None:
            return False
        pending = self.has_pending_work()
        if inspect.isawaitable(pending):
            pending = await pending
        return not pending


async def liveness(probes: Sequence[ProgressProbe]) -> tuple[bool, dict[str, Any]]:
    """Answering at all proves the event loop runs; every probe must also be alive."""
    checks: dict[str, Any] = {"event_loop": "ok"}
    ok = True
    for probe in probes:
        alive = await probe.alive()
        ok = ok and alive
        checks[probe.name] = {"ok": alive, "last_progress_s": round(probe.age_s(), 3)}
    return ok, checks


# -- readiness -------------------------------------------------------------------------------------------

ReadyCheck = Callable[[], Awaitable[bool]]


def broker_check(broker: Any, timeout_s: float = 2.0) -> ReadyCheck:
    async def check() -> bool:
        return bool(await broker.ping(timeout=timeout_s))

    return check


def database_check(engine: AsyncEngine, timeout_s: float = 2.0) -> ReadyCheck:
    from sqlalchemy import text

    async def check() -> bool:
        async with asyncio.timeout(timeout_s), engine.connect() as conn:
            return (await conn.execute(text("SELECT 1"))).scalar() == 1

    return check


def ready_checks(
    *, broker: Any = None, engine: AsyncEngine | None = None, timeout_s: float = 2.0, **extra: ReadyCheck
) -> dict[str, ReadyCheck]:
    checks: dict[str, ReadyCheck] = {}
    if broker is not None:
        checks["broker"] = broker_check(broker, timeout_s)
    if engine is not None:
        checks["database"] = database_check(engine, timeout_s)
    checks.update(extra)
    return checks


async def readiness(checks: Mapping[str, ReadyCheck]) -> tuple[bool, dict[str, Any]]:
    async def run(check: ReadyCheck) -> bool:
        try:
            return await check()
        except Exception:
            return False

    names = list(checks)
    results = await asyncio.gather(*(run(checks[n]) for n in names))
    return all(results), {n: "ok" if r else "fail" for n, r in zip(names, results, strict=True)}


# -- metrics ---------------------------------------------------------------------------------------------


def metrics_payload(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _body(ok: bool, checks: Mapping[str, Any]) -> bytes:
    return json.dumps({"status": "ok" if ok else "fail", "checks": checks}).encode()


# -- FastStream ------------------------------------------------------------------------------------------


def health_routes(
    *,
    probes: Sequence[ProgressProbe] = (),
    checks: Mapping[str, ReadyCheck] | None = None,
    registry: CollectorRegistry = REGISTRY,
    metrics: bool = True,
) -> list[tuple[str, Any]]:
    """`asgi_routes` for AsgiFastStream: /healthz, /readyz, /metrics.

    `metrics=False` leaves /metrics out, for a port that also serves an API: the process then serves its
    metrics on its internal health port (`serve_metrics`)."""

    json_type = {"Content-Type": "application/json"}
    ready = dict(checks or {})

    @get(include_in_schema=False)
    async def healthz(scope: Any) -> AsgiResponse:
        ok, detail = await liveness(probes)
        return AsgiResponse(_body(ok, detail), 200 if ok else 503, json_type)

    @get(include_in_schema=False)
    async def readyz(scope: Any) -> AsgiResponse:
        ok, detail = await readiness(ready)
        return AsgiResponse(_body(ok, detail), 200 if ok else 503, json_type)

    @get(include_in_schema=False)
    async def metrics_endpoint(scope: Any) -> AsgiResponse:
        payload, content_type = metrics_payload(registry)
        return AsgiResponse(payload, 200, {"Content-Type": content_type})

    routes: list[tuple[str, Any]] = [("/healthz", healthz), ("/readyz", readyz)]
    return [*routes, ("/metrics", metrics_endpoint)] if metrics else routes


def make_kafka_broker(
    bootstrap_servers: str,
    service_name: str,
    *,
    registry: CollectorRegistry = REGISTRY,
    **broker_kwargs: Any,
) -> KafkaBroker:
    """A KafkaBroker with Prometheus metrics (faststream_* series), our logger, a Tansu-safe producer and the
    process's Kafka security settings (KAFKA_SECURITY_PROTOCOL, ...; PLAINTEXT by default)."""
    from faststream.kafka import KafkaBroker
    from faststream.kafka.prometheus import KafkaPrometheusMiddleware

    middlewares = [KafkaPrometheusMiddleware(registry=registry, app_name=service_name)]
    middlewares.extend(broker_kwargs.pop("middlewares", ()))
    from services.platform.kafka import kafka_broker_security

    options: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": False,
        "logger": logging.getLogger(f"{service_name}.broker"),
        "security": kafka_broker_security(),
    }
    options.update(broker_kwargs)
    return KafkaBroker(bootstrap_servers, middlewares=middlewares, **options)


def make_asgi_app(
    broker: Any,
    *,
    engine: AsyncEngine | None = None,
    probes: Sequence[ProgressProbe] = (),
    registry: CollectorRegistry = REGISTRY,
    ready_timeout_s: float = 2.0,
    extra_checks: Mapping[str, ReadyCheck] | None = None,
    asgi_routes: Sequence[tuple[str, Any]] = (),
    **app_kwargs: Any,
) -> AsgiFastStream:
    """AsgiFastStream(broker) with /healthz, /readyz (broker ping + SELECT 1), /metrics and your routes.

    Run with `faststream run services.<svc>.app:app --host ... --port ...` or uvicorn; both stop gracefully
    on SIGINT/SIGTERM (subscribers drain, then on_shutdown hooks run).
    """
    checks = ready_checks(broker=broker, engine=engine, timeout_s=ready_timeout_s, **dict(extra_checks or {}))
    routes = [*health_routes(probes=probes, checks=checks, registry=registry), *asgi_routes]
    return AsgiFastStream(broker, asgi_routes=routes, **app_kwargs)


# -- FastAPI ---------------------------------------------------------------------------------------------


def health_router(
    *,
    broker: Any = None,
    engine: AsyncEngine | None = None,
    probes: Sequence[ProgressProbe] = (),
    registry: CollectorRegistry = REGISTRY,
    ready_timeout_s: float = 2.0,
    extra_checks: Mapping[str, ReadyCheck] | None = None,
    metrics: bool = True,
) -> APIRouter:
    """/healthz, /readyz, /metrics for a FastAPI app (`app.include_router(health_router(...))`).

    `metrics=False` leaves /metrics out: a public-facing app serves its metrics on an internal port
    instead (`serve_metrics`)."""
    from fastapi import APIRouter, Response

    checks = ready_checks(broker=broker, engine=engine, timeout_s=ready_timeout_s, **dict(extra_checks or {}))
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> Response:
        ok, detail = await liveness(probes)
        return Response(_body(ok, detail), 200 if ok else 503, media_type="application/json")

    @router.get("/readyz")
    async def readyz() -> Response:
        ok, detail = await readiness(checks)
        return Response(_body(ok, detail), 200 if ok else 503, media_type="application/json")

    if metrics:

        @router.get("/metrics")
        async def metrics_endpoint() -> Response:
            payload, content_type = metrics_payload(registry)
            return Response(payload, media_type=content_type)

    return router


def serve_metrics(host: str, port: int, registry: CollectorRegistry = REGISTRY) -> Any:
    """Prometheus metrics on their own internal health port, in a daemon thread; returns the server
    (`.shutdown()` and `.server_close()` stop it; `.server_port` is the port bound, useful with 0).
    For every process whose main port serves an API: no API port serves /metrics (docs/security.md)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


# -- shutdown --------------------------------------------------------------------------------------------


def stop_on_signals(
    stop: asyncio.Event | None = None, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)
) -> asyncio.Event:
    """An event set on SIGINT/SIGTERM, for loops that run outside FastStream/uvicorn (call inside the loop).

    A second signal restores the default handler, so a stuck shutdown can still be interrupted.
    """
    event = stop or asyncio.Event()
    loop = asyncio.get_running_loop()

    def handle(sig: int) -> None:
        logging.getLogger(__name__).info("stopping on signal", extra={"signal": signal.Signals(sig).name})
        event.set()
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(sig)

    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handle, sig)
    return event
