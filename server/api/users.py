"""REST routes for users (admin only): create, list, read, change role, disable."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from server.api.body import read_json_object
from server.api.openapi import json_body
from server.api.schemas import ErrorResponse, Offset
from server.config import Settings
from server.errors import InvalidInput, Problem
from server.identity import SEED_ROLES, Actor
from server.security.permissions import permission
from server.security.users import UserService

ERRORS = {
    400: ResponseSpec(ErrorResponse, description="Malformed JSON"),
    401: ResponseSpec(ErrorResponse, description="Authentication required"),
    403: ResponseSpec(ErrorResponse, description="Admin only"),
    404: ResponseSpec(ErrorResponse, description="No such user"),
    409: ResponseSpec(ErrorResponse, description="Username taken, or the last admin"),
    422: ResponseSpec(ErrorResponse, description="Invalid fields: every problem listed"),
}
UserId = Annotated[str, Parameter(description="User id", max_length=64)]
CREATE_BODY = {
    "type": "object",
    "required": ["username", "password", "role"],
    "properties": {
        "username": {"type": "string", "maxLength": 150},
        "password": {"type": "string", "minLength": 8, "maxLength": 1024},
        "role": {"type": "string", "enum": list(SEED_ROLES)},
        "email": {"type": ["string", "null"], "maxLength": 320},
    },
}
CHANGE_BODY = {
    "type": "object",
    "properties": {
        "role": {"type": "string", "enum": list(SEED_ROLES)},
        "disabled": {"type": "boolean"},
        "email": {"type": ["string", "null"], "maxLength": 320},
        "password": {"type": "string", "minLength": 8, "maxLength": 1024},
    },
}


class UserController(Controller):
    path = "/api/v1/users"
    tags = ["security"]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Create a user",
        responses=ERRORS,
        operation_class=json_body("The new user", CREATE_BODY),
        opt=permission("admin"),
    )
    async def create_user(
        self,
        request: Request[Any, Any, Any],
        users: NamedDependency[UserService],
        actor: NamedDependency[Actor],
    ) -> Response[dict[str, Any]]:
        body = await read_json_object(request)
        problems = _text_fields(body, required=("username", "password", "role"))
        if problems:
            raise InvalidInput("the user is invalid", details=problems)
        user = await users.create(
            body["username"],
            body["password"],
            body["role"],
            body.get("email"),
            by=actor.name,
            remote_addr=_client(request),
        )
        return Response(user.as_dict(), status_code=HTTP_201_CREATED)

    @get("/", summary="List users", responses=ERRORS, opt=permission("admin"))
    async def list_users(
        self,
        users: NamedDependency[UserService],
        settings: NamedDependency[Settings],
        limit: Annotated[int, QueryParameter(ge=1)] = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        return await users.list(limit=min(limit, settings.limits.max_page_size), offset=offset)

    @get("/{user_id:str}", summary="One user", responses=ERRORS, opt=permission("admin"))
    async def get_user(
        self, user_id: UserId, users: NamedDependency[UserService]
    ) -> dict[str, Any]:
        return (await users.get(user_id)).as_dict()

    @patch(
        "/{user_id:str}",
        status_code=HTTP_200_OK,
        summary="Change a user: role, disabled, email, password",
        description="Users are never deleted (their name stays in the history): disable "
        'them with {"disabled": true}. The last enabled admin cannot be disabled or demoted.',
        responses=ERRORS,
        operation_class=json_body("The fields to change", CHANGE_BODY),
        opt=permission("admin"),
    )
    async def change_user(
        self,
        user_id: UserId,
        request: Request[Any, Any, Any],
        users: NamedDependency[UserService],
        actor: NamedDependency[Actor],
    ) -> dict[str, Any]:
        body = await read_json_object(request)
        problems = _text_fields(body, required=())
        unknown = sorted(set(body) - set(CHANGE_BODY["properties"]))
        problems += [
            Problem(f"/{k}", "unknown field (role, disabled, email, password)") for k in unknown
        ]
        if "disabled" in body and not isinstance(body["disabled"], bool):
            problems.append(Problem("/disabled", "must be true or false"))
        if problems:
            raise InvalidInput("the change is invalid", details=problems)
        user = await users.update(
            user_id,
            role=body.get("role"),
            disabled=body.get("disabled"),
            email="" if "email" in body and body["email"] is None else body.get("email"),
            password=body.get("password"),
            by=actor.name,
            remote_addr=_client(request),
        )
        return user.as_dict()


def _text_fields(body: dict[str, Any], *, required: tuple[str, ...]) -> list[Problem]:
    """Type problems of the text fields (the service checks their content)."""
    problems = []
    for name in ("username", "password", "role", "email"):
        value = body.get(name)
        if value is None:
            if name in required:
                problems.append(Problem(f"/{name}", "required"))
        elif not isinstance(value, str):
            problems.append(Problem(f"/{name}", "must be text"))
    return problems


def _client(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None
