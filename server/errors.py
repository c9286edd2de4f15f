"""One error hierarchy for Flowyard.

Every error a user can cause is a :class:`FlowyardError`. Each class says which HTTP
status and stable ``code`` it maps to, so the API edge (``server.api.errors``) turns any
of them into the single error shape without knowing the individual classes. The class
docstring is the default message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import get_close_matches


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where (a JSON pointer) and what to do about it."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class FlowyardError(Exception):
    """Flowyard could not complete the request."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str | None = None, *, details: Iterable[Problem] = ()) -> None:
        self.message = message or (type(self).__doc__ or "").strip().splitlines()[0]
        self.details: tuple[Problem, ...] = tuple(details)
        super().__init__(self.message)


class ConfigurationError(FlowyardError):
    """A setting has a value Flowyard cannot use."""

    code = "configuration_error"

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"setting {key!r}: {message}")


class BadRequest(FlowyardError):
    """The request could not be read."""

    status_code = 400
    code = "bad_request"


class MalformedJSON(BadRequest):
    """The request body is not valid JSON."""

    code = "malformed_json"


class UnsupportedMediaType(FlowyardError):
    """The request body must be JSON (Content-Type: application/json)."""

    status_code = 415
    code = "unsupported_media_type"


class PayloadTooLarge(FlowyardError):
    """The request body is larger than the server accepts."""

    status_code = 413
    code = "payload_too_large"


class InvalidInput(FlowyardError):
    """The request is well-formed but its content is invalid."""

    status_code = 422
    code = "validation_error"


class InvalidDefinition(InvalidInput):
    """The workflow definition is invalid; nothing was stored."""

    code = "invalid_definition"

    def __init__(self, problems: Sequence[Problem], message: str | None = None) -> None:
        count = len(problems)
        default = f"the workflow definition has {count} problem{'s' if count != 1 else ''}"
        super().__init__(message or default, details=problems)


class UnknownNodeType(InvalidInput):
    """The node type is not registered."""

    code = "unknown_node_type"

    def __init__(self, type_name: str, known: Iterable[str]) -> None:
        self.type_name = type_name
        self.known = tuple(sorted(known))
        hint = get_close_matches(type_name, self.known, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        super().__init__(
            f"unknown node type {type_name!r}; known types: {', '.join(self.known)}{suggestion}"
        )


class DuplicateNodeType(FlowyardError):
    """A node type name is already registered."""

    code = "duplicate_node_type"

    def __init__(self, name: str, registered_as: str) -> None:
        self.name = name
        super().__init__(
            f"node type name {name!r} is already registered (by {registered_as!r}); "
            "pick another name or alias"
        )


class Unauthorized(FlowyardError):
    """Authentication is required: send credentials."""

    status_code = 401
    code = "unauthorized"


class Forbidden(FlowyardError):
    """You are not allowed to do that."""

    status_code = 403
    code = "forbidden"


class NotFound(FlowyardError):
    """The requested object does not exist."""

    status_code = 404
    code = "not_found"


class Conflict(FlowyardError):
    """The request conflicts with the current state."""

    status_code = 409
    code = "conflict"


class InvalidTransition(Conflict):
    """That action is not possible in the object's current status."""

    code = "invalid_transition"


class Unavailable(FlowyardError):
    """A component Flowyard depends on is not available right now."""

    status_code = 503
    code = "unavailable"


class ExpressionError(FlowyardError):
    """An expression or template could not be evaluated.

    Carries the expression text, the 0-based character position (when known) and the
    reason, so that a node failure can show exactly what went wrong where.
    """

    status_code = 422
    code = "expression_error"

    def __init__(self, reason: str, *, expression: str = "", position: int | None = None) -> None:
        self.reason = reason
        self.expression = expression
        self.position = position
        where = f" at position {position}" if position is not None else ""
        shown = f" in {expression!r}" if expression else ""
        super().__init__(f"{reason}{where}{shown}")
