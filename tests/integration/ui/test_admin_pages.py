"""The admin page (users, API keys, secrets) and the audit page, used as a browser does,
on SQLite and PostgreSQL. An admin user ``ada`` is created through the API and signs
in; what the forms change is checked through the API and the audit log."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx
import pytest

from tests.integration.security.test_sessions import PASSWORD
from tests.integration.ui.conftest import ADMIN, SignedIn, switch_user

HTML = {"Accept": "text/html"}
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
async def ada(ui: SignedIn) -> SignedIn:
    """The ``ui`` client signed in as the admin ``ada``."""
    body = {"username": "ada", "password": PASSWORD, "role": "admin"}
    created = await ui.client.post("/api/v1/users", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    return await switch_user(ui, "ada")


async def page(ui: SignedIn, url: str, **params: Any) -> httpx.Response:
    response: httpx.Response = await ui.client.get(url, params=params or None, headers=HTML)
    return response


def text(response: httpx.Response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def field_error(response: httpx.Response, input_id: str) -> str:
    """The message shown next to the input ``input_id``."""
    found = re.search(
        rf'<(p|span) class="field-error" id="{input_id}-error">([^<]*)</\1>', response.text
    )
    assert found, response.text
    return unescape(found.group(2))


def actions_listed(response: httpx.Response) -> list[str]:
    """The actions of the audit page's rows, top to bottom."""
    return re.findall(r'<td class="action"><code>([a-z_.]+)</code></td>', response.text)


