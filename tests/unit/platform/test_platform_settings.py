"""ServiceSettings: plain names for shared settings, service prefix for the rest."""

from __future__ import annotations

import pytest

from services.platform.settings import DEFAULT_KAFKA_BOOTSTRAP_SERVERS, ServiceSettings, service_config


class ExampleSettings(ServiceSettings):
    model_config = service_config("example")
    batch_size: int = 5


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
        "LOG_LEVEL",
        "WIJKMATCH_LOG_LEVEL",
        "WIJKMATCH_EXAMPLE_LOG_LEVEL",
        "WIJKMATCH_EXAMPLE_HTTP_PORT",
        "WIJKMATCH_EXAMPLE_BATCH_SIZE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_local() -> None:
    settings = ExampleSettings()
    assert settings.kafka_bootstrap_servers == DEFAULT_KAFKA_BOOTSTRAP_SERVERS
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.http_host == "127.0.0.1"


def test_shared_settings_use_plain_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@h:1/db")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:29092")
    settings = ExampleSettings()
    assert settings.database_url == "postgresql+asyncpg://u@h:1/db"
    assert settings.kafka_bootstrap_servers == "broker:29092"


def test_service_fields_use_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIJKMATCH_EXAMPLE_BATCH_SIZE", "42")
    monkeypatch.setenv("WIJKMATCH_EXAMPLE_HTTP_PORT", "9123")
    monkeypatch.setenv("BATCH_SIZE", "1")
    settings = ExampleSettings()
    assert settings.batch_size == 42
    assert settings.http_port == 9123


def test_log_level_prefers_service_prefix_then_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    assert ExampleSettings().log_level == "DEBUG"
    monkeypatch.setenv("WIJKMATCH_EXAMPLE_LOG_LEVEL", "WARNING")
    assert ExampleSettings().log_level == "WARNING"


def test_keyword_arguments_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@h:1/db")
    settings = ExampleSettings(database_url="postgresql+asyncpg://other/db", http_port=1)
    assert settings.database_url == "postgresql+asyncpg://other/db"
    assert settings.http_port == 1


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("postgresql+asyncpg://postgres@/wijkmatch?host=/work/.wijkmatch/pg", True),
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/test", True),
        ("postgresql+asyncpg://postgres@localhost/test", True),
        ("postgresql+asyncpg://postgres@/test", True),
        ("postgresql+asyncpg://u:p@db.prod.example:5432/wijkmatch", False),
        # a server named in the query is where the client connects: not this machine
        ("postgresql+asyncpg://u:p@/wijkmatch?host=db.prod.example", False),
        ("postgresql+asyncpg://u:p@127.0.0.1/wijkmatch?host=db.prod.example", False),
    ],
)
def test_database_is_local_only_when_every_host_is_this_machine(url: str, local: bool) -> None:
    assert ServiceSettings(database_url=url).database_is_local is local
