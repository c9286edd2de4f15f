"""``api``: an HTTP request (definition-time side)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from processors.base import DURATION_SCHEMA, TEMPLATE_STRING, ConfigCheck, JSONSchema, Processor

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


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
                    '{"type": "header", "header": …, "value": …}'
                ),
                "properties": {"type": {"enum": ["bearer", "basic", "header"]}},
            },
            "timeout": {**DURATION_SCHEMA, "description": "request timeout"},
            "expected_status": {
                "type": ["integer", "array", "string"],
                "items": {"type": "integer"},
                "description": (
                    'accepted status codes (default any 2xx): 200, [200, 404] or "2xx"'
                ),
            },
            "response_type": {
                "enum": ["auto", "json", "text"],
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
        if isinstance(status, str) and not _is_status_class(status):
            check.error("expected_status", f'{status!r} is not a status class; write e.g. "2xx"')
        for key in ("url", "headers", "query", "json", "body", "auth"):
            if key in config:
                check.template(key, config[key])

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({"status_code", "headers", "data"})


def _is_url_or_template(url: str) -> bool:
    return url.startswith("${") or url.lower().startswith(("http://", "https://"))


def _is_status_class(text: str) -> bool:
    return len(text) == 3 and text[0] in "12345" and text[1:].lower() == "xx"
