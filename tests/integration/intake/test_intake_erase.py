"""Erasure against real PostgreSQL: idempotent, tombstones unknown cases, never interleaves with a batch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.adapters.repository import IntakeRepository
from services.intake.service.erase import erase_case
from services.intake.settings import IntakeSettings
from services.platform.db import session_maker
from tests.integration.intake.conftest import rows

pytestmark = pytest.mark.integration


async def test_erase_waits_for_a_batch_in_flight_and_applies_after_it(
    db: AsyncEngine, keys: Any, region: str
) -> None:
    sessions = session_maker(db)
    async with sessions() as batch_session, batch_session.begin():
        await IntakeRepository(batch_session).lock_against_erasure()
        erasing = asyncio.create_task(erase_case(sessions, region, "C-race", keys=keys))
        await asyncio.sleep(0.5)
        assert not erasing.done()  # the batch holds the lock; erase waits
    result = await asyncio.wait_for(erasing, 10)
    assert result.case_id == "C-race"


async def test_erasing_an_unknown_case_leaves_a_tombstone_and_is_idempotent(
    db: AsyncEngine, keys: Any, region: str
) -> None:
    sessions = session_maker(db)
    first = await erase_case(sessions, region, "C-never-seen", keys=keys)
    second = await erase_case(sessions, region, "C-never-seen", keys=keys)
    assert (first.case_was_known, first.key_destroyed) == (False, False)
    assert (second.case_was_known, second.key_destroyed) == (True, False)
    [version] = await rows(
        db, "SELECT removed, erased, snapshot FROM intake.entity_version WHERE region = :r", r=region
    )
    assert (version.removed, version.erased, version.snapshot) == (True, True, None)
    outbox = await rows(
        db,
        "SELECT payload FROM intake.outbox WHERE key = :r AND payload->>'subject' = 'C-never-seen'",
        r=region,
    )
    assert [o.payload["type"] for o in outbox] == ["nl.wijkmatch.pool.case.removed"] * 2


def test_erase_without_region_finds_the_cases_one_region_and_refuses_when_ambiguous_or_unknown(
    migrated_database_url: str,
    kafka_bootstrap: str,
    unique_suffix: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from services.intake.cli import main
    from services.platform.db import create_engine
    from tests.conftest import _in_thread

    monkeypatch.setenv("DATABASE_URL", migrated_database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    case_id = f"C-cli-{unique_suffix}"

    async def register_in(*regions: str) -> None:
        engine = create_engine(migrated_database_url)
        store = IntakeSettings(database_url=migrated_database_url).build_keystore()
        await store.start()
        try:
            for region in regions:
                await erase_case(session_maker(engine), region, case_id, keys=store)  # leaves a case row
        finally:
            await store.close()
            await engine.dispose()

    def run(*argv: str) -> int:
        return _in_thread(main, ["erase", *argv])  # main runs its own event loop

    assert run(case_id) == 2
    assert "not known to intake" in capsys.readouterr().err

    _in_thread(asyncio.run, register_in(f"r1-{unique_suffix}"))
    assert run(case_id) == 0
    assert f"erased case {case_id} in r1-{unique_suffix}" in capsys.readouterr().out

    _in_thread(asyncio.run, register_in(f"r2-{unique_suffix}"))
    assert run(case_id) == 2
    err = capsys.readouterr().err
    assert f"r1-{unique_suffix}" in err and f"r2-{unique_suffix}" in err


async def _apply(db: AsyncEngine, keys: Any, events: list[dict], *, first_offset: int = 0) -> None:
    """Validate and apply events as the consumer does (one batch, one transaction)."""
    from devstack import samples
    from services.intake.service.apply import apply_batch
    from services.intake.service.processor import RawRecord
    from services.intake.service.verdicts import to_verdict
    from services.platform.admission.registry import load_registry
    from services.platform.db import transaction

    registry = load_registry()
    verdicts = []
    for n, event in enumerate(events):
        topic, key, value = samples.message(event)
        verdicts.append(to_verdict(RawRecord(topic, 0, first_offset + n, key, value, 0), registry))
    async with transaction(session_maker(db)) as session:
        await apply_batch(session, verdicts, keys=keys)


async def test_erasing_a_case_with_personal_data_reports_its_key_destroyed(
    db: AsyncEngine, keys: Any, region: str
) -> None:
    from devstack import samples

    case = samples.case(region, "C-personal", personal=samples.personal(1))
    await _apply(db, keys, [samples.event("case.registered", case)])
    assert set(await keys.data_keys([(region, "C-personal")], create=False)) == {(region, "C-personal")}
    result = await erase_case(session_maker(db), region, "C-personal", keys=keys)
    assert (result.case_was_known, result.key_destroyed) == (True, True)
    assert await keys.data_keys([(region, "C-personal")], create=False) == {}
    [after] = await rows(
        db, "SELECT wrapped_key, erased_at FROM intake.personal_vault WHERE region = :r", r=region
    )
    assert after.wrapped_key is None and after.erased_at is not None
    again = await erase_case(session_maker(db), region, "C-personal", keys=keys)
    assert again.key_destroyed is False  # nothing left to destroy


def test_erase_with_a_mistyped_region_or_id_exits_2_and_changes_nothing(
    migrated_database_url: str,
    kafka_bootstrap: str,
    region: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from devstack import samples
    from services.intake.cli import main
    from services.platform.db import create_engine
    from tests.conftest import _in_thread

    monkeypatch.setenv("DATABASE_URL", migrated_database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    typo = f"{region}x"
    case = samples.case(region, "C-real", personal=samples.personal(2))

    async def vault_and_versions() -> tuple[list[Any], list[Any]]:
        engine = create_engine(migrated_database_url)
        store = IntakeSettings(database_url=migrated_database_url).build_keystore()
        await store.start()
        try:
            held = await store.data_keys([(region, "C-real"), (typo, "C-real")], create=False)
            vault = await rows(
                engine,
                "SELECT region, case_id, ciphertext IS NOT NULL AS sealed FROM intake.personal_vault "
                "WHERE region IN (:r, :t)",
                r=region,
                t=typo,
            )
            vault = [(v.region, v.case_id, v.sealed, (v.region, v.case_id) in held) for v in vault]
            versions = await rows(
                engine,
                "SELECT region, key, erased FROM intake.entity_version "
                "WHERE region IN (:r, :t) ORDER BY 1, 2",
                r=region,
                t=typo,
            )
            return vault, versions
        finally:
            await store.close()
            await engine.dispose()

    async def register() -> None:
        engine = create_engine(migrated_database_url)
        store = IntakeSettings(database_url=migrated_database_url).build_keystore()
        await store.start()
        try:
            await _apply(engine, store, [samples.event("case.registered", case)])
        finally:
            await store.close()
            await engine.dispose()

    def run(*argv: str) -> int:
        return _in_thread(main, ["erase", *argv])

    _in_thread(asyncio.run, register())
    before = _in_thread(asyncio.run, vault_and_versions())
    assert before[0] == [(region, "C-real", True, True)]  # sealed, and its key in the key store

    assert run("C-real", "--region", typo) == 2
    err = capsys.readouterr().err
    assert "NOT erased" in err and f"known in region(s) {region}" in err and "no data at all" in err
    assert run("C-reall", "--region", region) == 2  # a mistyped id in the right region
    assert "not known in any region" in capsys.readouterr().err
    assert _in_thread(asyncio.run, vault_and_versions()) == before  # no phantom tombstone, key intact

    assert run("C-real", "--region", region) == 0
    assert "personal-data key destroyed" in capsys.readouterr().out
    assert run("C-later", "--region", region, "--tombstone-unknown") == 0  # deliberate tombstone
    vault, versions = _in_thread(asyncio.run, vault_and_versions())
    assert sorted(vault) == [(region, "C-later", False, False), (region, "C-real", True, False)]
    assert [(v.key, v.erased) for v in versions] == [("C-later", True), ("C-real", True)]
