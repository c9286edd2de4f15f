"""Approvals in a real browser: a person finds their task in the inbox, opens it, fills
the form and decides with an outcome button, and the execution moves on; the demo's
document approval (two human reviews) started from the Run form and decided by the
manager and then the admin, all in the dashboard; a
refused form; a POST without the CSRF token; the task page at phone width.

Workflows are uploaded to the shared demo server with unique ids, and nothing assumes
how many tasks the server already has.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import PHONE, Dashboard, new_page, sign_in

POLL_SECONDS = 0.05
WAIT_SECONDS = 30


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _review_workflow(workflow_id: str, title: str) -> dict[str, Any]:
    """A review offered to operators with a small form, then one more step."""
    form = [
        {"name": "amount", "label": "Amount", "type": "number", "required": True},
        {"name": "notes", "label": "Notes", "type": "textarea"},
    ]
    review = {
        "id": "review",
        "name": "review",
        "type": "human_task",
        "config": {"title": title, "candidate_roles": ["operator"], "form": form},
    }
    after = {
        "id": "after",
        "name": "after",
        "type": "transform",
        "config": {"transform_type": "expression", "expression": "'done'"},
    }
    return {
        "id": workflow_id,
        "name": f"Browser approvals {workflow_id}",
        "nodes": [review, after],
        "edges": [{"from_node": "review", "to_node": "after"}],
    }


def _start(dashboard: Dashboard, workflow_id: str, **inputs: Any) -> str:
    with dashboard.api() as api:
        started = api.post(f"/api/v1/workflows/{workflow_id}/execute", json={"input": inputs})
        assert started.status_code == 201, started.text
        return str(started.json()["id"])


def _upload_and_start(dashboard: Dashboard, document: dict[str, Any]) -> str:
    with dashboard.api() as api:
        created = api.post("/api/v1/workflows", json=document)
        assert created.status_code == 201, created.text
    return _start(dashboard, document["id"])


async def _poll(dashboard: Dashboard, path: str, done: Any, what: str) -> Any:
    """GET ``path`` through the API until ``done(body)`` holds (the server works on its
    own time: this waits for it, it does not stand in for it)."""
    deadline = time.monotonic() + WAIT_SECONDS
    with dashboard.api() as api:
        while True:
            response = api.get(path)
            assert response.status_code == 200, response.text
            body = response.json()
            if done(body):
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not happen within {WAIT_SECONDS}s: {body}")
            await asyncio.sleep(POLL_SECONDS)


async def _open_tasks(dashboard: Dashboard, execution_id: str, node_id: str) -> dict[str, Any]:
    """The open task of ``node_id`` once the execution waits on it."""
    await _poll(
        dashboard,
        f"/api/v1/workflows/executions/{execution_id}",
        lambda e: any(w.get("node_id") == node_id for w in e.get("waiting_on") or []),
        f"execution {execution_id} waiting on {node_id}",
    )
    listing = await _poll(
        dashboard,
        f"/api/v1/tasks?execution_id={execution_id}&status=open",
        lambda body: any(t["node_id"] == node_id for t in body["tasks"]),
        f"an open task for {node_id}",
    )
    return next(t for t in listing["tasks"] if t["node_id"] == node_id)


async def _execution_status(dashboard: Dashboard, execution_id: str, status: str) -> None:
    await _poll(
        dashboard,
        f"/api/v1/workflows/executions/{execution_id}",
        lambda e: e["status"] == status,
        f"execution {execution_id} {status}",
    )


async def test_an_operator_decides_a_task_from_the_inbox(page: Page, dashboard: Dashboard) -> None:
    workflow_id = _unique("approve")
    title = f"Check the invoice of {workflow_id}"
    execution_id = _upload_and_start(dashboard, _review_workflow(workflow_id, title))
    await _open_tasks(dashboard, execution_id, "review")

    await sign_in(page, dashboard, "operator")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    await expect(page.get_by_role("heading", name="Waiting for me")).to_be_visible()
    await page.get_by_role("link", name=title).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(title)

    # The required field is left empty: the server refuses, the typed notes are kept.
    # (The browser's own check would stop the empty required field first: turn it off.)
    await page.evaluate("document.querySelector('form.decide').noValidate = true")
    await page.get_by_label("Notes").fill("page 3 checked")
    await page.get_by_role("button", name="Approved").click()
    await expect(page.locator(".field-error")).to_contain_text("'Amount' is required")
    await expect(page.get_by_label("Notes")).to_have_value("page 3 checked")

    await page.get_by_label("Amount").fill("125.50")
    await page.get_by_label("Comment").fill("Looks right to me")
    await page.get_by_role("button", name="Approved").click()
    await expect(page.get_by_role("status")).to_have_text("Your decision was recorded.")
    decided = page.get_by_role("region", name="Decided")
    await expect(decided).to_contain_text("approved by operator")
    await expect(decided).to_contain_text("Looks right to me")
    await expect(page.get_by_role("button", name="Approved")).to_have_count(0)

    await _execution_status(dashboard, execution_id, "completed")
    with dashboard.api() as api:
        execution = api.get(f"/api/v1/workflows/executions/{execution_id}").json()
    review = next(n for n in execution["executed_nodes"] if n["node_id"] == "review")
    assert (review["output"]["amount"], review["output"]["notes"]) == (125.5, "page 3 checked")
    await page.get_by_role("link", name=execution_id).click()
    await expect(page).to_have_url(f"{dashboard.url}/executions/{execution_id}")


async def test_the_demo_document_approval_is_decided_by_two_people(
    browser: Browser, page: Page, dashboard: Dashboard
) -> None:
    """The approval demo done entirely in the dashboard: the manager starts it from the
    workflow page's Run form and does the first review; the admin gives the final
    approval (not the person who started it: four eyes); the author's mail arrives."""
    document = _unique("DOC")
    await sign_in(page, dashboard, "manager")  # the default first reviewer
    await page.goto("/workflows/approval-workflow")
    await page.get_by_label("document_id").fill(document)
    await page.get_by_role("button", name="Run workflow").click()
    await expect(page).to_have_url(re.compile(r"/executions/[^/?]+\?notice=started$"))
    execution_id = page.url.rsplit("/", 1)[1].split("?")[0]
    await _open_tasks(dashboard, execution_id, "initial-review")

    await page.goto("/approvals")
    await page.get_by_role("link", name=f"Review document {document}").click()
    await expect(page.locator(".description")).to_contain_text(f"Please review document {document}")
    await page.get_by_label("Notes for the approver").fill("Section 2 needs a second look")
    await page.get_by_role("button", name="Approved").click()
    await expect(page.get_by_role("region", name="Decided")).to_contain_text("approved by manager")

    await _open_tasks(dashboard, execution_id, "final-approval")
    admin = await new_page(browser, dashboard, {"width": 1280, "height": 900})
    try:
        await sign_in(admin, dashboard, "admin")  # the default final approver
        await admin.goto("/approvals")
        await admin.get_by_role("link", name=f"Final approval of document {document}").click()
        # The first review's notes reach the final approver through the description.
        await expect(admin.locator(".description")).to_contain_text("Section 2 needs a second look")
        await admin.get_by_role("button", name="Approved").click()
        await expect(admin.get_by_role("status")).to_have_text("Your decision was recorded.")
    finally:
        await admin.context.close()
    await _execution_status(dashboard, execution_id, "completed")

    await page.goto("/approvals?view=decided")
    final = page.get_by_role("link", name=f"Final approval of document {document}")
    await expect(final).to_be_visible()

    # The author's notice went to the demo's SMTP sink: the Mailbox page shows it.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Mailbox").click()
    notice = page.get_by_text(f"Document {document} approved")
    await expect(notice).to_be_visible()
    await notice.click()  # opens the message
    await expect(page.locator("pre.mail-text").first).to_contain_text("was approved by admin")


