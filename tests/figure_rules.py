"""A scan of the notebooks for figures without a caption, a label or the axis check.

Every code cell whose stored outputs hold an image is a figure of the book. It must:

- carry a caption and a label in its metadata, ``{"mystnb": {"figure": {"caption": ...,
  "name": "fig-..."}}}``, which myst-nb renders as a numbered figure that prose can
  reference with ``{numref}``; labels are unique across the book;
- show its figure through :func:`mobileopt_ref.plotting.show`, which refuses a figure whose
  axes lack labels with units (a bare ``plt.show()``, or a figure left for the inline
  backend to show, escapes that check);
- show one figure (a cell with two images gets one caption for both).
"""

from __future__ import annotations

import dataclasses
import re

import nbformat

IMAGE_TYPES = ("image/png", "image/svg+xml", "image/jpeg")


@dataclasses.dataclass(frozen=True)
class Finding:
    cell: int
    what: str

    def __str__(self) -> str:
        return f"cell {self.cell}: {self.what}"


def scan_cells(cells) -> list:
    """Findings for a notebook's cells (nbformat cells or plain dicts), numbered from 0."""
    findings = []
    for number, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        images = sum(any(t in out.get("data", {}) for t in IMAGE_TYPES) for out in cell.get("outputs", []))
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if re.search(r"\bplt\.show\(", source):
            findings.append(Finding(number, "plt.show() shows a figure unchecked: use plotting.show(fig)"))
        if not images:
            continue
        if images > 1:
            findings.append(Finding(number, f"{images} images in one cell: one figure per cell, one caption each"))
        if "plotting.show(" not in source:
            findings.append(Finding(number, "an image not shown through plotting.show(fig) (its axes are unchecked)"))
        figure = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
        if not str(figure.get("caption", "")).strip():
            findings.append(Finding(number, "a figure without metadata mystnb.figure.caption"))
        if not re.fullmatch(r"fig-[a-z0-9-]+", str(figure.get("name", ""))):
            findings.append(Finding(number, "a figure without metadata mystnb.figure.name of the form fig-..."))
    return findings


def scan_notebook(path) -> list:
    return scan_cells(nbformat.read(path, as_version=4).cells)


def figure_names(paths) -> list:
    """Every figure label of the notebooks, in order (duplicates kept, to be found)."""
    names = []
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            name = cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name")
            if name:
                names.append(name)
    return names
