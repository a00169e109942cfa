"""HTTP API of the notifier: corporations answer offers; admins manage endpoints and dead letters.

- POST /v1/offer-responses: a CloudEvent `offer.accepted` / `offer.declined`, with the organisation's API
  key (`Authorization: Bearer KEY` or `X-Api-Key: KEY`) — the same validation and organisation checks as
  intake's gateway, and only the corporation that owns the offer's unit may answer (while its owner is
  not known, any registered sender: the matcher's rule, docs/notifier.md "Who may answer an offer"); an
  event id already used by that source gets 409. The offer closes and
  the event enters the outbox for wijkmatch.offer-responses.v1 in one transaction (so an answer and the
  expiry can never both win); 202 once the broker has it ("queued" if the relay has not sent it within a
  few seconds: it is durable and will be sent).
- GET /v1/offers/{offer_id}: the offer's state, for its corporation.
- /admin/...: endpoints (list, create, rotate secret, enable, disable), the delivery log, dead letters
  and replay; an OIDC bearer token (services.platform.auth, the staff tokens of every service) with the
  `admin` role for all regions (`*`): the admin API is not split by region.
- /openapi.json: for any caller above (an organisation's API key or a valid staff token); no /docs.
/healthz and /readyz are the app shell's; /metrics is on the internal health port only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from schemas.events import CODE_PATTERN
from schemas.topics import CARE_RESPONSES, OFFER_RESPONSES
from services.notifier.adapters import metrics
from services.notifier.adapters.delivery import replay_dead_letter
from services.notifier.adapters.endpoints import (
    WEBHOOK_EVENT_TYPES,
    check_endpoint_url,
    public_view,
)
from services.notifier.adapters.repository import offer_row
from services.notifier.adapters.tables import SCHEMA, dead_letters, deliveries, endpoints, offers
from services.notifier.core.care import check_care_answer
from services.notifier.core.offers import ANSWER_STATUS, ResponsePeriods, check_answer
from services.notifier.core.signing import SecretError, new_secret, secret_key
from services.notifier.core.urls import EndpointUrlError
from services.platform.admission.http import read_bounded_body
from services.platform.admission.outcome import MAX_VALUE_BYTES
from services.platform.admission.rate_limit import RateLimiter
from services.platform.auth import ALL_REGIONS, AuthError, Principal, TokenVerifier, bearer_token
from services.platform.inbox import record_once
from services.platform.observability import answer_503_while_the_database_is_away
from services.platform.outbox import enqueue

log = logging.getLogger("wijkmatch.notifier.http")
PUBLISH_WAIT_S = 5.0
_ATTEMPT_LOG = text(
    "SELECT delivery_id, attempt, started_at, duration_ms, status_code, error, verdict "
    f"FROM {SCHEMA}.delivery_attempts WHERE delivery_id = ANY(CAST(:ids AS bigint[])) "
    "ORDER BY delivery_id, attempt"
)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def api_key_of(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    key = request.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


class NewEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=100, pattern=CODE_PATTERN)]
    organisation: Annotated[str, Field(min_length=1, max_length=200, pattern=CODE_PATTERN)]
    url: Annotated[str, Field(min_length=1, max_length=2000)]
    events: Annotated[list[str], Field(min_length=1)]
    secret: str | None = None


class Rotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: str | None = None
    overlap_hours: Annotated[float, Field(ge=0, le=24 * 30)] | None = None


def create_api(
    *,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    registry: Any,
    validate_answer: Callable[[bytes], Any],
    verifier: TokenVerifier,
    allow_http: bool,
    allow_private: bool,
    rotation_overlap: timedelta,
    wake_relay: Callable[[], None],
    wake_worker: Callable[[], None],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    rate_limiter: RateLimiter | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    periods: ResponsePeriods | None = None,
    source: str = "urn:wijkmatch:notifier",
) -> FastAPI:
    """`validate_answer(body)` -> (envelope dict, typed data, organisation) or a dict of errors (422)."""
    api = FastAPI(title="wijkmatch notifier", version="1", openapi_url=None, docs_url=None, redoc_url=None)
    answer_503_while_the_database_is_away(api)

    def organisation_of(request: Request) -> Any:
        key = api_key_of(request)
        org = registry.by_api_key(key) if key else None
        if org is None:
            raise HTTPException(401, "missing or unknown API key", {"WWW-Authenticate": "Bearer"})
        return org

    async def staff_token(request: Request) -> Principal:
        try:
            return await verifier.verify(bearer_token(request.headers.get("authorization")))
        except AuthError as exc:
            metrics.AUTH_FAILURES.inc()
            raise HTTPException(401, str(exc), {"WWW-Authenticate": "Bearer"}) from None

    async def require_admin(request: Request) -> None:
        principal = await staff_token(request)
        if "admin" not in principal.roles or ALL_REGIONS not in principal.regions:
            raise HTTPException(403, "the admin API needs the admin role for all regions")

    async def any_caller(request: Request) -> None:
        key = api_key_of(request)
        if key and registry is not None and registry.by_api_key(key) is not None:
            return
        await staff_token(request)

    @api.get("/openapi.json", include_in_schema=False, dependencies=[Depends(any_caller)])
    async def openapi() -> JSONResponse:
        return JSONResponse(api.openapi())

    async def admit(
        request: Request, validate: Callable[[bytes], Any], *, count_oversized: bool
    ) -> Response | tuple[Any, dict[str, Any], Any]:
        """What both answer endpoints check first, in this order: the organisation's API key (401), its
        rate limit (429), the body's size (413), the event's admission (422) and that the key's
        organisation is the event's sender (403). (organisation, envelope, data), or the error answer."""
        org = organisation_of(request)
        wait_s = rate_limiter.take(org.id, monotonic()) if rate_limiter is not None else 0.0
        if wait_s > 0:
            metrics.ANSWERS.labels("rate_limited").inc()
            return _error(429, "rate limit exceeded", {"Retry-After": str(max(1, math.ceil(wait_s)))})
        body = await read_bounded_body(request)
        if body is None:
            if count_oversized:
                metrics.ANSWERS.labels("invalid").inc()
            return _error(413, f"the body is larger than {MAX_VALUE_BYTES} bytes (1 MiB)")
        verdict = validate(body)
        if isinstance(verdict, dict):
            metrics.ANSWERS.labels("invalid").inc()
            return JSONResponse(verdict, status_code=422)
        envelope, data, sender = verdict
        if sender.id != org.id:
            metrics.ANSWERS.labels("forbidden").inc()
            return _error(403, f"this API key belongs to {org.id}; it may not send as that source")
        return org, envelope, data

    @api.post("/v1/offer-responses", status_code=202, summary="Answer an offer (offer.accepted / declined)")
    async def answer(request: Request) -> Any:
        admitted = await admit(request, validate_answer, count_oversized=True)
        if isinstance(admitted, Response):
            return admitted
        org, envelope, data = admitted
        async with sessions() as session, session.begin():
            offer = await offer_row(session, data.offer_id, lock=True)
            check = check_answer(offer=offer, organisation=org.id, data=data.model_dump(), now=clock())
            if not check.ok:
                metrics.ANSWERS.labels(f"http_{check.status_code}").inc()
                return _error(check.status_code, check.reason)
            # The notifier reads this topic too: its own copy is then a duplicate. An id this source has
            # used before (over HTTP or on the topic) is refused before anything changes: the matcher
            # would ignore the event as a duplicate while the offer stayed closed here.
            if not await record_once(
                session, SCHEMA, envelope["source"], envelope["id"], OFFER_RESPONSES, -1, -1
            ):
                metrics.ANSWERS.labels("http_409").inc()
                return _error(409, "event id already used")
            await session.execute(
                update(offers)
                .where(offers.c.offer_id == data.offer_id)
                .values(
                    status=ANSWER_STATUS[envelope["type"].removeprefix("nl.wijkmatch.")],
                    closed_at=func.now(),
                    close_reason="answered",
                )
            )
            await enqueue(session, SCHEMA, topic=OFFER_RESPONSES, key=data.region, event=envelope)
        wake_relay()
        sent = await _wait_sent(engine, envelope["id"])
        metrics.ANSWERS.labels("accepted").inc()
        return JSONResponse(
            {"id": envelope["id"], "offer_id": data.offer_id, "status": "sent" if sent else "queued"},
            status_code=202,
        )

    from services.notifier.adapters import care as care_repo
    from services.notifier.adapters.answers import care_answer_validator

    validate_care_answer = care_answer_validator(registry)
    care_periods = periods or ResponsePeriods(120.0, {})

    @api.post("/v1/care-responses", status_code=202, summary="Answer a care request (care.answered)")
    async def answer_care(request: Request) -> Any:
        """A care provider confirms or declines one of its own care requests (issue 16): the same API
        keys, admission and organisation checks as /v1/offer-responses; another provider's request or an
        unknown one is 404."""
        admitted = await admit(request, validate_care_answer, count_oversized=False)
        if isinstance(admitted, Response):
            return admitted
        org, envelope, data = admitted
        async with sessions() as session, session.begin():
            row = await care_repo.request_row(session, data.request_id, lock=True)
            check = check_care_answer(request=row, organisation=org.id, data=data.model_dump(), now=clock())
            if not check.ok:
                metrics.ANSWERS.labels(f"care_http_{check.status_code}").inc()
                return _error(check.status_code, check.reason)
            if not await record_once(
                session, SCHEMA, envelope["source"], envelope["id"], CARE_RESPONSES, -1, -1
            ):
                return _error(409, "event id already used")
            assert row is not None
            await care_repo.close_request(
                session, row, data.answer, data.reason_code, clock(), care_periods, source
            )
            await enqueue(session, SCHEMA, topic=CARE_RESPONSES, key=data.region, event=envelope)
        wake_relay()
        wake_worker()
        sent = await _wait_sent(engine, envelope["id"], CARE_RESPONSES)
        metrics.ANSWERS.labels("care_accepted").inc()
        return JSONResponse(
            {"id": envelope["id"], "request_id": data.request_id, "status": "sent" if sent else "queued"},
            status_code=202,
        )

    @api.get("/v1/care-requests/{request_id}", summary="State of one of your organisation's care requests")
    async def get_care_request(request_id: str, request: Request) -> Any:
        org = organisation_of(request)
        async with sessions() as session:
            row = await care_repo.request_row(session, request_id)
        if row is None or row["provider"] != org.id:
            return _error(404, "no such care request for your organisation")
        return _jsonable(dict(row))

    @api.get("/v1/offers/{offer_id}", summary="State of one of your organisation's offers")
    async def get_offer(offer_id: str, request: Request) -> Any:
        org = organisation_of(request)
        async with sessions() as session:
            row = await offer_row(session, offer_id)
        if row is None or row["corporation"] != org.id:
            return _error(404, "no such offer for your organisation")
        return _offer_view(row)

    admin = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])

    @admin.get("/endpoints")
    async def list_endpoints(organisation: str | None = None) -> Any:
        query = select(endpoints).order_by(endpoints.c.id)
        if organisation:
            query = query.where(endpoints.c.organisation == organisation)
        async with engine.connect() as conn:
            return {"endpoints": [public_view(r) for r in (await conn.execute(query)).all()]}

    @admin.post("/endpoints", status_code=201)
    async def create_endpoint(spec: NewEndpoint) -> Any:
        if registry.by_id(spec.organisation) is None:
            return _error(422, "unknown organisation")
        unknown = sorted(set(spec.events) - WEBHOOK_EVENT_TYPES)
        if unknown:
            return _error(422, f"unknown event types {unknown}; known: {sorted(WEBHOOK_EVENT_TYPES)}")
        secret = spec.secret or new_secret()
        try:
            secret_key(secret)
            await check_endpoint_url(spec.url, allow_http=allow_http, allow_private=allow_private)
        except (SecretError, EndpointUrlError) as exc:
            return _error(422, str(exc))
        async with engine.begin() as conn:
            row = (
                await conn.execute(
                    insert(endpoints)
                    .values(
                        id=spec.id,
                        organisation=spec.organisation,
                        url=spec.url,
                        event_types=sorted(set(spec.events)),
                        secret=secret,
                        origin="admin",
                    )
                    .on_conflict_do_nothing()
                    .returning(endpoints.c.id)
                )
            ).first()
        if row is None:
            return _error(409, "an endpoint with this id exists")
        return {"id": spec.id, "secret": secret}

    @admin.post("/endpoints/{endpoint_id}/rotate")
    async def rotate(endpoint_id: str, rotation: Rotation | None = None) -> Any:
        rotation = rotation or Rotation()
        secret = rotation.secret or new_secret()
        try:
            secret_key(secret)
        except SecretError as exc:
            return _error(422, str(exc))
        overlap = (
            timedelta(hours=rotation.overlap_hours)
            if rotation.overlap_hours is not None
            else rotation_overlap
        )
        until = clock() + overlap
        async with engine.begin() as conn:
            result = await conn.execute(
                update(endpoints)
                .where(endpoints.c.id == endpoint_id)
                .values(
                    previous_secret=endpoints.c.secret,
                    previous_secret_until=until,
                    secret=secret,
                    updated_at=func.now(),
                )
            )
        if not result.rowcount:
            return _error(404, "no such endpoint")
        return {"id": endpoint_id, "secret": secret, "previous_secret_valid_until": until.isoformat()}

    @admin.post("/endpoints/{endpoint_id}/enable")
    async def enable(endpoint_id: str) -> Any:
        return await _set_enabled(engine, endpoint_id, True, None, wake_worker)

    @admin.post("/endpoints/{endpoint_id}/disable")
    async def disable(endpoint_id: str) -> Any:
        return await _set_enabled(engine, endpoint_id, False, "disabled by an admin", wake_worker)

    @admin.get("/deliveries")
    async def delivery_log(
        endpoint: str | None = None, status: str | None = None, limit: int = Query(50, ge=1, le=500)
    ) -> Any:
        query = (
            select(
                deliveries.c.id,
                deliveries.c.endpoint_id,
                deliveries.c.webhook_id,
                deliveries.c.event_type,
                deliveries.c.status,
                deliveries.c.attempts,
                deliveries.c.next_attempt_at,
                deliveries.c.last_status_code,
                deliveries.c.last_error,
                deliveries.c.created_at,
                deliveries.c.delivered_at,
            )
            .order_by(deliveries.c.id.desc())
            .limit(limit)
        )
        if endpoint:
            query = query.where(deliveries.c.endpoint_id == endpoint)
        if status:
            query = query.where(deliveries.c.status == status)
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
            attempts = {}
            if rows:
                log_rows = (
                    (
                        await conn.execute(
                            _ATTEMPT_LOG,
                            {"ids": [r["id"] for r in rows]},
                        )
                    )
                    .mappings()
                    .all()
                )
                for a in log_rows:
                    attempts.setdefault(a["delivery_id"], []).append(_jsonable(dict(a)))
        return {
            "deliveries": [{**_jsonable(dict(r)), "attempt_log": attempts.get(r["id"], [])} for r in rows]
        }

    @admin.get("/dead-letters")
    async def list_dead_letters(
        include_replayed: bool = False, limit: int = Query(100, ge=1, le=1000)
    ) -> Any:
        query = select(dead_letters).order_by(dead_letters.c.dead_at.desc()).limit(limit)
        if not include_replayed:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return {"dead_letters": [_jsonable(dict(r)) for r in rows]}

    @admin.post("/dead-letters/{delivery_id}/replay", status_code=202)
    async def replay(delivery_id: int) -> Any:
        if not await replay_dead_letter(engine, delivery_id):
            return _error(404, "no dead delivery with this id")
        wake_worker()
        return {"delivery_id": delivery_id, "status": "pending"}

    api.include_router(admin)
    return api


