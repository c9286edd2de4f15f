"""Route precedence, reserved ids, OpenAPI coverage, health and the root document."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.integration.api.conftest import definition

Client = AsyncTestClient[Any]
BASE = "/api/v1/workflows"


async def test_fixed_paths_beat_workflow_ids(client: Client) -> None:
    health = await client.get(f"{BASE}/health")
    assert health.status_code == 200
    assert health.json()["checks"]["database"]["status"] == "ok"
    validated = await client.post(f"{BASE}/validate", json=definition())
    assert validated.status_code == 200
    assert set(validated.json()) == {"valid", "errors", "warnings"}
    assert (await client.get(BASE)).json()["total"] == 0  # "validate" created nothing


@pytest.mark.parametrize("reserved", ["executions", "health", "metrics", "validate"])
async def test_reserved_words_cannot_be_workflow_ids(client: Client, reserved: str) -> None:
    response = await client.post(BASE, json=definition(id=reserved))
    assert response.status_code == 422
    (detail,) = [d for d in response.json()["error"]["details"] if d["path"] == "/id"]
    assert "reserved" in detail["message"]


async def test_openapi_describes_every_route(client: Client) -> None:
    spec = (await client.get("/schema/openapi.json")).json()
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    for route in client.app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not handler.resolve_include_in_schema():
                continue
            for method in handler.http_methods:
                if method in {"HEAD", "OPTIONS"}:
                    continue
                path = route.path.replace(":str", "")
                path = path.replace("{workflow_id}", "{workflow_id}")
                assert (path, method) in documented, (path, method)
    schemas = spec["components"]["schemas"]
    assert "WorkflowDefinition" in schemas
    assert "nodes" in schemas["WorkflowDefinition"]["properties"]
    create = spec["paths"]["/api/v1/workflows"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "WorkflowDefinition"
    )
    assert "422" in create["responses"]
    error_ref = create["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert error_ref.endswith("ErrorResponse")


async def test_docs_page_loads_nothing_from_outside(client: Client) -> None:
    page = await client.get("/schema")
    assert page.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "https://" not in page.text
    assert "http://" not in page.text
    asset = await client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert asset.status_code == 200


async def test_root_answers_json_or_html(client: Client) -> None:
    await client.post(BASE, json=definition(name="<script>alert(1)</script>"))
    info = await client.get("/", headers={"Accept": "application/json"})
    assert info.status_code == 200
    assert info.json()["api"] == "/api/v1"
    page = await client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "<h1>Overview</h1>" in page.text
    page = await client.get("/workflows", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert(1)" not in page.text


@pytest.mark.postgres
async def test_health_is_503_when_the_database_is_gone(postgres_url: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    from server.app import create_app
    from server.config import load_settings

    settings = load_settings({"server.database_url": postgres_url}, environ={})
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        assert (await test_client.get(f"{BASE}/health")).status_code == 200
        url = make_url(postgres_url)
        admin = await asyncpg.connect(
            url.set(drivername="postgresql", database="postgres").render_as_string(
                hide_password=False
            )
        )
        try:
            await admin.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')
        finally:
            await admin.close()
        response = await test_client.get(f"{BASE}/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"]["status"] == "failed"
        assert "Traceback" not in response.text
