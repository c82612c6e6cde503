"""Settings: keyword arguments, then JOBGLASS_* environment, then .env; bad values by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobglass import ConfigError, JobGlass, Settings


def test_precedence_kwargs_then_env_then_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "JOBGLASS_MAX_LOG_LINES=111\nJOBGLASS_LEASE_SECONDS=9\nJOBGLASS_FLUSH_INTERVAL=0.5\n"
    )
    monkeypatch.setenv("JOBGLASS_LEASE_SECONDS", "12")
    monkeypatch.setenv("JOBGLASS_FLUSH_INTERVAL", "0.25")
    s = Settings.load({"flush_interval": 0.05}, env_file=str(env_file))
    assert s.flush_interval == 0.05  # keyword wins
    assert s.lease_seconds == 12.0  # environment beats .env
    assert s.max_log_lines == 111  # .env fills the rest
    assert s.concurrency == 10  # default


def test_dotenv_in_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(f"JOBGLASS_DATABASE_URL=sqlite:///{tmp_path}/x.db\n")
    monkeypatch.chdir(tmp_path)
    assert JobGlass().settings.database_url == f"sqlite:///{tmp_path}/x.db"


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("JOBGLASS_MAX_LOG_LINES", "lots", "setting max_log_lines (from JOBGLASS_MAX_LOG_LINES)"),
        ("JOBGLASS_FLUSH_INTERVAL", "-1", "setting flush_interval must be > 0"),
        ("JOBGLASS_JSON_LOGS", "maybe", "setting json_logs (from JOBGLASS_JSON_LOGS)"),
        ("JOBGLASS_DATABASE_URL", "mysql://x", "setting database_url must be"),
        ("JOBGLASS_CONCURRENCY", "0", "setting concurrency must be >= 1"),
        ("JOBGLASS_KEEP_COMPLETED", "-1", "keep_completed must be a whole number of runs from 0"),
        ("JOBGLASS_KEEP_FAILED", "3000000000", "setting keep_failed must be a whole number"),
        ("JOBGLASS_KEEP_DAYS", "0", "setting keep_days must be > 0 (or none), got 0"),
    ],
)
def test_invalid_settings_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.load(env_file=None)


def test_unknown_keyword_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        JobGlass(flush_intervall=1)


def test_sensitive_keys_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBGLASS_SENSITIVE_KEYS", "ssn, Password")
    assert Settings.load(env_file=None).sensitive_keys == frozenset({"ssn", "password"})
