"""Config files with identity profiles: the YAML subset, profile choice, ``from_config``."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from tests.core.identity.test_identity_props import valid_identities
from thalovant.core.identity.profiles import parse_config_text, select_profile
from thalovant.shell.identity_io import ThalovantIdentity

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = "0123456789abcdef0123456789abcdef"

CONFIG = """\
# thalovant profiles
default_profile: home
profiles:
  home:
    access_key: "0123456789abcdef0123456789abcdef"   # quoted
    password: 'it''s # not a comment'
    site_id: 12
    default_master: https://hub.example:443/x
    default_port: 443
    protocols: {"wss": false, "http": true}
    metadata:
      room: kitchen
      tags:
        - a
        - "b c"
    mqtt:
      endpoint: mqtts://broker.example
      qos: 0
  lab:
    key: "fedcba9876543210fedcba9876543210"
    crypto_key: 6b1f0c2a9d3e4f57
    site: lab
    host: http://127.0.0.1
"""


def parsed(text: str) -> Any:
    result = parse_config_text(text)
    assert isinstance(result, Success), result
    return result.unwrap()


def problem(text: str) -> tuple[str, str]:
    result = parse_config_text(text)
    assert isinstance(result, Failure), result
    [found] = result.failure()
    return found.path, found.message


def test_yaml_subset_reads_the_example() -> None:
    home = parsed(CONFIG)["profiles"]["home"]
    assert home == {
        "access_key": KEY,
        "password": "it's # not a comment",
        "site_id": "12",
        "default_master": "https://hub.example:443/x",
        "default_port": "443",
        "protocols": {"wss": False, "http": True},
        "metadata": {"room": "kitchen", "tags": ["a", "b c"]},
        "mqtt": {"endpoint": "mqtts://broker.example", "qos": "0"},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("---\n", {}),
        ("a:\n- 1\n- 2\nb: x", {"a": ["1", "2"], "b": "x"}),
        ("a: ~\nb: null\nc:\nd: ''", {"a": None, "b": None, "c": None, "d": ""}),
        ("a: True\nb: false\nc: yes", {"a": True, "b": False, "c": "yes"}),
        ('a: "x\\u00e9\\"#y"  # c', {"a": 'xé"#y'}),
        ("a: b#c", {"a": "b#c"}),
        ("url: https://h:1/p?q=1#f", {"url": "https://h:1/p?q=1#f"}),
        ("\"quoted key\": 1\n'single': 2", {"quoted key": "1", "single": "2"}),
        ('a: [1, 2.5, null]\nb: {"k": [true]}', {"a": [1, 2.5, None], "b": {"k": [True]}}),
        ('{"json": {"k": 1}}', {"json": {"k": 1}}),
        ("\ufeffa: 1", {"a": "1"}),
        ("- a\n- 'b'", ["a", "b"]),
    ],
)
def test_yaml_subset_values(text: str, expected: Any) -> None:
    assert parsed(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\n  b: 2", "unexpected indentation"),
        ("a:\n\tb: 1", "tabs"),
        ("a: &anchor 1", "not supported"),
        ("a: *alias", "not supported"),
        ("a: !tag x", "not supported"),
        ("a: |\n  text", "not supported"),
        ("- a: 1", "mappings inside lists"),
        ("just text", "expected 'key: value'"),
        ("a: 1\na: 2", "duplicate key"),
        ("a: 'open", "single-quoted"),
        ('a: "open', "double-quoted"),
        ('a: "\\x41"', "double-quoted"),
        ("a: [1,", "flow collections"),
        ("---\na: 1\n---\nb: 2", "one YAML document"),
        ("{bad json", "not valid JSON"),
        ("k" + " " * 9000 + "x: 1", "line longer than 8192"),
    ],
)
def test_yaml_subset_refusals(text: str, message: str) -> None:
    path, got = problem(text)
    assert message in got
    assert path == "" or path.startswith("line ")


def test_problems_do_not_quote_values() -> None:
    _, message = problem("password: 'ZQsecretQZ\n")
    assert "ZQsecretQZ" not in message
    [bad_bytes] = parse_config_text(b"a: \xff\xfe").failure()
    assert (bad_bytes.path, bad_bytes.message) == ("", "config file is not valid UTF-8 (byte 3)")


@pytest.mark.parametrize(
    ("config", "profile", "expected"),
    [
        ({"profiles": {"a": {"k": 1}, "b": {"k": 2}}, "default_profile": "b"}, None, {"k": 2}),
        ({"profiles": {"a": {"k": 1}, "b": {"k": 2}}, "default_profile": "b"}, "a", {"k": 1}),
        ({"profiles": {"default": {"k": 0}, "b": {"k": 2}}}, None, {"k": 0}),
        ({"profiles": {"only": {"k": 3}}}, None, {"k": 3}),
        ({"k": 4, "default_profile": "x"}, None, {"k": 4}),
        ({"k": 5}, "default", {"k": 5}),
    ],
)
def test_profile_choice(config: dict[str, Any], profile: str | None, expected: dict[str, Any]) -> None:
    assert select_profile(config, profile) == Success(expected)


@pytest.mark.parametrize(
    ("config", "profile", "message"),
    [
        ({"profiles": {"a": {}, "b": {}}}, None, "choose a profile: a, b"),
        ({"profiles": {"a": {}}}, "c", "no profile 'c' (have: a)"),
        ({"profiles": {"a": "text"}}, "a", "not a mapping"),
        ({"profiles": []}, None, "non-empty mapping"),
        ({"k": 1}, "work", "no profiles"),
        (["list"], None, "must be a mapping"),
    ],
)
def test_profile_choice_problems(config: object, profile: str | None, message: str) -> None:
    result = select_profile(config, profile)
    assert isinstance(result, Failure) and message in result.failure()[0].message


# ---- properties -------------------------------------------------------------------------------------


@FAST
@given(st.text(alphabet=string.printable + "é\u2028\x00", max_size=200))
def test_any_text_parses_or_gives_line_problems(text: str) -> None:
    result = parse_config_text(text)
    if isinstance(result, Failure):
        assert all(p.path == "" or p.path.startswith("line ") for p in result.failure())


def to_yaml(value: dict[str, Any], indent: int = 0) -> list[str]:
    lines: list[str] = []
    for key, item in value.items():
        pad = " " * indent
        if isinstance(item, dict) and item and key != "metadata":
            lines += [f"{pad}{key}:", f"{pad}  # a comment line", *to_yaml(item, indent + 2)]
        elif isinstance(item, str):
            lines.append(f"{pad}{key}: {json.dumps(item)}  # trailing comment")
        else:
            lines.append(f"{pad}{key}: {json.dumps(item)}")
    return lines


TRICKY = st.text(alphabet=string.ascii_letters + " #'\":-{}[]", max_size=20).map(lambda s: f"P{s}P")


@FAST
@given(valid_identities(), TRICKY, st.sampled_from(["home", "lab"]))
def test_identities_round_trip_through_a_config_file(
    case: tuple[dict[str, Any], list[str]], password: str, name: str
) -> None:
    values, _ = case
    values["password"] = password
    ident = ThalovantIdentity.from_mapping(values)
    other = {**ident.as_dict(include_secrets=True), "site_id": "other"}
    profiles = {name: ident.as_dict(include_secrets=True), f"{name}2": other}
    text = "\n".join(["# generated", f"default_profile: {name}", "profiles:", *to_yaml(profiles, 2)]) + "\n"
    config = parse_config_text(text)
    assert isinstance(config, Success), (config, text)
    chosen = select_profile(config.unwrap(), None)
    assert ThalovantIdentity.from_mapping(chosen.unwrap()) == ident
    assert ThalovantIdentity.from_mapping(select_profile(config.unwrap(), f"{name}2").unwrap()).site_id == "other"
