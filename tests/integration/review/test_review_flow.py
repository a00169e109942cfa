"""Proposal event in -> visible in the API -> approve -> exactly one match.approved on the topic."""

from __future__ import annotations

import pytest

from schemas.topics import PROPOSALS
from tests.integration.review.helpers import (
    FOUR_EYES_REGION,
    auth,
    decisions_on_topic,
    proposed_event,
    publish_round,
    round_completed_event,
    wait_for,
    wait_visible,
)

pytestmark = pytest.mark.integration


async def test_approve_publishes_exactly_one_match_approved_even_when_retried(
    client, publish, region, kafka_bootstrap
) -> None:
    _, events = await publish_round(publish, region, 2)
    reviewer = auth("reviewer", [region])
    items = await wait_visible(client, region, 2, reviewer)
    assert {i["status"] for i in items} == {"pending"}
    pid = events[0]["data"]["proposal_id"]

    first = await client.post(f"/v1/proposals/{pid}/approve", headers={**reviewer, "Idempotency-Key": "k-1"})
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "approved"
    again = await client.post(f"/v1/proposals/{pid}/approve", headers={**reviewer, "Idempotency-Key": "k-1"})
    assert again.status_code == 200
    assert again.json()["status"] == "approved" and again.json()["replayed"] is True
    without_key = await client.post(f"/v1/proposals/{pid}/approve", headers=reviewer)
    assert without_key.status_code == 409
    assert "already approved" in without_key.json()["detail"]

    async def published() -> list | None:
        return await decisions_on_topic(kafka_bootstrap, region, idle_s=1.0) or None

    await wait_for(published, what="match.approved on wijkmatch.decisions.v1")
    decisions = await decisions_on_topic(kafka_bootstrap, region, idle_s=2.0)
    assert [(d["type"], d["data"]["proposal_id"]) for d in decisions] == [
        ("nl.wijkmatch.match.approved", pid)
    ]
    data = decisions[0]["data"]
    assert (data["case"], data["unit"], data["region"]) == (
        events[0]["data"]["case"],
        events[0]["data"]["unit"],
        region,
    )
    assert decisions[0]["source"] == "urn:wijkmatch:review"


async def test_a_duplicate_proposal_event_changes_nothing(client, publish, region) -> None:
    event = proposed_event(region, "round-dup")
    for _ in range(3):
        await publish(PROPOSALS, region, event)
    reviewer = auth("reviewer", [region])
    await publish(PROPOSALS, region, proposed_event(region, "round-dup"))
    items = await wait_visible(client, region, 2, reviewer)
    assert len(items) == 2


async def test_reject_needs_a_reason_and_publishes_match_rejected(
    client, publish, region, kafka_bootstrap
) -> None:
    _, events = await publish_round(publish, region, 1)
    reviewer = auth("reviewer", [region])
    await wait_visible(client, region, 1, reviewer)
    pid = events[0]["data"]["proposal_id"]
    url = f"/v1/proposals/{pid}/reject"
    assert (await client.post(url, json={"reason_code": "nope"}, headers=reviewer)).status_code == 422
    bad_note = {"reason_code": "other", "note": "call 0612345678"}
    refused = await client.post(url, json=bad_note, headers=reviewer)
    assert refused.status_code == 422 and "0612345678" not in refused.text
    ok = await client.post(url, json={"reason_code": "unit_not_available"}, headers=reviewer)
    assert ok.status_code == 200 and ok.json()["status"] == "rejected"
    assert ok.json()["reason_code"] == "unit_not_available"

    async def published() -> list | None:
        return await decisions_on_topic(kafka_bootstrap, region, idle_s=1.0) or None

    decisions = await wait_for(published, what="match.rejected")
    assert decisions[0]["type"] == "nl.wijkmatch.match.rejected"
    assert decisions[0]["data"]["reason_code"] == "unit_not_available"


