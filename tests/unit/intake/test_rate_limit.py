"""Token bucket of the HTTP gateway."""

from __future__ import annotations

import pytest

from services.platform.admission.rate_limit import RateLimiter, TokenBucket


def test_a_full_bucket_allows_its_burst_then_asks_to_wait() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3)
    assert [bucket.take(10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(10.0) == pytest.approx(0.5)


def test_tokens_come_back_at_the_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3)
    for _ in range(3):
        bucket.take(0.0)
    assert bucket.take(0.5) == 0.0  # one token back after 0.5 s
    assert bucket.take(0.5) > 0
    assert [bucket.take(100.0) for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # capped at the burst
    assert bucket.take(100.0) > 0


def test_each_organisation_has_its_own_bucket() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1)
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) > 0
    assert limiter.take("b", 0.0) == 0.0


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate_per_s=0, burst=1)
