"""The workflow definition format: model, validation and JSON Schema.

``validate_definition`` reports every problem of a document at once (with JSON
pointers); ``parse_definition`` turns a valid document into the typed, frozen model the
engine and the registry use; ``normalize_document`` fills the stored document's defaults.

Names are loaded on first use, so ``python -m server.definitions.schema`` runs the schema
module without importing it twice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.definitions.context import DefinitionLimits, ValidationContext
    from server.definitions.model import (
        Definition,
        Edge,
        ErrorHandling,
        Graph,
        Node,
        RetryPolicy,
        Step,
        Trigger,
        Variable,
        WorkflowConfig,
        normalize_document,
        parse_definition,
        parse_graph,
    )
    from server.definitions.report import ValidationReport
    from server.definitions.validation import validate_definition

_EXPORTS = {
    "DefinitionLimits": "context",
    "ValidationContext": "context",
    "Definition": "model",
    "Edge": "model",
    "ErrorHandling": "model",
    "Graph": "model",
    "Node": "model",
    "RetryPolicy": "model",
    "Step": "model",
    "Trigger": "model",
    "Variable": "model",
    "WorkflowConfig": "model",
    "normalize_document": "model",
    "parse_definition": "model",
    "parse_graph": "model",
    "ValidationReport": "report",
    "validate_definition": "validation",
}

__all__ = [
    "Definition",
    "DefinitionLimits",
    "Edge",
    "ErrorHandling",
    "Graph",
    "Node",
    "RetryPolicy",
    "Step",
    "Trigger",
    "ValidationContext",
    "ValidationReport",
    "Variable",
    "WorkflowConfig",
    "normalize_document",
    "parse_definition",
    "parse_graph",
    "validate_definition",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
