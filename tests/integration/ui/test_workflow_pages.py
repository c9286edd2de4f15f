"""The Workflows pages: list and filters, upload (valid, invalid, not JSON), activate and
deactivate, the workflow page (graph, triggers, versions, run form), the version diff —
in a real app on SQLite and PostgreSQL, signed in through the form (fixture ``ui``)."""

from __future__ import annotations

import copy
import html
import json
import re
from typing import Any

import httpx
from markupsafe import escape

from tests.integration.ui.conftest import ADMIN, SignedIn, switch_user
from ui.paging import PAGE_SIZE

HTML = {"Accept": "text/html"}
HOSTILE = "<img src=x onerror=alert(1)>"


def definition(workflow_id: str = "orders", **fields: Any) -> dict[str, Any]:
    """A small valid definition: a decision with labelled branches, variables, a cron."""
    document: dict[str, Any] = {
        "id": workflow_id,
        "name": "Order check",
        "description": "Checks big orders",
        "version": "1.0.0",
        "category": "sales",
        "owner": "sales-team",
        "tags": ["orders", "daily"],
        "variables": {
            "amount": {"name": "amount", "type": "number", "required": True},
            "customer": {"name": "customer", "type": "string", "default_value": "acme"},
            "rush": {"name": "rush", "type": "boolean", "default_value": False},
            "items": {"name": "items", "type": "array", "default_value": []},
        },
        "nodes": [
            {
                "id": "check",
                "name": "Big order?",
                "type": "decision",
                "config": {"condition": "${amount} > 100"},
            },
            {
                "id": "big",
                "name": "Note big",
                "type": "transform",
                "config": {"transform_type": "expression", "expression": "amount * 2"},
            },
            {
                "id": "small",
                "name": "Note small",
                "type": "transform",
                "config": {"transform_type": "expression", "expression": "amount"},
            },
        ],
        "edges": [
            {"from_node": "check", "to_node": "big", "condition": "true"},
            {"from_node": "check", "to_node": "small", "condition": "false"},
        ],
        "triggers": [{"id": "nightly", "type": "cron", "schedule": "0 3 * * *"}],
    }
    document.update(fields)
    return document


async def create(ui: SignedIn, document: dict[str, Any]) -> None:
    response = await ui.client.post("/api/v1/workflows", json=document, headers=ADMIN)
    assert response.status_code == 201, response.text


async def get(ui: SignedIn, url: str, **params: Any) -> httpx.Response:
    # (httpx replaces the URL's own query with ``params`` when they are given)
    return await ui.client.get(url, params=params or None, headers=HTML)


