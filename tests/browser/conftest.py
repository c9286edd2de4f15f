"""The dashboard in a real browser: Debian's Chromium driven by Playwright (async API).

One real ``flowyard demo`` process serves every browser test of a session (its demo
definitions, stand-ins and users, with the passwords it prints). Each test gets a fresh
browser context, so cookies never leak between tests. When a test fails, a screenshot
and the page's HTML are saved under ``test-artifacts/browser/<test>/``.

Chromium is ``/usr/bin/chromium`` (``FLOWYARD_CHROMIUM`` overrides it); ``make test``
installs Debian's package when it can. Without it the tests skip with a message, except
under ``CI=true``, where they fail: the browser scenarios are part of what CI proves.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth import ADMIN_HEADERS
from tests.conftest import in_ci
from tests.servers import REPO, RunningServer, free_port, start_server

CHROMIUM = Path(os.environ.get("FLOWYARD_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "test-artifacts" / "browser"
#: Chromium flags for a container: no sandbox (root), no GPU, and nothing that reaches
#: the internet on its own (updates, sync, field trials, QUIC).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    "--disable-quic",
    "--metrics-recording-only",
]
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
#: Playwright's waits (a shared, noisy machine: generous, never a pass condition).
TIMEOUT_MS = 20_000

try:
    from playwright.async_api import Browser, Page, async_playwright, expect
except ImportError:  # pragma: no cover - the dev extra installs it
    async_playwright = None  # type: ignore[assignment]


def _require_browser() -> None:
    problem = None
    if async_playwright is None:
        problem = "Playwright for Python is not installed (pip install -e '.[dev]')"
    elif not CHROMIUM.exists():
        problem = (
            f"Chromium is not at {CHROMIUM} (apt-get install chromium, or set "
            "FLOWYARD_CHROMIUM); `make test` installs it when run as root"
        )
    if problem is None:
        return
    if in_ci():
        pytest.fail(f"CI=true: the browser tests must run, but {problem}")
    pytest.skip(problem)


@dataclass
class Dashboard:
    """The running demo server and what a test needs to use it."""

    server: RunningServer
    passwords: dict[str, str]
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = self.server.url

    def api(self) -> httpx.Client:
        """An API client with the suite's admin key (for set-up and checks)."""
        return httpx.Client(base_url=self.url, headers=ADMIN_HEADERS, timeout=30)


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    _require_browser()
    where = tmp_path_factory.mktemp("dashboard")
    running = start_server(
        ["demo", "--data-dir", str(where / "data")],
        where,
        env={
            "FLOWYARD_DEMO_SMTP_PORT": str(free_port()),
            # Every test signs in from 127.0.0.1: the per-address sign-in rate limit
            # (tested on its own in tests/integration/security) must not pace the suite.
            "FLOWYARD_AUTH_LOGIN_RATE_PER_MINUTE": "6000",
            "FLOWYARD_AUTH_LOGIN_RATE_BURST": "1000",
        },
    )
    passwords = dict(re.findall(r"^\s+(\w+)\s+password (\S+)", running.log(), re.MULTILINE))
    assert {"admin", "manager", "operator", "viewer"} <= passwords.keys(), running.log()
    yield Dashboard(running, passwords)
    running.stop(signal.SIGTERM)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    _require_browser()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class BrowserProblems:
    """What the page reported that a working dashboard never does."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"script error: {error}"))
        page.on(
            "console",
            lambda message: (
                self.errors.append(f"console {message.type}: {message.text}")
                if message.type == "error" and not form_answer(page, message)
                else None
            ),
        )


#: A form re-rendered with what was wrong answers 4xx (422 invalid, 409 conflict, …);
#: Chromium logs that document's status as a console error, which is not a problem.
_DOCUMENT_STATUS = re.compile(
    r"^Failed to load resource: the server responded with a status of 4\d\d"
)


def form_answer(page: Page, message: Any) -> bool:
    """Whether a console error only reports the 4xx status of the page's own document."""
    url = (message.location or {}).get("url")
    return bool(_DOCUMENT_STATUS.match(message.text)) and url == page.url


async def new_page(browser: Browser, dashboard: Dashboard, viewport: dict[str, int]) -> Page:
    context = await browser.new_context(viewport=viewport, base_url=dashboard.url)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    return await context.new_page()


@pytest.fixture
async def page(
    browser: Browser, dashboard: Dashboard, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """A fresh browser tab 1280 px wide (its own cookies), not signed in."""
    expect.set_options(timeout=TIMEOUT_MS)
    tab = await new_page(browser, dashboard, WIDE)
    problems = BrowserProblems()
    problems.watch(tab)
    yield tab
    failed = any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    if failed:
        await save_artifacts(tab, request.node.name)
    await tab.context.close()
    if not failed:
        # Scripts that threw, or a CSP violation (which Chromium reports on the console).
        assert not problems.errors, problems.errors


async def save_artifacts(tab: Page, name: str) -> Path:
    """A screenshot and the HTML of ``tab``, for looking at a failure afterwards."""
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", name)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        await tab.screenshot(path=str(folder / "page.png"), full_page=True)
        (folder / "page.html").write_text(await tab.content())
    except Exception as error:  # the page may be gone; keep what was saved
        (folder / "error.txt").write_text(repr(error))
    return folder


async def sign_in(tab: Page, dashboard: Dashboard, username: str) -> None:
    """Sign in through the real form as one of the demo users."""
    await tab.goto("/login")
    await tab.get_by_label("Username").fill(username)
    await tab.get_by_label("Password").fill(dashboard.passwords[username])
    await tab.get_by_role("button", name="Sign in").click()
    await expect(tab.locator("form.account")).to_contain_text(f"Signed in as {username}")