async def _set_enabled(
    engine: AsyncEngine, endpoint_id: str, enabled: bool, reason: str | None, wake: Callable[[], None]
) -> Any:
    async with engine.begin() as conn:
        result = await conn.execute(
            update(endpoints)
            .where(endpoints.c.id == endpoint_id)
            .values(enabled=enabled, disabled_reason=reason, updated_at=func.now())
        )
    if not result.rowcount:
        return _error(404, "no such endpoint")
    wake()
    return {"id": endpoint_id, "enabled": enabled}


async def _wait_sent(engine: AsyncEngine, event_id: str, topic: str = OFFER_RESPONSES) -> bool:
    deadline = asyncio.get_running_loop().time() + PUBLISH_WAIT_S
    query = text(
        f"SELECT sent_at IS NOT NULL FROM {SCHEMA}.outbox WHERE event_id = :id AND topic = :topic "
        "ORDER BY id DESC LIMIT 1"
    )
    while True:
        async with engine.connect() as conn:
            sent = (await conn.execute(query, {"id": event_id, "topic": topic})).scalar()
        if sent or asyncio.get_running_loop().time() > deadline:
            return bool(sent)
        await asyncio.sleep(0.05)


def _offer_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "offer_id": row["offer_id"],
        "proposal_id": row["proposal_id"],
        "region": row["region"],
        "case": row["case_id"],
        "unit": row["unit_id"],
        "status": row["status"],
        "respond_by": row["respond_by"].isoformat(),
        "made_at": row["made_at"].isoformat(),
    }


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    from datetime import date

    return {k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in row.items()}


def answer_errors(errors: list[dict[str, str]], event_id: str | None, body: bytes) -> dict[str, Any]:
    import hashlib

    return {"errors": errors, "event_id": event_id, "value_sha256": hashlib.sha256(body).hexdigest()}


__all__ = ["answer_errors", "create_api", "json"]
