"""The approvals inbox and the task page, used as a browser does (SQLite and PostgreSQL).

A workflow whose ``human_task`` is offered to the role ``operator`` is started through
the API; the people of the ``ui`` fixture (``mia`` manager, ``otto`` operator, ``vera``
viewer) then read their inbox and decide the task through the page's form, and the
execution is checked through the API.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import update

from server.store.database import Database
from server.store.models import HumanTaskRow, utcnow
from tests.integration.engine.conftest import (
    BASE,
    edge,
    get_execution,
    node,
    script,
    wait_for_status,
    workflow,
)
from tests.integration.tasks.conftest import TASKS, parked
from tests.integration.ui.conftest import ADMIN, SignedIn, switch_user

HTML = {"Accept": "text/html"}
HOSTILE = "<script>alert(1)</script>"
FORM = [
    {"name": "amount", "label": "Amount", "type": "number", "required": True},
    {
        "name": "reason",
        "label": "Reason",
        "type": "select",
        "options": ["budget", {"value": "risk", "label": "Too risky"}],
    },
    {"name": "urgent", "label": "Urgent", "type": "boolean"},
    {"name": "notes", "label": "Notes", "type": "textarea"},
    {"name": "pay_by", "label": "Pay by", "type": "date"},
]


def review_workflow(workflow_id: str = "review-wf", **config: Any) -> dict[str, Any]:
    """A review offered to operators (outcomes approve/reject), then one more step."""
    review = node(
        "review",
        "human_task",
        {
            "title": "Review ${doc}",
            "description": "Please check ${doc}.",
            "candidate_roles": ["operator"],
            "outcomes": ["approve", "reject"],
            "form": FORM,
            **config,
        },
    )
    return workflow(
        [review, script("after", "done = true")],
        [edge("review", "after")],
        id=workflow_id,
        variables={"doc": {"name": "doc", "type": "string", "default_value": "D-1"}},
    )


async def open_task(ui: SignedIn, document: dict[str, Any], **inputs: Any) -> dict[str, Any]:
    """Upload ``document``, start it and return its task once the execution waits on it."""
    client = ui.client
    uploaded = await client.post(BASE, json=document, headers=ADMIN)
    assert uploaded.status_code in (200, 201), uploaded.text
    body = {"input": inputs} if inputs else {}
    started = await client.post(f"{BASE}/{document['id']}/execute", json=body, headers=ADMIN)
    assert started.status_code == 201, started.text
    execution_id = started.json()["id"]
    await parked(client, execution_id)  # the node waits: its task is open
    found = await client.get(TASKS, params={"execution_id": execution_id}, headers=ADMIN)
    assert found.status_code == 200, found.text
    (task,) = found.json()["tasks"]
    return dict(task)


async def page(ui: SignedIn, url: str, **params: Any) -> httpx.Response:
    response: httpx.Response = await ui.client.get(url, params=params or None, headers=HTML)
    return response


def text(response: httpx.Response) -> str:
    """The page as text, tags removed (for finding sentences)."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def task_links(response: httpx.Response) -> list[str]:
    return re.findall(r'href="/tasks/([^"?]+)"', response.text)


# --- the inbox --------------------------------------------------------------------------


async def test_the_task_waits_in_the_operators_inbox_and_not_in_the_viewers(
    ui: SignedIn,
) -> None:
    task = await open_task(ui, review_workflow())
    everything = await page(ui, "/approvals", view="all")  # mia, a manager
    assert everything.status_code == 200, everything.text
    assert task["id"] in task_links(everything)
    assert "All open tasks" in text(everything)

    await switch_user(ui, "otto")
    inbox = await page(ui, "/approvals")
    assert inbox.status_code == 200
    assert task_links(inbox) == [task["id"]]
    row = text(inbox)
    assert "Review D-1" in row
    assert "review-wf" in row
    assert "roles: operator" in row
    assert f'href="/executions/{task["execution_id"]}"' in inbox.text
    assert "All open tasks" not in row  # an operator's tabs: mine and decided

    await switch_user(ui, "vera")
    viewer = await page(ui, "/approvals")
    assert viewer.status_code == 200
    assert task_links(viewer) == []
    assert "No open task is assigned to you" in text(viewer)


