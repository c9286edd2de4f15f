"""Handlers published by installed packages (the ``flowyard.handlers`` entry-point group).

Each test installs a real distribution: a package plus its ``*.dist-info`` (METADATA and
entry_points.txt) in a directory put on ``sys.path``, which is all ``importlib.metadata``
needs to find it — the same as ``pip install`` would leave behind.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from processors.handlers import ENTRY_POINT_GROUP, Handlers
from processors.runtime import Completed, Failed
from processors.task import TaskProcessor
from server.errors import ConfigurationError
from tests.unit.processors.runtime.conftest import Harness

#: A plugin module: a sync handler (reports its thread) and an async one.
PLUGIN_SOURCE = """
import asyncio
import threading

from processors.handlers import HandlerFailed


def on_event_loop():
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def double(args, context):
    context.log(f"doubling {args['value']}")
    return {"doubled": args["value"] * 2, "thread_id": threading.get_ident(),
            "on_event_loop": on_event_loop(), "key": context.idempotency_key}


async def greet(args, context):
    await asyncio.sleep(0)
    return {"greeting": f"hello {args['name']}", "thread_id": threading.get_ident(),
            "on_event_loop": on_event_loop()}


def closed(args, context):
    raise HandlerFailed("the books are closed", retryable=False)


NOT_CALLABLE = 42
"""
PLUGIN_ENTRY_POINTS = {
    "plugin-double": "double",
    "plugin-greet": "greet",
    "plugin-closed": "closed",
}


@dataclass(frozen=True)
class Plugin:
    """An installed test distribution: its distribution and module names."""

    distribution: str
    module: str


def install_plugin(
    directory: Path,
    monkeypatch: pytest.MonkeyPatch,
    entry_points: Mapping[str, str] = PLUGIN_ENTRY_POINTS,
    *,
    source: str = PLUGIN_SOURCE,
    group: str = ENTRY_POINT_GROUP,
) -> Plugin:
    """Install a distribution whose ``entry_points`` map names to attributes of ``source``.

    The directory goes on ``sys.path`` until the test ends, so later tests do not see the
    distribution; the module name is unique, so an import left behind cannot clash.
    """
    suffix = uuid.uuid4().hex[:8]
    module = f"flowyard_test_plugin_{suffix}"
    distribution = f"flowyard-test-plugin-{suffix}"
    (directory / f"{module}.py").write_text(textwrap.dedent(source))
    info = directory / f"{distribution.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.2.3\n")
    lines = [f"{name} = {module}:{attribute}" for name, attribute in entry_points.items()]
    (info / "entry_points.txt").write_text(f"[{group}]\n" + "\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(directory))
    importlib.invalidate_caches()
    return Plugin(distribution, module)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugin]:
    installed = install_plugin(tmp_path, monkeypatch)
    yield installed
    sys.modules.pop(installed.module, None)


async def run(harness: Harness, handlers: Handlers, config: dict[str, object]) -> object:
    return await TaskProcessor().run(config, harness.ctx(services={"handlers": handlers}))


def test_installed_handlers_are_found_without_configuration(plugin: Plugin) -> None:
    handlers = Handlers.load([])
    assert {"plugin-double", "plugin-greet", "plugin-closed"} <= set(handlers.names())
    assert plugin.module in sys.modules  # loaded through the entry point


def test_without_the_package_there_are_no_such_handlers() -> None:
    assert "plugin-double" not in Handlers.load([]).names()


async def test_a_sync_plugin_handler_runs_off_the_event_loop_thread(
    harness: Harness, plugin: Plugin
) -> None:
    outcome = await run(
        harness, Handlers.load([]), {"handler": "plugin-double", "args": {"value": 4}}
    )
    assert isinstance(outcome, Completed)
    assert outcome.output["doubled"] == 8
    assert outcome.output["key"] == "exec-1:node"
    assert outcome.output["thread_id"] != threading.get_ident()
    assert outcome.output["on_event_loop"] is False
    assert harness.logs == ["doubling 4"]


async def test_an_async_plugin_handler_runs_on_the_event_loop(
    harness: Harness, plugin: Plugin
) -> None:
    outcome = await run(
        harness, Handlers.load([]), {"handler": "plugin-greet", "args": {"name": "Ada"}}
    )
    assert isinstance(outcome, Completed)
    assert outcome.output == {
        "greeting": "hello Ada",
        "thread_id": threading.get_ident(),
        "on_event_loop": True,
    }


async def test_a_plugin_handler_can_refuse(harness: Harness, plugin: Plugin) -> None:
    outcome = await run(harness, Handlers.load([]), {"handler": "plugin-closed"})
    assert outcome == Failed("the books are closed", retryable=False)


def test_only_the_flowyard_group_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, monkeypatch, {"elsewhere": "double"}, group="other.handlers")
    assert "elsewhere" not in Handlers.load([]).names()
    assert Handlers.load([], entry_point_group="other.handlers").names() == ["elsewhere"]


@pytest.mark.parametrize(
    ("attribute", "fragment"),
    [("no_such_function", "AttributeError"), ("NOT_CALLABLE", "is not callable")],
)
def test_a_broken_entry_point_stops_the_start_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attribute: str, fragment: str
) -> None:
    plugin = install_plugin(tmp_path, monkeypatch, {"broken": attribute})
    with pytest.raises(ConfigurationError) as caught:
        Handlers.load([])
    message = caught.value.message
    assert "entry point 'broken'" in message
    assert f"{plugin.distribution} 1.2.3" in message
    assert fragment in message
    assert "fix or uninstall that package" in message
