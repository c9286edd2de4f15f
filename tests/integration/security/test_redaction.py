"""Secret values never show (SPEC §3): not in API responses, events, stored rows, log
lines or rendered pages — on SQLite and PostgreSQL, with real peers on 127.0.0.1 (an
HTTP server that echoes what it receives, an aiosmtpd server).

Each search looks for every spelling of a value (as is, JSON-escaped, percent-encoded,
HTML-escaped: ``server.secrets.redaction.spellings``), because a response or a log line
is JSON text, where a value holding quotes or backslashes is written escaped.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from server.logging import JsonFormatter
from server.secrets.redaction import MASK, Redactor, spellings
from server.signing import sign
from server.store.database import Database
from server.store.models import Base
from tests.integration.engine.conftest import (
    EXECUTIONS,
    Client,
    chain,
    get_execution,
    node,
    node_runs,
    start,
    upload,
    wait_for_status,
    wait_until,
    workflow,
)
from tests.integration.nodes.http_peer import HttpPeer, Recorded, Reply
from tests.integration.security.test_secrets import ADMIN, put_secret, secrets_client

API_TOKEN = "tok_Zq81-xy_7MvP0aa"
#: Quotes, a backslash and URL metacharacters: spelled differently in JSON and URLs.
DB_PASSWORD = 'pa"ss\\word/+&1'
HOOK_SECRET = "whsec_" + "c2VjcmV0LWZvci10aGUtaG9vay0xMjM0"
QUICK_RETRIES = {"max_attempts": 2, "delay": 0.01, "backoff": "fixed"}


# --- peers and capture ---------------------------------------------------------------------


class Mailbox:
    """aiosmtpd handler keeping every raw message."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope.original_content or b"")
        return "250 Message accepted"


@pytest.fixture
async def mailbox() -> AsyncIterator[tuple[Mailbox, int]]:
    box = Mailbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(box, hostname="test-smtp", loop=loop), host="127.0.0.1", port=0
    )
    yield box, int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


def echo(request: Recorded) -> Reply:
    """``/echo`` answers what it received as JSON; ``/raw`` its body as text; ``/fail``
    a 500 (the node's error names the URL)."""
    if request.path.startswith("/fail"):
        return Reply(500, body="server error", headers={"Content-Type": "text/plain"})
    if request.path == "/raw":
        return Reply(200, body=request.body, headers={"Content-Type": "text/plain"})
    return Reply(
        200, json={"headers": request.headers, "query": request.query, "path": request.path}
    )


@pytest.fixture
async def peer() -> AsyncIterator[HttpPeer]:
    async with HttpPeer(handler=echo) as server:
        yield server


