"""The API reference is generated from the docstrings; these tests hold both to the public API.

``docs/reference/*.md`` hold ``::: thalovant.Name`` directives that mkdocstrings renders from the
docstrings (Python handler; griffe follows the imports of ``thalovant/__init__.py``). Checked here:

* every name of ``thalovant.__all__`` has a directive, and every directive names a public object;
* every public class and function has its own docstring, and so has every public method and property
  of the public classes; every constructor and method parameter is named in its docstring. The gaps
  that exist today are listed in ``_KNOWN_GAPS``: a new gap fails, and so does a listed gap that
  was fixed (delete its line), so the list only shrinks;
* every ``thalovant.x.y`` path and every ``thalovant/…``, ``core/…`` or ``shell/…`` file or folder
  written in README.md and docs/ exists, and the Architecture page names every folder of the core,
  the shell and testing;
* the site builds with ``mkdocs build --strict`` and has an entry (an anchor) for every public name.
"""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

import thalovant
from tests.paths import ROOT

DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"

_DIRECTIVE = re.compile(r"^:::[ \t]+(\S+)[ \t]*$", re.M)
_DOTTED = re.compile(r"(?<![\w./-])thalovant(?:\.[A-Za-z_]\w*)+")
_FOLDER = re.compile(r"`(?:thalovant/|(?=core/|shell/))([\w/.]*)`")

# Objects the client builds and hands out: users never call their constructors.
_BUILT_BY_THE_CLIENT = {"ThalovantListener", "ThalovantSubscription", "BootstrapIdentityResult"}

# Docstring gaps as of the reorganisation ("Class.member: no docstring" or the parameters the
# docstring does not name). Fix a gap, then delete its line; never add one.
_KNOWN_GAPS = """
"""


# ---- what the pages and the docstrings say -----------------------------------------------------------


def directives(pages: Iterable[Path]) -> dict[str, str]:
    """``{target: page}`` for every ``::: target`` line of the given Markdown pages."""
    return {m.group(1): page.name for page in pages for m in _DIRECTIVE.finditer(page.read_text("utf-8"))}


def reference_pages() -> list[Path]:
    return sorted(REFERENCE.rglob("*.md"))


def resolve(path: str) -> bool:
    """Whether a dotted path names a module, or an attribute reachable from the longest importable module."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True
    return False


def _own_doc(obj: Any) -> str:
    """The docstring written for ``obj`` itself (not inherited, not a dataclass's generated signature)."""
    target = obj.fget if isinstance(obj, property) else getattr(obj, "__func__", obj)
    doc = target.__dict__.get("__doc__") if inspect.isclass(target) else getattr(target, "__doc__", None)
    doc = (doc or "").strip()
    if inspect.isclass(target) and doc.startswith(f"{target.__name__}("):
        return ""  # dataclasses fill in "Name(field: type, ...)" when nothing was written
    return doc


def _named_parameters(func: Any) -> list[str]:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return []
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [p.name for p in params if p.kind not in skip and p.name not in ("self", "cls") and p.name[0] != "_"]


def _missing_words(doc: str, words: Iterable[str]) -> list[str]:
    return [w for w in words if not re.search(rf"\b{re.escape(w)}\b", doc)]


def public_members(cls: type) -> dict[str, Any]:
    """The public methods and properties a class defines itself."""
    return {
        name: value
        for name, value in vars(cls).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property | classmethod | staticmethod))
    }


def docstring_gaps(name: str, obj: Any) -> dict[str, str]:
    """``{"Name[.member]": "no docstring" | "the undocumented parameters"}`` for one public object."""
    gaps: dict[str, str] = {}
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return gaps  # constants and type aliases: their value is their documentation
    doc = _own_doc(obj)
    if not doc:
        gaps[name] = "no docstring"
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return gaps
    if name not in _BUILT_BY_THE_CLIENT:
        init_doc = _own_doc(obj.__init__) if inspect.isclass(obj) and "__init__" in vars(obj) else ""
        missing = _missing_words(doc + "\n" + init_doc, _named_parameters(obj))
        if missing and doc:
            gaps[name] = " ".join(missing)
    for member, value in public_members(obj).items() if inspect.isclass(obj) else ():
        member_doc = _own_doc(value)
        func = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
        missing = _missing_words(member_doc, _named_parameters(func))
        if not member_doc:
            gaps[f"{name}.{member}"] = "no docstring"
        elif missing:
            gaps[f"{name}.{member}"] = " ".join(missing)
    return gaps


def all_gaps() -> dict[str, str]:
    return {k: v for name in thalovant.__all__ for k, v in docstring_gaps(name, getattr(thalovant, name)).items()}


def known_gaps() -> dict[str, str]:
    """``_KNOWN_GAPS`` as a dict (an indented line continues the one above)."""
    lines = (line.split(": ", 1) for line in re.sub(r"\n\s+", " ", _KNOWN_GAPS.strip()).splitlines())
    return {key: value for key, value in lines}


def doc_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


# ---- the reference pages ------------------------------------------------------------------------------


def test_every_public_name_has_a_reference_entry() -> None:
    found = directives(reference_pages())
    missing = [name for name in thalovant.__all__ if f"thalovant.{name}" not in found]
    assert not missing, f"no `::: thalovant.<name>` directive in docs/reference/ for: {missing}"


