from __future__ import annotations

import subprocess
import sys

from thalovant import __version__
from thalovant.cli import main


def test_version_flag_prints_version_and_exits_zero(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"thalovant {__version__}"


def test_unknown_command_is_a_usage_error() -> None:
    assert main(["no-such-command"]) == 2


def test_console_script_runs_as_module() -> None:
    out = subprocess.run([sys.executable, "-m", "thalovant.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert __version__ in out.stdout
