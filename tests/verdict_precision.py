"""A scan of the stored result tables for verdicts that contradict the value they print.

The chapters judge themselves against bars ("gzip >= 2.5x smaller", "loses <= 2 points")
in markdown tables of ``| bar | measured | status |``. A status computed from the unrounded
value can contradict the figure the reader sees: 2.4961x is "not met" against 2.5x, but
printed as "2.50x" it reads as met. This scan re-judges every such row from the printed
figure and reports the rows where the two disagree.

What is checked, per row of a table whose last column says ``met`` or ``not met``:

- the bar is the first cell and names one threshold with a comparison and a unit:
  ``>= 2.5x``, ``<= 2 points``, ``≥ 4x``, ``within 1 point`` (means ``<=``); a bar that
  "loses" or "drops" ``<= N points`` is about the loss, so a printed change ``-2.45 points``
  is a loss of 2.45;
- every figure in the measured cell printed with the same unit, or as a signed change
  compared with something (``2.496x``; ``+0.95 points vs dense, +0.00 vs the control``: both,
  since a bar met must hold for each), taken as printed; figures inside an interval ``(95 % CI a-b)`` are not figures of the value;
- ``met`` must hold for every such figure, ``not met`` must fail for at least one.

Rows whose status is statistical and undecided ("undecided", "not distinguishable"), bars
without a threshold of that form, and measured cells without a figure in the bar's unit are
not judged here (the statistical verdicts are checked by :mod:`mobileopt_ref.stats`' tests).
"""

from __future__ import annotations

import dataclasses
import json
import re

_NUMBER = r"[+-−]?\d+(?:,\d{3})*(?:\.\d+)?"
_BAR = re.compile(rf"(>=|<=|≥|≤|within)\s*({_NUMBER})\s*(x|points?|%)(?![A-Za-z])")
_INTERVAL = re.compile(r"\(\s*95\s*%\s*CI[^)]*\)")
_STATUS = re.compile(r"^\**\s*(not met|met)\b", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Row:
    where: str
    bar: str
    measured: str
    status: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: '{self.bar}' | '{self.measured}' | '{self.status}': {self.why}"


def _float(text: str) -> float:
    return float(text.replace(",", "").replace("−", "-"))


def _figures(measured: str, unit: str) -> list:
    text = _INTERVAL.sub("", measured)
    unit_re = "points?" if unit.startswith("point") else re.escape(unit)
    # A figure in the unit ("2.496x", "-2.10 points"), or a signed change compared with
    # something ("-3.05 vs the control"), which carries the unit of the figure before it.
    pattern = rf"({_NUMBER})\s*{unit_re}(?![A-Za-z])|([+-−]\d+(?:\.\d+)?)\s+vs\b"
    return [_float(m.group(1) or m.group(2)) for m in re.finditer(pattern, text)]


def judge_row(bar: str, measured: str, status: str) -> str | None:
    """Returns why the row's status contradicts its printed figures, or None if it does not
    (or the row is not one this scan can judge)."""
    s = _STATUS.match(status.strip())
    if s is None:
        return None
    met = s.group(1).lower() == "met"
    b = _BAR.search(bar)
    if b is None:
        return None
    op, threshold, unit = b.group(1), _float(b.group(2)), b.group(3)
    at_least = op in (">=", "≥")
    figures = _figures(measured, unit)
    if not figures:
        return None
    if re.search(r"\b(loses|drops|lose|drop)\b", bar[: b.start()]):
        figures = [-f for f in figures]  # a printed change of -2.45 points is a loss of 2.45
    holds = [f >= threshold if at_least else f <= threshold for f in figures]
    if met and not all(holds):
        return f"'met', but the printed {figures} does not satisfy {op} {threshold:g} {unit}"
    if not met and all(holds):
        return f"'not met', but the printed {figures} satisfies {op} {threshold:g} {unit}"
    return None


def _cells(line: str) -> list:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def scan_markdown(where: str, text: str) -> list:
    """Scans the markdown tables in ``text``; returns the contradicting :class:`Row` list."""
    found = []
    for line in text.splitlines():
        if not line.lstrip().startswith("|") or re.match(r"^\s*\|[\s|:-]+\|\s*$", line):
            continue
        cells = _cells(line)
        if len(cells) < 3:
            continue
        why = judge_row(cells[0], " ".join(cells[1:-1]), cells[-1])
        if why:
            found.append(Row(where, cells[0], " ".join(cells[1:-1]), cells[-1], why))
    return found


def scan_notebook(path) -> list:
    """Scans every markdown output of a stored notebook."""
    nb = json.loads(open(path, encoding="utf-8").read())
    found = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            md = out.get("data", {}).get("text/markdown")
            if md:
                found += scan_markdown(f"{path.name} cell {i}", "".join(md))
    return found
