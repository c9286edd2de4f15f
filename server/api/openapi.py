"""OpenAPI at ``/schema``, served entirely from this server (no CDN).

Definition documents keep unknown fields (round-trip), so they are not modelled as a
Python type; their schema is the published JSON Schema of the format, registered as the
component ``WorkflowDefinition`` and referenced from the routes that take or return one.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, cast

from litestar import Litestar, Request, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import OpenAPIMediaType, Operation, Reference, RequestBody, Schema

from server import __version__
from server.definitions.schema import build_schema
from server.security.permissions import permission

STATIC = "/static/vendor/swagger-ui"
DEFINITION = "WorkflowDefinition"


class SwaggerPage(SwaggerRenderPlugin):
    """Swagger UI with no inline script, as the pages' CSP (``script-src 'self'``) requires.

    Litestar's page starts Swagger UI from an inline ``<script>`` holding the whole
    document; this one loads ``/static/js/swagger-init.js``, which fetches
    ``openapi.json`` (its URL is in the container's ``data-spec-url``).
    """

    def __init__(self, *, spec_url: str, **kwargs: Any) -> None:
        self.spec_url = spec_url
        super().__init__(**kwargs)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema.get("info", {}).get("title", "API")))
        spec_url = html.escape(self.spec_url)
        page = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <link href="{html.escape(self.css_url)}" rel="stylesheet">
</head>
<body>
  <div id="swagger-container" data-spec-url="{spec_url}"></div>
  <script src="{html.escape(self.js_url)}"></script>
  <script src="{html.escape(self.standalone_preset_js_url)}"></script>
  <script src="/static/js/swagger-init.js"></script>
</body>
</html>
"""
        return page.encode()


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Flowyard",
        version=__version__,
        description="Durable workflow-engine server: definitions, executions, approvals.",
        # The documentation is public (SPEC §8): it describes the API and holds no data.
        openapi_router=Router(path="/schema", route_handlers=[], opt=permission("public")),
        render_plugins=[
            SwaggerPage(
                spec_url="/schema/openapi.json",
                js_url=f"{STATIC}/swagger-ui-bundle.js",
                css_url=f"{STATIC}/swagger-ui.css",
                standalone_preset_js_url=f"{STATIC}/swagger-ui-standalone-preset.js",
                path="/",
                favicon="",
            )
        ],
    )


def register_definition_schema(app: Litestar) -> None:
    """Add the format's JSON Schema as a component of the app's OpenAPI document.

    Litestar replaces configured component schemas with the ones it generates, so the
    component is added to the built document; raw JSON Schema passes through its
    serializer unchanged. The schema's ``$defs`` become components of their own
    (``WorkflowDefinition.node`` …) and its ``#/$defs/…`` references point at them: inside
    the OpenAPI document ``#`` is the document's root, where no ``$defs`` exists, so
    clients (and schemathesis) could not resolve them.

    The ``if``/``then`` that picks a node's ``config`` schema by its ``type`` is left out
    of this copy: request generators such as schemathesis cannot build examples from
    conditional schemas (nor from the recursion it brings in: a loop's config holds
    nodes). ``config`` is any object here; each type's schema stays a component
    (``WorkflowDefinition.config-<type>``) and is served by ``GET /api/v1/node-types``.
    The validator always applies the full schema.
    """
    schema = {k: v for k, v in build_schema().items() if k not in {"$schema", "$id"}}
    definitions: dict[str, Any] = schema.pop("$defs", {})
    openapi = app.openapi_schema
    if openapi.components.schemas is None:  # pragma: no cover - Litestar always sets it
        openapi.components.schemas = {}
    components = openapi.components.schemas
    components[DEFINITION] = cast(Schema, _for_openapi(schema))
    for name, part in definitions.items():
        components[f"{DEFINITION}.{name}"] = cast(Schema, _for_openapi(part))


DEFS = "#/$defs/"
#: Conditional keywords left out of the OpenAPI copy (see register_definition_schema).
CONDITIONALS = frozenset({"if", "then", "else"})


def _for_openapi(value: Any) -> Any:
    """A copy of ``value`` whose ``#/$defs/X`` references name the hoisted components,
    without conditional keywords."""
    if isinstance(value, list):
        return [_for_openapi(item) for item in value]
    if not isinstance(value, dict):
        return value
    copied = {key: _for_openapi(item) for key, item in value.items() if key not in CONDITIONALS}
    ref = copied.get("$ref")
    if isinstance(ref, str) and ref.startswith(DEFS):
        copied["$ref"] = f"#/components/schemas/{DEFINITION}.{ref[len(DEFS) :]}"
    return copied


def _ref(name: str) -> Reference:
    return Reference(ref=f"#/components/schemas/{name}")


def documents(*, request: bool = False, response: int | None = None) -> type[Operation]:
    """An ``operation_class`` whose body and/or success response is a definition document."""

    @dataclass
    class DefinitionOperation(Operation):
        def __post_init__(self) -> None:
            if request:
                self.request_body = RequestBody(
                    content={"application/json": OpenAPIMediaType(schema=_ref(DEFINITION))},
                    required=True,
                    description="A workflow definition (SPEC §2).",
                )
            if response is not None and self.responses:
                entry: Any = self.responses.get(str(response))
                if entry is not None and not isinstance(entry, Reference):
                    entry.content = {"application/json": OpenAPIMediaType(schema=_ref(DEFINITION))}

    return DefinitionOperation


def json_body(description: str, schema: dict[str, Any]) -> type[Operation]:
    """An ``operation_class`` documenting a JSON body read by hand (``read_json``)."""

    @dataclass
    class BodyOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=cast(Schema, schema))},
                required=True,
                description=description,
            )

    return BodyOperation
