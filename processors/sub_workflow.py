"""``sub_workflow``: run another workflow as a child execution and wait for it.

The child gets ``input_mapping`` (child input name → a template, or a bare path in the
parent scope), pinned to ``version`` or the newest active
version; the node waits as data and completes with the child's output, mapped by
``output_mapping`` (parent name → path in the child's output) when it is given. A failed
or cancelled child fails the node with the child's error; cancelling the parent
cancels the child.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from processors.base import ConfigCheck, JSONSchema, Processor, rel
from processors.runtime import (
    Completed,
    Failed,
    NodeContext,
    Outcome,
    WaitResolution,
    wait_for_children,
)
from server.errors import ExpressionError
from server.expressions import parse_path, render, resolve_path


class SubWorkflowProcessor(Processor):
    """Starts a child execution with mapped input; maps its output back."""

    type_name: ClassVar[str] = "sub_workflow"
    description: ClassVar[str] = "Runs another workflow as a child execution and waits for it."
    #: mapped here: a template is rendered, a bare path looked up (see ``_from_scope``)
    unrendered_keys: ClassVar[frozenset[str]] = frozenset({"input_mapping", "output_mapping"})
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "workflow_id": {"type": "string", "minLength": 1, "description": "child workflow"},
            "version": {"type": "string", "description": "child version (default newest active)"},
            "input_mapping": {
                "type": "object",
                "description": "child input name → template or path in the parent scope",
            },
            "output_mapping": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "parent name → path in the child's output",
            },
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        if config.get("workflow_id") is None:
            check.error("", "a sub_workflow node needs 'workflow_id' (the child workflow)")
        mapping = config.get("input_mapping")
        if isinstance(mapping, dict):
            for name, value in mapping.items():
                check.template(rel("input_mapping", name), value)

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        mapping = config.get("output_mapping")
        return frozenset(mapping) if isinstance(mapping, dict) else None

    async def run(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        children = ctx.services.get("children")
        if children is None:
            return Failed("child executions are not available in this server", retryable=False)
        child_input = {}
        for name, value in dict(config.get("input_mapping") or {}).items():
            child_input[name] = _from_scope(value, ctx.scope)
        await children.start(
            ctx,
            0,
            input=child_input,
            workflow_id=str(config["workflow_id"]),
            version=config.get("version"),
        )
        return await self._look(config, ctx, None, poked=False)

    async def resume(
        self, config: Mapping[str, Any], ctx: NodeContext, wait: WaitResolution
    ) -> Outcome:
        return await self._look(config, ctx, wait.wait_data, poked=bool(wait.data))

    async def _look(
        self,
        config: Mapping[str, Any],
        ctx: NodeContext,
        state: Mapping[str, Any] | None,
        *,
        poked: bool,
    ) -> Outcome:
        states = await ctx.services["children"].states(ctx)
        if not states or not states[0].finished:
            return wait_for_children(
                ctx, state, poked=poked, execution_id=states[0].id if states else None
            )
        child = states[0]
        if child.status != "completed":
            message = (child.error or {}).get("message") or child.status
            return Failed(
                f"child execution {child.id} of workflow {config['workflow_id']!r} "
                f"{child.status}: {message}",
                retryable=False,
                details={"execution_id": child.id},
            )
        output = dict(child.output or {})
        mapping = config.get("output_mapping")
        if not isinstance(mapping, dict) or not mapping:
            return Completed(output)
        mapped = {}
        for name, path in mapping.items():
            try:
                mapped[name] = resolve_path(output, parse_path(str(path)), str(path))
            except ExpressionError as error:
                return Failed(f"output_mapping {name!r}: {error.message}", retryable=False)
        return Completed(mapped)


def _from_scope(value: object, scope: Mapping[str, Any]) -> Any:
    """A template (``${order.id}``, ``"#${n}"``) is rendered; a bare path (``order.id``)
    is looked up, and a string that is no path in the scope is taken as it is."""
    if isinstance(value, str) and "${" in value:
        return render(value, scope)
    if isinstance(value, str) and value and " " not in value:
        try:
            return resolve_path(scope, parse_path(value), value)
        except ExpressionError:
            return value
    return value
