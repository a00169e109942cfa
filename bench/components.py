"""Component benchmarks (`make bench-components`): validation core and outbox relay throughput.

Figures that used to be floors inside tests live here: speed is measured, printed and written to
bench/results/components.json, never asserted in the test suite. Broker: KAFKA_BOOTSTRAP_SERVERS, else
the bundled Tansu on a free port. Database: DATABASE_URL's server, else the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "components.json"


def bench_validation(events: int) -> dict[str, Any]:
    from services.platform.admission import Accepted, validate_message
    from services.platform.admission.registry import load_registry
    from tests.unit.schemas.event_examples import EXAMPLES, REGION, encode, topic_of, valid_event

    registry = load_registry()
    messages = [(topic_of(short), encode(valid_event(short))) for short in sorted(EXAMPLES)]
    key = REGION.encode()
    best = 0.0
    for _ in range(3):
        count = 0
        started = time.perf_counter()
        while count < events:
            for topic, value in messages:
                result = validate_message(
                    topic=topic, partition=0, offset=count, key=key, value=value, registry=registry
                )
                assert isinstance(result, Accepted)
                count += 1
        best = max(best, count / (time.perf_counter() - started))
    return {"validated_events_per_s_one_core": round(best), "event_types": len(messages)}


HOSTILE_VALUES = {
    "9000-wrong-items": lambda e: e["data"].__setitem__("care_needs", [1] * 9_000),
    "9000-unknown-fields": lambda e: e["data"].update({f"unknown-field-{i:05d}": 1 for i in range(9_000)}),
    "9000-objects": lambda e: e["data"].__setitem__("care_needs", [{}] * 9_000),
    "1M-brackets-in-a-string": lambda e: e["data"].__setitem__("reason", "[" * 1_000_000),
    "9000-deep-lists": lambda e: e["data"].__setitem__("care_needs", [[[[[[[[[[[[1]]]]]]]]]]]] * 9_000),
}


def bench_hostile_values() -> dict[str, float]:
    """Worst-case cost of one hostile value within the 1 MiB / 32-deep / 10,000-value limits (ms)."""
    from services.platform.admission import Rejected, validate_message
    from services.platform.admission.registry import load_registry
    from tests.unit.schemas.event_examples import REGION, encode, topic_of, valid_event

    registry = load_registry()
    costs: dict[str, float] = {}
    for name, build in HOSTILE_VALUES.items():
        event = valid_event("case.registered")
        build(event)
        raw = encode(event)
        started = time.perf_counter()
        result = validate_message(
            topic=topic_of("case.registered"),
            partition=0,
            offset=0,
            key=REGION.encode(),
            value=raw,
            registry=registry,
        )
        costs[name] = round((time.perf_counter() - started) * 1000, 1)
        assert isinstance(result, Rejected)
    return costs


async def bench_relay(database_url: str, bootstrap: str, events: int) -> dict[str, Any]:
    from schemas.envelope import make_event
    from services.platform import migrations
    from services.platform.db import create_engine, session_maker, transaction
    from services.platform.kafka import ensure_topics
    from services.platform.outbox import OutboxRelay, enqueue_many

    topic = f"bench.relay.{secrets.token_hex(4)}"
    await ensure_topics(bootstrap, [topic], partitions=4)
    with tempfile.TemporaryDirectory() as root:
        schema = f"bench_{secrets.token_hex(4)}"
        migrations.init_service(schema, root=Path(root))
        await migrations.upgrade_async(database_url, [schema], root=Path(root))
    engine = create_engine(database_url)
    try:
        sessions = session_maker(engine)
        batch = [
            make_event(
                type="pool.case.upserted",
                source="urn:wijkmatch:bench",
                subject=f"c{n}",
                data={"region": f"r{n % 10}", "key": f"c{n}", "snapshot": {"id": f"c{n}"}},
            )
            for n in range(events)
        ]
        started = time.perf_counter()
        for start in range(0, events, 500):
            async with transaction(sessions) as session:
                await enqueue_many(
                    session, schema, [(topic, e["data"]["region"], e) for e in batch[start : start + 500]]
                )
        enqueue_s = time.perf_counter() - started
        relay = OutboxRelay(engine, schema, bootstrap, listen=False, batch_size=500)
        try:
            started = time.perf_counter()
            published = await relay.publish_pending()
            relay_s = time.perf_counter() - started
        finally:
            await relay.stop()
    finally:
        await engine.dispose()
    return {
        "relay_events": published,
        "relay_events_per_s": round(published / relay_s),
        "enqueue_events_per_s": round(events / enqueue_s),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.components", description=__doc__.splitlines()[0])
    parser.add_argument("--validation-events", type=int, default=20_000)
    parser.add_argument("--relay-events", type=int, default=20_000)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    result: dict[str, Any] = {
        "benchmark": "components",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    result["validation"] = bench_validation(args.validation_events)
    print(f"validate_message: {result['validation']['validated_events_per_s_one_core']:,} valid events/s")
    result["hostile_value_ms"] = bench_hostile_values()
    print(f"hostile values (ms to reject one): {result['hostile_value_ms']}")

    from bench.infra import bench_stack

    with bench_stack("wijkmatch_bench") as (bootstrap, database_url):
        result["outbox"] = asyncio.run(bench_relay(database_url, bootstrap, args.relay_events))
    print(
        f"outbox relay: {result['outbox']['relay_events_per_s']:,} events/s published and marked; "
        f"enqueue {result['outbox']['enqueue_events_per_s']:,} events/s"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
