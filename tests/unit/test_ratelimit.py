"""The token bucket behind the public routes' rate limits."""

from __future__ import annotations

import pytest

from server.ratelimit import RateLimiter, TooManyRequests


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_refusals_then_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.allow("a")[0] for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("a") == (False, 1)
    assert limiter.allow("b")[0]  # keys are separate
    clock.now += 1.0
    assert limiter.allow("a")[0]
    assert not limiter.allow("a")[0]


def test_check_raises_429_with_retry_after() -> None:
    limiter = RateLimiter(per_minute=6, burst=1, clock=Clock())
    limiter.check("k", "logins")
    with pytest.raises(TooManyRequests) as caught:
        limiter.check("k", "logins")
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 10
    assert "too many logins" in caught.value.message


def test_the_key_table_is_bounded() -> None:
    limiter = RateLimiter(per_minute=1, burst=1, max_keys=100, clock=Clock())
    for i in range(1000):
        limiter.allow(f"client-{i}")
    assert len(limiter._buckets) == 100
