"""Helpers for definition tests: a small valid document to break in one place."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from server.definitions import ValidationContext, ValidationReport, validate_definition

CONTEXT = ValidationContext(
    connections=frozenset({"demo_db"}), smtp_accounts=frozenset({"default"})
)

BASE: dict[str, Any] = {
    "id": "base",
    "name": "Base",
    "variables": {"count": {"name": "count", "type": "integer", "default_value": 1}},
    "nodes": [
        {"id": "start", "name": "Start", "type": "task", "config": {"script": "x = count + 1"}},
        {
            "id": "check",
            "name": "Check",
            "type": "decision",
            "config": {
                "decision_rules": [{"condition": "x > 1", "output": "big", "next_node": "store"}]
            },
        },
        {
            "id": "store",
            "name": "Store",
            "type": "database",
            "config": {"connection": "demo_db", "query": "SELECT 1", "params": []},
        },
        {
            "id": "mail",
            "name": "Mail",
            "type": "email",
            "config": {"email_to": "a@example.com", "subject": "s", "body": "x=${x}"},
        },
    ],
    "edges": [
        {"id": "e1", "from_node": "start", "to_node": "check"},
        {"id": "e2", "from_node": "check", "to_node": "store", "condition": "big"},
        {"id": "e3", "from_node": "store", "to_node": "mail"},
    ],
}


def base() -> dict[str, Any]:
    """A fresh copy of a small valid definition."""
    return copy.deepcopy(BASE)


def check(doc: object) -> ValidationReport:
    return validate_definition(doc, CONTEXT)


@pytest.fixture
def doc() -> dict[str, Any]:
    return base()


Mutation = Callable[[dict[str, Any]], object]
