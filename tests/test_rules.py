"""The book's rule, checked: no notebook asserts a timed quantity (tests/timed_asserts.py)."""

import json
from pathlib import Path

import pytest

import timed_asserts

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_assert_on_a_timed_quantity(path):
    findings = timed_asserts.scan_notebook(path)
    assert not findings, (
        f"{path.name} asserts timed quantities; measure them, judge them with mobileopt_ref.stats "
        "and glue the verdict instead (DESIGN rule, CONTRIBUTING.md):\n" + "\n".join(map(str, findings)))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exemption_gives_a_reason(path):
    for finding in timed_asserts.scan_notebook(path, exempt=True):
        assert len(finding.because.split()) >= 3, f"{path.name}: `# untimed:` without a reason: {finding}"


PLANTED = [
    # cell 0: measured side by side
    "from mobileopt_ref import compute, stats\n"
    "runs = compute.compare_latency({'a': a, 'b': b})\n"
    "ratio = compute.speedup(runs['a'], runs['b'])\n"
    "acc = 0.9\n",
    # cell 1: the planted asserts, one per way a timed value reaches an assert
    "assert acc > 0.8\n"                                   # untimed: not reported
    "assert ratio > 1\n"                                   # a timed name
    "assert runs['b'].p50_ms < 5\n"                        # a timed attribute of a timed name
    "assert records[0].latency.p99_ms < 9\n"               # a timed attribute of anything
    "faster = ratio > 1.2 and acc > 0.5\n"
    "assert faster\n"                                      # propagated through a name
    "assert all(s.p50_ms > 0 for s in runs.values())\n"    # through a comprehension
    "r = stats.latency_ratio(runs['a'], runs['b'])\n"
    "assert r.verdict == 'above'\n",                       # a verdict is timed too
    # cell 2: a helper that times, and a name made untimed again
    "import time\n"
    "def took():\n    t = time.perf_counter()\n    return time.perf_counter() - t\n"
    "assert took() < 1\n"
    "ratio = 2.0\n"
    "assert ratio == 2.0\n"                               # reassigned untimed: not reported
    "assert runs['a'].p50_ms > 0  # untimed: a planted exemption with a reason\n"
    "s = runs['a']\n"
    "assert all(s > 0 for s in [1, 2])\n"                # s rebound over untimed values: not reported
    "assert all(s > 0 for s in runs.values())\n",        # s rebound over timed values: reported
]


def test_the_guard_catches_planted_timed_asserts():
    findings = timed_asserts.scan_sources(PLANTED)
    where = [(f.cell, f.line) for f in findings]
    assert where == [(1, 2), (1, 3), (1, 4), (1, 6), (1, 7), (1, 9), (2, 5), (2, 11)], "\n".join(map(str, findings))
    assert "perf_counter" not in findings[-2].because and "took" in findings[-2].because
    exempt = timed_asserts.scan_sources(PLANTED, exempt=True)
    assert [(f.cell, f.line, f.because) for f in exempt] == [(2, 8, "a planted exemption with a reason")]


def test_the_guard_reports_invalid_code_with_its_cell():
    with pytest.raises(SyntaxError, match="code cell 1"):
        timed_asserts.scan_sources(["x = 1", "assert ("])


# --- claims nothing computes (tests/literal_status.py) ---------------------------------

import literal_status  # noqa: E402


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_assert_on_a_literal_and_no_literal_status_in_a_bars_table(path):
    findings = literal_status.scan_notebook(path)
    assert not findings, (
        f"{path.name} states a result nothing computes; compute the status from the measured "
        "value:\n" + "\n".join(map(str, findings)))


def test_the_literal_status_guard_catches_planted_cases():
    planted = [
        "assert True\n"                                                   # 1: reported
        "bars = [('a', f'{x:.2f}', 'met' if x > 1 else 'not met'),\n"
        "        ('b', 'checked by a test', 'done'),\n"                   # 3: reported
        "        ('c', 'n plans', True)]\n",                              # 4: reported
        "planned = []\n"
        "planned.append(('d', 'value', ok))\n"                            # computed: fine
        "planned.append(('e', 'value', 'asserted'))\n"                    # 3: reported
        "rows = [('f', 'x', 'done')]\n"                                   # not a bars table: fine
        "assert x > 1\n",
    ]
    where = [(f.cell, f.line) for f in literal_status.scan_sources(planted)]
    assert where == [(0, 1), (0, 3), (0, 4), (1, 3)], where


# --- figures typed by hand (tests/typed_numbers.py) --------------------------------------

