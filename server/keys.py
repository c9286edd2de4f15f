"""The server's secret key, and the purpose-bound keys derived from it.

One master secret signs everything the server must later recognise as its own: the
one-click links of human-task notices now, and (security issue) the Fernet key that
encrypts stored secrets. It comes from ``FLOWYARD_SECRET_KEY`` when set — required when
several processes on several machines share a database, since they must agree on it —
else from the file ``secret.key`` in ``server.data_dir``, generated on first use with
owner-only (0600) permissions.

Callers never use the master secret directly: :func:`derive` gives each purpose its own
key (HMAC-SHA256 of the purpose name), so a signature made for one purpose can never be
replayed as another, and rotating one use does not need a new master.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from server.errors import ConfigurationError

log = logging.getLogger("flowyard.keys")

ENV_VAR = "FLOWYARD_SECRET_KEY"
KEY_FILE = "secret.key"
#: Shortest accepted ``FLOWYARD_SECRET_KEY`` (characters); 32 random bytes encode to 43.
MIN_SECRET_CHARS = 32


def load_master_key(data_dir: str | Path, environ: Mapping[str, str] | None = None) -> bytes:
    """The master secret: ``FLOWYARD_SECRET_KEY``, else the key file (created if absent)."""
    env = os.environ if environ is None else environ
    configured = env.get(ENV_VAR, "").strip()
    if configured:
        if len(configured) < MIN_SECRET_CHARS:
            raise ConfigurationError(
                ENV_VAR,
                f"must be at least {MIN_SECRET_CHARS} characters of random text; generate "
                "one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )
        return configured.encode()
    return _key_file(Path(data_dir) / KEY_FILE)


def derive(master: bytes, purpose: str) -> bytes:
    """A 32-byte key for one ``purpose`` (``"task-links"``, ``"fernet"``…)."""
    return hmac.new(master, f"flowyard:{purpose}".encode(), hashlib.sha256).digest()


def _key_file(path: Path) -> bytes:
    """Read the key file, or create it (0600) with 32 random bytes.

    Creation uses ``O_EXCL``, so two processes starting at once agree on one key: the
    loser of the race reads the winner's file.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(32))
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(encoded + b"\n")
    log.info("generated the server key", extra={"action": "keys.generated", "path": str(path)})
    return encoded


def _read(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "the server key file is readable by others; run chmod 600 on it",
            extra={"action": "keys.permissions", "path": str(path)},
        )
    key = path.read_bytes().strip()
    if len(key) < MIN_SECRET_CHARS:
        raise ConfigurationError(
            "server.data_dir",
            f"the key file {path} is damaged (too short); remove it to generate a new one "
            "(links signed with the old key stop working)",
        )
    return key
