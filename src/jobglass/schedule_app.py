"""The app's schedule methods (`app.schedule`, `app.schedules`, pause/resume/trigger)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from .app import JobGlass
    from .jobs import JobDefinition
    from .models import Run
    from .schedule_config import ScheduleRegistry
    from .scheduler import Schedule


class ScheduleAppMixin:
    """Mixed into JobGlass; the work is in scheduler.py and schedule_config.py."""

    _schedule_registry: ScheduleRegistry | None = None

    @property
    def schedule_registry(self) -> ScheduleRegistry:
        if self._schedule_registry is None:
            from .schedule_config import ScheduleRegistry

            self._schedule_registry = ScheduleRegistry()
        return self._schedule_registry

    def schedule(self, job: str | JobDefinition, **options: Any) -> Schedule:
        """`cron=` or `every=`, and `name`, `params`, `tenant_id`, `user_id`, `enabled`,
        `description`, `timezone`, `misfire`, `overlap`, `catch_up_limit`, `correlation_prefix`."""
        from .schedule_config import add_schedule

        return add_schedule(cast("JobGlass", self), job, **options)

    def load_schedule_config(self, path: str | os.PathLike[str]) -> list[Schedule]:
        """Use this jobglass.toml / pyproject.toml / appsettings JSON (instead of discovery)."""
        from .schedule_config import load_config

        loaded = load_config(cast("JobGlass", self), path)
        self.schedule_registry.config, self.schedule_registry.config_path = loaded, str(path)
        return loaded

    async def schedules(self) -> list[Schedule]:
        from .schedule_control import list_schedules

        return await list_schedules(cast("JobGlass", self))

    async def pause_schedule(self, name: str) -> Schedule:
        from .schedule_control import pause_schedule

        return await pause_schedule(cast("JobGlass", self), name)

    async def resume_schedule(self, name: str) -> Schedule:
        from .schedule_control import resume_schedule

        return await resume_schedule(cast("JobGlass", self), name)

    async def trigger_schedule(self, name: str) -> Run:
        from .schedule_control import trigger_schedule

        return await trigger_schedule(cast("JobGlass", self), name)
