"""Matcher benchmark (`make bench-matcher`, `python -m bench.matcher`): vacancy.published -> match.proposed.

Real processes: the bundled broker (unless KAFKA_BOOTSTRAP_SERVERS), PostgreSQL (DATABASE_URL's server,
else the embedded one; a fresh database, dropped at the end), `wijkmatch intake` and `wijkmatch matcher`
with debounce 1 s. Each of 10 regions is seeded with reference data and a small pool (not timed); then
mixed external traffic runs at 100 events/s over the 10 regions (new vacancies, new cases, case updates,
withdrawals). Measured: latency from sending each vacancy.published to receiving its match.proposed
(p50/p99, for the vacancies that were proposed) and round durations (solve and total). Target:
p99 <= debounce + solve time (p99) + 1 s. Writes bench/results/matcher.json.

With steady traffic a region is never quiet for the debounce window, so the maximum delay decides
when rounds start; it is set to the debounce window here (WIJKMATCH_MATCHER_MAX_DELAY_S=1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "matcher.json"
LOGS = Path(__file__).resolve().parent.parent / ".wijkmatch" / "bench-matcher"


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 4)


def _free_port() -> int:
    from devstack.localbroker import free_port

    return free_port()


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{name}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child holds it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *argv], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


async def _wait_ready(url: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                response = await client.get(url + "/readyz")
                if response.status_code == 200 and response.json().get("assignment_known", True):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{url} not ready within {timeout:.0f}s")


def to_pool_event(event: dict[str, Any], care: dict[tuple[str, str, str], dict[str, int]]) -> dict[str, Any]:
    """The pool event intake would emit for an external event (care capacity summed over providers)."""
    from schemas.pool import pool_change_for, pool_event_id, pool_removed, pool_upserted

    change = pool_change_for(event["type"], event["data"])
    pool_id = pool_event_id(event["source"], event["id"], change.entity, change.key, change.action)
    if change.action == "removed":
        return pool_removed(change.entity, change.region, change.key, event["time"], pool_id)
    snapshot = dict(change.snapshot or {})
    if change.entity == "care_capacity":
        providers = care.setdefault((change.region, snapshot["area"], snapshot["care_type"]), {})
        providers[event["data"]["provider"]] = snapshot["slots"]
        snapshot["slots"] = sum(providers.values())
    return pool_upserted(change.entity, change.region, change.key, snapshot, event["time"], pool_id)


class Traffic:
    """Synthetic external events per region, drawn from a generated region (demo-feed's senders)."""

    def __init__(self, region: str, seed: int, seed_cases: int, seed_units: int, extra: int) -> None:
        from devstack.demofeed import SenderBook, region_events
        from devstack.generate import generate_problem
        from services.platform.admission.registry import load_registry

        self.region = region
        self.rng = random.Random(seed)
        problem = generate_problem(seed_cases + extra, seed_units + extra, seed=seed)
        policy = dict(problem.get("policy") or {})
        policy["time_limit_s"] = 2.0
        problem["policy"] = policy
        self.book = SenderBook(load_registry(), region)
        self.spare_cases = problem["cases"][seed_cases:]
        self.spare_units = problem["units"][seed_units:]
        seed_problem = {
            **problem,
            "cases": problem["cases"][:seed_cases],
            "units": problem["units"][:seed_units],
        }
        self.seed_events = [e for _, e in region_events(seed_problem, region, self.book)]
        self.cases = list(seed_problem["cases"])
        self.units = list(seed_problem["units"])

    def _event(self, type_short: str, data: dict[str, Any]) -> dict[str, Any]:
        from devstack.demofeed import external_event

        sender = self.book.sender(type_short)
        if type_short == "vacancy.published":
            data["corporation"] = sender.org_id
        elif type_short in ("case.registered", "case.updated"):
            data["referrer"] = sender.org_id
        return external_event(type_short, {"region": self.region, **data}, sender)

    def next(self) -> dict[str, Any] | None:
        roll = self.rng.random()
        if roll < 0.40 and self.spare_units:
            unit = self.spare_units.pop(0)
            self.units.append(unit)
            return self._event("vacancy.published", dict(unit))
        if roll < 0.80 and self.spare_cases:
            case = self.spare_cases.pop(0)
            self.cases.append(case)
            return self._event("case.registered", dict(case))
        if roll < 0.90 and self.cases:
            case = dict(self.rng.choice(self.cases))
            case["priority"] = min(1_000_000, case["priority"] + self.rng.randint(1, 5000))
            return self._event("case.updated", case)
        if roll < 0.95 and len(self.cases) > 5:
            case = self.cases.pop(self.rng.randrange(len(self.cases)))
            return self._event("case.withdrawn", {"id": case["id"], "reason": "found_housing"})
        if len(self.units) > 5:
            unit = self.units.pop(self.rng.randrange(len(self.units)))
            return self._event("vacancy.withdrawn", {"id": unit["id"], "reason": "renovation"})
        return None


async def run(args: argparse.Namespace, bootstrap: str, database_url: str) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from schemas.events import TOPIC_OF_TYPE
    from schemas.topics import POOL, PROPOSALS, TYPE_PREFIX
    from services.platform.kafka import CLOUDEVENTS_HEADERS, make_producer
    from services.platform.migrations import upgrade

    await asyncio.to_thread(upgrade, database_url, ["intake", "matcher"])
    tag = secrets.token_hex(3)
    load_before = os.getloadavg()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "WIJKMATCH_MATCHER_DEBOUNCE_S": str(args.debounce),
        "WIJKMATCH_MATCHER_MAX_DELAY_S": str(args.max_delay if args.max_delay else args.debounce),
        "WIJKMATCH_MATCHER_SCHEDULER_INTERVAL_S": "0.1",
        "WIJKMATCH_MATCHER_SOLVER_PROCESSES": str(args.solver_processes),
        "WIJKMATCH_MATCHER_SOLVER_WORKERS": "1",
        "WIJKMATCH_INTAKE_GROUP_ID": f"bench-intake-{tag}",
        "WIJKMATCH_MATCHER_CONSUMER_GROUP": f"bench-matcher-{tag}",
        "WIJKMATCH_LOG_LEVEL": os.environ.get("WIJKMATCH_LOG_LEVEL", "WARNING"),
    }
    env.pop("WIJKMATCH_ORGANISATIONS", None)
    intake_port, matcher_port, metrics_port = _free_port(), _free_port(), _free_port()
    env["WIJKMATCH_MATCHER_METRICS_PORT"] = str(metrics_port)  # /metrics: the internal health port
    via_pool = args.via == "pool"
    intake = None if via_pool else Child("intake", ["intake", "run", "--port", str(intake_port)], env)
    care_sums: dict[tuple[str, str, str], dict[str, int]] = {}
    matcher = Child("matcher", ["matcher", "--no-migrate", "--port", str(matcher_port)], env)
    regions = [f"bench-{tag}-{i}" for i in range(args.regions)]
    traffic = [
        Traffic(r, args.seed + i, args.seed_cases, args.seed_units, args.extra) for i, r in enumerate(regions)
    ]
    sent: dict[tuple[str, str], float] = {}
    proposed_at: dict[tuple[str, str], float] = {}
    pool_seen: dict[tuple[str, str], tuple[float, str]] = {}  # the unit's first pool event: when seen, its id
    solve_seconds: list[float] = []
    rounds_seen = 0
    producer = make_producer(bootstrap)
    # A short fetch wait: the bundled broker holds a fetch for its full wait even when a record arrives.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    try:
        if intake is not None:
            await _wait_ready(f"http://127.0.0.1:{intake_port}")
        await _wait_ready(f"http://127.0.0.1:{matcher_port}")
        await producer.start()
        await consumer.start()
        tps = []
        for topic in (PROPOSALS, POOL):
            parts = consumer.partitions_for_topic(topic) or set(range(4))
            tps += [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        region_set = set(regions)

        async def follow() -> None:
            nonlocal rounds_seen
            async for record in consumer:
                if record.key is None or record.key.decode() not in region_set:
                    continue
                event = json.loads(record.value)
                kind = event["type"][len(TYPE_PREFIX) :]
                if record.topic == POOL:
                    if kind == "pool.unit.upserted":
                        unit_key = (event["data"]["region"], event["data"]["key"])
                        pool_seen.setdefault(unit_key, (time.time(), event["id"]))
                    continue
                if kind == "match.proposed":
                    proposed_at.setdefault((event["data"]["region"], event["data"]["unit"]), time.time())
                elif kind == "round.completed":
                    rounds_seen += 1
                    solve_seconds.append(float(event["data"]["solve_seconds"]))

        follower = asyncio.create_task(follow())

        async def send(event: dict[str, Any]) -> None:
            if event["type"] == TYPE_PREFIX + "vacancy.published":
                sent[(event["data"]["region"], event["data"]["id"])] = time.time()
            topic = TOPIC_OF_TYPE[event["type"]]
            event["time"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")  # sent now
            if via_pool:
                event, topic = to_pool_event(event, care_sums), POOL
            await producer.send(
                topic,
                value=json.dumps(event).encode(),
                key=event["data"]["region"].encode(),
                headers=CLOUDEVENTS_HEADERS,
            )

        print(f"seeding {len(regions)} regions ...", flush=True)
        for t in traffic:
            for event in t.seed_events:
                await send(event)
        await producer.flush()
        warm = time.monotonic() + args.warmup
        while time.monotonic() < warm:
            await asyncio.sleep(0.5)
        # Timing starts once the matcher has caught up with the seeding (every pool event applied, every
        # region's rounds done): else the first timed events queue behind the seed backlog.
        settled_after = await _wait_settled(database_url, regions, timeout=args.settle_timeout)
        print(f"settled {settled_after:.1f} s after the warm-up", flush=True)
        sent.clear()
        proposed_at.clear()
        pool_seen.clear()
        solve_seconds.clear()
        rounds_seen = 0
        print(f"mixed traffic: {args.rate:.0f} events/s for {args.duration:.0f} s ...", flush=True)
        cpu_before = _cpu_seconds(matcher.process.pid)
        started = time.monotonic()
        count = 0
        interval = 1.0 / args.rate
        while time.monotonic() - started < args.duration:
            event = traffic[count % len(traffic)].next()
            count += 1
            if event is not None:
                await send(event)
            lag = started + count * interval - time.monotonic()
            if lag > 0:
                await asyncio.sleep(lag)
        elapsed = time.monotonic() - started
        cpu_after = _cpu_seconds(matcher.process.pid)
        await producer.flush()
        drain = time.monotonic() + args.drain
        while time.monotonic() < drain and len(proposed_at.keys() & sent.keys()) < len(sent):
            await asyncio.sleep(0.5)
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        pipeline = await _scrape_age(f"http://127.0.0.1:{metrics_port}")
        durations = await _round_durations(database_url, regions)
        stages = await _stages(database_url, regions, sent, pool_seen, proposed_at)
    finally:
        await producer.stop()
        await consumer.stop()
        matcher.stop()
        if intake is not None:
            intake.stop()
    latencies = [proposed_at[u] - t for u, t in sent.items() if u in proposed_at]
    p99_solve = _percentile(solve_seconds, 0.99) or 0.0
    target = args.debounce + p99_solve + 1.0
    p99 = _percentile(latencies, 0.99)
    system_p99 = durations["proposed_by_first_round_that_saw_it"]["vacancy_event_to_proposal_row_s"]["p99"]
    first_p99 = stages["total"]["p99"]
    return {
        "benchmark": "matcher",
        "when": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": {
            "via": args.via,
            "regions": args.regions,
            "rate_events_per_s": args.rate,
            "duration_s": args.duration,
            "debounce_s": args.debounce,
            "max_delay_s": args.max_delay if args.max_delay else args.debounce,
            "seed_cases_per_region": args.seed_cases,
            "seed_units_per_region": args.seed_units,
            "solver_processes": args.solver_processes,
            "policy_time_limit_s": 2.0,
            "mix": "40% vacancy.published, 40% case.registered, 10% case.updated, 5% case/vacancy withdrawn",
        },
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "events_sent": count,
        "events_per_s": round(count / elapsed, 1),
        # CPU the matcher used while the traffic ran (its service process; its solver processes apart):
        # less noisy than latency on a shared machine, where other work decides how long a runnable
        # process waits for a core.
        "matcher_cpu_s": {
            name: round(cpu_after[name] - cpu_before[name], 2) for name in ("service", "solvers")
        },
        "vacancies_published": len(sent),
        "vacancies_proposed": len(latencies),
        "latency_s": {
            "p50": _percentile(latencies, 0.5),
            "p90": _percentile(latencies, 0.9),
            "p99": p99,
            "max": round(max(latencies), 4) if latencies else None,
        },
        "pool_event_age_s": pipeline,
        "rounds": rounds_seen,
        "solve_s": {
            "p50": _percentile(solve_seconds, 0.5),
            "p99": p99_solve,
            "max": max(solve_seconds, default=None),
        },
        "round_duration_s": durations,
        "stages_s": stages,
        "target_p99_s": round(target, 3),
        "target_met": p99 is not None and p99 <= target,
        "target_met_for_vacancies_matchable_on_arrival": system_p99 is not None and system_p99 <= target,
        # The measure: vacancy.published sent -> its match.proposed received, first-round proposals.
        "first_round_latency_s": {"p50": stages["total"]["p50"], "p99": first_p99, "n": stages["total"]["n"]},
        "target_met_first_round": first_p99 is not None and first_p99 <= target,
        "logs": str(LOGS),
    }


def _cpu_seconds(pid: int) -> dict[str, float]:
    """User + system CPU seconds of a process ("service") and of its live child processes ("solvers"),
    from /proc (zeros where it is not available)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def stat(p: int | str) -> list[str] | None:
        try:
            text_ = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            return None
        return text_[text_.rindex(")") + 2 :].split()  # fields from the state on (the name may hold spaces)

    own = stat(pid)
    service = (int(own[11]) + int(own[12])) / tick if own else 0.0
    solvers = 0.0
    for entry in Path("/proc").iterdir() if own else ():
        if entry.name.isdigit() and (fields := stat(entry.name)) and fields[1] == str(pid):
            solvers += (int(fields[11]) + int(fields[12])) / tick
    return {"service": service, "solvers": solvers}


async def _wait_settled(database_url: str, regions: list[str], timeout: float) -> float:
    """Wait until the matcher's pool inbox has stopped growing for 2 s and every region is handled."""
    from sqlalchemy import text

    from schemas.topics import POOL
    from services.platform.db import create_engine

    engine = create_engine(database_url)
    started = time.monotonic()
    last, stable_since = -1, time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            async with engine.connect() as conn:
                count = (
                    await conn.execute(
                        text("SELECT count(*) FROM matcher.inbox WHERE topic = :t"), {"t": POOL}
                    )
                ).scalar_one()
                unhandled = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM matcher.region_state WHERE region = ANY(:rs) "
                            "AND change_seq > handled_seq"
                        ),
                        {"rs": regions},
                    )
                ).scalar_one()
            if count != last:
                last, stable_since = count, time.monotonic()
            elif unhandled == 0 and time.monotonic() - stable_since >= 2.0:
                break
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
    return time.monotonic() - started


