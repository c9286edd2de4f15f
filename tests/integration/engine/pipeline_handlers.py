"""A handler that looks at what is committed when it starts (for test_pipelining)."""

from __future__ import annotations

import sqlite3
from typing import Any

from processors.handlers import HandlerContext, handler


@handler("committed-runs")
async def committed_runs(args: dict[str, Any], context: HandlerContext) -> dict[str, Any]:
    """The status of every node run of this execution, as another connection sees it.

    Async, so it runs on the event loop as soon as the node starts (a sync handler's hop
    to a thread would give an uncommitted result time to land, hiding the bug)."""
    with sqlite3.connect(f"file:{args['db']}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT node_id, status FROM node_runs WHERE execution_id = ? AND superseded = 0",
            (context.execution_id,),
        ).fetchall()
    return {"seen": {node_id: status for node_id, status in rows}}
