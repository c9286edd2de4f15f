"""Shared fixtures: a typical execution scope and a recorder of dangerous runtime events."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

# Audit events that mean an expression reached the interpreter or the operating system.
DANGEROUS_EVENTS = frozenset({
    "open", "exec", "import", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
    "os.fork", "subprocess.Popen", "object.__getattr__", "object.__setattr__",
    "builtins.input", "os.listdir", "os.scandir", "os.remove", "socket.connect",
    "ctypes.dlopen", "code.__new__", "function.__new__",
})  # fmt: skip

_recording: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording and event in DANGEROUS_EVENTS:
        _recording[-1].append(event)


sys.addaudithook(_audit)


@contextmanager
def recording_audit_events() -> Iterator[list[str]]:
    """Collect dangerous audit events raised inside the block (should stay empty).

    Keep only the code under test inside: pytest's own traceback handling reads frames
    and would show up too.
    """
    events: list[str] = []
    _recording.append(events)
    try:
        yield events
    finally:
        _recording.remove(events)


@pytest.fixture
def audit() -> Callable[[], AbstractContextManager[list[str]]]:
    """The :func:`recording_audit_events` context manager, for sandbox tests."""
    return recording_audit_events


@pytest.fixture
def scope() -> dict[str, Any]:
    return {
        "status": "approved",
        "amount": 150,
        "name": "Ada Lovelace",
        "items": [{"id": 1, "price": 30}, {"id": 2, "price": 10}, {"id": 3, "price": 20}],
        "order": {"total": 60, "customer": {"email": "ada@example.com"}, "tags": ["a", "b"]},
        "flags": {"fast": True},
        "nothing": None,
        "nodes": {
            "fetch-data": {"output": {"items": [{"id": "x-1"}], "count": 1}, "status": "completed"},
            "approve": {"output": {"approved": True}},
        },
        "input": {"customer_id": 42},
    }
