"""Schemathesis over the served `/api/openapi.json`, authenticated: no 5xx, responses as declared.

Bounded: per operation at most 30 valid-shaped and 8 invalid examples (about 650 requests per
backend); the endless SSE stream is left out. Hypothesis drives each operation's strategy
directly (schemathesis' own pytest plugin does not load under this pytest).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

pytestmark = pytest.mark.parametrize("store_url", ["sqlite", "postgres"], indirect=True)

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
BUDGET = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 8}


def test_api_never_answers_5xx(make_web_stack: Any) -> None:
    stack = make_web_stack(worker=False)
    schema = schemathesis.openapi.from_url(stack.base + "/api/openapi.json")
    headers = stack.headers("admin")
    started = time.monotonic()
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if "/stream/" in operation.path:
            continue
        tested += 1
        for mode, examples in BUDGET.items():

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                case.call_and_validate(
                    base_url=stack.base, headers=headers, checks=CHECKS, timeout=10
                )

            try:
                run()
            except Exception as err:  # collect every operation's failure, then report
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {err}")
    assert tested >= 15
    assert not failures, "\n\n".join(failures)
    assert time.monotonic() - started < 90
