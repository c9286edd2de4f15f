"""The per-execution event log (SPEC §5 Trace and audit): order, paging, totals."""

from __future__ import annotations

from tests.integration.engine.conftest import Client, chain, events, expr, run, workflow

EXPECTED = [
    ("execution.created", None),
    ("execution.started", None),
    ("node.started", "a"),
    ("node.completed", "a"),
    ("node.started", "b"),
    ("node.completed", "b"),
    ("execution.completed", None),
]


async def test_events_list_an_execution_in_order(client: Client) -> None:
    execution = await run(client, workflow([expr("a", "1"), expr("b", "2")], chain("a", "b")))
    page = await events(client, execution["id"])
    assert [(e["type"], e["node_id"]) for e in page["events"]] == EXPECTED
    assert page["total"] == len(EXPECTED)
    ids = [e["id"] for e in page["events"]]
    assert ids == sorted(ids)
    assert all(e["at"] for e in page["events"])
    ats = [e["at"] for e in page["events"]]
    assert ats == sorted(ats)
    completed = page["events"][3]
    assert completed["data"]["attempt"] == 1


async def test_events_page_with_after_and_limit(client: Client) -> None:
    execution = await run(client, workflow([expr("a", "1"), expr("b", "2")], chain("a", "b")))
    seen: list[tuple[str, str | None]] = []
    after = 0
    while True:
        page = await events(client, execution["id"], after=after, limit=3)
        assert page["total"] == len(EXPECTED)  # all events, not the page
        assert page["limit"] == 3
        assert len(page["events"]) <= 3
        if not page["events"]:
            break
        seen += [(e["type"], e["node_id"]) for e in page["events"]]
        after = page["events"][-1]["id"]
    assert seen == EXPECTED
    first = await events(client, execution["id"], limit=2)
    assert [e["type"] for e in first["events"]] == ["execution.created", "execution.started"]


async def test_events_of_one_execution_are_not_mixed_with_another(client: Client) -> None:
    first = await run(client, workflow([expr("a", "1"), expr("b", "2")], chain("a", "b")))
    second = await run(
        client, workflow([expr("a", "1"), expr("b", "2")], chain("a", "b"), id="other")
    )
    for execution in (first, second):
        page = await events(client, execution["id"])
        assert [(e["type"], e["node_id"]) for e in page["events"]] == EXPECTED
