"""What can go wrong with an outbound call, and whether trying again may help.

Every error carries ``retryable``: a node turns it into ``Failed(message, retryable)``,
so the engine's retry policy retries what is transient (a refused connection, a
timeout) and gives up at once on what is not (a blocked destination, a body over the
limit). Messages never carry credentials: URLs in them are shown without userinfo and
without the query string.
"""

from __future__ import annotations

from server.errors import FlowyardError


class OutboundError(FlowyardError):
    """An outbound HTTP call did not produce a usable response."""

    status_code = 502
    code = "outbound_error"
    retryable: bool = True


class OutboundBlocked(OutboundError):
    """The destination is not allowed by the outbound policy (``[outbound]`` settings)."""

    status_code = 403
    code = "outbound_blocked"
    retryable = False


class InvalidDestination(OutboundError):
    """The URL cannot be called (not http(s), no host, a malformed address)."""

    status_code = 422
    code = "invalid_destination"
    retryable = False


class TooManyRedirects(OutboundError):
    """The destination redirected more often than allowed."""

    code = "too_many_redirects"
    retryable = False


class ResponseTooLarge(OutboundError):
    """The response body is larger than ``limits.max_response_bytes``."""

    code = "response_too_large"
    retryable = False


class OutboundUnreachable(OutboundError):
    """The destination could not be reached (name resolution, connection, transfer)."""

    code = "outbound_unreachable"


class OutboundTimeout(OutboundError):
    """The destination did not answer in time."""

    status_code = 504
    code = "outbound_timeout"
