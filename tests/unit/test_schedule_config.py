"""Schedules from code and config files: the three formats, merging, discovery, every error."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from jobglass import ConfigError, CronError, InvalidInput, JobContext, JobGlass
from jobglass.schedule_config import defined_schedules, discover_config, load_config


def make_app(**settings: object) -> JobGlass:
    app = JobGlass("sqlite:///unused.db", **settings)

    @app.job(name="data-cleanup", schedule="0 0 2 * * ?")
    async def data_cleanup(ctx: JobContext, retention_days: int = 90) -> None: ...

    @app.job(name="report-generation")
    async def report_generation(ctx: JobContext, report_type: str = "Weekly") -> None: ...

    @app.job(name="health-check", schedule="@every 4h")
    async def health_check(ctx: JobContext) -> None: ...

    return app


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


TOML = """
[other]                       # other tables are not ours: ignored
x = 1

[schedules.data-cleanup]
enabled = false               # overrides the code schedule key by key: its cron stays

[schedules."report-generation.Weekly"]
cron = "0 0 8 ? * MON"
description = "Weekly reports"
params = { report_type = "Weekly" }
tenant_id = 7
user_id = "u-1"
correlation_prefix = "weekly"
misfire = "catch_up"
catch_up_limit = 3
overlap = "queue"
timezone = "Europe/Berlin"

