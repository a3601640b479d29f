"""``thalovant query TEXT``: a QUERY frame's answer, as text or JSON, from the in-memory hub (hub 5.x style).

On main the command did not exist (argparse exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from thalovant.cli import main
from thalovant.testing import MemoryHub

IDENTITY = {
    "access_key": "cli-query-access-key",
    "password": "cli-query-password",
    "default_master": "https://hub.example.invalid",
    "site_id": "kitchen",
}
SECRETS = ("cli-query-access-key", "cli-query-password")


@pytest.fixture
def identity_path(tmp_path: Path) -> str:
    path = tmp_path / "identity.json"
    path.write_text(json.dumps(IDENTITY))
    path.chmod(0o600)
    return str(path)


def test_query_prints_the_answer(identity_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-i", identity_path, "query", "multi"], transport=MemoryHub(generation=3)) == 0
    printed = capsys.readouterr()
    assert printed.out == "echo: multi (1/2) echo: multi (2/2)\n"
    assert not any(secret in printed.out + printed.err for secret in SECRETS)


def test_query_json(identity_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-i", identity_path, "--json", "query", "hello"], transport=MemoryHub(generation=3)) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["text"] == "echo: hello" and result["complete"] and not result["unanswered"]
    assert result["chunks"] == ["echo: hello"] and result["query_id"].startswith("thalovant-query-")


def test_an_unanswered_query_exits_1(identity_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-i", identity_path, "--json", "query", "silent"], transport=MemoryHub(generation=3)) == 1
    printed = capsys.readouterr()
    assert json.loads(printed.out)["unanswered"] is True
    assert "nobody answered the query (hive.query.timeout)" in printed.err


def test_a_hub_4_cannot_answer_queries(identity_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-i", identity_path, "query", "hello"], transport=MemoryHub(generation=1)) == 1
    assert "protocol v1" in capsys.readouterr().err
