"""A token bucket per caller: `capacity` requests at once, refilled at `per_minute` a minute."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBuckets:
    per_minute: float
    capacity: float
    _state: dict[str, tuple[float, float]] = field(default_factory=dict)  # caller -> (tokens, at)

    def take(self, caller: str, now: float) -> float:
        """0.0 when the request may go ahead, else the seconds until it may."""
        tokens, at = self._state.get(caller, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.per_minute / 60.0)
        if tokens >= 1.0:
            self._state[caller] = (tokens - 1.0, now)
            return 0.0
        self._state[caller] = (tokens, now)
        return (1.0 - tokens) * 60.0 / self.per_minute
