"""``POST /api/v1/callbacks/{token}``: the answer a waiting ``webhook`` node waits for.

A public route (SPEC §8): the unguessable token in the path is the address, and when the
node was given secrets the request must also carry a valid Standard Webhooks signature.
Parsing, verification and answering the wait live in :mod:`server.callbacks`; an
``Idempotency-Key`` header is honoured like on every mutating route.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from server.api.idempotency import idempotent
from server.api.openapi import json_body
from server.api.schemas import ErrorResponse
from server.callbacks import Callbacks
from server.security.permissions import permission
from server.store.database import Database

CALLBACK_BODY: dict[str, Any] = {
    "description": "any JSON (or text); it becomes the waiting node's `payload`",
}


class CallbackController(Controller):
    path = "/api/v1/callbacks"
    tags = ["callbacks"]

    @post(
        "/{token:str}",
        opt=permission("public"),
        status_code=HTTP_202_ACCEPTED,
        summary="Answer a waiting webhook node",
        description=(
            "202 `{status: accepted}` resumes the node with the body as its payload; 200 "
            "`{status: duplicate}` acknowledges a repeat of the same `webhook-id` without a "
            "second effect. Signed nodes need Standard Webhooks headers (`webhook-id`, "
            "`webhook-timestamp` within 5 minutes, `webhook-signature`)."
        ),
        responses={
            200: ResponseSpec(dict[str, str], description="A repeat, acknowledged"),
            401: ResponseSpec(ErrorResponse, description="Missing or invalid signature"),
            404: ResponseSpec(ErrorResponse, description="No callback is expected here"),
            429: ResponseSpec(ErrorResponse, description="Too many requests from this address"),
            422: ResponseSpec(ErrorResponse, description="A body that cannot be stored"),
        },
        operation_class=json_body("The callback's payload", CALLBACK_BODY),
    )
    async def receive(
        self,
        token: Annotated[str, Parameter(description="The token of the waiting node")],
        request: Request[Any, Any, Any],
        callbacks: NamedDependency[Callbacks],
        database: NamedDependency[Database],
    ) -> Response[Any]:
        address = request.client.host if request.client else "unknown"
        callbacks.limiter.check(f"callback:{address}", "callback requests from this address")

        async def produce() -> Response[Any]:
            body = await request.body()
            headers = {name.lower(): value for name, value in request.headers.items()}
            outcome = await callbacks.receive(token, headers, body)
            status = HTTP_202_ACCEPTED if outcome == "accepted" else HTTP_200_OK
            return Response({"status": outcome}, status_code=status)

        return await idempotent(request, database, produce)
