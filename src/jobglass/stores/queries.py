"""Named SQL blocks (`-- name: x`), one file per backend, loaded once."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import LiteralString

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def trusted(text: str) -> LiteralString:
    """Our own SQL (named queries, migrations, what the stores derive from them, placeholder-
    only filters): trusted text for psycopg's `LiteralString` parameters; values are always
    bound, never part of it."""
    return text  # pyright: ignore[reportReturnType]


@cache
def load(backend: str) -> dict[str, str]:
    """All named queries of `sql/<backend>.sql` and of any `sql/<backend>_*.sql` add-on."""
    folder = resources.files("jobglass.stores") / "sql"
    queries: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        stem = entry.name.removesuffix(".sql")
        if not entry.name.endswith(".sql") or (
            stem != backend and not stem.startswith(f"{backend}_")
        ):
            continue
        parts = _NAME.split(entry.read_text(encoding="utf-8"))
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise RuntimeError(f"query {name!r} defined twice for {backend}")
            queries[name] = body.strip().rstrip(";")
    return queries


def migrations(backend: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of `migrations/<backend>/NNNN_name.sql`, in order."""
    folder = resources.files("jobglass.stores") / "migrations" / backend
    found = []
    for entry in folder.iterdir():
        match = re.match(r"^(\d{4})_(\w+)\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"{backend} migrations are not numbered 1..n: {versions}")
    return found
