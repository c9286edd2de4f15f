"""The executions pages in a real browser: the execution page live while it runs,
choosing a node without leaving the page, cancelling through the confirmation, the
list's status filter, and the page at phone width.

Workflows are uploaded to the shared demo server with unique ids; nothing assumes how
many executions the server already has.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import PHONE, Dashboard, new_page, sign_in


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _transform(node_id: str, expression: str) -> dict[str, Any]:
    config = {"transform_type": "expression", "expression": expression}
    return {"id": node_id, "name": node_id, "type": "transform", "config": config}


def _timer_workflow(workflow_id: str, seconds: float) -> dict[str, Any]:
    return {
        "id": workflow_id,
        "name": f"Browser test {workflow_id}",
        "nodes": [
            _transform("prepare", "1 + 1"),
            {"id": "pause", "name": "pause", "type": "timer", "config": {"duration": seconds}},
            _transform("finish", "'done'"),
        ],
        "edges": [
            {"from_node": "prepare", "to_node": "pause"},
            {"from_node": "pause", "to_node": "finish"},
        ],
    }


def _start(dashboard: Dashboard, document: dict[str, Any]) -> str:
    """Upload ``document`` and start it; the new execution's id."""
    with dashboard.api() as api:
        created = api.post("/api/v1/workflows", json=document)
        assert created.status_code == 201, created.text
        started = api.post(f"/api/v1/workflows/{document['id']}/execute", json={})
        assert started.status_code == 201, started.text
        return str(started.json()["id"])


async def _open(page: Page, execution_id: str, query: str = "") -> None:
    await page.goto(f"/executions/{execution_id}{query}")
    await expect(page.get_by_role("heading", level=1)).to_be_visible()


async def test_the_execution_page_goes_from_running_to_completed_without_a_reload(
    page: Page, dashboard: Dashboard
) -> None:
    execution_id = _start(dashboard, _timer_workflow(_unique("live"), 3))
    await sign_in(page, dashboard, "operator")
    await _open(page, execution_id)
    status = page.locator(".live-status .status")
    await expect(status).to_have_text("running")
    url = page.url
    await page.evaluate("window.__marker = 1")

    await expect(status).to_have_text("completed")
    # The same document all along: htmx swapped the parts, the page never reloaded.
    assert await page.evaluate("window.__marker") == 1
    assert page.url == url
    await expect(page.locator("#execution-timeline .bar")).to_have_count(3)
    # Once it ended the page stops polling, and the actions fit the new status.
    await expect(page.locator("#execution-live[hx-trigger]")).to_have_count(0)
    await expect(page.get_by_text("Restart…")).to_be_visible()
    await expect(page.get_by_text("Cancel…")).to_have_count(0)


async def test_choosing_a_node_shows_its_details_in_place(page: Page, dashboard: Dashboard) -> None:
    execution_id = _start(dashboard, _timer_workflow(_unique("select"), 0))
    await sign_in(page, dashboard, "viewer")
    await _open(page, execution_id)
    await expect(page.locator(".live-status .status")).to_have_text("completed")
    await page.evaluate("window.__marker = 1")

    await page.locator("#execution-timeline").get_by_role("link", name="prepare").click()
    panel = page.locator("#node-panel")
    await expect(panel.get_by_role("heading", name="Node prepare")).to_be_visible()
    await expect(panel.get_by_label("output of attempt 1")).to_contain_text('"result": 2')
    await expect(page).to_have_url(
        f"{dashboard.url}/executions/{execution_id}?node=prepare#node-panel"
    )
    assert await page.evaluate("window.__marker") == 1
    # The graph marks the chosen node.
    await expect(
        page.locator('#execution-graph g.node.selected[data-node-id="prepare"]')
    ).to_have_count(1)
    # A viewer gets no control buttons.
    await expect(page.locator("details.confirm")).to_have_count(0)


