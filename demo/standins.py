"""The demo's local stand-ins, started and stopped with the demo server (SPEC §10).

The business database (``demo.db``: customers and orders) is created and filled before
the engine starts; the SMTP sink listens on 127.0.0.1 until the server has stopped, so
nodes that finish during shutdown can still send. Both live in the data directory.
"""

from __future__ import annotations

from demo.business_db import BusinessDatabase
from demo.config import DEMO_SMTP_HOST, business_db_path, mailbox_path
from demo.smtp_sink import MailSink
from server.config import Settings


class DemoStandins:
    """The demo business database and SMTP sink of one demo server."""

    def __init__(self, settings: Settings) -> None:
        self.business = BusinessDatabase(business_db_path(settings))
        self.sink = MailSink(
            mailbox_path(settings), host=DEMO_SMTP_HOST, port=settings.demo.smtp_port
        )

    async def start(self) -> None:
        await self.business.prepare()
        await self.sink.start()

    async def stop(self) -> None:
        await self.sink.stop()
