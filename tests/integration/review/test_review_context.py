"""The proposal context (target group, eligible homes, candidate ranks) and a round's unplaced households
travel through the real broker into the review read model (PostgreSQL) and show in the API; events
without these optional fields still display."""

from __future__ import annotations

import uuid

import pytest

from schemas.topics import PROPOSALS
from tests.integration.review.helpers import (
    CANDIDATES,
    CONTEXT,
    UNPLACED,
    auth,
    proposed_event,
    round_completed_event,
    wait_for,
    wait_visible,
)

pytestmark = pytest.mark.integration


async def test_a_proposal_with_context_shows_it_in_the_api_detail(client, publish, region) -> None:
    round_id = str(uuid.uuid4())
    event = proposed_event(region, round_id, priority=640_000, context=CONTEXT)
    await publish(PROPOSALS, region, event)
    await publish(PROPOSALS, region, round_completed_event(region, round_id, unplaced=UNPLACED))
    reviewer = auth("reviewer", [region])
    items = await wait_visible(client, region, 1, reviewer)
    assert (items[0]["group"], items[0]["eligible_units"]) == ("institution_leaver", 4)

    pid = event["data"]["proposal_id"]

    async def detail_with_round() -> dict | None:
        body = (await client.get(f"/v1/proposals/{pid}", headers=reviewer)).json()
        return body if body.get("round") else None

    detail = await wait_for(detail_with_round, what="the proposal with its round")
    assert (detail["eligible_households"], detail["rank"], detail["candidates"]) == (9, 2, CANDIDATES)
    e = detail["explanation"]
    household = {p["label"]: p["value"] for p in e["household"]}
    assert household["Target group"] == "institution_leaver"
    assert household["Homes it was eligible for"] == "4 homes"
    assert e["competition"].startswith("This household ranks 2nd by priority of the 9 households")
    assert [(p["label"], p["value"]) for p in e["candidates"]] == [
        ("Household case-other-1", "rank 1"),
        ("Household case-other-2", "rank 3"),
    ]
    assert len(e["not_given"]) == 1 and "set upstream" in e["not_given"][0]
    assert detail["round"]["unplaced_listed"] == 2

    unplaced = await client.get(f"/v1/rounds/{round_id}/unplaced", headers=reviewer)
    assert unplaced.status_code == 200, unplaced.text
    body = unplaced.json()
    assert (body["total"], body["listed"]) == (2, 2)
    assert [(u["case"], u["reason"], u["eligible_units"]) for u in body["items"]] == [
        ("case-u-1", "care_capacity", 2),
        ("case-u-2", "outranked", 5),
    ]
    assert body["items"][0]["reason_words"] == "the care it needs had no slots left where suitable homes were"
    second = await client.get(
        f"/v1/rounds/{round_id}/unplaced", params={"limit": 1, "offset": 1}, headers=reviewer
    )
    assert [u["case"] for u in second.json()["items"]] == ["case-u-2"]
    rounds = (await client.get("/v1/rounds", params={"region": region}, headers=reviewer)).json()
    assert rounds[0]["unplaced_listed"] == 2
    elsewhere = auth("reviewer", [f"{region}-x"])
    assert (await client.get(f"/v1/rounds/{round_id}/unplaced", headers=elsewhere)).status_code == 404


async def test_events_without_the_optional_fields_still_display(client, publish, region) -> None:
    round_id = str(uuid.uuid4())
    event = proposed_event(region, round_id)
    for key in CONTEXT:
        event["data"].pop(key, None)  # as an older matcher wrote it: the keys are absent, not null
    completed = round_completed_event(region, round_id)
    completed["data"].pop("unplaced", None)
    await publish(PROPOSALS, region, event)
    await publish(PROPOSALS, region, completed)
    reviewer = auth("reviewer", [region])
    await wait_visible(client, region, 1, reviewer)
    pid = event["data"]["proposal_id"]

    async def detail_with_round() -> dict | None:
        body = (await client.get(f"/v1/proposals/{pid}", headers=reviewer)).json()
        return body if body.get("round") else None

    detail = await wait_for(detail_with_round, what="the proposal with its round")
    assert detail["group"] is None and detail["candidates"] is None and detail["eligible_units"] is None
    e = detail["explanation"]
    assert e["competition"] == "" and e["candidates"] == []
    assert len(e["not_given"]) == 4
    assert all("not part of this (older) proposal event" in t for t in e["not_given"][1:])
    assert detail["round"]["unplaced_listed"] is None
    body = (await client.get(f"/v1/rounds/{round_id}/unplaced", headers=reviewer)).json()
    assert body["listed"] is None and body["items"] == [] and body["total"] == 2
    assert "numbers by reason only" in body["summary"]
