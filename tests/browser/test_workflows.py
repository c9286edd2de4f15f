"""The Workflows pages in a real browser: upload (paste and file), errors by node, the
run form, the version diff, escaping in the graph, and the phone-width layout."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from playwright.async_api import Browser, FilePayload, Page, expect

from tests.browser.conftest import PHONE, Dashboard, new_page, sign_in

HOSTILE = "<img src=x onerror=alert(1)>"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def definition(workflow_id: str, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": workflow_id,
        "name": "Browser order check",
        "version": "1.0.0",
        "variables": {
            "amount": {"name": "amount", "type": "number", "required": True},
            "note": {"name": "note", "type": "string", "default_value": "hello"},
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
                "name": "Double it",
                "type": "transform",
                "config": {"transform_type": "expression", "expression": "amount * 2"},
            },
            {
                "id": "small",
                "name": "Keep it",
                "type": "transform",
                "config": {"transform_type": "expression", "expression": "amount"},
            },
        ],
        "edges": [
            {"from_node": "check", "to_node": "big", "condition": "true"},
            {"from_node": "check", "to_node": "small", "condition": "false"},
        ],
    }
    document.update(fields)
    return document


async def open_upload(page: Page) -> None:
    await page.goto("/workflows")
    upload = page.locator("details.upload")
    if await upload.get_attribute("open") is None:
        await page.get_by_text("Upload a workflow").click()
    await expect(page.get_by_label("…or paste the definition")).to_be_visible()


async def test_pasting_an_invalid_definition_shows_the_errors_by_node(
    page: Page, dashboard: Dashboard
) -> None:
    await sign_in(page, dashboard, "manager")
    await open_upload(page)
    document = definition(unique("broken"))
    document["nodes"].append({"id": "fetch", "name": "Fetch it", "type": "api", "config": {}})
    document["edges"].append({"from_node": "check", "to_node": "ghost"})
    pasted = json.dumps(document, indent=2)
    await page.get_by_label("…or paste the definition").fill(pasted)
    await page.get_by_role("button", name="Validate and save").click()

    errors = page.locator("#upload-errors")
    await expect(errors).to_contain_text("The definition is invalid")
    node_group = errors.locator('section.problem-group[data-node-id="fetch"]')
    await expect(node_group).to_contain_text("Fetch it")
    await expect(node_group).to_contain_text("(api)")
    workflow_group = errors.locator('section.problem-group[data-node-id=""]')
    await expect(workflow_group).to_contain_text("ghost")
    # The text is still there to fix.
    await expect(page.get_by_label("…or paste the definition")).to_have_value(pasted)


async def test_upload_run_and_compare_versions(page: Page, dashboard: Dashboard) -> None:
    await sign_in(page, dashboard, "manager")
    workflow_id = unique("browser-run")

    # Version 1 from a file.
    await open_upload(page)
    payload: FilePayload = {
        "name": f"{workflow_id}.json",
        "mimeType": "application/json",
        "buffer": json.dumps(definition(workflow_id)).encode(),
    }
    await page.get_by_label("JSON file").set_input_files(files=[payload])
    await page.get_by_role("button", name="Validate and save").click()
    await expect(page).to_have_url(re.compile(rf"/workflows/{workflow_id}\?notice=uploaded$"))
    await expect(page.get_by_role("status")).to_contain_text("The workflow was saved.")
    graph = page.locator("svg.graph")
    await expect(graph.locator("g.node")).to_have_count(3)
    await expect(graph).to_contain_text("Big order?")

    # Version 2 pasted.
    second = definition(workflow_id, version="2.0.0", name="Browser order check v2")
    second["nodes"][1]["config"]["expression"] = "amount * 3"
    await open_upload(page)
    await page.get_by_label("…or paste the definition").fill(json.dumps(second, indent=2))
    await page.get_by_role("button", name="Validate and save").click()
    await expect(page).to_have_url(re.compile(rf"/workflows/{workflow_id}\?notice=uploaded$"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text("v2")

    # The diff, side by side.
    await page.get_by_role("button", name="Compare").click()
    await expect(page).to_have_url(re.compile(r"/diff\?from=1\.0\.0&to=2\.0\.0$"))
    changed = page.locator("table.diff tr.changed").filter(has_text="amount * 3")
    await expect(changed.locator("td.old")).to_contain_text("amount * 2")
    await expect(changed.locator("td.new")).to_contain_text("amount * 3")
    old_box = await changed.locator("td.old").bounding_box()
    new_box = await changed.locator("td.new").bounding_box()
    assert old_box is not None
    assert new_box is not None
    assert new_box["x"] > old_box["x"] + old_box["width"] - 1  # two columns, old | new

    # Run it from the generated form.
    await page.goto(f"/workflows/{workflow_id}")
    await expect(page.get_by_label("note")).to_have_value("hello")
    await page.get_by_label("amount").fill("250")
    await page.get_by_label("Priority").select_option("high")
    await page.get_by_role("button", name="Run workflow").click()
    await expect(page).to_have_url(re.compile(r"/executions/[^/?]+\?notice=started$"))
    execution_id = page.url.rsplit("/", 1)[1].split("?")[0]
    with dashboard.api() as api:
        started = api.get(f"/api/v1/workflows/executions/{execution_id}").json()
    assert started["workflow_id"] == workflow_id
    assert started["input"] == {"amount": 250, "note": "hello"}  # the default, pre-filled
    assert started["triggered_by"] == "manager"


async def test_a_missing_required_value_is_shown_next_to_its_field(
    page: Page, dashboard: Dashboard
) -> None:
    workflow_id = unique("browser-bad")
    with dashboard.api() as api:
        assert api.post("/api/v1/workflows", json=definition(workflow_id)).status_code == 201
    await sign_in(page, dashboard, "operator")
    await page.goto(f"/workflows/{workflow_id}")
    # The form says novalidate, so the server's message is the one people see.
    await page.get_by_label("amount").fill("")
    await page.get_by_role("button", name="Run workflow").click()
    field = page.locator(".field.has-error")
    await expect(field).to_contain_text("required: give it a number value")
    await expect(page.get_by_label("note")).to_have_value("hello")


async def test_a_hostile_node_name_is_shown_as_text(page: Page, dashboard: Dashboard) -> None:
    workflow_id = unique("browser-hostile")
    document = definition(workflow_id, name=HOSTILE)
    document["nodes"][0]["name"] = HOSTILE
    document["edges"][0]["label"] = HOSTILE
    with dashboard.api() as api:
        assert api.post("/api/v1/workflows", json=document).status_code == 201
    await sign_in(page, dashboard, "viewer")
    await page.goto(f"/workflows/{workflow_id}")
    graph = page.locator("svg.graph")
    await expect(graph.locator("text.name").first).to_have_text(HOSTILE[:19] + "…")
    await expect(graph.locator("g.edge-label text").first).to_have_text(HOSTILE)
    await expect(graph.locator("img")).to_have_count(0)
    await expect(page.locator("main img")).to_have_count(0)
    await expect(page.get_by_role("heading", level=1)).to_contain_text(HOSTILE)
    await page.goto("/workflows")
    await expect(page.get_by_role("link", name=HOSTILE)).to_be_visible()


async def test_the_pages_fit_a_phone(browser: Browser, dashboard: Dashboard) -> None:
    tab = await new_page(browser, dashboard, PHONE)
    try:
        await sign_in(tab, dashboard, "manager")
        await tab.goto("/workflows")
        await expect(tab.get_by_role("heading", name="Workflows")).to_be_visible()
        width = await tab.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
        # The workflow page: the graph scrolls inside its box instead of the page.
        await tab.goto("/workflows/data-processing-pipeline")
        await expect(tab.locator("svg.graph")).to_be_visible()
        width = await tab.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
        scroller = tab.locator(".graph-scroll")
        sizes = await scroller.evaluate("e => [e.scrollWidth, e.clientWidth]")
        assert sizes[0] > sizes[1]  # the graph keeps its size and scrolls
    finally:
        await tab.context.close()