import typed_numbers  # noqa: E402


def test_every_figure_in_the_prose_is_glued_sourced_assumed_or_allowed():
    findings = typed_numbers.scan_book(ROOT)
    assert not findings, (
        "figures typed into the prose: glue each measured one from the code; give a quoted one "
        "its source in the same sentence; say 'assumed' of an assumption; or allow a setting in "
        "tests/typed_numbers.py with its reason:\n" + "\n".join(map(str, findings)))


def test_every_allowance_has_a_reason_and_is_still_used():
    assert all(isinstance(reason, str) and len(reason) > 10 for reason in typed_numbers.ALLOWED.values())
    stale = set(typed_numbers.ALLOWED) - typed_numbers.allowed_in_use(ROOT)
    assert not stale, f"allowances no page uses any more (remove them): {sorted(stale)}"


def test_the_typed_figure_guard_catches_planted_cases():
    planted = (
        "The float model took 5.2 ms on this CPU.\n\n"                              # typed: reported
        "It took {glue:text}`p50:.1f` ms, int8 ran 1.9x faster.\n\n"                # 1.9x reported
        "Sandler et al. {cite:p}`sandler2018mobilenetv2` report 300 M MACs.\n\n"  # cited: fine
        "The phone draws 4 W (assumed).\n\n"                                       # assumed: fine
        "Math is not prose: $t = 5.2$ ms is left to the glue in `x = 3 ms`.\n\n"   # 'ms' alone: fine
        "| variant | size |\n|---|---|\n| int8 | 3.6 MB |\n"                        # a table cell: reported
        "- a list item of 12 %\n"                                                 # reported
    )
    figures = [f.figure for f in typed_numbers.scan_text("planted", planted)]
    assert figures == ["5.2 ms", "1.9x", "3.6 MB", "12 %"], figures
    # A published figure needs a citation of the bibliography in its sentence; the source
    # article's figures and assumptions do not.
    quoted = ("Sandler et al. report 300 M MACs.\n\nThe published table {cite:p}`sandler2018mobilenetv2` "
              "gives 3.4 M parameters.\n\nThe article's case study promises 10 s to 1 s.\n")
    found = typed_numbers.scan_text("planted", quoted)
    assert [(f.figure, f.sentence.startswith("quoted without {cite}")) for f in found] == [("300 M MACs", True)], found
    # An allowance covers exactly its page and figure.
    assert [f.figure for f in typed_numbers.scan_text("02_pruning", "Prune to 75 % and 12 %.")] == ["12 %"]


# --- figures: caption, label, axes with units (tests/figure_rules.py) ---------------------

import figure_rules  # noqa: E402


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_has_a_caption_a_label_and_checked_axes(path):
    findings = figure_rules.scan_notebook(path)
    assert not findings, f"{path.name}:\n" + "\n".join(map(str, findings))


def test_figure_labels_are_unique_across_the_book():
    names = figure_rules.figure_names(NOTEBOOKS)
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


def test_the_figure_guard_catches_planted_cases():
    png = {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}, "metadata": {}}
    good_meta = {"mystnb": {"figure": {"caption": "Latency per variant.", "name": "fig-latency"}}}
    cells = [
        {"cell_type": "code", "source": "plotting.show(fig)", "outputs": [png], "metadata": good_meta},   # fine
        {"cell_type": "code", "source": "plt.plot(x)\nplt.show()", "outputs": [png], "metadata": {}},     # 3 findings
        {"cell_type": "code", "source": "plotting.show(a)\nplotting.show(b)", "outputs": [png, png],
         "metadata": good_meta},                                                                         # 2 images
        {"cell_type": "code", "source": "x = 1", "outputs": [], "metadata": {}},                          # fine
        {"cell_type": "markdown", "source": "plt.show()"},                                               # prose: fine
    ]
    found = [(f.cell, f.what.split(" ")[0]) for f in figure_rules.scan_cells(cells)]
    assert found == [(1, "plt.show()"), (1, "an"), (1, "a"), (1, "a"), (2, "2")], found


# --- verdicts against their printed values (tests/verdict_precision.py) -------------------

import verdict_precision  # noqa: E402


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_verdict_contradicts_the_value_it_prints(path):
    rows = verdict_precision.scan_notebook(path)
    assert not rows, (f"{path.name}: a status computed from an unrounded value contradicts the printed "
                      "figure; judge the value at the precision shown:\n" + "\n".join(map(str, rows)))