[schedules.monthly]
job = "report-generation"
cron = "0 0 6 1 * ?"
params = { report_type = "Monthly" }
"""


def test_toml_overrides_code_and_adds_schedules(tmp_path: Path) -> None:
    app = make_app()
    loaded = app.load_schedule_config(write(tmp_path / "jobglass.toml", TOML))
    assert [s.name for s in loaded] == ["data-cleanup", "report-generation.Weekly", "monthly"]
    by_name = {s.name: s for s in defined_schedules(app)}
    assert sorted(by_name) == [
        "data-cleanup",
        "health-check",
        "monthly",
        "report-generation.Weekly",
    ]
    cleanup = by_name["data-cleanup"]
    assert (cleanup.enabled, cleanup.cron, cleanup.source) == (False, "0 0 2 * * ?", "config")
    weekly = by_name["report-generation.Weekly"]
    assert weekly.job_name == "report-generation"  # the name before the dot
    assert weekly.params == {"report_type": "Weekly"}
    assert (weekly.tenant_id, weekly.user_id, weekly.correlation_prefix) == ("7", "u-1", "weekly")
    assert (weekly.misfire, weekly.catch_up_limit, weekly.overlap) == ("catch_up", 3, "queue")
    assert weekly.describe() == "At 08:00:00, on Monday (Europe/Berlin)"
    assert by_name["monthly"].job_name == "report-generation"
    health = by_name["health-check"]
    assert (health.every_seconds, health.expression, health.source) == (14400, "every 4h", "code")


def test_pyproject_tool_jobglass(tmp_path: Path) -> None:
    app = make_app()
    path = write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "x"\n\n[tool.jobglass.schedules.data-cleanup]\n'
        'cron = "0 30 3 * * ?"\nparams = { retention_days = 30 }\n',
    )
    (cleanup,) = app.load_schedule_config(path)
    assert (cleanup.cron, cleanup.params) == ("0 30 3 * * ?", {"retention_days": 30})


def test_appsettings_json_quartz_jobs(tmp_path: Path) -> None:
    app = make_app()
    data = {
        "Logging": {"LogLevel": {"Default": "Information"}},
        "QuartzJobs": {
            "data-cleanup": {
                "CronExpression": "0 0 2 * * ?",
                "Description": "Daily data cleanup",
                "Enabled": True,
            },
            "report-generation.Weekly": {
                "CronExpression": "0 0 8 ? * MON",
                "Description": "Weekly reports",
                "Enabled": True,
                "JobData": {"ReportType": "Weekly"},  # JobDataMap: PascalCase -> report_type
                "TenantId": 12,
                "MisfireInstruction": "DoNothing",  # Quartz's name for skip
            },
            "ReportGenerationJob.Monthly": {
                "JobName": "report-generation",
                "CronExpression": "0 0 6 1 * ?",
                "Enabled": False,
                "JobData": {"ReportType": "Monthly"},
            },
        },
    }
    loaded = app.load_schedule_config(write(tmp_path / "appsettings.json", json.dumps(data)))
    by_name = {s.name: s for s in loaded}
    weekly = by_name["report-generation.Weekly"]
    assert weekly.params == {"report_type": "Weekly"}
    assert (weekly.tenant_id, weekly.misfire, weekly.description) == (
        "12",
        "skip",
        "Weekly reports",
    )
    monthly = by_name["ReportGenerationJob.Monthly"]
    assert (monthly.job_name, monthly.enabled) == ("report-generation", False)


def test_example_config_files_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    here = Path(__file__).resolve().parents[2] / "examples" / "schedules"
    spec = importlib.util.spec_from_file_location("example_schedule_jobs", here / "jobs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    app = module.app
    from_toml = {s.name: s for s in load_config(app, here / "jobglass.toml")}
    from_json = {s.name: s for s in load_config(app, here / "appsettings.json")}
    assert sorted(from_toml) == sorted(from_json)
    for name, s in from_toml.items():
        other = from_json[name]
        assert (s.job_name, s.cron, s.params, s.enabled, s.misfire) == (
            other.job_name,
            other.cron,
            other.params,
            other.enabled,
            other.misfire,
        )
    assert from_toml["report-generation.Monthly"].cron == "0 0 6 1 * ?"


ERRORS = [
    (
        'cron = "0 0 25 * * ?"',
        "jobglass.toml: schedule 'report-weekly': key 'cron': invalid cron expression"
        " '0 0 25 * * ?': hour field '25' is out of range 0-23",
    ),
    (
        'cron = "0 0 8 ? * MON"\nfrequency = "weekly"',
        "jobglass.toml: schedule 'report-weekly': unknown key 'frequency' (known keys: job,",
    ),
    (
        'cron = "0 0 8 ? * MON"\nparams = { report_kind = "Weekly" }',
        "jobglass.toml: schedule 'report-weekly': key 'params': job 'report-generation':"
        " unexpected parameter 'report_kind' (expected: report_type)",
    ),
    (
        'cron = "0 0 8 ? * MON"\nparams = { report_type = 7 }',
        "jobglass.toml: schedule 'report-weekly': key 'params': job 'report-generation':"
        " parameter 'report_type' must be string, got int 7",
    ),
    (
        'cron = "0 0 8 ? * MON"\nmisfire = "sometimes"',
        "jobglass.toml: schedule 'report-weekly': key 'misfire': must be one of fire_once,"
        " skip, catch_up; got 'sometimes'",
    ),
    (
        'cron = "0 0 8 ? * MON"\noverlap = "wait"',
        "key 'overlap': must be one of skip, queue; got 'wait'",
    ),
    ('cron = "0 0 8 ? * MON"\nenabled = "yes"', "key 'enabled': must be true or false, got 'yes'"),
    ('cron = "0 0 8 ? * MON"\ntimezone = "Mars/Olympus"', "key 'timezone': "),
    ('cron = "0 0 8 ? * MON"\nevery = "1h"', "key 'cron': give 'cron' or 'every', not both"),
    ('every = "fortnightly"', "key 'every': invalid interval 'fortnightly'"),
    ('description = "no timing"', "key 'cron': needs 'cron' (e.g. '0 0 2 * * ?') or 'every'"),
    ('cron = "0 0 8 ? * MON"\ncatch_up_limit = 0', "key 'catch_up_limit': must be an integer"),
    ('cron = "0 0 8 ? * MON"\ncorrelation_prefix = "a b"', "key 'correlation_prefix': must be"),
    (
        'cron = "0 0 8 ? * MON"\ncron_expression = "0 0 9 ? * MON"',
        "key 'cron_expression' repeats key 'cron'",
    ),
]


@pytest.mark.parametrize(
    ("body", "message"), ERRORS, ids=[m.split(":")[-1][:40] for _, m in ERRORS]
)
def test_config_errors_name_file_schedule_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "jobglass.toml",
        f'[schedules.report-weekly]\njob = "report-generation"\n{body}\n',
    )
    with pytest.raises(ConfigError) as err:
        make_app().load_schedule_config("jobglass.toml")
    assert str(err.value).startswith("jobglass.toml: schedule 'report-weekly': ")
    assert message in str(err.value)


def test_unknown_jobs(tmp_path: Path) -> None:
    app = make_app()
    path = write(tmp_path / "a.toml", '[schedules.x]\njob = "nope"\ncron = "0 * * * * ?"\n')
    with pytest.raises(ConfigError, match=r"schedule 'x': key 'job': unknown job 'nope' \(known"):
        app.load_schedule_config(path)
    path = write(tmp_path / "b.json", '{"QuartzJobs": {"DataCleanupJob": {"Cron": "0 0 2 * * ?"}}}')
    with pytest.raises(ConfigError) as err:
        app.load_schedule_config(path)
    assert "b.json: schedule 'DataCleanupJob': unknown job 'DataCleanupJob'" in str(err.value)
    assert "set 'job' to name another" in str(err.value)


def test_syntax_errors(tmp_path: Path) -> None:
    app = make_app()
    with pytest.raises(ConfigError, match=r"^.*bad\.toml: invalid TOML: .*line 2"):
        app.load_schedule_config(write(tmp_path / "bad.toml", '[schedules.x]\ncron = "0 0\n'))
    with pytest.raises(ConfigError, match=r"bad\.json: invalid JSON: Expecting .*line 1"):
        app.load_schedule_config(write(tmp_path / "bad.json", '{"QuartzJobs": {"x": }}'))
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read schedule config"):
        app.load_schedule_config(str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="'QuartzJobs' must be a table/object"):
        app.load_schedule_config(write(tmp_path / "list.json", '{"QuartzJobs": []}'))
    with pytest.raises(ConfigError, match=r"schedule 'x': must be a table/object"):
        app.load_schedule_config(write(tmp_path / "flat.toml", "schedules = { x = 3 }\n"))


def test_dotted_toml_name_gets_a_hint(tmp_path: Path) -> None:
    path = write(
        tmp_path / "j.toml", '[schedules.report-generation.Weekly]\ncron = "0 0 8 ? * MON"\n'
    )
    with pytest.raises(
        ConfigError, match=r"must be quoted in TOML: \[schedules\.'report-generation\.Weekly'\]"
    ):
        make_app().load_schedule_config(path)


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JOBGLASS_SCHEDULE_CONFIG", raising=False)
    assert discover_config() is None
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    assert discover_config() is None  # no [tool.jobglass]
    write(tmp_path / "pyproject.toml", "[tool.jobglass.schedules.data-cleanup]\nenabled = false\n")
    assert discover_config() == "pyproject.toml"
    assert {s.name: s.enabled for s in defined_schedules(make_app())}["data-cleanup"] is False
    write(tmp_path / "jobglass.toml", '[schedules.data-cleanup]\ncron = "0 0 4 * * ?"\n')
    assert discover_config() == "jobglass.toml"
    cleanup = {s.name: s for s in defined_schedules(make_app())}["data-cleanup"]
    assert (cleanup.enabled, cleanup.cron) == (True, "0 0 4 * * ?")


def test_setting_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    one = write(tmp_path / "one.toml", '[schedules.data-cleanup]\ncron = "0 0 1 * * ?"\n')
    two = write(tmp_path / "two.toml", '[schedules.data-cleanup]\ncron = "0 0 3 * * ?"\n')
    monkeypatch.setenv("JOBGLASS_SCHEDULE_CONFIG", two)
    assert defined_schedules(make_app())[0].cron == "0 0 3 * * ?"
    assert defined_schedules(make_app(schedule_config=one))[0].cron == "0 0 1 * * ?"


def test_app_schedule_checks_its_options() -> None:
    app = make_app()
    s = app.schedule("report-generation", name="weekly", cron="0 0 8 ? * MON",
                     params={"report_type": "Weekly"}, tenant_id=3, misfire="skip")  # fmt: skip
    assert (s.name, s.job_name, s.tenant_id, s.misfire, s.source) == (
        "weekly", "report-generation", "3", "skip", "code"
    )  # fmt: skip
    every = app.schedule("report-generation", name="often", every=90)
    assert every.expression == "every 1m30s"
    with pytest.raises(InvalidInput, match="schedule 'weekly' is defined twice"):
        app.schedule("report-generation", name="weekly", cron="0 0 9 ? * MON")
    with pytest.raises(InvalidInput, match="schedule 'data-cleanup' is defined twice"):
        app.schedule("data-cleanup", cron="0 0 9 ? * MON")  # the decorator's schedule
    with pytest.raises(InvalidInput, match=r"unknown option\(s\) crontab"):
        app.schedule("report-generation", name="x", crontab="0 0 9 ? * MON")
    with pytest.raises(InvalidInput, match="schedule 'x': key 'job': unknown job 'nope'"):
        app.schedule("nope", name="x", cron="0 0 9 ? * MON")
    with pytest.raises(InvalidInput, match="key 'every': must be a whole number of seconds"):
        app.schedule("report-generation", name="x", every=0.5)


def test_bad_decorator_schedule_is_refused_when_the_job_is_defined() -> None:
    app = JobGlass("sqlite:///unused.db")
    with pytest.raises(CronError) as err:

        @app.job(name="broken", schedule="0 0 25 * * ?")
        async def broken(ctx: JobContext) -> None: ...

    assert str(err.value) == (
        "job 'broken': schedule: invalid cron expression '0 0 25 * * ?': hour field '25' is out"
        " of range 0-23"
    )
    assert (err.value.field, err.value.expression) == ("hour", "0 0 25 * * ?")
    assert isinstance(err.value, InvalidInput)  # the CLI prints it without a traceback
    assert "broken" not in app.jobs  # nothing half-registered
    assert defined_schedules(app) == []

    with pytest.raises(CronError, match=r"^job 'often': schedule: invalid interval") as err:

        @app.job(name="often", schedule="@every fortnightly")
        async def often(ctx: JobContext) -> None: ...

    assert err.value.field == "interval"
    with pytest.raises(CronError, match=r"^job 'never': schedule: .*must be greater than zero"):

        @app.job(name="never", schedule="@every 0s")
        async def never(ctx: JobContext) -> None: ...

    with pytest.raises(
        InvalidInput, match=r"^job 'needy': schedule: job 'needy': missing required parameter 'n'"
    ):

        @app.job(name="needy", schedule="0 0 2 * * ?")
        async def needy(ctx: JobContext, n: int) -> None: ...

    assert sorted(app.jobs) == []

    @app.job(name="fine", schedule="@every 4h")
    async def fine(ctx: JobContext) -> None: ...

    assert [s.expression for s in defined_schedules(app)] == ["every 4h"]


APPSETTINGS_ERRORS = [
    (
        {"CronExpression": "0 0 25 * * ?"},
        "key 'CronExpression': invalid cron expression '0 0 25 * * ?': hour field '25' is out"
        " of range 0-23",
    ),
    (
        {"CronExpression": "0 0 8 ? * MON", "TimeZone": "Mars/Olympus"},
        "key 'TimeZone': invalid time zone 'Mars/Olympus'",
    ),
    ({"CronExpression": "0 0 8 ? * MON", "Enabled": "yes"}, "key 'Enabled': must be true or"),
    (
        {"CronExpression": "0 0 8 ? * MON", "JobData": {"ReportKind": "Weekly"}},
        "key 'JobData': job 'report-generation': unexpected parameter 'ReportKind'",
    ),
    (
        {"CronExpression": "0 0 8 ? * MON", "MisfireInstruction": "Sometimes"},
        "key 'MisfireInstruction': must be one of fire_once, skip, catch_up; got 'Sometimes'",
    ),
    ({"Interval": "fortnightly"}, "key 'Interval': invalid interval 'fortnightly'"),
    ({"CronExpression": "0 0 8 ? * MON", "Frequency": "weekly"}, "unknown key 'Frequency'"),
]


@pytest.mark.parametrize(
    ("settings", "message"),
    APPSETTINGS_ERRORS,
    ids=[
        min(settings.keys() - {"CronExpression"} or {"CronExpression"})
        for settings, _ in APPSETTINGS_ERRORS
    ],
)
def test_appsettings_json_errors_name_file_schedule_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: dict[str, object], message: str
) -> None:
    """The key is named as the JSON file spells it (`CronExpression`, not `cron`)."""
    monkeypatch.chdir(tmp_path)
    body = {"Logging": {}, "QuartzJobs": {"report-generation.Weekly": settings}}
    write(tmp_path / "appsettings.json", json.dumps(body))
    with pytest.raises(ConfigError) as err:
        make_app().load_schedule_config("appsettings.json")
    assert str(err.value).startswith("appsettings.json: schedule 'report-generation.Weekly': ")
    assert message in str(err.value)
