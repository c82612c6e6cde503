"""Where schedules are defined: in code and in config files, checked the same way.

Code: `@app.job(..., schedule="0 */15 * * * ?")` (named after the job) and
`app.schedule(job, cron=... | every=..., name=..., ...)`.

Config (config overrides code for the same name, key by key):

* `jobglass.toml`: `[schedules.<name>]` tables;
* `pyproject.toml`: `[tool.jobglass.schedules.<name>]`;
* appsettings-style JSON: `{"QuartzJobs": {"ReportGenerationJob.Weekly": {"CronExpression": ...,
  "Description": ..., "Enabled": true, "JobData": {...}}}}`: the key is the schedule name and
  the part before the first dot the job, unless `Job`/`JobName` says otherwise.

Keys are matched without regard to case, `_` and `-` (`cron_expression`, `CronExpression`);
every error names the file, the schedule and the key.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cron import CronError, parse_interval
from .errors import ConfigError, InvalidInput
from .scheduler import MISFIRE_POLICIES, OVERLAP_POLICIES, Schedule, timing_of

if TYPE_CHECKING:
    from .app import JobGlass
    from .jobs import JobDefinition

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MAX_CATCH_UP = 1000

#: canonical key -> accepted spellings (compared lower-case without `_` and `-`)
KEYS: dict[str, tuple[str, ...]] = {
    "job": ("job", "jobname"),
    "cron": ("cron", "cronexpression"),
    "every": ("every", "interval"),
    "timezone": ("timezone", "tz", "timezoneid"),
    "description": ("description",),
    "enabled": ("enabled",),
    "params": ("params", "jobdata", "jobdatamap"),
    "tenant_id": ("tenantid", "tenant"),
    "user_id": ("userid", "applicationuserid", "user"),
    "correlation_prefix": ("correlationprefix", "correlationid"),
    "misfire": ("misfire", "misfirepolicy", "misfireinstruction"),
    "overlap": ("overlap",),
    "catch_up_limit": ("catchuplimit",),
}
_SPELLINGS = {spelling: key for key, names in KEYS.items() for spelling in names}
#: misfire spellings, Quartz's instruction names included
_MISFIRE = {
    "fireonce": "fire_once",
    "fireoncenow": "fire_once",
    "fireandproceed": "fire_once",
    "skip": "skip",
    "donothing": "skip",
    "catchup": "catch_up",
    "ignoremisfires": "catch_up",
    "ignoremisfirepolicy": "catch_up",
}


def _norm(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


class ScheduleError(InvalidInput):
    """A schedule definition was refused; `key` names the offending setting, if one does."""

    def __init__(self, detail: str, key: str | None = None) -> None:
        super().__init__(f"key {key!r}: {detail}" if key else detail)
        self.key = key
        self.detail = detail


@dataclass
class ScheduleRegistry:
    """An app's schedule definitions (besides `@app.job(schedule=...)`), and live schedulers."""

    code: dict[str, Schedule] = field(default_factory=dict)
    config: list[Schedule] | None = None  # None: not loaded yet (then settings/discovery)
    config_path: str | None = None
    wakers: list[Callable[[], None]] = field(default_factory=list)


# -- building one schedule --------------------------------------------------------------------


