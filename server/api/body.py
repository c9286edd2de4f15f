"""Reading JSON request bodies with errors a client can act on.

Handlers read their body through :func:`read_json` instead of letting the framework
decode it, so that a wrong content type is a 415, broken JSON a 400 that says where it
broke, and hostile JSON (NaN, absurd nesting, huge numbers) a clear 400 — not a 500.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request

from server.errors import BadRequest, MalformedJSON, UnsupportedMediaType


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_text(text: str | bytes) -> Any:
    """JSON ``text`` decoded the one way every route and form does it; ValueError with a
    message a person can act on (where it broke, NaN/Infinity, absurd nesting, a number
    too long, bytes that are not UTF-8) — never a RecursionError or a 500.

    The API's request bodies and the dashboard's JSON fields share this, so a value the
    API refuses is refused by the forms too.
    """
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("not valid JSON: nested too deeply") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as problem:
        raise ValueError(
            f"not valid JSON: {problem.msg} at line {problem.lineno}, column {problem.colno}"
        ) from None
    except ValueError as problem:
        message = str(problem)
        if message.endswith("is not valid JSON"):  # NaN, Infinity, -Infinity
            raise ValueError(message) from None
        raise ValueError(f"not valid JSON: {message}") from None


async def read_json(request: Request[Any, Any, Any], *, required: bool = True) -> Any:
    """The decoded body; ``None`` when it is empty and not ``required``."""
    body = await request.body()
    if not body.strip():
        if required:
            raise BadRequest("the request body is empty; send a JSON document")
        return None
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        shown = media_type or "none"
        raise UnsupportedMediaType(
            f"the body must be JSON sent with Content-Type: application/json (got {shown})"
        )
    try:
        return parse_json_text(body)
    except ValueError as error:
        reason = str(error)
        raise MalformedJSON(
            f"the body is {reason}" if reason.startswith("not ") else f"the body: {reason}"
        ) from None


async def read_json_object(request: Request[Any, Any, Any]) -> dict[str, Any]:
    value = await read_json(request)
    if not isinstance(value, dict):
        raise BadRequest(f"the body must be a JSON object, not {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
