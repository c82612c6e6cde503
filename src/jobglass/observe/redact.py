"""Key-based redaction of secrets in log context.

Log context dicts are built from request data, job payloads and config, so a stray
``password`` or ``Authorization`` value ends up in logs sooner or later.  ``redact`` is
called on every log call, so matching is cached per key and the copy is a plain
recursive walk with no ``copy.deepcopy``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

__all__ = ["DEFAULT_SENSITIVE_KEYS", "REDACTED", "is_sensitive", "redact"]

DEFAULT_SENSITIVE_KEYS: frozenset[str] = frozenset(
    {"password", "token", "secret", "authorization", "cookie", "api_key"}
)
REDACTED = "[REDACTED]"
# Put in place of a container that contains itself, so a cycle cannot recurse forever.
CIRCULAR = "[CIRCULAR]"

# "APIKey" -> "API_Key", then "apiKey"/"api2Key" -> "api_Key"/"api2_Key".
_ACRONYM_BOUNDARY = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_BOUNDARY = re.compile(r"([a-z0-9])([A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _normalise(key: str) -> str:
    """Map camelCase, kebab-case, dotted and SHOUTING keys to one snake_case form."""
    key = _ACRONYM_BOUNDARY.sub(r"\1_\2", key)
    key = _CAMEL_BOUNDARY.sub(r"\1_\2", key)
    return _NON_ALNUM.sub("_", key.lower()).strip("_")


@lru_cache(maxsize=64)
def _normalised_keys(keys: frozenset[str]) -> tuple[str, ...]:
    """Normalise the sensitive-key set once, so callers may list keys in any spelling."""
    return tuple(sorted({n for n in map(_normalise, keys) if n}))


def _match(key: str, keys: frozenset[str]) -> bool:
    normalised = _normalise(key)
    return any(part in normalised for part in _normalised_keys(keys))


_match_cached = lru_cache(maxsize=4096)(_match)


def is_sensitive(key: str, keys: frozenset[str] = DEFAULT_SENSITIVE_KEYS) -> bool:
    """Whether ``key`` names a secret.

    Substring match on the normalised snake_case key, so ``x-api-key``, ``accessToken``
    and ``db_password`` all match.  This deliberately over-redacts (``token_count``
    matches too): a hidden counter is cheaper than a leaked credential.
    """
    if len(key) > 256:  # keep giant (attacker-supplied?) keys out of the cache
        return _match(key, keys)
    return _match_cached(key, keys)


def redact(value: object, keys: frozenset[str] = DEFAULT_SENSITIVE_KEYS) -> object:
    """Return a copy of ``value`` with the values under sensitive keys replaced.

    Mappings become plain dicts, lists stay lists, tuples stay tuples; anything else
    (strings, numbers, arbitrary objects) is returned as-is.  The input is never
    mutated, so a caller's context dict can be reused after logging.
    """
    return _redact(value, keys, set())


def _redact(value: object, keys: frozenset[str], active: set[int]) -> object:
    if isinstance(value, Mapping):
        marker = id(value)
        if marker in active:
            return CIRCULAR
        active.add(marker)
        try:
            return {
                k: (
                    REDACTED
                    if isinstance(k, str) and is_sensitive(k, keys)
                    else _redact(v, keys, active)
                )
                for k, v in value.items()
            }
        finally:
            active.discard(marker)
    if isinstance(value, list | tuple):
        marker = id(value)
        if marker in active:
            return CIRCULAR
        active.add(marker)
        try:
            items = [_redact(v, keys, active) for v in value]
        finally:
            active.discard(marker)
        return items if isinstance(value, list) else tuple(items)
    return value
