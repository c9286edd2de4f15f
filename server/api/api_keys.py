"""REST routes for API keys (admin only): create (the key is shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import Parameter, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from server.api.body import read_json_object
from server.api.openapi import json_body
from server.api.schemas import ErrorResponse, Offset
from server.config import Settings
from server.errors import InvalidInput, Problem
from server.identity import SEED_ROLES, Actor
from server.security.apikeys import ApiKeyService
from server.security.permissions import permission

ERRORS = {
    400: ResponseSpec(ErrorResponse, description="Malformed JSON"),
    401: ResponseSpec(ErrorResponse, description="Authentication required"),
    403: ResponseSpec(ErrorResponse, description="Admin only"),
    404: ResponseSpec(ErrorResponse, description="No such key"),
    422: ResponseSpec(ErrorResponse, description="Invalid fields: every problem listed"),
}
KeyId = Annotated[str, Parameter(description="API key id", max_length=64)]
CREATE_BODY = {
    "type": "object",
    "required": ["name", "role"],
    "properties": {
        "name": {"type": "string", "maxLength": 200, "description": "what the key is for"},
        "role": {"type": "string", "enum": list(SEED_ROLES)},
    },
}


class ApiKeyController(Controller):
    path = "/api/v1/api-keys"
    tags = ["security"]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Create an API key",
        description="201 with {id, name, role, prefix, key, created_at}: `key` is shown this "
        "once and never again (only its digest is stored).",
        responses=ERRORS,
        operation_class=json_body("The new key", CREATE_BODY),
        opt=permission("admin"),
    )
    async def create_key(
        self,
        request: Request[Any, Any, Any],
        api_keys: NamedDependency[ApiKeyService],
        actor: NamedDependency[Actor],
    ) -> Response[dict[str, Any]]:
        body = await read_json_object(request)
        problems = [
            Problem(f"/{name}", "required: text")
            for name in ("name", "role")
            if not isinstance(body.get(name), str)
        ]
        if problems:
            raise InvalidInput("the API key request is invalid", details=problems)
        created = await api_keys.create(
            body["name"],
            body["role"],
            by=actor.name,
            remote_addr=request.client.host if request.client else None,
        )
        return Response(
            created, status_code=HTTP_201_CREATED, headers={"Cache-Control": "no-store"}
        )

    @get(
        "/",
        summary="List API keys (prefix only)",
        responses=ERRORS,
        opt=permission("admin"),
    )
    async def list_keys(
        self,
        api_keys: NamedDependency[ApiKeyService],
        settings: NamedDependency[Settings],
        revoked: Annotated[
            bool | None, QueryParameter(description="only revoked (true) or live (false) keys")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1)] = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        return await api_keys.list(
            limit=min(limit, settings.limits.max_page_size), offset=offset, revoked=revoked
        )

    @get(
        "/{key_id:str}",
        summary="One API key (prefix only)",
        responses=ERRORS,
        opt=permission("admin"),
    )
    async def get_key(
        self, key_id: KeyId, api_keys: NamedDependency[ApiKeyService]
    ) -> dict[str, Any]:
        return (await api_keys.get(key_id)).as_dict()

    @delete(
        "/{key_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Revoke an API key",
        description="204; the key never authenticates again. Revoking twice is harmless.",
        responses=ERRORS,
        opt=permission("admin"),
    )
    async def revoke_key(
        self,
        key_id: KeyId,
        request: Request[Any, Any, Any],
        api_keys: NamedDependency[ApiKeyService],
        actor: NamedDependency[Actor],
    ) -> None:
        await api_keys.revoke(
            key_id, by=actor.name, remote_addr=request.client.host if request.client else None
        )
