"""Erasure holds against a backup taken before it (issue 12): the vault's data keys live in the key store,
not in intake's database, so a pg_dump of intake's database taken before an erasure cannot decrypt the
case's personal data after it. Real PostgreSQL, real pg_dump, real key store."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack import samples
from devstack.localdb import pg_bin_dir
from services.intake.core.vault_crypto import (
    VaultError,
    decrypt_with_data_key,
    unwrap_data_key,
)
from services.intake.service.erase import erase_case
from services.intake.settings import IntakeSettings
from services.platform.db import session_maker
from tests.integration.intake.test_intake_erase import _apply

pytestmark = pytest.mark.integration


def _pg_dump(database_url: str, out: Path) -> str:
    """A plain-text pg_dump of the whole database, as an operator's backup would be."""
    url = make_url(database_url)
    host = url.query.get("host") or url.host
    host = host[0] if isinstance(host, tuple) else host
    binary = shutil.which("pg_dump") or str(pg_bin_dir() / "pg_dump")
    command = [binary, "--format=plain", "--no-owner", "-h", str(host), "-U", url.username or "postgres"]
    if url.port:
        command += ["-p", str(url.port)]
    env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
    subprocess.run([*command, "-f", str(out), url.database or ""], check=True, env=env, timeout=120)
    return out.read_text(encoding="utf-8")


def _vault_rows(dump: str) -> dict[tuple[str, str], dict[str, Any]]:
    """intake.personal_vault's rows from the dump's COPY block (bytea as \\\\x<hex>, NULL as \\N)."""
    lines = iter(dump.splitlines())
    for line in lines:
        if line.startswith("COPY intake.personal_vault "):
            columns = line[line.index("(") + 1 : line.index(")")].split(", ")
            break
    else:
        raise AssertionError("no personal_vault in the dump")
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for line in lines:
        if line == "\\.":
            break
        row = dict(zip(columns, line.split("\t"), strict=True))
        for name in ("wrapped_key", "ciphertext"):
            value = row[name]
            row[name] = None if value == "\\N" else bytes.fromhex(value.removeprefix("\\\\x"))
        found[(row["region"], row["case_id"])] = row
    return found


def _every_bytea(dump: str) -> list[bytes]:
    out = []
    for field in dump.replace("\n", "\t").split("\t"):
        if field.startswith("\\\\x"):
            try:
                out.append(bytes.fromhex(field[3:]))
            except ValueError:
                continue
    return out


async def test_a_dump_taken_before_an_erasure_cannot_decrypt_the_case_after_it(
    db: AsyncEngine, keys: Any, migrated_database_url: str, region: str, tmp_path: Path
) -> None:
    person = samples.personal(12)
    await _apply(db, keys, [samples.event("case.registered", samples.case(region, "C-b", personal=person))])
    dump = _pg_dump(migrated_database_url, tmp_path / "before-erasure.sql")
    row = _vault_rows(dump)[(region, "C-b")]
    assert row["ciphertext"] is not None

    # Positive control: before the erasure, the dump's ciphertext opens with the key store's key.
    [data_key] = (await keys.data_keys([(region, "C-b")], create=False)).values()
    assert decrypt_with_data_key(data_key, row["ciphertext"], region, "C-b") == person
    # ...and the dump itself holds no key for it.
    assert row["wrapped_key"] is None

    result = await erase_case(session_maker(db), region, "C-b", keys=keys)
    assert result.key_destroyed

    # After the erasure: the key store has no key, and no value anywhere in the dump unwraps to one under
    # the master key (the only key that is not destroyed).
    assert await keys.data_keys([(region, "C-b")], create=False) == {}
    master = IntakeSettings().master_key_bytes
    candidates = _every_bytea(dump)
    assert row["ciphertext"] in candidates  # the scan sees the dump's bytea values
    opened = []
    for value in candidates:
        try:
            opened.append(unwrap_data_key(master, value, region, "C-b"))
        except VaultError:
            continue
    assert opened == [], "the dump holds a wrapped data key of the erased case"
    # Even the data key we read before the erasure is the only thing that would open it.
    assert decrypt_with_data_key(data_key, row["ciphertext"], region, "C-b") == person
