"""Every error leaves the server in one JSON shape, with the right status.

``{"error": {"code", "message", "details": [{"path", "message"}]}}``. Flowyard's own
errors carry their status and code; Litestar's (unknown route, bad query parameter,
body too large…) are translated; anything unexpected becomes a generic 500 with a
correlation id that is also in the log — never a stack trace or an internal message.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from server.errors import FlowyardError

log = logging.getLogger("flowyard.api")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


def error_body(
    code: str, message: str, details: list[dict[str, str]] | None = None, **extra: Any
) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or [], **extra}}


def _json(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response(content=body, status_code=status, media_type=MediaType.JSON, headers=headers)


def flowyard_error_handler(_: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    assert isinstance(error, FlowyardError)
    if error.status_code >= 500:
        return internal_error_handler(_, error)
    details = [d.as_dict() for d in error.details]
    retry_after = getattr(error, "retry_after", None)  # 429 (server.ratelimit)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    if error.status_code == 401:  # RFC 9110 §11.6.1: say which scheme to use
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="flowyard"'}
    return _json(error.status_code, error_body(error.code, error.message, details), headers)


def http_error_handler(_: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    assert isinstance(error, HTTPException)
    status = error.status_code
    if status >= 500:
        return internal_error_handler(_, error)
    details: list[dict[str, str]] = []
    message = str(error.detail) if error.detail else CODES.get(status, "error")
    if isinstance(error, ValidationException) and isinstance(error.extra, list):
        message = "a request parameter is invalid"
        for item in error.extra:
            if isinstance(item, dict):
                where = item.get("source", "query")
                details.append(
                    {
                        "path": f"/{where}/{item.get('key', '')}",
                        "message": str(item.get("message", "")),
                    }
                )
    if status == 413:
        message = "the request body is larger than the server accepts (limits.max_body_bytes)"
    headers = (
        {"Allow": error.headers["Allow"]} if error.headers and "Allow" in error.headers else None
    )
    return _json(status, error_body(CODES.get(status, "error"), message, details), headers)


def internal_error_handler(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    correlation_id = uuid.uuid4().hex
    log.error(
        "unhandled error",
        exc_info=error,
        extra={
            "action": "api.internal_error",
            "correlation_id": correlation_id,
            "method": request.method,
            "path": request.url.path,
        },
    )
    status = getattr(error, "status_code", 500)
    status = status if isinstance(status, int) and status >= 500 else 500
    code = "unavailable" if status == 503 else "internal_error"
    message = (
        f"{getattr(error, 'message', 'a component is unavailable')}"
        if status == 503 and isinstance(error, FlowyardError)
        else "internal error; quote this reference when reporting it"
    )
    return _json(status, error_body(code, message, correlation_id=correlation_id))


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    FlowyardError: flowyard_error_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}