def build_schedule(app: JobGlass, name: str, values: Mapping[str, Any], source: str) -> Schedule:
    """Check canonical `values` (see KEYS) against the app's jobs; raise ScheduleError."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ScheduleError(
            f"invalid schedule name {name!r}: 1-128 letters, digits, '_', '.', ':' or '-'"
        )
    job = values.get("job")
    if not isinstance(job, str) or not job:
        raise ScheduleError(f"must name a job, got {job!r}", "job")
    definition = app.jobs.get(job)
    if definition is None:
        known = ", ".join(sorted(app.jobs)) or "none registered"
        raise ScheduleError(f"unknown job {job!r} (known jobs: {known})", "job")
    tz = values.get("timezone", "UTC")
    if not isinstance(tz, str):
        raise ScheduleError(
            f"must be an IANA zone name like 'Europe/Berlin', got {tz!r}", "timezone"
        )
    cron, every = values.get("cron"), values.get("every")
    if cron is not None and every is not None:
        raise ScheduleError("give 'cron' or 'every', not both", "cron")
    if cron is None and every is None:
        raise ScheduleError("needs 'cron' (e.g. '0 0 2 * * ?') or 'every' (e.g. '4h')", "cron")
    every_seconds = None if every is None else _every_seconds(every)
    if cron is not None and not isinstance(cron, str):
        raise ScheduleError(f"must be a cron expression string, got {cron!r}", "cron")
    try:
        timing_of(cron, every_seconds, tz)
    except CronError as err:
        raise ScheduleError(
            str(err),
            "timezone" if err.field == "timezone" else "every" if every is not None else "cron",
        ) from None
    try:
        params = definition.validate_params(values.get("params") or {})
    except InvalidInput as err:
        raise ScheduleError(str(err), "params") from None
    return Schedule(
        name=name,
        job_name=job,
        cron=" ".join(cron.split()) if isinstance(cron, str) else None,
        every_seconds=every_seconds,
        timezone=tz,
        description=_opt_text(values.get("description"), "description") or definition.description,
        enabled=_bool(values.get("enabled", True), "enabled"),
        params=params,
        tenant_id=_ident(values.get("tenant_id"), "tenant_id"),
        user_id=_ident(values.get("user_id"), "user_id"),
        correlation_prefix=_prefix(values.get("correlation_prefix")),
        misfire=_choice(values.get("misfire", "fire_once"), "misfire"),
        overlap=_choice(values.get("overlap", "skip"), "overlap"),
        catch_up_limit=_limit(values.get("catch_up_limit", 10)),
        source=source,
    )


def _every_seconds(value: Any) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_interval(value).total_seconds()
        except CronError as err:
            raise ScheduleError(str(err), "every") from None
    else:
        raise ScheduleError(
            f"must be a duration like '4h' or a number of seconds: {value!r}", "every"
        )
    if seconds < 1 or seconds != int(seconds):
        raise ScheduleError(f"must be a whole number of seconds >= 1, got {value!r}", "every")
    return seconds


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ScheduleError(f"must be true or false, got {value!r}", key)
    return value


def _opt_text(value: Any, key: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ScheduleError(f"must be a string, got {value!r}", key)
    return value


def _ident(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise ScheduleError(f"must be a string or an integer, got {value!r}", key)
    return str(value)


def _prefix(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not PREFIX_RE.match(value):
        raise ScheduleError(
            f"must be 1-64 letters, digits, '_', '.', ':' or '-', got {value!r}",
            "correlation_prefix",
        )
    return value


def _choice(value: Any, key: str) -> str:
    allowed = MISFIRE_POLICIES if key == "misfire" else OVERLAP_POLICIES
    normal = _norm(value) if isinstance(value, str) else None
    chosen = _MISFIRE.get(normal or "") if key == "misfire" else value
    if chosen not in allowed:
        raise ScheduleError(f"must be one of {', '.join(allowed)}; got {value!r}", key)
    return str(chosen)


def _limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CATCH_UP:
        raise ScheduleError(
            f"must be an integer from 1 to {MAX_CATCH_UP}, got {value!r}", "catch_up_limit"
        )
    return value


# -- schedules from code -----------------------------------------------------------------------


def add_schedule(app: JobGlass, job: str | JobDefinition, **options: Any) -> Schedule:
    """`app.schedule(job, cron=... | every=..., name=..., params=..., ...)`."""
    job_name = job if isinstance(job, str) else job.name
    name = options.pop("name", None) or job_name
    unknown = sorted(set(options) - set(KEYS) - {"job"})
    if unknown:
        raise InvalidInput(f"schedule {name!r}: unknown option(s) {', '.join(unknown)}")
    values = {k: v for k, v in options.items() if v is not None}
    values["job"] = job_name
    try:
        built = build_schedule(app, name, values, "code")
    except ScheduleError as err:
        raise InvalidInput(f"schedule {name!r}: {err}") from None
    registry = app.schedule_registry
    if name in registry.code or name in _decorated(app):
        raise InvalidInput(f"schedule {name!r} is defined twice; pass name= to tell them apart")
    registry.code[name] = built
    for wake in list(registry.wakers):
        wake()
    return built


def _decorator_values(definition: JobDefinition) -> dict[str, Any]:
    """The settings `@app.job(schedule=...)` stands for: `"@every 4h"` or a cron expression."""
    values: dict[str, Any] = {"job": definition.name}
    stripped = str(definition.schedule).strip()
    if stripped.lower().startswith(("@every ", "every ")):
        values["every"] = stripped.split(None, 1)[1]
    else:
        values["cron"] = stripped
    return values


def check_decorated_schedule(definition: JobDefinition) -> None:
    """Refuse `@app.job(schedule=...)` when the job is defined, not at the first sync: a bad
    expression raises `CronError` naming the job and the field; a job whose required
    parameters a schedule without params can't give raises `InvalidInput`."""
    text = definition.schedule
    name = definition.name
    if not isinstance(text, str) or not text.strip():
        raise CronError(
            f"job {name!r}: schedule must be a cron expression or '@every <interval>',"
            f" got {text!r}",
            str(text),
        )
    values = _decorator_values(definition)
    try:
        every = values.get("every")
        timing_of(values.get("cron"), None if every is None else _every_seconds(every), "UTC")
    except CronError as err:
        raise CronError(f"job {name!r}: schedule: {err}", err.expression, err.field) from None
    except ScheduleError as err:
        raise CronError(f"job {name!r}: schedule: {err.detail}", text, "interval") from None
    try:
        definition.validate_params({})
    except InvalidInput as err:
        raise InvalidInput(
            f"job {name!r}: schedule: {err} (a schedule given to @app.job runs without params;"
            " use app.schedule(..., params=...))"
        ) from None


