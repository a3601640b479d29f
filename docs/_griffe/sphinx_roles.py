"""Griffe extension for the API reference: Sphinx roles in docstrings become Markdown.

The docstrings write cross-references the Sphinx way (``:class:`~thalovant.ThalovantIdentity```,
``:meth:`AsyncThalovantClient.ask```); mkdocstrings would print them verbatim. Once the package is
loaded, every role becomes either

* a cross-reference to the API reference, when it names a public name of ``thalovant`` (``X``,
  ``thalovant.X`` or ``~thalovant.X``, optionally followed by one public member: ``X.method``),
  because exactly those are rendered on the reference pages; or
* a code span, for everything else (internal modules move; they are not rendered).

Used from mkdocs.yml (``extensions: [docs/_griffe/sphinx_roles.py]``); ``exclude_docs`` keeps this
file out of the site.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import griffe

PACKAGE = "thalovant"
_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|exc|data|mod|obj|const):`(~?)\.?([^`<>]+?)`")


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    """``obj`` and everything defined inside it (aliases are skipped: their targets are visited)."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)  # type: ignore[arg-type]


def _public_target(package: griffe.Object, path: str) -> str | None:
    """``thalovant.X[.member]`` when ``path`` names a rendered public object, else None."""
    parts = path.removeprefix(PACKAGE + ".").split(".")
    if len(parts) > 2 or any(not p or p.startswith("_") for p in parts):
        return None
    try:
        obj: Any = package.members[parts[0]]
        if obj.is_module:
            return None
        if len(parts) == 2:
            obj = obj.members[parts[1]]
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    return ".".join([PACKAGE, *parts])


def convert(text: str, package: griffe.Object) -> str:
    """``text`` with every Sphinx role replaced by a Markdown cross-reference or code span."""

    def one(match: re.Match[str]) -> str:
        short, path = match.groups()
        shown = path.rsplit(".", 1)[-1] if short else path
        target = _public_target(package, path)
        if target is None:
            return f"`{shown}`"
        if path.startswith(PACKAGE + "."):
            shown = path.rsplit(".", 1)[-1] if short else path.removeprefix(PACKAGE + ".")
        return f"[`{shown}`][{target}]"

    return _ROLE.sub(one, text)


class SphinxRoles(griffe.Extension):
    """Rewrite the docstrings of the ``thalovant`` package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != PACKAGE:
            return
        for obj in _objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = convert(obj.docstring.value, pkg)
