"""Helpers shared by the CLI's command modules."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import JobGlass


class CLIError(Exception):
    """A user-facing CLI failure: printed without a traceback, exit status 2."""


def load_app(spec: str | None) -> JobGlass:
    """`module:attribute` like uvicorn; without a spec, a bare app on JOBGLASS_DATABASE_URL."""
    from ..app import JobGlass

    if not spec:
        return JobGlass()
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise CLIError(f"app {spec!r}: expected MODULE:ATTRIBUTE, e.g. examples.jobs:app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise CLIError(f"cannot import module {module_name!r}: {err}") from None
    target: Any = module
    for part in (attr or "app").split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CLIError(f"module {module_name!r} has no attribute {attr or 'app'!r}") from None
    if callable(target) and not isinstance(target, JobGlass):
        target = target()
    if not isinstance(target, JobGlass):
        raise CLIError(f"{spec!r} is a {type(target).__name__}, not a JobGlass app")
    return target


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """`--param key=value`; values are JSON when they parse as JSON, else strings."""
    import json

    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CLIError(f"--param {item!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def serve_logging(app: JobGlass, verbose: bool) -> None:
    """Long-running commands (worker, scheduler, serve) show INFO lines, JSON when configured."""
    import logging

    from ..observe.logging import configure_logging

    configure_logging(
        json=app.settings.json_logs,
        level=logging.DEBUG if verbose else logging.INFO,
        sensitive_keys=app.settings.sensitive_keys,
        batched=True,  # a busy worker writes each loop turn's lines at once
    )
