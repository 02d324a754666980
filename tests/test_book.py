"""The book builds from the stored outputs with warnings as errors."""

import re

import nbformat
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_book_builds_with_warnings_as_errors(built_site):
    # The build itself runs once per session in the built_site fixture (tests/conftest.py).
    assert built_site.returncode == 0, built_site.output
    html = built_site.html
    pages = {p.relative_to(html).as_posix() for p in html.rglob("*.html")}
    listed = re.findall(r"^\s*(?:root|- file):\s*(\S+)", (ROOT / "_toc.yml").read_text(), re.M)
    assert listed[0] == "book/intro" and len(listed) > 10, listed
    for page in (f"{name}.html" for name in listed):
        assert page in pages, f"{page} missing from the built site"
    # Numbers glued in the notebooks appear, formatted as the prose asks, in the pages.
    baseline, glued = _page_and_glue(html, "00_baseline")
    assert f"{int(glued['teacher_params']):,}" in baseline
    assert f"{float(glued['teacher_acc']):.1f} %" in baseline
    quant, glued = _page_and_glue(html, "01_quantization")
    assert f"{float(glued['student_full_int8_ratio']):.2f}x" in quant
    assert f"{int(glued['bitexact_elements']):,}" in quant
    prune, glued = _page_and_glue(html, "02_pruning")
    assert f"{float(glued['gzip_g75']):.3f}x" in prune
    assert f"{int(glued['n_prunable']):,}" in prune
    distil, glued = _page_and_glue(html, "03_distillation")
    assert f"{float(glued['acc_alone']):.2f} %" in distil
    compute_page, glued = _page_and_glue(html, "04_computation")
    assert f"{int(glued['macs_10']):,}" in compute_page
    assert f"{float(glued['xnn_vs_ref']):.0f}x" in compute_page
    memory_page, glued = _page_and_glue(html, "05_memory")
    assert f"{float(glued['greedy_mib']):.2f} MiB" in memory_page
    assert f"{float(glued['pair_kib']):,.0f} KiB" in memory_page
    energy_page, glued = _page_and_glue(html, "06_energy")
    assert f"{float(glued['m_gamma_dram']):.2f}" in energy_page
    assert f"{float(glued['m_t_f32_30']):.1f} °C" in energy_page
    ux_page, glued = _page_and_glue(html, "07_ux")
    assert f"{float(glued['cold_model_ms']):.0f} ms" in ux_page
    assert f"{int(glued['drop_ui_120'])} of {int(glued['ticks_120'])} refreshes" in ux_page


def _page_and_glue(html, name):
    page = (html / "notebooks" / f"{name}.html").read_text(encoding="utf-8")
    assert "{glue" not in page, f"an unresolved glue role in {name}"
    return page, _glued(nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4))


def _glued(nb):
    """``{key: text/plain}`` of every value a notebook's cells glued."""
    glued = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            key = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if key:
                glued[key] = out["data"]["application/papermill.record/text/plain"]
    return glued


def test_every_modelled_figure_is_labelled_as_modelled():
    # The energy chapter glues modelled figures under names that start with "m_"; every
    # paragraph or list item of its prose that shows one must say "modelled".
    nb = nbformat.read(ROOT / "notebooks" / "06_energy.ipynb", as_version=4)
    shown = 0
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for chunk in re.split(r"\n\s*\n|\n(?=- )", cell.source):
            if re.search(r"\{glue:text\}`m_", chunk):
                shown += 1
                assert "modelled" in chunk, f"a modelled figure without the word 'modelled':\n{chunk}"
    assert shown >= 8


def test_reference_page_documents_every_public_module():
    text = (ROOT / "book" / "reference.md").read_text(encoding="utf-8")
    modules = sorted(
        p.stem for p in (ROOT / "src" / "mobileopt_ref").glob("*.py") if not p.stem.startswith("_") and p.stem != "cli"
    )
    for module in modules:
        assert f".. automodule:: mobileopt_ref.{module}" in text, f"{module} missing from book/reference.md"


def test_modules_with_an_all_list_name_every_function_and_class_they_define():
    # automodule documents only what __all__ lists: a new public function left out of it
    # vanishes from the reference page (and every cross-reference to it breaks the build)
    import importlib
    import inspect

    missing = []
    for path in sorted((ROOT / "src" / "mobileopt_ref").glob("*.py")):
        if path.stem.startswith("_"):
            continue
        module = importlib.import_module(f"mobileopt_ref.{path.stem}")
        listed = getattr(module, "__all__", None)
        if listed is None:
            continue
        for name, value in vars(module).items():
            defined_here = (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == module.__name__
            if defined_here and not name.startswith("_") and name not in listed:
                missing.append(f"{path.stem}.{name}")
    assert not missing, missing


def _rendered_markdown(path):
    """The notebook's markdown cells with glued values put in, as the site shows them."""
    import ast

    nb = nbformat.read(path, as_version=4)
    glued = _glued(nb)

    def value(match):
        key, _, fmt = match.group(1).partition(":")
        assert key in glued, f"{path.name}: the prose cites the glue key {key!r}, which no cell glues"
        try:
            v = ast.literal_eval(glued[key])
        except (ValueError, SyntaxError):
            v = glued[key]
        return format(v, fmt) if fmt else str(v)

    return [re.sub(r"\{glue:(?:text|md)\}`([^`]+)`", value, cell.source) for cell in nb.cells
            if cell.cell_type == "markdown"]


SOURCE_MARKERS = ("published", "reported", "quoted", "{doc}", "et al.", "paper", "README", "blog", "Table", "page")


def test_every_speedup_in_the_prose_carries_an_interval_or_a_source():
    # The re-run-anywhere rule: a speed-up measured here is stated with its confidence
    # interval; a figure from elsewhere says where it comes from.
    speedup = re.compile(r"\d+(?:\.\d+)?x\b[^.;]*?\b(?:faster|slower|speed)|(?:faster|slower|speed-up)[^.;]*?\b\d+(?:\.\d+)?x\b")
    bare = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for chunk in _rendered_markdown(path):
            for paragraph in re.split(r"\n\s*\n|\n(?=[-|] )", chunk):
                text = " ".join(paragraph.split())
                for sentence in re.split(r"(?<=[.;])\s+", text):
                    if speedup.search(sentence) and "CI" not in sentence and not any(
                            m in paragraph for m in SOURCE_MARKERS):
                        bare.append(f"{path.name}: {sentence}")
    assert not bare, "speed-ups without an interval or a source:\n" + "\n".join(bare)


def test_every_accuracy_comparison_in_the_prose_carries_a_mcnemar_verdict():
    # Two models on the same test images are compared with an exact McNemar test; a
    # paragraph that states an accuracy difference states the test's verdict (or quotes
    # a figure from elsewhere with its source).
    difference = re.compile(r"\d+(?:\.\d+)?\s*(?:percentage\s+)?points?\b|(?:more|less) accurate"
                            r"|accuracy[^.;]*\b(?:higher|lower|better|worse)\b")
    bare = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for chunk in _rendered_markdown(path):
            for paragraph in re.split(r"\n\s*\n|\n(?=[-|] )", chunk):
                text = " ".join(paragraph.split())
                if (difference.search(text) and not re.search(r"McNemar|\bp [=<] ", text)
                        and not any(m in paragraph for m in SOURCE_MARKERS)):
                    bare.append(f"{path.name}: {text[:300]}")
    assert not bare, "accuracy comparisons without a McNemar verdict:\n" + "\n".join(bare)
