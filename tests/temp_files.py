"""Finds temporary files and folders that nothing removes.

A notebook kernel is stopped, not exited, when an execution ends, so a
``tempfile.TemporaryDirectory`` that is only assigned is never cleaned up: chapter 8's
LiteRT-LM bundles left 361 MB in the temporary folder on every run until a disk filled
(stop 31's CI: "No space left on device"). A reader's laptop would fill the same way.

The rule, checked on Python's syntax tree of each notebook's code cells (as one source)
and of each library module: every call of ``mkdtemp``, ``mkstemp``,
``TemporaryDirectory`` or ``NamedTemporaryFile(..., delete=False)`` is either

* the context expression of a ``with`` item (removed when the block ends), or
* assigned to a target ``T`` (a name, ``fd, T`` for ``mkstemp``, or an attribute such as
  ``self._tmp``) that the same source removes: ``T.cleanup()``, ``shutil.rmtree(T, ...)``,
  ``os.remove(T)``, ``os.unlink(T)``, ``Path(T).unlink(...)``, ``T.unlink(...)``,
  ``os.replace(T, ...)``, ``T.rename(...)`` (moved into place), or
  ``atexit.register(shutil.rmtree, T)`` (removed when the process exits).

Anything else is reported with its cell (or line) so the author can add the removal.
"""

from __future__ import annotations

import ast
import dataclasses

import nbformat

MAKERS = frozenset({"mkdtemp", "mkstemp", "TemporaryDirectory", "NamedTemporaryFile"})
REMOVERS = frozenset({"rmtree", "remove", "unlink", "replace", "rename"})


@dataclasses.dataclass(frozen=True)
class Finding:
    """A temporary file or folder without a removal."""

    where: str
    line: int
    code: str

    def __str__(self) -> str:
        return f"{self.where} line {self.line}: {self.code}"


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _is_maker(call: ast.Call) -> bool:
    name = _name(call.func)
    if name not in MAKERS:
        return False
    if name == "NamedTemporaryFile":
        return any(k.arg == "delete" and isinstance(k.value, ast.Constant) and k.value.value is False
                   for k in call.keywords)
    return True


def _parents(tree: ast.AST) -> dict:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _targets(node: ast.AST, parents: dict) -> list:
    """The targets the made path is bound to (unparsed), or ``None`` if inside a ``with``."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.withitem) and parent.context_expr is node:
            return None
        if isinstance(parent, (ast.Assign, ast.AnnAssign)):
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            out = []
            for t in targets:
                # fd, tmp = mkstemp(): the path is the last element
                out.append(ast.unparse(t.elts[-1] if isinstance(t, ast.Tuple) else t))
            return out
        if isinstance(parent, ast.stmt):
            return []
        node = parent
    return []


def _removed(tree: ast.AST) -> set:
    """Unparsed expressions the source removes, renames or cleans up."""
    removed = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name == "cleanup" and isinstance(node.func, ast.Attribute):
            removed.add(ast.unparse(node.func.value))
        elif name == "register" and len(node.args) >= 2 and _name(node.args[0]) in REMOVERS:
            # atexit.register(shutil.rmtree, T): removed when the process exits
            removed.add(ast.unparse(node.args[1]))
        elif name in REMOVERS:
            if isinstance(node.func, ast.Attribute) and name in ("unlink", "rename", "replace"):
                owner = node.func.value
                # Path(tmp).unlink() / tmp.unlink() / tmp.rename(path)
                if isinstance(owner, ast.Call) and _name(owner.func) == "Path" and owner.args:
                    removed.add(ast.unparse(owner.args[0]))
                elif not isinstance(owner, ast.Name) or owner.id not in ("os", "shutil"):
                    removed.add(ast.unparse(owner))
            if node.args:
                removed.add(ast.unparse(node.args[0]))
    return removed


def scan_source(where: str, source: str, line_of=None) -> list:
    """Findings in one Python source (``line_of(n)`` maps a line to a cell label)."""
    tree = ast.parse(source)
    parents = _parents(tree)
    removed = _removed(tree)
    findings = []
    makers = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _is_maker(n)]
    for node in sorted(makers, key=lambda n: (n.lineno, n.col_offset)):
        targets = _targets(node, parents)
        if targets is None or (targets and any(t in removed for t in targets)):
            continue
        label, line = line_of(node.lineno) if line_of else (where, node.lineno)
        findings.append(Finding(label, line, ast.unparse(node)))
    return findings


def scan_sources(where: str, sources: list) -> list:
    """Findings over a notebook's code cells, read as one program (a cell may clean up a later one)."""
    lines, owner = [], []
    for cell, source in enumerate(sources):
        for n, text in enumerate(source.splitlines(), start=1):
            # IPython magics and shell escapes are not Python
            lines.append("pass" if text.lstrip().startswith(("%", "!")) else text)
            owner.append((cell, n))
        lines.append("")
        owner.append((cell, 0))
    try:
        return scan_source(where, "\n".join(lines),
                           line_of=lambda n: (f"{where} cell {owner[n - 1][0]}", owner[n - 1][1]))
    except SyntaxError as err:
        cell, line = owner[(err.lineno or 1) - 1]
        raise SyntaxError(f"{where} code cell {cell} line {line}: {err.msg}") from err


def scan_notebook(path) -> list:
    """Findings in a notebook's code cells."""
    nb = nbformat.read(str(path), as_version=4)
    # markdown cells count as empty code, so a finding names the notebook's own cell index
    return scan_sources(path.name, [c.source if c.cell_type == "code" else "" for c in nb.cells])
