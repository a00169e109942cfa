"""Intake benchmark: broker -> intake -> PostgreSQL (`make bench-intake`, `python -m bench.intake`).

1. Throughput: pre-load N events (default 100,000) onto the external topics, then start intake (consumer +
   outbox relay, in this process, exactly as `wijkmatch intake` wires them) and time until every event
   is committed in PostgreSQL: sustained events/s = N / (last commit - first batch start).
2. Latency: with intake caught up, produce events at a steady rate (default 1,000/s) and measure each
   record's broker timestamp -> database commit (p50/p99).

Broker: KAFKA_BOOTSTRAP_SERVERS, else the bundled Tansu on a free port. Database: DATABASE_URL's server,
else the embedded PostgreSQL; a fresh database is created, migrated and dropped. Results go to
bench/results/intake.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from devstack import samples
from services.intake.settings import IntakeSettings

RESULTS = Path(__file__).resolve().parent / "results" / "intake.json"


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _preload(bootstrap: str, events: list[dict[str, Any]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for ev in events:
            topic, key, value = samples.message(ev)
            pending.append(await producer.send(topic, value=value, key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def _paced(bootstrap: str, events: list[dict[str, Any]], rate: float) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=2
    )
    await producer.start()
    try:
        start = time.perf_counter()
        pending = []
        for i, ev in enumerate(events):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            topic, key, value = samples.message(ev)
            pending.append(await producer.send(topic, value=value, key=key))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def _logged(engine: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM intake.inbox"))).scalar_one())


async def run(args: argparse.Namespace, bootstrap: str, database_url: str) -> dict[str, Any]:
    from services.intake.app import create_app
    from services.intake.bootstrap import build_runtime
    from services.platform.migrations import upgrade_async

    await upgrade_async(database_url, ["intake"])
    regions = [f"bench-{i}" for i in range(args.regions)]
    print(f"generating {args.events:,} events over {len(regions)} regions ...", flush=True)
    events = samples.workload(regions, args.events, seed=args.seed)
    latency_events = samples.workload(regions, args.latency_events, seed=args.seed + 1)
    for ev in latency_events:
        ev["id"] = "lat-" + ev["id"]
    print(f"pre-loading {len(events):,} events onto the broker at {bootstrap} ...", flush=True)
    preload_s = await _preload(bootstrap, events)
    print(f"pre-loaded in {preload_s:.1f}s", flush=True)

    settings = IntakeSettings(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        group_id=f"bench-intake-{secrets.token_hex(4)}",
        batch_max_records=args.batch,
        migrate_on_start=False,
        log_level="WARNING",
    )
    runtime = build_runtime(settings)
    latencies: list[float] = []
    app = create_app(settings, runtime, configure_logs=False)
    started = time.monotonic()
    async with app.start_lifespan_context():
        while True:
            done = await _logged(runtime.engine)
            if done >= len(events):
                break
            if time.monotonic() - started > args.timeout:
                raise SystemExit(f"timed out: {done:,} of {len(events):,} committed")
            await asyncio.sleep(0.02)
        # From the first batch's start (group join excluded) to the commit of the last event.
        assert runtime.first_batch_at is not None
        elapsed = runtime.last_commit - runtime.first_batch_at
        committed_at = time.perf_counter()
        throughput = len(events) / elapsed
        print(f"throughput: {len(events):,} events committed in {elapsed:.1f}s = {throughput:,.0f} events/s")
        while await runtime.relay.pending() > 0 and time.perf_counter() - committed_at < args.timeout:
            await asyncio.sleep(0.1)
        relay_drain_s = time.perf_counter() - committed_at

        observe = runtime.observe_commit_latencies

        def observe_and_keep(batch: list[float]) -> None:
            observe(batch)
            latencies.extend(batch)

        runtime.observe_commit_latencies = observe_and_keep  # type: ignore[method-assign]
        print(
            f"latency phase: {len(latency_events):,} events at {args.rate:,.0f}/s while intake runs ...",
            flush=True,
        )
        await _paced(bootstrap, latency_events, args.rate)
        target = len(events) + len(latency_events)
        deadline = time.perf_counter() + args.timeout
        while await _logged(runtime.engine) < target and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        runtime.observe_commit_latencies = observe  # type: ignore[method-assign]
    p50, p99 = _percentile(latencies, 0.50), _percentile(latencies, 0.99)
    print(f"event->committed latency at {args.rate:,.0f}/s: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    return {
        "benchmark": "intake",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": len(events),
        "regions": len(regions),
        "batch_max_records": args.batch,
        "preload_seconds": round(preload_s, 2),
        "elapsed_seconds": round(elapsed, 2),
        "events_per_second": round(throughput, 1),
        "relay_drain_after_commit_seconds": round(relay_drain_s, 2),
        "latency": {
            "rate_per_second": args.rate,
            "events": len(latencies),
            "p50_ms": round(p50 * 1000, 1),
            "p99_ms": round(p99 * 1000, 1),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        },
        "target_events_per_second": 2000,
        "target_met": throughput >= 2000,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "broker": "KAFKA_BOOTSTRAP_SERVERS" if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else "bundled Tansu",
        "database": "DATABASE_URL server" if os.environ.get("DATABASE_URL") else "embedded PostgreSQL",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--latency-events", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="events/s in the latency phase")
    parser.add_argument("--regions", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000, help="max records per consumed batch")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from bench.infra import bench_stack

    with bench_stack("wijkmatch_bench", args.partitions) as (bootstrap, database_url):
        result = asyncio.run(run(args, bootstrap, database_url))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
