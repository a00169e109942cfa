"""validate_message is far from intake's bottleneck: at least 2,000 events/s (intake's end-to-end target)
on one core, measured over the ten intake types. Prints the measured rate (pytest -s)."""

from __future__ import annotations

import time

from services.intake.core.registry import load_registry
from services.intake.core.validation import Accepted, validate_message
from tests.unit.schemas.event_examples import EXAMPLES, REGION, encode, topic_of, valid_event

REGISTRY = load_registry()


def test_validation_sustains_more_than_intakes_end_to_end_target() -> None:
    messages = [(topic_of(short), encode(valid_event(short))) for short in sorted(EXAMPLES)]
    key = REGION.encode()
    best = 0.0
    for _ in range(3):
        count = 0
        started = time.perf_counter()
        while count < 5_000:
            for topic, value in messages:
                result = validate_message(
                    topic=topic, partition=0, offset=count, key=key, value=value, registry=REGISTRY
                )
                count += 1
        elapsed = time.perf_counter() - started
        assert isinstance(result, Accepted)
        best = max(best, count / elapsed)
    print(f"\nvalidate_message: {best:,.0f} valid events/s on one core")
    assert best >= 2_000