def _decorated(app: JobGlass) -> dict[str, Schedule]:
    """`@app.job(..., schedule="0 */15 * * * ?")`: a schedule named after the job."""
    out: dict[str, Schedule] = {}
    for definition in app.jobs.values():
        if not definition.schedule:
            continue
        values = _decorator_values(definition)
        try:
            out[definition.name] = build_schedule(app, definition.name, values, "code")
        except ScheduleError as err:
            raise InvalidInput(f"job {definition.name!r}: schedule: {err.detail}") from None
    return out


def defined_schedules(app: JobGlass) -> list[Schedule]:
    """Code schedules, overridden key by key by config ones of the same name (an app without
    jobs, e.g. the CLI's bare app, defines none: it only sees what is stored)."""
    if not app.jobs:
        return []
    merged = {**_decorated(app), **app.schedule_registry.code}
    for s in configured_schedules(app):
        merged[s.name] = s
    return [merged[name] for name in sorted(merged)]


def configured_schedules(app: JobGlass) -> list[Schedule]:
    registry = app.schedule_registry
    if registry.config is None:
        path = getattr(app.settings, "schedule_config", None) or discover_config()
        registry.config = [] if path is None else load_config(app, path)
        registry.config_path = path
    return registry.config


def discover_config(cwd: str | os.PathLike[str] = ".") -> str | None:
    """`./jobglass.toml`, else `./pyproject.toml` when it has `[tool.jobglass]`."""
    base = Path(cwd)
    if (base / "jobglass.toml").is_file():
        return str(base / "jobglass.toml") if str(cwd) != "." else "jobglass.toml"
    pyproject = base / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return None
        if isinstance(data.get("tool"), dict) and "jobglass" in data["tool"]:
            return str(pyproject) if str(cwd) != "." else "pyproject.toml"
    return None


# -- schedules from config files ----------------------------------------------------------------


