"""``email``: send a message through a configured SMTP account.

The engine renders ``${…}`` in every key but ``html`` (so ``subject``, ``body`` and the
addresses arrive as text). ``html`` is a Jinja2 template written in the definition and
rendered here, off the event loop, in an immutable sandbox with autoescaping and the
scope as its context: scope values are data that the template prints (escaped), never
template text that gets compiled. A missing name fails the node.

Before anything is sent every header value — subject, from, each address — is checked:
a CR or LF, also one hidden in an RFC 2047 encoded word, fails the node (not retryable).
``Bcc`` addresses reach the envelope, not the headers. The ``Message-ID`` is derived
from the idempotency key, so every attempt of a node sends the same id and a receiver
can drop a duplicate. Output: ``{message_id, accepted}`` (the recipients the server
accepted). Delivery goes through ``services["mail"]``
(:class:`server.integrations.mail.Mailer`); its errors keep their ``retryable``.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
from collections.abc import Mapping
from datetime import UTC
from email.headerregistry import Address
from email.message import EmailMessage
from functools import lru_cache
from typing import Any, ClassVar

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from processors.base import TEMPLATE_STRING, ConfigCheck, JSONSchema, Processor
from processors.database import unknown_name_message
from processors.runtime import Completed, Failed, NodeContext, Outcome
from server.integrations.mail import Mailer, MailError, header_problem

DEFAULT_ACCOUNT = "default"
_ADDRESSES: JSONSchema = {
    "type": ["string", "array"],
    "items": {"type": "string"},
    "description": "address or list of addresses; templated",
}
_HEADER_KEYS = ("subject", "from", "email_to", "cc", "bcc")
#: Characters of rendered HTML; a template that writes more fails the node.
MAX_HTML_CHARS = 2_000_000
#: The largest string or list a template's ``*`` or ``**`` may make (characters/items).
MAX_TEMPLATE_VALUE = 1_000_000


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with ``*`` and ``**`` refused when their result would be huge
    (``{{ 'x' * 10**10 }}`` would exhaust memory before any output limit is reached)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _number(left) and _number(right) and abs(right) > 64:
            raise SecurityError(f"'**' with an exponent of {right} is not allowed in a template")
        if operator == "*":
            for sized, count in ((left, right), (right, left)):
                if (
                    isinstance(sized, str | list | tuple)
                    and isinstance(count, int)
                    and len(sized) * count > MAX_TEMPLATE_VALUE
                ):
                    raise SecurityError(
                        f"repeating a value {count} times in a template would make more "
                        f"than {MAX_TEMPLATE_VALUE:,} items"
                    )
        return super().call_binop(context, operator, left, right)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_SANDBOX = _BoundedSandbox(autoescape=True, undefined=StrictUndefined)


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
    #: a Jinja2 template: ``${…}`` rendering would paste scope values into template text
    unrendered_keys: ClassVar[frozenset[str]] = frozenset({"html"})

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        if config.get("email_to") is None:
            check.error("", "an email node needs 'email_to' (or 'to'): the recipients")
        if config.get("body") is None and config.get("html") is None:
            check.warning("", "the email has neither 'body' nor 'html'; it will be empty")
        for key in _HEADER_KEYS:
            problem = _header_value_problem(key, config.get(key))
            if problem is not None:
                check.error(key, problem)
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
        html = config.get("html")
        if isinstance(html, str):
            try:
                _SANDBOX.parse(html)
            except TemplateSyntaxError as error:
                check.error("html", f"the HTML template does not parse: {_template_error(error)}")

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({"message_id", "accepted"})

    async def run(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        mail = ctx.services.get("mail")
        if not isinstance(mail, Mailer):
            return Failed("this server has no mail service", retryable=False)
        message_id = message_id_for(ctx.idempotency_key)
        try:
            message = await _build(config, ctx, message_id)
        except MessageProblem as problem:
            return Failed(f"{problem}; nothing was sent", retryable=False)
        account = config.get("account")
        try:
            accepted = await mail.send(message, account=account if account else None)
        except MailError as error:
            return Failed(error.message, retryable=error.retryable)
        recipients = [address for _, address in _all_recipients(config)]
        refused = [address for address in recipients if address not in accepted]
        if refused:
            ctx.log(f"the SMTP server refused {len(refused)} recipient(s): {', '.join(refused)}")
        return Completed({"message_id": message_id, "accepted": accepted})


class MessageProblem(ValueError):
    """The config does not make a message that may be sent; the text says why."""


def message_id_for(idempotency_key: str) -> str:
    """``<sha256(key)[:32]@flowyard>``: the same for every attempt of one node run."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@flowyard>"


