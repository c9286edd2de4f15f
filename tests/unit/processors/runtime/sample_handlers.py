"""Handlers registered the way an operator's plugin module registers them."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from processors.handlers import HandlerContext, HandlerFailed, handler


@handler("double")
def double(args: dict[str, Any], context: HandlerContext) -> dict[str, Any]:
    context.log(f"doubling {args['value']}")
    return {"doubled": args["value"] * 2, "thread": threading.current_thread().name,
            "key": context.idempotency_key}  # fmt: skip


@handler("async-echo")
async def echo(args: dict[str, Any], context: HandlerContext) -> str:
    await asyncio.sleep(0)
    return f"{context.node_id}:{args.get('text')}"


@handler("refuse")
def refuse(args: dict[str, Any], context: HandlerContext) -> dict[str, Any]:
    raise HandlerFailed("the ledger is closed", retryable=False)


@handler("not-json")
def not_json(args: dict[str, Any], context: HandlerContext) -> dict[str, Any]:
    return {"value": object()}
