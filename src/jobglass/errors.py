"""Exceptions users see: bad input is refused early and by name, and jobs signal retry intent."""

from __future__ import annotations


class JobGlassError(Exception):
    """Base class of every error jobglass raises on purpose."""


class InvalidInput(JobGlassError, ValueError):
    """Bad input from a caller (API, CLI, config, enqueue); nothing was written."""


class NotFound(JobGlassError, LookupError):
    """The named run, job or schedule does not exist."""


class Conflict(JobGlassError):
    """The request is valid but the object's state forbids it (e.g. cancel a finished run)."""


class ConfigError(InvalidInput):
    """An invalid setting; the message names the setting (and file, when there is one)."""


class SchemaTooNew(JobGlassError):
    """The database was migrated by a newer jobglass; refusing to run against it."""


class TransientError(Exception):
    """Raise from a job to ask for a retry, even past the normal error handling."""


class FatalError(Exception):
    """Raise from a job to fail the run at once, without further attempts."""


class JobCancelled(Exception):
    """Raised inside a job by `ctx.raise_if_cancelled()` once a cancel was requested."""


class JobTimeout(Exception):
    """Recorded as the error of an attempt that ran past its timeout."""


class LeaseLost(Exception):
    """This worker no longer owns the attempt (its lease expired and another took it)."""
