"""Where the per-case data keys of the personal-data vault live: NOT in intake's database.

The vault (intake.personal_vault) holds only ciphertext. Each case's data key lives in a key store behind
`KeyStore`; erasure destroys it there. A backup of intake's database (pg_dump, a base backup, WAL) then
never carries a data key, so ciphertext in a backup taken before an erasure stays unreadable after it
(issue 12). The local default, `PostgresKeyStore`, is a SEPARATE PostgreSQL database (by default the
intake database's name + `_keys` on the same server) whose rows are data keys wrapped by the master key;
docs/intake.md describes the production option (Vault's transit engine or a cloud KMS) and what the key
store's own backups must respect.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from sqlalchemy import Row, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.core.vault_crypto import VaultError, new_wrapped_data_key, unwrap_data_key, wrap_data_key
from services.platform.db import create_engine

log = logging.getLogger("wijkmatch.intake.keystore")

CaseRef = tuple[str, str]  # (region, case_id)


class UnknownMasterKey(RuntimeError):
    """A data key is wrapped by a master key this process was not given (see `master_key_id`)."""


def master_key_id(master_key: bytes) -> str:
    """A master key's public fingerprint (16 hex digits of SHA-256 of the 32 random bytes): stored beside each
    wrapped data key, so rotation knows which key wrapped it; it reveals nothing about the key."""
    return hashlib.sha256(b"wijkmatch-master-key-id\x00" + master_key).hexdigest()[:16]


class KeyStore(Protocol):
    """Per-case data keys (32 random bytes each), outside intake's database."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def data_keys(self, cases: Iterable[CaseRef], *, create: bool) -> dict[CaseRef, bytes]:
        """The data key of each case; with `create`, a new random key for a case that has none (idempotent:
        concurrent or repeated calls get the same key). Without, cases without a key are left out."""
        ...

    async def destroy(self, region: str, case_id: str) -> bool:
        """Destroy the case's key for good; True if there was one."""
        ...


def keystore_url(database_url: str) -> str:
    """The default key store database: the intake database's name + `_keys`, on the same server."""
    url = make_url(database_url)
    return url.set(database=f"{url.database}_keys").render_as_string(hide_password=False)


_DDL = (
    "CREATE SCHEMA IF NOT EXISTS keystore",
    "CREATE TABLE IF NOT EXISTS keystore.data_key ("
    " region text NOT NULL, case_id text NOT NULL,"
    " wrapped_key bytea NOT NULL,"  # nonce || AES-GCM(master key, data key), bound to (region, case_id)
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (region, case_id))",
    # Which master key wrapped the row (master_key_id); NULL: a row from before rotation existed.
    "ALTER TABLE keystore.data_key ADD COLUMN IF NOT EXISTS master_key_id text",
)
_INSERT = text(
    "INSERT INTO keystore.data_key (region, case_id, wrapped_key, master_key_id) "
    "SELECT w.*, :key_id FROM unnest(CAST(:regions AS text[]), CAST(:ids AS text[]), "
    "CAST(:keys AS bytea[])) AS w ON CONFLICT (region, case_id) DO NOTHING"
)
_SELECT = text(
    "SELECT k.region, k.case_id, k.wrapped_key, k.master_key_id FROM keystore.data_key k "
    "JOIN unnest(CAST(:regions AS text[]), CAST(:ids AS text[])) AS w(region, case_id) "
    "USING (region, case_id)"
)
_STALE = text(
    "SELECT region, case_id, wrapped_key, master_key_id FROM keystore.data_key "
    "WHERE master_key_id IS DISTINCT FROM :key_id ORDER BY region, case_id LIMIT :limit "
    "FOR UPDATE SKIP LOCKED"
)
_REWRAP = text(
    "UPDATE keystore.data_key AS k SET wrapped_key = w.wrapped_key, master_key_id = :key_id "
    "FROM unnest(CAST(:regions AS text[]), CAST(:ids AS text[]), CAST(:keys AS bytea[])) "
    "AS w(region, case_id, wrapped_key) WHERE k.region = w.region AND k.case_id = w.case_id"
)
_COUNT_BY_KEY = text(
    "SELECT master_key_id, count(*) AS n FROM keystore.data_key GROUP BY master_key_id ORDER BY 1"
)
_DELETE = text("DELETE FROM keystore.data_key WHERE region = :region AND case_id = :case_id RETURNING 1")


