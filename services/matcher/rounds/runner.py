"""One matching round for one region, under a PostgreSQL advisory lock on the region, in three phases.

Prepare (one transaction): read the pool, build and record the problem (status `running`).
Solve: the solver runs in a worker process; the event loop stays free.
Record (one transaction): create proposals for assignments whose case and unit are unchanged since
prepare, mark the round completed, and enqueue match.proposed + round.completed in the outbox.
A crash between the phases leaves the round `running` and the region unhandled: whoever takes the lock
next marks it `abandoned` and runs the region again, so no proposal is lost or published twice.
The SQL of all three lives in rounds/store.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from services.matcher import events, metrics
from services.matcher.pool.problem import PoolView, build_problem, canonical_json, sha256_text
from services.matcher.rounds import store
from services.matcher.rounds.context import RoundContext
from services.matcher.rounds.store import Captured, region_lock
from services.matcher.rounds.summary import summarise
from services.matcher.rounds.worker import SolverPool, versions
from services.matcher.solver.params import SolveParams

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Prepared:
    """What the prepare phase recorded: the round, its problem and what the record phase checks against."""

    region: str
    round_id: str
    problem: dict[str, Any]
    params: SolveParams
    captured: Captured  # case and unit versions the problem was built from
    trigger: str
    started_at: datetime  # database time at prepare
    started: float  # monotonic clock at the start of the round


@dataclass(frozen=True)
class Solved:
    """The solve phase's outcome: the problem actually solved (pins may have been held out) and its result."""

    problem: dict[str, Any]
    result: dict[str, Any]
    problem_changed: bool = False
    context: RoundContext = field(default_factory=RoundContext)  # eligibility and candidates for the events


def new_round_id(region: str) -> str:
    return f"{region}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


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


def new_pairs(result: dict[str, Any]) -> list[tuple[str, str]]:
    """A result's new (not pinned) pairs."""
    return [(a["case"], a["unit"]) for a in result.get("assignments") or [] if not a.get("pinned")]


