"""The executions pages (SPEC §7 "Executions", "Execution"): the list with its filters
and paging, one execution with its graph, timeline and node details, the live part,
and the control actions posted as forms — on a real app and database, signed in.

Executions run through the real engine (started with the REST API); waits poll the
execution, nothing sleeps in place of work.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.integration.engine.conftest import (
    EXECUTIONS,
    TERMINAL,
    chain,
    edge,
    expr,
    node,
    timer,
    wait_for_status,
    wait_until,
    workflow,
)
from tests.integration.ui.conftest import ADMIN, SignedIn, switch_user

HTML = {"Accept": "text/html"}
HTMX = {"Accept": "text/html", "HX-Request": "true"}
BASE = "/api/v1/workflows"


# --- helpers ------------------------------------------------------------------------------


class Api:
    """The REST API with the admin key, on the signed-in client's app."""

    def __init__(self, ui: SignedIn) -> None:
        self.client = ui.client

    async def upload(self, document: dict[str, Any]) -> None:
        response = await self.client.post(BASE, json=document, headers=ADMIN)
        assert response.status_code == 201, response.text

    async def start(self, workflow_id: str, **body: Any) -> str:
        response = await self.client.post(f"{BASE}/{workflow_id}/execute", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def run(self, document: dict[str, Any], **body: Any) -> dict[str, Any]:
        """Upload, start and wait for the end; the terminal execution JSON."""
        await self.upload(document)
        execution_id = await self.start(document["id"], **body)
        return await wait_for_status(_AdminClient(self.client), execution_id, TERMINAL)

    async def waiting(self, document: dict[str, Any]) -> str:
        """Upload and start; the execution's id once it waits on its timer."""
        await self.upload(document)
        execution_id = await self.start(document["id"])
        await wait_until(
            _AdminClient(self.client),
            execution_id,
            lambda e: any(w["kind"] == "timer" for w in e["waiting_on"]),
            what="a timer wait",
        )
        return execution_id

    async def get(self, execution_id: str) -> dict[str, Any]:
        response = await self.client.get(f"{EXECUTIONS}/{execution_id}", headers=ADMIN)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


class _AdminClient:
    """What the engine helpers' polling needs (``get``), with the admin key."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def get(self, url: str, **kw: Any) -> Any:
        return await self._client.get(url, headers=ADMIN, **kw)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def quick(workflow_id: str) -> dict[str, Any]:
    return workflow(
        [expr("first", "1 + 1"), expr("second", "2 + 2")], chain("first", "second"), id=workflow_id
    )


def waits_an_hour(workflow_id: str) -> dict[str, Any]:
    return workflow(
        [timer("wait", 3600), expr("after", "1")], chain("wait", "after"), id=workflow_id
    )


def fails(workflow_id: str) -> dict[str, Any]:
    return workflow(
        [expr("ok", "1"), expr("boom", "int('not a number')", retry_policy={"max_attempts": 1})],
        chain("ok", "boom"),
        id=workflow_id,
    )


async def page(ui: SignedIn, url: str, status: int = 200) -> str:
    response = await ui.client.get(url, headers=HTML)
    assert response.status_code == status, response.text
    return str(response.text)


def rows(html: str) -> list[str]:
    """The execution ids (short) listed on an executions list page."""
    return re.findall(r'<a href="/executions/[^"]+"><code>([0-9a-f-]{8})</code></a>', html)


@contextmanager
def statements(ui: SignedIn) -> Iterator[list[str]]:
    """The SQL the app sends to its database meanwhile (both of its engines)."""
    database = ui.client.app.state["database"]
    engines = {id(e): e.sync_engine for e in (database.engine, database.read_engine)}
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    for engine in engines.values():
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines.values():
            event.remove(engine, "before_cursor_execute", record)


def rows_read(seen: list[str]) -> list[str]:
    """The statements reading rows (not counting them)."""
    return [s for s in seen if not s.lstrip().upper().startswith("SELECT COUNT(")]


def execution_reads(seen: list[str]) -> list[str]:
    """The statements reading one execution row by its id."""
    return [s for s in seen if re.search(r"FROM executions\s+WHERE executions\.id = ", s)]


# --- the list -----------------------------------------------------------------------------


async def test_the_list_filters_by_status_and_workflow(ui: SignedIn) -> None:
    api = Api(ui)
    done = await api.run(quick(unique("quick")))
    failed = await api.run(fails(unique("fails")))
    assert (done["status"], failed["status"]) == ("completed", "failed")

    everything = await page(ui, "/executions")
    assert {done["id"][:8], failed["id"][:8]} <= set(rows(everything))

    only_failed = await page(ui, "/executions?status=failed")
    assert rows(only_failed) == [failed["id"][:8]]
    assert '<option value="failed" selected>' in only_failed

    by_workflow = await page(ui, f"/executions?workflow_id={done['workflow_id']}")
    assert rows(by_workflow) == [done["id"][:8]]
    nothing = await page(ui, f"/executions?workflow_id={done['workflow_id']}&status=failed")
    assert rows(nothing) == []
    assert "No execution matches" in nothing


async def test_the_list_pages_in_the_database_newest_first(ui: SignedIn) -> None:
    api = Api(ui)
    document = waits_an_hour(unique("paged"))
    await api.upload(document)
    started = [await api.start(document["id"]) for _ in range(53)]
    first = await page(ui, f"/executions?workflow_id={document['id']}")
    assert "1–50 of 53" in first
    assert rows(first) == [s[:8] for s in reversed(started)][:50]
    assert 'rel="next"' in first
    assert 'rel="prev"' not in first
    assert f"workflow_id={document['id']}&amp;offset=50" in first

    second = await page(ui, f"/executions?workflow_id={document['id']}&offset=50")
    assert "51–53 of 53" in second
    assert rows(second) == [s[:8] for s in reversed(started)][50:]
    assert 'rel="prev"' in second
    assert 'rel="next"' not in second


async def test_an_invalid_filter_is_reported_next_to_its_field(ui: SignedIn) -> None:
    html = await page(ui, "/executions?status=exploded&started_from=yesterday", status=422)
    assert 'id="status-error"' in html
    assert 'id="started_from-error"' in html
    assert 'aria-invalid="true"' in html


# --- one execution ------------------------------------------------------------------------


async def test_the_execution_page_shows_statuses_timeline_and_node_details(ui: SignedIn) -> None:
    api = Api(ui)
    failed = await api.run(fails(unique("fails")))
    html = await page(ui, f"/executions/{failed['id']}")
    assert failed["workflow_id"] in html
    assert 'class="status status-failed"' in html
    assert "could not convert" in html or "invalid literal" in html  # the error message
    # The graph colours each node by its status, the timeline lists both runs.
    assert re.search(r'class="[^"]*status-completed[^"]*"[^>]*>?', html)
    timeline = html[html.index('id="execution-timeline"') :]
    assert timeline.count('class="bar bar-') == 2
    assert "Choose a node" in html

    detail = await page(ui, f"/executions/{failed['id']}?node=ok")
    panel = detail[detail.index('id="node-panel"') : detail.index('id="execution-timeline"')]
    assert "Attempt 1" in panel
    assert "&#34;result&#34;: 1" in panel
    raw = await ui.client.get(f"/executions/{failed['id']}/nodes/ok/raw")
    assert raw.status_code == 200
    assert raw.json()["runs"][0]["output"] == {"result": 1}


async def test_a_big_output_is_cut_short_with_a_link_to_the_raw_json(ui: SignedIn) -> None:
    api = Api(ui)
    done = await api.run(workflow([expr("big", "'x' * 9000")], id=unique("big")))
    html = await page(ui, f"/executions/{done['id']}?node=big")
    raw_url = f"/executions/{done['id']}/nodes/big/raw"
    assert "Showing the first 4000 of" in html
    # hx-boost="false": the link leaves the page even inside the boosted node panel.
    assert f'<a href="{raw_url}" hx-boost="false">Open the raw JSON</a>' in html
    assert "x" * 9000 not in html
    whole = await ui.client.get(raw_url)
    assert whole.json()["runs"][0]["output"]["result"] == "x" * 9000


async def test_hostile_node_output_and_names_are_escaped(ui: SignedIn) -> None:
    api = Api(ui)
    hostile = "<script>alert(1)</script>"
    document = workflow([expr("evil", f"'{hostile}'")], id=unique("evil"))
    document["name"] = hostile
    done = await api.run(document, owner=hostile)
    html = await page(ui, f"/executions/{done['id']}?node=evil")
    assert hostile not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    listing = await page(ui, "/executions")
    assert hostile not in listing


async def test_parent_and_child_executions_link_to_each_other(ui: SignedIn) -> None:
    api = Api(ui)
    body = {"nodes": [expr("double", "item * 2")], "edges": []}
    document = workflow(
        [node("each", "loop", {"items": [1, 2], "body": body})], id=unique("parent")
    )
    parent = await api.run(document)
    assert parent["status"] == "completed"
    children = parent["child_executions"]
    assert len(children) == 2
    html = await page(ui, f"/executions/{parent['id']}")
    for child in children:
        assert f'href="/executions/{child["id"]}"' in html
    child_page = await page(ui, f"/executions/{children[0]['id']}")
    assert f'href="/executions/{parent["id"]}" rel="up"' in child_page
    # The child's graph is its inline body.
    assert "double" in child_page


async def test_the_page_lists_the_first_children_without_their_data(ui: SignedIn) -> None:
    api = Api(ui)
    body = {"nodes": [expr("double", "item * 2")], "edges": []}
    items = list(range(55))
    document = workflow([node("each", "loop", {"items": items, "body": body})], id=unique("many"))
    parent = await api.run(document)
    assert parent["status"] == "completed"
    with statements(ui) as seen:
        html = await page(ui, f"/executions/{parent['id']}")
    data = html[html.index('id="execution-data"') :]
    assert data.count('<tr><td><a href="/executions/') == 50
    assert 'Child executions <span class="note">(55)</span>' in data
    assert "The first 50 of 55 child executions" in data
    children = [s for s in rows_read(seen) if "executions.parent_execution_id = " in s]
    assert children, seen
    assert not [s for s in children if "executions.output" in s or "executions.input" in s]
    # The execution row is read once for the page (not again for its definition).
    assert len(execution_reads(seen)) == 1, execution_reads(seen)

    with statements(ui) as seen:
        live = await ui.client.get(f"/executions/{parent['id']}/live?seen=running", headers=HTMX)
    assert live.status_code == 200
    assert len(execution_reads(seen)) == 1, execution_reads(seen)


async def test_an_execution_of_1000_node_runs_renders(ui: SignedIn) -> None:
    api = Api(ui)
    ids = [f"n{i:04d}" for i in range(1000)]
    document = workflow([expr(i, "1") for i in ids], chain(*ids), id=unique("long"))
    await api.upload(document)
    execution_id = await api.start(document["id"])
    await wait_for_status(_AdminClient(ui.client), execution_id, TERMINAL, timeout=120)
    html = await page(ui, f"/executions/{execution_id}")
    assert "n0999" in html
    timeline = html[html.index('id="execution-timeline"') :]
    assert timeline.count('class="bar bar-completed') == 1000
    assert "1,000 runs" in timeline


async def test_an_unknown_execution_is_a_404_page(ui: SignedIn) -> None:
    html = await page(ui, "/executions/no-such-execution", status=404)
    assert "no execution with id" in html


# --- live ---------------------------------------------------------------------------------


async def test_the_live_part_polls_while_running_and_stops_when_ended(ui: SignedIn) -> None:
    api = Api(ui)
    running = await api.waiting(waits_an_hour(unique("live")))
    html = await page(ui, f"/executions/{running}")
    assert f'hx-get="/executions/{running}/live?seen=running"' in html
    assert 'hx-trigger="every 1s"' in html

    fragment = await ui.client.get(f"/executions/{running}/live?seen=running", headers=HTMX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert 'hx-trigger="every 1s"' in fragment.text
    assert 'id="execution-actions"' not in fragment.text  # unchanged status: left alone
    assert re.search(r'id="execution-graph"[^>]* hx-swap-oob="true"', fragment.text)

    done = await api.run(quick(unique("done")))
    ended = await ui.client.get(f"/executions/{done['id']}/live?seen=running", headers=HTMX)
    assert "every 1s" not in ended.text
    assert "hx-get" not in ended.text.split("</section>")[0]
    assert 'class="status status-completed"' in ended.text
    # The status changed since the browser's copy: actions and details come along.
    assert 'id="execution-actions" class="execution-actions" hx-swap-oob="true"' in ended.text
    assert 'id="node-panel" class="card node-panel" hx-swap-oob="true"' in ended.text

    whole = await page(ui, f"/executions/{done['id']}")
    assert "every 1s" not in whole


async def test_a_suspended_execution_polls_every_five_seconds(ui: SignedIn) -> None:
    api = Api(ui)
    running = await api.waiting(waits_an_hour(unique("idle")))
    response = await ui.post_form(f"/executions/{running}/suspend")
    assert response.status_code == 303
    html = await page(ui, f"/executions/{running}")
    assert 'hx-trigger="every 5s"' in html
    assert "every 1s" not in html
    assert "updates every 5 seconds" in html
    fragment = await ui.client.get(f"/executions/{running}/live?seen=suspended", headers=HTMX)
    assert 'hx-trigger="every 5s"' in fragment.text


# --- control actions ----------------------------------------------------------------------


async def test_cancel_from_the_form(ui: SignedIn) -> None:
    api = Api(ui)
    running = await api.waiting(waits_an_hour(unique("cancel")))
    html = await page(ui, f"/executions/{running}")
    assert f'action="/executions/{running}/cancel"' in html
    response = await ui.post_form(f"/executions/{running}/cancel")
    assert response.status_code == 303
    assert response.headers["location"] == f"/executions/{running}?notice=cancelled"
    assert (await api.get(running))["status"] == "cancelled"
    after = await page(ui, response.headers["location"])
    assert "The execution was cancelled." in after
    assert f'action="/executions/{running}/cancel"' not in after
    assert f'action="/executions/{running}/restart"' in after
    audit = await ui.client.get("/api/v1/audit", headers=ADMIN, params={"limit": 200})
    actions = [(e["action"], e["actor"]) for e in audit.json()["entries"]]
    assert ("execution.cancel", "mia") in actions


async def test_suspend_then_resume_from_the_forms(ui: SignedIn) -> None:
    api = Api(ui)
    running = await api.waiting(waits_an_hour(unique("suspend")))
    response = await ui.post_form(f"/executions/{running}/suspend")
    assert response.status_code == 303
    assert (await api.get(running))["status"] == "suspended"
    html = await page(ui, f"/executions/{running}")
    assert f'action="/executions/{running}/resume"' in html
    assert f'action="/executions/{running}/suspend"' not in html

    response = await ui.post_form(f"/executions/{running}/resume")
    assert response.status_code == 303
    assert response.headers["location"].endswith("notice=resumed")
    assert (await api.get(running))["status"] == "running"


async def test_retry_a_failed_execution_from_the_form(ui: SignedIn) -> None:
    api = Api(ui)
    failed = await api.run(fails(unique("retry")))
    html = await page(ui, f"/executions/{failed['id']}")
    assert f'action="/executions/{failed["id"]}/retry"' in html
    response = await ui.post_form(f"/executions/{failed['id']}/retry")
    assert response.status_code == 303
    again = await wait_for_status(_AdminClient(ui.client), failed["id"], TERMINAL)
    attempts = [r for r in again["executed_nodes"] if r["node_id"] == "boom"]
    assert len(attempts) == 2  # the failed node ran again; "ok" kept its output


async def test_restart_starts_a_new_execution(ui: SignedIn) -> None:
    api = Api(ui)
    done = await api.run(quick(unique("restart")))
    response = await ui.post_form(f"/executions/{done['id']}/restart")
    assert response.status_code == 303
    location = response.headers["location"]
    new_id = location.split("/executions/")[1].split("?")[0]
    assert new_id != done["id"]
    assert (await api.get(new_id))["restarted_from"] == done["id"]


async def test_an_action_not_possible_now_shows_the_reason(ui: SignedIn) -> None:
    api = Api(ui)
    done = await api.run(quick(unique("late")))
    response = await ui.client.post(
        f"/executions/{done['id']}/cancel", data={"csrf_token": ui.csrf}, headers=HTML
    )
    assert response.status_code == 409
    assert "cannot cancel" in response.text
    assert "completed" in response.text


async def test_rerun_and_skip_need_a_manager_and_check_the_json(ui: SignedIn) -> None:
    api = Api(ui)
    failed = await api.run(fails(unique("skip")))
    html = await page(ui, f"/executions/{failed['id']}?node=boom")
    assert f'action="/executions/{failed["id"]}/skip"' in html
    assert f'action="/executions/{failed["id"]}/rerun"' in html

    bad = await ui.client.post(
        f"/executions/{failed['id']}/skip",
        data={"csrf_token": ui.csrf, "node_id": "boom", "output": "[1, 2"},
        headers=HTML,
    )
    assert bad.status_code == 422
    assert 'id="skip-error"' in bad.text
    assert "not valid JSON" in bad.text
    assert "[1, 2</textarea>" in bad.text  # what was typed is kept

    skipped = await ui.post_form(
        f"/executions/{failed['id']}/skip", {"node_id": "boom", "output": '{"result": 7}'}
    )
    assert skipped.status_code == 303
    assert skipped.headers["location"].endswith("?node=boom&notice=skipped")
    after = await wait_for_status(_AdminClient(ui.client), failed["id"], TERMINAL)
    assert after["status"] == "completed"

    rerun = await ui.post_form(
        f"/executions/{failed['id']}/rerun", {"node_id": "ok", "input_patch": ""}
    )
    assert rerun.status_code == 303


async def test_a_post_without_the_csrf_token_is_refused(ui: SignedIn) -> None:
    api = Api(ui)
    running = await api.waiting(waits_an_hour(unique("csrf")))
    response = await ui.client.post(f"/executions/{running}/cancel", data={}, headers=HTML)
    assert response.status_code == 403
    assert (await api.get(running))["status"] == "running"


async def test_a_viewer_sees_no_controls_and_cannot_post_them(ui: SignedIn) -> None:
    api = Api(ui)
    running = await api.waiting(waits_an_hour(unique("viewer")))
    await switch_user(ui, "vera")
    html = await page(ui, f"/executions/{running}?node=wait")
    assert '<form method="post" action="/executions/' not in html
    assert "Cancel…" not in html
    assert "Skip…" not in html
    response = await ui.post_form(f"/executions/{running}/cancel")
    assert response.status_code == 403
    assert (await api.get(running))["status"] == "running"


async def test_an_operator_may_cancel_but_not_skip(ui: SignedIn) -> None:
    api = Api(ui)
    running = await api.waiting(waits_an_hour(unique("operator")))
    await switch_user(ui, "otto")
    html = await page(ui, f"/executions/{running}?node=wait")
    assert f'action="/executions/{running}/cancel"' in html
    assert f'action="/executions/{running}/skip"' not in html
    refused = await ui.post_form(f"/executions/{running}/skip", {"node_id": "wait", "output": "{}"})
    assert refused.status_code == 403
    cancelled = await ui.post_form(f"/executions/{running}/cancel")
    assert cancelled.status_code == 303


async def test_a_completed_execution_offers_no_skip(ui: SignedIn) -> None:
    api = Api(ui)
    document = workflow(
        [
            expr("boom", "int('not a number')", retry_policy={"max_attempts": 1}),
            expr("handled", "'recovered'"),
        ],
        [edge("boom", "handled", on_error=True)],
        id=unique("handled"),
    )
    done = await api.run(document)
    assert done["status"] == "completed"
    boom = [r for r in done["executed_nodes"] if r["node_id"] == "boom"]
    assert boom[-1]["status"] == "failed"  # a failed node, but the execution ended well
    html = await page(ui, f"/executions/{done['id']}?node=boom")
    assert 'id="node-title">Node boom' in html
    assert f'action="/executions/{done["id"]}/skip"' not in html
    assert "Skip…" not in html
    # The engine indeed refuses it.
    refused = await ui.client.post(
        f"/executions/{done['id']}/skip",
        data={"csrf_token": ui.csrf, "node_id": "boom", "output": "{}"},
        headers=HTML,
    )
    assert refused.status_code == 409


async def test_the_overview_lists_executions_without_their_data(ui: SignedIn) -> None:
    api = Api(ui)
    failed = await api.run(fails(unique("overview")))
    running = await api.waiting(waits_an_hour(unique("overview")))
    with statements(ui) as seen:
        html = await page(ui, "/")
    assert f'href="/executions/{failed["id"]}"' in html
    assert f'href="/executions/{running}"' in html
    listed = [
        s for s in rows_read(seen) if re.search(r"FROM executions\s+WHERE executions\.status = ", s)
    ]
    assert len(listed) >= 2, seen
    assert not [s for s in listed if "executions.input" in s or "executions.output" in s]
