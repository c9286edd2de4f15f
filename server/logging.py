"""Structured logs: one JSON object per line, with stable ``action`` keys and ids.

Never payloads, inputs or secrets — callers pass ids and counts in ``extra``. Messages
and values are JSON-encoded, so CR/LF in a name cannot forge a log line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from server.secrets.redaction import LOG_MASK

STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


#: Characters some readers take for line ends although JSON allows them raw in strings.
UNICODE_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # Whoever logged it (httpx logs URLs), no secret value this process used shows.
        line = LOG_MASK.text(json.dumps(entry, default=str, ensure_ascii=False))
        # JSON escapes CR and LF but leaves these Unicode line breaks raw; a reader that
        # splits on them (str.splitlines, some log viewers) would see a forged new line.
        return line.translate(UNICODE_LINE_BREAKS)


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "apscheduler"):  # apscheduler: a line per cron wake-up
        logging.getLogger(noisy).setLevel(logging.WARNING)
