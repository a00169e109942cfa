"""`wijkmatch matcher` (run the service), `wijkmatch round REGION`, `wijkmatch replay ROUND_ID`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from services.matcher.settings import MatcherSettings


def _setup_logging(level: str) -> None:
    from services.platform.observability import configure_logging

    configure_logging("matcher", level)


def main(argv: list[str] | None = None) -> int:
    args_list = list(argv or [])
    if args_list[:1] == ["proposals"]:
        return proposals_main(args_list[1:])
    if args_list[:1] == ["care-outcomes"]:
        return care_outcomes_main(args_list[1:])
    parser = argparse.ArgumentParser(
        prog="wijkmatch matcher",
        description="run the matcher service (`wijkmatch matcher proposals REGION` lists proposals)",
    )
    parser.add_argument("command", nargs="?", default="run", choices=["run"])
    parser.add_argument("--host", help="HTTP host (WIJKMATCH_MATCHER_HTTP_HOST)")
    parser.add_argument("--port", type=int, help="HTTP port (WIJKMATCH_MATCHER_HTTP_PORT, default 8020)")
    parser.add_argument("--debounce", type=float, help="seconds of quiet before a round (default 30)")
    parser.add_argument("--no-migrate", action="store_true", help="do not run the matcher's migrations first")
    args = parser.parse_args(args_list)
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["http_host"] = args.host
    if args.port is not None:
        overrides["http_port"] = args.port
    if args.debounce is not None:
        overrides["debounce_s"] = args.debounce
    settings = MatcherSettings(**overrides)
    _setup_logging(settings.log_level)
    if not args.no_migrate:
        from services.platform.migrations import upgrade

        upgrade(settings.database_url, ["matcher"], wait_s=settings.database_startup_wait_s)
    import uvicorn

    from services.matcher.app import create_app
    from services.platform.observability import serve_metrics

    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        lifespan="on",
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=max(5, int(settings.shutdown_grace_s) + 5),
    )
    # /metrics on the internal health port only; the API port has /v1 (tokens), /healthz and /readyz.
    metrics_server = serve_metrics(settings.metrics_host, settings.metrics_port)
    try:
        uvicorn.Server(config).run()
    finally:
        metrics_server.shutdown()
        metrics_server.server_close()
    return 0


# --------------------------------------------------------------------------------------- proposals


def proposals_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="wijkmatch matcher proposals", description="list a region's proposals"
    )
    parser.add_argument("region")
    parser.add_argument(
        "--status", default="pending", help="pending|approved|offered|...|all (default pending)"
    )
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    return asyncio.run(_proposals(MatcherSettings(), args))


async def _proposals(settings: MatcherSettings, args: argparse.Namespace) -> int:
    from sqlalchemy import desc, select

    from services.matcher.pool.tables import proposals
    from services.platform.db import create_engine

    query = select(proposals).where(proposals.c.region == args.region)
    if args.status != "all":
        query = query.where(proposals.c.status == args.status)
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        query.order_by(desc(proposals.c.priority), proposals.c.id).limit(args.limit)
                    )
                )
                .mappings()
                .all()
            )
    finally:
        await engine.dispose()
    if args.json:
        print(
            json.dumps(
                [{k: v for k, v in r.items() if not k.endswith("snapshot")} for r in rows], default=str
            )
        )
        return 0
    print(f"{len(rows)} {args.status} proposals in {args.region} (highest priority first)")
    for r in rows:
        fit = r["fit"] or {}
        print(
            f"  {r['id']}  case {r['case_id']} -> unit {r['unit_id']}  priority {r['priority']}  "
            f"fit {fit.get('total')}  [{r['status']}]  round {r['round_id']}"
        )
    return 0


# ----------------------------------------------------------------------------------- care outcomes


def care_outcomes_main(argv: list[str]) -> int:
    """`wijkmatch matcher care-outcomes REGION [--days N]`: the outcomes monitor's care figures (issue 16)
    as JSON, for the outcomes report."""
    parser = argparse.ArgumentParser(
        prog="wijkmatch matcher care-outcomes",
        description="care confirmed before the offer, days to confirmation, continuity of provider",
    )
    parser.add_argument("region")
    parser.add_argument("--days", type=float, default=365.0, help="matches approved in the last N days")
    args = parser.parse_args(argv)
    return asyncio.run(_care_outcomes(MatcherSettings(), args))


async def _care_outcomes(settings: MatcherSettings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from services.matcher.pool.care_store import care_outcomes
    from services.platform.db import create_engine, session_maker

    engine = create_engine(settings.database_url)
    try:
        async with session_maker(engine)() as session:
            since = datetime.now(UTC) - timedelta(days=args.days)
            print(json.dumps(await care_outcomes(session, args.region, since), indent=2))
    finally:
        await engine.dispose()
    return 0


# ------------------------------------------------------------------------------------------- round


def round_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wijkmatch round", description="start a matching round for a region now"
    )
    parser.add_argument("region")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the result (0: don't)")
    parser.add_argument(
        "--local",
        action="store_true",
        help="run the round in this process instead of asking the running matcher",
    )
    parser.add_argument("--json", action="store_true", help="print the round as JSON")
    args = parser.parse_args(argv or [])
    settings = MatcherSettings()
    return asyncio.run(_round_local(settings, args) if args.local else _round_request(settings, args))


async def _round_request(settings: MatcherSettings, args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from services.matcher.entrypoints.http import _wait_for_round, round_view
    from services.matcher.pool import repository as repo
    from services.platform.db import create_engine, session_maker

    engine = create_engine(settings.database_url)
    try:

        class _Service:  # what _wait_for_round needs
            sessions = session_maker(engine)

        async with _Service.sessions() as session, session.begin():
            requested_at = (await session.execute(select(func.now()))).scalar_one()
            await repo.request_round(session, args.region)
        print(f"round requested for {args.region}")
        if args.wait <= 0:
            return 0
        row = await _wait_for_round(_Service, args.region, requested_at, args.wait)  # type: ignore[arg-type]
        if row is None:
            print(f"no round finished within {args.wait:.0f} s (is a matcher running?)", file=sys.stderr)
            return 1
        return _print_round(round_view(row), args.json)
    finally:
        await engine.dispose()


async def _round_local(settings: MatcherSettings, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from services.matcher.entrypoints.http import round_view
    from services.matcher.pool.tables import rounds
    from services.matcher.rounds.runner import RoundRunner
    from services.matcher.rounds.worker import SolverPool
    from services.matcher.solver.params import SolveParams
    from services.platform.db import create_engine
    from services.platform.outbox import OutboxRelay

    engine = create_engine(settings.database_url)
    solver = SolverPool(1)
    try:
        runner = RoundRunner(
            engine,
            solver,
            options=SolveParams(workers=settings.solver_workers, deterministic=settings.deterministic),
            instance=f"cli-{settings.instance_id}",
        )
        report = await runner.run(args.region, force=True)
        if report is None:
            print(f"region {args.region} is locked by a running round elsewhere", file=sys.stderr)
            return 1
        relay = OutboxRelay(engine, "matcher", settings.kafka_bootstrap_servers, listen=False)
        try:
            await relay.publish_pending()
        finally:
            await relay.stop()
        async with engine.connect() as conn:
            row = (await conn.execute(select(rounds).where(rounds.c.id == report.round_id))).mappings().one()
        return _print_round(round_view(row), args.json)
    finally:
        solver.close()
        await engine.dispose()


def _print_round(view: dict[str, Any], as_json: bool) -> int:
    from services.matcher.rounds.report import format_round

    if as_json:
        print(json.dumps(view, indent=2, default=str))
    else:
        print(format_round({**view, **(view.get("summary") or {})}))
    return 0 if view["status"] == "completed" else 2


# ------------------------------------------------------------------------------------------ replay


def replay_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wijkmatch replay",
        description="re-solve a recorded round and say whether the result is identical",
    )
    parser.add_argument("round_id")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv or [])
    return asyncio.run(_replay(MatcherSettings(), args))


async def _replay(settings: MatcherSettings, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from services.matcher.pool.tables import rounds
    from services.matcher.rounds.replay import replay_round
    from services.platform.db import create_engine

    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(select(rounds).where(rounds.c.id == args.round_id))).mappings().first()
    finally:
        await engine.dispose()
    if row is None:
        print(f"unknown round {args.round_id}", file=sys.stderr)
        return 2
    if row["result"] is None:
        print(f"round {args.round_id} has no recorded result (status {row['status']})", file=sys.stderr)
        return 2
    outcome = await asyncio.to_thread(replay_round, dict(row))
    if args.json:
        print(
            json.dumps(
                {
                    "round_id": outcome.round_id,
                    "identical": outcome.identical,
                    "problem_sha256_ok": outcome.sha_ok,
                    "reproducible_by": outcome.reproducible_by,
                    "recorded_versions": outcome.recorded_versions,
                    "replayed_versions": outcome.replayed_versions,
                    "differences": outcome.differences(),
                },
                indent=2,
            )
        )
    elif outcome.identical and outcome.sha_ok:
        print(
            f"round {outcome.round_id}: identical (pairs and objective; "
            f"{len(outcome.recorded['pairs'])} pairs, "
            f"status {outcome.recorded['status']}, reproducible by {outcome.reproducible_by})"
        )
    else:
        print(f"round {outcome.round_id}: DIFFERENT")
        for line in outcome.differences():
            print("  - " + line)
    return 0 if outcome.identical and outcome.sha_ok else 1
