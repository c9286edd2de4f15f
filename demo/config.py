"""Settings of the demo: the connections and mail account its examples name.

The examples in ``definitions/`` use the database connection ``demo_db`` and the SMTP
account ``default``; the demo configures both, pointing at its own stand-ins on this
machine, so every example validates and (as the node types land) runs with no internet.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from server.config import ConnectionSettings, DemoSettings, Settings, SmtpSettings

DEMO_SMTP_PORT = 8025


def demo_settings(settings: Settings, data_dir: Path) -> Settings:
    connections = {"demo_db": ConnectionSettings(url=f"sqlite:///{data_dir / 'demo.db'}")}
    smtp = {
        "default": SmtpSettings(host="127.0.0.1", port=DEMO_SMTP_PORT, sender="flowyard@localhost")
    }
    return dataclasses.replace(
        settings,
        demo=DemoSettings(enabled=True),
        connections={**connections, **settings.connections},
        smtp={**smtp, **settings.smtp},
    )
