"""JWT bearer tokens (SPEC §8): HS256 and RS256; ``sub``, ``role`` and ``exp`` checked;
only the configured algorithms; ``aud``/``iss`` when configured."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from server.errors import ConfigurationError
from tests.integration.security.conftest import (
    JWT_SECRET,
    Client,
    KeyPair,
    bearer,
    secured_client,
    token,
)

TASKS = "/api/v1/tasks"


async def test_hs256_and_rs256_tokens_act_as_their_subject_and_role(
    client: Client, rsa_keys: KeyPair
) -> None:
    hs = bearer(token("mia", "manager", roles=["finance"]))
    mine = await client.get(TASKS, params={"assignee": "me"}, headers=hs)
    assert mine.status_code == 200
    # the execution started by a token records its subject as the one who started it
    created = await client.post(
        "/api/v1/workflows",
        json={
            "id": "jwt-wf",
            "name": "jwt",
            "nodes": [
                {
                    "id": "n",
                    "name": "n",
                    "type": "transform",
                    "config": {"transform_type": "expression", "expression": "1"},
                }
            ],
            "edges": [],
        },
        headers=hs,
    )
    assert created.status_code == 201, created.text
    started = await client.post(
        "/api/v1/workflows/jwt-wf/execute", json={"triggered_by": "somebody-else"}, headers=hs
    )
    assert started.status_code == 201, started.text
    assert started.json()["triggered_by"] == "mia"
    rs = bearer(token("vic", "viewer", algorithm="RS256", key=rsa_keys.private))
    assert (await client.get(TASKS, headers=rs)).status_code == 200
    assert (await client.post("/api/v1/workflows", json={}, headers=rs)).status_code == 403


@pytest.mark.parametrize(
    ("credential", "reason"),
    [
        (lambda keys: token("ann", "admin", expires_in=-3600), "expired"),
        (lambda keys: token("ann", "admin", secret=JWT_SECRET + "-other"), "signature"),
        (lambda keys: token("ann", None), "'role'"),
        (lambda keys: token("ann", "superuser"), "'role'"),
        (lambda keys: token("ann\nforged", "admin"), "'sub'"),
        (lambda keys: token("ann", "admin", roles="admin"), "'roles'"),
        (lambda keys: _unsigned("ann", "admin"), "not accepted"),
        (
            lambda keys: token("ann", "admin", algorithm="HS512", secret=JWT_SECRET * 2),
            "not accepted",
        ),
        # RS256 configured: an HS256 token "signed" with the public key must not pass
        (lambda keys: _hmac_signed(keys.public_pem), "signature"),
        (lambda keys: "not.a.jwt", "neither"),
    ],
    ids=[
        "expired",
        "other-secret",
        "no-role",
        "unknown-role",
        "bad-sub",
        "bad-roles",
        "alg-none",
        "alg-hs512",
        "public-key-as-hmac-secret",
        "garbage",
    ],
)
async def test_invalid_tokens_are_refused_with_the_reason(
    client: Client, rsa_keys: KeyPair, credential: object, reason: str
) -> None:
    value = credential(rsa_keys)  # type: ignore[operator]
    response = await client.get(TASKS, headers=bearer(value))
    assert response.status_code == 401, response.text
    assert reason in response.json()["error"]["message"]


async def test_a_token_without_exp_is_refused(client: Client) -> None:
    import jwt

    unlimited = jwt.encode({"sub": "ann", "role": "admin"}, JWT_SECRET, algorithm="HS256")
    response = await client.get(TASKS, headers=bearer(unlimited))
    assert response.status_code == 401
    assert "'exp'" in response.json()["error"]["message"]


async def test_without_configured_keys_tokens_are_refused(sqlite_url: str, tmp_path: Path) -> None:
    async with secured_client(sqlite_url, tmp_path, **{"auth.jwt_secret": ""}) as client:
        response = await client.get(TASKS, headers=bearer(token("ann", "admin")))
    assert response.status_code == 401
    assert "accepts no JWTs" in response.json()["error"]["message"]


async def test_audience_and_issuer_are_checked_when_configured(
    sqlite_url: str, tmp_path: Path
) -> None:
    flags = {"auth.jwt_audience": "flowyard", "auth.jwt_issuer": "https://idp.test"}
    async with secured_client(sqlite_url, tmp_path, **flags) as client:
        good = token("ann", "viewer", aud="flowyard", iss="https://idp.test")
        assert (await client.get(TASKS, headers=bearer(good))).status_code == 200
        for wrong in (
            token("ann", "viewer", aud="other", iss="https://idp.test"),
            token("ann", "viewer", aud="flowyard"),
        ):
            assert (await client.get(TASKS, headers=bearer(wrong))).status_code == 401


@pytest.mark.parametrize(
    ("flags", "key"),
    [
        ({"auth.jwt_secret": "too-short"}, "auth.jwt_secret"),
        ({"auth.jwt_public_key": "-----BEGIN PUBLIC KEY-----\nnope\n"}, "auth.jwt_public_key"),
        ({"auth.jwt_public_key": "/nonexistent/key.pem"}, "auth.jwt_public_key"),
    ],
)
async def test_unusable_jwt_settings_stop_the_start(
    sqlite_url: str, tmp_path: Path, flags: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigurationError, match=key.replace(".", r"\.")):
        async with secured_client(sqlite_url, tmp_path, **flags):
            pass


async def test_the_public_key_may_be_a_file(
    sqlite_url: str, tmp_path: Path, rsa_keys: KeyPair
) -> None:
    pem = tmp_path / "jwt.pem"
    pem.write_text(rsa_keys.public_pem)
    async with secured_client(sqlite_url, tmp_path, **{"auth.jwt_public_key": str(pem)}) as client:
        signed = token("vic", "viewer", algorithm="RS256", key=rsa_keys.private)
        assert (await client.get(TASKS, headers=bearer(signed))).status_code == 200


def _part(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


CLAIMS = {"sub": "ann", "role": "admin", "exp": 9999999999}


def _unsigned(sub: str, role: str) -> str:
    return f"{_part({'alg': 'none', 'typ': 'JWT'})}.{_part({**CLAIMS, 'sub': sub, 'role': role})}."


def _hmac_signed(secret: str) -> str:
    """An HS256 token made by hand (PyJWT rightly refuses to use a PEM as HMAC key)."""
    signing_input = f"{_part({'alg': 'HS256', 'typ': 'JWT'})}.{_part(CLAIMS)}"
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
