"""The book's code width: every code line of a notebook fits the page (issue 18).

The site shows a code cell in a box that holds :data:`WIDTH` characters at a laptop's
1366 px wide window (``_static/code-width.css`` sets the font size so that it does; the
browser test in tests/test_site.py checks that no code cell scrolls sideways). A longer line
is cut at the box's edge and must be scrolled to be read, so this module finds every line
over :data:`WIDTH` (:func:`overlong_lines`), and, run as a script, formats notebooks to it
without changing what their code does::

    python tests/code_width.py notebooks/01_quantization.ipynb book/concepts.ipynb

Each code cell with a line over the width goes through ``ruff format --line-length 88``
(cells that fit are left as they are); then the lines ruff leaves
long are fixed the way a person would: a long comment is wrapped (a trailing comment moves
above its line, except the markers in :data:`PINNED_COMMENTS`), a long string is split into adjacent literals (Python joins them when it
parses the code, so the program is the same; parentheses are added where the string is not
inside brackets), a long docstring line is wrapped. The proof that the meaning did not
change: each cell's abstract syntax tree (``ast.dump``) is compared before and after, with
only the whitespace inside docstrings allowed to differ. A cell whose tree would change is
left as it was and reported. Lines that remain long are listed, for a person to fix.
Notebooks are written as nbformat writes them; outputs are untouched (the code fingerprint
then asks for re-execution, as it should).
"""

from __future__ import annotations

import ast
import io
import json
import re
import subprocess
import sys
import textwrap
import tokenize
from pathlib import Path

#: The book's code width in characters: ruff's (and black's) default line length.
WIDTH = 88


def cell_source(cell: dict) -> str:
    """The source of a notebook cell as one string (nbformat stores a string or a list)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def overlong_lines(path: Path, width: int = WIDTH) -> list[str]:
    """Every code line of a notebook longer than ``width`` characters.

    Args:
        path: A ``.ipynb`` file.
        width: The longest line allowed, in characters (code points).

    Returns:
        ``"<file> cell <n> line <m> (<length> chars): <line>"`` for each code line over
        ``width`` (cells and lines counted from 1, cells among all cells); empty when all fit.
    """
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    found = []
    for n, cell in enumerate(nb["cells"], start=1):
        if cell["cell_type"] != "code":
            continue
        for m, line in enumerate(cell_source(cell).split("\n"), start=1):
            if len(line) > width:
                found.append(f"{Path(path).name} cell {n} line {m} ({len(line)} chars): {line.strip()[:60]}...")
    return found


# --- the formatter ------------------------------------------------------------------------

_MAGIC = re.compile(r"^\s*[%!]")

#: Trailing comments that mean something where they are (tests/timed_asserts.py reads
#: ``# untimed:`` on an assert's first line; linters read the others): never moved.
PINNED_COMMENTS = ("# untimed:", "# noqa", "# type:", "# fmt:", "# pragma")


def python_of(source: str) -> str:
    """The cell's source with IPython magic and shell lines (``%``, ``!``) blanked."""
    return "\n".join("" if _MAGIC.match(line) else line for line in source.split("\n"))


def _normalized_tree(source: str) -> str:
    """``ast.dump`` of the code, with each docstring's whitespace collapsed."""
    tree = ast.parse(python_of(source))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                first.value.value = " ".join(first.value.value.split())
    return ast.dump(tree)


def same_meaning(old: str, new: str) -> bool:
    """True when two cell sources parse to the same tree (docstring whitespace aside)."""
    try:
        return _normalized_tree(old) == _normalized_tree(new)
    except SyntaxError:
        return False


def ruff_format(source: str, width: int = WIDTH) -> str:
    """``ruff format`` of one cell's source (no trailing newline, as a cell has none)."""
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run([str(ruff), "format", "--isolated", f"--line-length={width}", "--stdin-filename", "cell.py", "-"],
                            input=python_of(source), capture_output=True, text=True, check=True)
    if _MAGIC.search(source) and any(_MAGIC.match(line) for line in source.split("\n")):
        raise ValueError("cells with IPython magics are formatted by hand")
    return result.stdout.rstrip("\n")


def _split_points(body: str, is_f: bool) -> list[int]:
    """Offsets in a string literal's body after which it may be cut: after a space,
    outside an f-string's replacement fields, never inside an escape."""
    points, depth, i = [], 0, 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            i += 2
            continue
        if is_f and depth == 0 and body[i:i + 2] in ("{{", "}}"):
            i += 2
            continue
        if is_f and ch == "{":
            depth += 1
        elif is_f and ch == "}":
            depth -= 1
        elif ch == " " and depth == 0 and i + 1 < len(body) and body[i + 1] != " ":
            points.append(i + 1)
        i += 1
    return points


