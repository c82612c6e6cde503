"""The reusable encoders write exactly what `json.dumps` would with the same options."""

from __future__ import annotations

import json
import math

import pytest

from jobglass.json_codec import compact, compact_encoder

VALUES = [
    {"i": 1},
    {"s": 'quote " backslash \\ newline \n', "u": "héllo 日本 \u2028", "n": None},
    [1, 2.5, True, False, None, {"nested": [{"deep": {}}]}],
    {1: "int key", "x": -0.0},
    "plain",
    7,
    1e300,
    [],
]


@pytest.mark.parametrize("value", VALUES)
def test_compact_matches_json_dumps(value: object) -> None:
    assert compact(value) == json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("value", VALUES)
def test_unicode_and_default_options_match(value: object) -> None:
    encode = compact_encoder(default=str, ensure_ascii=False)
    assert encode(value) == json.dumps(
        value, separators=(",", ":"), default=str, ensure_ascii=False
    )


def test_errors_are_the_ones_json_raises() -> None:
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        compact({"x": object()})
    with pytest.raises(ValueError, match="Out of range float values"):
        compact_encoder(allow_nan=False)(math.inf)
    assert compact(math.nan) == "NaN"  # allowed by default, as in json.dumps
    assert compact_encoder(default=repr)({"x": {1, 2}}) == '{"x":"{1, 2}"}'


def test_one_encoder_serves_many_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        out = list(pool.map(lambda i: compact({"i": i, "s": str(i)}), range(2000)))
    assert out == [f'{{"i":{i},"s":"{i}"}}' for i in range(2000)]