async def test_the_inbox_pages_in_the_database(ui: SignedIn) -> None:
    document = review_workflow()
    first = await open_task(ui, document)
    for _ in range(2):
        await open_task(ui, document)
    await switch_user(ui, "otto")
    listing = await ui.client.get("/approvals", params={"offset": 2}, headers=HTML)
    assert listing.status_code == 200
    assert task_links(listing) == [first["id"]]  # newest first: the first one is last
    assert text(listing).count("Waiting for me 3") == 1  # the tab counts all of them
    assert (await page(ui, "/approvals", view="nonsense")).status_code == 400


async def test_an_overdue_task_is_marked(ui: SignedIn) -> None:
    document = review_workflow(due_date="1h")
    task = await open_task(ui, document)
    await switch_user(ui, "otto")
    assert "overdue" not in text(await page(ui, "/approvals"))
    database_shift = {"due_at": utcnow() - timedelta(minutes=1)}
    await _set_task(ui, task["id"], database_shift)
    inbox = await page(ui, "/approvals")
    assert 'class="overdue"' in inbox.text
    assert "overdue" in text(inbox)


# --- the task page ----------------------------------------------------------------------


async def test_the_task_page_renders_the_form_and_one_button_per_outcome(ui: SignedIn) -> None:
    task = await open_task(ui, review_workflow())
    await switch_user(ui, "otto")
    shown = await page(ui, f"/tasks/{task['id']}")
    assert shown.status_code == 200, shown.text
    html = shown.text
    assert "Please check D-1." in html
    for label, kind in (("Amount", "number"), ("Pay by", "date")):
        found = re.search(rf'<label for="(field-\d+)">{label}', html)
        assert found, label
        assert re.search(rf'<input type="{kind}"[^>]* id="{found.group(1)}"', html), label
    assert re.search(r'<label for="field-0">Amount <span class="required"', html)
    assert re.search(r'<input type="number"[^>]*name="data.amount"[^>]* required', html)
    assert re.search(r'<select id="field-1" name="data.reason"', html)
    assert '<option value="risk">Too risky</option>' in html
    assert re.search(r'<textarea id="field-3" name="data.notes"', html)
    assert html.count('name="data.urgent"') == 2  # Yes / No
    assert '<textarea id="comment" name="comment"' in html
    buttons = re.findall(r'<button type="submit" name="outcome" value="([^"]+)"', html)
    assert buttons == ["approve", "reject"]
    assert f'action="/tasks/{task["id"]}/complete"' in html
    assert f'name="csrf_token" value="{ui.csrf}"' in html
    assert "Claim this task" in html  # offered to a role, not claimed yet
    assert "Reassign" not in text(shown)  # reassigning needs write (managers)


async def test_deciding_from_the_form_moves_the_execution_on(ui: SignedIn) -> None:
    task = await open_task(ui, review_workflow())
    await switch_user(ui, "otto")
    form = {
        "outcome": "approve",
        "data.amount": "12.5",
        "data.reason": "risk",
        "data.urgent": "true",
        "data.notes": "line one\nline two",
        "data.pay_by": "2030-01-15",
        "comment": "fine by me",
    }
    decided = await ui.post_form(f"/tasks/{task['id']}/complete", form)
    assert decided.status_code == 303, decided.text
    assert decided.headers["location"] == f"/tasks/{task['id']}?notice=decided"

    execution = await wait_for_status(ui.client, task["execution_id"], "completed")
    review = next(n for n in execution["executed_nodes"] if n["node_id"] == "review")
    assert review["output"] == {
        "status": "approve",
        "comment": "fine by me",
        "completed_by": "otto",
        "completed_at": review["output"]["completed_at"],
        "amount": 12.5,
        "reason": "risk",
        "urgent": True,
        "notes": "line one\nline two",
        "pay_by": "2030-01-15",
    }

    after = await page(ui, decided.headers["location"])
    assert after.status_code == 200
    shown = text(after)
    assert "Your decision was recorded." in shown
    assert "Decided approve by otto" in shown
    assert "fine by me" in shown
    assert 'name="outcome"' not in after.text  # nothing left to decide

    audit = await ui.client.get("/api/v1/audit", params={"action": "task.complete"}, headers=ADMIN)
    entries = audit.json()["entries"]
    assert [(e["actor"], e["target_id"]) for e in entries] == [("otto", task["id"])]

    history = await page(ui, "/approvals", view="decided")
    assert task["id"] in task_links(history)
    assert "by otto" in text(history)
    assert "fine by me" in text(history)