def _split_string(token: str, room: int) -> list[str] | None:
    """A one-line string literal cut into adjacent literals each at most ``room`` long."""
    m = re.match(r"([rRbBfFuU]*)('|\")(.*)\2$", token, re.S)
    if not m or token.endswith(('"""', "'''")) and len(token) >= 6 and token[len(m.group(1)):].startswith(('"""', "'''")):
        return None
    prefix, quote, body = m.groups()
    points = _split_points(body, "f" in prefix.lower())
    pieces, start = [], 0
    overhead = len(prefix) + 2
    while len(body) - start + overhead > room:
        fitting = [p for p in points if start < p and p - start + overhead <= room]
        if not fitting:
            later = [p for p in points if p > start]
            if not later:
                break
            cut = later[0]
        else:
            cut = fitting[-1]
        pieces.append(body[start:cut])
        start = cut
    pieces.append(body[start:])
    if len(pieces) == 1:
        return None
    return [f"{prefix}{quote}{piece}{quote}" for piece in pieces]


def _tokens(source: str):
    return list(tokenize.generate_tokens(io.StringIO(source).readline))


def _wrap_comment(text: str, indent: str, width: int) -> list[str]:
    """A comment's text as ``# `` lines at ``indent`` of at most ``width`` characters."""
    body = text.lstrip("#")
    lead = body[: len(body) - len(body.lstrip())] or " "
    return [f"{indent}#{lead}{line}" for line in
            textwrap.wrap(body.strip(), width - len(indent) - 1 - len(lead), break_long_words=False,
                          break_on_hyphens=False)]


def _fix_one(source: str, width: int, skip: set[str]) -> tuple[str, str] | None:
    """The source with the first fixable long line (not in ``skip``) fixed, and that line;
    None when no long line is fixable."""
    lines = source.split("\n")
    tokens = _tokens(source)
    depth_at: dict[tuple[int, int], int] = {}
    depth = 0
    for tok in tokens:
        depth_at[tok.start] = depth
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
    for row, line in enumerate(lines, start=1):
        if len(line) <= width or line in skip:
            continue
        indent = line[: len(line) - len(line.lstrip())]
        for tok in tokens:
            if tok.type == tokenize.COMMENT and tok.start[0] == row:
                before = line[: tok.start[1]]
                if before.strip() and tok.string.startswith(PINNED_COMMENTS):
                    break  # left long, for a person to fix (see PINNED_COMMENTS)
                if before.strip():
                    lines[row - 1: row] = _wrap_comment(tok.string, indent, width) + [before.rstrip()]
                    return "\n".join(lines), line
                # A full-line comment: reflow its paragraph (the comment lines around it
                # at the same indentation, each starting with "# " and a word).
                prose = re.compile(re.escape(indent) + r"# \S")
                first = last = row - 1
                # (A line ending a sentence ends the paragraph: the comment below it may be
                # another one, such as a trailing comment lifted above its line.)
                ends = (".", ":", ";")
                while first > 0 and prose.match(lines[first - 1]) and not lines[first - 1].rstrip().endswith(ends):
                    first -= 1
                while last + 1 < len(lines) and prose.match(lines[last + 1]) and not lines[last].rstrip().endswith(ends):
                    last += 1
                if not prose.match(line):
                    first = last = row - 1
                text = " ".join(l.strip()[1:].strip() for l in lines[first: last + 1])
                lines[first: last + 1] = _wrap_comment("# " + text, indent, width)
                return "\n".join(lines), line
        for tok in tokens:
            if tok.type != tokenize.STRING or tok.start[0] > row or tok.end[0] < row:
                continue
            if tok.start[0] != tok.end[0] or tok.string.lstrip("rRbBfFuU").startswith(('"""', "'''")):
                fixed = _wrap_docstring(source, tok, width)
                if fixed is None:
                    continue
                return fixed, line
            if tok.end[1] <= width and tok.start[1] < width - 20 and len(line) - tok.end[1] > 8:
                continue  # the string fits; the rest of the line is too long: not a string's fault
            room = width - len(indent) - 8
            pieces = _split_string(tok.string, room)
            if pieces is None:
                continue
            inner = "\n".join(pieces)
            if depth_at.get(tok.start, 0) == 0:
                inner = f"(\n{inner}\n)"
            lines[row - 1] = line[: tok.start[1]] + inner + line[tok.end[1]:]
            return "\n".join(lines), line
    return None


