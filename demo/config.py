"""Settings of the demo: the connections and mail account its examples name.

The examples in ``definitions/`` use the database connection ``demo_db`` and the SMTP
account ``default``; the demo configures both, pointing at its own stand-ins on this
machine — the business database ``demo.db`` in the data directory and the SMTP sink on
127.0.0.1 — so every example validates and runs with no internet. Settings given by the
operator (``[connections.demo_db]``, ``[smtp.default]``) win over these.
"""

from __future__ import annotations

import dataclasses
import errno
import socket
from pathlib import Path

from server.config import ConnectionSettings, DemoSettings, Settings, SmtpSettings
from server.errors import ConfigurationError

DEMO_SMTP_HOST = "127.0.0.1"
DEMO_SMTP_PORT = 8025
BUSINESS_DB_FILE = "demo.db"
MAILBOX_FILE = "mailbox.db"


def demo_settings(settings: Settings, data_dir: Path) -> Settings:
    """``settings`` in demo mode, with the stand-ins in ``data_dir``.

    The SMTP sink's port is ``demo.smtp_port`` (default 8025); when that port is taken
    (another demo is running) or 0, a free port is chosen, and the ``default`` account
    points at whichever it is.
    """
    port = sink_port(settings.demo.smtp_port)
    connections = {
        "demo_db": ConnectionSettings(url=f"sqlite:///{data_dir / BUSINESS_DB_FILE}"),
    }
    smtp = {
        "default": SmtpSettings(host=DEMO_SMTP_HOST, port=port, sender="flowyard@localhost"),
    }
    return dataclasses.replace(
        settings,
        server=dataclasses.replace(settings.server, data_dir=str(data_dir)),
        demo=DemoSettings(enabled=True, smtp_port=port),
        connections={**connections, **settings.connections},
        smtp={**smtp, **settings.smtp},
    )


def business_db_path(settings: Settings) -> Path:
    """Where the demo's business database lives."""
    return Path(settings.server.data_dir) / BUSINESS_DB_FILE


def mailbox_path(settings: Settings) -> Path:
    """Where the demo's SMTP sink keeps what it received."""
    return Path(settings.server.data_dir) / MAILBOX_FILE


def sink_port(wanted: int) -> int:
    """``wanted`` if it can be bound on 127.0.0.1, else a free port."""
    if not 0 <= wanted <= 65535:
        raise ConfigurationError("demo.smtp_port", f"{wanted} is not a TCP port (0-65535)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((DEMO_SMTP_HOST, wanted))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            probe.bind((DEMO_SMTP_HOST, 0))
        return int(probe.getsockname()[1])
