"""Decisions, offers, offer responses and withdrawals against a running matcher (real broker + PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from devstack.generate import generate_problem
from schemas.events import DATA_MODELS, CloudEvent
from schemas.topics import INTAKE_REJECTED
from services.matcher.pool import repository as repo
from services.matcher.pool.tables import cases, proposals, rounds, units
from tests.support.matcher_support import (
    TopicWatcher,
    approved,
    offer,
    offer_response,
    pool_events_for,
    produce_decisions,
    produce_offers,
    produce_pool,
    produce_responses,
    rejected,
    removed,
    wait_until,
)

pytestmark = pytest.mark.integration

CORP = "urn:org:corp:test-corp"
CORP_ID = "test-corp"  # owns every unit of these tests (conftest's registry)
OTHER_CORP = "urn:org:corp:other-corp"  # registered, may answer offers in the region, owns no unit


async def _proposals(service: Any, region: str) -> dict[str, dict[str, Any]]:
    async with service.sessions() as session:
        rows = (await session.execute(select(proposals).where(proposals.c.region == region))).mappings().all()
    return {r["id"]: dict(r) for r in rows}


async def _status(service: Any, table: Any, region: str, key: str) -> str:
    async with service.sessions() as session:
        return (
            await session.execute(select(table.c.status).where(table.c.region == region, table.c.id == key))
        ).scalar_one()


async def _next_round(service: Any, region: str, since: Any) -> dict[str, Any] | None:
    """The first completed round started after `since`."""
    async with service.sessions() as session:
        row = (
            (
                await session.execute(
                    select(rounds)
                    .where(
                        rounds.c.region == region, rounds.c.started_at > since, rounds.c.status == "completed"
                    )
                    .order_by(rounds.c.started_at)
                    .limit(1)
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


async def _request_round(service: Any, region: str) -> Any:
    async with service.sessions() as session, session.begin():
        from sqlalchemy import func

        now = (await session.execute(select(func.now()))).scalar_one()
        await repo.request_round(session, region)
    return now


async def _first_round(
    service: Any, bootstrap: str, region: str, cases_n: int = 30, units_n: int = 20
) -> list:
    problem = generate_problem(cases_n, units_n, seed=3)
    await produce_pool(bootstrap, region, pool_events_for(problem, region, unit_owner=CORP_ID))
    found = await wait_until(lambda: _proposals(service, region), timeout=90, what="first proposals")
    return sorted(
        ({"proposal_id": p["id"], "case": p["case_id"], "unit": p["unit_id"]} for p in found.values()),
        key=lambda p: p["case"],
    )


async def test_approve_pins_reject_forbids_and_declined_offer_returns_both_to_the_pool(
    matcher: Any, kafka_bootstrap: str, region: str
) -> None:
    first = await _first_round(matcher, kafka_bootstrap, region)
    assert len(first) >= 3
    keep, refuse, decline = first[0], first[1], first[2]
    # From here on only requested rounds: an automatic round after the decisions could legitimately
    # re-propose the refused case elsewhere, which would keep it out of the round this test inspects.
    matcher.scheduler.debounce_s = matcher.scheduler.max_delay_s = 3600.0
    await wait_until(lambda: not matcher.scheduler.tasks, timeout=60, what="no round in flight")
    offer_id = f"offer-{uuid.uuid4().hex[:8]}"
    await produce_decisions(
        kafka_bootstrap, region, [approved(region, keep), rejected(region, refuse), approved(region, decline)]
    )
    await wait_until(
        lambda: _statuses_are(matcher, region, {decline["proposal_id"]: "approved"}),
        timeout=30,
        what="approval",
    )
    await produce_offers(kafka_bootstrap, region, [offer("offer.made", region, decline, offer_id)])
    await wait_until(
        lambda: _statuses_are(matcher, region, {decline["proposal_id"]: "offered"}), timeout=30, what="offer"
    )
    assert await _status(matcher, cases, region, decline["case"]) == "offered"
    await produce_responses(
        kafka_bootstrap,
        region,
        [offer_response("offer.declined", region, decline, offer_id, CORP, reason="too_far")],
    )
    await wait_until(
        lambda: _statuses_are(
            matcher,
            region,
            {
                keep["proposal_id"]: "approved",
                refuse["proposal_id"]: "rejected",
                decline["proposal_id"]: "declined",
            },
        ),
        timeout=30,
        what="decisions applied",
    )
    assert await _status(matcher, cases, region, decline["case"]) == "open"
    assert await _status(matcher, units, region, decline["unit"]) == "vacant"
    assert await _status(matcher, cases, region, refuse["case"]) == "open"

    since = await _request_round(matcher, region)
    row = await wait_until(lambda: _next_round(matcher, region, since), timeout=60, what="next round")
    problem = json.loads(row["problem"])
    assert {"case": keep["case"], "unit": keep["unit"]} in problem["pinned"]
    assert {"case": refuse["case"], "unit": refuse["unit"]} in problem["forbidden"]
    assert {"case": decline["case"], "unit": decline["unit"]} in problem["forbidden"]
    case_ids = {c["id"] for c in problem["cases"]}
    unit_ids = {u["id"] for u in problem["units"]}
    assert {refuse["case"], decline["case"], keep["case"]} <= case_ids
    assert {refuse["unit"], decline["unit"], keep["unit"]} <= unit_ids
    # The pinned pair is in the result as pinned; nothing re-proposes a forbidden pair.
    pairs = {(a["case"], a["unit"]): a["pinned"] for a in row["result"]["assignments"]}
    assert pairs[(keep["case"], keep["unit"])] is True
    assert (refuse["case"], refuse["unit"]) not in pairs
    assert (decline["case"], decline["unit"]) not in pairs


async def _in_inbox(service: Any, ids: list[str]) -> bool:
    from sqlalchemy import text

    async with service.sessions() as session:
        n = (
            await session.execute(
                text("SELECT count(*) FROM matcher.inbox WHERE event_id = ANY(:ids)"), {"ids": ids}
            )
        ).scalar_one()
    return n == len(ids)


async def _statuses_are(service: Any, region: str, wanted: dict[str, str]) -> bool:
    found = await _proposals(service, region)
    return all(found.get(pid, {}).get("status") == status for pid, status in wanted.items())


async def test_withdrawal_with_pending_proposal_cancels_it_and_a_late_approval_offers_nothing(
    matcher: Any, kafka_bootstrap: str, region: str
) -> None:
    async with TopicWatcher(kafka_bootstrap, regions={region}) as watcher:
        first = await _first_round(matcher, kafka_bootstrap, region)
        assert len(first) >= 2
        by_case, by_unit = first[0], first[1]
        await produce_pool(
            kafka_bootstrap,
            region,
            [removed("case", region, by_case["case"]), removed("unit", region, by_unit["unit"])],
        )
        cancelled = await wait_until(
            lambda: (
                len(watcher.of_type("match.cancelled", region)) >= 2
                and watcher.of_type("match.cancelled", region)
            ),
            timeout=30,
            what="match.cancelled",
        )
        reasons = {e["data"]["proposal_id"]: e["data"]["reason"] for e in cancelled}
        assert reasons == {by_case["proposal_id"]: "case_withdrawn", by_unit["proposal_id"]: "unit_withdrawn"}
        for event in cancelled:
            envelope = CloudEvent.model_validate(event)
            DATA_MODELS[envelope.type].model_validate(envelope.data)

        # A staff approval arriving after the cancellation changes nothing: no pin, nothing to offer.
        late = approved(region, by_case)
        await produce_decisions(kafka_bootstrap, region, [late])
        await wait_until(
            lambda: _in_inbox(matcher, [late["id"]]), timeout=30, what="the late approval consumed"
        )
        since = await _request_round(matcher, region)
        row = await wait_until(lambda: _next_round(matcher, region, since), timeout=60, what="next round")
        found = await _proposals(matcher, region)
        assert found[by_case["proposal_id"]]["status"] == "cancelled"
        assert found[by_unit["proposal_id"]]["status"] == "cancelled"
        problem = json.loads(row["problem"])
        assert all(p["case"] != by_case["case"] for p in problem["pinned"])
        case_ids = {c["id"] for c in problem["cases"]}
        unit_ids = {u["id"] for u in problem["units"]}
        assert by_case["case"] not in case_ids and by_unit["unit"] not in unit_ids
        # The other side of each cancelled proposal is back in the pool.
        assert (
            by_case["unit"] in unit_ids
            or await _status(matcher, units, region, by_case["unit"]) == "proposed"
        )
        assert (
            by_unit["case"] in case_ids
            or await _status(matcher, cases, region, by_unit["case"]) == "proposed"
        )


async def test_invalid_offer_responses_go_to_intake_rejected_and_the_partition_keeps_moving(
    matcher: Any, kafka_bootstrap: str, region: str
) -> None:
    first = await _first_round(matcher, kafka_bootstrap, region)
    target = first[0]
    offer_id = f"offer-{uuid.uuid4().hex[:8]}"
    await produce_decisions(kafka_bootstrap, region, [approved(region, target)])
    await wait_until(
        lambda: _statuses_are(matcher, region, {target["proposal_id"]: "approved"}),
        timeout=30,
        what="approval",
    )
    good = offer_response("offer.accepted", region, target, offer_id, CORP)
    stranger = offer_response("offer.accepted", region, target, offer_id, "urn:org:corp:nobody")
    bad_field = offer_response("offer.accepted", region, target, offer_id, CORP)
    bad_field["data"]["surprise"] = 1
    async with TopicWatcher(kafka_bootstrap, topic=INTAKE_REJECTED, regions={region}) as watcher:
        await produce_responses(kafka_bootstrap, region, [b"{not json", stranger, bad_field, good])
        found = await wait_until(
            lambda: len(watcher.events) >= 3 and watcher.events, timeout=30, what="three rejections"
        )
        await wait_until(
            lambda: _statuses_are(matcher, region, {target["proposal_id"]: "accepted"}),
            timeout=30,
            what="accept",
        )
    assert len(found) == 3
    paths = [sorted(e["path"] for e in r["data"]["errors"]) for r in found]
    assert paths[0] == [""]
    assert "/source" in paths[1]
    assert "/data/surprise" in paths[2]
    for rejection in found:
        envelope = CloudEvent.model_validate(rejection)
        DATA_MODELS[envelope.type].model_validate(envelope.data)
        assert "value_sha256" in rejection["data"]
    assert await _status(matcher, cases, region, target["case"]) == "housed"
    assert await _status(matcher, units, region, target["unit"]) == "let"


async def test_an_offer_answer_that_overtakes_its_approval_still_counts(
    matcher: Any, kafka_bootstrap: str, region: str
) -> None:
    first = await _first_round(matcher, kafka_bootstrap, region)
    target = first[0]
    offer_id = f"offer-{uuid.uuid4().hex[:8]}"
    await produce_responses(
        kafka_bootstrap, region, [offer_response("offer.accepted", region, target, offer_id, CORP)]
    )
    await wait_until(
        lambda: _statuses_are(matcher, region, {target["proposal_id"]: "accepted"}), timeout=30, what="accept"
    )
    late = [approved(region, target), offer("offer.made", region, target, offer_id)]
    await produce_decisions(kafka_bootstrap, region, late[:1])  # late: changes nothing
    await produce_offers(kafka_bootstrap, region, late[1:])

    async def consumed() -> bool:
        from sqlalchemy import text

        async with matcher.sessions() as session:
            n = (
                await session.execute(
                    text("SELECT count(*) FROM matcher.inbox WHERE event_id = ANY(:ids)"),
                    {"ids": [e["id"] for e in late]},
                )
            ).scalar_one()
        return n == 2

    await wait_until(consumed, timeout=30, what="the late events consumed")
    since = await _request_round(matcher, region)
    row = await wait_until(lambda: _next_round(matcher, region, since), timeout=60, what="next round")
    assert (await _proposals(matcher, region))[target["proposal_id"]]["status"] == "accepted"
    assert await _status(matcher, cases, region, target["case"]) == "housed"
    assert await _status(matcher, units, region, target["unit"]) == "let"
    problem = json.loads(row["problem"])
    assert target["case"] not in {c["id"] for c in problem["cases"]}
    assert target["unit"] not in {u["id"] for u in problem["units"]}


async def test_an_updated_case_loses_its_pending_proposal_and_an_expired_offer_forbids_the_pair(
    matcher: Any, kafka_bootstrap: str, region: str
) -> None:
    from schemas.pool import pool_upserted
    from tests.support.matcher_support import now_iso

    source = generate_problem(30, 20, seed=3)
    async with TopicWatcher(kafka_bootstrap, regions={region}) as watcher:
        first = await _first_round(matcher, kafka_bootstrap, region)
        changed, expiring = first[0], first[1]
        snapshot = dict(next(c for c in source["cases"] if c["id"] == changed["case"]))
        snapshot["priority"] = max(1, snapshot["priority"] - 1)
        await produce_pool(
            kafka_bootstrap,
            region,
            [pool_upserted("case", region, changed["case"], snapshot, now_iso(), str(uuid.uuid4()))],
        )
        cancelled = await wait_until(
            lambda: watcher.of_type("match.cancelled", region), timeout=30, what="match.cancelled"
        )
        assert [(e["data"]["proposal_id"], e["data"]["reason"]) for e in cancelled] == [
            (changed["proposal_id"], "case_updated")
        ]
        # The cancellation released the case and its unit: the first round that started after it sees both
        # in the pool, the case with its new priority. (Not their statuses now: the region is due again
        # after the update, and a round may already have proposed the case anew — the race this test lost
        # in 5 of 11 runs on 2026-12-07 when it asserted `open` / `vacant` here.)
        cancelled_at = (await _proposals(matcher, region))[changed["proposal_id"]]["updated_at"]
        await _request_round(matcher, region)  # one round at least, whether or not the update made one
        row = await wait_until(
            lambda: _next_round(matcher, region, cancelled_at),
            timeout=60,
            what="round after update",
        )
        problem = json.loads(row["problem"])
        updated = next((c for c in problem["cases"] if c["id"] == changed["case"]), None)
        assert updated is not None, "the released case is missing from the first round after its release"
        assert updated["priority"] == snapshot["priority"]
        assert changed["unit"] in {u["id"] for u in problem["units"]}

    offer_id = f"offer-{uuid.uuid4().hex[:8]}"
    await produce_decisions(kafka_bootstrap, region, [approved(region, expiring)])
    await wait_until(
        lambda: _statuses_are(matcher, region, {expiring["proposal_id"]: "approved"}),
        timeout=30,
        what="approval",
    )
    await produce_offers(kafka_bootstrap, region, [offer("offer.expired", region, expiring, offer_id)])
    await wait_until(
        lambda: _statuses_are(matcher, region, {expiring["proposal_id"]: "expired"}),
        timeout=30,
        what="expiry",
    )
    since = await _request_round(matcher, region)
    row = await wait_until(lambda: _next_round(matcher, region, since), timeout=60, what="next round")
    problem = json.loads(row["problem"])
    assert {"case": expiring["case"], "unit": expiring["unit"]} in problem["forbidden"]
    assert expiring["case"] in {c["id"] for c in problem["cases"]}


def _snapshot_update(region: str, entity: str, snapshot: dict[str, Any]) -> dict[str, Any]:
    from schemas.pool import pool_upserted
    from tests.support.matcher_support import now_iso

    owner = CORP_ID if entity == "unit" else None
    return pool_upserted(entity, region, snapshot["id"], snapshot, now_iso(), str(uuid.uuid4()), owner)


async def _snapshot(service: Any, table: Any, region: str, key: str) -> dict[str, Any]:
    async with service.sessions() as session:
        return (
            await session.execute(select(table.c.snapshot).where(table.c.region == region, table.c.id == key))
        ).scalar_one()


async def test_an_approved_pin_survives_a_harmless_update_and_one_that_breaks_a_hard_rule_cancels_it(
    matcher: Any, kafka_bootstrap: str, region: str
) -> None:
    """Issue 18: staff approval is kept through case.updated / vacancy.published unless the update makes
    the pair break a hard rule; then match.cancelled names the rule."""
    source = generate_problem(30, 20, seed=3)
    case_of = {c["id"]: c for c in source["cases"]}
    unit_of = {u["id"]: u for u in source["units"]}
    async with TopicWatcher(kafka_bootstrap, regions={region}) as watcher:
        first = await _first_round(matcher, kafka_bootstrap, region)
        assert len(first) >= 4
        case_ok, case_bad, unit_ok, unit_bad = first[:4]
        matcher.scheduler.debounce_s = matcher.scheduler.max_delay_s = 3600.0  # only requested rounds
        await wait_until(lambda: not matcher.scheduler.tasks, timeout=60, what="no round in flight")
        await produce_decisions(kafka_bootstrap, region, [approved(region, p) for p in first[:4]])
        await wait_until(
            lambda: _statuses_are(matcher, region, {p["proposal_id"]: "approved" for p in first[:4]}),
            timeout=30,
            what="approvals",
        )

        harmless_case = {**case_of[case_ok["case"]], "priority": case_of[case_ok["case"]]["priority"] + 1}
        too_big = {
            **case_of[case_bad["case"]],
            "household_size": unit_of[case_bad["unit"]]["max_persons"] + 1,
            "priority": case_of[case_bad["case"]]["priority"] + 1,
        }
        harmless_unit = {**unit_of[unit_ok["unit"]], "rent": max(0, unit_of[unit_ok["unit"]]["rent"] - 1)}
        other_group = next(g for g in ("regular", "elderly") if g != case_of[unit_bad["case"]]["group"])
        closed_unit = {**unit_of[unit_bad["unit"]], "allowed_groups": [other_group]}
        await produce_pool(
            kafka_bootstrap,
            region,
            [
                _snapshot_update(region, "case", harmless_case),
                _snapshot_update(region, "case", too_big),
                _snapshot_update(region, "unit", harmless_unit),
                _snapshot_update(region, "unit", closed_unit),
            ],
        )
        cancelled = await wait_until(
            lambda: (
                len(watcher.of_type("match.cancelled", region)) >= 2
                and watcher.of_type("match.cancelled", region)
            ),
            timeout=30,
            what="two match.cancelled",
        )
        # All four updates applied (the unit's snapshot is the last one produced).
        await wait_until(
            lambda: _snapshot_is(matcher, units, region, closed_unit), timeout=30, what="updates applied"
        )
        assert {(e["data"]["proposal_id"], e["data"]["reason"]) for e in cancelled} == {
            (case_bad["proposal_id"], "case_updated_ineligible_household_size"),
            (unit_bad["proposal_id"], "unit_updated_ineligible_group"),
        }
        for event in cancelled:
            DATA_MODELS[CloudEvent.model_validate(event).type].model_validate(event["data"])
        found = await _proposals(matcher, region)
        assert found[case_ok["proposal_id"]]["status"] == "approved"
        assert found[unit_ok["proposal_id"]]["status"] == "approved"
        assert found[case_bad["proposal_id"]]["reason"] == "case_updated_ineligible_household_size"
        # The kept pins' case and unit stay out of the open pool with their new snapshots stored.
        stored = await _snapshot(matcher, cases, region, case_ok["case"])
        assert stored["priority"] == harmless_case["priority"]
        assert await _status(matcher, cases, region, case_ok["case"]) == "proposed"
        assert await _status(matcher, units, region, unit_ok["unit"]) == "proposed"
        # Both sides of the cancelled pins are back in the pool.
        assert await _status(matcher, cases, region, case_bad["case"]) == "open"
        assert await _status(matcher, units, region, case_bad["unit"]) == "vacant"
        assert await _status(matcher, units, region, unit_bad["unit"]) == "vacant"
        assert await _status(matcher, cases, region, unit_bad["case"]) == "open"

        since = await _request_round(matcher, region)
        row = await wait_until(lambda: _next_round(matcher, region, since), timeout=60, what="next round")
        problem = json.loads(row["problem"])
        assert {"case": case_ok["case"], "unit": case_ok["unit"]} in problem["pinned"]
        assert {"case": unit_ok["case"], "unit": unit_ok["unit"]} in problem["pinned"]
        pinned_cases = {p["case"] for p in problem["pinned"]}
        assert case_bad["case"] not in pinned_cases and unit_bad["case"] not in pinned_cases
        pairs = {(a["case"], a["unit"]): a["pinned"] for a in row["result"]["assignments"]}
        assert pairs[(case_ok["case"], case_ok["unit"])] is True
        assert pairs[(unit_ok["case"], unit_ok["unit"])] is True
        # The cancelled pairs are not proposed again: they now break the rule that cancelled them.
        assert (case_bad["case"], case_bad["unit"]) not in pairs
        assert (unit_bad["case"], unit_bad["unit"]) not in pairs
        in_problem = {c["id"]: c for c in problem["cases"]}
        assert in_problem[case_bad["case"]]["household_size"] == too_big["household_size"]


async def _snapshot_is(service: Any, table: Any, region: str, snapshot: dict[str, Any]) -> bool:
    stored = await _snapshot(service, table, region, snapshot["id"])
    return all(stored.get(k) == v for k, v in snapshot.items())


async def _forbidden_pairs(service: Any, region: str) -> set[tuple[str, str]]:
    from services.matcher.pool.tables import forbidden

    async with service.sessions() as session:
        rows = (await session.execute(select(forbidden).where(forbidden.c.region == region))).mappings()
        return {(r["case_id"], r["unit_id"]) for r in rows}


async def test_only_the_corporation_that_owns_the_unit_may_answer_its_offer(
    matcher: Any, kafka_bootstrap: str, region: str
) -> None:
    first = await _first_round(matcher, kafka_bootstrap, region)
    target = first[0]
    offer_id = f"offer-{uuid.uuid4().hex[:8]}"
    await produce_decisions(kafka_bootstrap, region, [approved(region, target)])
    await wait_until(
        lambda: _statuses_are(matcher, region, {target["proposal_id"]: "approved"}),
        timeout=30,
        what="approval",
    )
    await produce_offers(kafka_bootstrap, region, [offer("offer.made", region, target, offer_id)])
    await wait_until(
        lambda: _statuses_are(matcher, region, {target["proposal_id"]: "offered"}), timeout=30, what="offer"
    )
    foreign_decline = offer_response("offer.declined", region, target, offer_id, OTHER_CORP, reason="too_far")
    foreign_accept = offer_response("offer.accepted", region, target, offer_id, OTHER_CORP)
    async with TopicWatcher(kafka_bootstrap, topic=INTAKE_REJECTED, regions={region}) as watcher:
        await produce_responses(kafka_bootstrap, region, [foreign_decline, foreign_accept])
        found = await wait_until(
            lambda: len(watcher.events) >= 2 and watcher.events, timeout=30, what="two rejections"
        )
        assert [r["subject"] for r in found] == [foreign_decline["id"], foreign_accept["id"]]
        for rejection in found:
            envelope = CloudEvent.model_validate(rejection)
            body = DATA_MODELS[envelope.type].model_validate(envelope.data)
            assert envelope.source == "urn:wijkmatch:matcher"
            assert body.topic == "wijkmatch.offer-responses.v1" and body.region == region  # type: ignore[attr-defined]
            assert [(e.path, e.message) for e in body.errors] == [  # type: ignore[attr-defined]
                (
                    "/source",
                    f"unit {target['unit']} in region {region} belongs to another organisation; "
                    "only the corporation that owns the offered unit may answer its offer",
                )
            ]
            assert CORP_ID not in json.dumps(rejection)  # the owner is never named
        # Nothing changed: the offer is still open, nothing forbidden, case and unit still offered.
        assert (await _proposals(matcher, region))[target["proposal_id"]]["status"] == "offered"
        assert (target["case"], target["unit"]) not in await _forbidden_pairs(matcher, region)
        assert await _status(matcher, cases, region, target["case"]) == "offered"
        assert await _status(matcher, units, region, target["unit"]) == "offered"

        # The owner's own answer is applied.
        await produce_responses(
            kafka_bootstrap, region, [offer_response("offer.accepted", region, target, offer_id, CORP)]
        )
        await wait_until(
            lambda: _statuses_are(matcher, region, {target["proposal_id"]: "accepted"}),
            timeout=30,
            what="the owner's accept",
        )
    assert await _status(matcher, cases, region, target["case"]) == "housed"
    assert await _status(matcher, units, region, target["unit"]) == "let"