async def _scrape_age(url: str) -> dict[str, Any]:
    """Mean age of pool events when the matcher applied them (external send -> intake -> matcher)."""
    import httpx

    async with httpx.AsyncClient(timeout=5) as client:
        text_ = (await client.get(url + "/metrics")).text
    values = {}
    for line in text_.splitlines():
        if line.startswith("wijkmatch_matcher_pool_event_age_seconds_sum"):
            values["sum"] = float(line.split()[-1])
        elif line.startswith("wijkmatch_matcher_pool_event_age_seconds_count"):
            values["count"] = float(line.split()[-1])
    count = values.get("count", 0.0)
    return {"events": int(count), "mean": round(values.get("sum", 0.0) / count, 3) if count else None}


STAGES_SQL = """
SELECT p.region, p.unit_id,
       extract(epoch FROM r.started_at) AS round_started,
       extract(epoch FROM r.started_at) + r.duration_s AS round_finished,
       extract(epoch FROM p.created_at) AS proposal_row,
       (r.id = p.round_id) AS first_round
FROM matcher.proposals p
JOIN matcher.units u ON u.region = p.region AND u.id = p.unit_id
JOIN LATERAL (
    SELECT r.id, r.started_at, r.duration_s FROM matcher.rounds r
    WHERE r.region = p.region AND strpos(r.problem, '"id":"' || u.id || '"') > 0
    ORDER BY r.started_at LIMIT 1
) r ON true
WHERE p.region = ANY(:rs)
"""


