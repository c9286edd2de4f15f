"""``webhook``: send a signed webhook, or wait for a signed callback (Standard Webhooks).

``mode: send`` (default) POSTs (or ``method``) ``payload`` as JSON to ``url`` through the
server's HTTP service (``ctx.services["http"]``: the outbound policy, no redirects
followed, the response size limit). Every attempt carries ``webhook-id`` = the node's
idempotency key (the same on every attempt, so the receiver can deduplicate) and a fresh
``webhook-timestamp``; with ``secret`` set it also carries ``webhook-signature``, signed
with the first secret (:func:`server.signing.sign`). Connection errors, timeouts, 5xx and
429 are retryable failures, so the node's retry policy applies; other non-2xx statuses
fail at once.

``mode: receive`` creates an unguessable token (256 random bits), answers
``Waiting("callback", until=now + timeout)`` and logs the callback path
``/api/v1/callbacks/<token>``. The route (``server.callbacks``) verifies the signature
against the secrets stored with the wait and answers the wait; ``resume`` then completes
the node with ``{payload, headers, received_at}``. A wait that reaches its ``timeout``
without a callback is resumed with no data and fails.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from processors.api import (
    NUL_REFUSED,
    ApiConfigError,
    StatusMatcher,
    has_nul,
    header_dict,
    json_bytes,
    read_data,
    request_timeout,
    status_failure,
)
from processors.base import DURATION_SCHEMA, TEMPLATE_STRING, ConfigCheck, JSONSchema, Processor
from processors.runtime import Completed, Failed, NodeContext, Outcome, Waiting, WaitResolution
from server.durations import DurationError, format_duration, parse_duration
from server.outbound.client import OutboundHTTP, shown_url
from server.outbound.errors import OutboundError
from server.signing import SignatureError, secret_key, sign

MODES = ("send", "receive")
SEND_METHODS = ("POST", "PUT", "PATCH")
CALLBACK_PATH = "/api/v1/callbacks/"
TOKEN_BYTES = 32


class WebhookProcessor(Processor):
    """Standard Webhooks: signed sends, and callbacks verified on receipt."""

    type_name: ClassVar[str] = "webhook"
    description: ClassVar[str] = (
        "Sends a signed webhook (mode send) or waits for a signed callback (mode receive)."
    )
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "mode": {"enum": list(MODES), "description": "send (default) or receive"},
            "url": {**TEMPLATE_STRING, "description": "send: destination URL; templated"},
            "method": {"enum": [*SEND_METHODS, *(m.lower() for m in SEND_METHODS)]},
            "headers": {"type": "object", "description": "extra headers; templated"},
            "payload": {"description": "send: JSON payload; strings templated"},
            "secret": {
                "type": ["string", "array"],
                "items": {"type": "string"},
                "description": "signing secret(s), usually ${secrets.NAME}; a list for rotation",
            },
            "timeout": {
                **DURATION_SCHEMA,
                "description": "send: request timeout; receive: how long to wait",
            },
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        mode = config.get("mode", "send")
        url = config.get("url")
        if mode == "send" and url is None:
            check.error("", "a webhook in send mode needs 'url' (use mode 'receive' to wait)")
        if mode == "receive" and url is not None:
            check.warning("url", "'url' is ignored in receive mode (callers use the callback URL)")
        if isinstance(url, str) and not url.startswith(("${", "http://", "https://")):
            check.error("url", f"{url!r} is not an http(s) URL; write e.g. https://host/path")
        if "timeout" in config:
            check.duration("timeout", config["timeout"])
        secret = config.get("secret")
        if secret == "" or secret == []:  # nosec B105  # an emptiness check
            check.error("secret", "'secret' is empty; leave it out to send unsigned")
        for key in ("url", "headers", "payload", "secret"):
            if key in config:
                check.template(key, config[key])

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        if config.get("mode") == "receive":
            return frozenset({"payload", "headers", "received_at"})
        return frozenset({"status_code", "data"})

    async def run(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        mode = config.get("mode", "send")
        if mode == "receive":
            return await self._wait_for_callback(config, ctx)
        if mode != "send":
            return Failed(f"'mode' must be send or receive, not {mode!r}", retryable=False)
        return await self._send(config, ctx)

    async def resume(
        self, config: Mapping[str, Any], ctx: NodeContext, wait: WaitResolution
    ) -> Outcome:
        if not wait.data:
            waited = wait.wait_data.get("timeout") or "its timeout"
            return Failed(
                f"no callback arrived within {waited} (POST {CALLBACK_PATH}<token>)",
                retryable=False,
            )
        return Completed(
            {
                "payload": wait.data.get("payload"),
                "headers": dict(wait.data.get("headers") or {}),
                "received_at": wait.data.get("received_at"),
            }
        )

    async def _wait_for_callback(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        try:
            keys = secret_list(config.get("secret"))
            for key in keys:
                secret_key(key)  # a malformed whsec_ secret fails now, not at the callback
        except (ApiConfigError, SignatureError) as error:
            return Failed(str(error), retryable=False)
        until = None
        shown_timeout = None
        if config.get("timeout") is not None:
            try:
                seconds = parse_duration(config["timeout"])
            except DurationError as error:
                return Failed(f"'timeout': {error}", retryable=False)
            until = ctx.now() + timedelta(seconds=seconds)
            shown_timeout = format_duration(seconds)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        path = CALLBACK_PATH + token
        ctx.log(
            f"waiting for a callback: POST {path}"
            + (" (signed: Standard Webhooks)" if keys else "")
            + (f", for at most {shown_timeout}" if shown_timeout else "")
        )
        data: dict[str, Any] = {"callback_url": path, "timeout": shown_timeout}
        seal = getattr(ctx.services.get("secrets"), "seal", None)
        if keys and seal is not None:
            # kept with the wait until the callback comes: encrypted, never in clear
            data["sealed_secrets"] = [await seal(key) for key in keys]
        else:
            data["secrets"] = keys
        return Waiting("callback", until=until, token=token, data=data)

    async def _send(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        http = ctx.services.get("http")
        if not isinstance(http, OutboundHTTP):
            return Failed("the server has no HTTP service for webhook nodes", retryable=False)
        url = config.get("url")
        method = config.get("method", "POST")
        try:
            if not isinstance(url, str) or not url.strip():
                raise ApiConfigError("'url' must be an http(s) URL")
            if not isinstance(method, str) or method.upper() not in SEND_METHODS:
                raise ApiConfigError(f"'method' must be one of {', '.join(SEND_METHODS)}")
            keys = secret_list(config.get("secret"))
            body = json_bytes(config.get("payload", {}), "payload")
            headers = header_dict(config.get("headers"))
            timeout = request_timeout(config.get("timeout"))
            timestamp = int(ctx.now().timestamp())
            if keys:
                signed = sign(keys, ctx.idempotency_key, timestamp, body)
            else:
                signed = {"webhook-id": ctx.idempotency_key, "webhook-timestamp": str(timestamp)}
        except (ApiConfigError, SignatureError) as error:
            return Failed(str(error), retryable=False)
        headers = {
            name: value
            for name, value in headers.items()
            if name.lower() not in signed and name.lower() != "content-type"
        }
        headers.update({"Content-Type": "application/json", **signed})
        where = f"{method.upper()} {shown_url(url)}"
        try:
            response = await http.request(
                method.upper(),
                url.strip(),
                headers=headers,
                content=body,
                timeout=timeout,
                follow_redirects=False,
            )
        except OutboundError as error:
            return Failed(f"{where}: {error.message}", retryable=error.retryable)
        expected = StatusMatcher()
        if not expected.accepts(response.status_code):
            return status_failure(where, response, expected.text)
        data = await read_data(response, "auto")
        if has_nul(data):
            return Failed(f"{where}: {NUL_REFUSED}", retryable=False)
        return Completed({"status_code": response.status_code, "data": data})


def secret_list(value: object) -> list[str]:
    """``secret`` as a list (empty when unset); an empty secret is an error, not "unsigned"."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise ApiConfigError(
            "'secret' must be a non-empty string or a list of them (leave it out to send unsigned)"
        )
    return [str(item) for item in items]
