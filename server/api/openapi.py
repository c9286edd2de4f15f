"""OpenAPI at ``/schema``, served entirely from this server (no CDN).

Definition documents keep unknown fields (round-trip), so they are not modelled as a
Python type; their schema is the published JSON Schema of the format, registered as the
component ``WorkflowDefinition`` and referenced from the routes that take or return one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import OpenAPIMediaType, Operation, Reference, RequestBody, Schema

from server import __version__
from server.definitions.schema import build_schema

STATIC = "/static/vendor/swagger-ui"
DEFINITION = "WorkflowDefinition"


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Flowyard",
        version=__version__,
        description="Durable workflow-engine server: definitions, executions, approvals.",
        path="/schema",
        render_plugins=[
            SwaggerRenderPlugin(
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
    serializer unchanged.
    """
    schema = {k: v for k, v in build_schema().items() if k not in {"$schema", "$id"}}
    openapi = app.openapi_schema
    if openapi.components.schemas is None:  # pragma: no cover - Litestar always sets it
        openapi.components.schemas = {}
    openapi.components.schemas[DEFINITION] = cast(Schema, schema)


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
