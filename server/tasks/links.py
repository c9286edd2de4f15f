"""Signed one-click links to a task page, for e-mail notices.

A link is ``<base>/tasks/<id>?exp=<unix time>&sig=<signature>`` (plus ``outcome=`` for
the per-outcome buttons of a notice, a hint that preselects that outcome on the page).
The signature is HMAC-SHA256, with a key derived for this purpose only
(``server.keys.derive(master, "task-links")``), over the task id and the expiry time, so
a link cannot be moved to another task or made to live longer. Links only *open* the
page: deciding is always a POST by a permitted person, never a GET, so a mail scanner
that follows every link decides nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cached_property
from urllib.parse import urlencode

from server.errors import Forbidden

PURPOSE = "task-links"
#: A link to a task without a due time lives this long.
DEFAULT_LIFETIME = timedelta(days=30)
#: A link to a task with a due time lives until then, plus this.
AFTER_DUE = timedelta(days=1)


class TaskLinks:
    """Makes and checks signed task links; the key is loaded on first use."""

    def __init__(self, key: Callable[[], bytes], base_url: str) -> None:
        self._load_key = key
        self.base_url = base_url.rstrip("/")

    @cached_property
    def _key(self) -> bytes:
        return self._load_key()

    def expiry(self, due_at: datetime | None, now: datetime) -> int:
        """When a link made ``now`` for a task due at ``due_at`` stops working."""
        until = max(due_at, now) + AFTER_DUE if due_at is not None else now + DEFAULT_LIFETIME
        return int(until.timestamp())

    def signature(self, task_id: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{task_id}.{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def url(self, task_id: str, expires: int, *, outcome: str | None = None) -> str:
        query = {"exp": str(expires), "sig": self.signature(task_id, expires)}
        if outcome is not None:
            query["outcome"] = outcome
        return f"{self.base_url}/tasks/{task_id}?{urlencode(query)}"

    def verify(self, task_id: str, expires: int, signature: str, now: datetime) -> None:
        """Raise :class:`Forbidden` unless ``signature`` is this server's, for this task,
        and not expired."""
        expected = self.signature(task_id, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise Forbidden("this task link is not valid; open the task from the inbox")
        if now.timestamp() > expires:
            raise Forbidden("this task link has expired; open the task from the inbox")
