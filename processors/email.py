"""``email``: send a message through a configured SMTP account."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from processors.base import TEMPLATE_STRING, ConfigCheck, JSONSchema, Processor
from processors.database import unknown_name_message

DEFAULT_ACCOUNT = "default"
_ADDRESSES: JSONSchema = {
    "type": ["string", "array"],
    "items": {"type": "string"},
    "description": "address or list of addresses; templated",
}
_HEADER_KEYS = ("subject", "from", "email_to", "cc", "bcc")


class EmailProcessor(Processor):
    """Sends mail with aiosmtplib; Message-ID derives from the idempotency key."""

    type_name: ClassVar[str] = "email"
    description: ClassVar[str] = "Sends an email through a configured SMTP account."
    config_aliases: ClassVar[Mapping[str, str]] = {"to": "email_to"}
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "email_to": {**_ADDRESSES, "description": "recipients (alias: to); templated"},
            "cc": _ADDRESSES,
            "bcc": _ADDRESSES,
            "subject": {**TEMPLATE_STRING, "description": "subject line; templated"},
            "body": {**TEMPLATE_STRING, "description": "plain-text body; templated"},
            "html": {
                "type": "string",
                "description": "Jinja2 HTML template rendered with the scope (autoescaped)",
            },
            "from": {"type": "string", "description": "sender (default: the account's from)"},
            "account": {
                "type": "string",
                "description": f"SMTP account in the server config (default {DEFAULT_ACCOUNT!r})",
            },
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        if config.get("email_to") is None:
            check.error("", "an email node needs 'email_to' (or 'to'): the recipients")
        if config.get("body") is None and config.get("html") is None:
            check.warning("", "the email has neither 'body' nor 'html'; it will be empty")
        for key in _HEADER_KEYS:
            if _has_line_break(config.get(key)):
                check.error(key, f"'{key}' contains a line break, which is not allowed in headers")
        account = config.get("account", DEFAULT_ACCOUNT)
        known = check.context.smtp_accounts
        if isinstance(account, str) and known is not None and account not in known:
            check.error(
                "account" if "account" in config else "",
                unknown_name_message("SMTP account", account, known, "smtp"),
            )
        for key in (*_HEADER_KEYS, "body"):
            if key in config:
                check.template(key, config[key])

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({"message_id", "accepted"})


def _has_line_break(value: object) -> bool:
    if isinstance(value, list):
        return any(_has_line_break(item) for item in value)
    return isinstance(value, str) and ("\r" in value or "\n" in value)