def test_every_directive_names_a_public_object() -> None:
    """Pages name objects as users import them; anything else must at least still exist."""
    found = directives(reference_pages())
    assert len(found) >= len(thalovant.__all__)
    stale = [f"{page}: {target}" for target, page in found.items() if not resolve(target)]
    assert not stale, f"reference directives that name nothing: {stale}"
    internal = [t for t in found if t.removeprefix("thalovant.") not in thalovant.__all__]
    assert not internal, f"reference the public name (thalovant.X), not the defining module: {internal}"


# ---- the docstrings -----------------------------------------------------------------------------------


def test_public_classes_and_functions_have_docstrings() -> None:
    missing = [k for k, v in all_gaps().items() if "." not in k and v == "no docstring"]
    assert not missing, f"public names without a docstring: {missing}"


def test_public_docstrings_name_every_parameter_and_member() -> None:
    """Constructors and public methods document their parameters; only the listed gaps are tolerated."""
    found, known = all_gaps(), known_gaps()
    new = sorted(f"{k}: {v}" for k, v in found.items() if known.get(k) != v)
    fixed = sorted(f"{k}: {v}" for k, v in known.items() if found.get(k) != v)
    assert not new, f"undocumented (write the docstring; do not add to _KNOWN_GAPS): {new}"
    assert not fixed, f"_KNOWN_GAPS lists gaps that are gone: delete these lines: {fixed}"


def test_the_checks_catch_missing_docs(tmp_path: Path) -> None:
    class Widget:
        """A widget made of ``parts``."""

        def __init__(self, parts: int, colour: str = "red") -> None:
            self.parts = parts

        def paint(self, colour: str, *, coats: int = 1) -> None:
            """Paint it ``colour``."""

        def polish(self) -> None:
            pass

        @property
        def shiny(self) -> bool:
            return True

    assert docstring_gaps("Widget", Widget) == {
        "Widget": "colour",
        "Widget.paint": "coats",
        "Widget.polish": "no docstring",
        "Widget.shiny": "no docstring",
    }

    def helper(x: int) -> int:
        return x

    assert docstring_gaps("helper", helper) == {"helper": "no docstring"}
    page = tmp_path / "ref.md"
    page.write_text("# Ref\n\n::: thalovant.ThalovantClient\n\ntext ::: not.this\n", "utf-8")
    assert directives([page]) == {"thalovant.ThalovantClient": "ref.md"}
    assert resolve("thalovant.ThalovantClient.ask") and not resolve("thalovant.ThalovantClient.nope")
    assert not resolve("thalovant.no_such_module.Thing")
    text = "`core/wire/` and `thalovant/cli.py`, not `corelike/`, `x/core/` or api.thalovant.com"
    assert [m.group(1) for m in _FOLDER.finditer(text)] == ["core/wire/", "cli.py"]
    assert [m.group(0) for m in _DOTTED.finditer(text + " thalovant.core.wire")] == ["thalovant.core.wire"]


# ---- paths written in the docs ------------------------------------------------------------------------


def test_module_paths_in_the_docs_exist() -> None:
    stale = []
    for page in doc_pages():
        for n, line in enumerate(page.read_text("utf-8").splitlines(), 1):
            where = f"{page.relative_to(ROOT)}:{n}"
            stale += [f"{where}: {m.group(0)}" for m in _DOTTED.finditer(line) if not resolve(m.group(0))]
            folders = (m.group(1) for m in _FOLDER.finditer(line))
            stale += [f"{where}: {f}" for f in folders if not (ROOT / "thalovant" / f).exists()]
    assert not stale, f"the docs name paths that do not exist (modules move: name the public API): {stale}"


def test_architecture_page_names_every_folder() -> None:
    page = (DOCS / "architecture.md").read_text("utf-8")
    package = ROOT / "thalovant"
    folders = [
        f"{init.parent.relative_to(package).as_posix()}/"
        for init in package.glob("*/*/__init__.py")
        if init.parent.parent.name in ("core", "shell")
    ]
    folders += ["core/", "shell/", "testing/"]
    missing = [f for f in sorted(folders) if f"`{f}`" not in page]
    assert not missing, f"docs/architecture.md does not describe: {missing}"


# ---- the built site -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    if not mkdocs.exists():
        pytest.skip("mkdocs is not installed in this venv")
    pytest.importorskip("mkdocstrings_handlers.python", reason="install the docs extra: pip install -e '.[docs]'")
    site = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "-q", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return done, site


def test_mkdocs_build_is_strict_clean(built_site: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, site = built_site
    assert done.returncode == 0, done.stderr[-3000:]
    assert (site / "index.html").is_file()


def test_built_reference_has_an_entry_for_every_public_name(
    built_site: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, site = built_site
    assert done.returncode == 0, done.stderr[-3000:]
    html = "\n".join(p.read_text("utf-8") for p in (site / "reference").rglob("*.html"))
    missing = [name for name in thalovant.__all__ if f'id="thalovant.{name}"' not in html]
    assert not missing, f"the built reference has no entry for: {missing}"
    assert ":class:`" not in html and ":meth:`" not in html, "a Sphinx role was rendered verbatim"


if __name__ == "__main__":  # python -m tests.test_docs_reference: today's gaps, in _KNOWN_GAPS form
    for key, value in sorted(all_gaps().items()):
        print(textwrap.fill(f"{key}: {value}", width=110, subsequent_indent="    ", break_on_hyphens=False))