async def test_cancelled_proposal_shows_cancelled_and_cannot_be_decided(client, publish, region) -> None:
    from datetime import UTC, datetime

    from schemas.events import make_event

    _, events = await publish_round(publish, region, 1)
    d = events[0]["data"]
    cancel = make_event(
        "match.cancelled",
        {
            "region": region,
            "proposal_id": d["proposal_id"],
            "case": d["case"],
            "unit": d["unit"],
            "reason": "case_withdrawn",
        },
        source="urn:wijkmatch:matcher",
        id=f"cancelled-{d['proposal_id']}",
        time=datetime.now(UTC),
    )
    await publish(PROPOSALS, region, cancel)
    reviewer = auth("reviewer", [region])

    async def cancelled() -> bool:
        r = await client.get(f"/v1/proposals/{d['proposal_id']}", headers=reviewer)
        return r.status_code == 200 and r.json()["status"] == "cancelled"

    await wait_for(cancelled, what="the proposal to show as cancelled")
    r = await client.post(f"/v1/proposals/{d['proposal_id']}/approve", headers=reviewer)
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]


async def test_an_approved_proposal_the_matcher_cancels_shows_cancelled_with_its_approval(
    client, publish, region
) -> None:
    from datetime import UTC, datetime

    from schemas.events import make_event

    _, events = await publish_round(publish, region, 1)
    d = events[0]["data"]
    reviewer = auth("reviewer", [region])
    await wait_visible(client, region, 1, reviewer)
    assert (
        await client.post(f"/v1/proposals/{d['proposal_id']}/approve", headers=reviewer)
    ).status_code == 200
    cancel = make_event(
        "match.cancelled",
        {
            "region": region,
            "proposal_id": d["proposal_id"],
            "case": d["case"],
            "unit": d["unit"],
            "reason": "unit_withdrawn",
        },
        source="urn:wijkmatch:matcher",
        id=f"cancelled-{d['proposal_id']}",
        time=datetime.now(UTC),
    )
    await publish(PROPOSALS, region, cancel)

    async def cancelled() -> dict | None:
        body = (await client.get(f"/v1/proposals/{d['proposal_id']}", headers=reviewer)).json()
        return body if body["status"] == "cancelled" else None

    body = await wait_for(cancelled, what="the approved proposal to show as cancelled")
    assert body["cancel_reason"] == "unit_withdrawn" and body["decided_by"] == "staff-reviewer"


async def test_four_eyes_needs_a_second_person_with_the_approver_role(
    client, publish, kafka_bootstrap
) -> None:
    region = FOUR_EYES_REGION
    _, events = await publish_round(publish, region, 1)
    pid = events[0]["data"]["proposal_id"]
    reviewer = auth("reviewer", [region], "staff-a")
    await wait_visible(client, region, 1, reviewer)
    first = await client.post(f"/v1/proposals/{pid}/approve", headers=reviewer)
    assert first.status_code == 200 and first.json()["status"] == "awaiting_second"
    assert await decisions_on_topic(kafka_bootstrap, region, idle_s=1.0) == []
    same_person = await client.post(
        f"/v1/proposals/{pid}/approve",
        headers={"Authorization": auth("approver", [region], "staff-a")["Authorization"]},
    )
    assert same_person.status_code == 409 and "different person" in same_person.json()["detail"]
    second = await client.post(f"/v1/proposals/{pid}/approve", headers=auth("approver", [region], "staff-b"))
    assert second.status_code == 200 and second.json()["status"] == "approved"
    assert second.json()["first_signer"] == "staff-a" and second.json()["decided_by"] == "staff-b"

    async def published() -> list | None:
        return await decisions_on_topic(kafka_bootstrap, region, idle_s=1.0) or None

    decisions = await wait_for(published, what="match.approved after the second signature")
    assert [d["data"]["proposal_id"] for d in decisions] == [pid]


async def test_conflicting_decisions_at_once_one_wins_the_other_gets_409(client, publish, region) -> None:
    import asyncio

    _, events = await publish_round(publish, region, 1)
    pid = events[0]["data"]["proposal_id"]
    a, b = auth("reviewer", [region], "staff-a"), auth("reviewer", [region], "staff-b")
    await wait_visible(client, region, 1, a)
    results = await asyncio.gather(
        client.post(f"/v1/proposals/{pid}/approve", headers=a),
        client.post(f"/v1/proposals/{pid}/reject", json={"reason_code": "unit_not_available"}, headers=b),
    )
    assert sorted(r.status_code for r in results) == [200, 409]


