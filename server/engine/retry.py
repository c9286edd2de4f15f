"""Retry policies (SPEC §5): how often a failed node runs again, and after how long."""

from __future__ import annotations

import random

from server.definitions.model import Node, RetryPolicy, WorkflowConfig


def policy_for(node: Node, config: WorkflowConfig) -> RetryPolicy:
    """The node's own policy, else ``config.max_retries`` retries with exponential backoff."""
    if node.retry_policy is not None:
        return node.retry_policy
    return RetryPolicy(
        max_attempts=1 + max(config.max_retries, 0), delay=1.0, backoff="exponential"
    )


def delay_after(
    policy: RetryPolicy, failed_attempt: int, rng: random.Random | None = None
) -> float:
    """Seconds to wait after attempt ``failed_attempt`` (1-based) failed.

    ``jitter`` adds up to that fraction of the delay, at random, so that many executions
    failing together do not retry in lockstep.
    """
    base = max(policy.delay, 0.0)
    if policy.backoff == "fixed":
        delay = base
    elif policy.backoff == "linear":
        delay = base * failed_attempt
    else:
        delay = base * 2 ** min(failed_attempt - 1, 60)
    if policy.max_delay is not None:
        delay = min(delay, policy.max_delay)
    if policy.jitter > 0:
        delay += (rng or random).uniform(0, policy.jitter * delay)
    return delay