async def _build(config: Mapping[str, Any], ctx: NodeContext, message_id: str) -> EmailMessage:
    for key in _HEADER_KEYS:
        problem = _header_value_problem(key, config.get(key))
        if problem is not None:
            raise MessageProblem(problem)
    to, cc, bcc = (_addresses(config, key) for key in ("email_to", "cc", "bcc"))
    if not (to or cc or bcc):
        raise MessageProblem("the email has no recipients ('email_to', 'cc' or 'bcc')")
    message = EmailMessage()
    try:
        message["Subject"] = _text(config, "subject")
        sender = config.get("from")
        if sender:
            message["From"] = _one_address(sender, "from")
        for header, addresses in (("To", to), ("Cc", cc), ("Bcc", bcc)):
            if addresses:
                message[header] = addresses
        message["Date"] = email.utils.format_datetime(ctx.now().astimezone(UTC))
        message["Message-ID"] = message_id
    except (ValueError, TypeError) as error:  # the email package refuses the value
        raise MessageProblem(f"cannot build the message headers: {error}") from None
    body = _text(config, "body")
    html_template = config.get("html")
    if html_template is not None:
        if not isinstance(html_template, str):
            raise MessageProblem("'html' must be text (a Jinja2 template)")
        html = await asyncio.to_thread(render_html, html_template, dict(ctx.scope))
        if body:
            message.set_content(body)
            message.add_alternative(html, subtype="html")
        else:
            message.set_content(html, subtype="html")
    else:
        message.set_content(body)
    return message


def render_html(template_text: str, scope: Mapping[str, Any]) -> str:
    """Render the HTML template in the sandbox; :class:`MessageProblem` if it cannot be."""
    try:
        template = _compiled(template_text)
        parts: list[str] = []
        size = 0
        for chunk in template.generate(dict(scope)):
            size += len(chunk)
            if size > MAX_HTML_CHARS:
                raise MessageProblem(f"the HTML is longer than {MAX_HTML_CHARS:,} characters")
            parts.append(chunk)
    except MessageProblem:
        raise
    except TemplateError as error:
        raise MessageProblem(f"the HTML template failed: {_template_error(error)}") from None
    except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as error:
        # e.g. {{ 'a' + 1 }}: the template's own mistake, the same on every attempt
        raise MessageProblem(f"the HTML template failed: {type(error).__name__}: {error}") from None
    return "".join(parts)


@lru_cache(maxsize=128)
def _compiled(template_text: str) -> Template:
    return _SANDBOX.from_string(template_text)


def _template_error(error: TemplateError) -> str:
    line = getattr(error, "lineno", None)
    where = f" (line {line})" if line else ""
    return f"{error.message or type(error).__name__}{where}"


def _text(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise MessageProblem(f"'{key}' must be text, not {type(value).__name__}")


def _header_value_problem(key: str, value: object) -> str | None:
    values = value if isinstance(value, list) else [value]
    for item in values:
        if isinstance(item, str):
            problem = header_problem(f"'{key}'", item)
            if problem is not None:
                return problem
    return None


def _raw_addresses(config: Mapping[str, Any], key: str) -> list[str]:
    value = config.get(key)
    if value is None or value == "":
        return []
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise MessageProblem(f"'{key}' must be an address or a list of addresses (text)")
    return [item for item in items if item.strip()]


def _addresses(config: Mapping[str, Any], key: str) -> list[Address]:
    found = []
    for name, address in email.utils.getaddresses(_raw_addresses(config, key)):
        found.append(_address(name, address, key))
    return found


def _all_recipients(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key in ("email_to", "cc", "bcc"):
        try:
            pairs.extend(email.utils.getaddresses(_raw_addresses(config, key)))
        except MessageProblem:
            continue
    return pairs


def _one_address(value: object, key: str) -> Address:
    if not isinstance(value, str):
        raise MessageProblem(f"'{key}' must be one address (text)")
    pairs = email.utils.getaddresses([value])
    if len(pairs) != 1:
        raise MessageProblem(f"'{key}' must be exactly one address, not {value!r}")
    return _address(*pairs[0], key)


def _address(name: str, address: str, key: str) -> Address:
    if address.count("@") != 1 or address.startswith("@") or address.endswith("@"):
        raise MessageProblem(f"'{key}': {address or name!r} is not an email address")
    try:
        return Address(display_name=name, addr_spec=address)
    except (ValueError, IndexError) as error:
        raise MessageProblem(f"'{key}': {address!r} is not an email address ({error})") from None