def _wrap_docstring(source: str, tok, width: int) -> str | None:
    """A triple-quoted docstring's long lines wrapped at its indentation."""
    lines = source.split("\n")
    first, last = tok.start[0] - 1, tok.end[0] - 1
    indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
    # The paragraph holding the long line: the docstring's lines between blank ones, at
    # the docstring's own indentation (an indented block such as Args: is left alone).
    long_rows = [i for i in range(first, last + 1) if len(lines[i]) > width]
    if not long_rows:
        return None
    row = long_rows[0]
    para = lambda i: lines[i].strip() and (i == first or lines[i][: len(indent)] == indent
                                          and not lines[i][len(indent):len(indent) + 1].isspace())
    if not para(row):
        return None
    start = end = row
    while start > first and para(start - 1):
        start -= 1
    while end < last and para(end + 1):
        end += 1
    head = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    text = " ".join(lines[i].strip() for i in range(start, end + 1))
    wrapped = textwrap.wrap(text, width - len(indent), break_long_words=False, break_on_hyphens=False)
    out = [(head if j == 0 else indent) + w for j, w in enumerate(wrapped)]
    return "\n".join(lines[:start] + out + lines[end + 1:])


def _lift_trailing_comments(source: str, width: int) -> str:
    """Moves each trailing comment of a line over ``width`` to its own lines above it, so
    that ruff does not wrap the code to make room for the comment."""
    lines = source.split("\n")
    comments = [tok for tok in _tokens(source) if tok.type == tokenize.COMMENT]
    for tok in reversed(comments):
        row, col = tok.start
        line = lines[row - 1]
        if len(line) <= width or not line[:col].strip():
            continue
        indent = line[: len(line) - len(line.lstrip())]
        if tok.string.startswith("# untimed:"):
            # The guard reads it on the assert's first line: `assert (  # untimed: why`.
            try:
                stmt = ast.parse(line[:col].strip()).body[0]
            except SyntaxError:
                continue
            if isinstance(stmt, ast.Assert):
                code = line[:col].strip()
                test = ast.get_source_segment(code, stmt.test)
                rest = code[stmt.test.end_col_offset:].rstrip()
                lines[row - 1] = f"{indent}assert (  {tok.string}\n{indent}    {test}\n{indent}){rest}"
        elif not tok.string.startswith(PINNED_COMMENTS):
            lines[row - 1: row] = _wrap_comment(tok.string, indent, width) + [line[:col].rstrip()]
    return "\n".join(lines)


def format_source(source: str, width: int = WIDTH) -> str:
    """One cell's source formatted to ``width``, with the same meaning (see the module)."""
    new = ruff_format(_lift_trailing_comments(source, width), width)
    skip: set[str] = set()
    for _ in range(300):
        attempt = _fix_one(new, width, skip)
        if attempt is None:
            break
        fixed, line = attempt
        try:
            fixed = ruff_format(fixed, width)
        except subprocess.CalledProcessError:
            skip.add(line)
            continue
        if fixed == new or not same_meaning(source, fixed):
            skip.add(line)
            continue
        new = fixed
    return new


def format_notebook(path: Path, width: int = WIDTH) -> tuple[int, int, list[str]]:
    """Formats a notebook's code cells in place; returns (long lines before, after, problems)."""
    text = Path(path).read_text(encoding="utf-8")
    nb = json.loads(text)
    before = len(overlong_lines(path, width))
    problems = []
    for n, cell in enumerate(nb["cells"], start=1):
        if cell["cell_type"] != "code":
            continue
        old = cell_source(cell)
        if all(len(line) <= width for line in old.split("\n")):
            continue  # a cell that fits is left as its author wrote it
        try:
            new = format_source(old, width)
        except (ValueError, subprocess.CalledProcessError) as error:
            problems.append(f"cell {n}: not formatted ({error})")
            continue
        if not same_meaning(old, new):
            problems.append(f"cell {n}: formatting would change the code; left as it was")
            continue
        cell["source"] = new.splitlines(keepends=True) if isinstance(cell["source"], list) else new
    Path(path).write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return before, len(overlong_lines(path, width)), problems


if __name__ == "__main__":
    for name in sys.argv[1:]:
        before, after, problems = format_notebook(Path(name))
        print(f"{name}: lines over {WIDTH} characters {before} -> {after}")
        for problem in problems:
            print("  " + problem)
        for line in overlong_lines(Path(name)):
            print("  long: " + line)
