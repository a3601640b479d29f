"""Checks that keep the functional core pure and the public surface honest."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT

ROOT = ROOT
CORE = ROOT / "thalovant" / "core"
FORBIDDEN_TOP = {
    "socket", "ssl", "time", "datetime", "os", "sys", "random", "secrets", "uuid", "logging",
    "threading", "asyncio", "anyio", "trio", "h11", "wsproto", "paho", "subprocess", "select",
    "pathlib", "io",
}


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_has_no_async_io_calls_or_forbidden_imports(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        assert not isinstance(node, ast.AsyncFunctionDef | ast.Await | ast.AsyncFor | ast.AsyncWith | ast.Global), (
            f"{path}:{getattr(node, 'lineno', '?')}: async or global in core"
        )
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in {"open", "print", "input"}:
            raise AssertionError(f"{path}:{node.lineno}: IO call in core")
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] not in FORBIDDEN_TOP, f"{path}: import {alias.name}"
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            assert node.module.split(".")[0] not in FORBIDDEN_TOP, f"{path}: from {node.module}"
            assert not node.module.startswith(("thalovant.shell", "thalovant.cli")), path


@pytest.mark.parametrize("path", sorted((ROOT / "thalovant").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_stays_small(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= 450, f"{path} has {lines} lines; split it by responsibility (one machine per module)"


def test_no_import_cycle_inside_the_package() -> None:
    """Every import counts: module level, inside functions and under TYPE_CHECKING."""
    import grimp

    graph = grimp.build_graph("thalovant", cache_dir=None)
    cycles = sorted(
        {
            tuple(sorted((module, imported)))
            for module in graph.modules
            for imported in graph.find_modules_directly_imported_by(module)
            if graph.find_shortest_chain(importer=imported, imported=module)
        }
    )
    assert cycles == [], f"import cycles: {cycles}"


def test_importing_thalovant_and_core_loads_no_io_stack() -> None:
    code = (
        "import sys, thalovant, thalovant.errors\n"
        "import importlib, pkgutil, thalovant.core as c\n"
        "for m in pkgutil.walk_packages(c.__path__, 'thalovant.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'anyio','trio','h11','wsproto','paho','asyncio','ssl','socket'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def all_core_dataclasses() -> list[type]:
    import importlib
    import pkgutil

    import thalovant.core as core

    found: list[type] = []
    for info in pkgutil.walk_packages(core.__path__, "thalovant.core."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and dataclasses.is_dataclass(value)
                and value.__module__ == info.name
                and any(base.__name__ in {"Input", "Output"} for base in value.__mro__[1:])
            ):
                found.append(value)
    return found


@pytest.mark.parametrize("cls", all_core_dataclasses(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_machine_messages_are_frozen_slotted_values(cls: type) -> None:
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen, f"{cls} must be frozen"
    assert "__slots__" in cls.__dict__, f"{cls} must use slots"


def test_public_errors_inherit_matching_builtins() -> None:
    from thalovant import errors

    assert issubclass(errors.ThalovantTimeoutError, TimeoutError)
    assert issubclass(errors.ThalovantConnectionError, ConnectionError)
    assert issubclass(errors.ThalovantIdentityError, ValueError)
    assert issubclass(errors.ThalovantPolicyDenied, errors.ThalovantRuntimeError)
    assert issubclass(errors.LocalProtocolError, errors.ThalovantProtocolError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.ThalovantError)


def test_identity_error_lists_every_problem_by_path() -> None:
    from thalovant.errors import ThalovantIdentityError

    err = ThalovantIdentityError(
        [("access_key", "is required"), ("mqtt.topic_prefix", "must not contain MQTT wildcards")]
    )
    assert "access_key: is required" in str(err)
    assert "mqtt.topic_prefix: must not contain MQTT wildcards" in str(err)
    assert len(err.problems) == 2


def test_sync_facade_mirrors_the_async_client() -> None:
    import inspect

    from thalovant import AsyncThalovantClient, ThalovantClient

    public = [
        name
        for name, fn in inspect.getmembers(AsyncThalovantClient)
        if not name.startswith("_") and (inspect.iscoroutinefunction(fn) or inspect.isfunction(fn))
    ]
    assert "ask" in public and "listen" in public
    missing = [name for name in public if not callable(getattr(ThalovantClient, name, None))]
    assert missing == [], f"ThalovantClient lacks {missing}"


SYNC_FILES = sorted((ROOT / "thalovant" / "shell" / "sync").glob("*.py"))


@pytest.mark.parametrize("path", SYNC_FILES, ids=lambda p: p.name)
def test_sync_facade_holds_no_protocol_code(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not imported & {"h11", "wsproto", "paho"}
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    forbidden = ("thalovant.core.session", "thalovant.core.links", "thalovant.shell.runtime")
    assert not any(m and m.startswith(forbidden) for m in modules)


def test_public_api_exposes_no_returns_containers() -> None:
    import typing

    import thalovant

    for name in thalovant.__all__:
        value = getattr(thalovant, name)
        targets = [value] + [m for _, m in vars(value).items() if callable(m)] if isinstance(value, type) else [value]
        for target in targets:
            try:
                hints = typing.get_type_hints(target)
            except Exception:  # names only resolvable under TYPE_CHECKING: fall back to the raw text
                hints = getattr(target, "__annotations__", {})
            for hint in hints.values():
                assert "returns." not in str(hint), f"{name}: {hint}"
