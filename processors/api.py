"""``api``: an HTTP request with httpx, through the server's outbound policy.

At run time every key is rendered by the engine (secrets in ``auth`` included). The
request goes through ``ctx.services["http"]`` (:class:`server.outbound.client.OutboundHTTP`):
destinations are checked after DNS resolution and on every redirect hop, at most five
hops are followed (none with ``follow_redirects: false``) and the response body is read
up to ``limits.max_response_bytes``.

Every attempt sends ``Idempotency-Key: <ctx.idempotency_key>`` (the same key on every
attempt and after a crash, so the peer can deduplicate) unless the definition sets that
header itself. The outcome:

* a status accepted by ``expected_status`` (default any 2xx) → ``{status_code, headers,
  data}``, ``data`` being the parsed JSON or the text (``response_type``);
* a connection error, a timeout, a 5xx or a 429 → a retryable failure, so the node's
  retry policy applies;
* anything else (a 4xx, a blocked destination, a body over the limit, a config the node
  cannot use) → a final failure with the status and a short excerpt of the body.

Messages never include credentials: URLs are shown without userinfo or query string,
and header values are never repeated.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from processors.base import (
    DURATION_SCHEMA,
    TEMPLATE_STRING,
    ConfigCheck,
    JSONSchema,
    Processor,
    rel,
)
from processors.runtime import Completed, Failed, NodeContext, Outcome
from server.durations import DurationError, parse_duration
from server.outbound.client import DEFAULT_TIMEOUT, HttpResponse, OutboundHTTP, shown_url
from server.outbound.errors import OutboundError

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
RESPONSE_TYPES = ("auto", "json", "text")
AUTH_TYPES = ("bearer", "basic", "header")
EXCERPT_CHARS = 200
NUL_REFUSED = "the response contains a NUL character (\\u0000), which cannot be stored"
#: Above this many bytes a JSON body is parsed off the event loop.
PARSE_IN_THREAD_BYTES = 256 * 1024
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_STATUS_CLASS = re.compile(r"[1-5][xX][xX]")


class ApiConfigError(ValueError):
    """The rendered config cannot make a request; the message says which key and why."""


@dataclass(frozen=True, slots=True)
class StatusMatcher:
    """Accepted statuses: exact codes and classes such as ``2xx``."""

    codes: frozenset[int] = frozenset()
    classes: frozenset[int] = frozenset({2})
    text: str = "2xx"

    def accepts(self, status: int) -> bool:
        return status in self.codes or status // 100 in self.classes

    @classmethod
    def parse(cls, value: object) -> StatusMatcher:
        """From ``200``, ``"2xx"``, ``"404"`` or a list of those; ``None`` → 2xx."""
        if value is None:
            return cls()
        items = value if isinstance(value, list) else [value]
        if not items:
            raise ApiConfigError("'expected_status' is an empty list; give at least one status")
        codes: set[int] = set()
        classes: set[int] = set()
        for item in items:
            kind = status_kind(item)
            if kind is None:
                raise ApiConfigError(
                    f"'expected_status' entry {item!r} is neither a status code (100-599) "
                    'nor a class such as "2xx"'
                )
            if kind == "class":
                classes.add(int(str(item)[0]))
            else:
                codes.add(int(str(item)))
        text = ", ".join(str(item) for item in items)
        return cls(frozenset(codes), frozenset(classes), text)


def status_kind(item: object) -> str | None:
    """``"code"``, ``"class"`` or ``None`` (not a status pattern)."""
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return "code" if 100 <= item <= 599 else None
    if isinstance(item, str):
        text = item.strip()
        if _STATUS_CLASS.fullmatch(text):
            return "class"
        if text.isdigit() and 100 <= int(text) <= 599:
            return "code"
    return None


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """The request a rendered config describes."""

    method: str
    url: str
    headers: dict[str, str]
    params: dict[str, str | list[str]]
    content: bytes | None
    timeout: float
    follow_redirects: bool
    expected: StatusMatcher
    response_type: str
    sensitive_headers: tuple[str, ...] = field(default_factory=tuple)


class ApiProcessor(Processor):
    """Calls an HTTP API with httpx."""

    type_name: ClassVar[str] = "api"
    description: ClassVar[str] = "Makes an HTTP request and returns the status, headers and data."
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "url": {**TEMPLATE_STRING, "description": "absolute http(s) URL; templated"},
            "method": {
                "enum": [*HTTP_METHODS, *(m.lower() for m in HTTP_METHODS)],
                "description": "HTTP method (default GET)",
            },
            "headers": {"type": "object", "description": "request headers; values templated"},
            "query": {"type": "object", "description": "query parameters; values templated"},
            "json": {"description": "JSON request body; strings templated"},
            "body": {"description": "raw request body (text); templated"},
            "auth": {
                "type": ["object", "string"],
                "description": (
                    'credentials, usually from secrets: {"type": "bearer", "token": …}, '
                    '{"type": "basic", "username": …, "password": …} or '
                    '{"type": "header", "name": …, "value": …}; a string is sent as the '
                    "Authorization header"
                ),
                "properties": {"type": {"enum": list(AUTH_TYPES)}},
            },
            "timeout": {**DURATION_SCHEMA, "description": "request timeout (default 30s)"},
            "expected_status": {
                "type": ["integer", "array", "string"],
                "items": {"type": ["integer", "string"]},
                "description": (
                    'accepted status codes (default any 2xx): 200, [200, 404], "2xx" or '
                    '[200, "3xx"]'
                ),
            },
            "response_type": {
                "enum": list(RESPONSE_TYPES),
                "description": "how to read the response body (default auto)",
            },
            "follow_redirects": {
                "type": "boolean",
                "description": "follow up to 5 redirects, checking each hop (default true)",
            },
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        url = config.get("url")
        if url is None:
            check.error("", "an api node needs 'url' (the address to call)")
        elif isinstance(url, str) and not _is_url_or_template(url):
            check.error("url", f"{url!r} is not an http(s) URL; write e.g. https://host/path")
        if config.get("json") is not None and config.get("body") is not None:
            check.error("body", "give either 'json' or 'body', not both")
        if "timeout" in config:
            check.duration("timeout", config["timeout"])
        status = config.get("expected_status")
        entries = status if isinstance(status, list) else [status]
        for index, entry in enumerate(entries):
            if status is None or (isinstance(entry, str) and "${" in entry):
                continue
            if status_kind(entry) is None:
                check.error(
                    rel("expected_status", index)
                    if isinstance(status, list)
                    else "expected_status",
                    f"{entry!r} is neither a status code (100-599) nor a class; write e.g. "
                    '200 or "2xx"',
                )
        auth = config.get("auth")
        if isinstance(auth, dict):
            _check_auth(auth, check)
        headers = config.get("headers")
        if isinstance(headers, dict):
            for name in headers:
                if not _TOKEN.fullmatch(name):
                    check.error(rel("headers", name), f"{name!r} is not a valid header name")
        for key in ("url", "headers", "query", "json", "body", "auth"):
            if key in config:
                check.template(key, config[key])

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({"status_code", "headers", "data"})

    async def run(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        http = ctx.services.get("http")
        if not isinstance(http, OutboundHTTP):
            return Failed("the server has no HTTP service for api nodes", retryable=False)
        try:
            request = build_request(config, ctx.idempotency_key)
        except ApiConfigError as error:
            return Failed(str(error), retryable=False)
        where = f"{request.method} {shown_url(request.url)}"
        try:
            response = await http.request(
                request.method,
                request.url,
                headers=request.headers,
                params=request.params,
                content=request.content,
                timeout=request.timeout,
                follow_redirects=request.follow_redirects,
                sensitive_headers=request.sensitive_headers,
            )
        except OutboundError as error:
            return Failed(f"{where}: {error.message}", retryable=error.retryable)
        if not request.expected.accepts(response.status_code):
            return status_failure(where, response, request.expected.text)
        try:
            data = await read_data(response, request.response_type)
        except ApiConfigError as error:
            return Failed(f"{where}: {error}", retryable=False)
        if has_nul(data):
            return Failed(f"{where}: {NUL_REFUSED}", retryable=False)
        return Completed(
            {
                "status_code": response.status_code,
                "headers": response_headers(response),
                "data": data,
            }
        )


def build_request(config: Mapping[str, Any], idempotency_key: str) -> ApiRequest:
    """The request of a rendered config; :class:`ApiConfigError` says what is wrong."""
    url = config.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ApiConfigError(f"'url' must be an http(s) URL, not {_kind(url)}")
    method = config.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
        raise ApiConfigError(f"'method' must be one of {', '.join(HTTP_METHODS)}")
    headers = header_dict(config.get("headers"))
    sensitive: tuple[str, ...] = ()
    auth = config.get("auth")
    if auth is not None:
        name, value = auth_header(auth)
        headers[name] = value
        sensitive = (name,)
    content: bytes | None = None
    if config.get("json") is not None and config.get("body") is not None:
        raise ApiConfigError("give either 'json' or 'body', not both")
    if config.get("json") is not None:
        content = json_bytes(config["json"], "json")
        _default_header(headers, "Content-Type", "application/json")
    elif config.get("body") is not None:
        body = config["body"]
        if isinstance(body, str):
            content = body.encode()
            _default_header(headers, "Content-Type", "text/plain; charset=utf-8")
        else:
            content = json_bytes(body, "body")
            _default_header(headers, "Content-Type", "application/json")
    _default_header(headers, "Idempotency-Key", idempotency_key)
    response_type = config.get("response_type", "auto")
    if response_type not in RESPONSE_TYPES:
        raise ApiConfigError(f"'response_type' must be one of {', '.join(RESPONSE_TYPES)}")
    follow = config.get("follow_redirects", True)
    if not isinstance(follow, bool):
        raise ApiConfigError("'follow_redirects' must be true or false")
    return ApiRequest(
        method=method.upper(),
        url=url.strip(),
        headers=headers,
        params=query_params(config.get("query")),
        content=content,
        timeout=request_timeout(config.get("timeout")),
        follow_redirects=follow,
        expected=StatusMatcher.parse(config.get("expected_status")),
        response_type=response_type,
        sensitive_headers=sensitive,
    )


def header_dict(value: object, key: str = "headers") -> dict[str, str]:
    """Headers as text; ``None`` values are left out, line breaks refused."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiConfigError(f"'{key}' must be an object of header names to values")
    headers: dict[str, str] = {}
    for name, raw in value.items():
        if raw is None:
            continue
        text = _scalar_text(raw, f"{key}.{name}")
        headers[check_header(str(name), text, key)] = text
    return headers