class PostgresKeyStore:
    """The local default: data keys wrapped by the master key, in a separate PostgreSQL database.

    Master-key rotation without downtime (docs/operations.md): new keys are wrapped by `master_key`; rows
    wrapped by one of `previous_master_keys` are still read; `rewrap()` re-wraps those under `master_key`
    while intake keeps running, after which the previous key can be dropped from the configuration.

    `admin_url` (intake's own DATABASE_URL) is used once at start to create the key database when it is
    missing. After a key is deleted the table is vacuumed, so the old row version does not linger in the
    heap file (it can still sit in this database's WAL until a checkpoint recycles it, and in this
    database's backups: see docs/intake.md)."""

    def __init__(
        self,
        url: str,
        master_key: bytes,
        *,
        admin_url: str | None = None,
        previous_master_keys: Sequence[bytes] = (),
    ) -> None:
        self.url = url
        self.master_key = master_key
        self.key_id = master_key_id(master_key)
        # Every key this process can unwrap with, by fingerprint: the current one and the previous ones.
        self.known_keys = {master_key_id(k): k for k in (*previous_master_keys, master_key)}
        self.admin_url = admin_url
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the key store is not started")
        return self._engine

    async def start(self) -> None:
        if self._engine is not None:
            return
        if self.admin_url is not None:
            await self._create_database()
        engine = create_engine(self.url, pool_size=2, max_overflow=2)
        engine.sync_engine.hide_parameters = True  # key material never in a logged statement
        async with engine.begin() as connection:
            for statement in _DDL:
                await connection.execute(text(statement))
        self._engine = engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def data_keys(self, cases: Iterable[CaseRef], *, create: bool) -> dict[CaseRef, bytes]:
        wanted = list(dict.fromkeys(cases))
        if not wanted:
            return {}
        regions, ids = [c[0] for c in wanted], [c[1] for c in wanted]
        async with self.engine.begin() as connection:
            if create:
                fresh = [new_wrapped_data_key(self.master_key, r, i) for r, i in wanted]
                await connection.execute(
                    _INSERT, {"regions": regions, "ids": ids, "keys": fresh, "key_id": self.key_id}
                )
            rows = (await connection.execute(_SELECT, {"regions": regions, "ids": ids})).all()
        return {(r.region, r.case_id): self._unwrap(r) for r in rows}

    def _unwrap(self, row: Row) -> bytes:
        if row.master_key_id is not None:
            key = self.known_keys.get(row.master_key_id)
            if key is None:
                raise UnknownMasterKey(
                    f"a data key in the key store is wrapped by master key {row.master_key_id}, which this "
                    "process was not given: add it to WIJKMATCH_INTAKE_PREVIOUS_MASTER_KEYS"
                )
            return unwrap_data_key(key, row.wrapped_key, row.region, row.case_id)
        for key in (self.master_key, *self.known_keys.values()):  # a row from before key ids existed
            try:
                return unwrap_data_key(key, row.wrapped_key, row.region, row.case_id)
            except VaultError:
                continue
        raise UnknownMasterKey("a data key in the key store opens with none of the configured master keys")

    async def rewrap(self, batch: int = 500) -> int:
        """Re-wrap every data key not wrapped by the current master key under it, in batches of `batch`
        rows (each its own transaction, rows locked with SKIP LOCKED so a running intake is not blocked);
        returns how many were re-wrapped. Idempotent: run it again after a failure."""
        done = 0
        while True:
            async with self.engine.begin() as connection:
                rows = (await connection.execute(_STALE, {"key_id": self.key_id, "limit": batch})).all()
                if not rows:
                    return done
                await connection.execute(
                    _REWRAP,
                    {
                        "regions": [r.region for r in rows],
                        "ids": [r.case_id for r in rows],
                        "keys": [
                            wrap_data_key(self.master_key, self._unwrap(r), r.region, r.case_id) for r in rows
                        ],
                        "key_id": self.key_id,
                    },
                )
            done += len(rows)
            log.info("data keys re-wrapped", extra={"event": "keystore_rewrap", "rows": done})

    async def keys_by_master_key(self) -> dict[str | None, int]:
        """How many data keys each master key (by fingerprint; None = unknown, older rows) wraps."""
        async with self.engine.connect() as connection:
            return {r.master_key_id: r.n for r in (await connection.execute(_COUNT_BY_KEY)).all()}

    async def destroy(self, region: str, case_id: str) -> bool:
        async with self.engine.begin() as connection:
            deleted = (await connection.execute(_DELETE, {"region": region, "case_id": case_id})).first()
        if deleted is not None:
            # Out of the heap file now rather than at the next autovacuum (VACUUM cannot run in a block).
            async with self.engine.connect() as connection:
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(text("VACUUM keystore.data_key"))
        return deleted is not None

    async def _create_database(self) -> None:
        name = make_url(self.url).database
        if not name:
            raise ValueError("the key store URL names no database")
        admin = create_engine(self.admin_url or self.url, pool_size=1, max_overflow=0)
        try:
            async with admin.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
                exists = (
                    await connection.execute(
                        text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                    )
                ).first()
                if exists is None:
                    quoted = name.replace('"', '""')
                    try:
                        await connection.execute(text(f'CREATE DATABASE "{quoted}"'))
                    except Exception as exc:  # raced with another replica, or no CREATEDB right
                        if "already exists" not in str(exc):
                            raise RuntimeError(
                                f"cannot create the key store database {name!r}: create it, or set "
                                "WIJKMATCH_INTAKE_KEYSTORE_URL"
                            ) from exc
                    log.info("key store database created", extra={"database": name})
        finally:
            await admin.dispose()
