"""`make chaos`: the whole pipeline as processes under faults, then a Jepsen-style count of anomalies.

intake, matcher, review and notifier run as separate processes under the local supervisor (which restarts
a killed service), on the bundled broker and an embedded PostgreSQL that this driver owns, so it can
restart it. While a steady mixed workload goes in — every input sent one to three times and shuffled out
of order within a window, with withdrawals — a killer SIGKILLs a random service at random moments (at
least `--kills` times), PostgreSQL is restarted `--pg-restarts` times, an approver approves pending
proposals through the review API as staff would, and the corporations accept the offers that reach the
offers topic. Then the faults stop and the driver waits until the pipeline has settled (no outbox backlog,
every count unchanged for `--quiet-s` seconds) and counts, from the databases and the topics:

- lost inputs: a sent event intake has no record of (inbox), or an entity whose final state in the
  matcher's pool is not what the inputs say (a live unit/case missing or withdrawn; a withdrawn one still
  available);
- effects applied twice: a case or unit held by two active proposals, two offers (distinct offer ids on
  the topic, or rows) for one proposal, a case or unit housed twice;
- proposals that break a rule: every completed round's result checked against its own problem by the
  independent referee (tests/support/checker.py, written from DOMAIN.md without the solver's code);
- stale reads: an active proposal whose case or unit is withdrawn (it should have been cancelled), an
  offer still open for a proposal that is no longer offered;
- rejected valid inputs: any of the sent events on the intake-rejected topic.

The target is 0 of each. Results: bench/results/chaos.json and docs/benchmarks.md ("Fault injection").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "chaos.json"
SERVICES = ("intake", "matcher", "review", "notifier")
ACTIVE = ("pending", "approved", "offered")  # matcher proposal statuses that hold their case and unit
AVAILABLE = {"case": ("open", "proposed", "offered"), "unit": ("vacant", "proposed", "offered")}
OUTBOXES = ("intake", "matcher", "review", "notifier")


# ----------------------------------------------------------------------------------- what was sent


@dataclass
class Workload:
    """What the driver sent: every distinct input, and what the pool must end with."""

    inputs: set[tuple[str, str]] = field(default_factory=set)  # (source, event id)
    live: set[tuple[str, str, str]] = field(default_factory=set)  # (kind, region, id)
    withdrawn: set[tuple[str, str, str]] = field(default_factory=set)
    unit_sender: dict[tuple[str, str], str] = field(default_factory=dict)  # (region, unit) -> source
    answers: set[str] = field(default_factory=set)  # event ids of the corporations' offer answers


@dataclass
class Observed:
    """What the databases and topics hold once the pipeline has settled."""

    inbox: set[tuple[str, str]]
    rejected_ids: set[str]
    pool_status: dict[tuple[str, str, str], str]  # (kind, region, id) -> matcher status
    proposals: list[dict[str, Any]]  # id, region, case_id, unit_id, status
    offer_events: list[tuple[str, str]]  # (proposal_id, offer_id) of offer.made on the topic
    offer_rows: list[dict[str, Any]]  # proposal_id, offer_id, status
    housed: list[tuple[str, str, str]]  # (region, case_id, unit_id)
    round_violations: dict[str, list[str]]  # round id -> the referee's findings (empty: fine)


def count_anomalies(sent: Workload, seen: Observed) -> dict[str, Any]:
    """Every anomaly class with its count and up to five examples. Pure: unit-tested with made-up rows."""
    found: dict[str, list[Any]] = {}

    found["lost_inputs"] = sorted(sent.inputs - seen.inbox)
    lost_effects = []
    for entity in sorted(sent.live):
        status = seen.pool_status.get(entity)
        if status is None or status == "withdrawn":
            lost_effects.append((*entity, status))
    for entity in sorted(sent.withdrawn):
        # Absent is fine: the withdrawal reached intake first, so the matcher never saw the entity.
        status = seen.pool_status.get(entity)
        if status in AVAILABLE[entity[0]]:
            lost_effects.append((*entity, status))
    found["lost_effects"] = lost_effects

    active = [p for p in seen.proposals if p["status"] in ACTIVE]
    holders: Counter[tuple[str, str, str]] = Counter()
    for p in active:
        holders[("case", p["region"], p["case_id"])] += 1
        holders[("unit", p["region"], p["unit_id"])] += 1
    found["held_twice"] = sorted(k for k, n in holders.items() if n > 1)
    offer_ids: dict[str, set[str]] = {}
    for proposal_id, offer_id in [
        *seen.offer_events,
        *((r["proposal_id"], r["offer_id"]) for r in seen.offer_rows),
    ]:
        offer_ids.setdefault(proposal_id, set()).add(offer_id)
    found["offered_twice"] = sorted(p for p, ids in offer_ids.items() if len(ids) > 1)
    housed_cases = Counter((r, c) for r, c, _ in seen.housed)
    housed_units = Counter((r, u) for r, _, u in seen.housed)
    found["housed_twice"] = sorted(
        [("case", *k) for k, n in housed_cases.items() if n > 1]
        + [("unit", *k) for k, n in housed_units.items() if n > 1]
    )

    found["rule_breaking_rounds"] = sorted((r, v[:3]) for r, v in seen.round_violations.items() if v)

    stale = []
    for p in active:
        for kind, key in (("case", p["case_id"]), ("unit", p["unit_id"])):
            if seen.pool_status.get((kind, p["region"], key)) == "withdrawn":
                stale.append((p["id"], kind, key))
    status_of = {p["id"]: p["status"] for p in seen.proposals}
    for row in seen.offer_rows:
        if row["status"] == "open" and status_of.get(row["proposal_id"]) not in ("offered", None):
            stale.append((row["proposal_id"], "offer", row["offer_id"]))
    found["stale"] = stale

    valid = {event_id for _, event_id in sent.inputs} | sent.answers
    found["rejected_valid_inputs"] = sorted(seen.rejected_ids & valid)
    return {
        name: {"count": len(items), "examples": [list(x) if isinstance(x, tuple) else x for x in items[:5]]}
        for name, items in found.items()
    }


# ------------------------------------------------------------------------------------ the workload


def chaos_registry(path: Path) -> Path:
    """The demo organisations, each allowed every region (so corporations, not the catch-all demo feed,
    publish the units and can answer their offers) and without webhooks (offers go to the topic only)."""
    import yaml

    from services.platform.admission.registry import DEMO_REGISTRY_PATH

    document = yaml.safe_load(DEMO_REGISTRY_PATH.read_text(encoding="utf-8"))
    for org in document["organisations"]:
        org["regions"] = "*"
        org.pop("webhooks", None)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def build_workload(
    regions: list[str], cases: int, units: int, seed: int, registry_path: Path
) -> tuple[list[dict[str, Any]], Workload]:
    """The external events of `regions` (generated regions, as the demo feed sends them) plus withdrawals of
    about 5 % of the units and cases, each withdrawal timed after its publication."""
    from devstack.demofeed import Sender, SenderBook, external_event, region_events
    from devstack.generate import generate_problem
    from schemas.topics import TYPE_PREFIX
    from services.platform.admission.registry import load_registry

    rng = random.Random(seed)
    registry = load_registry(registry_path)
    events: list[dict[str, Any]] = []
    sent = Workload()
    for n, region in enumerate(regions):
        problem = generate_problem(cases, units, seed=seed + n)
        book = SenderBook(registry, region)
        for sender, event in region_events(problem, region, book):
            events.append(event)
            data = event["data"]
            short = event["type"][len(TYPE_PREFIX) :]
            if short == "vacancy.published":
                sent.live.add(("unit", region, data["id"]))
                sent.unit_sender[(region, data["id"])] = sender.source
            elif short == "case.registered":
                sent.live.add(("case", region, data["id"]))
        for kind, type_short in (("unit", "vacancy.withdrawn"), ("case", "case.withdrawn")):
            chosen = sorted(e for e in sent.live if e[0] == kind and e[1] == region)
            for _, _, entity_id in rng.sample(chosen, max(1, len(chosen) // 20)):
                owner_event = next(
                    e
                    for e in events
                    if e["data"].get("region") == region
                    and e["data"].get("id") == entity_id
                    and e["type"].endswith(("vacancy.published", "case.registered"))
                )
                owner = registry.by_source(owner_event["source"])
                assert owner is not None
                sender = Sender(owner.id, owner_event["source"])
                events.append(external_event(type_short, {"region": region, "id": entity_id}, sender))
                sent.live.discard((kind, region, entity_id))
                sent.withdrawn.add((kind, region, entity_id))
    sent.inputs = {(e["source"], e["id"]) for e in events}
    return events, sent


def delivery_order(events: list[dict[str, Any]], seed: int, window: int = 25) -> list[dict[str, Any]]:
    """Every event one to three times, shuffled within windows of `window` (out of order, never so far that
    a region's reference data trails its last case by the whole stream)."""
    rng = random.Random(seed)
    copies = [e for e in events for _ in range(rng.choice((1, 1, 2, 3)))]
    out: list[dict[str, Any]] = []
    for start in range(0, len(copies), window):
        chunk = copies[start : start + window]
        rng.shuffle(chunk)
        out.extend(chunk)
    return out


# ------------------------------------------------------------------------------------------ the run


class Faults:
    """The killer: SIGKILLs a random running service every so often; restarts PostgreSQL on schedule."""

    def __init__(self, stack: Any, database: Any, kills: int, pg_restarts: int, seed: int) -> None:
        self.stack, self.database = stack, database
        self.kills_wanted, self.pg_restarts_wanted = kills, pg_restarts
        self.rng = random.Random(seed)
        self.kills: Counter[str] = Counter()
        self.pg_restarts = 0
        self.pg_down_s = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="chaos-faults", daemon=True)

    def _run(self) -> None:
        total = self.kills_wanted + self.pg_restarts_wanted
        restarts_at = set(self.rng.sample(range(2, total), self.pg_restarts_wanted)) if total > 2 else set()
        step = 0
        while not self.stop.is_set() and (
            sum(self.kills.values()) < self.kills_wanted or self.pg_restarts < self.pg_restarts_wanted
        ):
            if self.stop.wait(self.rng.uniform(1.5, 4.0)):
                return
            step += 1
            if step in restarts_at and self.pg_restarts < self.pg_restarts_wanted:
                started = time.monotonic()
                self.database.stop()
                self.stop.wait(self.rng.uniform(1.0, 3.0))
                self.database.start()
                self.pg_down_s += time.monotonic() - started
                self.pg_restarts += 1
                continue
            running = [s for s in self.stack.services.values() if s.running()]
            if not running:
                continue
            victim = self.rng.choice(running)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(victim.process.pid, signal.SIGKILL)
                self.kills[victim.spec.name] += 1

    @property
    def done(self) -> bool:
        return sum(self.kills.values()) >= self.kills_wanted and self.pg_restarts >= self.pg_restarts_wanted


