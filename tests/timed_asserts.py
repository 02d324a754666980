"""Finds ``assert`` statements in notebooks whose expression depends on a timed quantity.

The book's rule: an ``assert`` fails only when the code or a dependency is wrong, never
because the CPU is slower, faster, different or busy. Timed results are measured and
judged by :mod:`mobileopt_ref.stats`, then glued as verdicts; they are never asserted.

How a timed value is recognised (a taint analysis over the notebook's code cells, in
order, on Python's syntax tree):

* *sources*: a call of a function in :data:`TIMED_CALLS` (the library's timing and
  process-measuring functions, ``time.perf_counter`` and friends), or an attribute in
  :data:`TIMED_ATTRS` (``.latency``, ``.p50_ms``, ``.dropped``, ...), read from anything;
* *propagation*: a name assigned (also by ``for``, ``with``, augmented assignment or a
  comprehension) from an expression that contains a timed value or a timed name becomes
  timed; assigning it an untimed value later makes it untimed again; a function defined
  in the notebook that calls a timed function becomes a timed function;
* subscripts follow their container only: ``records[name]`` is timed if ``records`` is,
  whatever ``name`` is.

Anything asserted about an expression that contains a timed value or name is reported,
unless the assert's first line ends with a comment ``# untimed: <why>`` that says why the
value does not depend on the machine's speed (a modelled figure that shares an attribute
name with a timed one, say); :func:`exemptions` lists those for review.
Verdicts computed by :mod:`mobileopt_ref.stats` (``latency_ratio``, ``mcnemar``) are timed
too, so asserting a verdict is caught as well.
"""

from __future__ import annotations

import ast
import dataclasses

import nbformat

TIMED_CALLS = frozenset({
    # mobileopt_ref: anything that runs a clock or reads process resources
    "compare_latency", "measure_latency", "measure_variants_latency", "measure_long_runs",
    "measure_cold_start", "run_timeline", "measure_cpu_time", "measure_rapl", "measure_roofline",
    "profile_ops", "measure_rss", "speedup", "speedup_factors", "latency_ratio", "tail_stats",
    "cpu_time_energy", "leak_probe",
    # the standard library's clocks and resource readers
    "perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns", "process_time",
    "process_time_ns", "thread_time", "getrusage", "memory_info",
})
"""Calls whose result depends on this machine's speed or load."""

TIMED_ATTRS = frozenset({
    "latency", "samples_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms",
    "ci95_ms", "std_ms", "jitter_ms", "sum_ms", "whole", "dropped", "dropped_refreshes",
    "end_to_end_ms", "inferences", "ui_frames", "median_ms", "warm", "cpu_ms", "rss_mib",
    "seconds", "train_seconds",
})
"""Attributes that hold timed values, whatever object they are read from."""


@dataclasses.dataclass(frozen=True)
class Finding:
    """One assert on a timed value: where it is and what made it timed."""

    cell: int
    line: int
    source: str
    because: str

    def __str__(self) -> str:
        return f"cell {self.cell}, line {self.line}: `{self.source}` uses {self.because}"


