"""One matching round for one region, under a PostgreSQL advisory lock on the region.

Phase 1 (one transaction): read the pool, build and record the problem (status `running`).
Phase 2: the solver runs in a worker process; the event loop stays free.
Phase 3 (one transaction): create proposals for assignments whose case and unit are unchanged since
phase 1, mark the round completed, and enqueue match.proposed + round.completed in the outbox.
A crash between the phases leaves the round `running` and the region unhandled: whoever takes the lock
next marks it `abandoned` and runs the region again, so no proposal is lost or published twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from services.matcher import events, metrics
from services.matcher.pool import repository as repo
from services.matcher.pool.problem import (
    HousedRow,
    PinRow,
    PoolView,
    ReferenceRow,
    build_problem,
    canonical_json,
    sha256_text,
)
from services.matcher.pool.tables import (
    cases,
    forbidden,
    proposals,
    reference,
    region_state,
    rounds,
    units,
)
from services.matcher.rounds.context import RoundContext, round_context
from services.matcher.rounds.summary import summarise
from services.matcher.rounds.worker import SolverPool, versions
from services.matcher.solver.params import SolveParams

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x574D  # "WM": first key of the two-int advisory lock; the second is hashtext(region)


@dataclass
class RoundReport:
    round_id: str
    region: str
    status: str
    trigger: str
    proposals: int
    stale: int
    summary: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0


def new_round_id(region: str) -> str:
    return f"{region}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def region_lock(engine: AsyncEngine, region: str) -> AsyncIterator[AsyncConnection | None]:
    """A session-level advisory lock on the region, held on its own connection (None if taken)."""
    async with engine.connect() as conn:
        got = (
            await conn.execute(
                text("SELECT pg_try_advisory_lock(:ns, hashtext(:region))"),
                {"ns": LOCK_NAMESPACE, "region": region},
            )
        ).scalar()
        await conn.commit()
        if not got:
            yield None
            return
        try:
            yield conn
        finally:
            try:
                if conn.in_transaction():
                    await conn.rollback()
                await conn.execute(
                    text("SELECT pg_advisory_unlock(:ns, hashtext(:region))"),
                    {"ns": LOCK_NAMESPACE, "region": region},
                )
                await conn.commit()
            except Exception:  # the connection is gone: PostgreSQL released the lock with it
                log.warning("could not release region lock", extra={"region": region}, exc_info=True)
                await conn.invalidate()


def _build_and_hash(pool: PoolView, round_id: str) -> tuple[dict[str, Any], str, str]:
    problem = build_problem(pool, round_id)
    text = canonical_json(problem)
    return problem, text, sha256_text(text)


def drop_pins(problem: dict[str, Any], indices: set[int]) -> dict[str, Any]:
    """The problem without the given pins and without their cases and units (held out instead)."""
    gone_cases = {problem["pinned"][i]["case"] for i in indices}
    gone_units = {problem["pinned"][i]["unit"] for i in indices}
    out = dict(problem)
    out["pinned"] = [p for i, p in enumerate(problem["pinned"]) if i not in indices]
    out["cases"] = [c for c in problem["cases"] if c["id"] not in gone_cases]
    out["units"] = [u for u in problem["units"] if u["id"] not in gone_units]
    out["forbidden"] = [
        f for f in problem["forbidden"] if f["case"] not in gone_cases and f["unit"] not in gone_units
    ]
    return out


def invalid_pin_indices(result: dict[str, Any]) -> set[int]:
    found = set()
    for err in result.get("errors") or []:
        parts = str(err.get("path", "")).split("/")
        if len(parts) >= 3 and parts[1] == "pinned" and parts[2].isdigit():
            found.add(int(parts[2]))
    return found


class RoundRunner:
    def __init__(
        self,
        engine: AsyncEngine,
        solver: SolverPool,
        *,
        options: SolveParams,
        instance: str,
        failure_backoff_s: float = 30.0,
        on_published: Any = None,
    ) -> None:
        self.engine = engine
        self.solver = solver
        self.options = options  # workers and deterministic; time limit and seed come from the policy
        self.failure_backoff_s = failure_backoff_s
        self.instance = instance
        self.on_published = on_published  # called after phase 3 commits (wakes the outbox relay)
        self.current: dict[str, str] = {}  # region -> round id running here

    async def run(self, region: str, *, force: bool = False) -> RoundReport | None:
        """Run a round if the region needs one (or `force`); None if locked elsewhere or nothing to do."""
        async with region_lock(self.engine, region) as conn:
            if conn is None:
                return None
            return await self._run_locked(conn, region, force)

    async def _run_locked(self, conn: AsyncConnection, region: str, force: bool) -> RoundReport | None:
        started = time.monotonic()
        session = AsyncSession(bind=conn, expire_on_commit=False)
        async with session.begin():
            prepared = await self._prepare(session, region, force)
        if prepared is None:
            return None
        round_id, problem, params, captured, trigger, started_at = prepared
        recorded_problem = problem
        self.current[region] = round_id
        try:
            try:
                result = await self.solver.solve(problem, params)
                bad_pins = invalid_pin_indices(result) if result.get("status") == "INVALID_INPUT" else set()
                if bad_pins:
                    log.warning("pins no longer valid; holding them out", extra={"round_id": round_id})
                    problem = drop_pins(problem, bad_pins)
                    result = await self.solver.solve(problem, params)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("solver failed", extra={"round_id": round_id, "region": region})
                async with session.begin():
                    await self._fail(session, region, round_id, repr(exc))
                metrics.ROUNDS.labels(region, "failed").inc()
                return RoundReport(round_id, region, "failed", trigger, 0, 0)
            context = await self._context(problem, result, round_id)
            async with session.begin():
                report = await self._complete(
                    session,
                    region,
                    round_id,
                    problem,
                    params,
                    result,
                    captured,
                    trigger,
                    started_at,
                    started,
                    problem_changed=problem is not recorded_problem,
                    context=context,
                )
        finally:
            self.current.pop(region, None)
            await session.close()
        if self.on_published is not None:
            self.on_published()
        return report

    async def _context(self, problem: dict[str, Any], result: dict[str, Any], round_id: str) -> RoundContext:
        """Eligibility and candidates for the events; an add-on, so a fault here never fails the round."""
        try:
            return await asyncio.to_thread(round_context, problem, result)
        except Exception:
            log.exception("round context failed; events go out without it", extra={"round_id": round_id})
            return RoundContext()

    async def back_off(self, region: str) -> None:
        """After an unexpected failure: leave the region alone for a while instead of retrying hot."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(region_state)
                .where(region_state.c.region == region)
                .values(not_before=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, self.failure_backoff_s))
            )

    async def _prepare(self, session: AsyncSession, region: str, force: bool) -> Any:
        # No row lock: change_seq is read before the pool, so anything newer simply stays unhandled.
        state = (
            (await session.execute(select(region_state).where(region_state.c.region == region)))
            .mappings()
            .first()
        )
        if state is None:
            if not force:
                return None
            await session.execute(insert(region_state).values(region=region).on_conflict_do_nothing())
            state = {"change_seq": 0, "handled_seq": 0, "requested_at": None}
        needed = state["change_seq"] > state["handled_seq"] or state["requested_at"] is not None
        if not (needed or force):
            return None
        abandoned = (
            (
                await session.execute(
                    update(rounds)
                    .where(rounds.c.region == region, rounds.c.status == "running")
                    .values(
                        status="abandoned", finished_at=func.now(), error="no instance finished this round"
                    )
                    .returning(rounds.c.id)
                )
            )
            .scalars()
            .all()
        )
        requested = force or state["requested_at"] is not None
        trigger = "redo" if abandoned else ("requested" if requested else "pool_change")
        pool, captured = await load_pool(session, region)
        round_id = new_round_id(region)
        # Pure CPU work in a thread: with a large region the event loop (consumer, heartbeats) keeps going.
        problem, text_, sha = await asyncio.to_thread(_build_and_hash, pool, round_id)
        policy = problem.get("policy") or {}
        params = SolveParams(
            time_limit_s=float(policy.get("time_limit_s", 10.0)),
            workers=self.options.workers,
            seed=int(policy.get("seed", 0)),
            deterministic=self.options.deterministic,
        )
        started_at = (await session.execute(select(func.now()))).scalar_one()
        found = versions()
        await session.execute(
            rounds.insert().values(
                id=round_id,
                region=region,
                status="running",
                trigger=trigger,
                instance=self.instance,
                started_at=started_at,
                seq_at_build=state["change_seq"],
                problem=text_,
                problem_sha256=sha,
                ortools_version=found["ortools"],
                wijkmatch_version=found["wijkmatch"],
                parameters=params.as_dict(),
            )
        )
        log.info(
            "round started",
            extra={"region": region, "round_id": round_id, "trigger": trigger, "abandoned": list(abandoned)},
        )
        return round_id, problem, params, captured, trigger, started_at

    async def _fail(self, session: AsyncSession, region: str, round_id: str, error: str) -> None:
        await session.execute(
            update(rounds)
            .where(rounds.c.id == round_id)
            .values(status="failed", finished_at=func.now(), error=error[:2000])
        )
        await session.execute(
            update(region_state)
            .where(region_state.c.region == region)
            .values(not_before=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, self.failure_backoff_s))
        )

    async def _complete(
        self,
        session: AsyncSession,
        region: str,
        round_id: str,
        problem: dict[str, Any],
        params: SolveParams,
        result: dict[str, Any],
        captured: dict[str, dict[str, int]],
        trigger: str,
        started_at: datetime,
        started: float,
        *,
        problem_changed: bool = False,
        context: RoundContext | None = None,
    ) -> RoundReport:
        context = context or RoundContext()
        state = (
            (
                await session.execute(
                    select(region_state).where(region_state.c.region == region).with_for_update()
                )
            )
            .mappings()
            .one()
        )
        round_row = (
            await session.execute(
                select(rounds.c.seq_at_build, rounds.c.status, rounds.c.problem_sha256).where(
                    rounds.c.id == round_id
                )
            )
        ).one()
        if round_row.status != "running":
            raise RuntimeError(f"round {round_id} was taken over ({round_row.status})")
        made = stale = 0
        status = result.get("status", "INVALID_INPUT")
        if status in ("OPTIMAL", "FEASIBLE"):
            made, stale = await self._propose(session, region, round_id, problem, result, captured, context)
        summary = summarise(problem, result)
        summary["proposals"] = made
        summary["stale"] = stale
        duration = time.monotonic() - started
        values: dict[str, Any] = {}
        if problem_changed:  # pins were held out: record the problem actually solved
            text_ = canonical_json(problem)
            values = {"problem": text_, "problem_sha256": sha256_text(text_)}
        sha = values.get("problem_sha256") or round_row.problem_sha256
        await session.execute(
            update(rounds)
            .where(rounds.c.id == round_id)
            .values(
                **values,
                status="completed" if status != "INVALID_INPUT" else "invalid",
                finished_at=func.now(),
                result=result,
                summary=summary,
                duration_s=duration,
                error=json.dumps(result.get("errors"))[:2000] if status == "INVALID_INPUT" else None,
            )
        )
        await repo.publish(
            session,
            region,
            events.round_completed(
                region=region,
                round_id=round_id,
                result=result,
                summary=summary,
                problem_sha256=sha,
                duration_seconds=duration,
                unplaced=context.unplaced,
            ),
        )
        seq = round_row.seq_at_build
        caught_up = state["change_seq"] == seq
        requested_after = state["requested_at"] is not None and state["requested_at"] > started_at
        await session.execute(
            update(region_state)
            .where(region_state.c.region == region)
            .values(
                handled_seq=seq,
                first_unhandled_at=None if caught_up else started_at,
                requested_at=state["requested_at"] if requested_after else None,
                not_before=None,
                updated_at=func.now(),
            )
        )
        metrics.record_round(region, status, summary, result, duration)
        log.info(
            "round completed",
            extra={
                "region": region,
                "round_id": round_id,
                "status": status,
                "proposals": made,
                "stale": stale,
                "duration_s": round(duration, 3),
            },
        )
        return RoundReport(round_id, region, status, trigger, made, stale, summary, duration)

    async def _propose(
        self,
        session: AsyncSession,
        region: str,
        round_id: str,
        problem: dict[str, Any],
        result: dict[str, Any],
        captured: dict[str, dict[str, int]],
        context: RoundContext,
    ) -> tuple[int, int]:
        case_snap = {c["id"]: c for c in problem["cases"]}
        unit_snap = {u["id"]: u for u in problem["units"]}
        new = sorted(
            (a for a in result.get("assignments") or [] if not a.get("pinned")), key=lambda a: a["case"]
        )
        if not new:
            return 0, 0
        case_ids = [a["case"] for a in new]
        unit_ids = [a["unit"] for a in new]
        case_now = {
            r.id: (r.status, r.version)
            for r in (
                await session.execute(
                    select(cases.c.id, cases.c.status, cases.c.version)
                    .where(cases.c.region == region, cases.c.id.in_(case_ids))
                    .with_for_update()
                )
            ).all()
        }
        unit_now = {
            r.id: (r.status, r.version, r.vacant_since)
            for r in (
                await session.execute(
                    select(units.c.id, units.c.status, units.c.version, units.c.vacant_since)
                    .where(units.c.region == region, units.c.id.in_(unit_ids))
                    .with_for_update()
                )
            ).all()
        }
        made = stale = 0
        now = datetime.now(UTC)
        rows, outbox = [], []
        for a in new:
            c, u = a["case"], a["unit"]
            cs, us = case_now.get(c), unit_now.get(u)
            if (
                cs is None
                or us is None
                or cs != ("open", captured["cases"].get(c))
                or us[:2] != ("vacant", captured["units"].get(u))
            ):
                stale += 1
                continue
            proposal_id = str(uuid.uuid4())
            event = events.match_proposed(
                region=region,
                round_id=round_id,
                proposal_id=proposal_id,
                assignment=a,
                context=context.for_pair(c, u),
            )
            rows.append(
                {
                    "id": proposal_id,
                    "region": region,
                    "round_id": round_id,
                    "case_id": c,
                    "unit_id": u,
                    "status": "pending",
                    "priority": int(a["priority"]),
                    "fit": event["data"]["fit"],
                    "explanation": event["data"]["explanation"],
                    "case_snapshot": case_snap[c],
                    "unit_snapshot": unit_snap[u],
                }
            )
            outbox.append((c, u, event))
            if us[2] is not None:
                metrics.VACANCY_TO_PROPOSAL.observe(max(0.0, (now - us[2]).total_seconds()))
            made += 1
        if rows:
            await session.execute(proposals.insert(), rows)
            await session.execute(
                update(cases)
                .where(cases.c.region == region, cases.c.id.in_([r["case_id"] for r in rows]))
                .values(status="proposed", updated_at=func.now())
            )
            await session.execute(
                update(units)
                .where(units.c.region == region, units.c.id.in_([r["unit_id"] for r in rows]))
                .values(status="proposed", updated_at=func.now())
            )
            from schemas.topics import PROPOSALS
            from services.platform.outbox import enqueue_many

            await enqueue_many(session, "matcher", [(PROPOSALS, region, e) for _, _, e in outbox])
        if stale:
            metrics.DROPPED_ASSIGNMENTS.labels(region).inc(stale)
        return made, stale


