"""Standard Webhooks signatures: what ``webhook`` nodes send and what callbacks and hooks
accept (https://www.standardwebhooks.com/).

A message is signed over ``<webhook-id>.<webhook-timestamp>.<body>`` with HMAC-SHA256;
the ``webhook-signature`` header carries space-separated ``v1,<base64>`` entries, one
per secret, so a receiver that rotates secrets accepts any of them. A secret written
``whsec_<base64>`` is the base64-decoded key (as the standard says); any other string is
used as its UTF-8 bytes. Verification compares in constant time and refuses timestamps
more than five minutes away from now, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime

from server.errors import FlowyardError

TOLERANCE_SECONDS = 5 * 60
SECRET_PREFIX = "whsec_"  # noqa: S105  # nosec B105  # a prefix, not a secret


class SignatureError(FlowyardError):
    """A signed request was refused: a missing header, a bad signature, a stale time."""

    status_code = 401
    code = "invalid_signature"


def generate_secret() -> str:
    """A new ``whsec_`` secret (24 random bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret as written in a definition or configuration."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError(
                "a 'whsec_' secret must be base64 after its prefix; generate one with "
                "`flowyard` or write the secret without the prefix"
            ) from None
    return secret.encode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one message with one secret."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign(secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a signed message (signed with the first secret).

    Rotation is the receiver's business: a sender signs with its current secret.
    """
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secrets_[0], message_id, timestamp, body),
    }


def verify(
    secrets_: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    *,
    tolerance: int = TOLERANCE_SECONDS,
) -> str:
    """Check a signed request; return its ``webhook-id``.

    ``headers`` must be case-insensitive (as Litestar's and httpx's are) or lower-case.
    Raises :class:`SignatureError` saying what is wrong, never which secret was close.
    """
    message_id = headers.get("webhook-id") or ""
    timestamp_text = headers.get("webhook-timestamp") or ""
    signatures = headers.get("webhook-signature") or ""
    missing = [
        name
        for name, value in (
            ("webhook-id", message_id),
            ("webhook-timestamp", timestamp_text),
            ("webhook-signature", signatures),
        )
        if not value
    ]
    if missing:
        raise SignatureError(f"missing signature header(s): {', '.join(missing)}")
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise SignatureError("webhook-timestamp must be whole seconds since 1970") from None
    skew = abs(now.timestamp() - timestamp)
    if skew > tolerance:
        raise SignatureError(
            f"webhook-timestamp is {int(skew)} s away from the server's clock; "
            f"at most {tolerance} s is accepted (a replay, or a clock to fix)"
        )
    offered = [part for part in signatures.split() if part.startswith("v1,")]
    if not offered:
        raise SignatureError("webhook-signature has no 'v1,<base64>' entry")
    for secret in secrets_:
        expected = signature(secret, message_id, timestamp, body)
        # compare every offered entry (no early exit on the first mismatch)
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return message_id
    raise SignatureError("the webhook-signature does not match the body")
