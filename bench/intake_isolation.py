"""Poison isolation in intake's batch processor (issue 12): `python -m bench.intake_isolation`.

3,000 `case.registered` events in three batches of 1,000 through `BatchProcessor` on real PostgreSQL (a
fresh database on DATABASE_URL's server, dropped afterwards; no broker — this times the processor), in
three runs: `clean`; `bad_times` — 6 events with `time` 9999-12-31T23:59:59-23:59 (issue 12's case,
refused at validation since the fix); `poison` — 6 valid events whose transaction fails (a stand-in for
a bug: the real apply runs, then raises), isolated by bisection. Prints one JSON line per run and writes
bench/results/intake_isolation.json.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.infra import admin
from devstack import samples
from services.intake.service import processor as processor_module
from services.intake.service.processor import BatchProcessor, RawRecord
from services.intake.service.verdicts import dead_letter, to_verdict
from services.intake.settings import IntakeSettings
from services.platform.admission.registry import load_registry
from services.platform.db import create_engine, session_maker
from services.platform.migrations import upgrade_async

RESULTS = Path(__file__).resolve().parent / "results" / "intake_isolation.json"
EVENTS, BATCH, BAD = 3000, 1000, 6


async def _run(database_url: str, mode: str) -> dict[str, Any]:
    await upgrade_async(database_url, ["intake"])
    engine = create_engine(database_url)
    registry = load_registry()
    keys = IntakeSettings(database_url=database_url).build_keystore()
    await keys.start()
    region = f"bench-{secrets.token_hex(3)}"
    events = [samples.event("case.registered", samples.case(region, f"C{i}")) for i in range(EVENTS)]
    poisoned: set[str] = set()
    for n in range(BAD if mode != "clean" else 0):
        event = events[100 + (EVENTS // BAD) * n]
        if mode == "bad_times":
            event["time"] = "9999-12-31T23:59:59-23:59"
        else:
            poisoned.add(event["id"])
    real_apply = processor_module.apply_batch

    async def poisoned_apply(session: Any, verdicts: Any, *, keys: Any) -> Any:
        outcome = await real_apply(session, verdicts, keys=keys)
        if any(getattr(v, "event_id", None) in poisoned for v in verdicts):
            raise ValueError("poison")
        return outcome

    processor_module.apply_batch = poisoned_apply  # type: ignore[assignment]
    try:
        records = []
        for n, event in enumerate(events):
            topic, key, value = samples.message(event)
            records.append(RawRecord(topic, 0, n, key, value, 0))
        processor = BatchProcessor(
            session_maker(engine),
            validate=lambda r: to_verdict(r, registry),
            dead_letter=dead_letter,
            keys=keys,
        )
        started, transactions, applied, rejected = time.perf_counter(), 0, 0, 0
        for i in range(0, EVENTS, BATCH):
            outcome = await processor.process(records[i : i + BATCH])
            transactions += processor.transactions
            applied, rejected = applied + outcome.total("applied"), rejected + outcome.total("rejected")
        seconds = time.perf_counter() - started
        async with engine.connect() as connection:
            reasons = (
                await connection.execute(
                    text(
                        "SELECT DISTINCT payload->'data'->'errors'->0->>'message' FROM intake.outbox "
                        "WHERE payload->>'type' = 'nl.wijkmatch.intake.rejected'"
                    )
                )
            ).scalars()
            reasons = sorted(str(r)[:80] for r in reasons)
    finally:
        processor_module.apply_batch = real_apply  # type: ignore[assignment]
        await keys.close()
        await engine.dispose()
    return {
        "mode": mode,
        "events": EVENTS,
        "seconds": round(seconds, 2),
        "transactions": transactions,
        "applied": applied,
        "rejected": rejected,
        "rejection_reasons": reasons,
    }


def main() -> int:
    logging.disable(logging.CRITICAL)  # the poison runs log an error per failed transaction
    server = os.environ.get("DATABASE_URL")
    if not server:
        raise SystemExit("set DATABASE_URL to a PostgreSQL server (a fresh database is created there)")
    rows = []
    for mode in ("clean", "bad_times", "poison"):
        name = f"bench_isolation_{secrets.token_hex(4)}"
        url = admin(server, f'CREATE DATABASE "{name}"', name)
        try:
            row = asyncio.run(_run(url, mode))
        finally:
            admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', name)
            admin(server, f'DROP DATABASE IF EXISTS "{name}_keys" WITH (FORCE)', name)
        print(json.dumps(row, ensure_ascii=False), flush=True)
        rows.append(row)
    RESULTS.write_text(json.dumps({"runs": rows}, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
