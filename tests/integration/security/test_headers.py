"""Security headers on pages and other responses, no inline script, and CORS."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from server.config import load_settings
from server.errors import ConfigurationError
from tests.integration.security.test_sessions import signed_in, signin_app

ALLOWED = "https://ops.example.com"
#: A ``<script>`` element without ``src``, or an inline event handler attribute.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=", re.IGNORECASE)


def directives(policy: str) -> dict[str, list[str]]:
    found = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            found[words[0]] = words[1:]
    return found


def assert_page_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    policy = directives(response.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"]  # no inline script, no eval, no other host
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert not INLINE_SCRIPT.search(response.text), INLINE_SCRIPT.search(response.text)


async def test_pages_carry_the_security_headers_and_no_inline_script(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with signin_app(sqlite_url, tmp_path) as client:
        signed_out = await client.get("/", headers={"Accept": "text/html"})
        assert 'href="/login"' in signed_out.text
        login_page = await client.get("/login")
        failed_login = await client.post("/login", data={"username": "x", "password": "y"})
        docs = await client.get("/schema")
        assert "/static/js/swagger-init.js" in docs.text
        await signed_in(client)
        home = await client.get("/")
        assert "Signed in as" in home.text
        for page in (signed_out, login_page, failed_login, docs, home):
            assert_page_headers(page)


async def test_other_responses_are_not_sniffed(sqlite_url: str, tmp_path: Path) -> None:
    async with signin_app(sqlite_url, tmp_path) as client:
        for path in ("/api/v1/workflows/health", "/no/such/route", "/api/v1/workflows"):
            response = await client.get(path)
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert response.headers["referrer-policy"] == "same-origin", path
        css = await client.get("/static/css/flowyard.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert css.headers["x-content-type-options"] == "nosniff"
        script = await client.get("/static/js/swagger-init.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]


async def test_cors_answers_only_configured_origins(sqlite_url: str, tmp_path: Path) -> None:
    async with signin_app(sqlite_url, tmp_path, **{"auth.cors_origins": [ALLOWED]}) as client:
        allowed = await client.get("/api/v1/workflows/health", headers={"Origin": ALLOWED})
        assert allowed.headers["access-control-allow-origin"] == ALLOWED
        assert "access-control-allow-credentials" not in allowed.headers

        other = await client.get(
            "/api/v1/workflows/health", headers={"Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers

        preflight = await client.options(
            "/api/v1/workflows",
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code in (200, 204), preflight.text
        assert preflight.headers["access-control-allow-origin"] == ALLOWED
        assert "POST" in preflight.headers["access-control-allow-methods"]
        allowed_headers = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed_headers
        assert "x-api-key" in allowed_headers

        refused = await client.options(
            "/api/v1/workflows",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in refused.headers


async def test_no_cors_by_default(sqlite_url: str, tmp_path: Path) -> None:
    async with signin_app(sqlite_url, tmp_path) as client:
        response = await client.get("/api/v1/workflows/health", headers={"Origin": ALLOWED})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "origin", ["https://ops.example.com/", "ops.example.com", "https://x.example/path", "ftp://x"]
)
def test_a_cors_origin_that_is_not_an_origin_stops_the_start(origin: str) -> None:
    with pytest.raises(ConfigurationError, match=r"auth\.cors_origins"):
        load_settings({"auth.cors_origins": [origin]}, environ={})
