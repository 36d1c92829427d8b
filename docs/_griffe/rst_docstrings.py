"""A Griffe extension for the API reference: the package's Sphinx-flavoured docstrings as Markdown.

The docstrings are written for Sphinx: field lists (``:param x:``), which mkdocstrings
parses itself (``docstring_style: sphinx`` in mkdocs.yml), and three things it does not
read, which this extension rewrites before the pages are rendered:

* cross-reference roles, ``:class:`~requests_criteo.TokenCache```, ``:meth:`issue_code```:
  the target is looked up from the object outward (its class, its module, the package) and
  becomes an optional autorefs link, which falls back to plain code when the target is not
  in the reference (a private module, ``requests.HTTPError``), so it never fails the build;
* literal blocks introduced by ``::``: fenced code, Python when it parses as Python;
* ``#:`` comments above a constant: that constant's docstring, as Sphinx's autodoc reads it.

It changes only the docstrings mkdocstrings renders, never the package. mkdocs.yml loads it
by path; it is not part of the site (``exclude_docs``).
"""

from __future__ import annotations

import ast
import functools
import html
import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(
    r":(?:py:)?(?P<role>class|func|meth|mod|attr|exc|data|obj|const):"
    r"`(?P<tilde>~?)(?P<target>[\w.]+)`"
)
_CALLABLE_ROLES = frozenset({"func", "meth"})


class RestructuredTextDocstrings(griffe.Extension):
    """Rewrite roles, literal blocks and ``#:`` comments once the package is loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is None and obj.is_attribute:
                _docstring_from_comment(obj)
            if obj.docstring is not None:
                text = _literal_blocks(obj.docstring.value)
                obj.docstring.value = _ROLE.sub(
                    functools.partial(_link, obj=obj, loader=loader), text
                )

    # The same hook under its Griffe 1 name; the rewriting is idempotent.
    on_package_loaded = on_package


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias:
            found.extend(_walk(member))  # type: ignore[arg-type]
    return found


def _link(match: re.Match[str], *, obj: griffe.Object, loader: griffe.GriffeLoader) -> str:
    role, target = match["role"], match["target"]
    shown = target.rsplit(".", 1)[-1] if match["tilde"] else target.lstrip(".")
    if role in _CALLABLE_ROLES:
        shown += "()"
    code = f"<code>{html.escape(shown)}</code>"
    identifier = _resolve(target, obj, loader)
    if identifier is None:
        return code
    return f'<autoref identifier="{html.escape(identifier)}" optional>{code}</autoref>'


def _resolve(target: str, obj: griffe.Object, loader: griffe.GriffeLoader) -> str | None:
    """The path of the object *target* names, seen from *obj*; ``None`` if unknown."""
    if target.startswith("."):  # relative to the package, as in an import
        module = obj.module
        base: griffe.Object | None = module if module.is_init_module else module.parent
        for _ in range(len(target) - len(target.lstrip(".")) - 1):
            base = base.parent if base is not None else None
        candidates = [f"{base.path}.{target.lstrip('.')}"] if base is not None else []
    else:
        candidates = []
        scope: griffe.Object | None = obj
        while scope is not None:
            candidates.append(f"{scope.path}.{target}")
            scope = scope.parent
        candidates.append(target)
    for path in candidates:
        try:
            found = loader.modules_collection[path]
        except Exception:  # noqa: S112 - not there, or an alias to another package
            continue
        try:
            return str(found.final_target.path if found.is_alias else found.path)
        except Exception:  # an alias that leaves the package: keep its own path
            return str(found.path)
    return None


def _literal_blocks(text: str) -> str:
    """Turn reST literal blocks (a paragraph ending with ``::``) into fenced code."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip()
        if not stripped.endswith("::"):
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        if stripped.strip() != "::":
            out.append(stripped[:-1])  # "Example::" reads "Example:"
        i += 1
        block: list[str] = []
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
        ):
            block.append(lines[i])
            i += 1
        while block and not block[-1].strip():
            block.pop()
        code = textwrap.dedent("\n".join(block)).strip("\n")
        pad = " " * indent
        language = "python" if _parses(code) else "text"
        out.extend(["", f"{pad}```{language}"])
        out.extend(f"{pad}{c}" if c else "" for c in code.split("\n"))
        out.extend([f"{pad}```", ""])
    return "\n".join(out)


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def _docstring_from_comment(attr: griffe.Object) -> None:
    """Give *attr* the ``#:`` comment lines just above its assignment, if any."""
    if attr.lineno is None or attr.filepath is None or isinstance(attr.filepath, list):
        return
    try:
        source = attr.lines_collection[attr.filepath]
    except KeyError:
        return
    comment: list[str] = []
    number = attr.lineno - 1  # the line above, 1-based
    while number >= 1 and source[number - 1].lstrip().startswith("#:"):
        comment.insert(0, source[number - 1].lstrip()[2:].strip())
        number -= 1
    if comment:
        attr.docstring = griffe.Docstring(
            " ".join(comment), lineno=number + 1, endlineno=attr.lineno - 1, parent=attr
        )