async def test_list_filters_sorts_and_pages_and_rounds_show_their_numbers(client, publish, region) -> None:
    round_id, events = await publish_round(publish, region, 5)
    reviewer = auth("reviewer", [region])
    await wait_visible(client, region, 5, reviewer)
    page = await client.get(
        "/v1/proposals",
        params={"region": region, "sort": "priority", "order": "asc", "limit": 2, "offset": 1},
        headers=reviewer,
    )
    body = page.json()
    assert body["total"] == 5 and len(body["items"]) == 2
    priorities = sorted(e["data"]["priority"] for e in events)
    assert [i["priority"] for i in body["items"]] == priorities[1:3]
    by_round = await client.get(
        "/v1/proposals", params={"round": round_id, "status": "open"}, headers=reviewer
    )
    assert by_round.json()["total"] == 5

    async def round_visible() -> list | None:
        r = await client.get("/v1/rounds", params={"region": region}, headers=reviewer)
        return r.json() or None

    rounds = await wait_for(round_visible, what="the round")
    assert rounds[0]["id"] == round_id and rounds[0]["proposals"] == 5 and rounds[0]["open"] == 5
    assert rounds[0]["unplaced_by_reason"] == {"outranked": 1, "care_capacity": 1}
    detail = await client.get(f"/v1/proposals/{events[0]['data']['proposal_id']}", headers=reviewer)
    explanation = detail.json()["explanation"]
    assert explanation["rules"][0]["value"] == "1 of 3 slots left"
    assert detail.json()["round"]["problem_sha256"] == "ab" * 32


async def test_a_malformed_event_is_rejected_and_the_partition_moves_on(
    client, publish, region, kafka_bootstrap
) -> None:
    import json
    import uuid

    from aiokafka import AIOKafkaConsumer

    from schemas.topics import INTAKE_REJECTED

    bad = proposed_event(region, "r-bad")
    bad["data"]["priority"] = "high"
    await publish(PROPOSALS, region, bad)
    await publish(PROPOSALS, region, b"{not json")
    await publish(PROPOSALS, region, round_completed_event(region, "r-after"))
    reviewer = auth("reviewer", [region])

    async def round_seen() -> bool:
        r = await client.get("/v1/rounds", params={"region": region}, headers=reviewer)
        return bool(r.json())

    await wait_for(round_seen, what="the valid event after two bad ones")
    consumer = AIOKafkaConsumer(
        INTAKE_REJECTED,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"t-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[dict] = []
    try:
        for _ in range(40):
            batch = await consumer.getmany(timeout_ms=250)
            for records in batch.values():
                for rec in records:
                    event = json.loads(rec.value)
                    if event["source"] == "urn:wijkmatch:review" and event["data"].get("key") == region:
                        found.append(event["data"])
            if len(found) >= 2:
                break
    finally:
        await consumer.stop()
    assert len(found) == 2
    paths = [e["path"] for f in found for e in f["errors"]]
    assert "/data/priority" in paths
    assert all(f["topic"] == PROPOSALS for f in found)


async def test_an_offer_for_an_approved_proposal_shows_on_it(client, publish, region) -> None:
    from datetime import UTC, datetime, timedelta

    from schemas.events import make_event
    from schemas.topics import OFFERS

    _, events = await publish_round(publish, region, 1)
    d = events[0]["data"]
    reviewer = auth("reviewer", [region])
    await wait_visible(client, region, 1, reviewer)
    assert (
        await client.post(f"/v1/proposals/{d['proposal_id']}/approve", headers=reviewer)
    ).status_code == 200
    offer = make_event(
        "offer.made",
        {
            "region": region,
            "offer_id": "offer-1",
            "proposal_id": d["proposal_id"],
            "case": d["case"],
            "unit": d["unit"],
            "respond_by": datetime.now(UTC) + timedelta(days=7),
        },
        source="urn:wijkmatch:notifier",
        id=f"offer-{d['proposal_id']}",
        time=datetime.now(UTC),
    )
    await publish(OFFERS, region, offer)

    async def offered() -> bool:
        r = await client.get(f"/v1/proposals/{d['proposal_id']}", headers=reviewer)
        return r.json()["offer_status"] == "offered"

    await wait_for(offered, what="the offer on the proposal")


async def test_health_readiness_and_metrics(client) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    # No /metrics on the API port: `wijkmatch review` serves the registry on its internal health port.
    assert (await client.get("/metrics")).status_code == 404
    from prometheus_client import REGISTRY, generate_latest

    metrics = generate_latest(REGISTRY).decode()
    assert "wijkmatch_review_events_total" in metrics
    assert "wijkmatch_review_decisions_total" in metrics
