"""Intake settings: the shared platform settings plus WIJKMATCH_INTAKE_* options."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import TYPE_CHECKING

from pydantic import AliasChoices, Field, SecretStr, field_validator

from services.platform.settings import ServiceSettings, service_config

if TYPE_CHECKING:
    from services.intake.adapters.keystore import PostgresKeyStore

log = logging.getLogger("wijkmatch.intake")

# A fixed, published 32-byte key (base64). INSECURE: it is in the source. Local demo and tests only.
INSECURE_LOCAL_MASTER_KEY = base64.b64encode(b"wijkmatch-INSECURE-local-key-32b").decode()


class IntakeSettings(ServiceSettings):
    # Validation errors never repeat a value from the environment (the master key, a URL with a password).
    model_config = service_config("intake", hide_input_in_errors=True)

    # Master key that wraps every per-case data key in the personal-data vault: base64 of 32 bytes.
    master_key: SecretStr = SecretStr(INSECURE_LOCAL_MASTER_KEY)
    # Master-key rotation (docs/operations.md): earlier master keys, comma-separated base64, still accepted
    # for reading data keys they wrapped until `wijkmatch intake rotate-master-key` has re-wrapped them.
    previous_master_keys: SecretStr = SecretStr("")
    # The key store of the vault's data keys (services/intake/adapters/keystore.py): a PostgreSQL database
    # apart from intake's, so a backup of intake's database never holds a key. None = DATABASE_URL's
    # database name + "_keys" on the same server (created at start when missing).
    keystore_url: str | None = None
    # Organisation registry YAML; None = the demo registry shipped with intake.
    organisations: str | None = Field(
        default=None,
        validation_alias=AliasChoices("WIJKMATCH_ORGANISATIONS", "organisations"),
    )
    group_id: str = "wijkmatch-intake"
    batch_max_records: int = 1000
    batch_timeout_ms: int = 100
    fetch_max_wait_ms: int = 100  # how long the broker may hold a fetch when there is nothing new
    relay_batch_size: int = 1000
    relay_poll_interval_s: float = 0.05
    topic_partitions: int = 4
    migrate_on_start: bool = True
    # Only for throwaway setups whose database is not on loopback (e.g. a compose network): without it
    # intake refuses the built-in master key there.
    allow_insecure_master_key: bool = False
    # HTTP gateway (`wijkmatch intake gateway`)
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8081
    # The gateway's Prometheus metrics, on an internal port apart from the public one (they name every
    # organisation): bind to the pod IP in a cluster, never expose it through the ingress.
    gateway_metrics_host: str = "127.0.0.1"
    gateway_metrics_port: int = 9081
    rate_limit_per_s: float = 50.0
    rate_limit_burst: int = 100
    http_port: int = 8080

    @field_validator("master_key")
    @classmethod
    def _master_key_is_32_bytes(cls, value: SecretStr) -> SecretStr:
        try:
            raw = base64.b64decode(value.get_secret_value(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("WIJKMATCH_INTAKE_MASTER_KEY must be base64") from exc
        if len(raw) != 32:
            raise ValueError("WIJKMATCH_INTAKE_MASTER_KEY must decode to exactly 32 bytes")
        return value

    @field_validator("previous_master_keys")
    @classmethod
    def _previous_keys_are_32_bytes(cls, value: SecretStr) -> SecretStr:
        for part in filter(None, (p.strip() for p in value.get_secret_value().split(","))):
            try:
                raw = base64.b64decode(part, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(
                    "WIJKMATCH_INTAKE_PREVIOUS_MASTER_KEYS must be comma-separated base64"
                ) from exc
            if len(raw) != 32:
                raise ValueError("each of WIJKMATCH_INTAKE_PREVIOUS_MASTER_KEYS must decode to 32 bytes")
        return value

    @property
    def previous_master_key_bytes(self) -> list[bytes]:
        parts = (p.strip() for p in self.previous_master_keys.get_secret_value().split(","))
        return [base64.b64decode(p) for p in parts if p]

    @property
    def keystore_database_url(self) -> str:
        from services.intake.adapters.keystore import keystore_url

        return self.keystore_url or keystore_url(self.database_url)

    def build_keystore(self) -> PostgresKeyStore:
        from services.intake.adapters.keystore import PostgresKeyStore

        return PostgresKeyStore(
            self.keystore_database_url,
            self.master_key_bytes,
            admin_url=self.database_url,
            previous_master_keys=self.previous_master_key_bytes,
        )

    @property
    def master_key_bytes(self) -> bytes:
        return base64.b64decode(self.master_key.get_secret_value())

    @property
    def uses_insecure_master_key(self) -> bool:
        return self.master_key.get_secret_value() == INSECURE_LOCAL_MASTER_KEY

    def warn_if_insecure(self) -> None:
        """Warn about the built-in key on a local database; refuse it on any other (fail closed: personal
        data must never be encrypted under a key that is published in the source)."""
        if (
            self.uses_insecure_master_key
            and not self.database_is_local
            and not self.allow_insecure_master_key
        ):
            raise RuntimeError(
                "intake refuses the INSECURE built-in master key with a database that is not on this "
                "machine: set WIJKMATCH_INTAKE_MASTER_KEY (base64 of 32 random bytes), or "
                "WIJKMATCH_INTAKE_ALLOW_INSECURE_MASTER_KEY=true for a throwaway setup"
            )
        if self.keystore_url is None and not self.database_is_local and not self.allow_insecure_master_key:
            raise RuntimeError(
                "intake refuses the default key store (a database on intake's own PostgreSQL server) with a "
                "database that is not on this machine: a base backup or archived WAL of that server would "
                "carry the data keys with the ciphertext, so an erasure would not reach it. Set "
                "WIJKMATCH_INTAKE_KEYSTORE_URL to a database on a separate server (docs/intake.md)"
            )
        if self.uses_insecure_master_key:
            log.warning(
                "intake is using the INSECURE built-in local master key for the personal-data vault; "
                "set WIJKMATCH_INTAKE_MASTER_KEY (base64 of 32 random bytes) outside local development",
                extra={"event": "insecure_master_key"},
            )
