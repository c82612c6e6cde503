"""Settings from keyword arguments, then `JOBGLASS_*` environment variables, then `.env`.

One documented list (docs/configuration.md); an invalid value is refused by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from .enqueue import keep_problem
from .errors import ConfigError
from .observe.redact import DEFAULT_SENSITIVE_KEYS

ENV_PREFIX = "JOBGLASS_"


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///jobglass.db"
    flush_interval: float = 0.1
    max_log_lines: int = 250_000
    lease_seconds: float = 30.0
    poll_interval: float = 0.0  # 0: backend default (SQLite 0.1 s, PostgreSQL 2 s)
    claim_batch: int = 100
    concurrency: int = 10
    grace_seconds: float = 30.0
    keep_completed: int | None = 10_000
    keep_failed: int | None = 10_000
    keep_days: float | None = None
    prune_interval: float = 60.0
    sensitive_keys: frozenset[str] = field(default=DEFAULT_SENSITIVE_KEYS)
    json_logs: bool = False
    pool_size: int = 10
    app_log_days: float | None = 30.0  # app.log records; None keeps them forever
    audit_log_days: float | None = 365.0  # audit events; None keeps them forever
    schedule_config: str | None = None  # None: ./jobglass.toml, else ./pyproject.toml

    @classmethod
    def load(
        cls, overrides: dict[str, Any] | None = None, env_file: str | None = ".env"
    ) -> Settings:
        """Merge the three sources, convert and check every value."""
        values: dict[str, Any] = {}
        file_values: dict[str, str | None] = {}
        if env_file and Path(env_file).is_file():
            file_values = dotenv_values(env_file)
        for f in fields(cls):
            env_name = ENV_PREFIX + f.name.upper()
            if (
                overrides
                and f.name in overrides
                and (overrides[f.name] is not None or "None" in str(f.type))
            ):
                values[f.name] = _convert(f.name, overrides[f.name], f.type, None)
            elif env_name in os.environ:
                values[f.name] = _convert(f.name, os.environ[env_name], f.type, env_name)
            elif file_values.get(env_name) is not None:
                values[f.name] = _convert(f.name, file_values[env_name], f.type, env_name)
        unknown = set(overrides or {}) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        positive = ("flush_interval", "lease_seconds", "prune_interval")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"setting {name} must be > 0, got {getattr(self, name)!r}")
        for name in ("max_log_lines", "claim_batch", "concurrency", "pool_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"setting {name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("keep_completed", "keep_failed"):
            problem = keep_problem(getattr(self, name))
            if problem:
                raise ConfigError(f"setting {name} {problem} (or none)")
        for name in ("keep_days", "app_log_days", "audit_log_days"):
            days = getattr(self, name)
            if days is not None and days <= 0:
                raise ConfigError(f"setting {name} must be > 0 (or none), got {days!r}")
        if self.poll_interval < 0 or self.grace_seconds < 0:
            raise ConfigError("settings poll_interval and grace_seconds must be >= 0")
        url = self.database_url
        if not (url.startswith(("sqlite:", "postgresql://", "postgres://")) or url.endswith(".db")):
            raise ConfigError(
                f"setting database_url must be sqlite:///path.db or postgresql://..., got {url!r}"
            )


def _convert(name: str, raw: Any, kind: Any, source: str | None) -> Any:
    where = f" (from {source})" if source else ""
    text = str(kind)
    if not isinstance(raw, str):
        if "frozenset" in text and isinstance(raw, list | tuple | set | frozenset):
            return frozenset(str(x).lower() for x in raw)
        return raw
    value = raw.strip()
    try:
        if "None" in text and value.lower() in ("", "none", "null"):
            return None
        if text.startswith("bool"):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if text.startswith("int"):
            return int(value)
        if text.startswith("float"):
            return float(value)
        if "frozenset" in text:
            return frozenset(x.strip().lower() for x in value.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"setting {name}{where}: invalid value {raw!r}") from None
    return value