def text(response: httpx.Response) -> str:
    """The page's text as a person reads it (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text)))


def listed_ids(response: httpx.Response) -> list[str]:
    return re.findall(r'<code class="wf-id">([^<]+)</code>', response.text)


# -- the list --------------------------------------------------------------------------------------


async def test_the_list_filters_in_the_database(ui: SignedIn) -> None:
    await create(ui, definition("orders"))
    await create(ui, definition("invoices", name="Invoice run", category="billing", tags=["x"]))
    await create(ui, definition("drafty", name="Draft thing", status="draft", tags=["daily"]))

    everything = await get(ui, "/workflows")
    assert everything.status_code == 200
    assert sorted(listed_ids(everything)) == ["drafty", "invoices", "orders"]
    assert "3 workflows" in text(everything)

    assert listed_ids(await get(ui, "/workflows", category="billing")) == ["invoices"]
    assert sorted(listed_ids(await get(ui, "/workflows", tag="daily"))) == ["drafty", "orders"]
    assert listed_ids(await get(ui, "/workflows", status="draft")) == ["drafty"]
    assert listed_ids(await get(ui, "/workflows", search="invoice")) == ["invoices"]
    assert listed_ids(await get(ui, "/workflows", owner="nobody")) == []
    by_name = await get(ui, "/workflows", sort="name:asc")
    assert listed_ids(by_name) == ["drafty", "invoices", "orders"]
    # Each row: link, version, status badge, category, tags, the update time.
    row = everything.text
    assert '<a href="/workflows/orders">Order check</a>' in row
    assert 'class="status status-draft"' in row
    assert '<a class="tag" href="?tag=daily">daily</a>' in row
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT', row)
    # A bad filter value is said, not a server error.
    odd = await get(ui, "/workflows", status="bogus", sort="drop table")
    assert odd.status_code == 200
    assert "unknown status" in text(odd)


async def test_the_list_pages_with_links_that_keep_the_filters(ui: SignedIn) -> None:
    for number in range(PAGE_SIZE + 2):
        await create(ui, definition(f"wf-{number:03d}", triggers=[], category="bulk"))
    first = await get(ui, "/workflows", category="bulk", sort="id:asc")
    assert len(listed_ids(first)) == PAGE_SIZE
    assert listed_ids(first)[0] == "wf-000"
    assert f"1–{PAGE_SIZE} of {PAGE_SIZE + 2}" in text(first)
    assert (
        f'href="?category=bulk&amp;sort=id%3Aasc&amp;offset={PAGE_SIZE}" rel="next"' in first.text
    )
    second = await get(ui, "/workflows", category="bulk", sort="id:asc", offset=PAGE_SIZE)
    assert listed_ids(second) == [f"wf-{PAGE_SIZE:03d}", f"wf-{PAGE_SIZE + 1:03d}"]


# -- upload ----------------------------------------------------------------------------------------


async def test_pasting_a_valid_definition_saves_it_and_opens_its_page(ui: SignedIn) -> None:
    pasted = json.dumps(definition("pasted"), indent=2)
    response = await ui.post_form("/workflows", {"definition": pasted})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/workflows/pasted?notice=uploaded"
    stored = await ui.client.get("/api/v1/workflows/pasted", headers=ADMIN)
    assert stored.json()["name"] == "Order check"
    shown = await get(ui, response.headers["location"])
    assert "The workflow was saved." in text(shown)
    # The same text again is fine (an identical version), and so is a new version.
    again = await ui.post_form("/workflows", {"definition": pasted})
    assert again.status_code == 303
    newer = json.dumps(definition("pasted", version="1.1.0", name="Order check v2"))
    assert (await ui.post_form("/workflows", {"definition": newer})).status_code == 303
    versions = await ui.client.get("/api/v1/workflows/pasted/versions", headers=ADMIN)
    assert [v["version"] for v in versions.json()["versions"]] == ["1.0.0", "1.1.0"]


async def test_uploading_a_file_saves_it(ui: SignedIn) -> None:
    body = json.dumps(definition("from-file")).encode()
    response = await ui.client.post(
        "/workflows",
        data={"csrf_token": ui.csrf, "definition": ""},
        files={"file": ("from-file.json", body, "application/json")},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/workflows/from-file")
    stored = await ui.client.get("/api/v1/workflows/from-file", headers=ADMIN)
    assert stored.status_code == 200


async def test_a_known_id_without_version_becomes_the_next_version(ui: SignedIn) -> None:
    await create(ui, definition("bumped"))
    document = definition("bumped", name="Bumped again")
    del document["version"]
    response = await ui.post_form("/workflows", {"definition": json.dumps(document)})
    assert response.status_code == 303, response.text
    stored = await ui.client.get("/api/v1/workflows/bumped", headers=ADMIN)
    assert stored.json()["version"] == "1.0.1"


async def test_an_invalid_definition_shows_its_errors_by_node_and_keeps_the_text(
    ui: SignedIn,
) -> None:
    document = definition("broken")
    document["nodes"].append({"id": "fetch", "name": "Fetch it", "type": "api", "config": {}})
    document["edges"].append({"from_node": "check", "to_node": "nowhere"})
    pasted = json.dumps(document, indent=2)
    response = await ui.post_form("/workflows", {"definition": pasted})
    assert response.status_code == 422
    page = response.text
    shown = text(response)
    assert "The definition is invalid; nothing was saved." in shown
    # The api node's problem under its id, name and type; the edge under "Workflow".
    group = re.search(
        r'<section class="problem-group" data-node-id="fetch">(.*?)</section>', page, re.S
    )
    assert group, page
    group_text = html.unescape(re.sub(r"<[^>]+>", " ", group.group(1)))
    assert "fetch" in group_text
    assert "Fetch it" in group_text
    assert "(api)" in group_text
    assert "config" in group_text
    workflow_group = re.search(r'data-node-id="">(.*?)</section>', page, re.S)
    assert workflow_group, page
    assert "/edges/2" in workflow_group.group(1)
    assert "nowhere" in workflow_group.group(1)
    # What was pasted is still in the textarea (escaped), ready to fix.
    assert str(escape(pasted)) in page
    missing = await ui.client.get("/api/v1/workflows/broken", headers=ADMIN)
    assert missing.status_code == 404


async def test_text_that_is_not_json_says_where(ui: SignedIn) -> None:
    response = await ui.post_form("/workflows", {"definition": '{\n  "id": "x",\n  "name": }'})
    assert response.status_code == 422
    shown = text(response)
    assert "This is not valid JSON." in shown
    assert "line 3, column 11" in shown
    empty = await ui.post_form("/workflows", {"definition": "  "})
    assert empty.status_code == 422
    assert "the definition is empty" in text(empty)


async def test_a_version_with_other_content_is_a_conflict_on_the_form(ui: SignedIn) -> None:
    await create(ui, definition("fixed"))
    changed = json.dumps(definition("fixed", name="Other content"))
    response = await ui.post_form("/workflows", {"definition": changed})
    assert response.status_code == 409
    assert "already exists with different content" in text(response)


# -- activate / deactivate -------------------------------------------------------------------------


async def test_deactivating_and_activating_from_the_list(ui: SignedIn) -> None:
    await create(ui, definition("toggle"))
    listing = await get(ui, "/workflows")
    assert 'action="/workflows/toggle/status"' in listing.text
    off = await ui.post_form(
        "/workflows/toggle/status", {"status": "inactive", "next": "/workflows?tag=daily"}
    )
    assert off.status_code == 303, off.text
    assert off.headers["location"] == "/workflows?tag=daily&notice=deactivated"
    stored = await ui.client.get("/api/v1/workflows/toggle", headers=ADMIN)
    assert stored.json()["status"] == "inactive"
    shown = await get(ui, off.headers["location"])
    assert "new runs are refused" in text(shown)
    on = await ui.post_form(
        "/workflows/toggle/status", {"status": "active", "next": "//evil.example"}
    )
    assert on.headers["location"] == "/workflows/toggle?notice=activated"
    stored = await ui.client.get("/api/v1/workflows/toggle", headers=ADMIN)
    assert stored.json()["status"] == "active"
    audit = await ui.client.get(
        "/api/v1/audit", params={"action": "workflow.status_changed"}, headers=ADMIN
    )
    entries = [e for e in audit.json()["entries"] if e.get("target_id") == "toggle"]
    assert {e["actor"] for e in entries} == {"mia"}


async def test_a_viewer_sees_no_actions_and_cannot_post_them(ui: SignedIn) -> None:
    await create(ui, definition("look"))
    await switch_user(ui, "vera")
    listing = await get(ui, "/workflows")
    assert listing.status_code == 200
    assert "Upload a workflow" not in listing.text
    assert "/status" not in listing.text
    refused = await ui.post_form("/workflows/look/status", {"status": "inactive"})
    assert refused.status_code == 403
    upload = await ui.post_form("/workflows", {"definition": json.dumps(definition("v"))})
    assert upload.status_code == 403
    page = await get(ui, "/workflows/look")
    assert "Run workflow" not in page.text


async def test_posts_without_the_csrf_token_are_refused(ui: SignedIn) -> None:
    await create(ui, definition("guarded"))
    for url, data in [
        ("/workflows", {"definition": json.dumps(definition("sneaky"))}),
        ("/workflows/guarded/status", {"status": "inactive"}),
        ("/workflows/guarded/run", {"var.amount": "5"}),
    ]:
        response = await ui.client.post(url, data=data, follow_redirects=False)
        assert response.status_code == 403, url
    stored = await ui.client.get("/api/v1/workflows/guarded", headers=ADMIN)
    assert stored.json()["status"] == "active"
    assert (await ui.client.get("/api/v1/workflows/sneaky", headers=ADMIN)).status_code == 404


# -- the workflow page -----------------------------------------------------------------------------


async def test_the_workflow_page_shows_graph_nodes_triggers_and_versions(ui: SignedIn) -> None:
    await create(ui, definition("shown"))
    await create(ui, definition("shown", version="1.1.0", description="Second"))
    response = await get(ui, "/workflows/shown")
    assert response.status_code == 200
    page = response.text
    shown = text(response)
    # Header and facts of the newest version.
    assert "Order check" in shown
    assert "1.1.0" in shown
    assert "Second" in shown
    assert "sales-team" in shown
    # The graph: one box per node, typed, each a link selecting it; branch labels.
    assert '<svg class="graph"' in page
    assert page.count('class="node type-') == 3
    assert 'class="node type-decision"' in page
    assert '<a href="?node=check">' in page
    assert ">true</text>" in page
    assert ">false</text>" in page
    # Nodes and variables.
    assert "Big order?" in shown
    assert "amount" in shown
    # The cron trigger with its next fire times.
    assert "nightly" in shown
    assert "0 3 * * *" in shown
    fires = re.findall(r'<time datetime="(\d{4}-\d\d-\d\dT03:00:00[^"]*)"', page)
    assert len(fires) == 3
    # Versions, newest first, with the compare form; executions link.
    assert re.search(r'version=1\.1\.0".*?version=1\.0\.0"', page, re.S)
    assert 'action="/workflows/shown/diff"' in page
    assert 'href="/executions?workflow_id=shown"' in page
    # An older version on request; a node selected by its link.
    older = await get(ui, "/workflows/shown", version="1.0.0", node="big")
    assert older.status_code == 200
    assert "Checks big orders" in text(older)
    assert 'class="node type-transform selected"' in older.text
    assert '<a href="?version=1.0.0&amp;node=big" aria-current="true">' in older.text
    assert "amount * 2" in text(older)


async def test_a_missing_workflow_or_version_is_not_found(ui: SignedIn) -> None:
    assert (await get(ui, "/workflows/nope")).status_code == 404
    await create(ui, definition("there"))
    assert (await get(ui, "/workflows/there", version="9.9.9")).status_code == 404
    assert (
        await get(ui, "/workflows/there/diff", **{"from": "1.0.0", "to": "2.0.0"})
    ).status_code == 404


async def test_the_diff_page_shows_both_versions_side_by_side(ui: SignedIn) -> None:
    first = definition("evolving")
    await create(ui, first)
    second = copy.deepcopy(first)
    second["version"] = "2.0.0"
    second["nodes"][1]["config"]["expression"] = "amount * 3"
    second["nodes"].append(
        {
            "id": "extra",
            "name": "Extra",
            "type": "transform",
            "config": {"transform_type": "expression", "expression": "1"},
        }
    )
    second["edges"].append({"from_node": "big", "to_node": "extra"})
    await create(ui, second)
    response = await get(ui, "/workflows/evolving/diff", **{"from": "1.0.0", "to": "2.0.0"})
    assert response.status_code == 200
    page = response.text
    changed = [
        row
        for row in re.findall(r'<tr class="changed">(.*?)</tr>', page, re.S)
        if "amount * 3" in row
    ]
    assert len(changed) == 1, page
    old_cell, new_cell = re.findall(r'<td class="(?:old|new)">(.*?)</td>', changed[0], re.S)
    assert "amount * 2" in old_cell
    assert "amount * 3" in new_cell
    assert '<tr class="added">' in page
    assert 'class="skipped"' in page  # long unchanged runs are collapsed
    shown = text(response)
    assert "1 node added" in shown
    assert "extra" in shown
    assert "nodes/1" not in shown  # the structured summary names nodes, not indices
    # Without from/to: the two newest versions.
    default = await get(ui, "/workflows/evolving/diff")
    assert "Changes from 1.0.0 to 2.0.0" in text(default)


# -- the run form ----------------------------------------------------------------------------------


async def test_the_run_form_is_built_from_the_variables(ui: SignedIn) -> None:
    await create(ui, definition("runnable"))
    page = (await get(ui, "/workflows/runnable")).text
    assert re.search(
        r'<input type="number" id="run-\d+" name="var.amount" value="" step="any"[^>]* required>',
        page,
    )
    assert re.search(r'<input type="text" id="run-\d+" name="var.customer" value="acme"', page)
    assert re.search(r'<select id="run-\d+" name="var.rush"', page)
    assert re.search(r'<option value="false" selected>false</option>', page)
    assert re.search(r'<textarea id="run-\d+" name="var.items"[^>]*>\[\]</textarea>', page)
    assert '<label for="run-priority">Priority</label>' in page
    for label_for in re.findall(r'<label for="(run-\d+)">', page):
        assert f'id="{label_for}"' in page


async def test_running_from_the_form_starts_an_execution(ui: SignedIn) -> None:
    await create(ui, definition("go"))
    response = await ui.post_form(
        "/workflows/go/run",
        {
            "var.amount": "250",
            "var.customer": "",
            "var.rush": "true",
            "var.items": "[1, 2]",
            "priority": "high",
        },
    )
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/executions/([^?]+)\?notice=started", response.headers["location"])
    assert found, response.headers["location"]
    execution = await ui.client.get(f"/api/v1/workflows/executions/{found.group(1)}", headers=ADMIN)
    assert execution.status_code == 200
    body = execution.json()
    assert body["workflow_id"] == "go"
    assert body["input"] == {"amount": 250, "rush": True, "items": [1, 2]}
    assert body["priority"] == "high"
    assert body["triggered_by"] == "mia"
    audit = await ui.client.get(
        "/api/v1/audit", params={"action": "execution.start"}, headers=ADMIN
    )
    assert any(e.get("target_id") == "go" and e["actor"] == "mia" for e in audit.json()["entries"])


async def test_a_bad_value_is_shown_next_to_its_field_with_what_was_typed(ui: SignedIn) -> None:
    await create(ui, definition("picky"))
    response = await ui.post_form(
        "/workflows/picky/run", {"var.amount": "lots", "var.items": "[1, ", "var.customer": "zed"}
    )
    assert response.status_code == 422
    page = response.text
    assert "&#39;lots&#39; is not a number" in page
    assert "not valid JSON" in page
    assert 'name="var.amount" value="lots"' in page
    assert 'name="var.customer" value="zed"' in page
    assert re.search(r'name="var.items"[^>]*>\[1, </textarea>', page)
    assert 'aria-invalid="true"' in page
    # A required variable left empty, shown on its field.
    missing = await ui.post_form("/workflows/picky/run", {"var.amount": ""})
    assert missing.status_code == 422
    error = re.search(
        r'<span class="field-error" id="run-(\d+)-error">([^<]*)</span>', missing.text
    )
    assert error, missing.text
    assert "required" in html.unescape(error.group(2))
    listed = await ui.client.get("/api/v1/workflows/picky/executions", headers=ADMIN)
    assert listed.json()["total"] == 0


async def test_running_an_inactive_workflow_says_why(ui: SignedIn) -> None:
    await create(ui, definition("asleep", status="inactive"))
    response = await ui.post_form("/workflows/asleep/run", {"var.amount": "1"})
    assert response.status_code == 409
    assert "no active version" in text(response)


# -- escaping --------------------------------------------------------------------------------------


async def test_hostile_names_are_shown_as_text(ui: SignedIn) -> None:
    document = definition("hostile", name=HOSTILE, description=HOSTILE, tags=[HOSTILE[:40]])
    document["nodes"][0]["name"] = HOSTILE
    document["edges"][0]["label"] = HOSTILE
    document["variables"]["amount"]["description"] = HOSTILE
    await create(ui, document)
    for url in ["/workflows", "/workflows/hostile", "/workflows/hostile?node=check"]:
        response = await get(ui, url)
        assert response.status_code == 200, url
        assert "<img" not in response.text, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in response.text, url
    invalid = copy.deepcopy(document)
    invalid["id"] = "hostile-2"
    invalid["nodes"][0]["type"] = HOSTILE
    refused = await ui.post_form("/workflows", {"definition": json.dumps(invalid)})
    assert refused.status_code == 422
    assert "<img" not in refused.text
