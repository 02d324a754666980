"""A scan of notebook code for claims nothing computes: asserts on literals, and status
columns of bars tables written as literals.

Two patterns are reported:

- ``assert <constant>`` (``assert True``, ``assert "done"``): it cannot fail.
- In a list of tuples bound to a name that contains ``bar``, ``planned`` or ``checks``
  (the chapters' "bars" tables: ``(what, measured, status)``), a status, the tuple's last
  element, that is a constant (``True``, ``"done"``, ``"checked"``, ``"asserted"``):
  a verdict must be computed from the measured value. ``list.append((...))`` on such a
  name counts too.
"""

from __future__ import annotations

import ast
import dataclasses
import re

import nbformat

TABLE_NAME = re.compile(r"bar|planned|checks", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Finding:
    cell: int
    line: int
    what: str

    def __str__(self) -> str:
        return f"code cell {self.cell}, line {self.line}: {self.what}"


def _literal_status(tup: ast.Tuple) -> bool:
    return len(tup.elts) >= 2 and isinstance(tup.elts[-1], ast.Constant)


def _rows(node) -> list:
    if isinstance(node, (ast.List, ast.Tuple)):
        return [e for e in node.elts if isinstance(e, ast.Tuple)]
    return []


def scan_sources(sources) -> list:
    """Scans code cell sources; returns the :class:`Finding` list (cells numbered from 0)."""
    findings = []
    for number, source in enumerate(sources):
        code = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Assert) and isinstance(node.test, ast.Constant):
                findings.append(Finding(number, node.lineno, f"assert on the literal {node.test.value!r}"))
            rows = []
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and TABLE_NAME.search(t.id) for t in node.targets
            ):
                rows = _rows(node.value)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in ("append", "extend") and isinstance(node.func.value, ast.Name)
                  and TABLE_NAME.search(node.func.value.id) and node.args):
                arg = node.args[0]
                rows = [arg] if isinstance(arg, ast.Tuple) else _rows(arg)
            for row in rows:
                if _literal_status(row):
                    findings.append(Finding(number, row.lineno,
                                            f"a bars-table status written as the literal {row.elts[-1].value!r}"))
    return findings


def scan_notebook(path) -> list:
    nb = nbformat.read(path, as_version=4)
    return scan_sources([c.source for c in nb.cells if c.cell_type == "code"])
