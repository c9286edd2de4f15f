"""Task handlers for the crash test: each run leaves lines in a side-effect log.

The server under test imports this module (``FLOWYARD_TASKS_HANDLER_MODULES``). A line is

    start|end <idempotency_key> <attempt> <unix time> <execution_id> <node_id>

written with one ``write`` on a file opened for appending, then fsynced, so a line is
either whole or absent when the process is killed. The execution and node ids are logged
beside the key so that the test can check the key is derived from them.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from processors.handlers import HandlerContext, HandlerFailed, handler


def _append(path: str, event: str, context: HandlerContext) -> None:
    line = (
        f"{event} {context.idempotency_key} {context.attempt} {time.time():.6f} "
        f"{context.execution_id} {context.node_id}\n"
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


async def _log(path: str, event: str, context: HandlerContext) -> None:
    await asyncio.to_thread(_append, path, event, context)


@handler("slow-append")
async def slow_append(args: dict[str, Any], context: HandlerContext) -> dict[str, Any]:
    """Log ``start``, work for ``seconds``, log ``end``."""
    path, seconds = str(args["log"]), float(args["seconds"])
    await _log(path, "start", context)
    await asyncio.sleep(seconds)
    await _log(path, "end", context)
    return {f"{context.node_id}_done": True}


@handler("flaky")
async def flaky(args: dict[str, Any], context: HandlerContext) -> dict[str, Any]:
    """Fail (retryably) the first ``fail_times`` attempts, then succeed."""
    path, fail_times = str(args["log"]), int(args["fail_times"])
    await _log(path, "start", context)
    if context.attempt <= fail_times:
        raise HandlerFailed(f"attempt {context.attempt} fails on purpose", retryable=True)
    await _log(path, "end", context)
    return {"succeeded_on_attempt": context.attempt}
