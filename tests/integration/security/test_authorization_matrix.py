"""The authorization matrix, generated from the application's route table (SPEC §8).

Every route of the app (demo routes included) is called with no credentials, with bad
ones (a revoked key, an unknown key, an expired JWT, a JWT signed with another secret)
and as each role (API keys, HS256 and RS256 JWTs, both key headers). The expectation
comes from the SPEC's role table written out below — not from the implementation's
table — and from each route's declared permission, which is itself checked against the
SPEC for every route the SPEC names. A route added later is in ``app.routes``, so it is
in the matrix too; a route that declares no permission makes the app refuse to start.

"Allowed" means the answer is neither 401 nor 403: with the dummy ids used here most
allowed calls end in 404 or 422, which is the route doing its job.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from demo.config import demo_settings
from server.api.errors import EXCEPTION_HANDLERS
from server.app import create_app
from server.config import DemoSettings, load_settings
from server.security.permissions import authorize, check_routes, undeclared_routes
from tests.auth import ADMIN_HEADERS, ADMIN_KEY
from tests.integration.security.conftest import (
    JWT_SECRET,
    ROLES,
    Client,
    KeyPair,
    bearer,
    make_key,
    secured_client,
    token,
)

#: SPEC §8, written out: what each role may do.
SPEC_ROLES: dict[str, set[str]] = {
    "admin": {"read", "write", "execute", "delete", "decide", "admin"},
    "manager": {"read", "write", "execute", "delete", "decide"},
    "operator": {"read", "execute", "decide"},
    "viewer": {"read"},
    "guest": set(),
}
#: What the SPEC says of the routes it names ("{}" stands for any path parameter).
SPEC_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/workflows/health"): "public",
    ("POST", "/api/v1/hooks/{}"): "public",
    ("POST", "/api/v1/callbacks/{}"): "public",
    ("GET", "/"): "public",
    ("GET", "/login"): "public",
    ("POST", "/login"): "public",
    ("GET", "/schema"): "public",
    ("GET", "/schema/openapi.json"): "public",
    ("GET", "/static/{}"): "public",
    ("GET", "/metrics"): "read",
    ("GET", "/api/v1/workflows"): "read",
    ("GET", "/api/v1/workflows/{}"): "read",
    ("GET", "/api/v1/workflows/executions"): "read",
    ("GET", "/api/v1/workflows/executions/{}"): "read",
    ("GET", "/api/v1/workflows/metrics"): "read",
    ("GET", "/api/v1/tasks"): "read",
    ("POST", "/api/v1/workflows"): "write",
    ("PUT", "/api/v1/workflows/{}"): "write",
    ("DELETE", "/api/v1/workflows/{}"): "delete",
    ("POST", "/api/v1/workflows/{}/execute"): "execute",
    ("POST", "/api/v1/workflows/executions/{}/cancel"): "execute",
    ("POST", "/api/v1/workflows/executions/{}/suspend"): "execute",
    ("POST", "/api/v1/workflows/executions/{}/resume"): "execute",
    ("POST", "/api/v1/workflows/executions/{}/retry"): "execute",
    ("POST", "/api/v1/tasks/{}/complete"): "decide",
    ("POST", "/api/v1/users"): "admin",
    ("GET", "/api/v1/users"): "admin",
    ("POST", "/api/v1/api-keys"): "admin",
    ("GET", "/api/v1/api-keys"): "admin",
    ("DELETE", "/api/v1/api-keys/{}"): "admin",
    ("GET", "/api/v1/audit"): "admin",
    ("GET", "/api/v1/secrets"): "admin",
    ("PUT", "/api/v1/secrets/{}"): "admin",
}
#: Public routes whose own checks refuse a dummy request (they must do so alike with or
#: without credentials): sign-in and sign-out need the form's CSRF token.
OWN_CHECKS = {("POST", "/login"), ("POST", "/logout")}
PARAM = re.compile(r"\{[^}]+\}")


@dataclasses.dataclass(frozen=True)
class Credential:
    label: str
    headers: dict[str, str]
    role: str | None  # None: must be refused with 401 wherever a permission is needed


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    path: str
    permission: str

    @property
    def shape(self) -> str:
        return PARAM.sub("{}", self.path)

    @property
    def url(self) -> str:
        """The path with dummy values: numbers for ``:int``, a probe word otherwise."""
        return PARAM.sub(
            lambda m: "1" if m.group(0).endswith(":int}") else "matrix-probe", self.path
        )


def routes(app: Litestar) -> list[Route]:
    found = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            for method in sorted(handler.http_methods):
                if method == "OPTIONS":
                    continue
                found.append(Route(method, route.path, str(handler.opt.get("permission"))))
    return found


async def credentials(client: Client, rsa_keys: KeyPair) -> list[Credential]:
    revoked = await make_key(client, "admin", "soon revoked")
    response = await client.delete(f"/api/v1/api-keys/{revoked['id']}", headers=ADMIN_HEADERS)
    assert response.status_code == 204
    found = [
        Credential("no credentials", {}, None),
        Credential("revoked admin key", bearer(revoked["key"]), None),
        Credential("unknown key", {"X-API-Key": "fy_" + "0" * 40}, None),
        Credential("expired admin JWT", bearer(token("ann", "admin", expires_in=-3600)), None),
        Credential(
            "admin JWT signed with another secret",
            bearer(token("ann", "admin", secret=JWT_SECRET[::-1])),
            None,
        ),
        Credential("bootstrap admin key", ADMIN_HEADERS, "admin"),
        Credential("manager JWT (HS256)", bearer(token("mia", "manager")), "manager"),
        Credential(
            "viewer JWT (RS256)",
            bearer(token("vic", "viewer", algorithm="RS256", key=rsa_keys.private)),
            "viewer",
        ),
    ]
    for role in ROLES:
        key = (await make_key(client, role))["key"]
        found.append(Credential(f"{role} key (Bearer)", bearer(key), role))
    operator = (await make_key(client, "operator", "header key"))["key"]
    found.append(Credential("operator key (X-API-Key)", {"X-API-Key": operator}, "operator"))
    return found


def verdict(route: Route, credential: Credential, status: int) -> str | None:
    """Why ``status`` is wrong for this call, or ``None`` when it is right."""
    refused = status in (401, 403)
    if route.permission == "public":
        if refused and (route.method, route.shape) not in OWN_CHECKS:
            return f"public route refused with {status}"
        return None
    if credential.role is None:
        return None if status == 401 else f"expected 401, got {status}"
    if route.permission in SPEC_ROLES[credential.role]:
        return f"allowed, but refused with {status}" if refused else None
    return None if status == 403 else f"expected 403, got {status}"


@pytest.fixture
async def matrix_client(database_url: str, tmp_path: Path, rsa_keys: KeyPair) -> Any:
    """The app in demo mode (so the demo routes are in the matrix), nothing preloaded."""
    empty = tmp_path / "no-definitions"
    empty.mkdir()
    base = load_settings(
        {
            "server.database_url": database_url,
            "auth.bootstrap_admin_key": ADMIN_KEY,
            "auth.jwt_secret": JWT_SECRET,
            "auth.jwt_public_key": rsa_keys.public_pem,
            "demo.smtp_port": 0,
        },
        environ={},
    )
    settings = demo_settings(base, tmp_path / "demo")
    assert settings.demo.enabled
    async with AsyncTestClient(app=create_app(settings, definitions_dir=empty)) as client:
        yield client


async def test_every_route_answers_as_the_permission_table_says(
    matrix_client: Client, rsa_keys: KeyPair
) -> None:
    table = routes(matrix_client.app)
    assert len(table) > 50
    assert any(r.path.startswith("/demo/") for r in table)
    given = await credentials(matrix_client, rsa_keys)
    wrong = []
    for route in table:
        answers = {}
        for credential in given:
            body = {"json": {}} if route.method in ("POST", "PUT", "PATCH") else {}
            response = await matrix_client.request(
                route.method, route.url, headers=credential.headers, **body
            )
            answers[credential.label] = response.status_code
            problem = verdict(route, credential, response.status_code)
            if problem:
                wrong.append(
                    f"{route.method} {route.path} [{route.permission}] as {credential.label}: "
                    f"{problem} ({response.text[:120]})"
                )
        if (route.method, route.shape) in OWN_CHECKS:
            # Refused by its own check, then alike for everyone: not by the guard.
            assert answers["no credentials"] == answers["bootstrap admin key"], route
    assert not wrong, f"{len(wrong)} wrong answers:\n" + "\n".join(wrong)


async def test_routes_the_spec_names_declare_what_the_spec_says(matrix_client: Client) -> None:
    declared = {(r.method, r.shape): r.permission for r in routes(matrix_client.app)}
    wrong = {
        route: (declared.get(route), wanted)
        for route, wanted in SPEC_ROUTES.items()
        if declared.get(route) != wanted
    }
    assert not wrong, f"(declared, SPEC) differ: {wrong}"
    assert undeclared_routes(matrix_client.app) == []


async def test_a_route_without_a_declared_permission_is_refused_and_stops_the_app() -> None:
    @get("/forgotten")
    async def forgotten() -> str:
        return "should never answer"

    app = Litestar(
        [forgotten],
        guards=[authorize],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=None,
    )
    assert undeclared_routes(app) == ["GET /forgotten"]
    with pytest.raises(RuntimeError, match="GET /forgotten"):
        check_routes(app)
    async with AsyncTestClient(app=app) as client:  # and were it served: fail closed
        response = await client.get("/forgotten", headers=ADMIN_HEADERS)
    assert response.status_code == 403
    assert "should never answer" not in response.text


async def test_metrics_need_a_viewer_unless_made_public(database_url: str, tmp_path: Path) -> None:
    async with secured_client(database_url, tmp_path) as client:
        assert (await client.get("/metrics")).status_code == 401
        viewer = (await make_key(client, "viewer"))["key"]
        assert (await client.get("/metrics", headers=bearer(viewer))).status_code == 200
        guest = (await make_key(client, "guest"))["key"]
        assert (await client.get("/metrics", headers=bearer(guest))).status_code == 403
    async with secured_client(
        database_url, tmp_path / "public", **{"auth.metrics_public": True}
    ) as client:
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert "flowyard_" in response.text


async def test_refusals_say_why_in_the_error_shape(client: Client) -> None:
    anonymous = await client.get("/api/v1/workflows")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.json()["error"]["code"] == "unauthorized"
    viewer = (await make_key(client, "viewer"))["key"]
    refused = await client.post("/api/v1/workflows", json={}, headers=bearer(viewer))
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "forbidden"
    assert "'viewer'" in error["message"]
    assert "'write'" in error["message"]
    wrong_scheme = await client.get("/api/v1/workflows", headers={"Authorization": "Basic eDp5"})
    assert wrong_scheme.status_code == 401
    assert "Bearer" in wrong_scheme.json()["error"]["message"]


async def test_public_routes_ignore_invalid_credentials(client: Client) -> None:
    """A stale key on a health probe or a webhook sender's own Authorization header does
    not turn a public route into a 401."""
    for headers in (bearer("fy_" + "1" * 40), {"Authorization": "Basic eDp5"}, bearer("x.y.z")):
        assert (await client.get("/api/v1/workflows/health", headers=headers)).status_code == 200
        answer = await client.get("/", headers={**headers, "Accept": "application/json"})
        assert answer.status_code == 200


async def test_development_mode_checks_nothing_and_trusts_the_claimed_name(
    database_url: str, tmp_path: Path
) -> None:
    async with secured_client(database_url, tmp_path, **{"auth.enabled": False}) as client:
        assert (await client.get("/api/v1/workflows")).status_code == 200
        assert (await client.get("/api/v1/audit")).status_code == 200
        # bad credentials are not even looked at
        assert (await client.get("/api/v1/workflows", headers=bearer("fy_nope"))).status_code == 200


async def test_the_app_refuses_a_weak_bootstrap_key(database_url: str, tmp_path: Path) -> None:
    from server.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="bootstrap_admin_key"):
        async with secured_client(
            database_url, tmp_path, **{"auth.bootstrap_admin_key": "fy_short"}
        ):
            pass


def test_a_demo_mode_app_is_what_the_matrix_covers(sqlite_url: str, tmp_path: Path) -> None:
    """The matrix runs the demo app: it has every route a production app has, and more."""
    base = load_settings({"server.database_url": sqlite_url}, environ={})
    plain = {(r.method, r.path) for r in routes(create_app(base))}
    demo = dataclasses.replace(
        demo_settings(base, tmp_path / "demo"), demo=DemoSettings(enabled=True, smtp_port=0)
    )
    assert plain <= {(r.method, r.path) for r in routes(create_app(demo))}
