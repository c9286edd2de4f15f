"""What validation knows about the server it validates for: node types, names, limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from processors.commands import CommandPolicy
from processors.registry import ProcessorRegistry, default_registry

RESERVED_WORKFLOW_IDS = frozenset({"executions", "health", "metrics", "validate"})


@dataclass(frozen=True)
class DefinitionLimits:
    """Size limits of a definition (§8); each message names the setting that raises it.

    ``max_definition_bytes`` is enforced by the API on the request body, not here.
    """

    max_nodes: int = 1000
    """Nodes in the definition, counting nodes inside loop and parallel bodies."""
    max_depth: int = 10
    """Nesting depth of loop/parallel bodies (the top-level graph is depth 0)."""
    max_expression_length: int = 10_000
    max_jsonpath_length: int = 2_000
    #: How messages name the settings: ``<prefix>.max_nodes`` etc.
    setting_prefix: str = "limits"

    def setting(self, name: str) -> str:
        """The configuration key of a limit, for messages."""
        return f"{self.setting_prefix}.{name}"


@dataclass(frozen=True)
class ValidationContext:
    """Environment of a validation run.

    ``connections``/``smtp_accounts`` are the configured names; ``None`` means "not known
    here" and skips those checks (e.g. ``flowyard validate`` without a config file).
    """

    registry: ProcessorRegistry = field(default_factory=default_registry)
    connections: frozenset[str] | None = None
    smtp_accounts: frozenset[str] | None = None
    #: the ``[tasks]`` command policy; ``None`` skips the (warning-only) command checks.
    commands: CommandPolicy | None = None
    limits: DefinitionLimits = field(default_factory=DefinitionLimits)