async def _stages(
    database_url: str,
    regions: list[str],
    sent: dict[tuple[str, str], float],
    pool_seen: dict[tuple[str, str], tuple[float, str]],
    proposed_at: dict[tuple[str, str], float],
) -> dict[str, Any]:
    """Where a first-round proposal's time goes, stage by stage (p50/p99 of each; wall clocks of one
    machine): sent -> on the pool topic (intake) -> applied by the matcher (inbox row) -> its first round
    starts (debounce / max delay, scheduler tick, a free round slot) -> the proposal row (round: build,
    solve, record) -> received from the proposals topic (outbox relay, broker, bench consumer)."""
    from sqlalchemy import text

    from schemas.topics import POOL
    from services.platform.db import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(STAGES_SQL), {"rs": regions})).all()
            # When the matcher applied each vacancy's pool event (its inbox row, by the event's id: a later
            # event of the same unit, e.g. its withdrawal, must not count).
            applied_at = dict(
                (
                    await conn.execute(
                        text(
                            "SELECT event_id, extract(epoch FROM received_at) FROM matcher.inbox "
                            "WHERE topic = :pool AND event_id = ANY(:ids)"
                        ),
                        {"pool": POOL, "ids": [i for _, i in pool_seen.values()]},
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    spans: dict[str, list[float]] = {
        "total": [],  # sent -> match.proposed received, for vacancies proposed by the first round with them
        "intake": [],
        "matcher_consume": [],
        "wait_for_round": [],
        "round_to_proposal_row": [],
        "publish_and_receive": [],
    }
    consume_over_time: list[tuple[float, float]] = []
    for row in rows:
        unit = (row.region, row.unit_id)
        seen = pool_seen.get(unit)
        if not row.first_round or unit not in sent or unit not in proposed_at or seen is None:
            continue
        if seen[1] not in applied_at:
            continue
        t0, t_pool = sent[unit], seen[0]
        applied = float(applied_at[seen[1]])
        started, proposal = float(row.round_started), float(row.proposal_row)
        spans["intake"].append(t_pool - t0)
        spans["matcher_consume"].append(applied - t_pool)
        consume_over_time.append((t0, applied - t_pool))
        spans["total"].append(proposed_at[unit] - t0)
        spans["wait_for_round"].append(started - applied)
        spans["round_to_proposal_row"].append(proposal - started)
        spans["publish_and_receive"].append(proposed_at[unit] - proposal)
    out: dict[str, Any] = {
        name: {"n": len(v), "p50": _percentile(v, 0.5), "p99": _percentile(v, 0.99)}
        for name, v in spans.items()
    }
    # Whether the consumer kept up: the matcher_consume p50 and max per tenth of the run (by send time).
    consume_over_time.sort()
    tenth = max(1, len(consume_over_time) // 10)
    out["matcher_consume_by_tenth"] = [
        {"p50": _percentile([d for _, d in part], 0.5), "max": round(max(d for _, d in part), 3)}
        for part in (consume_over_time[i : i + tenth] for i in range(0, len(consume_over_time), tenth))
    ]
    return out


async def _round_durations(database_url: str, regions: list[str]) -> dict[str, Any]:
    from sqlalchemy import text

    from services.platform.db import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT duration_s, "
                        "(SELECT count(*) FROM json_array_elements(problem::json->'cases')) AS cases "
                        "FROM matcher.rounds WHERE region = ANY(:rs) AND status = 'completed'"
                    ),
                    {"rs": regions},
                )
            ).all()
    finally:
        await engine.dispose()
        async with engine.connect() as conn:
            waits = (
                await conn.execute(
                    text(
                        "SELECT extract(epoch FROM p.created_at - u.event_time) AS to_proposal, "
                        "(SELECT count(*) FROM matcher.rounds r WHERE r.region = p.region "
                        " AND r.status = 'completed' AND r.started_at > u.event_time "
                        " AND r.started_at < p.created_at) AS rounds_before, "
                        "(SELECT count(*) FROM matcher.rounds r WHERE r.region = p.region "
                        " AND r.status = 'completed' AND r.started_at < p.created_at "
                        " AND strpos(r.problem, '\"id\":\"' || u.id || '\"') > 0) AS rounds_seen, "
                        "(SELECT extract(epoch FROM min(r.started_at) - u.event_time) FROM matcher.rounds r "
                        " WHERE r.region = p.region AND strpos(r.problem, '\"id\":\"' || u.id || '\"') > 0)"
                        " AS first_seen_s "
                        "FROM matcher.proposals p "
                        "JOIN matcher.units u ON u.region = p.region AND u.id = p.unit_id "
                        "WHERE p.region = ANY(:rs) AND u.event_time > now() - interval '5 minutes'"
                    ),
                    {"rs": regions},
                )
            ).all()
    values = [float(r.duration_s) for r in rows if r.duration_s is not None]
    to_proposal = [float(w.to_proposal) for w in waits]
    before = [float(w.rounds_before) for w in waits]
    seen = [max(0.0, float(w.rounds_seen) - 1) for w in waits]  # the proposing round saw it too
    first_round = [float(w.to_proposal) for w in waits if w.rounds_seen <= 1]
    first_seen = [float(w.first_seen_s) for w in waits if w.first_seen_s is not None]
    return {
        "count": len(values),
        "p50": _percentile(values, 0.5),
        "p99": _percentile(values, 0.99),
        "max": round(max(values), 4) if values else None,
        "mean_cases_per_round": round(statistics.mean(r.cases for r in rows), 1) if rows else None,
        "vacancy_event_to_proposal_row_s": {
            "p50": _percentile(to_proposal, 0.5),
            "p99": _percentile(to_proposal, 0.99),
        },
        "proposed_by_first_round_that_saw_it": {
            "share": round(len(first_round) / len(waits), 3) if waits else None,
            "vacancy_event_to_proposal_row_s": {
                "p50": _percentile(first_round, 0.5),
                "p99": _percentile(first_round, 0.99),
            },
        },
        "earlier_rounds_without_it": {"p50": _percentile(before, 0.5), "p99": _percentile(before, 0.99)},
        "earlier_rounds_that_saw_it": {"p50": _percentile(seen, 0.5), "p99": _percentile(seen, 0.99)},
        "vacancy_event_to_first_round_with_it_s": {
            "p50": _percentile(first_seen, 0.5),
            "p99": _percentile(first_seen, 0.99),
        },
    }


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """One line of the per-region-count table (docs/benchmarks.md)."""
    return {
        "regions": result["config"]["regions"],
        "load_average": result["load_average"],
        "first_round_latency_s": result["first_round_latency_s"],
        "all_proposed_latency_s": {k: result["latency_s"][k] for k in ("p50", "p99")},
        "solve_s": result["solve_s"],
        "rounds": result["rounds"],
        "matcher_cpu_s": result["matcher_cpu_s"],
        "target_p99_s": result["target_p99_s"],
        "target_met_first_round": result["target_met_first_round"],
        "stages_s": {
            k: {"p50": v["p50"], "p99": v["p99"]}
            for k, v in result["stages_s"].items()
            if isinstance(v, dict)
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.matcher", description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, default=10)
    parser.add_argument(
        "--sweep",
        default="",
        help="comma-separated region counts (e.g. 1,2,5,10,20): one run each on a fresh stack; the JSON "
        "holds the 10-region run (else the last) and a by_regions summary",
    )
    parser.add_argument("--rate", type=float, default=100.0, help="external events per second (all regions)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of mixed traffic")
    parser.add_argument("--debounce", type=float, default=1.0)
    parser.add_argument("--max-delay", type=float, default=0.0, help="default: the debounce window")
    parser.add_argument("--seed-cases", type=int, default=150)
    parser.add_argument("--seed-units", type=int, default=15)
    parser.add_argument("--extra", type=int, default=400, help="spare cases/units per region for the traffic")
    parser.add_argument(
        "--solver-processes", type=int, default=2, help="2: two regions solve at once on 2 cores"
    )
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds after seeding before timing")
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=180.0,
        help="max seconds to wait for the seeding to be handled",
    )
    parser.add_argument("--drain", type=float, default=20.0, help="max seconds to wait for late proposals")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--via",
        choices=["intake", "pool"],
        default="intake",
        help="intake: external topics through intake (end to end); pool: pool events straight to the matcher",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from bench.infra import bench_stack

    counts = [int(n) for n in args.sweep.split(",")] if args.sweep else [args.regions]
    runs: dict[int, dict[str, Any]] = {}
    for n in counts:
        print(f"--- {n} region(s), load average {os.getloadavg()[0]:.2f}", flush=True)
        with bench_stack("wijkmatch_bench_matcher", args.partitions) as (bootstrap, database_url):
            runs[n] = asyncio.run(
                run(argparse.Namespace(**{**vars(args), "regions": n}), bootstrap, database_url)
            )
        print(json.dumps(_summary(runs[n])), flush=True)
    result = runs[10] if 10 in runs else runs[counts[-1]]
    if args.sweep:
        result = {**result, "by_regions": [_summary(runs[n]) for n in counts]}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
