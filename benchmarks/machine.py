"""What the benchmarks ran on: CPU, cores, memory, OS, load, Python and package versions."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["describe", "git_revision", "render"]

_PACKAGES = ("thalovant", "cryptography", "returns", "anyio", "h11", "wsproto", "paho-mqtt", "pyinstrument")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _free() -> str:
    try:
        out = subprocess.run(["free", "-m"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    for line in out.splitlines():
        if line.startswith("Mem:"):
            parts = line.split()
            return f"{int(parts[1]) / 1024:.1f} GiB total, {int(parts[-1]) / 1024:.1f} GiB available"
    return "unknown"


def git_revision() -> str:
    """Short commit of the working tree, with ``+dirty`` if tracked files are modified."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev or "unknown") + ("+dirty" if dirty else "")


def describe() -> dict[str, Any]:
    """A JSON-able description of this machine and interpreter."""
    versions = {}
    for dist in _PACKAGES:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "absent"
    return {
        "cpu": _cpu_model(),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory": _free(),
        "os": platform.platform(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "versions": versions,
        "git": git_revision(),
    }


def render(info: dict[str, Any], reference_versions: dict[str, str] | None) -> list[str]:
    """Markdown bullet list."""
    ours = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v != "absent")
    lines = [
        f"- CPU: {info['cpu']}, {info['nproc']} cores (nproc); memory: {info['memory']}",
        f"- OS: {info['os']}; load average at start: {' / '.join(str(x) for x in info['loadavg'])} "
        "(the machine is shared, so absolute figures are noisy; ratios are taken from one run)",
        f"- Python {info['python']} ({info['implementation']}); project venv: {ours}",
        f"- Source: git {info['git']}",
    ]
    if reference_versions:
        ref = ", ".join(f"{k} {v}" for k, v in reference_versions.items() if v != "absent")
        lines.append(f"- Reference venv (`python -m benchmarks.refvenv`): {ref}")
    return lines
