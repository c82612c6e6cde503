"""JobGlass's side of application logging: `app.log`, queries, retention (a mixin)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .applog_hub import AppLogHub
from .errors import InvalidInput
from .stores.applog_types import APP, APP_LEVELS, AUDIT, AppLogFilter, AppLogRecord

if TYPE_CHECKING:
    from .applog import AppLogger
    from .config import Settings
    from .stores.base import Store

__all__ = ["AppLogMixin"]


class AppLogMixin:
    """`app.log`, `app.query_logs`, `app.query_audit`, `app.prune_app_logs` on JobGlass."""

    settings: Settings
    _store: Store | None
    _applog_hub: AppLogHub | None = None

    if TYPE_CHECKING:

        async def _ready(self) -> Store: ...

    @property
    def app_logs(self) -> AppLogHub:
        """The app's log hub; `app.app_logs.request_config = RequestContextConfig(...)`."""
        hub = self._applog_hub
        if hub is None:
            hub = AppLogHub(
                self._write_app_logs,
                sensitive_keys=self.settings.sensitive_keys,
                interval=self.settings.flush_interval,
                store=lambda: self._store,
            )
            self._applog_hub = hub
        return hub

    @property
    def log(self) -> AppLogger:
        """The base application logger (`app.log.with_request(req).info(...)`)."""
        return self.app_logs.logger

    async def _write_app_logs(self, records: Sequence[AppLogRecord]) -> int:
        return await (await self._ready()).write_app_logs(records)

    async def _close_app_logs(self) -> None:
        if self._applog_hub is not None:
            await self._applog_hub.close()

    async def query_logs(
        self,
        *,
        level: str | Sequence[str] | None = None,
        user_id: str | None = None,
        correlation_id: str | None = None,
        source_key: str | None = None,
        source_display_name: str | None = None,
        external_system_key: str | None = None,
        external_system_display_name: str | None = None,
        record_key: str | None = None,
        record_display_name: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        before_id: int | str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """Application logs, newest first: `{"logs": [...], "nextCursor": id | None}`."""
        levels = [level] if isinstance(level, str) else list(level or ())
        for name in levels:
            if name not in APP_LEVELS:
                raise InvalidInput(f"unknown level {name!r}; use one of {', '.join(APP_LEVELS)}")
        flt = AppLogFilter(
            APP,
            levels,
            user_id,
            correlation_id,
            source_key,
            source_display_name,
            external_system_key,
            external_system_display_name,
            record_key,
            record_display_name,
        )
        records, cursor = await self._query(flt, since, until, before_id, limit)
        return {"logs": [r.to_json() for r in records], "nextCursor": cursor}

    async def query_audit(
        self,
        *,
        action: str | None = None,
        resource: str | None = None,
        user_id: str | None = None,
        correlation_id: str | None = None,
        source_key: str | None = None,
        source_display_name: str | None = None,
        external_system_key: str | None = None,
        external_system_display_name: str | None = None,
        record_key: str | None = None,
        record_display_name: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        before_id: int | str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """Audit events, newest first: `{"events": [...], "nextCursor": id | None}`."""
        flt = AppLogFilter(
            AUDIT,
            (),
            user_id,
            correlation_id,
            source_key,
            source_display_name,
            external_system_key,
            external_system_display_name,
            record_key,
            record_display_name,
            action,
            resource,
        )
        records, cursor = await self._query(flt, since, until, before_id, limit)
        return {"events": [r.to_json() for r in records], "nextCursor": cursor}

    async def _query(
        self,
        flt: AppLogFilter,
        since: datetime | str | None,
        until: datetime | str | None,
        before_id: int | str | None,
        limit: int,
    ) -> tuple[list[AppLogRecord], str | None]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidInput("limit must be an integer from 1 to 1000")
        flt.since = _time_arg("since", since)
        flt.until = _time_arg("until", until)
        flt.before_id = _cursor_arg(before_id)
        flt.limit = limit + 1
        records = await (await self._ready()).query_app_logs(flt)
        more = len(records) > limit
        records = records[:limit]
        cursor = str(records[-1].id) if more and records else None
        return records, cursor

    async def prune_app_logs(self) -> int:
        """Delete app logs older than `app_log_days` and audit events older than
        `audit_log_days` (workers also do this in their maintenance loop)."""
        s = self.settings
        now = datetime.now(UTC)
        app_days, audit_days = s.app_log_days, s.audit_log_days
        app_before = None if app_days is None else now - timedelta(days=app_days)
        audit_before = None if audit_days is None else now - timedelta(days=audit_days)
        if app_before is None and audit_before is None:
            return 0
        return await (await self._ready()).prune_app_logs(app_before, audit_before)


def _time_arg(name: str, value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"{name} {value!r} is not an ISO-8601 time") from None
    if not isinstance(value, datetime):
        raise InvalidInput(f"{name} must be a datetime or an ISO-8601 string")
    if value.tzinfo is None:
        raise InvalidInput(f"{name} must carry a time zone (e.g. ...Z or +02:00)")
    return value.astimezone(UTC)


def _cursor_arg(value: int | str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        cursor = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"cursor {value!r} is not a log id") from None
    if cursor <= 0 or cursor > 2**63 - 1:
        raise InvalidInput(f"cursor {value!r} is not a log id")
    return cursor
