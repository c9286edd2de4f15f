"""``GET /api/v1/audit`` (admin only): who did what, newest first, with filters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import QueryParameter

from server.api.schemas import ErrorResponse, Offset
from server.api.timefilters import utc_filter
from server.config import Settings
from server.security.audit import AuditFilter, AuditLog
from server.security.permissions import permission


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["security"]

    @get(
        "/",
        summary="The audit log, newest first",
        description="Filters: actor, action (`user` matches every `user.*` action), "
        "target_type, target (an object id), from/to (timestamps; `to` exclusive).",
        responses={
            400: ResponseSpec(ErrorResponse, description="A bad parameter"),
            401: ResponseSpec(ErrorResponse, description="Authentication required"),
            403: ResponseSpec(ErrorResponse, description="Admin only"),
        },
        opt=permission("admin"),
    )
    async def list_audit(
        self,
        audit: NamedDependency[AuditLog],
        settings: NamedDependency[Settings],
        # not named ``actor``: that name is the caller (an app-wide dependency)
        actor_name: Annotated[str | None, QueryParameter(name="actor", max_length=200)] = None,
        action: Annotated[str | None, QueryParameter(max_length=60)] = None,
        target_type: Annotated[str | None, QueryParameter(max_length=40)] = None,
        target: Annotated[str | None, QueryParameter(max_length=200)] = None,
        at_from: Annotated[datetime | None, QueryParameter(name="from")] = None,
        at_to: Annotated[datetime | None, QueryParameter(name="to")] = None,
        limit: Annotated[int, QueryParameter(ge=1)] = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        where = AuditFilter(
            actor=actor_name,
            action=action,
            target_type=target_type,
            target=target,
            at_from=utc_filter(at_from, "from"),
            at_to=utc_filter(at_to, "to"),
            limit=min(limit, settings.limits.max_page_size),
            offset=offset,
        )
        return await audit.search(where)
