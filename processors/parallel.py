"""``parallel``: run branches concurrently, or act as a fan-out/join gateway."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from processors.base import (
    DURATION_SCHEMA,
    EDGES_REF,
    NODES_REF,
    ConfigCheck,
    JSONSchema,
    Processor,
    rel,
)

BRANCH_SCHEMA: JSONSchema = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "description": "branch name in the output"},
        "nodes": NODES_REF,
        "edges": EDGES_REF,
        "workflow_id": {"type": "string", "description": "run this workflow as the branch"},
        "version": {"type": "string"},
    },
}


class ParallelProcessor(Processor):
    """Runs branches as child executions, or joins and fans out its own edges."""

    type_name: ClassVar[str] = "parallel"
    description: ClassVar[str] = (
        "Runs branches concurrently and waits for all/any/n; without branches, a gateway."
    )
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "branches": {
                "type": "array",
                "items": BRANCH_SCHEMA,
                "description": "{id, nodes, edges} or {id, workflow_id}; omit for a gateway",
            },
            "max_parallel": {
                "type": "integer",
                "minimum": 1,
                "description": "branches (or outgoing edges) started at once",
            },
            "wait_for": {
                "oneOf": [{"enum": ["all", "any"]}, {"type": "integer", "minimum": 1}],
                "description": '"all" (default), "any", or a number of branches',
            },
            "fail_fast": {"type": "boolean", "description": "stop at the first failed branch"},
            "timeout": {**DURATION_SCHEMA, "description": "how long to wait for the branches"},
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        if "timeout" in config:
            check.duration("timeout", config["timeout"])
        branches = config.get("branches")
        if not isinstance(branches, list):
            return
        if not branches:
            check.error("branches", "'branches' is empty; add branches or remove the key")
        seen: set[str] = set()
        for index, branch in enumerate(branches):
            if not isinstance(branch, dict):
                continue
            branch_id = branch.get("id")
            if isinstance(branch_id, str):
                if branch_id in seen:
                    check.error(
                        rel("branches", index, "id"), f"branch id {branch_id!r} is used twice"
                    )
                seen.add(branch_id)
            inline, external = (
                branch.get("nodes") is not None,
                branch.get("workflow_id") is not None,
            )
            if inline and external:
                check.error(
                    rel("branches", index), "a branch has 'nodes' or 'workflow_id', not both"
                )
            elif not inline and not external:
                check.error(
                    rel("branches", index), "a branch needs 'nodes' (and 'edges') or 'workflow_id'"
                )
            elif inline:
                check.subgraph(rel("branches", index), branch)
        wait_for = config.get("wait_for")
        if (
            isinstance(wait_for, int)
            and not isinstance(wait_for, bool)
            and wait_for > len(branches)
        ):
            check.error(
                "wait_for",
                f"wait_for {wait_for} can never be met: there are only {len(branches)} branches",
            )

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({"branches"})