async def test_a_form_posted_without_the_csrf_token_is_refused(
    page: Page, dashboard: Dashboard
) -> None:
    workflow_id = _unique("csrf")
    title = f"Do not decide {workflow_id}"
    execution_id = _upload_and_start(dashboard, _review_workflow(workflow_id, title))
    task = await _open_tasks(dashboard, execution_id, "review")

    await sign_in(page, dashboard, "operator")
    await page.goto(f"/tasks/{task['id']}")
    await page.get_by_label("Amount").fill("1")
    await page.evaluate("document.querySelector('form.decide input[name=csrf_token]').remove()")
    async with page.expect_response(lambda r: r.url.endswith("/complete")) as answer:
        await page.get_by_role("button", name="Approved").click()
    assert (await answer.value).status == 403
    await expect(page.get_by_role("alert")).to_contain_text("CSRF token missing")

    # The same with the session cookie but no token, outside any form.
    refused = await page.request.post(
        f"/tasks/{task['id']}/complete", form={"outcome": "approved", "data.amount": "1"}
    )
    assert refused.status == 403
    assert "CSRF token missing" in await refused.text()
    with dashboard.api() as api:
        assert api.get(f"/api/v1/tasks/{task['id']}").json()["status"] == "open"


async def test_the_task_page_fits_a_phone(browser: Browser, dashboard: Dashboard) -> None:
    workflow_id = _unique("phone")
    title = f"Approve on the go {workflow_id}"
    execution_id = _upload_and_start(dashboard, _review_workflow(workflow_id, title))
    task = await _open_tasks(dashboard, execution_id, "review")
    phone = await new_page(browser, dashboard, PHONE)
    try:
        await sign_in(phone, dashboard, "operator")
        await phone.goto(f"/tasks/{task['id']}")
        await expect(phone.get_by_role("button", name="Approved")).to_be_visible()
        await expect(phone.get_by_label("Amount")).to_be_visible()
        width = await phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"
        await phone.goto("/approvals")
        await expect(phone.get_by_role("link", name=title)).to_be_visible()
    finally:
        await phone.context.close()