def test_the_verdict_guard_catches_planted_cases():
    planted = (
        "| bar | measured | |\n|---|---|---|\n"
        "| gzip >= 2.5x smaller than dense | 2.50x | **not met** |\n"                       # reported
        "| gzip >= 2.5x smaller than dense | 2.496x | **not met** |\n"                      # fine
        "| loses <= 2 points | +0.95 points vs dense, -2.01 vs the control | met |\n"       # reported (points, 2nd)
        "| loses <= 2 points | -2.45 points vs dense | **not met** |\n"                     # fine
        "| within 1 point of target | 0.16 points worst | met |\n"                           # fine
        "| >= 2x faster | 3.00x (95 % CI 1.92-3.28) | met |\n"                             # fine: CI not the value
        "| >= 2x faster | 1.50x (95 % CI 1.2-1.8) | met |\n"                                # reported
        "| >= 1.3x faster | 1.23x (95 % CI 0.93-1.34) | undecided |\n"                     # not judged
        "| beats it by >= 1 point | +0.70 points (p = 0.29) | met |\n"                      # reported
        "| arena <= naive / 3 | 4.26x smaller | met |\n"                                   # no threshold: not judged
    )
    rows = verdict_precision.scan_markdown("planted", planted)
    assert [r.measured for r in rows] == ["2.50x", "+0.95 points vs dense, -2.01 vs the control",
                                          "1.50x (95 % CI 1.2-1.8)", "+0.70 points (p = 0.29)"], rows


# --- code lines fit the page (tests/code_width.py) -----------------------------------------

import code_width  # noqa: E402


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_line_fits_the_books_width(path):
    long = code_width.overlong_lines(path)
    assert not long, (
        f"{path.name}: {len(long)} code line(s) over the book's {code_width.WIDTH} characters, which a "
        "code cell on a 1366 px screen cuts off; format the notebook with `python tests/code_width.py "
        f"{path.relative_to(ROOT).as_posix()}` (ruff format, then long comments and strings split; "
        "it proves the code's AST unchanged) and fix by hand any line it lists:\n" + "\n".join(long))


def _planted_notebook(path, sources):
    cells = [{"cell_type": "code", "source": s, "metadata": {}, "outputs": [], "execution_count": None}
             for s in sources]
    cells.insert(1, {"cell_type": "markdown", "source": "prose " * 40, "metadata": {}})  # prose: any width
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def test_the_width_guard_catches_planted_long_lines(tmp_path):
    fits = "x = 1  # " + "a" * (code_width.WIDTH - 9)                 # exactly the width: fine
    over = "y = 2  # " + "b" * (code_width.WIDTH - 8)                 # one character over
    planted = tmp_path / "planted.ipynb"
    _planted_notebook(planted, [fits, "z = 3\n" + over, ["w = 4\n", "    " + "c" * code_width.WIDTH]])
    found = code_width.overlong_lines(planted)
    assert [f.split(" (")[0] for f in found] == ["planted.ipynb cell 3 line 2", "planted.ipynb cell 4 line 2"], found
    assert f"({code_width.WIDTH + 1} chars)" in found[0] and f"({code_width.WIDTH + 4} chars)" in found[1]


def test_the_formatter_fits_planted_code_without_changing_its_meaning():
    # A cell as the chapters had them: a long call, a long trailing comment, a long
    # f-string outside brackets, a long docstring, a long comment paragraph.
    source = (
        "def f(a, b):\n"
        '    """A docstring that goes on and on, well past the width of the book\'s code cells, so it wraps."""\n'
        "    return a + b\n"
        "# A comment that goes on and on, well past the width of the book's code cells, so it must be wrapped too.\n"
        "value = f(1, 2) + f(3, 4) + f(5, 6) + f(7, 8)  # a trailing comment that makes this line far too long\n"
        "text = f\"{value} is the sum of eight small numbers, printed in a sentence that is too long {value:>6}\"\n"
        "print(dict(alpha=value, beta=value * 2, gamma=value * 3, delta=value * 4, epsilon=value * 5, zeta=6))"
    )
    assert max(map(len, source.split("\n"))) > code_width.WIDTH
    formatted = code_width.format_source(source)
    assert max(map(len, formatted.split("\n"))) <= code_width.WIDTH, formatted
    assert code_width.same_meaning(source, formatted), formatted
    assert "# a trailing comment that makes this line far too long" in formatted
    # An exemption of the timed-assert guard stays on its assert's first line.
    pinned = ("assert latency_a.p50_ms > 0 and latency_b.p50_ms > 0, (latency_a, latency_b)  "
              "# untimed: a reason long enough")
    formatted = code_width.format_source(pinned)
    assert formatted.split("\n")[0] == "assert (  # untimed: a reason long enough", formatted
    assert code_width.same_meaning(pinned, formatted) and max(map(len, formatted.split("\n"))) <= code_width.WIDTH
    # The check itself tells a changed program from a reformatted one.
    assert not code_width.same_meaning(source, source.replace("f(7, 8)", "f(7, 9)"))
    assert not code_width.same_meaning("x = 'a' 'b'", "x = 'a' 'c'")
    assert code_width.same_meaning("x = 'a' 'b'", "x = (\n    'ab'\n)")


