"""Hostile query strings and form fields on the dashboard (and the API's matching
filters) answer a 4xx page with a message, never a 500: offsets beyond what the
databases bind or written with non-ASCII digits, times UTC cannot hold, JSON nested
absurdly deep or with NaN. Also: the version diff of huge definitions stays bounded,
and a double-submitted Run form starts one execution. Real app, SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import re
from html import unescape

import pytest

from server.api.schemas import MAX_OFFSET
from tests.integration.security.test_sessions import PASSWORD
from tests.integration.ui.conftest import ADMIN, SignedIn, switch_user
from tests.integration.ui.test_execution_pages import Api, fails, unique
from tests.integration.ui.test_workflow_pages import create, definition
from ui.diffview import MAX_TEXT

HTML = {"Accept": "text/html"}
TOO_BIG = str(MAX_OFFSET + 1)
LATE = "9999-12-31T23:59:59-23:59"  # year 10000 in UTC
EARLY = "0001-01-01T00:00+05:00"  # year 0 in UTC


def text(body: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


async def as_admin(ui: SignedIn) -> SignedIn:
    body = {"username": "ada", "password": PASSWORD, "role": "admin"}
    created = await ui.client.post("/api/v1/users", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    return await switch_user(ui, "ada")


# -- offsets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [TOO_BIG, "²", "-1", "ten"])
async def test_a_bad_offset_is_a_4xx_page_on_every_list_page(ui: SignedIn, offset: str) -> None:
    await as_admin(ui)
    for path, name in [
        ("/approvals", "offset"),
        ("/executions", "offset"),
        ("/workflows", "offset"),
        ("/audit", "offset"),
        ("/admin", "users_offset"),
        ("/admin", "keys_offset"),
    ]:
        response = await ui.client.get(path, params={name: offset}, headers=HTML)
        assert 400 <= response.status_code < 500, (path, name, response.status_code)
        assert "<html" in response.text.lower(), path  # the dashboard's error page


async def test_the_largest_offset_is_an_empty_page(ui: SignedIn) -> None:
    await as_admin(ui)
    for path in ("/approvals", "/executions", "/workflows", "/audit"):
        response = await ui.client.get(path, params={"offset": str(MAX_OFFSET)}, headers=HTML)
        assert response.status_code == 200, (path, response.text)


# -- times -----------------------------------------------------------------------------------


@pytest.mark.parametrize("moment", [LATE, EARLY])
async def test_a_time_utc_cannot_hold_is_a_form_error_on_the_executions_page(
    ui: SignedIn, moment: str
) -> None:
    for name in ("started_from", "started_to"):
        response = await ui.client.get("/executions", params={name: moment}, headers=HTML)
        assert response.status_code == 422, (name, response.text)
        assert f'id="{name}-error"' in response.text or "2026-01-31T09:30" in text(response.text)


@pytest.mark.parametrize("moment", [LATE, EARLY])
async def test_a_time_utc_cannot_hold_is_a_form_error_on_the_audit_page(
    ui: SignedIn, moment: str
) -> None:
    await as_admin(ui)
    for name in ("from", "to"):
        response = await ui.client.get("/audit", params={name: moment}, headers=HTML)
        assert response.status_code == 422, (name, response.text)
        assert "out of range" in text(response.text)


@pytest.mark.parametrize("moment", [LATE, EARLY])
async def test_the_api_refuses_a_time_utc_cannot_hold(ui: SignedIn, moment: str) -> None:
    for path, name in [
        ("/api/v1/workflows/executions", "started_from"),
        ("/api/v1/workflows/executions", "started_to"),
        ("/api/v1/audit", "from"),
        ("/api/v1/audit", "to"),
    ]:
        response = await ui.client.get(path, params={name: moment}, headers=ADMIN)
        assert response.status_code == 400, (path, name, response.text)
        assert name in response.text  # in the message or its details


async def test_times_with_an_offset_still_filter(ui: SignedIn) -> None:
    response = await ui.client.get(
        "/api/v1/workflows/executions",
        params={"started_from": "2000-01-01T00:00:00+05:00"},
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text
    page = await ui.client.get("/executions", params={"started_to": "2000-01-01"}, headers=HTML)
    assert page.status_code == 200


# -- JSON fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "message"),
    [("[" * 100_000, "nested too deeply"), ('{"a": NaN}', "NaN is not valid JSON")],
)
async def test_a_rerun_patch_the_api_would_refuse_is_a_form_error(
    ui: SignedIn, typed: str, message: str
) -> None:
    failed = await Api(ui).run(fails(unique("hostile")))
    response = await ui.client.post(
        f"/executions/{failed['id']}/rerun",
        data={"csrf_token": ui.csrf, "node_id": "ok", "input_patch": typed},
        headers=HTML,
    )
    assert response.status_code == 422, response.text[:500]
    assert message in text(response.text)


async def test_the_run_form_refuses_nan_as_the_api_does(ui: SignedIn) -> None:
    await create(ui, definition("nan-run"))
    response = await ui.post_form(
        "/workflows/nan-run/run", {"var.amount": "1", "var.items": "[NaN]"}
    )
    assert response.status_code == 422, response.text[:500]
    assert "NaN is not valid JSON" in text(response.text)
    listed = await ui.client.get("/api/v1/workflows/nan-run/executions", headers=ADMIN)
    assert listed.json()["total"] == 0


# -- the version diff ------------------------------------------------------------------------


async def test_the_diff_of_huge_versions_shows_the_summary_and_a_note(ui: SignedIn) -> None:
    first = definition("huge", description="x" * 9_000)
    first["nodes"] += [
        {
            "id": f"n{i}",
            "name": f"Node {i} " + "y" * 200,
            "type": "transform",
            "config": {"transform_type": "expression", "expression": f"{i}"},
        }
        for i in range(1_000 - len(first["nodes"]))
    ]
    first["edges"] += [
        {"from_node": "small", "to_node": "n0"},
        *({"from_node": f"n{i}", "to_node": f"n{i + 1}"} for i in range(996)),
    ]
    await create(ui, first)
    second = copy.deepcopy(first)
    second["version"] = "2.0.0"
    for n in second["nodes"][3:]:
        n["config"]["expression"] += " + 1"
    await create(ui, second)
    response = await ui.client.get(
        "/workflows/huge/diff", params={"from": "1.0.0", "to": "2.0.0"}, headers=HTML
    )
    assert response.status_code == 200
    assert 'class="note diff-too-big"' in response.text
    assert "<tr class=" not in response.text  # no line rows at all
    assert "/api/v1/workflows/huge/diff?from=1.0.0&amp;to=2.0.0" in response.text
    assert "997 changed" in text(response.text)  # the structured summary is there
    assert f"{MAX_TEXT:,}" in text(response.text)


# -- the run form: one execution per form --------------------------------------------------


def run_key(page: str) -> str:
    found = re.search(
        r'<input type="hidden" name="idempotency_key" value="(ui-[0-9a-f]{32})">', page
    )
    assert found, page
    return found.group(1)


async def test_submitting_the_run_form_twice_starts_one_execution(ui: SignedIn) -> None:
    await create(ui, definition("twice"))
    form_page = (await ui.client.get("/workflows/twice", headers=HTML)).text
    key = run_key(form_page)
    fields = {"var.amount": "5", "idempotency_key": key}
    first = await ui.post_form("/workflows/twice/run", fields)
    again = await ui.post_form("/workflows/twice/run", fields)
    assert first.status_code == again.status_code == 303, again.text[:500]
    assert first.headers["location"] == again.headers["location"]
    listed = await ui.client.get("/api/v1/workflows/twice/executions", headers=ADMIN)
    assert listed.json()["total"] == 1
    # A new rendering of the form is a new key: running it again is a new execution.
    key_two = run_key((await ui.client.get("/workflows/twice", headers=HTML)).text)
    assert key_two != key
    third = await ui.post_form("/workflows/twice/run", {**fields, "idempotency_key": key_two})
    assert third.headers["location"] != first.headers["location"]


async def test_a_reserved_key_in_the_run_form_is_refused(ui: SignedIn) -> None:
    await create(ui, definition("reserved"))
    response = await ui.post_form(
        "/workflows/reserved/run", {"var.amount": "5", "idempotency_key": "cron:x"}
    )
    assert response.status_code == 422
    listed = await ui.client.get("/api/v1/workflows/reserved/executions", headers=ADMIN)
    assert listed.json()["total"] == 0
