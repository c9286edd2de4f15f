"""Seed-format definitions load unchanged; every broken one is refused with every problem."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from demo.config import demo_settings
from demo.loader import definition_files
from server.app import create_app
from server.config import DemoSettings, load_settings
from tests.auth import ADMIN_HEADERS, with_admin_key
from tests.integration.api.conftest import Client

BROKEN = Path(__file__).parents[2] / "fixtures" / "broken"
BASE = "/api/v1/workflows"


@pytest.fixture
async def demo_client(database_url: str, tmp_path: Path) -> Any:
    """A server with the demo's connection and SMTP account, but nothing preloaded."""
    base = load_settings(with_admin_key({"server.database_url": database_url}), environ={})
    settings = dataclasses.replace(demo_settings(base, tmp_path), demo=DemoSettings(enabled=False))
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        test_client.headers.update(ADMIN_HEADERS)
        yield test_client


@pytest.mark.parametrize("path", definition_files(), ids=lambda p: p.name)
async def test_example_is_accepted_and_returned_unchanged(demo_client: Client, path: Path) -> None:
    document = json.loads(path.read_text())
    response = await demo_client.post(BASE, json=document)
    assert response.status_code == 201, response.text
    stored = (await demo_client.get(f"{BASE}/{document['id']}")).json()
    defaults = {"version": "1.0.0", "status": "active"}
    assert stored == {**defaults, **document}


async def test_seed_aliases_are_kept_as_written(demo_client: Client) -> None:
    approval = json.loads(
        (Path(__file__).parents[3] / "definitions" / "document-approval.json").read_text()
    )
    text = json.dumps(approval)
    assert '"custom"' in text  # the example really uses the seed's forms
    response = await demo_client.post(BASE, json=approval)
    assert response.status_code == 201
    assert json.dumps(response.json(), sort_keys=True) == json.dumps(approval, sort_keys=True)


@pytest.mark.parametrize("path", sorted(BROKEN.glob("*.json")), ids=lambda p: p.name)
async def test_broken_example_is_422_naming_every_problem(demo_client: Client, path: Path) -> None:
    document = json.loads(path.read_text())
    response = await demo_client.post(BASE, json=document)
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    expected = await demo_client.app.state.registry.validate(document)  # no database involved
    assert [(d["path"], d["message"]) for d in details] == [
        (p.path, p.message) for p in expected.errors
    ]
    assert len(details) >= 1
    assert (await demo_client.get(BASE)).json()["total"] == 0