def still_open(pairs: list[tuple[str, str]], problem: dict[str, Any]) -> tuple[tuple[str, str], ...] | None:
    """The warm-start hint: the last round's pairs whose case and unit are both in this problem, or None.

    Its proposals keep their case and unit out of the pool while pending, so this is mostly empty; what
    remains are pairs back in the pool (a pending proposal cancelled by an update, an assignment that went
    stale during the solve): among equally good solutions the solver then proposes the same home again.
    """
    cases = {c["id"] for c in problem.get("cases") or []}
    units = {u["id"] for u in problem.get("units") or []}
    kept = tuple((c, u) for c, u in pairs if c in cases and u in units)
    return kept or None


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
        self.on_published = on_published  # called after the record phase commits (wakes the outbox relay)
        self.current: dict[str, str] = {}  # region -> round id running here
        # Issue 15: each region's last round's new pairs (this instance's memory only), handed to the next
        # round as the solver's warm start; recorded with the round's parameters, so a replay uses it too.
        self.last_pairs: dict[str, list[tuple[str, str]]] = {}

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
            prepared = await self._prepare(session, region, force, started)
        if prepared is None:
            return None
        self.current[region] = prepared.round_id
        try:
            try:
                solved = await self._solve(prepared)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("solver failed", extra={"round_id": prepared.round_id, "region": region})
                async with session.begin():
                    await self._fail(session, prepared, repr(exc))
                metrics.ROUNDS.labels(region, "failed").inc()
                return RoundReport(prepared.round_id, region, "failed", prepared.trigger, 0, 0)
            async with session.begin():
                report = await self._record(session, prepared, solved)
            self.last_pairs[region] = new_pairs(solved.result)
        finally:
            self.current.pop(region, None)
            await session.close()
        if self.on_published is not None:
            self.on_published()
        return report

    async def back_off(self, region: str) -> None:
        """After an unexpected failure: leave the region alone for a while instead of retrying hot."""
        async with self.engine.begin() as conn:
            await store.back_off(conn, region, self.failure_backoff_s)

    # --- phase 1: prepare ----------------------------------------------------------------------------

    async def _prepare(
        self, session: AsyncSession, region: str, force: bool, started: float
    ) -> Prepared | None:
        """Record a `running` round with the problem built from the pool; None when none is needed."""
        state = await store.read_state(session, region, create=force)
        if state is None:
            return None
        needed = state.change_seq > state.handled_seq or state.requested_at is not None
        if not (needed or force):
            return None
        abandoned = await store.abandon_running(session, region)
        requested = force or state.requested_at is not None
        trigger = "redo" if abandoned else ("requested" if requested else "pool_change")
        pool, captured = await store.load_pool(session, region)
        round_id = new_round_id(region)
        # Pure CPU work in a thread: with a large region the event loop (consumer, heartbeats) keeps going.
        problem, text_, sha = await asyncio.to_thread(_build_and_hash, pool, round_id)
        policy = problem.get("policy") or {}
        params = SolveParams(
            time_limit_s=float(policy.get("time_limit_s", 10.0)),
            workers=self.options.workers,
            seed=int(policy.get("seed", 0)),
            deterministic=self.options.deterministic,
            previous=still_open(self.last_pairs.get(region, []), problem),
        )
        started_at = state.now if state.now is not None else await store.db_now(session)
        found = versions()
        await store.insert_round(
            session,
            id=round_id,
            region=region,
            status="running",
            trigger=trigger,
            instance=self.instance,
            started_at=started_at,
            seq_at_build=state.change_seq,
            problem=text_,
            problem_sha256=sha,
            ortools_version=found["ortools"],
            wijkmatch_version=found["wijkmatch"],
            parameters=params.as_dict(),
        )
        log.info(
            "round started",
            extra={"region": region, "round_id": round_id, "trigger": trigger, "abandoned": abandoned},
        )
        return Prepared(region, round_id, problem, params, captured, trigger, started_at, started)

    # --- phase 2: solve ------------------------------------------------------------------------------

    async def _solve(self, prepared: Prepared) -> Solved:
        """Solve in a worker process, which also computes the round context for the events (eligibility and
        candidates; an add-on, so a fault there never fails the round); pins the solver reports invalid are
        held out and the rest re-solved."""
        problem = prepared.problem
        result, context, error = await self.solver.solve_round(problem, prepared.params)
        bad_pins = invalid_pin_indices(result) if result.get("status") == "INVALID_INPUT" else set()
        changed = bool(bad_pins)
        if bad_pins:
            log.warning("pins no longer valid; holding them out", extra={"round_id": prepared.round_id})
            problem = drop_pins(problem, bad_pins)
            result, context, error = await self.solver.solve_round(problem, prepared.params)
        if error is not None:
            log.error(
                "round context failed; events go out without it",
                extra={"round_id": prepared.round_id, "error": error},
            )
        return Solved(problem, result, problem_changed=changed, context=context or RoundContext())

    async def _fail(self, session: AsyncSession, prepared: Prepared, error: str) -> None:
        await store.finish_round(session, prepared.round_id, status="failed", error=error[:2000])
        await store.back_off(session, prepared.region, self.failure_backoff_s)

    # --- phase 3: record -----------------------------------------------------------------------------

    async def _record(self, session: AsyncSession, prepared: Prepared, solved: Solved) -> RoundReport:
        region, round_id, result = prepared.region, prepared.round_id, solved.result
        state, recorded = await store.lock_state_and_round(session, region, round_id)
        if recorded.status != "running":
            raise RuntimeError(f"round {round_id} was taken over ({recorded.status})")
        made = stale = 0
        published: list[dict[str, Any]] = []
        status = result.get("status", "INVALID_INPUT")
        if status in ("OPTIMAL", "FEASIBLE"):
            made, stale, published = await self._propose(session, prepared, solved)
        summary = summarise(solved.problem, result)
        summary["proposals"] = made
        summary["stale"] = stale
        duration = time.monotonic() - prepared.started
        values: dict[str, Any] = {}
        if solved.problem_changed:  # pins were held out: record the problem actually solved
            text_ = canonical_json(solved.problem)
            values = {"problem": text_, "problem_sha256": sha256_text(text_)}
        sha = values.get("problem_sha256") or recorded.problem_sha256
        await store.finish_round(
            session,
            round_id,
            **values,
            status="completed" if status != "INVALID_INPUT" else "invalid",
            result=result,
            summary=summary,
            duration_s=duration,
            error=json.dumps(result.get("errors"))[:2000] if status == "INVALID_INPUT" else None,
        )
        # The proposals' match.proposed, then round.completed: one outbox statement.
        await store.enqueue_events(
            session,
            region,
            [
                *published,
                events.round_completed(
                    region=region,
                    round_id=round_id,
                    result=result,
                    summary=summary,
                    problem_sha256=sha,
                    duration_seconds=duration,
                    unplaced=solved.context.unplaced,
                ),
            ],
        )
        seq = recorded.seq_at_build
        caught_up = state.change_seq == seq
        requested_after = state.requested_at is not None and state.requested_at > prepared.started_at
        await store.mark_handled(
            session,
            region,
            seq,
            first_unhandled_at=None if caught_up else prepared.started_at,
            requested_at=state.requested_at if requested_after else None,
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
        return RoundReport(round_id, region, status, prepared.trigger, made, stale, summary, duration)

    async def _propose(
        self, session: AsyncSession, prepared: Prepared, solved: Solved
    ) -> tuple[int, int, list[dict[str, Any]]]:
        """Pending proposals for the new assignments whose case is still open and unit still vacant at
        the versions the problem was built from; (made, stale, their match.proposed events)."""
        region, captured = prepared.region, prepared.captured
        case_snap = {c["id"]: c for c in solved.problem["cases"]}
        unit_snap = {u["id"]: u for u in solved.problem["units"]}
        new = sorted(
            (a for a in solved.result.get("assignments") or [] if not a.get("pinned")),
            key=lambda a: a["case"],
        )
        if not new:
            return 0, 0, []
        case_now, unit_now = await store.lock_pairs(
            session, region, [a["case"] for a in new], [a["unit"] for a in new]
        )
        made = stale = 0
        now = datetime.now(UTC)
        rows, published = [], []
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
                round_id=prepared.round_id,
                proposal_id=proposal_id,
                assignment=a,
                context=_with_care_needs(solved.context.for_pair(c, u), case_snap[c]),
            )
            rows.append(
                {
                    "id": proposal_id,
                    "region": region,
                    "round_id": prepared.round_id,
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
            published.append(event)
            if us[2] is not None:
                metrics.VACANCY_TO_PROPOSAL.observe(max(0.0, (now - us[2]).total_seconds()))
            made += 1
        if rows:
            await store.save_proposals(session, region, rows)
        if stale:
            metrics.DROPPED_ASSIGNMENTS.labels(region).inc(stale)
        return made, stale, published


def _with_care_needs(context: dict[str, Any] | None, case: dict[str, Any]) -> dict[str, Any] | None:
    """Issue 16: a proposal names its household's care categories (review passes them on with the
    approval, so the notifier knows to wait for the providers' confirmations before the offer)."""
    needs = list(case.get("care_needs") or ())
    if not needs:
        return context
    return {**(context or {}), "care_needs": needs}
