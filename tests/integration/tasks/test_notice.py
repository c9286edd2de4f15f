"""E-mail notices of new tasks, through a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from server.integrations.mail import Mailer
from tests.integration.engine.conftest import (
    Client,
    get_execution,
    latest,
    start,
    statuses,
    upload,
    wait_until,
    workflow,
)
from tests.integration.tasks.conftest import (
    Mailbox,
    get_task,
    human,
    tasks_client,
    wait_for_task,
)


def with_mail(client: Client) -> None:
    """The app's mail service (the SMTP accounts of its settings)."""
    services = client.app.state["engine"].services
    settings = client.app.dependencies["settings"].dependency()
    services.setdefault("mail", Mailer(settings.smtp))


async def waiting_logs(client: Client, execution_id: str) -> list[str]:
    execution = await wait_until(
        client,
        execution_id,
        lambda e: statuses(e).get("review") == "waiting" and latest(e)["review"]["logs"],
        what="the review to wait with a log line",
    )
    logs: list[str] = latest(execution)["review"]["logs"]
    return logs


async def test_the_assignee_is_mailed_links_that_open_the_task(
    database_url: str, tmp_path: Path, smtp: tuple[int, Mailbox]
) -> None:
    port, mailbox = smtp
    async with tasks_client(database_url, tmp_path, smtp_port=port) as client:
        with_mail(client)
        node = human(
            "review",
            assignee="bob@example.com",
            title="Review ${doc}",
            description="Line one\nline two",
            due_date="2d",
            notify=True,
        )
        await upload(client, workflow([node], variables={"doc": {"name": "doc", "type": "string"}}))
        execution = await start(client, "wf", input={"doc": "D-9"})
        task = await wait_for_task(client, execution["id"])
        ((recipients, message),) = await mailbox.wait(1)
        assert recipients == ["bob@example.com"]
        assert message["To"] == "bob@example.com"
        assert message["From"] == "flowyard@test.invalid"
        assert message["Subject"] == "Task: Review D-9"
        assert message["Date"] is not None
        body = message.get_content().replace("\r\n", "\n")
        assert "Line one\nline two" in body
        links = re.findall(r"https?://\S+", body)
        assert len(links) == 3  # open, approved, rejected
        assert all(urlsplit(link).path == f"/tasks/{task['id']}" for link in links)
        assert [parse_qs(urlsplit(link).query).get("outcome") for link in links] == [
            None, ["approved"], ["rejected"],
        ]  # fmt: skip
        for link in links:
            parts = urlsplit(link)
            opened = await client.get(parts.path, params=_query(parts.query))
            assert opened.status_code == 200, opened.text
        page = await get_task(client, task["id"])
        assert (page["status"], page["decisions"]) == ("open", [])
        assert [h["action"] for h in page["history"]] == ["opened", "notified"]
        assert "task notice sent to bob@example.com" in await waiting_logs(client, execution["id"])


async def test_notify_to_names_the_addresses(
    database_url: str, tmp_path: Path, smtp: tuple[int, Mailbox]
) -> None:
    port, mailbox = smtp
    async with tasks_client(database_url, tmp_path, smtp_port=port) as client:
        with_mail(client)
        node = human("review", notify={"to": ["ops@example.com", "lead@example.com"]})
        await upload(client, workflow([node]))
        await wait_for_task(client, (await start(client, "wf"))["id"])
        ((recipients, message),) = await mailbox.wait(1)
        assert recipients == ["ops@example.com", "lead@example.com"]
        assert message["To"] == "ops@example.com, lead@example.com"


async def test_a_notice_that_cannot_be_sent_is_logged_and_the_task_stays_open(
    database_url: str, tmp_path: Path
) -> None:
    async with tasks_client(database_url, tmp_path) as client:  # nothing listens on its port
        with_mail(client)
        document = workflow(
            [human("review", assignee="bob@example.com", notify=True), human("other", notify=True)]
        )
        await upload(client, document)
        execution = await start(client, "wf")
        await wait_until(
            client,
            execution["id"],
            lambda e: all(latest(e).get(n, {}).get("logs") for n in ("review", "other")),
            what="both notices to be attempted",
        )
        runs = latest(await get_execution(client, execution["id"]))
        assert runs["review"]["status"] == "waiting"
        assert runs["review"]["logs"][0].startswith("task notice not sent: ")
        assert "SMTP" in runs["review"]["logs"][0]
        assert runs["other"]["logs"] == [
            "task notice not sent: no e-mail address (the assignee is not an address and has "
            "no user e-mail; set notify.to)"
        ]


def _query(query: str) -> dict[str, Any]:
    return {k: v[0] for k, v in parse_qs(query).items()}
