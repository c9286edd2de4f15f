"""Run user regular expressions where a runaway one can be stopped.

Python's ``re`` holds the GIL for the whole match and cannot be interrupted: a pattern
such as ``(a+)+$`` on 30 characters runs for seconds, ``.*.*=.*`` on a few thousand for
hours, and meanwhile every thread of the server (the event loop included) stands still.
A deadline checked between expression steps cannot help, so searches run in one small
helper process (``python -I -S``, stdlib only) that is killed and replaced when a search
outlives its time. Patterns without any regex syntax are plain substring searches and
never leave the process.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import subprocess  # nosec B404  # runs only our own interpreter on fixed code (below)
import sys
import threading
import time
from functools import lru_cache

from server.errors import ExpressionError

MAX_PATTERN_LENGTH = 1_000
MAX_INPUT_LENGTH = 100_000
SEARCH_TIMEOUT_SECONDS = 1.0

_WORKER_SOURCE = """
import json, re, sys
cache = {}
for line in sys.stdin:
    request = json.loads(line)
    try:
        compiled = cache.get(request["p"])
        if compiled is None:
            if len(cache) > 256:
                cache.clear()
            compiled = cache[request["p"]] = re.compile(request["p"])
        reply = {"found": compiled.search(request["t"]) is not None}
    except Exception as exc:
        reply = {"error": str(exc)}
    sys.stdout.write(json.dumps(reply) + "\\n")
    sys.stdout.flush()
"""


def search(pattern: str, text: str, *, timeout: float = SEARCH_TIMEOUT_SECONDS) -> bool:
    """Whether ``pattern`` matches anywhere in ``text``; ExpressionError when the pattern
    is invalid or too long, the text too long, or the search takes over ``timeout``."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ExpressionError(
            f"the pattern is {len(pattern):,} characters; the limit is {MAX_PATTERN_LENGTH:,}"
        )
    if len(text) > MAX_INPUT_LENGTH:
        raise ExpressionError(
            f"matches() got {len(text):,} characters to search; the limit is {MAX_INPUT_LENGTH:,}"
        )
    _check_pattern(pattern)
    if re.escape(pattern) == pattern:
        return pattern in text
    return _WORKER.search(pattern, text, timeout)


@lru_cache(maxsize=512)
def _check_pattern(pattern: str) -> None:
    """Compile here first, so a bad pattern gets re's own message and position."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ExpressionError(f"invalid regular expression: {exc}") from None


class _Worker:
    """One helper process, used by one search at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        atexit.register(self.close)

    def search(self, pattern: str, text: str, timeout: float) -> bool:
        started = time.monotonic()
        if not self._lock.acquire(timeout=max(timeout, 0.0)):
            raise ExpressionError("matches() timed out waiting for another regex search")
        try:
            left = timeout - (time.monotonic() - started)
            reply = self._ask({"p": pattern, "t": text}, left)
        finally:
            self._lock.release()
        if "error" in reply:
            raise ExpressionError(f"invalid regular expression: {reply['error']}")
        return bool(reply["found"])

    def _ask(self, request: dict[str, str], timeout: float) -> dict[str, object]:
        process = self._running()
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            payload = memoryview(json.dumps(request).encode("ascii") + b"\n")
            while payload:
                payload = payload[process.stdin.write(payload) or 0 :]
            line = _read_line(process.stdout.fileno(), time.monotonic() + timeout)
        except (OSError, ValueError):
            line = None
        if line is None:
            self.close()
            raise ExpressionError(
                f"the regular expression took longer than {max(timeout, 0):.1f}s; "
                "simplify it (avoid nested repetition such as (a+)+)"
            )
        reply: dict[str, object] = json.loads(line)
        return reply

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            # our own interpreter (sys.executable) on fixed code: no shell, no user input
            self._process = subprocess.Popen(  # noqa: S603  # nosec B603
                [sys.executable, "-I", "-S", "-c", _WORKER_SOURCE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=0,
            )
        return self._process

    def close(self) -> None:
        """Stop the helper process (a new one starts on the next search)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def _read_line(fd: int, deadline: float) -> bytes | None:
    """One reply line from the helper, or None when it does not come by ``deadline``."""
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        data += chunk
    return data


_WORKER = _Worker()