class LogLines:
    """The log lines written so far, as the production JSON formatter writes them."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def __iter__(self) -> Iterator[str]:
        return iter(self.stream.getvalue().splitlines())


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    """Every log line the server writes while the test runs (all levels, all loggers:
    httpx's request lines and the database driver's statements too)."""
    lines = LogLines()
    handler = logging.StreamHandler(lines.stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def shown(values: Iterable[str], text: str) -> list[str]:
    """The spellings of ``values`` found in ``text`` (empty: none shows)."""
    return sorted(form for value in values for form in spellings(value) if form in text)


async def api_text(client: Client, execution_id: str, workflow_id: str) -> dict[str, str]:
    """What the API and the dashboard show about an execution, by route."""
    routes = [
        f"{EXECUTIONS}/{execution_id}",
        f"{EXECUTIONS}/{execution_id}/events?limit=1000",
        f"{EXECUTIONS}?limit=200",
        f"/api/v1/workflows/{workflow_id}/executions",
        "/api/v1/secrets",
        "/",
    ]
    found = {}
    for route in routes:
        response = await client.get(route, headers=ADMIN)
        assert response.status_code == 200, (route, response.text)
        found[route] = response.text
    return found


async def stored_text(database_url: str, *, skip: Iterable[str] = ("secrets",)) -> dict[str, str]:
    """Every row of every table (except ``skip``), as text, by table."""
    database = Database(database_url)
    found = {}
    try:
        async with database.reader() as session:
            for table in Base.metadata.sorted_tables:
                if table.name in skip:
                    continue
                rows = (await session.execute(select(table))).all()
                found[table.name] = json.dumps([list(row) for row in rows], default=str)
    finally:
        await database.dispose()
    return found


# --- the whole path ------------------------------------------------------------------------


async def test_a_secret_used_in_an_api_header_a_template_and_an_email_never_shows(
    database_url: str,
    tmp_path: Path,
    peer: HttpPeer,
    mailbox: tuple[Mailbox, int],
    log_lines: LogLines,
) -> None:
    box, smtp_port = mailbox
    flags = {"smtp.default": {"host": "127.0.0.1", "port": smtp_port, "from": "f@example.com"}}
    document = workflow(
        [
            node(
                "call",
                "api",
                {
                    "url": peer.url("/echo"),
                    "headers": {"Authorization": "Bearer ${secrets.API_TOKEN}"},
                    "query": {"key": "${secrets.API_TOKEN}"},
                },
            ),
            node(
                "post",
                "api",
                {
                    "url": peer.url("/raw"),
                    "method": "POST",
                    "json": {"password": "${secrets.DB_PASSWORD}"},
                    "response_type": "text",
                },
            ),
            node(
                "note",
                "transform",
                {"transform_type": "template", "template": "token ${secrets.API_TOKEN} for ${who}"},
            ),
            node(
                "mail",
                "email",
                {
                    "email_to": "ops@example.com",
                    "subject": "access for ${who}",
                    "body": "Your token: ${secrets.API_TOKEN}\nNote: ${result}",
                },
            ),
            node(
                "fail",
                "api",
                {"url": peer.url("/fail/${secrets.API_TOKEN}")},
                retry_policy=QUICK_RETRIES,
            ),
        ],
        chain("call", "post", "note", "mail", "fail"),
        id="leaky",
        config={"error_handling": {"on_failure": "continue"}},
    )
    async with secrets_client(database_url, tmp_path / "data", **flags) as client:
        await put_secret(client, "API_TOKEN", API_TOKEN)
        await put_secret(client, "DB_PASSWORD", DB_PASSWORD)
        await upload(client, document)
        started = await start(client, "leaky", input={"who": "ada"})
        execution = await wait_for_status(client, started["id"], ("completed", "failed"))
        pages = await api_text(client, execution["id"], "leaky")

    # The secrets were really used, with their values...
    assert execution["status"] == "completed", execution["error"]
    first = peer.requests[0]
    assert first.headers["authorization"] == f"Bearer {API_TOKEN}"
    assert first.query["key"] == [API_TOKEN]
    assert peer.requests[1].json() == {"password": DB_PASSWORD}
    assert [r.path for r in peer.requests[2:]] == [f"/fail/{API_TOKEN}"] * 2
    sent = BytesParser(policy=policy.default).parsebytes(box.messages[0])
    assert f"Your token: {API_TOKEN}" in sent.get_body().get_content()  # type: ignore[union-attr]

    # ...and what was stored shows stars in their place.
    runs = {r["node_id"]: r for r in node_runs(execution)}
    assert runs["call"]["input"]["headers"] == {"Authorization": f"Bearer {MASK}"}
    assert runs["call"]["output"]["data"]["headers"]["authorization"] == f"Bearer {MASK}"
    assert runs["call"]["output"]["data"]["query"] == {"key": [MASK]}
    assert runs["post"]["output"]["data"] == json.dumps({"password": MASK})
    assert runs["note"]["output"] == {"result": f"token {MASK} for ada"}
    assert "Your token: ***" in runs["mail"]["input"]["body"]
    assert f"/fail/{MASK}" in runs["fail"]["error"]["message"]
    assert f"/fail/{MASK}" in execution["errors"][0]["error"]

    values = (API_TOKEN, DB_PASSWORD)
    for route, text in pages.items():
        assert not shown(values, text), f"{route} shows a secret"
    for table, text in (await stored_text(database_url)).items():
        assert not shown(values, text), f"table {table} holds a secret"
    assert any("HTTP Request" in line and f"key={MASK}" in line for line in log_lines), (
        "the outbound request lines were not captured"
    )
    for line in log_lines:
        assert not shown(values, line), f"a log line shows a secret: {line}"


async def test_a_webhook_secret_is_kept_sealed_with_its_wait_and_never_shown(
    database_url: str, tmp_path: Path, log_lines: LogLines
) -> None:
    document = workflow(
        [node("hook", "webhook", {"mode": "receive", "secret": "${secrets.HOOK_SECRET}"})],
        id="hooked",
    )
    async with secrets_client(database_url, tmp_path / "data") as client:
        await put_secret(client, "HOOK_SECRET", HOOK_SECRET)
        await upload(client, document)
        started = await start(client, "hooked")
        waiting = await wait_until(
            client, started["id"], lambda e: bool(e["waiting_on"]), what="the callback wait"
        )
        pages_waiting = await api_text(client, started["id"], "hooked")
        # the signing secret is kept with the wait, sealed: no table holds it in clear
        rows_waiting = await stored_text(database_url, skip=("secrets",))
        callback_url = waiting["waiting_on"][0]["callback_url"]
        body = json.dumps({"echo": HOOK_SECRET, "ok": True}).encode()
        headers = sign([HOOK_SECRET], "msg-1", int(datetime.now(UTC).timestamp()), body)
        unsigned = await client.post(callback_url, content=body)
        assert unsigned.status_code == 401
        answered = await client.post(
            callback_url,
            content=body,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert answered.status_code in (200, 202), answered.text
        execution = await wait_for_status(client, started["id"], ("completed", "failed"))
        pages_done = await api_text(client, started["id"], "hooked")

    assert execution["status"] == "completed", execution["error"]
    output = node_runs(execution, "hook")[0]["output"]
    assert output["payload"] == {"echo": MASK, "ok": True}
    assert node_runs(execution, "hook")[0]["input"]["secret"] == MASK
    for route, text in {**pages_waiting, **pages_done}.items():
        assert not shown([HOOK_SECRET], text), f"{route} shows the webhook secret"
    for table, text in {
        **rows_waiting,
        # (after the callback, the wait's answer holds the body as received: not shown)
        **(await stored_text(database_url, skip=("secrets", "waits"))),
    }.items():
        assert not shown([HOOK_SECRET], text), f"table {table} holds the webhook secret"
    for line in log_lines:
        assert not shown([HOOK_SECRET], line), f"a log line shows a secret: {line}"


async def test_after_a_restart_later_outputs_echoing_a_secret_are_still_redacted(
    database_url: str, tmp_path: Path
) -> None:
    """The runner rebuilt by another server process learns which secrets the nodes that
    ran before used: a later node (naming no secret) whose peer echoes one is redacted."""
    received: list[str] = []

    def remember_and_echo(request: Recorded) -> Reply:
        if "authorization" in request.headers:
            received.append(request.headers["authorization"])
        return Reply(200, json={"seen": received[-1] if received else None})

    async with HttpPeer(handler=remember_and_echo) as peer:
        document = workflow(
            [
                node(
                    "login",
                    "api",
                    {
                        "url": peer.url("/login"),
                        "headers": {"Authorization": "${secrets.API_TOKEN}"},
                    },
                ),
                node("hook", "webhook", {"mode": "receive"}),
                node("later", "api", {"url": peer.url("/whoami")}),
            ],
            chain("login", "hook", "later"),
            id="restarted",
        )
        data_dir = tmp_path / "data"
        async with secrets_client(database_url, data_dir) as client:
            await put_secret(client, "API_TOKEN", API_TOKEN)
            await upload(client, document)
            started = await start(client, "restarted")
            waiting = await wait_until(
                client, started["id"], lambda e: bool(e["waiting_on"]), what="the callback wait"
            )
        async with secrets_client(database_url, data_dir) as client:
            answered = await client.post(waiting["waiting_on"][0]["callback_url"], json={})
            assert answered.status_code in (200, 202), answered.text
            execution = await wait_for_status(client, started["id"], ("completed", "failed"))
            text = (await client.get(f"{EXECUTIONS}/{started['id']}")).text

    assert execution["status"] == "completed", execution["error"]
    assert received == [API_TOKEN]
    assert node_runs(execution, "later")[0]["output"]["data"] == {"seen": MASK}
    assert not shown([API_TOKEN], text)


async def test_a_secret_in_a_failing_nodes_retry_events_is_redacted(
    database_url: str, tmp_path: Path, peer: HttpPeer
) -> None:
    document = workflow(
        [
            node(
                "fail",
                "api",
                {"url": peer.url("/fail/${secrets.API_TOKEN}")},
                retry_policy=QUICK_RETRIES,
            )
        ],
        id="failing",
    )
    async with secrets_client(database_url, tmp_path / "data") as client:
        await put_secret(client, "API_TOKEN", API_TOKEN)
        await upload(client, document)
        started = await start(client, "failing")
        execution = await wait_for_status(client, started["id"], ("completed", "failed"))
        events = (await client.get(f"{EXECUTIONS}/{started['id']}/events")).json()["events"]
        fetched = await get_execution(client, started["id"])
    assert execution["status"] == "failed"
    retry = next(e for e in events if e["type"] == "node.retry_scheduled")
    failed = next(e for e in events if e["type"] == "node.failed")
    for message in (retry["data"]["error"], failed["data"]["error"], fetched["error"]["message"]):
        assert f"/fail/{MASK}" in message
        assert API_TOKEN not in message


# --- the redactor itself ----------------------------------------------------------------


def test_the_redactor_hides_every_spelling_keys_included_longest_first() -> None:
    redactor = Redactor(["abcd", "abcdef", 'q"uo\\te'])
    data = {
        "whole": "abcdef",
        "inside": "x-abcd-y",
        "abcd-key": ["abcd", 1, None, True],
        "json": json.dumps({"p": 'q"uo\\te'}),
        "url": "https://h/p?x=q%22uo%5Cte",
    }
    assert redactor.value(data) == {
        "whole": MASK,
        "inside": f"x-{MASK}-y",
        f"{MASK}-key": [MASK, 1, None, True],
        "json": json.dumps({"p": MASK}),
        "url": f"https://h/p?x={MASK}",
    }
    assert not Redactor([])
    assert Redactor([]).value(data) is data


def test_a_log_line_never_shows_a_value_the_vault_has_decrypted() -> None:
    from server.secrets.redaction import LOG_MASK

    value = f"log-secret-{time.monotonic_ns()}"
    formatter = JsonFormatter()
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "sent %s", (value,), None)
    record.url = f"https://h/?k={value}"
    assert value in formatter.format(record)
    LOG_MASK.add([value])
    line = formatter.format(record)
    assert value not in line
    assert json.loads(line)["message"] == f"sent {MASK}"
    assert json.loads(line)["url"] == f"https://h/?k={MASK}"