async def test_the_raw_json_link_in_the_node_panel_opens_the_json(
    page: Page, dashboard: Dashboard
) -> None:
    """The node panel is swapped in by htmx (boosted links); its raw-JSON link must
    leave the page for the JSON instead of being swapped into the panel."""
    workflow_id = _unique("raw")
    document = {
        "id": workflow_id,
        "name": f"Browser test {workflow_id}",
        "nodes": [_transform("big", "'x' * 9000")],
        "edges": [],
    }
    execution_id = _start(dashboard, document)
    await sign_in(page, dashboard, "viewer")
    await _open(page, execution_id)
    await expect(page.locator(".live-status .status")).to_have_text("completed")

    await page.locator("#execution-timeline").get_by_role("link", name="big").click()
    panel = page.locator("#node-panel")
    await expect(panel.get_by_role("heading", name="Node big")).to_be_visible()
    await panel.get_by_role("link", name="Open the raw JSON").first.click()
    await expect(page).to_have_url(f"{dashboard.url}/executions/{execution_id}/nodes/big/raw")
    body = await page.locator("body").inner_text()
    assert execution_id in body
    assert "x" * 9000 in body  # the whole output, not the page's 4,000-character preview
    await page.wait_for_load_state("networkidle")  # the icon request too: no console error


async def test_cancelling_through_the_confirmation(page: Page, dashboard: Dashboard) -> None:
    execution_id = _start(dashboard, _timer_workflow(_unique("cancel"), 3600))
    await sign_in(page, dashboard, "operator")
    await _open(page, execution_id)
    await expect(page.locator(".live-status .status")).to_have_text("running")

    await page.get_by_text("Cancel…").click()
    await page.get_by_role("button", name="Yes, cancel").click()
    await expect(page.get_by_role("status").filter(has_text="cancelled")).to_be_visible()
    await expect(page.locator(".live-status .status")).to_have_text("cancelled")
    await expect(page.get_by_text("Cancel…")).to_have_count(0)


async def test_the_list_filters_by_status(page: Page, dashboard: Dashboard) -> None:
    waiting = _start(dashboard, _timer_workflow(_unique("listed"), 3600))
    await sign_in(page, dashboard, "viewer")
    await page.goto("/executions")
    await expect(page.get_by_role("heading", name="Executions")).to_be_visible()

    await page.get_by_label("Status").select_option("running")
    await page.get_by_role("button", name="Filter").click()
    await expect(page).to_have_url(re.compile(r"/executions\?status=running&"))
    await expect(page.get_by_label("Status")).to_have_value("running")
    badges = page.locator("table.executions td .status")
    assert await badges.count() >= 1
    for text in await badges.all_inner_texts():
        assert text == "running"
    await expect(page.locator(f'a[href="/executions/{waiting}"]')).to_have_count(1)

    await page.get_by_label("Status").select_option("cancelled")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_label("Status")).to_have_value("cancelled")
    await expect(page.locator(f'a[href="/executions/{waiting}"]')).to_have_count(0)


async def test_the_execution_page_fits_a_phone(browser: Browser, dashboard: Dashboard) -> None:
    # A failed node with a long unbroken error, and a manager: rerun and skip forms too.
    long_word = "x" * 300
    failing = {
        "id": _unique("phone"),
        "name": "Phone test",
        "nodes": [
            {**_transform("boom", f"int('{long_word}')"), "retry_policy": {"max_attempts": 1}}
        ],
        "edges": [],
    }
    execution_id = _start(dashboard, failing)
    tab = await new_page(browser, dashboard, PHONE)
    try:
        await sign_in(tab, dashboard, "manager")
        await _open(tab, execution_id, "?node=boom")
        await expect(tab.locator(".live-status .status")).to_have_text("failed")
        await expect(tab.get_by_text("Skip…")).to_be_visible()
        await expect(tab.get_by_text("Rerun from here…")).to_be_visible()
        # Wide things (graph, timeline, JSON) scroll inside their own boxes; the page
        # itself never scrolls sideways.
        assert await _sideways_overflow(tab) <= 0
        await tab.get_by_text("Skip…").click()
        await expect(tab.get_by_label("Output to record (JSON object)")).to_be_visible()
        assert await _sideways_overflow(tab) <= 0
        await tab.goto("/executions")
        assert await _sideways_overflow(tab) <= 0
    finally:
        await tab.context.close()


async def _sideways_overflow(tab: Page) -> int:
    scrolled = await tab.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return int(scrolled)
