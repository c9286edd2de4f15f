"""``task`` nodes calling registered Python handlers by name."""

from __future__ import annotations

import threading

import pytest

from processors.handlers import Handlers
from processors.runtime import Completed, Failed
from processors.task import TaskProcessor
from server.errors import ConfigurationError
from tests.unit.processors.runtime.conftest import Harness

MODULE = "tests.unit.processors.runtime.sample_handlers"


@pytest.fixture
def handlers() -> Handlers:
    return Handlers.load([MODULE])


async def run(harness: Harness, handlers: Handlers | None, config: dict[str, object]) -> object:
    services = {"handlers": handlers} if handlers else {}
    return await TaskProcessor().run(config, harness.ctx(services=services))


async def test_sync_handler_runs_in_a_worker_thread(harness: Harness, handlers: Handlers) -> None:
    outcome = await run(harness, handlers, {"handler": "double", "args": {"value": 21}})
    assert isinstance(outcome, Completed)
    assert outcome.output["doubled"] == 42
    assert outcome.output["thread"] != threading.current_thread().name
    assert outcome.output["key"] == "exec-1:node"
    assert harness.logs == ["doubling 21"]


async def test_async_handler_and_non_dict_result(harness: Harness, handlers: Handlers) -> None:
    outcome = await run(harness, handlers, {"handler": "async-echo", "args": {"text": "hi"}})
    assert isinstance(outcome, Completed)
    assert outcome.output == {"result": "node:hi"}


async def test_handler_failure_carries_its_message(harness: Harness, handlers: Handlers) -> None:
    outcome = await run(harness, handlers, {"handler": "refuse"})
    assert isinstance(outcome, Failed)
    assert (outcome.error, outcome.retryable) == ("the ledger is closed", False)


async def test_unknown_handler_lists_the_known_ones(harness: Harness, handlers: Handlers) -> None:
    outcome = await run(harness, handlers, {"handler": "tripple"})
    assert isinstance(outcome, Failed)
    assert "no task handler named 'tripple'" in outcome.error
    assert "double" in outcome.error
    assert "handler_modules" in outcome.error


async def test_without_configured_handlers_nothing_is_callable(harness: Harness) -> None:
    outcome = await run(harness, None, {"handler": "double"})
    assert isinstance(outcome, Failed)
    assert "known: none" in outcome.error


async def test_non_json_output_fails(harness: Harness, handlers: Handlers) -> None:
    outcome = await run(harness, handlers, {"handler": "not-json"})
    assert isinstance(outcome, Failed)
    assert "not JSON data" in outcome.error


async def test_args_must_be_an_object(harness: Harness, handlers: Handlers) -> None:
    outcome = await run(harness, handlers, {"handler": "double", "args": [1, 2]})
    assert isinstance(outcome, Failed)
    assert "keyword arguments" in outcome.error


def test_only_listed_modules_are_callable() -> None:
    assert Handlers.load([MODULE]).get("double") is not None  # the module is imported now
    assert Handlers.load([]).get("double") is None  # …but not listed, so not callable
    assert set(Handlers.load([MODULE]).names()) == {"async-echo", "double", "not-json", "refuse"}


def test_a_module_that_cannot_be_imported_names_the_setting() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Handlers.load(["no_such_module_here"])
    assert caught.value.key == "tasks.handler_modules"
