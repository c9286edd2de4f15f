"""The admin and audit pages in a real browser: an API key shown once and revoked after a
confirmation, a user created and a secret set (its value never shown), a form posted
without its CSRF token refused, and what a non-admin sees.

The demo server is shared: names get a unique suffix and nothing assumes counts.
"""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Page, expect

from tests.browser.conftest import Dashboard, sign_in


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_an_admin_creates_an_api_key_and_sees_it_once(
    page: Page, dashboard: Dashboard
) -> None:
    name = _unique("browser key")
    await sign_in(page, dashboard, "admin")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    keys = page.get_by_role("region", name=re.compile("^API keys"))
    await keys.get_by_text("Create an API key").click()
    await keys.get_by_label("Name", exact=True).fill(name)
    await keys.get_by_label("Role").select_option("viewer")
    await page.get_by_role("button", name="Create key").click()

    await expect(page.get_by_role("alert")).to_contain_text("it is shown only this once")
    key = await page.get_by_label("The key").input_value()
    assert re.fullmatch(r"fy_[a-z0-9]{40}", key), key
    with dashboard.api() as api:
        works = api.get("/api/v1/workflows", headers={"Authorization": f"Bearer {key}"})
        assert works.status_code == 200

    await page.get_by_role("link", name="I have copied it").click()
    row = page.get_by_role("row").filter(has_text=name)
    await expect(row).to_contain_text(key[:11])
    assert key not in await page.content()  # from now on only its prefix

    await row.get_by_text("Revoke…").click()
    await row.get_by_role("button", name="Yes, revoke").click()
    await expect(page.get_by_role("status")).to_have_text("The API key was revoked.")
    await expect(page.get_by_role("row").filter(has_text=name)).to_contain_text("revoked")
    with dashboard.api() as api:
        refused = api.get("/api/v1/workflows", headers={"Authorization": f"Bearer {key}"})
        assert refused.status_code == 401


async def test_an_admin_creates_a_user_and_sets_a_secret(page: Page, dashboard: Dashboard) -> None:
    username = _unique("clerk")
    secret_name = "BROWSER_" + uuid.uuid4().hex[:8].upper()
    value = f"value-{uuid.uuid4().hex}"
    await sign_in(page, dashboard, "admin")
    await page.goto("/admin")

    await page.get_by_text("Create a user").click()
    await page.get_by_label("Username").fill(username)
    await page.locator("#user-password").fill("short")
    await page.locator("#user-role").select_option("operator")
    await page.get_by_role("button", name="Create user").click()
    # Too short: refused with the message next to the password, the username kept.
    await expect(page.locator("#user-password-error")).to_be_visible()
    await expect(page.get_by_label("Username")).to_have_value(username)
    await page.locator("#user-password").fill("a-long-enough-password")
    await page.get_by_role("button", name="Create user").click()
    await expect(page.get_by_role("status")).to_have_text("The user was created.")
    await expect(page.get_by_role("row").filter(has_text=username)).to_contain_text("active")

    await page.get_by_text("Set a secret").click()
    await page.locator("#secret-name").fill(secret_name)
    await page.locator("#secret-value").fill(value)
    await page.get_by_role("button", name="Save secret").click()
    await expect(page.get_by_role("status")).to_have_text("The secret was saved.")
    await expect(page.get_by_role("row").filter(has_text=secret_name)).to_be_visible()
    assert value not in await page.content()

    await page.goto(f"/audit?target={secret_name}")
    await expect(page.get_by_role("cell", name="secret.created")).to_be_visible()


async def test_a_post_without_the_csrf_token_is_refused(page: Page, dashboard: Dashboard) -> None:
    secret_name = "CSRF_" + uuid.uuid4().hex[:8].upper()
    await sign_in(page, dashboard, "admin")
    await page.goto("/admin")
    await page.get_by_text("Set a secret").click()
    await page.locator("#secret-name").fill(secret_name)
    await page.locator("#secret-value").fill("never-stored")
    await page.evaluate(
        "document.querySelector('form[action=\"/admin/secrets\"] input[name=csrf_token]').remove()"
    )
    async with page.expect_response(lambda r: r.url.endswith("/admin/secrets")) as answer:
        await page.get_by_role("button", name="Save secret").click()
    assert (await answer.value).status == 403
    await expect(page.get_by_role("alert")).to_contain_text("CSRF token missing")
    with dashboard.api() as api:
        names = [s["name"] for s in api.get("/api/v1/secrets").json()["secrets"]]
    assert secret_name not in names


async def test_a_manager_has_no_admin_or_audit_page(page: Page, dashboard: Dashboard) -> None:
    await sign_in(page, dashboard, "manager")
    await expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    for url in ("/admin", "/audit"):
        response = await page.goto(url)
        assert response is not None
        assert response.status == 403
        await expect(page.get_by_role("alert")).to_contain_text("admin")
