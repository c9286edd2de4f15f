"""REST routes for stored secrets (SPEC §8): admins set, list and delete them
(``opt=permission("admin")`` on each route; the app-wide guard applies it).

Values are write-only: ``PUT`` takes one, nothing ever gives one back — lists show names,
times and who changed them last. A node uses a secret as ``${secrets.NAME}`` in its
config (see ``docs/definitions.md``). Thin handlers: parse, call the vault, answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from server.api.body import read_json_object
from server.api.idempotency import idempotent
from server.api.openapi import json_body
from server.api.schemas import ErrorResponse
from server.identity import Actor
from server.secrets.vault import MAX_VALUE_CHARS, MIN_VALUE_CHARS, NAME_RULE, SecretsVault
from server.security.permissions import permission
from server.store.database import Database

ERRORS = {
    400: ResponseSpec(ErrorResponse, description="Malformed JSON"),
    401: ResponseSpec(ErrorResponse, description="Authentication required"),
    403: ResponseSpec(ErrorResponse, description="Only admins manage secrets"),
    404: ResponseSpec(ErrorResponse, description="No such secret"),
    415: ResponseSpec(ErrorResponse, description="Body is not JSON"),
    422: ResponseSpec(ErrorResponse, description="Invalid name or value"),
}
SecretName = Annotated[str, Parameter(description=f"The secret's name: {NAME_RULE}")]
PUT_BODY = {
    "type": "object",
    "required": ["value"],
    "properties": {
        "value": {
            "type": "string",
            "minLength": MIN_VALUE_CHARS,
            "maxLength": MAX_VALUE_CHARS,
            "description": "the secret (write-only: never returned)",
        }
    },
}


@dataclass
class SecretInfo:
    """A stored secret as the API shows it: never its value."""

    name: str
    created_at: str | None
    updated_at: str | None
    updated_by: str | None


@dataclass
class SecretList:
    secrets: list[SecretInfo]
    total: int


def _info(row: dict[str, Any]) -> dict[str, Any]:
    """A secret's JSON (plain data: an idempotent replay stores it as it is)."""
    return {
        "name": row["name"],
        "created_at": _iso(row.get("created_at")),
        "updated_at": _iso(row.get("updated_at")),
        "updated_by": row.get("updated_by"),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


class SecretController(Controller):
    path = "/api/v1/secrets"
    tags = ["secrets"]

    @get(
        "/",
        opt=permission("admin"),
        summary="List secrets (names and times, never values)",
        responses={401: ERRORS[401], 403: ERRORS[403]},
    )
    async def list_secrets(self, vault: NamedDependency[SecretsVault]) -> SecretList:
        rows = await vault.catalog()
        return SecretList([SecretInfo(**_info(row)) for row in rows], len(rows))

    @put(
        "/{name:str}",
        opt=permission("admin"),
        status_code=HTTP_200_OK,
        summary="Create or replace a secret",
        description="201 when the name is new, 200 when its value was replaced; the answer "
        "never contains the value. Honours Idempotency-Key.",
        responses={
            201: ResponseSpec(SecretInfo, description="Created"),
            **{k: v for k, v in ERRORS.items() if k != 404},
        },
        operation_class=json_body("The secret's value", PUT_BODY),
    )
    async def put_secret(
        self,
        name: SecretName,
        request: Request[Any, Any, Any],
        vault: NamedDependency[SecretsVault],
        database: NamedDependency[Database],
        actor: NamedDependency[Actor],
    ) -> Response[Any]:
        body = await read_json_object(request)

        async def produce() -> Response[Any]:
            stored = await vault.put(name, body.get("value"), actor.name)
            status = HTTP_201_CREATED if stored.created else HTTP_200_OK
            return Response(_info(stored.info), status_code=status)

        return await idempotent(request, database, produce)

    @delete(
        "/{name:str}",
        opt=permission("admin"),
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a secret",
        description='Nodes that use it fail from now on ("no secret named …").',
        responses={k: v for k, v in ERRORS.items() if k in (401, 403, 404, 422)},
    )
    async def delete_secret(
        self,
        name: SecretName,
        request: Request[Any, Any, Any],
        vault: NamedDependency[SecretsVault],
        database: NamedDependency[Database],
        actor: NamedDependency[Actor],
    ) -> None:
        async def produce() -> Response[Any]:
            await vault.delete(name, actor.name)
            return Response(None, status_code=HTTP_204_NO_CONTENT)

        await idempotent(request, database, produce)
