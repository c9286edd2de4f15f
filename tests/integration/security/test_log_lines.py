"""Log lines cannot be forged: every value is JSON-escaped, one record is one line."""

from __future__ import annotations

import json
import logging

import pytest

from server.logging import JsonFormatter

BREAKS = ["\n", "\r", "\r\n", "\x85", "\u2028", "\u2029", "\x0b", "\x0c", "\x1c"]


@pytest.mark.parametrize("line_break", BREAKS, ids=[f"U+{ord(b[0]):04X}" for b in BREAKS])
def test_a_line_break_in_a_name_or_message_cannot_start_a_new_log_line(line_break: str) -> None:
    forged = f'alice{line_break}{{"level": "error", "message": "admin signed in"}}'
    record = logging.LogRecord("flowyard", logging.INFO, __file__, 1, forged, (), None)
    record.username = forged  # what a caller passes in ``extra``
    line = JsonFormatter().format(record)
    assert len(line.splitlines()) == 1  # splitlines() also splits on U+2028, U+0085…
    entry = json.loads(line)
    assert entry["message"] == forged
    assert entry["username"] == forged