def glue_inside_math(markdown: str) -> list:
    """The ``$...$`` and ``$$...$$`` spans of a markdown text that hold a ``{glue:...}`` role.

    MathJax gets a math span's text as it is, so a glue role inside one shows as raw
    LaTeX (``glue:text\\n_seeds``) instead of its value.
    """
    import re

    spans = re.finditer(r"\$\$.*?\$\$|\$[^$\n]*?\$", markdown, re.S)
    return [m.group(0) for m in spans if "{glue" in m.group(0)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_glue_inside_math(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    found = [span for c in cells if c["cell_type"] == "markdown" for span in glue_inside_math("".join(c["source"]))]
    assert not found, f"{path.name}: a glued value inside math renders as raw LaTeX; put it outside the $...$: {found}"


def test_the_glue_in_math_guard_finds_a_planted_case():
    assert glue_inside_math("With $k = {glue:text}`n`$ seeds, $t$ = {glue:text}`t:.2f`.") == [
        "$k = {glue:text}`n`$"]
    assert glue_inside_math("$$x = 1$$ and {glue:text}`a` and $y$") == []


# --- temporary files and folders that nothing removes (tests/temp_files.py) ------------

import temp_files  # noqa: E402

LIBRARY = sorted((ROOT / "src" / "mobileopt_ref").glob("*.py")) + [ROOT / "conftest.py", *sorted((ROOT / "tests").glob("*.py"))]


@pytest.mark.parametrize("path", NOTEBOOKS + LIBRARY, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_temporary_file_or_folder_is_removed(path):
    if path.suffix == ".ipynb":
        findings = temp_files.scan_notebook(path)
    else:
        findings = temp_files.scan_source(path.name, path.read_text(encoding="utf-8"))
    assert not findings, (
        f"{path.name} makes temporary files or folders it never removes (a kernel is stopped, "
        "not exited, so nothing cleans them up; chapter 8's bundles filled a disk this way): use "
        "`with tempfile.TemporaryDirectory() as ...` or remove them:\n" + "\n".join(map(str, findings)))


def test_the_temporary_file_guard_catches_planted_cases():
    planted = [
        "import os, shutil, tempfile\nfrom pathlib import Path\n",
        "a = tempfile.TemporaryDirectory()\n"                        # 1: removed in cell 3
        "b = tempfile.TemporaryDirectory(prefix='x-')\n"             # 2: reported
        "c = Path(tempfile.mkdtemp())\n"                             # 3: reported
        "with tempfile.TemporaryDirectory() as d:\n    pass\n"       # 4: fine
        "fd, e = tempfile.mkstemp()\n"                               # 6: replaced in cell 3
        "f = tempfile.NamedTemporaryFile(delete=False)\n"            # 7: reported
        "g = tempfile.NamedTemporaryFile()\n"                        # 8: deletes itself
        "h = Path(tempfile.mkdtemp())\n",                            # 9: removed in cell 3
        "",
        "%time a.cleanup()\n"                                        # a magic is not Python
        "a.cleanup()\n"
        "os.replace(e, 'out')\n"
        "shutil.rmtree(h, ignore_errors=True)\n"
        "shutil.rmtree(b.name)\n",                                   # the folder, not the object
    ]
    found = [(f.where, f.line) for f in temp_files.scan_sources("planted", planted)]
    assert found == [("planted cell 1", 2), ("planted cell 1", 3), ("planted cell 1", 7)], found
    library = "import tempfile\nclass E:\n    def __init__(self):\n        self._tmp = tempfile.TemporaryDirectory()\n"
    assert [f.line for f in temp_files.scan_source("planted.py", library)] == [4]
    assert not temp_files.scan_source("planted.py", library + "    def close(self):\n        self._tmp.cleanup()\n")
    at_exit = "import atexit, shutil, tempfile\nd = tempfile.mkdtemp()\natexit.register(shutil.rmtree, d)\n"
    assert not temp_files.scan_source("planted.py", at_exit)
