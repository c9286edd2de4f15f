"""server.engine.retry: retry policies and back-off delays (SPEC §5 Retries)."""

from __future__ import annotations

import random

import pytest

from server.definitions.model import Node, RetryPolicy, WorkflowConfig
from server.engine.retry import delay_after, policy_for


def node(policy: RetryPolicy | None = None) -> Node:
    return Node("n", "n", "task", {}, retry_policy=policy)


def delays(policy: RetryPolicy, attempts: int = 5) -> list[float]:
    return [delay_after(policy, attempt) for attempt in range(1, attempts + 1)]


def test_fixed_backoff_waits_the_same_each_time() -> None:
    assert delays(RetryPolicy(max_attempts=6, delay=2, backoff="fixed")) == [2.0] * 5


def test_linear_backoff_grows_by_the_delay() -> None:
    assert delays(RetryPolicy(max_attempts=6, delay=1.5, backoff="linear")) == [
        1.5,
        3.0,
        4.5,
        6.0,
        7.5,
    ]


def test_exponential_backoff_doubles() -> None:
    assert delays(RetryPolicy(max_attempts=6, delay=0.5)) == [0.5, 1.0, 2.0, 4.0, 8.0]


@pytest.mark.parametrize("backoff", ["fixed", "linear", "exponential"])
def test_max_delay_caps_every_backoff(backoff: str) -> None:
    policy = RetryPolicy(max_attempts=10, delay=3, backoff=backoff, max_delay=5)  # type: ignore[arg-type]
    assert all(delay <= 5 for delay in delays(policy, 9))
    assert delay_after(policy, 9) == (3 if backoff == "fixed" else 5)


def test_a_huge_attempt_number_does_not_overflow() -> None:
    policy = RetryPolicy(max_attempts=10_000, delay=1, max_delay=60)
    assert delay_after(policy, 5_000) == 60


def test_a_negative_delay_counts_as_none() -> None:
    assert delay_after(RetryPolicy(delay=-1, backoff="fixed"), 1) == 0


def test_jitter_adds_at_most_its_fraction_of_the_delay() -> None:
    policy = RetryPolicy(max_attempts=5, delay=2, backoff="fixed", jitter=0.5)
    rng = random.Random(7)
    samples = [delay_after(policy, 1, rng) for _ in range(500)]
    assert all(2.0 <= sample <= 3.0 for sample in samples)
    assert len(set(samples)) > 100  # really random, not a constant
    assert min(samples) < 2.1  # spread over the whole range
    assert max(samples) > 2.9


def test_jitter_is_reproducible_with_a_seeded_random() -> None:
    policy = RetryPolicy(max_attempts=5, delay=1, jitter=0.3)
    first = [delay_after(policy, attempt, random.Random(42)) for attempt in (1, 2, 3)]
    again = [delay_after(policy, attempt, random.Random(42)) for attempt in (1, 2, 3)]
    assert first == again


def test_jitter_applies_after_the_cap() -> None:
    policy = RetryPolicy(max_attempts=20, delay=1, max_delay=4, jitter=0.25)
    rng = random.Random(3)
    assert all(4.0 <= delay_after(policy, 10, rng) <= 5.0 for _ in range(100))


def test_the_node_policy_wins_over_the_workflow_default() -> None:
    own = RetryPolicy(max_attempts=4, delay=0.1, backoff="fixed")
    assert policy_for(node(own), WorkflowConfig(max_retries=9)) is own


def test_without_a_node_policy_max_retries_gives_exponential_retries() -> None:
    policy = policy_for(node(), WorkflowConfig(max_retries=2))
    assert (policy.max_attempts, policy.delay, policy.backoff) == (3, 1.0, "exponential")


def test_no_policy_and_no_max_retries_means_one_attempt() -> None:
    assert policy_for(node(), WorkflowConfig()).max_attempts == 1
    assert policy_for(node(), WorkflowConfig(max_retries=-3)).max_attempts == 1
