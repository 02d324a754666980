"""Every exercise has a worked solution, hidden by default and executed with its chapter.

A chapter's exercises follow its ``## Exercises`` heading as ``sphinx-exercise`` blocks:

    :::{exercise}
    :label: ex-quant-asymmetric

    The question.
    :::

    :::{solution-start} ex-quant-asymmetric
    :class: dropdown
    :::

    (markdown and code cells: the worked solution, run by nbval with the chapter)

    :::{solution-end}
    :::

The gated ``solution-start``/``solution-end`` pair encloses the notebook's code cells, so
the solution's code runs whenever the chapter does (``make execute``, nbval in ``make
test``) and the site shows its stored outputs inside a collapsed dropdown. A solution
answered in words only (a thought exercise) is a plain ``:::{solution} label`` block whose
text says why, with the words "Answered in words:".

The scan reports, per notebook, every exercise without a solution: a numbered list item
left in the section instead of an ``{exercise}`` block, an ``{exercise}`` without a label
or without a solution, a solution that is not hidden by default (``:class: dropdown``), a
gated solution without a code cell, a prose-only solution that gives no reason, and a
solution of an unknown exercise or one never closed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.ipynb"))
PROSE_REASON = "Answered in words:"

HEADING = re.compile(r"^##\s+Exercises\s*$", re.M)
NEXT_SECTION = re.compile(r"^#{1,2}\s+\S", re.M)
BLOCK = re.compile(
    r"^:::\{(?P<kind>exercise|solution|solution-start|solution-end)\}[ \t]*(?P<arg>[^\n]*)\n"
    r"(?P<body>.*?)^:::[ \t]*$",
    re.M | re.S,
)
NUMBERED_ITEM = re.compile(r"^ {0,3}(\d+)\.[ \t]+(\S.{0,60})", re.M)
LABEL = re.compile(r"^:label:[ \t]*(\S+)[ \t]*$", re.M)
DROPDOWN = re.compile(r"^:class:[ \t]*(?:\S+[ \t]+)*dropdown\b", re.M)


def _section(cells):
    """The cells of the Exercises section as ``(cell_type, text)``: from its heading to the next
    heading of level 1 or 2 (or the end). ``None`` when the notebook has no such section."""
    for i, (kind, text) in enumerate(cells):
        m = HEADING.search(text) if kind == "markdown" else None
        if not m:
            continue
        out = [(kind, text[m.end():])]
        for kind2, text2 in cells[i + 1:]:
            if kind2 == "markdown" and (n := NEXT_SECTION.search(text2)):
                out.append((kind2, text2[:n.start()]))
                break
            out.append((kind2, text2))
        return out
    return None


def exercise_problems(cells) -> list:
    """Problems of one notebook's exercises, as sentences (empty: every exercise is solved).

    Args:
        cells: ``[(cell_type, source text)]`` in notebook order.
    """
    section = _section(cells)
    if section is None:
        return []
    problems, exercises, solutions = [], [], {}
    open_solution = None          # label of a gated solution not yet closed
    code_cells = {}               # gated solution label -> code cells it encloses
    for kind, text in section:
        if kind == "code":
            if open_solution is not None and text.strip():
                code_cells[open_solution] += 1
            continue
        if kind != "markdown":
            continue
        rest, pos = [], 0
        for m in BLOCK.finditer(text):
            if open_solution is None:
                rest.append(text[pos:m.start()])
            pos = m.end()
            block, arg, body = m["kind"], m["arg"].strip(), m["body"]
            if block == "exercise":
                label = LABEL.search(body)
                if not label:
                    problems.append(f"an exercise has no :label: ({body.strip()[:60]!r})")
                    continue
                exercises.append(label[1])
            elif block == "solution-end":
                if open_solution is None:
                    problems.append("a solution-end closes no solution")
                open_solution = None
            else:
                if not arg:
                    problems.append(f"a {block} names no exercise")
                    continue
                if arg in solutions:
                    problems.append(f"exercise {arg!r} has two solutions")
                solutions[arg] = block
                if not DROPDOWN.search(body):
                    problems.append(f"the solution of {arg!r} is not hidden by default (no :class: dropdown)")
                if block == "solution":
                    if PROSE_REASON not in body:
                        problems.append(f"the solution of {arg!r} has no code and does not say why "
                                        f"(a prose-only solution states {PROSE_REASON!r} and its reason)")
                else:
                    if open_solution is not None:
                        problems.append(f"the solution of {open_solution!r} is not closed before the next one")
                    open_solution = arg
                    code_cells[arg] = 0
        if open_solution is None:
            rest.append(text[pos:])
        for n, start in NUMBERED_ITEM.findall("".join(rest)):
            problems.append(f"exercise {n} ({start.strip()!r}...) is a list item, not an {{exercise}} block "
                            f"with a solution")
    if open_solution is not None:
        problems.append(f"the solution of {open_solution!r} is never closed (solution-end)")
    for label in exercises:
        if label not in solutions:
            problems.append(f"exercise {label!r} has no solution")
        elif solutions[label] == "solution-start" and code_cells.get(label, 0) == 0:
            problems.append(f"the solution of {label!r} encloses no code cell (a prose-only solution is a plain "
                            f"{{solution}} block stating {PROSE_REASON!r})")
    for label in solutions:
        if label not in exercises:
            problems.append(f"a solution refers to {label!r}, which is no exercise of this section")
    return problems


def _cells(path):
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    return [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_a_hidden_worked_solution(path):
    problems = exercise_problems(_cells(path))
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


def test_chapters_have_exercises():
    with_section = [p.stem for p in NOTEBOOKS if _section(_cells(p)) is not None]
    assert len(with_section) >= 8, with_section


def _md(text):
    return ("markdown", text)


def _code(text="print(1)"):
    return ("code", text)


GOOD = [
    _md("## Summary\n\nDone.\n\n## Exercises\n\nTry these.\n\n:::{exercise}\n:label: ex-a\n\nCompute it.\n:::\n\n"
        ":::{solution-start} ex-a\n:class: dropdown\n:::\n\nLike this:"),
    _code(),
    _md("1. a numbered list inside a solution is part of the answer\n\n:::{solution-end}\n:::\n\n"
        ":::{exercise}\n:label: ex-b\n\nThink.\n:::\n\n:::{solution} ex-b\n:class: dropdown\n\n"
        "*(Answered in words: a thought exercise.)* Because.\n:::"),
    _md("## Across machines\n\n1. not an exercise: another section"),
]


def test_the_guard_passes_a_well_formed_section():
    assert exercise_problems(GOOD) == []
    assert exercise_problems([_md("# A page\n\nNo exercises.")]) == []


@pytest.mark.parametrize("cells, expected", [
    # the chapters as they were: a numbered list and no solutions
    ([_md("## Exercises\n\n1. Generate the dataset.\n2. Measure the student.")],
     ["exercise 1 ('Generate the dataset.'...) is a list item", "exercise 2 ('Measure the student.'...)"]),
    # an exercise with no solution, and one without a label
    ([_md("## Exercises\n\n:::{exercise}\n:label: ex-a\n\nQ.\n:::\n\n:::{exercise}\n\nQ2.\n:::")],
     ["exercise 'ex-a' has no solution", "an exercise has no :label:"]),
    # a gated solution that encloses no code cell
    ([_md("## Exercises\n\n:::{exercise}\n:label: ex-a\n\nQ.\n:::\n\n:::{solution-start} ex-a\n:class: dropdown\n:::"),
      _md("Only words.\n\n:::{solution-end}\n:::")],
     ["the solution of 'ex-a' encloses no code cell"]),
    # a solution shown open, and a prose-only solution without a reason
    ([_md("## Exercises\n\n:::{exercise}\n:label: ex-a\n\nQ.\n:::\n\n:::{solution-start} ex-a\n:::"), _code(),
      _md(":::{solution-end}\n:::\n\n:::{exercise}\n:label: ex-b\n\nQ.\n:::\n\n:::{solution} ex-b\n:class: dropdown\n\nWords.\n:::")],
     ["the solution of 'ex-a' is not hidden by default", "the solution of 'ex-b' has no code and does not say why"]),
    # a solution never closed, and one for an exercise that does not exist
    ([_md("## Exercises\n\n:::{exercise}\n:label: ex-a\n\nQ.\n:::\n\n:::{solution} ex-z\n:class: dropdown\n\n"
          "*(Answered in words: x.)*\n:::\n\n:::{solution-start} ex-a\n:class: dropdown\n:::"), _code()],
     ["the solution of 'ex-a' is never closed", "a solution refers to 'ex-z'"]),
    # an empty code cell does not count as a worked solution
    ([_md("## Exercises\n\n:::{exercise}\n:label: ex-a\n\nQ.\n:::\n\n:::{solution-start} ex-a\n:class: dropdown\n:::"),
      _code("   \n"), _md(":::{solution-end}\n:::")],
     ["the solution of 'ex-a' encloses no code cell"]),
])
def test_the_guard_catches_planted_cases(cells, expected):
    problems = exercise_problems(cells)
    for fragment in expected:
        assert any(fragment in p for p in problems), (fragment, problems)
    assert len(problems) == len(expected), problems