def check_header(name: str, value: str, key: str = "headers") -> str:
    """``name`` when it is a valid header name and ``value`` has no line break."""
    if not _TOKEN.fullmatch(name):
        raise ApiConfigError(f"'{key}': {name!r} is not a valid header name")
    if any(char in value for char in "\r\n\0"):
        raise ApiConfigError(f"'{key}': the value of {name!r} contains a line break")
    return name


def auth_header(auth: object) -> tuple[str, str]:
    """The header that carries ``auth`` (values are never put in messages)."""
    if isinstance(auth, str):
        return check_header("Authorization", auth, "auth"), auth
    if not isinstance(auth, dict):
        raise ApiConfigError('\'auth\' must be an object such as {"type": "bearer", …}')
    kind = auth.get("type")
    if kind == "bearer":
        token = _required_text(auth, "token")
        return check_header("Authorization", f"Bearer {token}", "auth"), f"Bearer {token}"
    if kind == "basic":
        username = _required_text(auth, "username")
        password = auth.get("password", "")
        password = "" if password is None else _scalar_text(password, "auth.password")
        pair = base64.b64encode(f"{username}:{password}".encode()).decode()
        return "Authorization", f"Basic {pair}"
    if kind == "header":
        name = auth.get("name", auth.get("header"))
        if not isinstance(name, str) or not name:
            raise ApiConfigError("'auth' of type header needs 'name' (the header to send)")
        value = _required_text(auth, "value")
        return check_header(name, value, "auth"), value
    raise ApiConfigError(f"'auth.type' must be one of {', '.join(AUTH_TYPES)}")


