"""The batch processor's failure handling, with a fake unit of work (the real one is tested against
PostgreSQL in tests/integration/intake)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from services.intake.service import processor as processor_module
from services.intake.service.apply import BatchOutcome, RejectedMessage
from services.intake.service.processor import BatchProcessor, RawRecord


class _Tx:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> bool:
        return False


class _Session:
    async def __aenter__(self) -> _Session:
        return self

    async def __aexit__(self, *exc: object) -> bool:
        return False

    def begin(self) -> _Tx:
        return _Tx()


def _record(offset: int) -> RawRecord:
    return RawRecord("topic", 0, offset, b"k", f"v{offset}".encode(), 0)


def _dead_letter(record: RawRecord, error: str, verdict: Any) -> RejectedMessage:
    return RejectedMessage(
        record.topic, 0, record.offset, "0" * 64, "k", {"error": error}, "topic", "unknown"
    )


class Recorder:
    """Stands in for apply_batch: records committed verdicts, fails as scripted."""

    def __init__(self, fail: Any) -> None:
        self.fail = fail
        self.committed: list[list[Any]] = []
        self.calls = 0

    async def __call__(self, session: Any, verdicts: list[Any], *, keys: Any) -> BatchOutcome:
        self.calls += 1
        error = self.fail(verdicts, self.calls)
        if error is not None:
            raise error
        self.committed.append(list(verdicts))
        outcome = BatchOutcome()
        for v in verdicts:
            outcome.add("rejected" if isinstance(v, RejectedMessage) else "applied", "t", "s")
        return outcome


def _processor(monkeypatch: pytest.MonkeyPatch, recorder: Recorder, validate: Any = None) -> BatchProcessor:
    monkeypatch.setattr(processor_module, "apply_batch", recorder)
    return BatchProcessor(
        lambda: _Session(),  # type: ignore[arg-type]
        validate=validate or (lambda r: r.value.decode()),
        dead_letter=_dead_letter,
        keys=None,  # type: ignore[arg-type]  # the fake apply_batch never uses it
        retry_backoff_s=0.001,
    )


async def test_a_transient_database_error_is_retried_until_the_batch_commits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = Recorder(lambda v, call: OperationalError("x", {}, Exception("down")) if call <= 2 else None)
    processor = _processor(monkeypatch, recorder)
    outcome = await processor.process([_record(1), _record(2)])
    assert recorder.committed == [["v1", "v2"]]  # one transaction for the whole batch, after two failures
    assert outcome.total("applied") == 2
    assert processor.healthy


async def test_a_message_that_breaks_the_batch_is_dead_lettered_and_the_rest_applied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = Recorder(lambda v, call: ValueError("bug") if "v2" in v else None)
    outcome = await _processor(monkeypatch, recorder).process([_record(1), _record(2), _record(3)])
    assert recorder.committed[0] == ["v1"]
    assert isinstance(recorder.committed[1][0], RejectedMessage)
    assert recorder.committed[1][0].offset == 2
    assert recorder.committed[2] == ["v3"]
    assert (outcome.total("applied"), outcome.total("rejected")) == (2, 1)


async def test_a_crashing_validator_becomes_a_dead_letter_not_a_stuck_partition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def validate(record: RawRecord) -> Any:
        if record.offset == 1:
            raise RecursionError("validator bug")
        return record.value.decode()

    recorder = Recorder(lambda v, call: None)
    await _processor(monkeypatch, recorder, validate).process([_record(1), _record(2)])
    [batch] = recorder.committed
    assert isinstance(batch[0], RejectedMessage) and batch[0].event == {"error": "RecursionError"}
    assert batch[1] == "v2"


async def test_bad_messages_in_a_large_batch_are_isolated_by_bisection_not_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = {"v17", "v500", "v501", "v998"}
    recorder = Recorder(
        lambda v, call: ValueError("bug") if any(x in bad for x in v if isinstance(x, str)) else None
    )
    processor = _processor(monkeypatch, recorder)
    outcome = await processor.process([_record(i) for i in range(1000)])

    applied = [v for batch in recorder.committed for v in batch if isinstance(v, str)]
    assert applied == [f"v{i}" for i in range(1000) if f"v{i}" not in bad]  # each once, in order
    dead = [v.offset for batch in recorder.committed for v in batch if isinstance(v, RejectedMessage)]
    assert dead == [17, 500, 501, 998]
    assert (outcome.total("applied"), outcome.total("rejected")) == (996, 4)
    # Bisection: at most two transactions per level per bad message (10 levels for 1,000), not 1,000.
    assert recorder.calls <= 1 + 2 * len(bad) * 10 + len(bad), recorder.calls
    assert processor.transactions == recorder.calls
