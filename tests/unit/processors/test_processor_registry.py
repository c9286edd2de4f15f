"""The node-type registry: lookups, aliases, atomic registration, helpful errors."""

from __future__ import annotations

import pytest

from processors.base import Processor
from processors.registry import DEFAULT_PROCESSORS, ProcessorRegistry, default_registry
from server.errors import DuplicateNodeType, InvalidInput, UnknownNodeType


class _Echo(Processor):
    type_name = "echo"
    description = "Echoes."


def test_default_registry_has_every_builtin_type() -> None:
    registry = default_registry()
    assert registry.types() == tuple(sorted(DEFAULT_PROCESSORS))
    for name, processor_class in DEFAULT_PROCESSORS.items():
        processor = registry.get(name)
        assert isinstance(processor, processor_class)
        assert processor.type_name == name
        assert processor.description
        assert "\n" not in processor.description
        assert processor.config_schema["type"] == "object"
        assert processor.config_schema["properties"]


def test_unknown_type_error_lists_known_types_and_suggests() -> None:
    with pytest.raises(UnknownNodeType) as caught:
        default_registry().get("emial")
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert error.status_code == 422
    assert "known types: api, database, decision, email" in error.message
    assert "did you mean 'email'" in error.message


def test_duplicate_registration_is_refused_atomically() -> None:
    registry = default_registry()
    before = (registry.types(), dict(registry.aliases()), registry.version)
    with pytest.raises(DuplicateNodeType):
        registry.register(_Echo(), aliases=["shout", "task"])
    assert (registry.types(), dict(registry.aliases()), registry.version) == before
    assert "echo" not in registry
    assert "shout" not in registry


def test_aliases_resolve_and_count_as_names() -> None:
    registry = ProcessorRegistry()
    registry.register(_Echo(), aliases=["say"])
    assert "say" in registry
    assert "echo" in registry
    assert 5 not in registry
    assert registry.get("say") is registry.get("echo")
    assert registry.canonical("say") == "echo"
    assert registry.names() == ("echo", "say")
    with pytest.raises(DuplicateNodeType):
        registry.register(_Echo())


def test_bad_type_names_are_refused() -> None:
    with pytest.raises(ValueError, match="must match"):
        ProcessorRegistry().register(_Echo(), aliases=["Bad Name"])


def test_a_new_type_is_validated_through_the_registry() -> None:
    from server.definitions import ValidationContext, validate_definition

    registry = default_registry()
    registry.register(_Echo())
    doc = {"name": "x", "nodes": [{"id": "a", "name": "A", "type": "echo", "config": {}}]}
    assert validate_definition(doc, ValidationContext(registry=registry)).valid
    assert not validate_definition(doc).valid
