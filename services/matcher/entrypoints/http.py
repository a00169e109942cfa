"""HTTP API of the matcher, staff-facing with OIDC bearer tokens (services.platform.auth, the review
service's tokens and roles): on-demand rounds, rounds and proposals. docs/security.md has the table.

- Every /v1 route needs a valid token; a region outside the token's scope answers 404, exactly as one
  without data (a round of another region is "unknown round").
- `GET /v1/rounds/{id}?full=true` (the problem: care categories per case) is for `auditor` only, and each
  read is recorded in `matcher.problem_reads` (who, which round, when) in the read's own transaction.
- `POST /v1/rounds/{region}` is for `admin` or a `service` identity, for a region with pool data (404
  otherwise), rate limited per region (429).
- `POST /v1/regions/{region}/whatif` (the review service's what-if page) solves the region's next-round
  problem as it is and under changed policy and answers the difference; it writes, records and
  publishes nothing (the pool is read in a READ ONLY transaction that is rolled back). For `reviewer`,
  `approver` and `admin` of the region, a region with pool data only (404 otherwise), rate limited per
  region and one at a time per process (429).
- /healthz and /readyz stay open (probes); /metrics is on the internal health port only (`serve_metrics`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import desc, func, insert, select, text

from services.matcher import metrics
from services.matcher.bootstrap import MatcherService
from services.matcher.pool import repository as repo
from services.matcher.pool import whatif
from services.matcher.pool.problem import build_problem
from services.matcher.pool.tables import cases, problem_reads, proposals, region_state, rounds, units
from services.matcher.rounds.whatif_pool import WhatIfTimeout
from services.platform.admission.rate_limit import RateLimiter
from services.platform.auth import SERVICE_ROLE, Principal, principal_dependency, serve_openapi
from services.platform.observability import answer_503_while_the_database_is_away

log = logging.getLogger("wijkmatch.matcher.http")

REGION_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
ID_PATTERN = r"^[\x21-\x7e]{1,200}$"  # printable ASCII: no control characters reach PostgreSQL
STATUS_PATTERN = r"^[a-z_]{1,32}$"
Region = Annotated[str, Path(min_length=1, max_length=64, pattern=REGION_PATTERN)]
RoundId = Annotated[str, Path(min_length=1, max_length=200, pattern=ID_PATTERN)]
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "missing or invalid bearer token"}}
NOT_YOURS = "no such region in your scope"
ROUND_STARTERS = frozenset({"admin", SERVICE_ROLE})
STAFF_READERS = frozenset({"reviewer", "approver", "auditor", "admin"})
WHATIF_ROLES = frozenset({"reviewer", "approver", "admin"})  # the region's allocators and its admins
Change = Annotated[str, StringConstraints(min_length=3, max_length=200, pattern=r"^[\x21-\x7e]+$")]


class WhatIfRequest(BaseModel):
    """Policy changes as `KEY=VALUE` (services.matcher.pool.whatif; the `wijkmatch whatif` language)."""

    model_config = ConfigDict(extra="forbid")
    changes: list[Change] = Field(max_length=whatif.MAX_CHANGES)


# The verified caller (401 without a valid token); the app keeps its service's TokenVerifier in its state.
authenticate = principal_dependency(
    lambda request: request.app.state.verifier, on_failure=metrics.HTTP_AUTH_FAILURES.inc
)
Caller = Annotated[Principal, Depends(authenticate)]


def round_view(row: Any, *, full: bool = False) -> dict[str, Any]:
    view = {
        "round_id": row["id"],
        "region": row["region"],
        "status": row["status"],
        "trigger": row["trigger"],
        "instance": row["instance"],
        "started_at": row["started_at"].isoformat() if row["started_at"] else None,
        "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
        "duration_s": row["duration_s"],
        "problem_sha256": row["problem_sha256"],
        "ortools_version": row["ortools_version"],
        "wijkmatch_version": row["wijkmatch_version"],
        "parameters": row["parameters"],
        "summary": row["summary"],
        "objective": (row["result"] or {}).get("objective") if row["result"] else None,
    }
    if full:
        view["result"] = row["result"]
    return view


def create_api(service: MatcherService) -> FastAPI:
    api = FastAPI(
        title="wijkmatch matcher",
        version="1",
        description="Rounds, proposals and pool counts for staff tools (OIDC bearer tokens).",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    answer_503_while_the_database_is_away(api)
    api.state.verifier = service.verifier
    serve_openapi(api, authenticate)
    limiter = RateLimiter(
        service.settings.round_requests_per_minute / 60.0, service.settings.round_requests_burst
    )
    whatif_limiter = RateLimiter(
        service.settings.whatif_requests_per_minute / 60.0, service.settings.whatif_requests_burst
    )
    whatif_slot = asyncio.Lock()  # one what-if solving at a time in this process (rounds go first)

    def staff_in(principal: Principal, region: str) -> None:
        """404 for a region outside the token's scope (as for one without data); 403 for a token that
        carries no staff role (a service identity starts rounds but reads nothing)."""
        if not principal.sees(region):
            raise HTTPException(404, NOT_YOURS)
        if not principal.has_any(STAFF_READERS):
            raise HTTPException(403, "reading rounds and proposals needs a staff role")

    async def known_region(region: str) -> None:
        """404 for a region the matcher never received pool data for: it has nothing to match or compare,
        and refusing it bounds the rate limiters' buckets and region_state to real regions."""
        async with service.sessions() as session:
            known = select(region_state.c.region).where(region_state.c.region == region)
            if (await session.execute(known)).scalar() is None:
                raise HTTPException(404, "no such region")

    @api.get("/healthz")
    async def healthz() -> JSONResponse:
        ok, details = await service.liveness()
        return JSONResponse({"status": "ok" if ok else "stalled", **details}, status_code=200 if ok else 503)

    @api.get("/readyz")
    async def readyz() -> JSONResponse:
        ok, details = await service.readiness()
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", **details}, status_code=200 if ok else 503
        )

    @api.post(
        "/v1/rounds/{region}",
        status_code=202,
        responses={
            **UNAUTHORIZED,
            200: {"description": "the round finished within wait_s"},
            403: {"description": "starting rounds needs the admin role or a service identity"},
            404: {"description": f"{NOT_YOURS}, or a region without pool data"},
            429: {"description": "too many on-demand rounds for this region; see Retry-After"},
        },
    )
    async def request_round(
        region: Region,
        principal: Caller,
        wait_s: float = Query(0.0, ge=0, le=600, description="wait for the round to finish"),
    ) -> JSONResponse:
        if not principal.sees(region):
            raise HTTPException(404, NOT_YOURS)
        if not principal.has_any(ROUND_STARTERS):
            raise HTTPException(403, "starting rounds needs the admin role or a service identity")
        await known_region(region)
        wait = limiter.take(region, time.monotonic())
        if wait > 0:
            metrics.ROUND_REQUESTS_LIMITED.labels(region).inc()
            raise HTTPException(
                429,
                "too many on-demand rounds for this region; try again later",
                headers={"Retry-After": str(int(wait) + 1)},
            )
        log.info(
            "round requested over HTTP",
            extra={"region": region, "requested_by": principal.subject, "roles": sorted(principal.roles)},
        )
        async with service.sessions() as session, session.begin():
            requested_at = (await session.execute(select(func.now()))).scalar_one()
            await repo.request_round(session, region)
        body: dict[str, Any] = {
            "region": region,
            "status": "requested",
            "requested_at": requested_at.isoformat(),
        }
        if wait_s > 0:
            done = await _wait_for_round(service, region, requested_at, wait_s)
            if done is not None:
                return JSONResponse(
                    {**body, "status": "completed", "round": round_view(done)}, status_code=200
                )
        return JSONResponse(body, status_code=202)

    @api.get(
        "/v1/rounds/{round_id}",
        responses={
            **UNAUTHORIZED,
            403: {"description": "full=true (the problem: care categories per case) is for auditors"},
            404: {"description": "unknown round, or a round of a region outside your scope"},
        },
    )
    async def get_round(
        round_id: RoundId,
        principal: Caller,
        full: bool = Query(False, description="include problem and result (auditor only; audited)"),
    ) -> dict[str, Any]:
        async with service.sessions() as session, session.begin():
            row = (await session.execute(select(rounds).where(rounds.c.id == round_id))).mappings().first()
            if row is None or not principal.sees(row["region"]):
                raise HTTPException(404, "unknown round")
            if not principal.has_any(STAFF_READERS):
                raise HTTPException(403, "reading rounds needs a staff role")
            if full:
                if "auditor" not in principal.roles:
                    raise HTTPException(403, "the full problem of a round is for auditors")
                await session.execute(
                    insert(problem_reads).values(
                        round_id=row["id"],
                        region=row["region"],
                        subject=principal.subject,
                        roles=sorted(principal.roles),
                    )
                )
        view = round_view(row, full=full)
        if full:
            view["problem"] = row["problem"]
            metrics.PROBLEM_READS.labels(row["region"]).inc()
            log.info(
                "round problem read",
                extra={
                    "audit": "problem_read",
                    "round_id": row["id"],
                    "region": row["region"],
                    "subject": principal.subject,
                },
            )
        return view

    @api.get("/v1/regions/{region}/rounds", responses={**UNAUTHORIZED, 404: {"description": NOT_YOURS}})
    async def list_rounds(
        region: Region, principal: Caller, limit: int = Query(20, ge=1, le=500)
    ) -> dict[str, Any]:
        staff_in(principal, region)
        async with service.sessions() as session:
            rows = (
                (
                    await session.execute(
                        select(rounds)
                        .where(rounds.c.region == region)
                        .order_by(desc(rounds.c.started_at))
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        return {"region": region, "rounds": [round_view(r) for r in rows]}

    @api.get("/v1/regions/{region}/proposals", responses={**UNAUTHORIZED, 404: {"description": NOT_YOURS}})
    async def list_proposals(
        region: Region,
        principal: Caller,
        status: str | None = Query(None, pattern=STATUS_PATTERN),
        limit: int = Query(500, ge=1, le=10_000),
    ) -> dict[str, Any]:
        staff_in(principal, region)
        query = select(proposals).where(proposals.c.region == region)
        if status:
            query = query.where(proposals.c.status == status)
        async with service.sessions() as session:
            rows = (
                (
                    await session.execute(
                        query.order_by(desc(proposals.c.priority), proposals.c.id).limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        return {
            "region": region,
            "proposals": [
                {
                    "proposal_id": r["id"],
                    "round_id": r["round_id"],
                    "case": r["case_id"],
                    "unit": r["unit_id"],
                    "status": r["status"],
                    "priority": r["priority"],
                    "fit": r["fit"],
                    "explanation": r["explanation"],
                    "offer_id": r["offer_id"],
                    "care_needs": list((r["case_snapshot"] or {}).get("care_needs") or ()),
                    "reason": r["reason"],
                    "created_at": r["created_at"].isoformat(),
                }
                for r in rows
            ],
        }

    @api.get("/v1/regions/{region}/pool", responses={**UNAUTHORIZED, 404: {"description": NOT_YOURS}})
    async def pool(region: Region, principal: Caller) -> dict[str, Any]:
        staff_in(principal, region)
        async with service.sessions() as session:
            case_counts = dict(
                (
                    await session.execute(
                        select(cases.c.status, func.count())
                        .where(cases.c.region == region)
                        .group_by(cases.c.status)
                    )
                ).all()
            )
            unit_counts = dict(
                (
                    await session.execute(
                        select(units.c.status, func.count())
                        .where(units.c.region == region)
                        .group_by(units.c.status)
                    )
                ).all()
            )
            state = (
                (await session.execute(select(region_state).where(region_state.c.region == region)))
                .mappings()
                .first()
            )
        return {
            "region": region,
            "cases": case_counts,
            "units": unit_counts,
            "unhandled_changes": (state["change_seq"] - state["handled_seq"]) if state else 0,
        }

    @api.post(
        "/v1/regions/{region}/whatif",
        responses={
            **UNAUTHORIZED,
            403: {"description": "what-ifs are for the region's reviewers, approvers and admins"},
            404: {"description": f"{NOT_YOURS}, or a region without pool data"},
            422: {"description": "an unknown or malformed change, or a changed policy the solver refuses"},
            429: {
                "description": "too many what-ifs for this region, or one is being solved; see Retry-After"
            },
        },
    )
    async def what_if(
        region: Region, principal: Caller, request: Annotated[WhatIfRequest, Body()]
    ) -> dict[str, Any]:
        if not principal.sees(region):
            raise HTTPException(404, NOT_YOURS)
        if not principal.has_any(WHATIF_ROLES):
            raise HTTPException(403, "what-ifs are for the region's reviewers, approvers and admins")
        await known_region(region)
        if whatif_slot.locked():
            raise HTTPException(
                429, "a what-if is being solved; try again shortly", headers={"Retry-After": "5"}
            )
        wait = whatif_limiter.take(region, time.monotonic())
        if wait > 0:
            raise HTTPException(
                429,
                "too many what-ifs for this region; try again later",
                headers={"Retry-After": str(int(wait) + 1)},
            )
        async with whatif_slot:
            problem = await _next_round_problem(service, region)
            limit = min(
                service.settings.whatif_time_limit_s,
                float(
                    (problem.get("policy") or {}).get("time_limit_s") or service.settings.whatif_time_limit_s
                ),
            )
            try:
                # in the what-if process (niced below the round solvers, killed at the deadline)
                diff = await service.whatif.compare(
                    problem, list(request.changes), limit, service.settings.whatif_deadline_s
                )
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from None
            except WhatIfTimeout as exc:
                raise HTTPException(503, str(exc), headers={"Retry-After": "60"}) from None
        log.info(
            "what-if solved",
            extra={"region": region, "requested_by": principal.subject, "changes": len(request.changes)},
        )
        return {
            "region": region,
            "changes": list(request.changes),
            "cases": len(problem["cases"]),
            "units": len(problem["units"]),
            "pinned": len(problem.get("pinned") or []),
            "time_limit_s": limit,
            "written": "nothing: no round, proposal, outbox row or event",
            **diff,
        }

    return api


async def _next_round_problem(service: MatcherService, region: str) -> dict[str, Any]:
    """The region's next-round problem, read in one REPEATABLE READ, READ ONLY transaction (one snapshot for
    its several SELECTs) that is rolled back."""
    from services.matcher.rounds.store import load_pool

    async with service.sessions() as session:
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        pool, _ = await load_pool(session, region)
        await session.rollback()
    return await asyncio.to_thread(build_problem, pool, f"whatif-{region}")


async def _wait_for_round(service: MatcherService, region: str, since: Any, wait_s: float) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while loop.time() < deadline:
        async with service.sessions() as session:
            row = (
                (
                    await session.execute(
                        select(rounds)
                        .where(
                            rounds.c.region == region,
                            rounds.c.started_at >= since,
                            rounds.c.finished_at.is_not(None),
                        )
                        .order_by(desc(rounds.c.started_at))
                        .limit(1)
                    )
                )
                .mappings()
                .first()
            )
        if row is not None and row["status"] in ("completed", "invalid", "failed"):
            return row
        await asyncio.sleep(0.25)
    return None
