"""Entity ownership, against the real broker and PostgreSQL: a unit belongs to the corporation that
published it and a case to the referrer that registered it. Another organisation's change or withdrawal
is rejected once (at /source) and changes nothing; the owner's own withdrawal works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack import samples
from schemas.topics import INTAKE_REJECTED, POOL
from services.intake.settings import IntakeSettings
from tests.integration.intake.conftest import (
    count,
    end_offsets,
    produce,
    produce_raw,
    read_events,
    rows,
    running_intake,
    wait_consumed,
)

pytestmark = pytest.mark.integration

# Two corporations and two referrers, all allowed every region: only ownership tells them apart.
REGISTRY = """\
organisations:
  - id: corp-a
    sources: [urn:org:corp:a]
    types: [vacancy.published, vacancy.withdrawn]
    regions: "*"
  - id: corp-b
    sources: [urn:org:corp:b]
    types: [vacancy.published, vacancy.withdrawn]
    regions: "*"
  - id: care-a
    sources: [urn:org:care:a]
    types: [case.registered, case.updated, case.withdrawn]
    regions: "*"
  - id: care-b
    sources: [urn:org:care:b]
    types: [case.registered, case.updated, case.withdrawn]
    regions: "*"
"""
OWNERSHIP_MESSAGE = "belongs to another organisation; only its owner may change or withdraw it"


@pytest.fixture
def settings(intake_settings: IntakeSettings, tmp_path: Path) -> IntakeSettings:
    path = tmp_path / "organisations.yaml"
    path.write_text(REGISTRY, encoding="utf-8")
    return intake_settings.model_copy(update={"organisations": str(path)})


async def _run_until_consumed(settings: IntakeSettings, bootstrap: str) -> None:
    marks = await end_offsets(bootstrap)
    async with running_intake(settings):
        await wait_consumed(bootstrap, settings.group_id, marks)


async def _rejections(bootstrap: str, region: str) -> list[dict[str, Any]]:
    return [e["data"] for e in await read_events(bootstrap, INTAKE_REJECTED, region)]


async def _pool(bootstrap: str, region: str, key: str) -> list[str]:
    return [e["type"] for e in await read_events(bootstrap, POOL, region) if e["subject"] == key]


async def _entity(db: AsyncEngine, region: str, kind: str, key: str) -> Any:
    [row] = await rows(
        db,
        "SELECT removed, owner, source FROM intake.entity_version WHERE region = :r AND kind = :k "
        "AND key = :key",
        r=region,
        k=kind,
        key=key,
    )
    return row


def _assert_refused(
    rejection: dict[str, Any], event: dict[str, Any], kind: str, key: str, owner: str
) -> None:
    assert rejection["event_id"] == event["id"]
    assert rejection["errors"] == [
        {
            "path": "/source",
            "message": f"{kind} {key} in region {event['data']['region']} {OWNERSHIP_MESSAGE}",
        }
    ]
    assert owner not in rejection["errors"][0]["message"]  # the owner is never named


async def test_only_the_corporation_that_published_a_unit_may_change_or_withdraw_it(
    settings: IntakeSettings, db: AsyncEngine, kafka_bootstrap: str, region: str
) -> None:
    unit_id = "U-1"
    published = samples.event(
        "vacancy.published",
        samples.unit(region, unit_id, corporation="corp-a", rent=700),
        time=samples.at(1),
        source="urn:org:corp:a",
    )
    foreign_withdrawal = samples.event(
        "vacancy.withdrawn", {"region": region, "id": unit_id}, time=samples.at(2), source="urn:org:corp:b"
    )
    foreign_replacement = samples.event(
        "vacancy.published",
        samples.unit(region, unit_id, corporation="corp-b", rent=1),
        time=samples.at(3),
        source="urn:org:corp:b",
    )
    # B's withdrawal is delivered twice (the very same message bytes at two offsets).
    await produce_raw(
        kafka_bootstrap,
        [
            samples.message(published),
            samples.message(foreign_withdrawal),
            samples.message(foreign_withdrawal),
            samples.message(foreign_replacement),
        ],
    )
    await _run_until_consumed(settings, kafka_bootstrap)

    rejections = await _rejections(kafka_bootstrap, region)
    assert len(rejections) == 2  # one per refused event, the duplicate included
    _assert_refused(rejections[0], foreign_withdrawal, "unit", unit_id, "corp-a")
    _assert_refused(rejections[1], foreign_replacement, "unit", unit_id, "corp-a")
    # A's unit is still in the pool, unchanged: one upsert, no removal, A's version stored.
    assert await _pool(kafka_bootstrap, region, unit_id) == ["nl.wijkmatch.pool.unit.upserted"]
    [data] = [e["data"] for e in await read_events(kafka_bootstrap, POOL, region) if e["subject"] == unit_id]
    assert data["snapshot"]["rent"] == 700
    assert data["owner"] == "corp-a"  # the matcher accepts offer answers for the unit only from its owner
    stored = await _entity(db, region, "unit", unit_id)
    assert (stored.removed, stored.owner, stored.source) == (False, "corp-a", "urn:org:corp:a")
    assert (
        await count(
            db,
            "SELECT count(*) FROM intake.event_log WHERE region = :r AND source = :s",
            r=region,
            s="urn:org:corp:b",
        )
        == 0
    )

    # A's own withdrawal works; afterwards the withdrawn unit is still A's: B cannot re-publish it.
    own_withdrawal = samples.event(
        "vacancy.withdrawn", {"region": region, "id": unit_id}, time=samples.at(4), source="urn:org:corp:a"
    )
    republication = samples.event(
        "vacancy.published",
        samples.unit(region, unit_id, corporation="corp-b"),
        time=samples.at(5),
        source="urn:org:corp:b",
    )
    await produce(kafka_bootstrap, [own_withdrawal, republication])
    await _run_until_consumed(settings, kafka_bootstrap)

    assert await _pool(kafka_bootstrap, region, unit_id) == [
        "nl.wijkmatch.pool.unit.upserted",
        "nl.wijkmatch.pool.unit.removed",
    ]
    stored = await _entity(db, region, "unit", unit_id)
    assert (stored.removed, stored.owner, stored.source) == (True, "corp-a", "urn:org:corp:a")
    rejections = await _rejections(kafka_bootstrap, region)
    assert len(rejections) == 3
    _assert_refused(rejections[2], republication, "unit", unit_id, "corp-a")

    # Redelivery of everything (a new consumer group reads the topics from the start): nothing new.
    await _run_until_consumed(
        settings.model_copy(update={"group_id": settings.group_id + "-again"}), kafka_bootstrap
    )
    assert len(await _rejections(kafka_bootstrap, region)) == 3
    assert len(await _pool(kafka_bootstrap, region, unit_id)) == 2


async def test_only_the_referrer_that_registered_a_case_may_change_or_withdraw_it(
    settings: IntakeSettings, db: AsyncEngine, kafka_bootstrap: str, region: str
) -> None:
    case_id = "C-1"
    registered = samples.event(
        "case.registered",
        samples.case(region, case_id, referrer="care-a", priority=500),
        time=samples.at(1),
        source="urn:org:care:a",
    )
    foreign_update = samples.event(
        "case.updated",
        samples.case(region, case_id, referrer="care-b", priority=999, personal=samples.personal(1)),
        time=samples.at(2),
        source="urn:org:care:b",
    )
    foreign_withdrawal = samples.event(
        "case.withdrawn", {"region": region, "id": case_id}, time=samples.at(3), source="urn:org:care:b"
    )
    await produce_raw(
        kafka_bootstrap,
        [
            samples.message(registered),
            samples.message(foreign_update),
            samples.message(foreign_withdrawal),
            samples.message(foreign_withdrawal),
        ],
    )
    await _run_until_consumed(settings, kafka_bootstrap)

    rejections = await _rejections(kafka_bootstrap, region)
    assert len(rejections) == 2
    _assert_refused(rejections[0], foreign_update, "case", case_id, "care-a")
    _assert_refused(rejections[1], foreign_withdrawal, "case", case_id, "care-a")
    assert await _pool(kafka_bootstrap, region, case_id) == ["nl.wijkmatch.pool.case.upserted"]
    [data] = [e["data"] for e in await read_events(kafka_bootstrap, POOL, region) if e["subject"] == case_id]
    assert data["snapshot"]["priority"] == 500
    # The notifier sends the case's offers to its referrer too; the referrer never enters the snapshot.
    assert data["owner"] == "care-a"
    assert "referrer" not in data["snapshot"]
    stored = await _entity(db, region, "case", case_id)
    assert (stored.removed, stored.owner) == (False, "care-a")
    # The refused update's personal data was not stored either.
    assert await count(db, "SELECT count(*) FROM intake.personal_vault WHERE region = :r", r=region) == 0

    own_withdrawal = samples.event(
        "case.withdrawn", {"region": region, "id": case_id}, time=samples.at(4), source="urn:org:care:a"
    )
    await produce(kafka_bootstrap, [own_withdrawal])
    await _run_until_consumed(settings, kafka_bootstrap)

    assert await _pool(kafka_bootstrap, region, case_id) == [
        "nl.wijkmatch.pool.case.upserted",
        "nl.wijkmatch.pool.case.removed",
    ]
    stored = await _entity(db, region, "case", case_id)
    assert (stored.removed, stored.owner) == (True, "care-a")
    assert len(await _rejections(kafka_bootstrap, region)) == 2


async def test_a_foreign_withdrawal_right_after_the_publication_is_refused_too(
    settings: IntakeSettings, db: AsyncEngine, kafka_bootstrap: str, region: str
) -> None:
    """Both are on the topic before intake starts, so they usually arrive in one batch, where the owner is
    known only from the batch itself (the unit is not in the database yet); the outcome must not differ."""
    published = samples.event(
        "vacancy.published",
        samples.unit(region, "U-2", corporation="corp-b"),
        time=samples.at(1),
        source="urn:org:corp:b",
    )
    foreign_withdrawal = samples.event(
        "vacancy.withdrawn", {"region": region, "id": "U-2"}, time=samples.at(2), source="urn:org:corp:a"
    )
    await produce(kafka_bootstrap, [published, foreign_withdrawal])
    await _run_until_consumed(settings, kafka_bootstrap)

    [rejection] = await _rejections(kafka_bootstrap, region)
    _assert_refused(rejection, foreign_withdrawal, "unit", "U-2", "corp-b")
    assert await _pool(kafka_bootstrap, region, "U-2") == ["nl.wijkmatch.pool.unit.upserted"]
    assert (await _entity(db, region, "unit", "U-2")).owner == "corp-b"


# The same organisations with id ranges, as a production registry has them (issue 12, finding 11).
RANGED_REGISTRY = (
    "require_id_prefixes: true\n"
    + REGISTRY.replace(
        '    regions: "*"\n  - id: corp-b', '    regions: "*"\n    id_prefixes: [a-]\n  - id: corp-b'
    )
    .replace('    regions: "*"\n  - id: care-a', '    regions: "*"\n    id_prefixes: [b-]\n  - id: care-a')
    .replace('    regions: "*"\n  - id: care-b', '    regions: "*"\n    id_prefixes: [ca-]\n  - id: care-b')
    + "    id_prefixes: [cb-]\n"
)


async def test_nobody_can_claim_another_organisations_future_id_first(
    intake_settings: IntakeSettings, db: AsyncEngine, kafka_bootstrap: str, region: str, tmp_path: Path
) -> None:
    """Id squatting: without ranges, B publishing (or withdrawing) A's next id first made B its owner and A's
    own events were refused for good. With ranges B's attempts are refused at /data/id, A's events apply."""
    path = tmp_path / "ranged.yaml"
    path.write_text(RANGED_REGISTRY, encoding="utf-8")
    settings = intake_settings.model_copy(update={"organisations": str(path)})
    squat_unit = samples.event(
        "vacancy.published", samples.unit(region, "a-U-9", corporation="corp-b"), source="urn:org:corp:b"
    )
    squat_withdrawal = samples.event(
        "vacancy.withdrawn", {"region": region, "id": "a-U-8"}, source="urn:org:corp:b"
    )
    squat_case = samples.event(
        "case.registered", samples.case(region, "ca-C-1", referrer="care-b"), source="urn:org:care:b"
    )
    outside_own_range = samples.event(
        "vacancy.published", samples.unit(region, "U-10", corporation="corp-b"), source="urn:org:corp:b"
    )
    rightful = [
        samples.event(
            "vacancy.published", samples.unit(region, u, corporation="corp-a"), source="urn:org:corp:a"
        )
        for u in ("a-U-9", "a-U-8")
    ] + [
        samples.event(
            "case.registered", samples.case(region, "ca-C-1", referrer="care-a"), source="urn:org:care:a"
        )
    ]
    await produce(kafka_bootstrap, [squat_unit, squat_withdrawal, squat_case, outside_own_range, *rightful])
    await _run_until_consumed(settings, kafka_bootstrap)

    rejections = {r["event_id"]: r["errors"] for r in await _rejections(kafka_bootstrap, region)}
    foreign = [
        {
            "path": "/data/id",
            "message": "lies in the id range registered to another organisation; use an id in your own range",
        }
    ]
    assert rejections == {
        squat_unit["id"]: foreign,
        squat_withdrawal["id"]: foreign,
        squat_case["id"]: foreign,
        outside_own_range["id"]: [
            {"path": "/data/id", "message": "must begin with one of organisation corp-b's id prefixes: b-"}
        ],
    }
    for kind, key in (("unit", "a-U-9"), ("unit", "a-U-8")):
        assert await _pool(kafka_bootstrap, region, key) == ["nl.wijkmatch.pool.unit.upserted"]
        assert (await _entity(db, region, kind, key)).owner == "corp-a"
    assert (await _entity(db, region, "case", "ca-C-1")).owner == "care-a"
