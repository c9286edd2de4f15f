"""``email`` nodes through the REST API against a real SMTP server (aiosmtpd) on
127.0.0.1. The server records every session and message as it arrived on the wire, so
the assertions are about the envelope and the raw message, not our own objects.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from server.config import SmtpSettings
from server.integrations.mail import Mailer, UnknownMailAccount, UnsafeHeader
from tests.acceptance.conftest import free_port
from tests.integration.engine.conftest import (
    BASE,
    Client,
    chain,
    engine_client,
    node,
    node_runs,
    run,
    script,
    workflow,
)

QUICK_RETRIES = {"max_attempts": 3, "delay": 0.01, "backoff": "fixed"}
LOGIN = ("mailer", "right-password")
BAD_PASSWORD = "not-the-password"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.raw)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpPeer:
    """An aiosmtpd server on a random port that keeps what it receives.

    ``refuse`` maps a recipient to the reply its RCPT gets (e.g. ``"550 no such user"``);
    ``data_replies`` are answered to the next DATA commands, in order, before ``250``.
    """

    port: int = 0
    received: list[Received] = field(default_factory=list)
    data_attempts: list[bytes] = field(default_factory=list)
    sessions: int = 0
    refuse: dict[str, str] = field(default_factory=dict)
    data_replies: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.data_attempts.append(raw)
        if self.data_replies:
            return self.data_replies.pop(0)
        self.received.append(Received(envelope.mail_from or "", list(envelope.rcpt_tos), raw))
        return "250 Message accepted"


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and (auth_data.login.decode(), auth_data.password.decode()) == LOGIN
    )
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpPeer]:
    peer = SmtpPeer()
    loop = asyncio.get_running_loop()

    def session() -> SMTP:
        peer.sessions += 1
        return SMTP(
            peer,
            hostname="test-smtp",
            authenticator=authenticate,
            auth_require_tls=False,
            loop=loop,
        )

    server = await loop.create_server(session, host="127.0.0.1", port=0)
    peer.port = int(server.sockets[0].getsockname()[1])
    yield peer
    server.close()
    await server.wait_closed()


@pytest.fixture
async def client(database_url: str, smtp: SmtpPeer) -> AsyncIterator[Client]:
    flags = {
        "smtp.default": {"host": "127.0.0.1", "port": smtp.port, "from": "flows@example.com"},
        "smtp.login": {
            "host": "127.0.0.1",
            "port": smtp.port,
            "username": LOGIN[0],
            "password": LOGIN[1],
        },
        "smtp.bad_login": {
            "host": "127.0.0.1",
            "port": smtp.port,
            "username": LOGIN[0],
            "password": BAD_PASSWORD,
        },
        "smtp.down": {"host": "127.0.0.1", "port": free_port(), "timeout": "5s"},
    }
    async with engine_client(database_url, **flags) as test_client:
        yield test_client


def mail(
    node_id: str = "mail", *, retry_policy: dict[str, Any] | None = None, **config: Any
) -> dict[str, Any]:
    fields = {"retry_policy": retry_policy} if retry_policy else {}
    return node(node_id, "email", config, **fields)


def runs(execution: dict[str, Any], node_id: str = "mail") -> list[dict[str, Any]]:
    return node_runs(execution, node_id)


def expected_message_id(execution: dict[str, Any], node_id: str = "mail") -> str:
    key = f"{execution['id']}:{node_id}"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@flowyard>"


# --- delivery ---------------------------------------------------------------------------


async def test_every_recipient_gets_it_and_bcc_stays_out_of_the_headers(
    client: Client, smtp: SmtpPeer
) -> None:
    document = workflow(
        [
            mail(
                to=["Ann Example <ann@example.com>", "bob@example.com"],
                cc="carol@example.com",
                bcc=["hidden@example.com"],
                subject="Hello",
                body="Plain text",
            )
        ]
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    (received,) = smtp.received
    everyone = ["ann@example.com", "bob@example.com", "carol@example.com", "hidden@example.com"]
    assert sorted(received.rcpt_tos) == sorted(everyone)
    assert received.mail_from == "flows@example.com"  # the account's from
    message = received.message
    assert message["To"] == "Ann Example <ann@example.com>, bob@example.com"
    assert message["Cc"] == "carol@example.com"
    assert message["Bcc"] is None
    assert b"hidden@example.com" not in received.raw
    assert message["From"] == "flows@example.com"
    output = runs(execution)[0]["output"]
    assert sorted(output["accepted"]) == sorted(everyone)
    assert output["message_id"] == expected_message_id(execution)
    assert message["Message-ID"] == output["message_id"]


async def test_subject_body_and_addresses_are_templated(client: Client, smtp: SmtpPeer) -> None:
    document = workflow(
        [
            script("prepare", "order_id = 42", "owner = 'dana@example.com'"),
            mail(
                email_to="${owner}",
                subject="Order ${order_id} shipped",
                body="Hello,\nyour order ${order_id} is on its way.",
                **{"from": "Shop <shop@example.com>"},
            ),
        ],
        chain("prepare", "mail"),
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    (received,) = smtp.received
    message = received.message
    assert received.rcpt_tos == ["dana@example.com"]
    assert received.mail_from == "shop@example.com"
    assert message["Subject"] == "Order 42 shipped"
    assert message["From"] == "Shop <shop@example.com>"
    assert message.get_content().replace("\r\n", "\n") == ("Hello,\nyour order 42 is on its way.\n")


async def test_html_is_a_template_whose_scope_values_are_escaped_data(
    client: Client, smtp: SmtpPeer
) -> None:
    html = (
        "<h1>Hi {{ name }}</h1><ul>{% for item in items %}<li>{{ item }}</li>{% endfor %}</ul>"
        "<p>{{ nodes['prepare'].output.total }}</p>"
    )
    document = workflow(
        [
            script(
                "prepare",
                "name = '<script>alert(1)</script>'",
                "items = ['{{ 7 * 7 }}', 'a & b']",
                "total = 3",
            ),
            mail(to="ann@example.com", subject="Report", body="see the HTML part", html=html),
        ],
        chain("prepare", "mail"),
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    message = smtp.received[0].message
    assert message.get_content_type() == "multipart/alternative"
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None
    assert html_part is not None
    assert text_part.get_content().strip() == "see the HTML part"
    rendered = html_part.get_content()
    assert "<h1>Hi &lt;script&gt;alert(1)&lt;/script&gt;</h1>" in rendered
    assert "<li>{{ 7 * 7 }}</li>" in rendered  # data is printed, never compiled
    assert "49" not in rendered
    assert "<li>a &amp; b</li>" in rendered
    assert "<p>3</p>" in rendered


async def test_a_missing_name_in_the_html_template_fails_before_sending(
    client: Client, smtp: SmtpPeer
) -> None:
    document = workflow([mail(to="ann@example.com", html="<p>{{ nowhere.deep }}</p>")])
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert "'nowhere' is undefined" in runs(execution)[0]["error"]["message"]
    assert smtp.sessions == 0


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{{ [].append(1) }}", "unsafe"),
        ("{{ 'a' + 1 }}", "TypeError"),
        ("{{ 'x' * 10**10 }}", "would make more than 1,000,000 items"),  # not a full memory
        ("{{ [0] * 10**8 }}", "would make more than 1,000,000 items"),
        ("{{ 9 ** 999999 }}", "exponent of 999999"),
    ],
)
async def test_template_errors_fail_the_node_once_and_send_nothing(
    client: Client, smtp: SmtpPeer, html: str, expected: str
) -> None:
    document = workflow([mail(to="ann@example.com", html=html, retry_policy=QUICK_RETRIES)])
    execution = await run(client, document)
    assert execution["status"] == "failed"
    (attempt,) = runs(execution)
    assert expected in attempt["error"]["message"]
    assert smtp.sessions == 0


# --- header injection -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("subject", "Hi\r\nBcc: evil@example.com"),
        ("subject", "Hi\nX-Injected: yes"),
        ("subject", "=?UTF-8?Q?Hi=0D=0ABcc:_evil@example.com?="),
        ("subject", "=?UTF-8?B?SGkNCkJjYzogZXZpbEBleGFtcGxlLmNvbQ==?="),
        ("email_to", "ann@example.com\r\nBcc: evil@example.com"),
        ("email_to", "=?UTF-8?Q?Ann=0A?= <ann@example.com>"),
        ("from", "me@example.com\nBcc: evil@example.com"),
    ],
)
async def test_line_breaks_in_headers_fail_the_node_and_send_nothing(
    client: Client, smtp: SmtpPeer, key: str, value: str
) -> None:
    config = {"email_to": "ann@example.com", "subject": "s", "body": "b", key: "${value}"}
    document = workflow([mail(retry_policy=QUICK_RETRIES, **config)])
    execution = await run(client, document, input={"value": value})
    assert execution["status"] == "failed"
    attempts = runs(execution)
    assert len(attempts) == 1  # not retryable
    assert "line break" in attempts[0]["error"]["message"]
    assert "nothing was sent" in attempts[0]["error"]["message"]
    assert smtp.sessions == 0
    assert smtp.received == []


async def test_line_breaks_written_in_the_definition_are_rejected_on_upload(
    client: Client,
) -> None:
    encoded = "=?UTF-8?Q?a=0Ab?="
    document = workflow([mail(to="ann@example.com", subject=encoded, body="b")])
    response = await client.post(BASE, json=document)
    assert response.status_code == 422, response.text
    (detail,) = response.json()["error"]["details"]
    assert detail["path"] == "/nodes/0/config/subject"
    assert "decodes to a line break" in detail["message"]


# --- failures and retries ---------------------------------------------------------------


async def test_a_temporary_refusal_is_retried_with_the_same_message_id(
    client: Client, smtp: SmtpPeer
) -> None:
    smtp.data_replies = ["451 4.3.0 try again later"]
    document = workflow(
        [mail(to="ann@example.com", subject="s", body="b", retry_policy=QUICK_RETRIES)]
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    assert len(runs(execution)) == 2
    first, second = (
        BytesParser(policy=policy.default).parsebytes(raw)["Message-ID"]
        for raw in smtp.data_attempts
    )
    assert first == second == expected_message_id(execution)
    assert len(smtp.received) == 1


async def test_a_permanent_refusal_is_not_retried(client: Client, smtp: SmtpPeer) -> None:
    smtp.refuse = {"ann@example.com": "550 5.1.1 no such user"}
    document = workflow(
        [mail(to="ann@example.com", subject="s", body="b", retry_policy=QUICK_RETRIES)]
    )
    execution = await run(client, document)
    assert execution["status"] == "failed"
    attempts = runs(execution)
    assert len(attempts) == 1
    assert "550" in attempts[0]["error"]["message"]
    assert "ann@example.com" in attempts[0]["error"]["message"]


async def test_some_recipients_refused_gives_the_accepted_ones(
    client: Client, smtp: SmtpPeer
) -> None:
    smtp.refuse = {"gone@example.com": "550 5.1.1 no such user"}
    document = workflow([mail(to=["ann@example.com", "gone@example.com"], subject="s", body="b")])
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    (attempt,) = runs(execution)
    assert attempt["output"]["accepted"] == ["ann@example.com"]
    assert any("gone@example.com" in line for line in attempt["logs"])
    assert smtp.received[0].rcpt_tos == ["ann@example.com"]


async def test_an_unreachable_server_is_retried(client: Client) -> None:
    document = workflow(
        [mail(to="ann@example.com", body="b", account="down", retry_policy=QUICK_RETRIES)]
    )
    execution = await run(client, document)
    assert execution["status"] == "failed"
    attempts = runs(execution)
    assert len(attempts) == 3
    assert "cannot reach the SMTP server of account 'down'" in attempts[-1]["error"]["message"]


async def test_login_with_the_account_credentials(client: Client, smtp: SmtpPeer) -> None:
    good = workflow([mail(to="ann@example.com", body="b", account="login")], id="good")
    bad = workflow(
        [mail(to="ann@example.com", body="b", account="bad_login", retry_policy=QUICK_RETRIES)],
        id="bad",
    )
    assert (await run(client, good))["status"] == "completed"
    failed = await run(client, bad)
    assert failed["status"] == "failed"
    attempts = runs(failed)
    assert len(attempts) == 1
    assert "refused the login" in attempts[0]["error"]["message"]
    assert BAD_PASSWORD not in attempts[0]["error"]["message"]
    assert len(smtp.received) == 1


async def test_unknown_account_is_rejected_on_upload(client: Client) -> None:
    document = workflow([mail(to="ann@example.com", body="b", account="nope")])
    response = await client.post(BASE, json=document)
    assert response.status_code == 422
    (detail,) = response.json()["error"]["details"]
    assert 'SMTP account "nope" is not configured' in detail["message"]


async def test_an_address_that_is_not_one_fails_the_node(client: Client, smtp: SmtpPeer) -> None:
    document = workflow([mail(to="${who}", body="b")])
    execution = await run(client, document, input={"who": "not an address"})
    assert execution["status"] == "failed"
    assert "is not an email address" in runs(execution)[0]["error"]["message"]
    assert smtp.sessions == 0


# --- the mail service itself (also used by human-task notices) ------------------------


async def test_the_service_uses_the_only_account_when_none_is_named(smtp: SmtpPeer) -> None:
    mailer = Mailer({"only": SmtpSettings(host="127.0.0.1", port=smtp.port, sender="o@x.org")})
    message = EmailMessage()
    message["To"] = "ann@example.com"
    message["Bcc"] = "hidden@example.com"
    message["Subject"] = "notice"
    message.set_content("body")
    accepted = await mailer.send(message)
    assert accepted == ["ann@example.com", "hidden@example.com"]
    (received,) = smtp.received
    assert received.mail_from == "o@x.org"
    assert b"hidden@example.com" not in received.raw
    with pytest.raises(UnknownMailAccount, match="'nope' is not configured"):
        await mailer.send(message, account="nope")


async def test_the_service_refuses_encoded_line_breaks_before_connecting(
    smtp: SmtpPeer,
) -> None:
    mailer = Mailer({"default": SmtpSettings(host="127.0.0.1", port=smtp.port)})
    message = EmailMessage()
    message["To"] = "ann@example.com"
    message["Subject"] = "=?UTF-8?Q?a=0ABcc:_evil@example.com?="  # stored decoded, with the LF
    with pytest.raises(UnsafeHeader, match="Subject"):
        await mailer.send(message)
    assert smtp.sessions == 0
