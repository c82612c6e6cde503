"""Parameterized WHERE clauses for run listings, shared by both backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..models import LEVEL_RANK, LEVELS
from .base import RunFilter


def levels_at_or_above(min_level: str | None) -> list[str]:
    """`level=warning` means warning and error: a level filter is a threshold."""
    if min_level is None:
        return list(LEVELS)
    return [name for name in LEVELS if LEVEL_RANK[name] >= LEVEL_RANK[min_level]]


def run_filter_sql(
    flt: RunFilter,
    placeholder: Callable[[str], str],
    encode_time: Callable[[Any], Any],
    like: str = "LIKE",
) -> tuple[str, dict[str, Any]]:
    """WHERE clause text (values always bound, never inlined) and its parameters."""
    where: list[str] = []
    args: dict[str, Any] = {}

    def add(sql: str, name: str, value: Any) -> None:
        where.append(sql.format(placeholder(name)))
        args[name] = value

    if flt.status:
        marks = []
        for i, status in enumerate(flt.status):
            args[f"status{i}"] = status
            marks.append(placeholder(f"status{i}"))
        where.append(f"status IN ({', '.join(marks)})")
    if flt.job_name:
        add("job_name = {}", "job_name", flt.job_name)
    if flt.queue:
        add("queue = {}", "queue", flt.queue)
    if flt.tenant_id:
        add("tenant_id = {}", "tenant_id", flt.tenant_id)
    if flt.correlation_id:
        add("correlation_id = {}", "correlation_id", flt.correlation_id)
    if flt.created_after:
        add("created_at >= {}", "created_after", encode_time(flt.created_after))
    if flt.created_before:
        add("created_at < {}", "created_before", encode_time(flt.created_before))
    if flt.before_id:
        add("id < {}", "before_id", flt.before_id)
    if flt.text:
        pattern = "%" + flt.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        ph = placeholder("text")
        where.append(
            f"(job_name {like} {ph} ESCAPE '\\' OR COALESCE(stage, '') {like} {ph} ESCAPE '\\'"
            f" OR COALESCE(job_id, '') {like} {ph} ESCAPE '\\'"
            f" OR COALESCE(correlation_id, '') {like} {ph} ESCAPE '\\')"
        )
        args["text"] = pattern
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    args["limit"] = max(1, min(flt.limit, 1000))
    return clause, args