async def api(ui: SignedIn, path: str) -> Any:
    response = await ui.client.get(path, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


async def audit_actions(ui: SignedIn, **params: str) -> list[tuple[str, str | None, str]]:
    entries = (await ui.client.get("/api/v1/audit", params=params, headers=ADMIN)).json()
    return [(e["action"], e["target_id"], e["actor"]) for e in entries["entries"]]


async def test_only_admins_see_the_admin_and_audit_pages(ui: SignedIn) -> None:
    for url in ("/admin", "/audit"):
        refused = await page(ui, url)  # mia is a manager
        assert refused.status_code == 403, url
        assert "admin" in text(refused)
    denied = await ui.post_form("/admin/users", {"username": "x", "password": PASSWORD})
    assert denied.status_code == 403
    names = [u["username"] for u in (await api(ui, "/api/v1/users"))["users"]]
    assert "x" not in names


# --- users ------------------------------------------------------------------------------


async def test_an_admin_creates_a_user(ada: SignedIn) -> None:
    shown = await page(ada, "/admin")
    assert shown.status_code == 200, shown.text
    for name in ("mia", "otto", "vera", "ada"):
        assert f"<strong>{name}</strong>" in shown.text
    form = {"username": "nina", "password": PASSWORD, "role": "operator", "email": "n@x.test"}
    created = await ada.post_form("/admin/users", form)
    assert created.status_code == 303, created.text
    assert created.headers["location"] == "/admin?notice=user-created"
    after = await page(ada, created.headers["location"])
    assert "The user was created." in text(after)
    assert "<strong>nina</strong>" in after.text
    assert "n@x.test" in after.text
    (nina,) = [u for u in (await api(ada, "/api/v1/users"))["users"] if u["username"] == "nina"]
    assert (nina["role"], nina["email"], nina["disabled"]) == ("operator", "n@x.test", False)
    assert ("user.created", "nina", "ada") in await audit_actions(ada, action="user.created")


async def test_a_refused_user_form_shows_the_message_next_to_the_field(ada: SignedIn) -> None:
    taken = {"username": "otto", "password": PASSWORD, "role": "viewer", "email": "o@x.test"}
    duplicate = await ada.post_form("/admin/users", taken)
    assert duplicate.status_code == 422, duplicate.text
    assert field_error(duplicate, "user-username") == "a user named 'otto' exists already"
    assert 'id="user-username" name="username" value="otto"' in duplicate.text
    assert 'value="o@x.test"' in duplicate.text
    assert '<option value="viewer" selected>' in duplicate.text
    assert PASSWORD not in duplicate.text  # a password is never sent back

    weak = await ada.post_form(
        "/admin/users", {"username": "pat", "password": "short", "role": "x"}
    )
    assert weak.status_code == 422
    assert "8" in field_error(weak, "user-password")
    assert "must be one of admin" in field_error(weak, "user-role")
    names = [u["username"] for u in (await api(ada, "/api/v1/users"))["users"]]
    assert "pat" not in names


async def test_an_admin_changes_a_role_disables_enables_and_sets_a_password(
    ada: SignedIn,
) -> None:
    users = (await api(ada, "/api/v1/users"))["users"]
    vera = next(u for u in users if u["username"] == "vera")
    base = f"/admin/users/{vera['id']}"
    changed = await ada.post_form(f"{base}/role", {"role": "operator"})
    assert changed.status_code == 303
    assert changed.headers["location"] == "/admin?notice=user-updated"
    assert (await api(ada, f"/api/v1/users/{vera['id']}"))["role"] == "operator"

    assert (await ada.post_form(f"{base}/disable")).status_code == 303
    assert (await api(ada, f"/api/v1/users/{vera['id']}"))["disabled"] is True
    assert "disabled" in text(await page(ada, "/admin"))
    assert (await ada.post_form(f"{base}/enable")).status_code == 303
    assert (await api(ada, f"/api/v1/users/{vera['id']}"))["disabled"] is False

    weak = await ada.post_form(f"{base}/password", {"password": "short"})
    assert weak.status_code == 422
    assert "8" in field_error(weak, f"password-{vera['id']}")
    renewed = await ada.post_form(f"{base}/password", {"password": "a-new-long-password"})
    assert renewed.status_code == 303
    actions = [a for a, target, _ in await audit_actions(ada, action="user") if target == "vera"]
    assert actions == [
        "user.updated", "user.enabled", "user.disabled", "user.updated", "user.created",
    ]  # fmt: skip

    first_admin = next(u for u in users if u["username"] == "admin")
    assert (await ada.post_form(f"/admin/users/{first_admin['id']}/disable")).status_code == 303
    ada_row = next(u for u in users if u["username"] == "ada")
    last_admin = await ada.post_form(f"/admin/users/{ada_row['id']}/disable")
    assert last_admin.status_code == 422
    assert "'ada' is the last enabled admin" in text(last_admin)
    assert (await api(ada, f"/api/v1/users/{ada_row['id']}"))["disabled"] is False


# --- API keys ---------------------------------------------------------------------------


async def test_a_new_api_key_is_shown_once_and_can_be_revoked(ada: SignedIn) -> None:
    created = await ada.post_form("/admin/api-keys", {"name": "ci deploys", "role": "operator"})
    assert created.status_code == 200, created.text
    assert created.headers["cache-control"] == "no-store"
    assert "Copy this key now: it is shown only this once." in text(created)
    key = re.search(r'id="new-key" class="key" value="(fy_[a-z0-9]+)"', created.text)
    assert key, created.text
    secret = key.group(1)
    works = await ada.client.get(
        "/api/v1/workflows", headers={"Authorization": f"Bearer {secret}", "Cookie": ""}
    )
    assert works.status_code == 200

    listed = await page(ada, "/admin")
    assert secret not in listed.text  # only the prefix from now on
    assert f"<code>{secret[:11]}…</code>" in listed.text
    (row,) = [
        k for k in (await api(ada, "/api/v1/api-keys"))["api_keys"] if k["name"] == "ci deploys"
    ]
    revoked = await ada.post_form(f"/admin/api-keys/{row['id']}/revoke")
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/admin?notice=key-revoked"
    refused = await ada.client.get(
        "/api/v1/workflows", headers={"Authorization": f"Bearer {secret}", "Cookie": ""}
    )
    assert refused.status_code == 401
    assert "The API key was revoked." in text(await page(ada, revoked.headers["location"]))
    assert ("api_key.revoked", row["id"], "ada") in await audit_actions(ada, action="api_key")


async def test_key_names_are_escaped_and_bad_keys_refused(ada: SignedIn) -> None:
    bad = await ada.post_form("/admin/api-keys", {"name": " ", "role": "boss"})
    assert bad.status_code == 422
    assert "required" in field_error(bad, "key-name")
    assert "must be one of" in field_error(bad, "key-role")
    created = await ada.post_form("/admin/api-keys", {"name": HOSTILE, "role": "viewer"})
    assert created.status_code == 200
    for shown in (created, await page(ada, "/admin")):
        assert HOSTILE not in shown.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text


# --- secrets ----------------------------------------------------------------------------


async def test_secrets_are_set_and_deleted_and_their_values_never_shown(ada: SignedIn) -> None:
    value = "s3cret-value-never-shown"
    saved = await ada.post_form("/admin/secrets", {"name": "PAYMENTS_TOKEN", "value": value})
    assert saved.status_code == 303
    assert saved.headers["location"] == "/admin?notice=secret-saved"
    shown = await page(ada, saved.headers["location"])
    assert "<code>PAYMENTS_TOKEN</code>" in shown.text
    assert value not in shown.text
    assert [s["name"] for s in (await api(ada, "/api/v1/secrets"))["secrets"]] == ["PAYMENTS_TOKEN"]

    bad = await ada.post_form("/admin/secrets", {"name": "9 lives", "value": value})
    assert bad.status_code == 422
    assert "letters, digits or '_'" in field_error(bad, "secret-name")
    assert 'value="9 lives"' in bad.text
    assert value not in bad.text  # not even on the refused form
    short = await ada.post_form("/admin/secrets", {"name": "OTHER", "value": "ab"})
    assert short.status_code == 422
    assert "characters" in field_error(short, "secret-value")

    for url in ("/admin", "/audit", "/approvals"):
        assert value not in (await page(ada, url)).text

    deleted = await ada.post_form("/admin/secrets/PAYMENTS_TOKEN/delete")
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/admin?notice=secret-deleted"
    assert (await api(ada, "/api/v1/secrets"))["secrets"] == []
    assert "No secrets." in text(await page(ada, "/admin"))
    missing = await ada.post_form("/admin/secrets/PAYMENTS_TOKEN/delete")
    assert missing.status_code == 404
    actions = await audit_actions(ada, action="secret")
    assert actions == [
        ("secret.deleted", "PAYMENTS_TOKEN", "ada"),
        ("secret.created", "PAYMENTS_TOKEN", "ada"),
    ]


async def test_admin_forms_need_the_csrf_token(ada: SignedIn) -> None:
    for url, form in (
        ("/admin/users", {"username": "eve", "password": PASSWORD, "role": "admin"}),
        ("/admin/api-keys", {"name": "eve", "role": "admin"}),
        ("/admin/secrets", {"name": "EVE", "value": "whatever"}),
    ):
        refused = await ada.client.post(url, data=form, headers=HTML, follow_redirects=False)
        assert refused.status_code == 403, url
        assert "CSRF token missing" in text(refused)
    assert (await api(ada, "/api/v1/secrets"))["secrets"] == []
    assert "eve" not in [u["username"] for u in (await api(ada, "/api/v1/users"))["users"]]


# --- audit ------------------------------------------------------------------------------


async def test_the_audit_page_lists_and_filters(ada: SignedIn) -> None:
    await ada.post_form("/admin/secrets", {"name": "AUDITED", "value": "value-1234"})
    everything = await page(ada, "/audit")
    assert everything.status_code == 200, everything.text
    shown = text(everything)
    assert "secret.created" in shown
    assert "user.created" in shown
    assert "login.succeeded" in shown

    secrets_only = await page(ada, "/audit", action="secret")
    rows = actions_listed(secrets_only)
    assert rows == ["secret.created"]
    assert "AUDITED" in text(secrets_only)
    by_actor = await page(ada, "/audit", actor="ada", target_type="secret")
    assert actions_listed(by_actor) == ["secret.created"]
    assert 'name="actor" value="ada"' in by_actor.text  # the filter stays filled in
    none = await page(ada, "/audit", actor="nobody-at-all")
    assert "No entries match these filters." in text(none)
    future = await page(ada, "/audit", **{"from": "2999-01-01T00:00"})
    assert "No entries match" in text(future)

    bad = await page(ada, "/audit", **{"from": "yesterday"})
    assert bad.status_code == 422
    assert "not a time" in field_error(bad, "filter-from")
    assert 'value="yesterday"' in bad.text