async def produce(bootstrap: str, events: list[dict[str, Any]], pace_s: float, stop: threading.Event) -> None:
    """Sends the events in order at about `pace_s` per event, retrying while the broker is busy."""
    from devstack.samples import message
    from services.platform.kafka import make_producer

    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for event in events:
            topic, key, value = message(event)
            while True:
                try:
                    await producer.send_and_wait(topic, value, key=key)
                    break
                except Exception:
                    await asyncio.sleep(0.5)
            if stop.is_set():
                return
            await asyncio.sleep(pace_s)
    finally:
        await producer.stop()


async def staff_and_corporations(
    stack: Any, bootstrap: str, regions: list[str], sent: Workload, stop: asyncio.Event, seed: int
) -> Counter[str]:
    """The approver approves about two thirds of the pending proposals through the review API; the
    corporations accept about two thirds of the offers that reach the offers topic, the rest decline.
    Every failure (a killed service, PostgreSQL away) is retried on the next pass."""
    import httpx
    from aiokafka import AIOKafkaConsumer

    from schemas.events import make_event
    from schemas.topics import OFFER_RESPONSES, OFFERS
    from services.platform.auth import mint_dev_token
    from services.platform.kafka import make_producer

    rng = random.Random(seed)
    token = mint_dev_token("chaos-approver", ["reviewer", "approver"], regions)
    headers = {"Authorization": f"Bearer {token}"}
    done: Counter[str] = Counter()
    decided: set[str] = set()
    answered: set[str] = set()
    consumer = AIOKafkaConsumer(
        OFFERS, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    producer = make_producer(bootstrap)
    await consumer.start()
    await producer.start()
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            while not stop.is_set():
                review = stack.services.get("review")
                for region in regions:
                    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                        listed = await http.get(
                            f"{review.url}/v1/proposals",
                            params={"region": region, "status": "pending", "limit": 100},
                            headers=headers,
                        )
                        for item in listed.json().get("items", []) if listed.status_code == 200 else []:
                            if item["id"] in decided:
                                continue
                            decided.add(item["id"])
                            if rng.random() < 2 / 3:
                                answer = await http.post(
                                    f"{review.url}/v1/proposals/{item['id']}/approve",
                                    headers={**headers, "Idempotency-Key": f"chaos-{item['id']}"},
                                )
                                if answer.status_code == 200:
                                    done["approved"] += 1
                                else:
                                    decided.discard(item["id"])  # try again on the next pass
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        event = json.loads(record.value)
                        data = event.get("data", {})
                        if (
                            not event.get("type", "").endswith("offer.made")
                            or data.get("offer_id") in answered
                        ):
                            continue
                        source = sent.unit_sender.get((data.get("region"), data.get("unit")))
                        if source is None:
                            continue
                        answered.add(data["offer_id"])
                        accept = rng.random() < 2 / 3
                        body = {k: data[k] for k in ("region", "offer_id", "proposal_id", "case", "unit")}
                        if not accept:
                            body["reason_code"] = "household_declined"
                        reply = make_event(
                            "offer.accepted" if accept else "offer.declined",
                            body,
                            source=source,
                            id=str(uuid.uuid4()),
                            time=datetime.now(UTC),
                        )
                        sent.answers.add(reply["id"])
                        await producer.send_and_wait(
                            OFFER_RESPONSES, json.dumps(reply).encode(), key=data["region"].encode()
                        )
                        done["accepted" if accept else "declined"] += 1
                await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
        await producer.stop()
    return done


async def settle(stack: Any, regions: list[str], quiet_s: float, timeout_s: float) -> float:
    """Seconds until the pipeline is at rest: every service answers ready, no outbox holds an unsent row,
    the matcher has handled every change of the chaos regions (no round due), and the pipeline's counts
    stayed unchanged for `quiet_s`."""
    from sqlalchemy import text

    from devstack.supervisor import http_ready
    from services.platform.db import create_engine

    engine = create_engine(stack.database_url)
    busy = [f"SELECT count(*) FROM {schema}.outbox WHERE sent_at IS NULL" for schema in OUTBOXES] + [
        "SELECT count(*) FROM matcher.region_state WHERE region = ANY(:r) AND change_seq > handled_seq"
    ]
    counts = [f"SELECT count(*) FROM {schema}.inbox" for schema in OUTBOXES] + [
        "SELECT count(*) || '/' || coalesce(max(finished_at)::text, '') FROM matcher.rounds",
        "SELECT string_agg(status || ':' || n, ',' ORDER BY status) FROM "
        "(SELECT status, count(*) n FROM matcher.proposals GROUP BY status) s",
        "SELECT string_agg(status || ':' || n, ',' ORDER BY status) FROM "
        "(SELECT status, count(*) n FROM notifier.offers GROUP BY status) s",
    ]
    started = time.monotonic()
    last: list[Any] | None = None
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - started < timeout_s:
            try:
                async with engine.connect() as connection:
                    pending = [(await connection.execute(text(q), {"r": regions})).scalar() for q in busy]
                    values = [(await connection.execute(text(q))).scalar() for q in counts]
            except Exception:
                await asyncio.sleep(1)
                continue
            ready = all(
                await asyncio.gather(
                    *(asyncio.to_thread(http_ready, s.ready_url, 1.0) for s in stack.services.values())
                )
            )
            if values != last or any(int(v) for v in pending) or not ready:
                last, quiet_since = values, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                return time.monotonic() - started - quiet_s
            await asyncio.sleep(1)
    finally:
        await engine.dispose()
    raise TimeoutError(f"the pipeline did not settle within {timeout_s:.0f}s")


async def observe(database_url: str, bootstrap: str, regions: list[str]) -> Observed:
    from sqlalchemy import text

    from schemas.topics import INTAKE_REJECTED, OFFERS
    from services.platform.db import create_engine
    from tests.support.checker import check_result

    engine = create_engine(database_url)
    try:
        async with engine.connect() as c:
            inbox = {
                (r.source, r.event_id)
                for r in (await c.execute(text("SELECT source, event_id FROM intake.inbox"))).all()
            }
            status: dict[tuple[str, str, str], str] = {}
            for kind, table in (("case", "cases"), ("unit", "units")):
                rows = await c.execute(
                    text(f"SELECT region, id, status FROM matcher.{table} WHERE region = ANY(:r)"),
                    {"r": regions},
                )
                status.update({(kind, r.region, r.id): r.status for r in rows.all()})
            proposals = [
                dict(r._mapping)
                for r in (
                    await c.execute(
                        text(
                            "SELECT id, region, case_id, unit_id, status FROM matcher.proposals "
                            "WHERE region = ANY(:r)"
                        ),
                        {"r": regions},
                    )
                ).all()
            ]
            offer_rows = [
                dict(r._mapping)
                for r in (
                    await c.execute(
                        text(
                            "SELECT proposal_id, offer_id, status FROM notifier.offers WHERE region = ANY(:r)"
                        ),
                        {"r": regions},
                    )
                ).all()
            ]
            housed = [
                (r.region, r.case_id, r.unit_id)
                for r in (
                    await c.execute(
                        text("SELECT region, case_id, unit_id FROM matcher.housed WHERE region = ANY(:r)"),
                        {"r": regions},
                    )
                ).all()
            ]
            violations: dict[str, list[str]] = {}
            rounds = await c.execute(
                text(
                    "SELECT id, problem, result FROM matcher.rounds "
                    "WHERE region = ANY(:r) AND result IS NOT NULL"
                ),
                {"r": regions},
            )
            for r in rounds.all():
                result = r.result if isinstance(r.result, dict) else json.loads(r.result)
                violations[r.id] = check_result(json.loads(r.problem), result)
    finally:
        await engine.dispose()
    offer_events = [
        (e["data"]["proposal_id"], e["data"]["offer_id"])
        for e in await _read_topic(bootstrap, OFFERS)
        if e.get("type", "").endswith("offer.made") and e["data"].get("region") in regions
    ]
    rejected = {e["data"].get("event_id") for e in await _read_topic(bootstrap, INTAKE_REJECTED)}
    return Observed(inbox, rejected, status, proposals, offer_events, offer_rows, housed, violations)


async def _read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record of `topic` from the start to the fetch high watermark (not end_offsets(): the bundled
    broker under-reports it)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        idle = 0
        while idle < 3:
            batch = await consumer.getmany(timeout_ms=1000)
            if not batch:
                idle += 1
                continue
            idle = 0
            for records in batch.values():
                out.extend(json.loads(r.value) for r in records if r.value)
    finally:
        await consumer.stop()
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    p.add_argument("--regions", type=int, default=3)
    p.add_argument("--cases", type=int, default=120, help="cases per region")
    p.add_argument("--units", type=int, default=50, help="vacancies per region")
    p.add_argument("--kills", type=int, default=24, help="SIGKILLs of services, at least")
    p.add_argument("--pg-restarts", type=int, default=2)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--pace-ms", type=float, default=15.0, help="pause between two sent events")
    p.add_argument("--quiet-s", type=float, default=20.0, help="unchanged counts that mean 'settled'")
    p.add_argument("--settle-timeout-s", type=float, default=600.0)
    p.add_argument("--out", type=Path, default=RESULTS)
    return p


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from devstack.localdb import EmbeddedPostgres
    from devstack.supervisor import LocalStack

    args = _parser().parse_args(argv)
    console = Console(highlight=False)
    regions = [f"chaos-{args.seed}-{i}" for i in range(args.regions)]
    work = Path(tempfile.mkdtemp(prefix="wijkmatch-chaos-"))
    registry = chaos_registry(work / "organisations.yaml")
    events, sent = build_workload(regions, args.cases, args.units, args.seed, registry)
    deliveries = delivery_order(events, args.seed)
    console.print(
        f"[bold]wijkmatch chaos[/bold]: {len(regions)} regions, {len(sent.inputs)} distinct inputs sent as "
        f"{len(deliveries)} messages, ≥{args.kills} kills, {args.pg_restarts} PostgreSQL restarts"
    )
    database = EmbeddedPostgres(work / "pg", durable=True).start()
    stack = LocalStack(
        services=SERVICES,
        free_ports=True,
        database_url=database.url(),
        log_dir=work / "logs",
        restart_backoff_s=0.5,
        console=console,
        env={
            "WIJKMATCH_MATCHER_DEBOUNCE_S": "2",
            "WIJKMATCH_AUTH_MODE": "local",
            "WIJKMATCH_ORGANISATIONS": str(registry),
        },
    )
    started = time.monotonic()
    try:
        stack.start()
        stack.wait_ready(timeout=180)
        faults = Faults(stack, database, args.kills, args.pg_restarts, args.seed)
        result = asyncio.run(_drive(args, stack, database, faults, deliveries, sent, regions, console))
    finally:
        stack.stop()
        database.stop()
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    result["logs"] = str(work / "logs")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    total = sum(a["count"] for a in result["anomalies"].values())
    console.print_json(data={k: v["count"] for k, v in result["anomalies"].items()})
    console.print(
        f"kills {result['faults']['kills']} · PostgreSQL restarts {result['faults']['pg_restarts']} · "
        f"settled "
        f"{result['settle_s']} s after the faults stopped · anomalies {total} · written {args.out}"
    )
    return 0 if total == 0 else 1


async def _drive(
    args: argparse.Namespace,
    stack: Any,
    database: Any,
    faults: Faults,
    deliveries: list[dict[str, Any]],
    sent: Workload,
    regions: list[str],
    console: Any,
) -> dict[str, Any]:
    assert stack.kafka_bootstrap is not None and stack.database_url is not None
    stop_staff = asyncio.Event()
    staff = asyncio.create_task(
        staff_and_corporations(stack, stack.kafka_bootstrap, regions, sent, stop_staff, args.seed)
    )
    faults.thread.start()
    fed_at = time.monotonic()
    await produce(stack.kafka_bootstrap, deliveries, args.pace_ms / 1000, threading.Event())
    feed_s = time.monotonic() - fed_at
    while not faults.done:  # the feed may end first: the faults go on until their count is reached
        await asyncio.sleep(1)
    faults.stop.set()
    faults.thread.join(timeout=60)
    if not database.is_running():
        database.start()
    console.print(
        f"faults done: kills {dict(faults.kills)}, PostgreSQL restarts {faults.pg_restarts}; settling"
    )
    settle_s = await settle(stack, regions, args.quiet_s, args.settle_timeout_s)
    stop_staff.set()
    staff_done = await staff
    # One more settle: the last answers and approvals of the staff loop go through too.
    await settle(stack, regions, args.quiet_s, args.settle_timeout_s)
    seen = await observe(stack.database_url, stack.kafka_bootstrap, regions)
    restarts = {name: s.restarts for name, s in stack.services.items()}
    return {
        "workload": {
            "regions": len(regions),
            "cases_per_region": args.cases,
            "units_per_region": args.units,
            "distinct_inputs": len(sent.inputs),
            "messages_sent": len(deliveries),
            "withdrawals": len(sent.withdrawn),
            "feed_s": round(feed_s, 1),
            "staff": dict(staff_done),
        },
        "faults": {
            "kills": sum(faults.kills.values()),
            "kills_by_service": dict(faults.kills),
            "restarts_by_service": restarts,
            "pg_restarts": faults.pg_restarts,
            "pg_down_s": round(faults.pg_down_s, 1),
        },
        "settle_s": round(settle_s, 1),
        "outcome": {
            "proposals_by_status": dict(Counter(p["status"] for p in seen.proposals)),
            "offers": len(seen.offer_rows),
            "housed": len(seen.housed),
            "rounds_checked": len(seen.round_violations),
        },
        "anomalies": count_anomalies(sent, seen),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }


if __name__ == "__main__":
    raise SystemExit(main())