def query_params(value: object) -> dict[str, str | list[str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiConfigError("'query' must be an object of parameter names to values")
    params: dict[str, str | list[str]] = {}
    for name, raw in value.items():
        if raw is None:
            continue
        if isinstance(raw, list):
            params[str(name)] = [_scalar_text(item, f"query.{name}") for item in raw]
        else:
            params[str(name)] = _scalar_text(raw, f"query.{name}")
    return params


def request_timeout(value: object) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = parse_duration(value)
    except DurationError as error:
        raise ApiConfigError(f"'timeout': {error}") from None
    if seconds <= 0:
        raise ApiConfigError("'timeout' must be more than zero")
    return seconds


def json_bytes(value: object, key: str) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as error:
        raise ApiConfigError(f"'{key}' cannot be sent as JSON: {error}") from None


async def read_data(response: HttpResponse, response_type: str) -> Any:
    """The body as JSON or text, per ``response_type`` (``None`` when empty)."""
    if not response.content:
        return None
    if response_type == "text":
        return response.text()
    wants_json = response_type == "json" or is_json_type(response.headers.get("content-type"))
    if not wants_json:
        return response.text()
    try:
        if len(response.content) > PARSE_IN_THREAD_BYTES:
            return await asyncio.to_thread(json.loads, response.content)
        return json.loads(response.content)
    except (ValueError, RecursionError) as error:
        if response_type == "auto":
            return response.text()  # it said JSON but is not: keep what it sent
        raise ApiConfigError(
            f"the response is not JSON ({error}); body starts with {excerpt(response)!r}"
        ) from None


def has_nul(value: Any) -> bool:
    """Whether a NUL character sits in any string (or key) of a JSON value.

    PostgreSQL cannot store one in JSON, so such data is refused on every backend alike.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def is_json_type(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def response_headers(response: HttpResponse) -> dict[str, str]:
    """Lower-case names; a repeated header's values joined with ``", "``."""
    headers: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def status_failure(where: str, response: HttpResponse, expected: str) -> Failed:
    """An unexpected status: retryable for 5xx and 429, final otherwise."""
    status = response.status_code
    shown = excerpt(response)
    body = f"; body: {shown}" if shown else ""
    return Failed(
        f"{where} answered {status} (expected {expected}){body}",
        retryable=status >= 500 or status == 429,
        details={"status_code": status},
    )


def excerpt(response: HttpResponse) -> str:
    """The start of the body on one line, control characters removed."""
    text = response.content[: EXCERPT_CHARS * 4].decode(response.encoding, errors="replace")
    text = "".join(char if char.isprintable() else " " for char in text)
    text = " ".join(text.split())
    return text[:EXCERPT_CHARS] + ("…" if len(text) > EXCERPT_CHARS else "")


def _default_header(headers: dict[str, str], name: str, value: str) -> None:
    if not any(existing.lower() == name.lower() for existing in headers):
        headers[name] = value


def _scalar_text(value: object, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ApiConfigError(f"'{key}' must be text or a number, not {_kind(value)}")


def _required_text(auth: Mapping[str, Any], key: str) -> str:
    value = auth.get(key)
    if value is None or value == "":
        raise ApiConfigError(f"'auth' of type {auth.get('type')} needs '{key}'")
    return _scalar_text(value, f"auth.{key}")


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "text", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _check_auth(auth: Mapping[str, Any], check: ConfigCheck) -> None:
    kind = auth.get("type")
    needed = {"bearer": ("token",), "basic": ("username",), "header": ("value",)}
    if not isinstance(kind, str) or kind not in needed:
        return  # the schema reports a wrong type
    for key in needed[kind]:
        if auth.get(key) is None:
            check.error(f"auth/{key}", f"auth of type {kind} needs '{key}'")
    if kind == "header" and auth.get("name", auth.get("header")) is None:
        check.error("auth/name", "auth of type header needs 'name' (the header to send)")


def _is_url_or_template(url: str) -> bool:
    return url.startswith("${") or url.lower().startswith(("http://", "https://"))
