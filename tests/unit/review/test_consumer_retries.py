"""A review event that keeps failing is set aside to the rejected topic after three attempts (its partition
moves on); a database outage is waited out and never sets an event aside."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.exc import OperationalError

from schemas.topics import PROPOSALS
from services.platform.admission.outcome import Rejected
from services.platform.observability import ProgressProbe
from services.review.bootstrap import ConsumerState
from services.review.entrypoints import consumer


async def _deliver_three_times(monkeypatch: pytest.MonkeyPatch, error: Exception) -> list[Rejected]:
    set_aside: list[Rejected] = []

    async def failing(*_args: Any) -> str:
        raise error

    async def capture(_sessions: Any, rejected: Rejected) -> None:
        set_aside.append(rejected)

    monkeypatch.setattr(consumer, "handle_record", failing)
    monkeypatch.setattr(consumer, "_reject", capture)
    monkeypatch.setattr(consumer, "RETRY_PAUSE_S", 0.0)
    broker = KafkaBroker()
    consumer.register_consumer(
        broker,
        None,
        group_id="g",
        probe=ProgressProbe("consumer"),
        state=ConsumerState(),  # type: ignore[arg-type]
    )
    async with TestKafkaBroker(broker) as test_broker:
        for _ in range(3):  # the same record, as a nack brings it back
            await test_broker.publish(b"{}", topic=PROPOSALS, key=b"r1", partition=0)
    return set_aside


async def test_an_event_that_keeps_breaking_the_code_is_set_aside_on_the_third_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_aside = await _deliver_three_times(monkeypatch, ValueError("a bug"))
    assert len(set_aside) == 1
    assert set_aside[0].data["topic"] == PROPOSALS
    assert "set aside" in set_aside[0].errors[0]["message"]


async def test_a_database_outage_never_sets_an_event_aside(monkeypatch: pytest.MonkeyPatch) -> None:
    outage = OperationalError("SELECT 1", {}, ConnectionRefusedError("database is away"))
    assert await _deliver_three_times(monkeypatch, outage) == []
