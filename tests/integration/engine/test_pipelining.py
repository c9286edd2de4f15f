"""Pipelined commits: a pure node's successors may start before its result is committed,
but what is committed is always a prefix of the execution's changes, and nothing with an
outside effect ever starts on uncommitted results."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from server.engine.journal import Chain, ChainBroken, Journal
from tests.integration.engine.conftest import (
    TERMINAL,
    chain,
    engine_client,
    expr,
    latest,
    node,
    start,
    upload,
    wait_for_status,
    workflow,
)


async def test_a_failed_unit_refuses_the_rest_of_its_chain_only(tmp_path: Path) -> None:
    journal = Journal(f"sqlite+aiosqlite:///{tmp_path}/j.db")
    journal.start()
    try:
        await journal.run(lambda c: c.exec_driver_sql("CREATE TABLE t (v TEXT)"))

        def insert(value: str) -> Any:
            return lambda c: c.exec_driver_sql(f"INSERT INTO t VALUES ('{value}')")

        def broken(c: Connection) -> None:
            c.exec_driver_sql("INSERT INTO nowhere VALUES (1)")

        mine, other = Chain(), Chain()
        # queued together, so they are tried as one group first, then one by one
        futures = [
            journal.submit(insert("a"), chain=mine),
            journal.submit(broken, chain=mine),
            journal.submit(insert("c"), chain=mine),
            journal.submit(insert("d"), chain=other),
        ]
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert results[0] is not None
        assert not isinstance(results[0], Exception)
        assert isinstance(results[1], Exception)
        assert not isinstance(results[1], ChainBroken)
        assert isinstance(results[2], ChainBroken)
        assert not isinstance(results[3], Exception)
        assert mine.broken
        assert not other.broken
        with pytest.raises(ChainBroken):
            await journal.run(insert("e"), chain=mine)
        values = await journal.run(
            lambda c: sorted(r[0] for r in c.exec_driver_sql("SELECT v FROM t"))
        )
        assert values == ["a", "d"]
    finally:
        await journal.stop()


async def test_a_node_with_outside_effects_starts_on_committed_results_only(
    tmp_path: Path,
) -> None:
    """Five pure transforms, then a handler (which may act outside): when it starts,
    another connection already sees every predecessor completed."""
    db = tmp_path / "flowyard.db"
    pure = [expr(f"t{i}", f"{i} + 1") for i in range(1, 6)]
    look = node("look", "task", {"handler": "committed-runs", "args": {"db": str(db)}})
    async with engine_client(
        f"sqlite+aiosqlite:///{db}",
        **{"tasks.handler_modules": ["tests.integration.engine.pipeline_handlers"]},
    ) as client:
        await upload(client, workflow([*pure, look], chain("t1", "t2", "t3", "t4", "t5", "look")))
        for _ in range(5):
            started = await start(client, "wf")
            execution = await wait_for_status(client, started["id"], TERMINAL)
            assert execution["status"] == "completed", execution
            seen = latest(execution)["look"]["output"]["seen"]
            assert {f"t{i}": "completed" for i in range(1, 6)}.items() <= seen.items()
