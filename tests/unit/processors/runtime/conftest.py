"""A real :class:`NodeContext` over a plain scope, for running processors in-process."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from processors.runtime import EdgeView, NodeContext
from server.expressions import evaluate_async

NOW = datetime(2030, 1, 15, 8, 30, 0, tzinfo=UTC)


@dataclass
class Harness:
    """Builds contexts and keeps what the node wrote to its logs."""

    logs: list[str] = field(default_factory=list)

    def ctx(
        self,
        scope: Mapping[str, Any] | None = None,
        *,
        edges: Sequence[EdgeView] = (),
        now: datetime = NOW,
        services: Mapping[str, Any] | None = None,
    ) -> NodeContext:
        values = dict(scope or {})

        async def evaluate(
            text: str,
            extra_names: Mapping[str, Any] | None = None,
            extra_functions: Mapping[str, Callable[..., Any]] | None = None,
        ) -> Any:
            return await evaluate_async(
                text, {**values, **(extra_names or {})}, extra_functions=extra_functions
            )

        return NodeContext(
            execution_id="exec-1",
            workflow_id="wf",
            node_id="node",
            node_name="Node",
            attempt=1,
            idempotency_key="exec-1:node",
            scope=values,
            outgoing_edges=tuple(edges),
            evaluate=evaluate,
            log=self.logs.append,
            now=lambda: now,
            services=dict(services or {}),
        )


@pytest.fixture
def harness() -> Harness:
    return Harness()


def edge(to_node: str, condition: str | None = None, *, on_error: bool = False) -> EdgeView:
    return EdgeView(id=f"to-{to_node}", to_node=to_node, condition=condition, on_error=on_error)