async def test_a_missing_required_field_is_shown_next_to_it_with_what_was_typed(
    ui: SignedIn,
) -> None:
    task = await open_task(ui, review_workflow())
    await switch_user(ui, "otto")
    form = {
        "outcome": "approve",
        "data.amount": "",
        "data.reason": "risk",
        "data.notes": "keep <this> text",
        "data.pay_by": "not a date",
        "comment": "my comment",
    }
    refused = await ui.post_form(f"/tasks/{task['id']}/complete", form)
    assert refused.status_code == 422, refused.text
    html = refused.text
    assert re.search(
        r'id="field-0"[^>]*aria-invalid="true"[^>]*>\s*<p class="field-error" '
        r"id=\"field-0-error\">&#39;Amount&#39; is required</p>",
        html,
    ), html
    assert '<p class="field-error" id="field-4-error">must be a date written YYYY-MM-DD</p>' in html
    assert "keep &lt;this&gt; text</textarea>" in html  # typed values kept (and escaped)
    assert '<option value="risk" selected>' in html
    assert 'value="not a date"' in html
    assert ">my comment</textarea>" in html
    assert "Your decision was not recorded: 2 problems" in text(refused)
    # Nothing was decided.
    api = await ui.client.get(f"{TASKS}/{task['id']}", headers=ADMIN)
    assert (api.json()["status"], api.json()["decisions"]) == ("open", [])


async def test_a_second_decision_gets_a_clear_conflict(ui: SignedIn) -> None:
    task = await open_task(ui, review_workflow())
    await switch_user(ui, "otto")
    first = await ui.post_form(
        f"/tasks/{task['id']}/complete", {"outcome": "reject", "data.amount": "1"}
    )
    assert first.status_code == 303
    await switch_user(ui, "mia")
    second = await ui.post_form(
        f"/tasks/{task['id']}/complete", {"outcome": "approve", "data.amount": "2"}
    )
    assert second.status_code == 409, second.text
    shown = text(second)
    assert f"task {task['id']} is completed" in shown
    assert "Decided reject by otto" in shown


async def test_only_permitted_people_decide(ui: SignedIn) -> None:
    offered_to_finance = await open_task(
        ui, review_workflow("finance-wf", candidate_roles=["finance"])
    )
    await switch_user(ui, "otto")
    shown = await page(ui, f"/tasks/{offered_to_finance['id']}")
    assert "You cannot decide this task: 'otto' may not decide this task" in text(shown)
    assert 'name="outcome"' not in shown.text
    refused = await ui.post_form(
        f"/tasks/{offered_to_finance['id']}/complete", {"outcome": "approve", "data.amount": "1"}
    )
    assert refused.status_code == 403
    assert "only members of finance, a manager or admin may" in text(refused)

    await switch_user(ui, "vera")
    viewer = await ui.post_form(
        f"/tasks/{offered_to_finance['id']}/complete", {"outcome": "approve", "data.amount": "1"}
    )
    assert viewer.status_code == 403
    assert "decide" in text(viewer)

    await switch_user(ui, "mia")
    no_token = await ui.client.post(
        f"/tasks/{offered_to_finance['id']}/complete",
        data={"outcome": "approve", "data.amount": "1"},
        headers=HTML,
        follow_redirects=False,
    )
    assert no_token.status_code == 403
    assert "CSRF token missing" in text(no_token)
    api = await ui.client.get(f"{TASKS}/{offered_to_finance['id']}", headers=ADMIN)
    assert (api.json()["status"], api.json()["decisions"]) == ("open", [])


async def test_claiming_and_reassigning(ui: SignedIn) -> None:
    task = await open_task(ui, review_workflow())
    await switch_user(ui, "otto")
    claimed = await ui.post_form(f"/tasks/{task['id']}/claim")
    assert claimed.status_code == 303
    assert claimed.headers["location"] == f"/tasks/{task['id']}?notice=claimed"
    shown = text(await page(ui, claimed.headers["location"]))
    assert "The task is yours now." in shown
    assert "claimed by otto" in shown
    assert "Claim this task" not in shown
    assert (
        await ui.post_form(f"/tasks/{task['id']}/reassign", {"assignee": "vera"})
    ).status_code == 403

    await switch_user(ui, "mia")
    empty = await ui.post_form(f"/tasks/{task['id']}/reassign", {"assignee": " "})
    assert empty.status_code == 422
    assert "required: a user name, or role:&lt;name&gt;" in empty.text
    bad = await ui.post_form(f"/tasks/{task['id']}/reassign", {"assignee": "role:no good"})
    assert bad.status_code == 422
    assert 'value="role:no good"' in bad.text
    moved = await ui.post_form(f"/tasks/{task['id']}/reassign", {"assignee": "role:finance"})
    assert moved.status_code == 303
    assert moved.headers["location"] == f"/tasks/{task['id']}?notice=reassigned"
    api = (await ui.client.get(f"{TASKS}/{task['id']}", headers=ADMIN)).json()
    assert (api["assignee"], api["candidate_roles"], api["claimed_by"]) == (None, ["finance"], None)
    await switch_user(ui, "otto")
    assert task_links(await page(ui, "/approvals")) == []  # no longer offered to operators


