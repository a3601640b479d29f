"""``thalovant listen --binary DIR`` and ``thalovant send-file``, against the in-memory hub.

On main ``listen`` required an event type and had no ``--binary`` (argparse exit 2), and ``send-file`` did not exist.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from thalovant.cli import main
from thalovant.cli_binary import stored_name
from thalovant.core.bus.binary import ThalovantBinary
from thalovant.testing import MemoryHub

IDENTITY = {
    "access_key": "cli-binary-access-key",
    "password": "cli-binary-password",
    "default_master": "https://hub.example.invalid",
    "site_id": "kitchen",
}
WAIT = 5.0


@pytest.fixture
def identity_path(tmp_path: Path) -> str:
    path = tmp_path / "identity.json"
    path.write_text(json.dumps(IDENTITY))
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def hub() -> Iterator[MemoryHub]:
    """A hub that sends frames (a TTS clip, a hostile file name, a file) over and over until the test ends.

    The CLI registers its reader only once connected, so a frame pushed a moment earlier is not seen:
    the pusher repeats (bounded) instead of guessing that moment.
    """
    memory = MemoryHub()
    stop = threading.Event()
    frames = [
        (b"RIFF-clip", "tts_audio", {"file_name": "answer.wav", "utterance": "hi cli-binary-access-key"}),
        (b"evil", "file", {"file_name": "../../../etc/passwd"}),
        (b"plain", "binary:9", {}),
    ]

    def push() -> None:
        for n in range(200):
            if stop.wait(0.02):
                return
            if memory.attached:
                data, kind, meta = frames[n % len(frames)]
                memory.push_binary(data, kind, meta)

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    yield memory
    stop.set()
    pusher.join(WAIT)


def test_listen_binary_saves_each_frame_under_a_safe_new_name(
    identity_path: str, hub: MemoryHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "clips"
    out.mkdir()
    (out / "0001-answer.wav").write_bytes(b"older file")  # never overwritten
    argv = ["-i", identity_path, "--json", "--timeout", "5", "listen", "--binary", str(out), "--max-events", "3"]
    assert main(argv, transport=hub) == 0
    printed = capsys.readouterr()
    lines = [json.loads(line) for line in printed.out.splitlines()]
    assert len(lines) == 3 and sorted(p.name for p in out.iterdir())[0] == "0001-answer.wav"
    assert (out / "0001-answer.wav").read_bytes() == b"older file"
    for line in lines:
        path = Path(line["path"])
        assert path.parent == out and path.read_bytes().__len__() == line["size"]
        assert ".." not in path.name and not path.name.startswith(".")
    names = {line["kind"]: Path(line["path"]).name for line in lines}
    assert set(names) == {"tts_audio", "file", "binary:9"}
    assert names["file"].endswith("-passwd") and names["binary:9"].endswith("-binary-9.bin")
    assert "cli-binary-password" not in printed.out + printed.err
    assert "cli-binary-access-key" not in printed.out  # a hub's metadata is scrubbed too
    assert [line["metadata"].get("utterance") for line in lines if line["kind"] == "tts_audio"] == ["hi ***"]


def test_listen_binary_text_lines_and_a_kind_filter(
    identity_path: str, hub: MemoryHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["-i", identity_path, "listen", "--binary", str(tmp_path / "new"), "--kind", "file", "--max-events", "1"]
    assert main(argv, transport=hub) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("file 4 bytes ") and line.endswith("0001-passwd")
    assert (tmp_path / "new" / "0001-passwd").read_bytes() == b"evil"


@pytest.mark.parametrize(
    "argv",
    [
        ["listen"],
        ["listen", "speak", "--binary", "d"],
        ["listen", "speak", "--kind", "file"],
        ["listen", "--binary", "d", "--max-events", "0"],
    ],
)
def test_listen_usage_errors(identity_path: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-i", identity_path, *argv], transport=MemoryHub()) == 2


def test_listen_binary_needs_a_directory(identity_path: str, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert main(["-i", identity_path, "listen", "--binary", str(tmp_path / "file")], transport=MemoryHub()) == 2


def test_send_file(identity_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hub = MemoryHub()
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF")
    assert main(["-i", identity_path, "--json", "--protocol", "wss", "send-file", str(path)], transport=hub) == 0
    assert json.loads(capsys.readouterr().out) == {"sent": True, "type": "file", "file_name": "report.pdf"}
    assert [(b.kind, b.data, b.file_name) for b in hub.received_binary] == [("file", b"%PDF", "report.pdf")]
    assert main(["-i", identity_path, "send-file", str(tmp_path / "missing")], transport=MemoryHub()) == 2
    refused = MemoryHub()  # https to a hub 4.x: no binary frames (exit 1, one line, nothing sent)
    assert main(["-i", identity_path, "--protocol", "https", "send-file", str(path)], transport=refused) == 1
    assert "HTTP polling" in capsys.readouterr().err and refused.received_binary == []


@given(st.text(max_size=300), st.sampled_from(["tts_audio", "file", "binary:11"]), st.integers(1, 9999))
def test_stored_names_are_always_plain_names(file_name: str, kind: str, number: int) -> None:
    name = stored_name(ThalovantBinary(kind=kind, data=b"", metadata={"file_name": file_name}), number)
    assert name.startswith(f"{number:04d}-") and len(name) <= 90
    assert "/" not in name and "\\" not in name and "\0" not in name and ".." not in name.split("-", 1)[1][:2]
    assert name.split("-", 1)[1] not in ("", ".", "..") and not name.split("-", 1)[1].startswith(".")
