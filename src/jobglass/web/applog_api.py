"""Admin API for application and audit logs: `GET /api/admin/logs`, `GET /api/admin/audit`.

Filters are camelCase query parameters, one per indexed field, plus a time range
(`since`/`until`, ISO-8601 with a zone) and the cursor (`beforeId`, the previous page's
`nextCursor`). Authentication is the caller's: `create_api` includes this router with the
read-route dependency (admin or viewer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Query

from ..errors import InvalidInput

if TYPE_CHECKING:
    from ..app import JobGlass

__all__ = ["router"]


def _levels(values: list[str] | None) -> list[str] | None:
    """`level=warning&level=error` or `level=warning,error`."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def router(app: JobGlass) -> APIRouter:
    api = APIRouter(tags=["application logs"])

    @api.get("/api/admin/logs")
    async def list_logs(
        level: list[str] | None = Query(None, description="debug, info, warning or error"),
        user_id: str | None = Query(None, alias="userId"),
        correlation_id: str | None = Query(None, alias="correlationId"),
        source_key: str | None = Query(None, alias="sourceKey"),
        source_display_name: str | None = Query(None, alias="sourceDisplayName"),
        external_system_key: str | None = Query(None, alias="externalSystemKey"),
        external_system_display_name: str | None = Query(None, alias="externalSystemDisplayName"),
        record_key: str | None = Query(None, alias="recordKey"),
        record_display_name: str | None = Query(None, alias="recordDisplayName"),
        since: str | None = Query(None, description="ISO-8601, inclusive"),
        until: str | None = Query(None, description="ISO-8601, exclusive"),
        before_id: str | None = Query(None, alias="beforeId", description="nextCursor"),
        limit: int = Query(50, ge=1, le=1000),
    ) -> dict[str, Any]:
        """Application logs, newest first: `{"logs": [...], "nextCursor": ...}`."""
        try:
            return await app.query_logs(
                level=_levels(level),
                user_id=user_id,
                correlation_id=correlation_id,
                source_key=source_key,
                source_display_name=source_display_name,
                external_system_key=external_system_key,
                external_system_display_name=external_system_display_name,
                record_key=record_key,
                record_display_name=record_display_name,
                since=since,
                until=until,
                before_id=before_id,
                limit=limit,
            )
        except InvalidInput as err:
            raise HTTPException(422, str(err)) from None

    @api.get("/api/admin/audit")
    async def list_audit(
        action: str | None = Query(None),
        resource: str | None = Query(None),
        user_id: str | None = Query(None, alias="userId"),
        correlation_id: str | None = Query(None, alias="correlationId"),
        source_key: str | None = Query(None, alias="sourceKey"),
        source_display_name: str | None = Query(None, alias="sourceDisplayName"),
        external_system_key: str | None = Query(None, alias="externalSystemKey"),
        external_system_display_name: str | None = Query(None, alias="externalSystemDisplayName"),
        record_key: str | None = Query(None, alias="recordKey"),
        record_display_name: str | None = Query(None, alias="recordDisplayName"),
        since: str | None = Query(None, description="ISO-8601, inclusive"),
        until: str | None = Query(None, description="ISO-8601, exclusive"),
        before_id: str | None = Query(None, alias="beforeId", description="nextCursor"),
        limit: int = Query(50, ge=1, le=1000),
    ) -> dict[str, Any]:
        """Audit events, newest first: `{"events": [...], "nextCursor": ...}`."""
        try:
            return await app.query_audit(
                action=action,
                resource=resource,
                user_id=user_id,
                correlation_id=correlation_id,
                source_key=source_key,
                source_display_name=source_display_name,
                external_system_key=external_system_key,
                external_system_display_name=external_system_display_name,
                record_key=record_key,
                record_display_name=record_display_name,
                since=since,
                until=until,
                before_id=before_id,
                limit=limit,
            )
        except InvalidInput as err:
            raise HTTPException(422, str(err)) from None

    return api
