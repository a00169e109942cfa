"""Rotating intake's master key without downtime, against real PostgreSQL (issue 13: the runbook's
rotation). Data keys wrapped by the previous key stay readable while the new key wraps new ones;
`wijkmatch intake rotate-master-key` re-wraps the rest; afterwards the previous key is not needed."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from services.intake import cli
from services.intake.adapters.keystore import PostgresKeyStore, UnknownMasterKey, master_key_id
from services.platform.db import create_engine

pytestmark = pytest.mark.integration

OLD, NEW = os.urandom(32), os.urandom(32)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _with(url: str, admin: str, master: bytes, previous: list[bytes], action: Any) -> Any:
    store = PostgresKeyStore(url, master, admin_url=admin, previous_master_keys=previous)
    await store.start()
    try:
        return await action(store)
    finally:
        await store.close()


@pytest.fixture
def store_url(migrated_database_url: str) -> Iterator[str]:
    """A key store database of this test's own (created by the store at start), dropped afterwards."""
    url = make_url(migrated_database_url)
    name = f"{url.database}_rot_{secrets.token_hex(4)}"
    yield url.set(database=name).render_as_string(hide_password=False)

    async def drop() -> None:
        admin = create_engine(migrated_database_url, pool_size=1, max_overflow=0)
        async with admin.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    _run(drop())


def test_rotation_keeps_every_key_readable_and_ends_with_the_new_key_only(
    migrated_database_url: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [("rot-region", f"C-{i}") for i in range(5)]

    # Before: intake runs with the old key only; one row predates key ids (NULL), as after an upgrade.
    before = _run(_with(store_url, migrated_database_url, OLD, [], lambda s: s.data_keys(cases, create=True)))

    async def forget_one_key_id(store: PostgresKeyStore) -> None:
        async with store.engine.begin() as connection:
            await connection.execute(
                text("UPDATE keystore.data_key SET master_key_id = NULL WHERE case_id = 'C-0'")
            )

    _run(_with(store_url, migrated_database_url, OLD, [], forget_one_key_id))

    # Phase 2 of the runbook: the new key is current, the old one still accepted. Reads are unchanged and a
    # new case gets a key wrapped by the new master key.
    async def read_and_create(store: PostgresKeyStore) -> tuple[dict, dict]:
        return await store.data_keys(cases, create=False), await store.data_keys(
            [("rot-region", "C-new")], create=True
        )

    during, fresh = _run(_with(store_url, migrated_database_url, NEW, [OLD], read_and_create))
    assert during == before and len(fresh) == 1
    # A replica still on the old key alone cannot read that new row: why phase 1 adds the new key to every
    # replica's PREVIOUS list before any replica makes it current.
    with pytest.raises(UnknownMasterKey, match=master_key_id(NEW)):
        _run(
            _with(
                store_url,
                migrated_database_url,
                OLD,
                [],
                lambda s: s.data_keys([("rot-region", "C-new")], create=False),
            )
        )

    # Phase 3: the command re-wraps every remaining row under the new key, while nothing else changes.
    monkeypatch.setenv("DATABASE_URL", migrated_database_url)
    monkeypatch.setenv("WIJKMATCH_INTAKE_KEYSTORE_URL", store_url)
    monkeypatch.setenv("WIJKMATCH_INTAKE_MASTER_KEY", base64.b64encode(NEW).decode())
    monkeypatch.setenv("WIJKMATCH_INTAKE_PREVIOUS_MASTER_KEYS", base64.b64encode(OLD).decode())
    assert cli.main(["rotate-master-key"]) == 0
    counts = _run(_with(store_url, migrated_database_url, NEW, [], lambda s: s.keys_by_master_key()))
    assert counts == {master_key_id(NEW): 6}
    assert cli.main(["rotate-master-key"]) == 0  # idempotent: nothing left to re-wrap

    # Phase 4: without the old key, every data key reads exactly as before the rotation.
    after = _run(
        _with(
            store_url,
            migrated_database_url,
            NEW,
            [],
            lambda s: s.data_keys([*cases, ("rot-region", "C-new")], create=False),
        )
    )
    assert after == {**before, **fresh}


def test_rotation_refuses_to_finish_without_the_key_that_wrapped_a_row(
    migrated_database_url: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(
        _with(
            store_url,
            migrated_database_url,
            OLD,
            [],
            lambda s: s.data_keys([("rot-region", "C-1")], create=True),
        )
    )
    monkeypatch.setenv("DATABASE_URL", migrated_database_url)
    monkeypatch.setenv("WIJKMATCH_INTAKE_KEYSTORE_URL", store_url)
    monkeypatch.setenv("WIJKMATCH_INTAKE_MASTER_KEY", base64.b64encode(NEW).decode())
    monkeypatch.delenv("WIJKMATCH_INTAKE_PREVIOUS_MASTER_KEYS", raising=False)
    assert cli.main(["rotate-master-key"]) == 2  # the old key was not given: nothing re-wrapped, exit 2
    counts = _run(_with(store_url, migrated_database_url, OLD, [], lambda s: s.keys_by_master_key()))
    assert counts == {master_key_id(OLD): 1}
