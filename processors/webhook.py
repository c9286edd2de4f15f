"""``webhook``: send a signed webhook, or wait for a signed callback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from processors.base import DURATION_SCHEMA, TEMPLATE_STRING, ConfigCheck, JSONSchema, Processor

MODES = ("send", "receive")


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
            "method": {"enum": ["POST", "PUT", "PATCH", "post", "put", "patch"]},
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
        for key in ("url", "headers", "payload", "secret"):
            if key in config:
                check.template(key, config[key])

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        if config.get("mode") == "receive":
            return None  # the callback body becomes the output
        return frozenset({"status_code", "data"})
