"""The demo's SMTP sink: a real SMTP server on 127.0.0.1 that keeps what it receives.

The demo's ``default`` SMTP account points at it, so the examples' ``email`` nodes (and
human-task notices) really send — over SMTP, through aiosmtplib — and nothing leaves
the machine. aiosmtpd speaks the protocol on the server's own event loop; every message
accepted is stored (envelope, main headers, text and HTML bodies, the raw message) in
the SQLite file ``mailbox.db`` in the demo's data directory, which ``GET /demo/mailbox``
lists.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from weakref import WeakSet

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("flowyard.demo")

#: The largest message the sink accepts (bytes).
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
#: The name the sink greets with (given, so aiosmtpd never asks DNS for this host's name).
SINK_HOSTNAME = "flowyard-demo-sink"
SCHEMA = """CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    envelope_from TEXT NOT NULL,
    envelope_to TEXT NOT NULL,
    message_id TEXT,
    subject TEXT,
    from_header TEXT,
    to_header TEXT,
    cc_header TEXT,
    text_body TEXT,
    html_body TEXT,
    raw BLOB NOT NULL
)"""
COLUMNS = (
    "id, received_at, envelope_from, envelope_to, message_id, subject, from_header, "
    "to_header, cc_header, text_body, html_body"
)


class MailSink:
    """An SMTP server that stores every message; :meth:`start` / :meth:`stop` with the app."""

    def __init__(self, path: Path, *, host: str = "127.0.0.1", port: int = 8025) -> None:
        self.path = path
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._sessions: WeakSet[SMTP] = WeakSet()

    async def start(self) -> None:
        """Create the mailbox table and listen; ``port`` is then the bound port."""
        await asyncio.to_thread(self._create)
        loop = asyncio.get_running_loop()

        def session() -> SMTP:
            protocol = SMTP(
                self,
                hostname=SINK_HOSTNAME,
                data_size_limit=MAX_MESSAGE_BYTES,
                enable_SMTPUTF8=True,
                loop=loop,
            )
            self._sessions.add(protocol)
            return protocol

        self._server = await loop.create_server(session, host=self.host, port=self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info(
            "demo smtp sink listening",
            extra={"action": "demo.smtp_sink.started", "host": self.host, "port": self.port},
        )

    async def stop(self) -> None:
        """Stop listening and close open sessions."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for protocol in list(self._sessions):
            if protocol.transport is not None:
                protocol.transport.close()
        await server.wait_closed()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd's hook for a complete message: store it, then accept it."""
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="replace")
        await asyncio.to_thread(
            self._store, envelope.mail_from or "", list(envelope.rcpt_tos), bytes(raw)
        )
        return "250 Message accepted for delivery"

    async def messages(self, limit: int = 50) -> tuple[list[dict[str, Any]], int]:
        """The newest ``limit`` messages (newest first) and how many there are."""
        return await asyncio.to_thread(self._read, limit)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30)
        connection.row_factory = sqlite3.Row
        return connection

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as connection, connection:
            connection.execute(SCHEMA)

    def _store(self, envelope_from: str, envelope_to: list[str], raw: bytes) -> None:
        fields = _parse(raw)
        with closing(self._connect()) as connection, connection:
            connection.execute(
                "INSERT INTO messages (received_at, envelope_from, envelope_to, message_id, "
                "subject, from_header, to_header, cc_header, text_body, html_body, raw) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    envelope_from,
                    json.dumps(envelope_to),
                    fields["message_id"],
                    fields["subject"],
                    fields["from"],
                    fields["to"],
                    fields["cc"],
                    fields["text"],
                    fields["html"],
                    raw,
                ),
            )
        log.info(
            "demo smtp sink stored a message",
            extra={"action": "demo.smtp_sink.stored", "recipients": len(envelope_to)},
        )

    def _read(self, limit: int) -> tuple[list[dict[str, Any]], int]:
        with closing(self._connect()) as connection:
            total = int(connection.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
            # bandit B608, a false alarm: constant SQL
            sql = f"SELECT {COLUMNS} FROM messages ORDER BY id DESC LIMIT ?"  # nosec
            rows = connection.execute(sql, (limit,)).fetchall()
        return [_as_json(row) for row in rows], total


def _parse(raw: bytes) -> dict[str, str | None]:
    """The main headers and the text and HTML bodies of a raw message."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    fields: dict[str, str | None] = {
        "message_id": _header(message, "Message-ID"),
        "subject": _header(message, "Subject"),
        "from": _header(message, "From"),
        "to": _header(message, "To"),
        "cc": _header(message, "Cc"),
        "text": None,
        "html": None,
    }
    if isinstance(message, EmailMessage):
        for subtype in ("plain", "html"):
            part = message.get_body(preferencelist=(subtype,))
            if part is not None and part.get_content_subtype() == subtype:
                try:
                    fields["text" if subtype == "plain" else "html"] = str(part.get_content())
                except (LookupError, ValueError):  # an unknown charset or a broken part
                    continue
    return fields


def _header(message: Any, name: str) -> str | None:
    value = message.get(name)
    return None if value is None else str(value)


def _as_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "received_at": row["received_at"],
        "envelope_from": row["envelope_from"],
        "envelope_to": json.loads(row["envelope_to"]),
        "message_id": row["message_id"],
        "subject": row["subject"],
        "from": row["from_header"],
        "to": row["to_header"],
        "cc": row["cc_header"],
        "text": row["text_body"],
        "html": row["html_body"],
    }
