"""Result tables as text a researcher can paste: console, Markdown, LaTeX (booktabs) or CSV.

A :class:`TextTable` holds raw values; each :class:`Column` says how a value is shown. CSV writes
the raw values (it round-trips), the other formats the shown text. Footnotes are a mark on a
row's first cell plus one note per mark. Pure Python (no numpy, no torch).
"""

from __future__ import annotations

import csv
import enum
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


class TableFormat(enum.StrEnum):
    """How a table is printed: ``console`` (aligned text), ``md``, ``latex`` or ``csv``."""

    console = "console"
    md = "md"
    latex = "latex"
    csv = "csv"


def significant(value: Any, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, trailing zeros kept (``1.00``, ``0.0123``).

    Integers (and floats with as many integer digits) are shown whole with thousands separators;
    None and NaN as ``n/a``.
    """
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, int) or abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    if value == 0:
        return "0"
    return f"{value:#.{digits}g}".rstrip(".")


def count(value: Any) -> str:
    """A whole number with thousands separators (``n/a`` for None)."""
    return "n/a" if value is None else f"{value:,.0f}"


@dataclass(frozen=True)
class Column:
    """One column: its header, how a value is shown, and its alignment (``l`` or ``r``).

    A header with ``\n`` is stacked over several lines in the console format (narrow columns
    such as ``sdk\ncycles``); the other formats join its lines with a space."""

    name: str
    show: Callable[[Any], str] = significant
    align: str = "r"

    @property
    def label(self) -> str:
        """The header on one line."""
        return " ".join(self.name.split("\n"))


@dataclass
class TextTable:
    """Rows of raw values under ``columns``; ``marks[i]`` footnotes row ``i`` (see ``notes``)."""

    columns: Sequence[Column]
    rows: list[list[Any]]
    title: str = ""
    marks: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, values: Sequence[Any], mark: str = "") -> None:
        """Append one row (one value per column), optionally footnoted with ``mark``."""
        if len(values) != len(self.columns):
            raise ValueError(f"row has {len(values)} values for {len(self.columns)} columns")
        self.rows.append(list(values))
        self.marks += [""] * (len(self.rows) - 1 - len(self.marks)) + [mark]

    def mark(self, index: int) -> str:
        return self.marks[index] if index < len(self.marks) else ""

    def shown(self) -> list[list[str]]:
        """Every cell as shown text."""
        return [
            [
                "" if isinstance(value, str) and not value else column.show(value)
                for column, value in zip(self.columns, row, strict=True)
            ]
            for row in self.rows
        ]

    def used_notes(self) -> list[tuple[str, str]]:
        used = {self.mark(i) for i in range(len(self.rows))}
        return [(mark, text) for mark, text in self.notes.items() if mark in used]

    def render(self, fmt: TableFormat | str) -> str:
        """The table as text in ``fmt``."""
        renderers = {
            TableFormat.console: to_console,
            TableFormat.md: to_markdown,
            TableFormat.latex: to_latex,
            TableFormat.csv: to_csv,
        }
        return renderers[TableFormat(fmt)](self)


def to_markdown(table: TextTable) -> str:
    """A GitHub pipe table; the title in bold above, footnotes below."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [f"**{cell(table.title)}**", ""] if table.title else []
    lines.append("| " + " | ".join(cell(c.label) for c in table.columns) + " |")
    lines.append("|" + "|".join("---:" if c.align == "r" else ":---" for c in table.columns) + "|")
    for index, row in enumerate(table.shown()):
        mark = table.mark(index)
        cells = [cell(text) for text in row]
        if mark:
            cells[0] += f"<sup>{mark}</sup>"
        lines.append("| " + " | ".join(cells) + " |")
    notes = table.used_notes()
    if notes:
        lines.append("")
        lines += [f"<sup>{mark}</sup> {cell(text)}  " for mark, text in notes]
    return "\n".join(lines)


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "±": r"$\pm$",
}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (``->`` becomes an arrow)."""
    parts = text.split("->")
    escaped = ["".join(_LATEX_SPECIAL.get(char, char) for char in part) for part in parts]
    return "$\\to$".join(escaped)


def to_latex(table: TextTable) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), footnotes below it."""
    spec = "".join(c.align for c in table.columns)
    lines = []
    if table.title:
        lines.append(f"% {latex_escape(table.title)}")
    lines += [
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(latex_escape(c.label) for c in table.columns) + " \\\\",
        "\\midrule",
    ]
    for index, row in enumerate(table.shown()):
        cells = [latex_escape(text) for text in row]
        mark = table.mark(index)
        if mark:
            cells[0] += f"$^{{{mark}}}$"
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    for mark, text in table.used_notes():
        lines.append(f"\\par{{\\footnotesize $^{{{mark}}}$ {latex_escape(text)}}}")
    return "\n".join(lines)


def to_csv(table: TextTable) -> str:
    """Header and raw values (empty for None); a ``note`` column when a row is footnoted."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    notes = table.notes
    with_notes = any(table.mark(i) for i in range(len(table.rows)))
    writer.writerow([c.label for c in table.columns] + (["note"] if with_notes else []))
    for index, row in enumerate(table.rows):
        values = ["" if value is None else value for value in row]
        if with_notes:
            values.append(notes.get(table.mark(index), ""))
        writer.writerow(values)
    return buffer.getvalue()


def to_console(table: TextTable) -> str:
    """Aligned plain text (a title line, the header, a rule, the rows, the footnotes)."""
    shown = table.shown()
    for index, row in enumerate(shown):
        if table.mark(index):
            row[0] += f" ({table.mark(index)})"
    headers = [c.name.split("\n") for c in table.columns]
    depth = max((len(parts) for parts in headers), default=1)
    headers = [[""] * (depth - len(parts)) + parts for parts in headers]  # bottom-aligned
    widths = [
        max([len(part) for part in headers[i]] + [len(row[i]) for row in shown])
        for i in range(len(table.columns))
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            text.rjust(width) if column.align == "r" else text.ljust(width)
            for text, width, column in zip(cells, widths, table.columns, strict=True)
        ).rstrip()

    lines = [table.title] if table.title else []
    lines += [line([parts[level] for parts in headers]) for level in range(depth)]
    lines.append("  ".join("-" * w for w in widths))
    lines += [line(row) for row in shown]
    lines += [f"({mark}) {text}" for mark, text in table.used_notes()]
    return "\n".join(lines)


def render_all(tables: Sequence[TextTable], fmt: TableFormat | str) -> str:
    """Several tables in one text, separated by a blank line (CSV: one block per table)."""
    return "\n\n".join(table.render(fmt).rstrip("\n") for table in tables) + "\n"
