"""JobLogger: a run's live story (stage, progress, log lines, outcome, summary).

Recording calls are synchronous, thread-safe and cheap: they change memory only. A
`FeedbackFlusher` drains every dirty logger in one transaction about every 100 ms.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from . import formatting
from .models import LogLine
from .observe.redact import DEFAULT_SENSITIVE_KEYS, is_sensitive, redact
from .stores.base import Feedback

DEFAULT_MAX_LOG_LINES = 250_000
_PLAIN = frozenset({int, float, str, bool, type(None)})
_new_line = tuple.__new__
_now = time.time


def safe_text(text: str) -> str:
    """Text every database accepts: lone surrogates and NUL become U+FFFD."""
    if text.isascii():
        return text.replace("\x00", "\ufffd") if "\x00" in text else text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _safe_json(value: Any) -> Any:
    """Deep copy of JSON-like data with every string (keys too) made safe to store."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe_text(str(k)): _safe_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe_json(v) for v in value]
    return value


class JobLogger:
    """Per-attempt feedback buffer; `ctx.log` inside a job, `create_job_logger` outside."""

    def __init__(
        self,
        run_id: int,
        job_name: str,
        *,
        attempt: int = 1,
        start_seq: int = 0,
        max_log_lines: int = DEFAULT_MAX_LOG_LINES,
        sensitive_keys: frozenset[str] = DEFAULT_SENSITIVE_KEYS,
        on_pending: Callable[[JobLogger], None] | None = None,
        flush_threshold: int = 5_000,
        echo: Callable[[LogLine], None] | None = None,
    ) -> None:
        self.run_id = run_id
        self.job_name = job_name
        self.attempt = attempt
        self.max_log_lines = max_log_lines
        self._sensitive = sensitive_keys
        self._on_pending = on_pending
        self._threshold = flush_threshold
        self._echo = echo
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._seq = start_seq
        self._pending: list[LogLine] = []
        self._dirty = True
        self._stage: str | None = None
        self._stage_note: str | None = None
        self._stage_no = 0
        self._progress_stage_no = -1
        self._total_stage_no = -1
        self._current = 0
        self._total: int | None = None
        self._entity_type: str | None = None
        self._progress_note: str | None = None
        self._over_total_warned = False
        self._outcome: dict[str, int | float] = {}
        self._level_counts = {"warning": 0, "error": 0}
        self._stored_lines = 0
        self._dropped = 0
        self._summary: str | None = None
        self._safe_keys: dict[Any, bool] = {}
        self.lost = False  # set by the flusher when the run is no longer ours

    # -- stages and progress ------------------------------------------------------------------

    def set_stage(self, stage: str, message: str | None = None) -> None:
        """Start a new phase; logs `[MILESTONE] Starting: <stage>`."""
        with self._lock:
            self._stage = safe_text(str(stage))
            self._stage_note = None if message is None else safe_text(str(message))
            self._progress_note = None
            self._stage_no += 1
            self._dirty = True
            context = {"message": message} if message else None
            self._append("milestone", f"Starting: {stage}", context)

    def set_total(self, total: int, entity_type: str | None = None) -> None:
        """Known workload: enables percent. A total set in a later phase starts counting anew."""
        if total < 0:
            raise ValueError(f"set_total: total must be >= 0, got {total}")
        with self._lock:
            if self._current and self._progress_stage_no != self._stage_no:
                self._current = 0
            self._total = int(total)
            self._total_stage_no = self._stage_no
            if entity_type is not None:
                self._entity_type = entity_type
            self._over_total_warned = False
            self._dirty = True

    def increment_progress(self, count: int = 1, message: str | None = None) -> None:
        with self._lock:
            self._current += count
            self._touch_progress(message)

    def set_progress(self, current: int, message: str | None = None) -> None:
        with self._lock:
            self._current = int(current)
            self._touch_progress(message)

    def _touch_progress(self, message: str | None) -> None:
        self._progress_stage_no = self._stage_no
        if message is not None:
            self._progress_note = safe_text(str(message))
        self._dirty = True
        total = self._total
        if total is not None and self._current > total and not self._over_total_warned:
            self._over_total_warned = True
            self._append(
                "warning",
                f"Progress {formatting.count(self._current)} exceeds the total of "
                f"{formatting.count(total)}; percent is capped at 100",
                {"current": self._current, "total": total},
            )

    # -- log lines -------------------------------------------------------------------------------

    def debug(self, message: str, context: dict[str, Any] | None = None) -> None:
        self._log("debug", message, context)

    def info(self, message: str, context: dict[str, Any] | None = None) -> None:
        self._log("info", message, context)

    def milestone(self, message: str, context: dict[str, Any] | None = None) -> None:
        self._log("milestone", message, context)

    def warning(self, message: str, context: dict[str, Any] | None = None) -> None:
        self._log("warning", message, context)

    def error(self, message: str, context: dict[str, Any] | None = None) -> None:
        self._log("error", message, context)

    warn = warning

    def _log(self, level: str, message: str, context: dict[str, Any] | None) -> None:
        with self._lock:
            self._append(level, message, context)

    def _append(self, level: str, message: str, context: dict[str, Any] | None) -> None:
        """The hot path of every log call: count, cap, clean, then `_push`."""
        counts = self._level_counts
        if level in counts:
            counts[level] += 1
        if self._stored_lines >= self.max_log_lines:
            self._dropped += 1
            if self._dropped == 1:
                self._push(
                    "warning",
                    f"Log limit of {formatting.count(self.max_log_lines)} lines reached; "
                    "further lines are counted, not stored",
                    None,
                )
            return
        self._stored_lines += 1
        if type(message) is not str or not message.isascii():
            message = safe_text(str(message))
        self._push(level, message, self._clean(context) if context else None)

    def _clean(self, context: dict[str, Any]) -> dict[str, Any]:
        """A copy safe to keep and to store: flat dicts of plain values take the fast path."""
        safe_keys = self._safe_keys
        for key, value in context.items():
            kind = type(value)
            if kind not in _PLAIN or (kind is str and not value.isascii()):
                return self._clean_slow(context)
            ok = safe_keys.get(key)
            if ok is None:
                ok = safe_keys[key] = (
                    type(key) is str and key.isascii() and not is_sensitive(key, self._sensitive)
                )
            if not ok:
                return self._clean_slow(context)
        return dict(context)

    def _clean_slow(self, context: dict[str, Any]) -> dict[str, Any]:
        cleaned: dict[str, Any] = _safe_json(redact(context, self._sensitive))
        return cleaned

    def _push(self, level: str, message: str, context: dict[str, Any] | None) -> None:
        self._seq += 1
        # tuple.__new__ skips NamedTuple's Python-level __new__ (a third of a log call's cost)
        line = _new_line(
            LogLine,
            (self.run_id, self._seq, level, self._stage, message, context, _now(), self.attempt),
        )
        pending = self._pending
        pending.append(line)
        self._dirty = True
        if self._echo is not None:
            self._echo(line)
        if self._on_pending is not None and len(pending) == self._threshold:
            self._on_pending(self)

    # -- outcome and summary ---------------------------------------------------------------------

    def add_outcome(self, key: str, count: int | float = 1) -> None:
        with self._lock:
            self._outcome[key] = self._outcome.get(key, 0) + count
            self._dirty = True

    def has_outcome(self) -> bool:
        """Whether `outcome()` would be non-empty (read without the lock: for a caller at
        the attempt's end, when nothing adds to it any more)."""
        counts = self._level_counts
        return bool(self._outcome or counts["warning"] or counts["error"])

    def outcome(self) -> dict[str, int | float]:
        """Counters in first-reported order, then line-count `errors`/`warnings` when not given."""
        with self._lock:
            return self._outcome_locked()

    def _outcome_locked(self) -> dict[str, int | float]:
        out = dict(self._outcome)
        for key, level in (("errors", "error"), ("warnings", "warning")):
            if key not in out and self._level_counts[level]:
                out[key] = self._level_counts[level]
        return out

    @property
    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self._started) * 1000)

    def get_elapsed_ms(self) -> int:
        return self.elapsed_ms

    @property
    def summary(self) -> str | None:
        return self._summary

    def log_summary(self, verb: str = "Completed in") -> str:
        """Log the final milestone line once; later calls return the same line."""
        with self._lock:
            if self._summary is not None:
                return self._summary
            processed = (
                self._current if (self._total is not None or self._progress_stage_no >= 0) else None
            )
            text = formatting.summary(
                verb, self.elapsed_ms, processed, self._outcome_locked().items(), self._dropped
            )
            self._summary = text
            self._push("milestone", text, None)
            return text

    async def save_outcome(self) -> None:
        """Persist the outcome now (it is also saved with every flush)."""
        await self.flush()

    async def flush(self) -> None:
        """Persist everything recorded so far; returns after the commit."""
        flusher = getattr(self, "_flusher", None)
        if flusher is not None:
            await flusher.flush()

    # -- draining (the flusher's side) ------------------------------------------------------------

    @property
    def has_warnings(self) -> bool:
        return bool(self._level_counts["warning"] or self._level_counts["error"])

    @property
    def dirty(self) -> bool:
        return self._dirty

    def drain(self) -> Feedback | None:
        """Take pending lines and the latest state as one batch; None when nothing changed."""
        with self._lock:
            if not self._dirty:
                return None
            lines, self._pending = self._pending, []
            self._dirty = False
            return Feedback(
                run_id=self.run_id,
                attempt=self.attempt,
                logs=lines,
                stage=self._stage,
                progress_current=self._current,
                progress_total=self._total,
                entity_type=self._entity_type,
                progress_message=self._progress_message(),
                outcome=self._outcome_locked(),
                has_warnings=self.has_warnings,
                summary=self._summary,
            )

    def requeue(self, batch: Feedback) -> None:
        """Put a batch back after a failed write, so nothing recorded is lost."""
        with self._lock:
            self._pending[:0] = batch.logs
            self._dirty = True

    def _progress_message(self) -> str | None:
        show_counts = self._progress_stage_no == self._stage_no or (
            self._total_stage_no == self._stage_no and self._total is not None
        )
        note = self._progress_note if show_counts else self._stage_note
        if self._stage is None and not show_counts:
            return None
        return formatting.progress_message(
            self._stage, self._current, self._total, show_counts=show_counts, note=note
        )

    def progress_snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "stage": self._stage,
                "current": self._current,
                "total": self._total,
                "percent": formatting.percent(self._current, self._total),
                "message": self._progress_message(),
                "entityType": self._entity_type,
            }
