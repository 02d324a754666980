"""The bars registry: introduced once (mobileopt_ref.bars), in step with the chapters' tables."""

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from mobileopt_ref import bars

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def bars_table_rows(path) -> list:
    """First cells of the rows of every stored markdown table whose header starts with 'bar'."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            md = out.get("data", {}).get("text/markdown")
            if not md:
                continue
            lines = "".join(md).splitlines()
            for i, line in enumerate(lines):
                separator = i + 1 < len(lines) and re.match(r"^\|[\s|:-]+\|\s*$", lines[i + 1])
                if line.startswith("|") and separator and re.match(r"bars?\b", line.strip("| ").lower()):
                    for row in lines[i + 2:]:
                        if not row.startswith("|"):
                            break
                        rows.append(row.strip("|").split("|")[0].strip())
    return rows


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_row_of_a_chapters_bars_table_is_one_registered_bar(path):
    for row in bars_table_rows(path):
        found = bars.match_row(path.stem, row)
        assert len(found) == 1, (f"{path.stem}: the bars-table row {row!r} matches {len(found)} bars of "
                                 "mobileopt_ref.bars.BARS; register it (with why this value) or fix the pattern")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_tabled_bar_appears_in_its_chapter(path):
    rows = bars_table_rows(path)
    for bar in bars.for_chapter(path.stem):
        if bar.pattern is not None:
            assert any(bar.matches(r) for r in rows), f"{path.stem}: no table row judges {bar.statement!r}"


def test_every_bar_names_a_chapter_a_kind_and_a_reason():
    stems = {p.stem for p in CHAPTERS}
    for bar in bars.BARS:
        assert bar.chapter in stems, bar
        assert bar.kind in bars.KINDS and len(bar.why) > 40, bar


def test_a_bar_of_an_unknown_kind_or_a_broken_pattern_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        bars.Bar("02_pruning", "x", "asserted", "y")
    with pytest.raises(Exception):
        bars.Bar("02_pruning", "x", "reported", "y", pattern="(unclosed")


def test_the_registry_renders_one_row_per_bar():
    table = bars.to_markdown().splitlines()
    assert len(table) == 2 + len(bars.BARS)


def test_ideal_sparse_ratio_hand_checked():
    assert bars.ideal_sparse_ratio(0.0) == 1.0
    # s = 0.5: one bit of mask per weight, half the weights kept: 32 / 17.
    assert bars.ideal_sparse_ratio(0.5) == pytest.approx(32 / 17)
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert bars.ideal_sparse_ratio(0.75) == pytest.approx(32 / (8 + h))
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="sparsity"):
            bars.ideal_sparse_ratio(bad)


@given(st.floats(1e-6, 0.99), st.floats(1e-6, 0.99))
def test_ideal_sparse_ratio_grows_with_sparsity_and_never_beats_dropping_the_zeros(a, b):
    # d/ds of the cost (1 - s) * 32 + H(s) is log2((1 - s) / s) - 32: negative for s above
    # 2**-32, so the ratio grows with sparsity there (below it, the mask costs more than the
    # zeros save: a nearly dense tensor is best stored dense).
    lo, hi = sorted((a, b))
    assert bars.ideal_sparse_ratio(lo) <= bars.ideal_sparse_ratio(hi) + 1e-12
    assert bars.ideal_sparse_ratio(hi) <= 1 / (1 - hi) + 1e-9
