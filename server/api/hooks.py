"""``POST /api/v1/hooks/{path}``: a webhook trigger starts its workflow.

A public route (SPEC §8) with its own check: when the trigger has a secret, the request
must carry a valid Standard Webhooks signature. What happens — rate limits, signature,
input mapping, the exactly-once start — lives in :mod:`server.triggers.hooks`; an
``Idempotency-Key`` header is honoured like on every mutating route.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from server.api.idempotency import idempotency_key, idempotent
from server.api.openapi import json_body
from server.api.schemas import ErrorResponse
from server.security.permissions import permission
from server.store.database import Database
from server.triggers.hooks import HookRequest, Hooks

HOOK_BODY: dict[str, Any] = {
    "description": "any JSON (or text); a JSON object is the execution input unless the "
    "trigger has an `input_mapping`",
}


class HookController(Controller):
    path = "/api/v1/hooks"
    tags = ["triggers"]

    @post(
        "/{hook_path:str}",
        opt=permission("public"),
        status_code=HTTP_202_ACCEPTED,
        summary="Start a workflow through its webhook trigger",
        description=(
            "202 `{status: accepted, execution_id, workflow_id, trigger_id}` when an "
            "execution was started; 200 `{status: duplicate, execution_id, …}` for a repeated "
            "`webhook-id` (or `Idempotency-Key`), which starts nothing new. Triggers with a "
            "`secret` need Standard Webhooks headers (`webhook-id`, `webhook-timestamp` "
            "within 5 minutes, `webhook-signature`)."
        ),
        responses={
            200: ResponseSpec(dict[str, str], description="A repeat, acknowledged"),
            401: ResponseSpec(ErrorResponse, description="Missing or invalid signature"),
            404: ResponseSpec(ErrorResponse, description="No webhook trigger at this path"),
            422: ResponseSpec(ErrorResponse, description="The mapped input is invalid"),
            429: ResponseSpec(ErrorResponse, description="Too many requests"),
            503: ResponseSpec(ErrorResponse, description="The hook's secret is not set"),
        },
        operation_class=json_body("The webhook's payload", HOOK_BODY),
    )
    async def receive(
        self,
        hook_path: Annotated[str, Parameter(description="The trigger's path", max_length=128)],
        request: Request[Any, Any, Any],
        hooks: NamedDependency[Hooks],
        database: NamedDependency[Database],
    ) -> Response[Any]:
        async def produce() -> Response[Any]:
            query: dict[str, list[str]] = {}
            for name, value in request.query_params.multi_items():
                query.setdefault(name, []).append(value)
            hook = HookRequest(
                path=hook_path,
                headers={name.lower(): value for name, value in request.headers.items()},
                query=query,
                body=await request.body(),
                client=request.client.host if request.client else "unknown",
                idempotency_key=idempotency_key(request),
            )
            result = await hooks.receive(hook)
            status = HTTP_202_ACCEPTED if result.status == "accepted" else HTTP_200_OK
            return Response(result.as_dict(), status_code=status)

        return await idempotent(request, database, produce)
