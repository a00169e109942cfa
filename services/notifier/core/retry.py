"""What to do after a delivery attempt, and when to try again (exponential backoff, full jitter)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import Enum


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # timeout, connection error, 408, 429, 5xx
    DEAD = "dead"  # a 4xx the receiver will answer again (a bug on its side): no point retrying
    GONE = "gone"  # 410: the receiver says the endpoint no longer exists -> disable it


def judge(status_code: int | None) -> Verdict:
    """Verdict of one attempt; None means no HTTP answer (timeout, connection refused, TLS error)."""
    if status_code is None:
        return Verdict.RETRY
    if 200 <= status_code < 300:
        return Verdict.DELIVERED
    if status_code == 410:
        return Verdict.GONE
    if status_code in (408, 429) or status_code >= 500:
        return Verdict.RETRY
    return Verdict.DEAD


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_s: float = 5.0
    cap_s: float = 3600.0
    max_retry_after_s: float = 24 * 3600.0

    def backoff_s(self, attempts_made: int, rng: random.Random) -> float:
        """Delay after the `attempts_made`-th failed attempt: uniform in [base*2^(n-1)/2, base*2^(n-1)],
        capped (half-jitter: spreads retries of many deliveries, never retries at once)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** max(0, attempts_made - 1))
        return rng.uniform(ceiling / 2, ceiling)

    def next_delay_s(
        self, attempts_made: int, retry_after_s: float | None, rng: random.Random
    ) -> float | None:
        """Seconds until the next attempt, or None when the attempts are used up (dead-letter).

        A receiver's Retry-After (429/503) is honoured when it asks for longer than our backoff, up to
        `max_retry_after_s`."""
        if attempts_made >= self.max_attempts:
            return None
        delay = self.backoff_s(attempts_made, rng)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_retry_after_s))
        return delay


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
