"""Named SMTP accounts: ``services["mail"]`` sends an :class:`EmailMessage` through one.

Every ``[smtp.NAME]`` setting is an account (host, port, ``security`` none / starttls /
tls, optional login, the default ``from``, a timeout). :meth:`Mailer.send` delivers a
message with aiosmtplib, one SMTP session per message, and answers the recipients the
server accepted. Before anything is sent it refuses a header whose value holds CR or LF
— also when the line break hides in an RFC 2047 encoded word (``=?UTF-8?Q?=0A?=``) — so
no input can add headers or recipients. ``Bcc`` recipients go into the envelope only.

Failures are :class:`MailError`\\ s whose ``retryable`` tells a caller whether another
attempt may succeed: no connection, a timeout, a dropped session or a 4xx answer are
retryable; a 5xx refusal, a failed login or an unsafe header are not.
"""

from __future__ import annotations

import email.errors
import email.header
import socket
from collections.abc import Iterable, Mapping
from email.message import EmailMessage, Message

import aiosmtplib
from aiosmtplib.email import extract_recipients, extract_sender

from server.config import SmtpSettings
from server.durations import DurationError, parse_duration
from server.errors import ConfigurationError, FlowyardError

DEFAULT_ACCOUNT = "default"


class MailError(FlowyardError):
    """The message could not be sent."""

    status_code = 502
    code = "mail_error"

    def __init__(self, message: str | None = None, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class UnknownMailAccount(MailError):
    """No SMTP account is configured under that name."""

    status_code = 422
    code = "unknown_smtp_account"


class UnsafeHeader(MailError):
    """A header value contains a line break; nothing was sent."""

    status_code = 422
    code = "unsafe_mail_header"


def header_problem(label: str, value: object) -> str | None:
    """Why ``value`` may not be a header value; ``None`` when it may.

    A raw CR or LF, or one that an RFC 2047 encoded word decodes to, could start a new
    header (a second ``Bcc:``, say) in some mail software along the way. ``label`` names
    the value in the message (``"header 'Subject'"``, ``"'subject'"``).
    """
    text = str(value)
    if "\r" in text or "\n" in text:
        return f"{label} contains a line break (CR or LF), which is not allowed in headers"
    if "=?" not in text:
        return None
    try:
        decoded = "".join(
            part.decode(charset or "ascii", errors="replace") if isinstance(part, bytes) else part
            for part, charset in email.header.decode_header(text)
        )
    except (ValueError, LookupError, email.errors.HeaderParseError):
        return f"{label} contains an encoded word (RFC 2047) that cannot be decoded"
    if "\r" in decoded or "\n" in decoded:
        return (
            f"{label} contains an encoded word (RFC 2047) that decodes to a line break, "
            "which is not allowed in headers"
        )
    return None


def check_headers(message: Message) -> None:
    """Raise :class:`UnsafeHeader` for the first header (of any part) with a line break."""
    for part in message.walk():
        for name, value in part.raw_items():
            problem = header_problem(f"header {name!r}", value)
            if problem is not None:
                raise UnsafeHeader(f"{problem}; nothing was sent")


class Mailer:
    """``services["mail"]``: sends messages through the configured SMTP accounts."""

    def __init__(self, accounts: Mapping[str, SmtpSettings]) -> None:
        self._accounts = dict(accounts)
        self._timeouts = {name: _timeout(name, s) for name, s in self._accounts.items()}
        for name, settings in self._accounts.items():
            if not 0 < settings.port <= 65535:
                raise ConfigurationError(f"smtp.{name}.port", f"{settings.port} is not a TCP port")
        # Named here, so aiosmtplib never looks up this machine's name in DNS.
        self._local_hostname = socket.gethostname() or "localhost"

    def accounts(self) -> list[str]:
        """The configured account names."""
        return sorted(self._accounts)

    def account_name(self, account: str | None = None) -> str:
        """The account ``send`` would use: ``account``, else ``default``, else the only one."""
        if account is not None:
            if account in self._accounts:
                return account
            known = ", ".join(self.accounts()) or "none"
            raise UnknownMailAccount(
                f"SMTP account {account!r} is not configured (configured: {known}); add "
                f"[smtp.{account}] to the server configuration"
            )
        if DEFAULT_ACCOUNT in self._accounts:
            return DEFAULT_ACCOUNT
        if len(self._accounts) == 1:
            return next(iter(self._accounts))
        known = ", ".join(self.accounts()) or "none"
        raise UnknownMailAccount(
            f"no SMTP account given and none is named {DEFAULT_ACCOUNT!r} (configured: "
            f"{known}); name one, or add [smtp.{DEFAULT_ACCOUNT}] to the server configuration"
        )

    async def send(self, message: EmailMessage, *, account: str | None = None) -> list[str]:
        """Send ``message``; the recipients (To, Cc, Bcc) the server accepted.

        A message without ``From`` gets the account's ``from``. Raises
        :class:`UnknownMailAccount`, :class:`UnsafeHeader` (before connecting) or
        :class:`MailError` with ``retryable`` set.
        """
        name = self.account_name(account)
        settings = self._accounts[name]
        check_headers(message)
        if message["From"] is None:
            message["From"] = settings.sender
        sender = extract_sender(message) or settings.sender
        recipients = _unique(extract_recipients(message))
        if not recipients:
            raise MailError("the message has no recipients (To, Cc or Bcc)")
        try:
            refused, _ = await aiosmtplib.send(
                message,
                sender=sender,
                recipients=recipients,
                hostname=settings.host,
                port=settings.port,
                username=settings.username or None,
                password=settings.password or None,
                use_tls=settings.security == "tls",
                start_tls=settings.security == "starttls",
                timeout=self._timeouts[name],
                local_hostname=self._local_hostname,
            )
        except aiosmtplib.SMTPException as error:
            raise _failure(error, name, settings) from None
        except OSError as error:  # refused, unreachable, TLS trouble
            raise MailError(
                f"cannot reach the SMTP server of account {name!r} "
                f"({settings.host}:{settings.port}): {type(error).__name__}: {error}",
                retryable=True,
            ) from None
        return [address for address in recipients if address not in refused]


def _failure(error: aiosmtplib.SMTPException, name: str, settings: SmtpSettings) -> MailError:
    where = f"the SMTP server of account {name!r} ({settings.host}:{settings.port})"
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        refusals = ", ".join(f"{r.recipient} ({r.code} {r.message})" for r in error.recipients)
        temporary = all(400 <= r.code < 500 for r in error.recipients)
        return MailError(f"{where} refused every recipient: {refusals}", retryable=temporary)
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return MailError(
            f"{where} refused the login: {error.code} {error.message}",
            retryable=400 <= error.code < 500,
        )
    if isinstance(error, aiosmtplib.SMTPResponseException):
        temporary = 400 <= error.code < 500
        kind = "temporarily refused" if temporary else "refused"
        return MailError(
            f"{where} {kind} the message: {error.code} {error.message}", retryable=temporary
        )
    if isinstance(error, aiosmtplib.SMTPTimeoutError):
        return MailError(f"{where} did not answer in time ({error})", retryable=True)
    if isinstance(error, aiosmtplib.SMTPConnectError):
        return MailError(f"cannot reach {where} ({error})", retryable=True)
    if isinstance(error, aiosmtplib.SMTPServerDisconnected):
        return MailError(f"{where} closed the connection ({error})", retryable=True)
    return MailError(f"{where}: {type(error).__name__}: {error}", retryable=False)


def _timeout(name: str, settings: SmtpSettings) -> float:
    try:
        return parse_duration(settings.timeout)
    except DurationError as error:
        raise ConfigurationError(f"smtp.{name}.timeout", str(error)) from None


def _unique(addresses: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(a for a in addresses if a))