def load_config(app: JobGlass, path: str | os.PathLike[str]) -> list[Schedule]:
    """Read one config file (TOML or JSON) and check every schedule in it."""
    label = str(path)
    entries = read_config_file(label)
    code = {**_decorated(app), **app.schedule_registry.code}
    out = []
    for name, raw in entries.items():
        where = f"{label}: schedule {name!r}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: must be a table/object of settings, got {raw!r}")
        values, spellings = _canonical(raw, where, name)
        base = code.get(name)
        merged: dict[str, Any] = _values_of(base) if base is not None else {}
        if "cron" in values or "every" in values:
            merged.pop("cron", None)
            merged.pop("every", None)
        merged.update(values)
        if "job" not in merged:
            merged["job"] = name.split(".", 1)[0]
            if merged["job"] not in app.jobs:
                known = ", ".join(sorted(app.jobs)) or "none registered"
                raise ConfigError(
                    f"{where}: unknown job {merged['job']!r} (taken from the schedule name; set"
                    f" 'job' to name another; known jobs: {known})"
                )
        if "params" in merged and values.get("params") is not None and label.endswith(".json"):
            merged["params"] = _snake_params(app, merged["job"], merged["params"])
        try:
            out.append(build_schedule(app, name, merged, "config"))
        except ScheduleError as err:
            key = spellings.get(err.key, err.key) if err.key else None
            detail = f"key {key!r}: {err.detail}" if key else err.detail
            raise ConfigError(f"{where}: {detail}") from None
    return out


def read_config_file(label: str) -> dict[str, Any]:
    """The `{name: settings}` mapping of a jobglass.toml, pyproject.toml or JSON file."""
    try:
        text = Path(label).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{label}: cannot read schedule config: {err.strerror or err}") from None
    if label.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{label}: invalid JSON: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{label}: expected a JSON object at the top level")
        section = next((k for k in ("QuartzJobs", "schedules", "Schedules") if k in data), None)
        found = data.get(section) if section else {}
        where = section or "QuartzJobs"
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{label}: invalid TOML: {err}") from None
        where = "schedules"
        if Path(label).name == "pyproject.toml":
            data = data.get("tool", {}).get("jobglass", {})
            where = "tool.jobglass.schedules"
        found = data.get("schedules", {})
    if not isinstance(found, dict):
        raise ConfigError(f"{label}: '{where}' must be a table/object of schedules")
    return found


def _canonical(
    raw: Mapping[str, Any], where: str, name: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Settings by canonical key, and the spelling the file used for each."""
    values: dict[str, Any] = {}
    spellings: dict[str, str] = {}
    for key, value in raw.items():
        canon = _SPELLINGS.get(_norm(key))
        if canon is None:
            hint = (
                f"; a schedule name with a dot must be quoted in TOML: [schedules.'{name}.{key}']"
                if isinstance(value, dict)
                else ""
            )
            raise ConfigError(f"{where}: unknown key {key!r} (known keys: {', '.join(KEYS)}){hint}")
        if canon in values:
            raise ConfigError(f"{where}: key {key!r} repeats key {spellings[canon]!r}")
        values[canon] = value
        spellings[canon] = key
    return values, spellings


def _values_of(s: Schedule) -> dict[str, Any]:
    out = {f.name: getattr(s, f.name) for f in fields(s) if f.name in KEYS}
    out["job"] = s.job_name
    if s.every_seconds is not None:
        out["every"] = s.every_seconds
    return {k: v for k, v in out.items() if v is not None}


def _snake_params(app: JobGlass, job: str, params: Any) -> Any:
    """JobDataMap keys in PascalCase match snake_case parameters (ReportType -> report_type)."""
    definition = app.jobs.get(job)
    if definition is None or not isinstance(params, dict):
        return params
    known = {p.name for p in definition.params}
    out = {}
    for key, value in params.items():
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", str(key)).lower()
        out[snake if key not in known and snake in known else key] = value
    return out
