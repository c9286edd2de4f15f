"""What a processor gets when its node runs, and what it answers.

The engine owns the lifecycle (persisting, routing, retrying, timing out); a processor
implements one hook, ``run``, and answers with an outcome:

* :class:`Completed` — an output dict, optionally a branch label (for types that route
  by label, such as ``decision``) and the ``next_node`` of a matched rule;
* :class:`Waiting` — until a time, a human decision or a callback; the engine stores the
  wait as data and calls ``resume`` when it is resolved (or due);
* :class:`Failed` — an error message a person can act on, retryable or not.

A processor never blocks the event loop and never imports the engine, the store or the
API: everything it may use arrives in :class:`NodeContext`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

WaitKind = Literal["timer", "human_task", "callback", "children"]


@dataclass(frozen=True, slots=True)
class Completed:
    output: Mapping[str, Any]
    branch: str | None = None
    next_node: str | None = None


@dataclass(frozen=True, slots=True)
class Waiting:
    """Park the node; ``until`` is when a timer fires (``None``: an outside event).

    ``token`` is an unguessable key by which an outside caller finds this wait (a
    callback URL); it is stored unique with the wait. ``data`` is kept with the wait and
    handed back to ``resume`` as ``WaitResolution.wait_data``.
    """

    kind: WaitKind
    until: datetime | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    token: str | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    error: str
    retryable: bool = True
    details: Mapping[str, Any] = field(default_factory=dict)


Outcome = Completed | Waiting | Failed


@dataclass(frozen=True, slots=True)
class WaitResolution:
    """Why a waiting node is being resumed: its timer is due, or the outside answered."""

    kind: WaitKind
    created_at: datetime
    due_at: datetime | None
    resolved_at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)
    wait_data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EdgeView:
    """An outgoing edge of the running node, as processors may see it."""

    id: str
    to_node: str
    condition: str | None
    on_error: bool


Evaluate = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class NodeContext:
    """Everything a running node may use; built by the engine for each attempt.

    ``idempotency_key`` is ``<execution_id>:<node_id>`` for every attempt and every
    re-run after a crash (``:r<n>`` only after a deliberate rerun), so a peer can
    deduplicate. ``evaluate(text, extra_names=None, extra_functions=None)`` evaluates an
    expression against ``scope`` off the event loop, within the configured limits.
    """

    execution_id: str
    workflow_id: str
    node_id: str
    node_name: str
    attempt: int
    idempotency_key: str
    scope: Mapping[str, Any]
    outgoing_edges: Sequence[EdgeView]
    evaluate: Evaluate
    log: Callable[[str], None]
    now: Callable[[], datetime]
    services: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChildState:
    """A child execution as the node that started it sees it (``services["children"]``)."""

    id: str
    index: int
    label: str | None
    status: str
    output: Mapping[str, Any] | None = None
    error: Mapping[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")


#: A node waiting for its child executions looks at them again after this many seconds
#: even when no child's end was reported — a safety net for a wake-up lost between
#: server processes — doubling while nothing is reported, up to an hour.
CHILDREN_RECHECK_SECONDS = 5.0
CHILDREN_RECHECK_MAX_SECONDS = 3600.0


def wait_for_children(
    ctx: NodeContext,
    state: Mapping[str, Any] | None,
    *,
    poked: bool,
    until: datetime | None = None,
    **data: Any,
) -> Waiting:
    """Wait for this node's child executions (a child's end wakes the node at once).

    ``state`` is the previous wait's data (``None`` on the first wait) and ``poked``
    whether a child's end woke the node; ``until`` caps the wait (a timeout); ``data``
    is kept with the wait, next to the recheck interval.
    """
    recheck = CHILDREN_RECHECK_SECONDS
    if state is not None and not poked:
        recheck = min(float(state.get("recheck") or recheck) * 2, CHILDREN_RECHECK_MAX_SECONDS)
    due = ctx.now() + timedelta(seconds=recheck)
    if until is not None:
        due = min(due, until)
    return Waiting("children", until=due, data={**data, "recheck": recheck})
