"""Wire shapes that are not the definition document itself, for OpenAPI and handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from litestar.params import QueryParameter

#: The largest ``offset`` (or event id) a list route accepts: a signed 64-bit integer is
#: the widest number SQLite and PostgreSQL bind, and a larger one must be a 400, not a
#: driver overflow (a 500).
MAX_OFFSET = 2**63 - 1
Offset = Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET, description="items to skip")]


@dataclass
class ErrorDetail:
    path: str
    message: str


@dataclass
class ErrorInfo:
    code: str
    message: str
    details: list[ErrorDetail] = field(default_factory=list)
    correlation_id: str | None = None


@dataclass
class ErrorResponse:
    """The single error shape of every route."""

    error: ErrorInfo


@dataclass
class ValidationResult:
    valid: bool
    errors: list[ErrorDetail]
    warnings: list[ErrorDetail]


@dataclass
class WorkflowList:
    workflows: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


@dataclass
class VersionEntry:
    version: str
    status: str
    created_at: datetime
    created_by: str | None


@dataclass
class VersionList:
    workflow_id: str
    versions: list[VersionEntry]


@dataclass
class StatusChange:
    """Body of ``PATCH /api/v1/workflows/{id}``: move a version through the lifecycle."""

    status: str
    version: str | None = None


@dataclass
class HealthCheck:
    status: str
    latency_ms: float | None = None
    message: str | None = None


@dataclass
class Health:
    status: str
    version: str
    uptime_seconds: float
    checks: dict[str, HealthCheck]
