"""Job definitions: the decorator's product, `BaseJob`, `Retry`, and parameter checking."""

from __future__ import annotations

import inspect
import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, get_type_hints

from .errors import FatalError, InvalidInput, TransientError
from .json_codec import compact_encoder
from .models import RetryPolicy

if TYPE_CHECKING:
    from .app import JobGlass
    from .context import JobContext
    from .models import Run

__all__ = ["BaseJob", "FatalError", "JobDefinition", "Retry", "TransientError"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
#: Params are JSON: no NaN or infinity (PostgreSQL's jsonb refuses them).
_strict_json = compact_encoder(allow_nan=False)
BACKOFFS = ("exponential", "fixed")


@dataclass(frozen=True)
class Retry:
    """How often and how soon a failed attempt is tried again.

    `attempts` counts every attempt, the first included. A `TransientError` is retried even
    when `attempts` is 1, up to `transient_attempts`; a `FatalError` never is.
    """

    attempts: int = 3
    backoff: str | Callable[[int], float] = "exponential"
    delay: float = 1.0
    max_delay: float = 3600.0
    jitter: float = 0.1
    transient_attempts: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise InvalidInput(f"Retry.attempts must be an integer >= 1, got {self.attempts!r}")
        if not callable(self.backoff) and self.backoff not in BACKOFFS:
            raise InvalidInput(
                f"Retry.backoff must be 'exponential', 'fixed' or a callable, got {self.backoff!r}"
            )
        if self.delay < 0 or self.max_delay < 0:
            raise InvalidInput("Retry.delay and Retry.max_delay must be >= 0")
        if not 0 <= self.jitter <= 1:
            raise InvalidInput(f"Retry.jitter is a fraction from 0 to 1, got {self.jitter!r}")
        backoff = "callable" if callable(self.backoff) else str(self.backoff)
        # made once: every enqueue of the job stores it (a frozen value, safe to share)
        policy = RetryPolicy(self.attempts, backoff, self.delay, self.max_delay, self.jitter)
        object.__setattr__(self, "_policy", policy)

    def policy(self) -> RetryPolicy:
        policy: RetryPolicy = self.__dict__["_policy"]
        return policy


NO_RETRY = Retry(attempts=1)


def retry_delay(policy: RetryPolicy, attempt: int, custom: Retry | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based)."""
    if policy.backoff == "callable" and custom is not None and callable(custom.backoff):
        base = float(custom.backoff(attempt))
    elif policy.backoff == "fixed":
        base = policy.delay
    else:
        base = policy.delay * (2 ** max(0, attempt - 1))
    base = min(base, policy.max_delay)
    if policy.jitter:
        base *= 1 + random.uniform(-policy.jitter, policy.jitter)
    return max(0.0, base)


@dataclass(frozen=True)
class ParamSpec:
    name: str
    required: bool
    default: Any
    annotation: Any

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "required": self.required}
        kind = _JSON_TYPES.get(self.annotation)
        if kind:
            out["type"] = kind
        if not self.required:
            out["default"] = self.default if _is_json(self.default) else repr(self.default)
        return out


_JSON_TYPES: dict[Any, str] = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "boolean",
    list: "array",
    dict: "object",
}


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


class BaseJob:
    """Class-style jobs: subclass, set `name`, implement `async def execute(self, ctx, ...)`.

    Parameters are keyword arguments of `execute` after `ctx`, checked like a function job's.
    """

    name: ClassVar[str] = ""
    retry: ClassVar[Retry | None] = None
    timeout: ClassVar[float | None] = None
    queue: ClassVar[str] = "default"
    allow_concurrent: ClassVar[bool] = True
    description: ClassVar[str | None] = None

    async def execute(self, ctx: JobContext) -> Any:
        raise NotImplementedError


@dataclass
class JobDefinition:
    """A registered job: its handler and defaults every enqueue starts from."""

    name: str
    func: Callable[..., Any]
    app: JobGlass | None = None
    retry: Retry = NO_RETRY
    timeout: float | None = None
    queue: str = "default"
    priority: int = 0
    allow_concurrent: bool = True
    concurrency_key: str | Callable[[Mapping[str, Any]], Any] | None = None
    schedule: str | None = None
    description: str | None = None
    keep_completed: int | None = None
    keep_failed: int | None = None
    params: list[ParamSpec] = field(default_factory=list)
    accepts_any: bool = False
    is_async: bool = False

    @classmethod
    def build(cls, name: str, func: Callable[..., Any], **options: Any) -> JobDefinition:
        if not NAME_RE.match(name):
            raise InvalidInput(
                f"invalid job name {name!r}: use 1-128 letters, digits, '_', '.', ':' or '-'"
            )
        target = func
        if inspect.isclass(func) and issubclass(func, BaseJob):
            target = func.execute
        sig = inspect.signature(target)
        try:
            hints = get_type_hints(target)
        except Exception:
            hints = {}
        positional = list(sig.parameters.values())
        if positional and positional[0].name == "self":
            positional = positional[1:]
        if not positional:
            raise InvalidInput(f"job {name!r}: the handler must take the JobContext first")
        specs, accepts_any = [], False
        for p in positional[1:]:
            if p.kind is p.VAR_KEYWORD:
                accepts_any = True
                continue
            if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
                raise InvalidInput(f"job {name!r}: parameter {p.name!r} must be nameable")
            required = p.default is inspect.Parameter.empty
            specs.append(
                ParamSpec(
                    p.name,
                    required,
                    None if required else p.default,
                    hints.get(p.name, p.annotation),
                )
            )
        is_async = inspect.iscoroutinefunction(target)
        return cls(
            name=name,
            func=func,
            params=specs,
            accepts_any=accepts_any,
            is_async=is_async,
            **options,
        )

    def validate_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Refuse unknown, missing and non-JSON parameters, naming the job and the parameter."""
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise InvalidInput(f"job {self.name!r}: params must be a JSON object")
        if params:
            known = {p.name for p in self.params}
            for key in params:
                if not isinstance(key, str):
                    raise InvalidInput(f"job {self.name!r}: parameter names must be strings")
                if key not in known and not self.accepts_any:
                    expected = ", ".join(sorted(known)) or "none"
                    raise InvalidInput(
                        f"job {self.name!r}: unexpected parameter {key!r} (expected: {expected})"
                    )
            try:
                _strict_json(params)  # all values at once; a refusal is then named by key
            except (TypeError, ValueError, RecursionError):
                self._name_unserializable(params)
        for spec in self.params:
            if spec.required and spec.name not in params:
                raise InvalidInput(f"job {self.name!r}: missing required parameter {spec.name!r}")
            if spec.name in params:
                _check_type(self.name, spec, params[spec.name])
        return dict(params)

    def _name_unserializable(self, params: Mapping[str, Any]) -> NoReturn:
        for key, value in params.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError, RecursionError) as err:
                raise InvalidInput(
                    f"job {self.name!r}: parameter {key!r} is not JSON-serializable ({err})"
                ) from None
        raise InvalidInput(f"job {self.name!r}: params are not JSON-serializable")

    def param_schema(self) -> list[dict[str, Any]]:
        return [p.schema() for p in self.params]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description or _doc_line(self.func),
            "queue": self.queue,
            "priority": self.priority,
            "retry": self.retry.policy().to_json(),
            "timeout": self.timeout,
            "allowConcurrent": self.allow_concurrent,
            "schedule": self.schedule,
            "params": self.param_schema(),
            "acceptsAnyParams": self.accepts_any,
            "sync": not self.is_async,
        }

    def concurrency_key_for(self, params: Mapping[str, Any]) -> str | None:
        if self.allow_concurrent:
            return None
        key = self.concurrency_key
        if key is None:
            return self.name
        value = key(params) if callable(key) else params.get(key)
        return f"{self.name}:{value}"

    # typed shortcuts: `await my_job.enqueue(batch_size=10)`, `await my_job.run(...)`
    async def enqueue(self, **params: Any) -> Run:
        if self.app is None:
            raise RuntimeError(f"job {self.name!r} is not registered with an app")
        return await self.app.enqueue(self.name, params=params)

    async def run(self, **params: Any) -> Run:
        if self.app is None:
            raise RuntimeError(f"job {self.name!r} is not registered with an app")
        return await self.app.run_job(self.name, params=params)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Calling the decorated name still calls the handler (handy in tests)."""
        return self.func(*args, **kwargs)


def _check_type(job: str, spec: ParamSpec, value: Any) -> None:
    kind = spec.annotation
    if kind in (inspect.Parameter.empty, Any) or value is None:
        return
    ok = True
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind in (str, list, dict):
        ok = isinstance(value, kind)
    if not ok:
        raise InvalidInput(
            f"job {job!r}: parameter {spec.name!r} must be {_JSON_TYPES.get(kind, kind)}, "
            f"got {type(value).__name__} {value!r}"
        )


def _doc_line(func: Any) -> str | None:
    doc = inspect.getdoc(func)
    return doc.strip().splitlines()[0] if doc else None
