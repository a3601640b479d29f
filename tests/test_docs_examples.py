"""Every ```python block of README.md and docs/ is executed; this module runs the ones that need no hub.

Each block runs in a fresh namespace (``__name__ == "__main__"``), in a temporary working directory,
and fails the test if it raises. What a block runs against is chosen by an HTML comment on one of
the lines just above its fence (blank lines may come between):

* no comment, or ``<!-- run: hub -->``: the real hub 4.x (``tests/live/test_docs_live.py``);
  ``$THALOVANT_IDENTITY`` names the ``psk`` identity file and the ``THALOVANT_*`` variables hold the
  same identity;
* ``<!-- run: hub-mqtt -->``: the same, skipped when mosquitto is unavailable;
* ``<!-- run: hub-v3 -->``: the real hub 5.x (Noise); ``$THALOVANT_IDENTITY`` as above;
* ``<!-- run: offline -->``: no hub at all (in-memory hub, pure machines, parsers);
* ``<!-- run: control-plane -->``: ``tests/fakes/control_server.py`` on 127.0.0.1, its URL in
  ``$THALOVANT_API_URL`` and a valid login in ``$THALOVANT_API_EMAIL`` / ``$THALOVANT_API_PASSWORD``;
* ``<!-- not-run: reason -->``: not executed (kept rare: at most ``MAX_NOT_RUN`` in the whole site).

Any other comment of that shape fails :func:`test_every_block_names_a_known_mode`.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.paths import ROOT

ROOT = ROOT
DOCS = ROOT / "docs"
MODES = ("hub", "hub-mqtt", "hub-v3", "offline", "control-plane")
MAX_NOT_RUN = 3

_FENCE = re.compile(r"^(\s*)```(\w[\w+-]*)?\s*$")
_MARK = re.compile(r"^\s*<!--\s*(run|not-run)\s*:\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Example:
    """One fenced python block."""

    doc: str  # path relative to the project root
    line: int  # line of the opening fence (1-based)
    mode: str  # one of MODES, "not-run" or an unknown word (a test failure)
    reason: str  # for not-run
    code: str

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def doc_files() -> list[Path]:
    """README.md and every Markdown page under docs/."""
    files = [ROOT / "README.md"]
    if DOCS.is_dir():
        files += sorted(DOCS.rglob("*.md"))
    return [f for f in files if f.is_file()]


def _mark_above(lines: list[str], fence: int) -> tuple[str, str]:
    """The run mode named by the comment just above line ``fence`` (default: hub)."""
    i = fence - 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    if i >= 0:
        match = _MARK.match(lines[i])
        if match:
            kind, value = match.groups()
            return ("not-run", value) if kind == "not-run" else (value, "")
    return "hub", ""


def extract(path: Path, root: Path = ROOT) -> list[Example]:
    """The python blocks of one Markdown file (indented fences included, dedented)."""
    lines = path.read_text("utf-8").splitlines()
    found: list[Example] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, lang = match.group(1), (match.group(2) or "").lower()
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if lang in ("python", "py"):
            body = [line[len(indent) :] if line.startswith(indent) else line for line in lines[i + 1 : end]]
            mode, reason = _mark_above(lines, i)
            rel = path.relative_to(root).as_posix()
            found.append(Example(rel, i + 1, mode, reason, "\n".join(body) + "\n"))
        i = end + 1
    return found


def all_examples() -> list[Example]:
    return [ex for path in doc_files() for ex in extract(path)]


def examples(*modes: str) -> list[Any]:
    """pytest params (with readable ids) of the blocks of the given modes."""
    return [pytest.param(ex, id=ex.id) for ex in all_examples() if ex.mode in modes]


@contextlib.contextmanager
def _environment(env: Mapping[str, str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the variables the mode promises: the caller's own THALOVANT_* (not the harness's) are removed."""
    for name in list(os.environ):
        if name.startswith("THALOVANT_") and not name.startswith("THALOVANT_TEST_"):
            monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(cwd)
    yield