async def test_several_approvals_show_their_progress(ui: SignedIn) -> None:
    task = await open_task(ui, review_workflow(required_approvals=2, form=[]))
    await switch_user(ui, "otto")
    first = await ui.post_form(f"/tasks/{task['id']}/complete", {"outcome": "approve"})
    assert first.status_code == 303
    shown = text(await page(ui, f"/tasks/{task['id']}"))
    assert "1 of 2 approvals needed so far" in shown
    assert "you have already decided this task" in shown
    await switch_user(ui, "mia")
    second = await ui.post_form(
        f"/tasks/{task['id']}/complete", {"outcome": "approve", "comment": "second"}
    )
    assert second.status_code == 303
    await wait_for_status(ui.client, task["execution_id"], "completed")
    decisions = text(await page(ui, f"/tasks/{task['id']}"))
    assert "otto approve" in decisions
    assert "mia approve second" in decisions


# --- signed links -----------------------------------------------------------------------


async def test_a_signed_link_opens_the_page_and_a_forged_one_is_refused(ui: SignedIn) -> None:
    task = await open_task(ui, review_workflow())
    links = ui.client.app.state["engine"].services["tasks"].links
    expires = links.expiry(None, utcnow())
    url = urlsplit(links.url(task["id"], expires, outcome="reject"))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    await switch_user(ui, "otto")
    opened = await page(ui, url.path, **query)
    assert opened.status_code == 200, opened.text
    assert "The link you followed suggests reject" in text(opened)
    assert re.search(r'value="reject" class="suggested"', opened.text)
    assert re.search(r'value="approve" class="secondary"', opened.text)

    forged = await page(ui, url.path, **{**query, "sig": query["sig"][:-2] + "AA"})
    assert forged.status_code == 403
    assert "this task link is not valid" in text(forged)
    past = int((utcnow() - timedelta(seconds=1)).timestamp())
    expired = await page(ui, url.path, exp=past, sig=links.signature(task["id"], past))
    assert expired.status_code == 403
    assert "this task link has expired" in text(expired)
    half = await page(ui, url.path, exp=query["exp"])
    assert half.status_code == 403
    api = (await ui.client.get(f"{TASKS}/{task['id']}", headers=ADMIN)).json()
    assert (api["status"], api["decisions"]) == ("open", [])
    assert (await get_execution(ui.client, task["execution_id"]))["status"] == "running"


async def test_signed_out_browsers_are_sent_to_sign_in_and_back(ui: SignedIn) -> None:
    task = await open_task(ui, review_workflow())
    ui.client.cookies.clear()
    response = await ui.client.get(f"/tasks/{task['id']}", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/tasks/{task['id']}"


async def test_the_mailbox_exists_only_in_demo_mode(ui: SignedIn) -> None:
    overview = await page(ui, "/")
    assert 'href="/mailbox"' not in overview.text
    assert (await page(ui, "/mailbox")).status_code == 404


# --- hostile text -----------------------------------------------------------------------


async def test_hostile_titles_and_comments_are_escaped(ui: SignedIn) -> None:
    task = await open_task(ui, review_workflow(), doc=HOSTILE)
    await switch_user(ui, "otto")
    decided = await ui.post_form(
        f"/tasks/{task['id']}/complete",
        {"outcome": "approve", "data.amount": "3", "data.notes": HOSTILE, "comment": HOSTILE},
    )
    assert decided.status_code == 303
    for url in (f"/tasks/{task['id']}", "/approvals?view=decided"):
        shown = await page(ui, url)
        assert shown.status_code == 200
        assert HOSTILE not in shown.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text


async def _set_task(ui: SignedIn, task_id: str, values: dict[str, Any]) -> None:
    """Change a task's row directly (to make it overdue without waiting an hour)."""
    settings = ui.client.app.dependencies["settings"].dependency()
    database = Database(settings.server.resolved_database_url)
    try:
        async with database.session() as session, session.begin():
            await session.execute(
                update(HumanTaskRow).where(HumanTaskRow.id == task_id).values(**values)
            )
    finally:
        await database.dispose()
