"""The benchmark's report: sections of tables, the targets, machine facts; text, JSON, Markdown.

A :class:`Report` holds the machine facts, one :class:`Section` per measurement (a title,
a table of formatted cells, notes, and the raw figures for JSON) and the :class:`Check`
of each target. :func:`text`, :func:`markdown` and :func:`as_json` render it.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["Check", "Report", "Section", "as_json", "machine", "markdown"]

PACKAGES = (
    "requests-criteo",
    "requests",
    "urllib3",
    "oauthlib",
    "requests-oauthlib",
    "Authlib",
    "requests-auth",
    "cachetools",
    "filelock",
    "redis",
)


@dataclass
class Section:
    """One measurement: a table, notes, and the raw figures."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    data: Any = None


@dataclass
class Check:
    """One target: ``ok`` is ``None`` when it could not be measured (skipped)."""

    section: str
    target: str
    measured: str
    ok: bool | None


@dataclass
class Report:
    """Everything one run produced."""

    machine: dict[str, str]
    sections: list[Section] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def missed(self) -> list[Check]:
        """The targets missed."""
        return [c for c in self.checks if c.ok is False]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine(argv: list[str]) -> dict[str, str]:
    """Facts about this machine and run."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    facts = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, "-m", "benchmarks", *argv]),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": f"{os.cpu_count()} (usable: {affinity})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }
    facts.update({package: _version(package) for package in PACKAGES})
    return facts


def _widths(columns: list[str], rows: list[list[str]]) -> list[int]:
    return [max(len(str(r[i])) for r in [columns, *rows]) for i in range(len(columns))]


def _table(columns: list[str], rows: list[list[str]]) -> list[str]:
    widths = _widths(columns, rows)

    def line(cells: list[str]) -> str:
        out = []
        for index, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            out.append(str(cell).ljust(width) if index == 0 else str(cell).rjust(width))
        return "  ".join(out).rstrip()

    return [line(columns), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def text_section(section: Section) -> str:
    """One section as plain text."""
    lines = [section.title, "=" * len(section.title)]
    if section.columns:
        lines.extend(_table(section.columns, section.rows))
    lines.extend(f"* {note}" for note in section.notes)
    return "\n".join(lines)


def text_machine(facts: dict[str, str]) -> str:
    """The machine facts as plain text."""
    width = max(len(k) for k in facts)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in facts.items())


def text_checks(checks: list[Check]) -> str:
    """The targets as plain text."""
    lines = ["Targets", "======="]
    for check in checks:
        mark = {True: "ok    ", False: "MISSED", None: "skip  "}[check.ok]
        lines.append(f"{mark}  [{check.section}] {check.target}: {check.measured}")
    return "\n".join(lines)


def _md_cell(cell: str) -> str:
    return str(cell).replace("|", "\\|")


def markdown(report: Report) -> str:
    """The whole report as Markdown."""
    out = ["# requests-criteo benchmarks", ""]
    out.extend(["| | |", "|---|---|"])
    out.extend(f"| {k} | `{_md_cell(v)}` |" for k, v in report.machine.items())
    for section in report.sections:
        out.extend(["", f"## {section.title}", ""])
        if section.columns:
            out.append("| " + " | ".join(_md_cell(c) for c in section.columns) + " |")
            out.append("|" + "|".join(["---"] + ["---:"] * (len(section.columns) - 1)) + "|")
            out.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in section.rows)
            out.append("")
        out.extend(f"- {note}" for note in section.notes)
    out.extend(["", "## Targets", "", "| | section | target | measured |", "|---|---|---|---|"])
    for check in report.checks:
        mark = {True: "ok", False: "**missed**", None: "skipped"}[check.ok]
        out.append(
            f"| {mark} | {check.section} | {_md_cell(check.target)} | {_md_cell(check.measured)} |"
        )
    out.append("")
    return "\n".join(out)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def as_json(report: Report) -> str:
    """The whole report as JSON: machine, sections (with raw data), checks."""
    return json.dumps(
        {
            "machine": report.machine,
            "seconds": round(report.seconds, 1),
            "sections": [_plain(s) for s in report.sections],
            "checks": [_plain(c) for c in report.checks],
            "missed": len(report.missed),
        },
        indent=2,
    )
