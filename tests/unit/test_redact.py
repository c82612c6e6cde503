"""Unit tests for jobglass.observe.redact."""

from __future__ import annotations

import copy
from collections import OrderedDict
from types import MappingProxyType
from typing import Any

import pytest

from jobglass.observe.redact import (
    DEFAULT_SENSITIVE_KEYS,
    REDACTED,
    is_sensitive,
    redact,
)


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "db_password",
        "dbPassword",
        "apiKey",
        "APIKey",
        "API-KEY",
        "api_key",
        "x-api-key",
        "X_API_KEY",
        "api.key",
        "accessToken",
        "refresh_token",
        "id-token",
        "Authorization",
        "proxy-authorization",
        "Set-Cookie",
        "cookie",
        "clientSecret",
        "CLIENT_SECRET",
    ],
)
def test_sensitive_keys_in_any_spelling(key: str) -> None:
    assert is_sensitive(key)


@pytest.mark.parametrize(
    "key",
    ["username", "user_id", "key", "apiVersion", "email", "path", "session", "author", ""],
)
def test_ordinary_keys_are_not_sensitive(key: str) -> None:
    assert not is_sensitive(key)


def test_substring_match_over_redacts_by_design() -> None:
    # Documented trade-off: anything containing "token" counts, e.g. LLM usage counters.
    assert is_sensitive("prompt_tokens")


def test_custom_key_set_replaces_defaults_and_is_normalised() -> None:
    keys = frozenset({"ssn", "creditCard"})
    assert is_sensitive("userSSN", keys)
    assert is_sensitive("credit-card-number", keys)
    assert not is_sensitive("password", keys)


def test_huge_keys_are_still_checked() -> None:
    assert is_sensitive("x" * 1000 + "Password")
    assert not is_sensitive("x" * 1000)


def test_default_set_is_the_documented_one() -> None:
    assert (
        frozenset({"password", "token", "secret", "authorization", "cookie", "api_key"})
        == DEFAULT_SENSITIVE_KEYS
    )


def test_redacts_nested_dicts_lists_and_tuples() -> None:
    value: dict[str, Any] = {
        "user": "ada",
        "password": "hunter2",
        "headers": {"Authorization": "Bearer abc", "Accept": "*/*"},
        "attempts": [
            {"apiKey": "k1", "n": 1},
            ({"accessToken": "t"}, "plain", 3),
        ],
    }
    assert redact(value) == {
        "user": "ada",
        "password": REDACTED,
        "headers": {"Authorization": REDACTED, "Accept": "*/*"},
        "attempts": [
            {"apiKey": REDACTED, "n": 1},
            ({"accessToken": REDACTED}, "plain", 3),
        ],
    }


def test_sensitive_container_values_are_replaced_whole() -> None:
    assert redact({"secret": {"a": 1}, "tokens": ["x", "y"], "cookie": None}) == {
        "secret": REDACTED,
        "tokens": REDACTED,
        "cookie": REDACTED,
    }


def test_never_mutates_input_and_returns_fresh_containers() -> None:
    inner = {"password": "p", "list": [1, {"token": "t"}]}
    value = {"ctx": inner, "tuple": (inner,)}
    snapshot = copy.deepcopy(value)
    result = redact(value)
    assert value == snapshot
    assert isinstance(result, dict)
    assert result is not value
    assert result["ctx"] is not inner
    assert result["ctx"]["list"] is not inner["list"]
    assert isinstance(result["tuple"], tuple)


def test_other_values_pass_through_unchanged() -> None:
    marker = object()
    payload = {"obj": marker, "n": 1.5, "s": "password", "b": b"token", "set": {"token"}}
    result = redact(payload)
    assert isinstance(result, dict)
    assert result["obj"] is marker
    assert result["s"] == "password"  # values are not inspected, only keys
    assert result["set"] is payload["set"]
    for scalar in (None, 3, "token", b"x", marker):
        assert redact(scalar) is scalar


def test_any_mapping_becomes_a_plain_dict() -> None:
    proxy = MappingProxyType({"password": "p", "ok": 1})
    ordered = OrderedDict([("Cookie", "c"), ("ok", 2)])
    assert redact(proxy) == {"password": REDACTED, "ok": 1}
    assert type(redact(ordered)) is dict
    assert redact(ordered) == {"Cookie": REDACTED, "ok": 2}


def test_non_string_keys_are_kept() -> None:
    assert redact({1: "one", ("a", "b"): "t", "token": 1}) == {
        1: "one",
        ("a", "b"): "t",
        "token": REDACTED,
    }


def test_cycles_do_not_recurse_forever() -> None:
    value: dict[str, Any] = {"a": 1}
    value["self"] = value
    items: list[Any] = [1]
    items.append(items)
    assert redact(value) == {"a": 1, "self": "[CIRCULAR]"}
    assert redact(items) == [1, "[CIRCULAR]"]


def test_shared_but_acyclic_references_are_copied_twice() -> None:
    shared = {"password": "p"}
    assert redact({"a": shared, "b": [shared, shared]}) == {
        "a": {"password": REDACTED},
        "b": [{"password": REDACTED}, {"password": REDACTED}],
    }


def test_custom_keys_for_redact() -> None:
    assert redact({"ssn": "1", "password": "p"}, frozenset({"ssn"})) == {
        "ssn": REDACTED,
        "password": "p",
    }
