"""Build (once) the virtualenv that holds the reference client, thalovant 0.4.7.

The reference SDK and the hivemind-bus-client functions it wraps are what the
benchmarks compare against. They live in their own venv so they never touch
the project's environment:

    ${XDG_CACHE_HOME:-~/.cache}/thalovant-bench/venv-ref

(``THALOVANT_BENCH_REF_VENV`` overrides the path.) Packages are pinned with
``benchmarks/ref-constraints.txt``: a plain ``pip install thalovant==0.4.7``
resolves bitstring 5, which cannot be imported by hivemind_bus_client 0.4.4,
and lets a pre-release ovos-bus-client in, so the pins are not optional.

Usage::

    python -m benchmarks.refvenv            # build if missing, print the python path
    python -m benchmarks.refvenv --force    # rebuild from scratch
    python -m benchmarks.refvenv --check    # exit 1 if missing or broken, never build
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["REF_VERSION", "constraints_path", "ensure_ref_venv", "ref_python", "run_worker", "venv_dir"]

REF_VERSION = "0.4.7"
_HERE = Path(__file__).resolve().parent
_MARKER = ".thalovant-bench-ok"
_IMPORT_CHECK = "import thalovant, hivemind_bus_client.serialization, hivemind_bus_client.encryption"


def constraints_path() -> Path:
    """The pin file the reference venv is installed with."""
    return _HERE / "ref-constraints.txt"


def venv_dir() -> Path:
    """Where the reference venv lives (see the module docstring)."""
    override = os.environ.get("THALOVANT_BENCH_REF_VENV")
    if override:
        return Path(override).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "thalovant-bench" / "venv-ref"


def ref_python() -> Path:
    """The interpreter inside the reference venv (may not exist yet)."""
    return venv_dir() / "bin" / "python"


def _fingerprint() -> str:
    return hashlib.sha256(constraints_path().read_bytes()).hexdigest()[:16]


def _is_ready() -> bool:
    marker = venv_dir() / _MARKER
    return ref_python().exists() and marker.exists() and marker.read_text().strip() == _fingerprint()


def _run(cmd: list[str], *, timeout: float) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n" + "\n".join(tail))


def ensure_ref_venv(*, force: bool = False, quiet: bool = False) -> Path:
    """Create the reference venv if it is missing (or ``force``); return its python.

    Raises:
        RuntimeError: venv creation, installation or the import check failed.
    """
    target = venv_dir()
    if force and target.exists():
        shutil.rmtree(target)
    if _is_ready():
        return ref_python()
    if target.exists():
        shutil.rmtree(target)  # a half-built venv from an interrupted run
    if not quiet:
        print(f"building reference venv at {target} (thalovant=={REF_VERSION}) ...", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", str(target)], timeout=300)
    pip = [str(ref_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run([*pip, "-c", str(constraints_path()), f"thalovant=={REF_VERSION}", "bitstring<5"], timeout=900)
    _run([str(ref_python()), "-c", _IMPORT_CHECK], timeout=120)
    (target / _MARKER).write_text(_fingerprint() + "\n")
    return ref_python()


def run_worker(job: dict[str, Any], *, timeout: float = 900.0) -> dict[str, Any]:
    """Run one ``_ref_worker.py`` job with the reference venv's python; returns its JSON answer.

    The worker runs from a neutral working directory so that the project's own
    ``thalovant`` package can never shadow the reference one.

    Raises:
        RuntimeError: the venv cannot be built or the worker failed.
    """
    python = ensure_ref_venv(quiet=True)
    proc = subprocess.run(
        [str(python), str(_HERE / "_ref_worker.py")],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(venv_dir()),
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"reference worker failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    answer: dict[str, Any] = json.loads(proc.stdout)
    return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.refvenv", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="delete and rebuild the venv")
    parser.add_argument("--check", action="store_true", help="only report whether the venv is ready")
    args = parser.parse_args(argv)
    if args.check:
        ok = _is_ready()
        print(ref_python() if ok else f"missing: {venv_dir()}")
        return 0 if ok else 1
    print(ensure_ref_venv(force=args.force))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
