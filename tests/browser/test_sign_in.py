"""Signing in and out through the real form, and what a signed-out browser sees."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import Dashboard, sign_in


async def test_signing_in_shows_the_overview_and_signing_out_ends_the_session(
    page: Page, dashboard: Dashboard
) -> None:
    await sign_in(page, dashboard, "operator")
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await expect(page.get_by_role("navigation", name="Main")).to_contain_text("Executions")
    # An operator is not an admin: no Audit or Admin links.
    await expect(page.get_by_role("link", name="Admin")).to_have_count(0)

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{dashboard.url}/login")
    await page.goto("/executions")
    # The session is over: a page that needs it sends the browser to sign in, and back.
    await expect(page).to_have_url(f"{dashboard.url}/login?next=/executions")


async def test_a_wrong_password_is_refused_with_a_message(page: Page, dashboard: Dashboard) -> None:
    await page.goto("/login")
    await page.get_by_label("Username").fill("operator")
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("Incorrect username or password")
    await expect(page.locator("form.account")).to_have_count(0)
