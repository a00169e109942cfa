"""Settings base shared by every service: database, broker, logging and HTTP listener.

Common settings keep their plain environment names (`DATABASE_URL`, `KAFKA_BOOTSTRAP_SERVERS`) so one
environment configures the whole stack; service-specific settings use the subclass's
`WIJKMATCH_<SERVICE>_` prefix. `log_level`, `http_host` and `http_port` are read from the service prefix
first and fall back to `WIJKMATCH_LOG_LEVEL` / `LOG_LEVEL` (log level only).

    class IntakeSettings(ServiceSettings):
        model_config = service_config("intake")
        batch_size: int = 500          # WIJKMATCH_INTAKE_BATCH_SIZE
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

FALLBACK_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/wijkmatch"
DEFAULT_KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:9092"

# Fields whose environment name follows the subclass prefix, with plain fallbacks.
_PREFIXED_WITH_FALLBACK: dict[str, tuple[str, ...]] = {
    "log_level": ("WIJKMATCH_LOG_LEVEL", "LOG_LEVEL"),
    "http_host": (),
    "http_port": (),
}


def default_database_url() -> str:
    """The embedded PostgreSQL's URL (`wijkmatch db start`), the local default; a TCP URL if unknown."""
    try:
        from services.platform.localstate import embedded_url

        return embedded_url()
    except Exception:
        return FALLBACK_DATABASE_URL


def service_config(service: str, **extra: Any) -> SettingsConfigDict:
    """The `model_config` of a service's settings class: prefix `WIJKMATCH_<SERVICE>_`."""
    config = SettingsConfigDict(
        env_prefix=f"WIJKMATCH_{service.upper()}_", extra="ignore", populate_by_name=True
    )
    config.update(extra)  # type: ignore[typeddict-item]
    return config


def _plain(name: str) -> AliasChoices:
    return AliasChoices(name.upper(), name)


class KafkaClientSettings(BaseSettings):
    """How every Kafka client of a process connects and authenticates: plain environment names, one set for
    the whole process. The local default is PLAINTEXT without credentials (the bundled broker); production
    uses SASL_SSL with SCRAM-SHA-512 (the Strimzi KafkaUser's password) or SSL with a client certificate."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, hide_input_in_errors=True)

    kafka_bootstrap_servers: str = Field(
        default=DEFAULT_KAFKA_BOOTSTRAP_SERVERS, validation_alias=_plain("kafka_bootstrap_servers")
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", validation_alias=_plain("kafka_security_protocol")
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        default="SCRAM-SHA-512", validation_alias=_plain("kafka_sasl_mechanism")
    )
    kafka_sasl_username: str | None = Field(default=None, validation_alias=_plain("kafka_sasl_username"))
    kafka_sasl_password: SecretStr | None = Field(
        default=None, validation_alias=_plain("kafka_sasl_password")
    )
    # PEM files: the CA that signed the brokers' certificates (None: the system's trust store), and for
    # mTLS (SSL) the client certificate and key (Strimzi's user.crt / user.key).
    kafka_ssl_cafile: str | None = Field(default=None, validation_alias=_plain("kafka_ssl_cafile"))
    kafka_ssl_certfile: str | None = Field(default=None, validation_alias=_plain("kafka_ssl_certfile"))
    kafka_ssl_keyfile: str | None = Field(default=None, validation_alias=_plain("kafka_ssl_keyfile"))


class ServiceSettings(KafkaClientSettings):
    model_config = SettingsConfigDict(
        env_prefix="WIJKMATCH_", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    database_url: str = Field(
        default_factory=default_database_url,
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
    )
    # At start-up, how long a database that is away (refused, restarting) is waited for before the
    # service gives up (its migrations retry with back-off meanwhile; readiness stays false).
    database_startup_wait_s: float = Field(
        default=120.0,
        ge=0,
        validation_alias=AliasChoices("WIJKMATCH_DATABASE_STARTUP_WAIT_S", "database_startup_wait_s"),
    )
    log_level: str = "INFO"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Inbox rows (dedupe of consumed events) are kept this long; keep it above the input topics'
    # retention (30 days in deploy/kafka/topics.yaml) so a redelivered message always finds its row.
    inbox_retention_days: float = Field(default=45.0, gt=0)

    @property
    def database_is_local(self) -> bool:
        """The database runs on this machine (loopback or a Unix socket): local development or tests."""
        from sqlalchemy.engine import make_url

        try:
            url = make_url(self.database_url)
        except Exception:
            return False
        # Every host the client may connect to: the URL's and any `?host=` (a Unix socket folder or a
        # server name; libpq and asyncpg accept both there). All must be this machine.
        query_hosts = url.query.get("host")
        hosts = list(query_hosts) if isinstance(query_hosts, tuple) else [query_hosts] if query_hosts else []
        if url.host:
            hosts.append(url.host)
        return all(h.startswith("/") or h in {"localhost", "127.0.0.1", "::1"} for h in hosts)

    _prefixed_fields: ClassVar[dict[str, tuple[str, ...]]] = _PREFIXED_WITH_FALLBACK

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _apply_prefixed_aliases(cls)


def _apply_prefixed_aliases(cls: type[ServiceSettings]) -> None:
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    changed = False
    for name, fallbacks in cls._prefixed_fields.items():
        field = cls.model_fields.get(name)
        if field is None:
            continue
        # No bare `name` alias: env lookups ignore case, so a bare HTTP_PORT (e.g. one a platform injects)
        # would set every service's port. Keyword arguments still work (populate_by_name).
        choices = [f"{prefix}{name.upper()}", *(f for f in fallbacks if f != f"{prefix}{name.upper()}")]
        field.validation_alias = AliasChoices(*choices)
        changed = True
    if changed:
        cls.model_rebuild(force=True)


_apply_prefixed_aliases(ServiceSettings)