def run_example(ex: Example, *, env: Mapping[str, str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Execute one block as a script; return what it printed. Raises whatever the block raises."""
    code = compile(ex.code, ex.id, "exec")
    out = io.StringIO()
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(cwd / "example.py")}
    with _environment(env, cwd, monkeypatch), contextlib.redirect_stdout(out):
        exec(code, namespace)
    return out.getvalue()


# ---- structure ------------------------------------------------------------------------------------


def test_the_site_and_the_readme_have_examples() -> None:
    found = all_examples()
    assert len([ex for ex in found if ex.doc == "README.md"]) >= 8
    assert len(found) >= 25
    assert {ex.mode for ex in found} >= {"hub", "offline", "control-plane", "hub-mqtt", "hub-v3"}


def test_every_block_names_a_known_mode() -> None:
    unknown = [f"{ex.id}: {ex.mode!r}" for ex in all_examples() if ex.mode not in (*MODES, "not-run")]
    assert not unknown, f"unknown run modes: {unknown}"


def test_not_run_blocks_are_rare_and_say_why() -> None:
    skipped = [ex for ex in all_examples() if ex.mode == "not-run"]
    assert len(skipped) <= MAX_NOT_RUN, [ex.id for ex in skipped]
    assert all(len(ex.reason) >= 10 for ex in skipped), [ex.id for ex in skipped]


@pytest.mark.parametrize("ex", examples(*MODES, "not-run"))
def test_every_block_compiles(ex: Example) -> None:
    compile(ex.code, ex.id, "exec")


def test_extraction_reads_marks_indented_fences_and_other_languages(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```python\nprint(1)\n```\n\n<!-- run: offline -->\n\n```python\nx = 2\n```\n"
        '```json\n{"a": 1}\n```\n\n- item\n\n    ```python\n    if True:\n        y = 3\n    ```\n'
        "<!-- not-run: needs a real microphone -->\n```py\nlisten()\n```\n",
        "utf-8",
    )
    got = extract(page, root=tmp_path)
    assert [(e.mode, e.reason, e.code) for e in got] == [
        ("hub", "", "print(1)\n"),
        ("offline", "", "x = 2\n"),
        ("hub", "", "if True:\n    y = 3\n"),
        ("not-run", "needs a real microphone", "listen()\n"),
    ]
    assert [e.id for e in got] == ["page.md:3", "page.md:9", "page.md:18", "page.md:23"]


_CODE_LINE = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).filter(
    lambda line: "```" not in line and "\u2028" not in line and "\u2029" not in line and "\x85" not in line
)
_BLOCK = st.tuples(
    st.sampled_from([None, *MODES]),
    st.lists(_CODE_LINE, min_size=0, max_size=5),
    st.sampled_from(["python", "py", "json", "sh", ""]),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blocks=st.lists(_BLOCK, max_size=6), prose=st.lists(_CODE_LINE, max_size=3))
def test_extraction_finds_exactly_the_python_blocks_written(
    tmp_path: Path, blocks: list[tuple[str | None, list[str], str]], prose: list[str]
) -> None:
    text: list[str] = []
    for mode, code, lang in blocks:
        text += [p for p in prose if not p.lstrip().startswith("<!--")] + [""]
        if mode is not None:
            text.append(f"<!-- run: {mode} -->")
        text += [f"```{lang}", *code, "```"]
    page = tmp_path / "gen.md"
    page.write_text("\n".join(text) + "\n", "utf-8")
    got = extract(page, root=tmp_path)
    wanted = [(mode or "hub", "\n".join(code) + "\n") for mode, code, lang in blocks if lang in ("python", "py")]
    assert [(e.mode, e.code) for e in got] == wanted


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.text(max_size=300))
def test_extraction_never_raises_on_any_text(tmp_path: Path, garbage: str) -> None:
    page = tmp_path / "garbage.md"
    page.write_text(garbage, "utf-8", errors="surrogatepass")
    for ex in extract(page, root=tmp_path):
        assert ex.line >= 1 and isinstance(ex.code, str)


# ---- running --------------------------------------------------------------------------------------


@pytest.mark.parametrize("ex", examples("offline"))
def test_offline_example_runs(ex: Example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_example(ex, env={}, cwd=tmp_path, monkeypatch=monkeypatch)


def test_a_raising_example_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = Example("docs/x.md", 1, "offline", "", "raise ValueError('broken example')\n")
    with pytest.raises(ValueError, match="broken example"):
        run_example(bad, env={}, cwd=tmp_path, monkeypatch=monkeypatch)
    good = Example("docs/x.md", 1, "offline", "", "import os\nprint(os.environ['THALOVANT_X'], os.getcwd())\n")
    assert run_example(good, env={"THALOVANT_X": "y"}, cwd=tmp_path, monkeypatch=monkeypatch).split() == [
        "y",
        str(tmp_path),
    ]


@pytest.mark.parametrize("ex", examples("control-plane"))
def test_control_plane_example_runs(ex: Example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes.control_server import FakeControlServer

    with FakeControlServer() as srv:
        email, (password, _otp) = next((e, v) for e, v in srv.users.items() if v[1] is None)
        env = {"THALOVANT_API_URL": srv.url, "THALOVANT_API_EMAIL": email, "THALOVANT_API_PASSWORD": password}
        printed = run_example(ex, env=env, cwd=tmp_path, monkeypatch=monkeypatch)
        assert srv.requests, "the example never called the API"
        issued = [s for s in srv.issued_secrets if s]
    leaked = [s for s in [password, *issued] if s in printed]
    assert not leaked, "an example printed a secret"


# ---- reference pages match the code (the API reference: tests/test_docs_reference.py) ---------------


def test_cli_reference_covers_every_command() -> None:
    from thalovant.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    page = (DOCS / "cli.md").read_text("utf-8")
    missing = [name for name in commands if f"thalovant {name}" not in page]
    assert not missing, f"docs/cli.md does not show: {missing}"
    options = {opt for sub in [parser, *commands.values()] for a in sub._actions for opt in a.option_strings}
    undocumented = sorted(
        opt for opt in options if opt.startswith("--") and not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", page)
    )
    assert not undocumented, f"docs/cli.md does not mention: {undocumented}"


def test_error_page_lists_every_exception() -> None:
    import thalovant.errors

    page = (DOCS / "errors.md").read_text("utf-8")
    missing = [name for name in thalovant.errors.__all__ if name not in page]
    assert not missing