class _Scanner:
    def __init__(self):
        self.timed_names: set = set()
        self.timed_functions: set = set(TIMED_CALLS)
        self.findings: list = []
        self.exempt: list = []
        self.cell = 0

    # --- what makes an expression timed -------------------------------------------
    def why_timed(self, node) -> str | None:
        """A reason the expression is timed, or None."""
        if node is None:
            return None
        if isinstance(node, ast.Subscript):
            return self.why_timed(node.value)
        if isinstance(node, ast.Name):
            return f"the timed name `{node.id}`" if node.id in self.timed_names else None
        if isinstance(node, ast.Attribute):
            if node.attr in TIMED_ATTRS:
                return f"the timed attribute `.{node.attr}`"
            return self.why_timed(node.value)
        if isinstance(node, ast.Call):
            func = node.func
            name = _call_name(node)
            if name in self.timed_functions:
                return f"a call of the timed function `{name}`"
            for part in [func, *node.args, *(k.value for k in node.keywords)]:
                why = self.why_timed(part)
                if why:
                    return why
            return None
        if isinstance(node, (ast.Lambda,)):
            return None
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            saved = set(self.timed_names)
            for gen in node.generators:
                if self.why_timed(gen.iter):
                    self.timed_names |= _target_names(gen.target)
                else:  # the comprehension rebinds its targets: an earlier timed name is shadowed
                    self.timed_names -= _target_names(gen.target)
            parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            parts += [cond for gen in node.generators for cond in gen.ifs]
            parts += [gen.iter for gen in node.generators]
            why = next((w for w in map(self.why_timed, parts) if w), None)
            self.timed_names = saved
            return why
        for child in ast.iter_child_nodes(node):
            why = self.why_timed(child)
            if why:
                return why
        return None

    # --- statements, in order ---------------------------------------------------------
    def assign(self, targets, value_timed: bool):
        for target in targets:
            names = _target_names(target)
            if isinstance(target, (ast.Subscript, ast.Attribute)):
                # d[k] = timed makes d timed; d[k] = untimed leaves d as it was
                base = _base_name(target)
                if value_timed and base:
                    self.timed_names.add(base)
                continue
            if value_timed:
                self.timed_names |= names
            else:
                self.timed_names -= names

    def visit(self, stmt, source: str):
        if isinstance(stmt, ast.Assert):
            why = self.why_timed(stmt.test)
            line = source.splitlines()[stmt.lineno - 1]
            if why and UNTIMED in line:
                reason = line.split(UNTIMED, 1)[1].strip()
                self.exempt.append(Finding(self.cell, stmt.lineno, line.split(UNTIMED)[0].strip(), reason))
                return
            if why:
                text = ast.get_source_segment(source, stmt) or ast.unparse(stmt)
                self.findings.append(Finding(self.cell, stmt.lineno, " ".join(text.split()), why))
            return
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if any(isinstance(n, ast.Call) and _call_name(n) in self.timed_functions
                   for n in ast.walk(stmt)):
                self.timed_functions.add(stmt.name)
            for inner in stmt.body:
                self.visit(inner, source)
            return
        if isinstance(stmt, ast.Assign):
            self.assign(stmt.targets, bool(self.why_timed(stmt.value)))
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self.assign([stmt.target], bool(self.why_timed(stmt.value)))
        elif isinstance(stmt, ast.AugAssign):
            if self.why_timed(stmt.value):
                self.assign([stmt.target], True)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            if self.why_timed(stmt.iter):
                self.assign([stmt.target], True)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                if item.optional_vars is not None and self.why_timed(item.context_expr):
                    self.assign([item.optional_vars], True)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            # container.append(timed), container.update(timed), ...
            call = stmt.value
            if isinstance(call.func, ast.Attribute) and any(self.why_timed(a) for a in call.args):
                base = _base_name(call.func.value)
                if base:
                    self.timed_names.add(base)
        for field in ("body", "orelse", "finalbody", "handlers"):
            for inner in getattr(stmt, field, []) or []:
                if isinstance(inner, ast.ExceptHandler):
                    for s in inner.body:
                        self.visit(s, source)
                else:
                    self.visit(inner, source)


UNTIMED = "# untimed:"


def _call_name(call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _target_names(target) -> set:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def _base_name(node) -> str | None:
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _code(source: str) -> str:
    # IPython magics and shell escapes are not Python; blank them out.
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())


def scan_sources(sources, *, exempt: bool = False) -> list:
    """Scans code cell sources in order; returns the :class:`Finding` list.

    With ``exempt=True`` it returns the asserts exempted by ``# untimed:`` instead, each
    with its stated reason as ``because``.

    Raises:
        SyntaxError: if a cell is not valid Python (with the cell number in the message).
    """
    scanner = _Scanner()
    for number, source in enumerate(sources):
        scanner.cell = number
        code = _code(source)
        try:
            tree = ast.parse(code)
        except SyntaxError as err:
            raise SyntaxError(f"code cell {number}: {err}") from err
        for stmt in tree.body:
            scanner.visit(stmt, code)
    return scanner.exempt if exempt else scanner.findings


def scan_notebook(path, *, exempt: bool = False) -> list:
    """Scans one ``.ipynb`` file; code cells are numbered from 0 in the order they appear."""
    nb = nbformat.read(path, as_version=4)
    return scan_sources([c.source for c in nb.cells if c.cell_type == "code"], exempt=exempt)
