"""The audit log is append-only in the database, and `wijkmatch audit verify` names an edited, removed
or reordered entry (tampering by someone who can disable the append-only trigger)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.conftest import connect_kwargs
from tests.integration.review.helpers import auth, publish_round, wait_visible

pytestmark = pytest.mark.integration


def verify_cli(database_url: str) -> tuple[int, str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
async def db(migrated_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(**connect_kwargs(migrated_database_url))
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def decided(client, publish, region) -> list[str]:
    """Three decisions in this test's region: three new audit entries at the end of the chain."""
    _, events = await publish_round(publish, region, 3)
    reviewer = auth("reviewer", [region])
    await wait_visible(client, region, 3, reviewer)
    ids = [e["data"]["proposal_id"] for e in events]
    for pid in ids[:2]:
        assert (await client.post(f"/v1/proposals/{pid}/approve", headers=reviewer)).status_code == 200
    reject = {"reason_code": "household_needs_changed", "note": "Needs ground floor now."}
    assert (
        await client.post(f"/v1/proposals/{ids[2]}/reject", json=reject, headers=reviewer)
    ).status_code == 200
    return ids


async def _seq(db: asyncpg.Connection, proposal_id: str) -> int:
    return int(await db.fetchval("SELECT seq FROM review.audit WHERE proposal_id = $1", proposal_id))


async def _tamper(db: asyncpg.Connection, *statements: tuple[str, ...]) -> None:
    """Run (sql, *args) statements with the append-only trigger disabled (only the table owner can)."""
    async with db.transaction():
        await db.execute("ALTER TABLE review.audit DISABLE TRIGGER audit_append_only")
        for sql, *args in statements:
            await db.execute(sql, *args)
        await db.execute("ALTER TABLE review.audit ENABLE TRIGGER audit_append_only")


@pytest.fixture
async def restore(db: asyncpg.Connection) -> AsyncIterator[None]:
    """Puts the audit table back as it was, so later tests start from an intact chain."""
    rows = await db.fetch("SELECT * FROM review.audit ORDER BY seq")
    yield
    async with db.transaction():
        await db.execute("ALTER TABLE review.audit DISABLE TRIGGER audit_append_only")
        await db.execute("DELETE FROM review.audit")
        if rows:
            columns = list(rows[0].keys())
            await db.copy_records_to_table(
                "audit", schema_name="review", records=[tuple(r) for r in rows], columns=columns
            )
        await db.execute("ALTER TABLE review.audit ENABLE TRIGGER audit_append_only")


async def test_the_audit_log_refuses_updates_and_deletes(db, decided) -> None:
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("UPDATE review.audit SET actor = 'x' WHERE proposal_id = $1", decided[0])
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("DELETE FROM review.audit WHERE proposal_id = $1", decided[0])


async def test_verify_passes_on_an_intact_chain_with_its_fields(db, decided, migrated_database_url) -> None:
    code, out = await asyncio.to_thread(verify_cli, migrated_database_url)
    assert code == 0, out
    assert "intact" in out
    row = await db.fetchrow("SELECT * FROM review.audit WHERE proposal_id = $1", decided[2])
    assert (row["actor"], row["role"], row["action"], row["reason_code"]) == (
        "staff-reviewer",
        "reviewer",
        "reject",
        "household_needs_changed",
    )
    assert row["input_sha256"] == "ab" * 32 and row["round_id"] and row["at"] is not None
    previous = await db.fetchval("SELECT hash FROM review.audit WHERE seq = $1", row["seq"] - 1)
    assert row["prev_hash"] == previous


async def test_verify_names_an_edited_entry(db, decided, restore, migrated_database_url) -> None:
    seq = await _seq(db, decided[0])
    await _tamper(db, ("UPDATE review.audit SET reason_code = 'other' WHERE seq = $1", seq))
    code, out = await asyncio.to_thread(verify_cli, migrated_database_url)
    assert code == 1
    assert f"entry {seq} does not match its hash (edited)" in out


async def test_verify_names_a_removed_entry(db, decided, restore, migrated_database_url) -> None:
    seq = await _seq(db, decided[1])
    await _tamper(db, ("DELETE FROM review.audit WHERE seq = $1", seq))
    code, out = await asyncio.to_thread(verify_cli, migrated_database_url)
    assert code == 1
    assert f"entry {seq} is missing (removed)" in out


async def test_verify_names_the_removed_last_entry_through_its_decision(
    db, decided, restore, migrated_database_url
) -> None:
    last = int(await db.fetchval("SELECT max(seq) FROM review.audit"))
    assert last == await _seq(db, decided[2])
    await _tamper(db, ("DELETE FROM review.audit WHERE seq = $1", last))
    code, out = await asyncio.to_thread(verify_cli, migrated_database_url)
    assert code == 1
    assert f"the decision on proposal {decided[2]} has no entry in the chain (removed)" in out


async def test_verify_names_reordered_entries(db, decided, restore, migrated_database_url) -> None:
    a, b = await _seq(db, decided[0]), await _seq(db, decided[1])
    move = "UPDATE review.audit SET seq = $2 WHERE seq = $1"
    await _tamper(db, (move, a, -1), (move, b, a), (move, -1, b))
    code, out = await asyncio.to_thread(verify_cli, migrated_database_url)
    assert code == 1
    assert f"entry {a} holds entry {b} (reordered)" in out
    assert f"entry {b} holds entry {a} (reordered)" in out
