"""Intake settings: master key validation and the insecure-default warning."""

from __future__ import annotations

import base64
import logging

import pytest
from pydantic import ValidationError

from services.intake.settings import IntakeSettings


def test_the_master_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = bytes(range(32))
    monkeypatch.setenv("WIJKMATCH_INTAKE_MASTER_KEY", base64.b64encode(key).decode())
    settings = IntakeSettings()
    assert settings.master_key_bytes == key
    assert not settings.uses_insecure_master_key


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_master_key_that_is_not_32_base64_bytes_is_refused(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("WIJKMATCH_INTAKE_MASTER_KEY", bad)
    with pytest.raises(ValidationError):
        IntakeSettings()


def test_the_insecure_local_default_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("WIJKMATCH_INTAKE_MASTER_KEY", raising=False)
    settings = IntakeSettings()
    assert settings.uses_insecure_master_key
    with caplog.at_level(logging.WARNING):
        settings.warn_if_insecure()
    assert "INSECURE" in caplog.text


def test_shared_and_prefixed_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@h/db")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:1")
    monkeypatch.setenv("WIJKMATCH_INTAKE_BATCH_MAX_RECORDS", "77")
    monkeypatch.setenv("WIJKMATCH_ORGANISATIONS", "/tmp/orgs.yaml")
    settings = IntakeSettings()
    assert (settings.database_url, settings.kafka_bootstrap_servers) == ("postgresql+asyncpg://u@h/db", "k:1")
    assert settings.batch_max_records == 77
    assert settings.organisations == "/tmp/orgs.yaml"


def test_the_master_key_is_never_shown_in_a_validation_error_or_the_settings_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    almost = base64.b64encode(bytes(range(31))).decode()  # one byte short: refused, and must not be printed
    monkeypatch.setenv("WIJKMATCH_INTAKE_MASTER_KEY", almost)
    with pytest.raises(ValidationError) as refused:
        IntakeSettings()
    assert almost not in str(refused.value)
    good = base64.b64encode(bytes(range(1, 33))).decode()
    monkeypatch.setenv("WIJKMATCH_INTAKE_MASTER_KEY", good)
    assert good not in repr(IntakeSettings())


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:5432/wijkmatch",
        "postgresql+asyncpg://postgres@localhost/wijkmatch",
        "postgresql+asyncpg://postgres@/wijkmatch?host=/work/.wijkmatch/pg",
    ],
)
def test_the_insecure_key_only_warns_with_a_local_database(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.delenv("WIJKMATCH_INTAKE_MASTER_KEY", raising=False)
    IntakeSettings(database_url=url).warn_if_insecure()


def test_the_insecure_key_is_refused_with_a_remote_database_unless_explicitly_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WIJKMATCH_INTAKE_MASTER_KEY", raising=False)
    monkeypatch.delenv(
        "WIJKMATCH_INTAKE_ALLOW_INSECURE_MASTER_KEY", raising=False
    )  # tests/conftest.py sets it
    remote = "postgresql+asyncpg://wijkmatch:pw@postgres.prod.svc:5432/wijkmatch"
    with pytest.raises(RuntimeError, match="WIJKMATCH_INTAKE_MASTER_KEY"):
        IntakeSettings(database_url=remote).warn_if_insecure()
    IntakeSettings(database_url=remote, allow_insecure_master_key=True).warn_if_insecure()
    key = base64.b64encode(bytes(range(32))).decode()
    keys_elsewhere = "postgresql+asyncpg://keys:pw@keystore.prod.svc:5432/wijkmatch_keys"
    IntakeSettings(database_url=remote, master_key=key, keystore_url=keys_elsewhere).warn_if_insecure()


def test_the_same_server_key_store_is_refused_with_a_remote_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WIJKMATCH_INTAKE_ALLOW_INSECURE_MASTER_KEY", raising=False)
    remote = "postgresql+asyncpg://wijkmatch:pw@postgres.prod.svc:5432/wijkmatch"
    key = base64.b64encode(bytes(range(32))).decode()
    with pytest.raises(RuntimeError, match="WIJKMATCH_INTAKE_KEYSTORE_URL"):
        IntakeSettings(database_url=remote, master_key=key).warn_if_insecure()
    local = "postgresql+asyncpg://postgres@127.0.0.1:5432/wijkmatch"
    IntakeSettings(database_url=local, master_key=key).warn_if_insecure()
