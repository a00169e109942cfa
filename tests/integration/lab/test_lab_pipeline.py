"""The results monitor and the what-if against a real pipeline (real broker + PostgreSQL, in-process matcher).

A region goes through the matcher: a round proposes, staff approve and reject (with reasons), offers are
made, accepted and declined (with reasons). The report's numbers equal counts taken directly from the
matcher's tables, and a what-if on the region changes nothing in the database or on any topic.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from devstack.generate import generate_problem
from lab import report as lab_report
from lab import whatif
from schemas.topics import ALL_TOPICS
from services.matcher.pool.tables import proposals
from tests.support.matcher_support import (
    approved,
    offer,
    offer_response,
    pool_events_for,
    produce_decisions,
    produce_offers,
    produce_pool,
    produce_responses,
    rejected,
    wait_until,
)

pytestmark = pytest.mark.integration

CORP = "urn:org:corp:test-corp"


async def _rows(service: Any, region: str) -> list[dict[str, Any]]:
    async with service.sessions() as session:
        found = (
            (await session.execute(select(proposals).where(proposals.c.region == region))).mappings().all()
        )
    return [dict(r) for r in found]


async def _statuses(service: Any, region: str, wanted: dict[str, str]) -> bool:
    found = {r["id"]: r["status"] for r in await _rows(service, region)}
    return all(found.get(pid) == status for pid, status in wanted.items())


async def _db_fingerprint(service: Any, region: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with service.sessions() as session:
        for table in ("proposals", "rounds", "cases", "units", "forbidden", "reference", "region_state"):
            out[table] = (
                await session.execute(
                    text(
                        f"SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), ''))"
                        f" FROM matcher.{table} t WHERE region = :r"
                    ),
                    {"r": region},
                )
            ).one()
        out["outbox"] = (await session.execute(text("SELECT count(*), max(id) FROM matcher.outbox"))).one()
    return out


async def _scan(bootstrap: str, start: dict[Any, int], region: str) -> tuple[dict[Any, int], list[Any]]:
    """Read every partition of every topic from `start` (default 0) until the broker has nothing more:
    the next offset per partition and the records about `region` (everything is keyed by region, so
    another test's records on the shared broker are ignored)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    nxt = dict(start)
    found = []
    try:
        parts = [
            TopicPartition(t, p) for t in ALL_TOPICS for p in sorted(consumer.partitions_for_topic(t) or {0})
        ]
        consumer.assign(parts)
        for tp in parts:
            consumer.seek(tp, start.get(tp, 0))
        while True:
            batch = await consumer.getmany(timeout_ms=1500)
            if not batch:
                break
            for tp, records in batch.items():
                for record in records:
                    nxt[tp] = record.offset + 1
                    if (record.key or b"").decode(errors="replace") == region:
                        found.append((tp.topic, record.offset))
    finally:
        await consumer.stop()
    return nxt, found


async def test_report_counts_equal_the_pipeline_and_whatif_writes_nothing(
    matcher: Any, kafka_bootstrap: str, migrated_database_url: str, region: str, tmp_path: Path
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=1)
    at_start, _ = await _scan(kafka_bootstrap, {}, region)
    problem = generate_problem(40, 24, seed=5)
    await produce_pool(kafka_bootstrap, region, pool_events_for(problem, region, unit_owner="test-corp"))
    first = await wait_until(lambda: _rows(matcher, region), timeout=90, what="first proposals")
    matcher.scheduler.debounce_s = matcher.scheduler.max_delay_s = 3600.0
    await wait_until(lambda: not matcher.scheduler.tasks, timeout=60, what="no round in flight")
    first = sorted(await _rows(matcher, region), key=lambda r: r["case_id"])
    assert len(first) >= 6
    pick = [{"proposal_id": r["id"], "case": r["case_id"], "unit": r["unit_id"]} for r in first]
    accept, decline_a, decline_b, keep, reject_a, reject_b = pick[:6]
    await produce_decisions(
        kafka_bootstrap,
        region,
        [
            approved(region, accept),
            approved(region, decline_a),
            approved(region, decline_b),
            approved(region, keep),
            rejected(region, reject_a, reason="unsuitable"),
            rejected(region, reject_b, reason="care_not_arranged"),
        ],
    )
    await wait_until(
        lambda: _statuses(
            matcher, region, {accept["proposal_id"]: "approved", reject_b["proposal_id"]: "rejected"}
        ),
        timeout=30,
        what="decisions",
    )
    offers = {p["proposal_id"]: f"offer-{uuid.uuid4().hex[:8]}" for p in (accept, decline_a, decline_b)}
    await produce_offers(
        kafka_bootstrap,
        region,
        [offer("offer.made", region, p, offers[p["proposal_id"]]) for p in (accept, decline_a, decline_b)],
    )
    await wait_until(
        lambda: _statuses(
            matcher, region, {p["proposal_id"]: "offered" for p in (accept, decline_a, decline_b)}
        ),
        timeout=30,
        what="offers",
    )
    await produce_responses(
        kafka_bootstrap,
        region,
        [
            offer_response("offer.accepted", region, accept, offers[accept["proposal_id"]], CORP),
            offer_response(
                "offer.declined", region, decline_a, offers[decline_a["proposal_id"]], CORP, reason="too_far"
            ),
            offer_response(
                "offer.declined", region, decline_b, offers[decline_b["proposal_id"]], CORP, reason="too_far"
            ),
        ],
    )
    await wait_until(
        lambda: _statuses(
            matcher,
            region,
            {
                accept["proposal_id"]: "accepted",
                decline_a["proposal_id"]: "declined",
                decline_b["proposal_id"]: "declined",
            },
        ),
        timeout=30,
        what="answers",
    )

    # The report, from the database, against counts taken directly from the same tables.
    rows = await _rows(matcher, region)
    raw = await lab_report.collect(
        migrated_database_url, region, started, datetime.now(UTC) + timedelta(minutes=1)
    )
    assert raw.proposals_by_status == dict(Counter(r["status"] for r in rows))
    assert raw.proposals_by_status["accepted"] == 1 and raw.proposals_by_status["declined"] == 2
    assert raw.proposals_by_status["rejected"] == 2
    assert raw.declines_by_reason == {"too_far": 2}
    assert raw.rejections_by_reason == {"unsuitable": 1, "care_not_arranged": 1}
    accepted = [r for r in rows if r["status"] == "accepted"]
    assert raw.let == dict(
        Counter((r["case_snapshot"]["group"], r["unit_snapshot"]["kind"]) for r in accepted)
    )
    async with matcher.sessions() as session:
        n_rounds = (
            await session.execute(
                text("SELECT count(*) FROM matcher.rounds WHERE region = :r"), {"r": region}
            )
        ).scalar_one()
    assert len(raw.round_starts) == n_rounds >= 1
    # Published with k = 1 nothing is hidden; with k = 10 every count here is below k.
    open_report = lab_report.publish(raw, k=1)
    assert open_report["proposals_by_status"]["rows"] == {
        s: str(n) for s, n in sorted(raw.proposals_by_status.items())
    }
    assert open_report["declines_by_reason"]["rows"] == {"too_far": "2"}
    assert open_report["overrule_rate"] == round(
        2 / sum(raw.proposals_by_status.get(s, 0) for s in lab_report.DECIDED), 3
    )
    public = lab_report.publish(raw, k=10)
    assert public["declines_by_reason"]["rows"] == {"too_far": "< 10"}
    assert all(v in ("< 10", "x") for v in public["staff_rejections_by_reason"]["rows"].values())
    assert public["overrule_rate"] is None
    page = lab_report.write(public, tmp_path / "report")
    assert "&lt; 10" in page.read_text() and (tmp_path / "report" / "homes_let.csv").exists()

    # The what-if reads the pool and changes nothing: not the database, not a topic.
    before_db = await _db_fingerprint(matcher, region)
    before_topics, own = await _scan(kafka_bootstrap, at_start, region)
    # positive control: the pipeline's own records about this region are found this way
    assert len(own) > 20
    for _ in range(10):  # until the relays have nothing more to publish
        before_topics, late = await _scan(kafka_bootstrap, before_topics, region)
        if not late:
            break
    current = await whatif.load_problem(migrated_database_url, region)
    assert {"case": keep["case"], "unit": keep["unit"]} in current["pinned"]
    changed = whatif.apply_changes(current, ["policy.max_share=0.5", "policy.quota_bonus=0"])
    diff = whatif.compare(current, changed, time_limit_s=5)
    assert set(diff["placed_by_group"]["current"]) == set(whatif.GROUPS)
    assert diff["status"]["current"] in ("OPTIMAL", "FEASIBLE")
    assert "nothing published or written" in whatif.render(region, diff, ["policy.max_share=0.5"])
    assert await _db_fingerprint(matcher, region) == before_db
    assert (await _scan(kafka_bootstrap, before_topics, region))[1] == []
