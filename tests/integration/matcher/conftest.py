"""Matcher integration fixtures: an in-process MatcherService against the real broker and PostgreSQL."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.matcher.adapters.consumer import TOPICS
from services.matcher.settings import MatcherSettings
from tests.support.kafka_support import start_group_at_end


@pytest.fixture
def region() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def registry_path(tmp_path: Path, region: str) -> Path:
    """An organisation registry in which two corporations may answer offers for this test's region; the
    tests' units belong to test-corp."""
    path = tmp_path / "organisations.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "organisations": [
                    {
                        "id": "test-corp",
                        "name": "Test corporation",
                        "sources": ["urn:org:corp:test-corp"],
                        "types": [
                            "vacancy.published",
                            "vacancy.withdrawn",
                            "offer.accepted",
                            "offer.declined",
                        ],
                        "regions": [region],
                        "api_keys": [],
                    },
                    {  # registered and allowed to answer offers here, but owns none of the units
                        "id": "other-corp",
                        "name": "Other corporation",
                        "sources": ["urn:org:corp:other-corp"],
                        "types": ["vacancy.published", "offer.accepted", "offer.declined"],
                        "regions": [region],
                        "api_keys": [],
                    },
                ]
            }
        )
    )
    return path


@pytest.fixture
async def matcher_settings(
    kafka_bootstrap: str, migrated_database_url: str, registry_path: Path
) -> MatcherSettings:
    """Settings with a consumer group of its own, which starts at the current end of the matcher's
    topics (tests/support/kafka_support.py): every test produces its events after this, so none is
    skipped, and no matcher of the test replays what earlier tests left on the shared broker. Services
    a test starts again with the same settings continue from the group's committed offsets."""
    settings = MatcherSettings(
        database_url=migrated_database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        debounce_s=0.5,
        max_delay_s=5.0,
        scheduler_interval_s=0.1,
        solver_processes=1,
        solver_workers=1,
        consumer_group=f"matcher-test-{uuid.uuid4().hex[:8]}",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        shutdown_grace_s=5.0,
        organisations=str(registry_path),
        instance_id=f"test-{uuid.uuid4().hex[:6]}",
    )
    await start_group_at_end(kafka_bootstrap, settings.consumer_group, TOPICS)
    return settings


@contextlib.asynccontextmanager
async def running_matcher(settings: MatcherSettings, **update: Any) -> AsyncIterator[Any]:
    """A started MatcherService on these settings (with `update` applied), stopped on exit."""
    from services.matcher.bootstrap import MatcherService

    service = MatcherService(settings.model_copy(update=update) if update else settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def matcher(matcher_settings: MatcherSettings) -> AsyncIterator[object]:
    async with running_matcher(matcher_settings) as service:
        yield service
