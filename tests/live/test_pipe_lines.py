"""PipeLines (tests/live/pipe_lines.py) sees every line a child wrote, even two written at once (no hub needed)."""

from __future__ import annotations

import select
import subprocess
import sys
import time

from tests.live.pipe_lines import PipeLines

# two lines in one write, then silence (what the CLI does: "handshake: ..." then "connected to the hub")
CHILD = "import sys, time; sys.stderr.write('first\\nsecond\\n'); sys.stderr.flush(); time.sleep(30)"


def _child() -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHILD], stderr=subprocess.PIPE, text=True)


def test_the_second_of_two_lines_written_at_once_is_seen_at_once() -> None:
    proc = _child()
    try:
        assert proc.stderr is not None
        started = time.monotonic()
        lines = PipeLines(proc.stderr)
        assert lines.wait_for("second", 10)
        assert time.monotonic() - started < 5  # not at a deadline
        assert lines.lines == ["first", "second"]
    finally:
        proc.kill()
        proc.communicate()


def test_select_and_readline_on_a_text_pipe_miss_the_buffered_line() -> None:
    # the pattern the flaky live tests used: the second line sits in the TextIOWrapper's buffer, and
    # select() on the descriptor says nothing more is coming
    proc = _child()
    try:
        assert proc.stderr is not None
        seen = ""
        deadline = time.monotonic() + 2
        while "second" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.2)
            if ready:
                seen += proc.stderr.readline()
        assert seen == "first\n"  # "second" was read from the pipe but never returned
    finally:
        proc.kill()
        proc.communicate()


def test_the_last_line_without_a_newline_is_kept_at_end_of_file() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stderr.write('a\\nb')"], stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        lines = PipeLines(proc.stderr)
        assert not lines.wait_for("never", 10) and lines.closed
        assert lines.lines == ["a", "b"]
    finally:
        proc.communicate()
