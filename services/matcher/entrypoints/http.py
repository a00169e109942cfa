"""HTTP API of the matcher: health, metrics, on-demand rounds, rounds and proposals for staff tools."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import desc, func, select

from services.matcher.bootstrap import MatcherService
from services.matcher.pool import repository as repo
from services.matcher.pool.tables import cases, proposals, region_state, rounds, units

REGION_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"


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
    api = FastAPI(title="wijkmatch matcher", version="1")

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

    @api.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @api.post("/v1/rounds/{region}", status_code=202)
    async def request_round(
        region: str, wait_s: float = Query(0.0, ge=0, le=600, description="wait for the round to finish")
    ) -> JSONResponse:
        if not _valid_region(region):
            raise HTTPException(422, "region must match " + REGION_PATTERN)
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

    @api.get("/v1/rounds/{round_id}")
    async def get_round(round_id: str, full: bool = False) -> dict[str, Any]:
        async with service.sessions() as session:
            row = (await session.execute(select(rounds).where(rounds.c.id == round_id))).mappings().first()
        if row is None:
            raise HTTPException(404, "unknown round")
        view = round_view(row, full=full)
        if full:
            view["problem"] = row["problem"]
        return view

    @api.get("/v1/regions/{region}/rounds")
    async def list_rounds(region: str, limit: int = Query(20, ge=1, le=500)) -> dict[str, Any]:
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

    @api.get("/v1/regions/{region}/proposals")
    async def list_proposals(
        region: str, status: str | None = Query(None), limit: int = Query(500, ge=1, le=10_000)
    ) -> dict[str, Any]:
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

    @api.get("/v1/regions/{region}/pool")
    async def pool(region: str) -> dict[str, Any]:
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

    return api


def _valid_region(region: str) -> bool:
    import re

    return re.match(REGION_PATTERN, region) is not None


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