async def load_pool(session: AsyncSession, region: str) -> tuple[PoolView, dict[str, dict[str, int]]]:
    """The region's pool as one round sees it, plus the case/unit versions it saw."""
    case_rows = (
        await session.execute(
            select(cases.c.id, cases.c.snapshot, cases.c.version).where(
                cases.c.region == region,
                cases.c.status == "open",
                or_(cases.c.parked_until.is_(None), cases.c.parked_until <= func.now()),
            )
        )
    ).all()
    unit_rows = (
        await session.execute(
            select(units.c.id, units.c.snapshot, units.c.version).where(
                units.c.region == region, units.c.status == "vacant"
            )
        )
    ).all()
    ref_rows = (
        await session.execute(
            select(reference.c.entity, reference.c.key, reference.c.snapshot, reference.c.event_time).where(
                reference.c.region == region, reference.c.removed.is_(False)
            )
        )
    ).all()
    pin_rows = (
        await session.execute(
            select(
                proposals.c.case_id, proposals.c.unit_id, proposals.c.case_snapshot, proposals.c.unit_snapshot
            ).where(proposals.c.region == region, proposals.c.status.in_(("approved", "offered")))
        )
    ).all()
    forbidden_rows = (
        await session.execute(
            select(forbidden.c.case_id, forbidden.c.unit_id).where(forbidden.c.region == region)
        )
    ).all()
    committed_rows = (
        await session.execute(
            select(
                proposals.c.case_snapshot,
                proposals.c.unit_snapshot,
                proposals.c.status,
                proposals.c.created_at,
                proposals.c.updated_at,
            ).where(proposals.c.region == region, proposals.c.status.in_(("pending", "accepted")))
        )
    ).all()
    pool = PoolView(
        region=region,
        cases=[r.snapshot for r in case_rows],
        units=[r.snapshot for r in unit_rows],
        reference=[ReferenceRow(r.entity, r.key, r.snapshot, r.event_time) for r in ref_rows],
        pins=[PinRow(r.case_id, r.unit_id, r.case_snapshot, r.unit_snapshot) for r in pin_rows],
        forbidden=[(r.case_id, r.unit_id) for r in forbidden_rows],
        housed=[
            HousedRow.of(
                r.case_snapshot, r.unit_snapshot, r.created_at if r.status == "pending" else r.updated_at
            )
            for r in committed_rows
        ],
    )
    captured = {
        "cases": {r.id: r.version for r in case_rows},
        "units": {r.id: r.version for r in unit_rows},
    }
    return pool, captured
