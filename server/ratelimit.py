"""Rate limits for the routes anyone can reach: login, webhook hooks, callbacks.

A token bucket per key (a client address, a hook path, a username): ``burst`` requests
at once, refilled at ``per_minute``. In memory, per process — a limit protects this
process's work; several processes each apply it. Old keys are dropped as the table
grows, so a flood of distinct keys cannot grow memory without bound.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from server.errors import FlowyardError


class TooManyRequests(FlowyardError):
    """Too many requests; try again later."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("a rate limit needs per_minute > 0 and burst >= 1")
        self.rate = per_minute / 60.0
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, key: str) -> tuple[bool, int]:
        """Take one request for ``key``: (allowed, seconds to wait when it is not)."""
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        allowed = bucket.tokens >= 1
        if allowed:
            bucket.tokens -= 1
        self._buckets[key] = bucket  # most recently used last
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        wait = 0 if allowed else math.ceil((1 - bucket.tokens) / self.rate)
        return allowed, wait

    def check(self, key: str, what: str) -> None:
        """Raise :class:`TooManyRequests` (429, with Retry-After) when over the limit."""
        allowed, wait = self.allow(key)
        if not allowed:
            raise TooManyRequests(
                f"too many {what}; try again in {wait} s", retry_after=max(wait, 1)
            )
