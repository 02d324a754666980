"""A scan of the book's prose for figures typed by hand.

Every measured number in the prose is glued from executed code (``{glue:text}``). A number
with a unit of measure (``5.2 ms``, ``1.49x``, ``14 MB``, ``89.1 %``) written as plain text
is one of three things:

- a quoted figure, whose sentence names its source ("published", a named table, blog or
  report, "Sandler et al.") *and* cites it with a ``{cite}`` role of the bibliography
  (``references.bib``); the source article's figures and stated assumptions need no
  citation in the sentence ("article", "case study", "assumed");
- a stated assumption, whose sentence says "assumed";
- a design choice or a constant of the book (a 75 % sparsity target, a 95 % interval, a
  30 fps camera, 1 MiB blocks of a probe), listed in :data:`ALLOWED` with the reason.

Anything else is reported: a measured figure typed into the prose goes stale the first time
the book runs on another machine. Math (``$...$``), inline code, glue roles and link targets
are not prose and are skipped.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

UNIT = (r"(?:%|x\b|×|ms\b|µs\b|s\b|seconds?\b|minutes?\b|hours?\b|MiB\b|KiB\b|GiB\b|MB\b|KB\b|kB\b|GB\b"
        r"|bytes?\b|J\b|mJ\b|µJ\b|pJ\b|W\b|mW\b|°C|K\b|Hz\b|GHz\b|fps\b|frames per second|mAh\b|Wh\b"
        r"|M MACs\b|M parameters\b|MACs\b)")
NUMBER = re.compile(r"(?<![\w.\-/+])(\d[\d,]*(?:\.\d+)?)\s?(" + UNIT + ")")
SOURCE = re.compile(
    r"\{cite|[A-Z][a-z]+ et al\.|\([A-Z][A-Za-z-]+,? (?:and [A-Z][a-z]+ )?\d{4}[a-z]?\)|[A-Z][a-z]+ \(\d{4}\)"
    r"|\]\(https?://|\bpublished\b|\bsource\b|\barticle\b|\bcase study\b|\bassumed?\b|\breport(?:s|ed)?\b"
    r"|\bblog\b|keras-io|Horowitz|'s (?:own |model |QAT )?table\b|CITED",
    re.IGNORECASE,
)


def _prose(text: str) -> str:
    """The text a reader sees as words: glue roles, math, code and link targets removed."""
    text = re.sub(r"\{glue(?::\w+)?\}`[^`]*`", " GLUED ", text)
    text = re.sub(r"\{cite(?::\w+)?\}`[^`]*`", " CITED ", text)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\\\[.*?\\\]", " ", text, flags=re.S)
    text = re.sub(r"(?<!\\)\$[^$\n]*\$", " ", text)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"\{[a-z:]+\}`[^`]*`", " ROLE ", text)
    text = re.sub(r"`[^`]*`", " CODE ", text)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    return text


def sentences(text: str) -> list:
    """Sentences (and list items, table rows) of a markdown text, whitespace collapsed."""
    parts = re.split(r"(?<=[.;!?])\s+(?=[A-Z(*])|\n\s*\n|\n\s*[-*] |\n\s*\d+\. |\n(?=\|)", _prose(text))
    return [" ".join(p.split()) for p in parts if p.strip()]


@dataclasses.dataclass(frozen=True)
class Finding:
    page: str
    figure: str
    sentence: str

    def __str__(self) -> str:
        return f"{self.page}: {self.figure!r} in: {self.sentence[:160]}"


# Sources that are not a publication to cite: an assumption, or the book's source article
# (cited once where the book introduces it).
NOT_A_PUBLICATION = re.compile(r"\bassumed?\b|\barticle\b|\bcase study\b", re.IGNORECASE)


def scan_text(page: str, text: str) -> list:
    """Typed figures of one page's markdown that no source, assumption or allowance covers,
    and published figures quoted without a ``{cite}`` role that resolves in the bibliography."""
    findings = []
    for sentence in sentences(text):
        if SOURCE.search(sentence):
            figures = [" ".join(m.group(0).split()) for m in NUMBER.finditer(sentence)]
            quoted = [f for f in figures if (page, f) not in ALLOWED]
            if quoted and "CITED" not in sentence and not NOT_A_PUBLICATION.search(sentence):
                findings.append(Finding(page, quoted[0], "quoted without {cite}: " + sentence))
            continue
        for match in NUMBER.finditer(sentence):
            figure = " ".join(match.group(0).split())
            if (page, figure) not in ALLOWED:
                findings.append(Finding(page, figure, sentence))
    return findings


def page_texts(root: Path) -> dict:
    """``{page: markdown}`` of the book: notebook markdown cells and the prose pages."""
    pages = {}
    for path in sorted((root / "notebooks").glob("*.ipynb")) + sorted((root / "book").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        pages[path.stem] = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    for path in sorted((root / "book").glob("*.md")):
        pages[path.stem] = path.read_text(encoding="utf-8")
    return pages


def scan_book(root: Path) -> list:
    return [f for page, text in page_texts(root).items() for f in scan_text(page, text)]


def allowed_in_use(root: Path) -> set:
    """The allowances that still match a typed figure somewhere (the others are stale)."""
    used = set()
    for page, text in page_texts(root).items():
        for sentence in sentences(text):
            for match in NUMBER.finditer(sentence):
                used.add((page, " ".join(match.group(0).split())))
    return used & set(ALLOWED)


_SPARSITY = "a sparsity the chapter chooses as a target (a setting, not a result)"
_CI = "the confidence level of every interval in the book (a convention)"
_FPS = "a camera or display rate the chapter chooses to study (a setting)"
_BUDGET = "a frame budget, 1 / frame rate, for the rate named beside it (arithmetic on a setting)"

ALLOWED = {
    # (page, figure): why it may be typed
    ("00_baseline", "100 %"): "the accuracy a too-easy dataset would give (the argument, not a result)",
    ("00_baseline", "95 %"): _CI,
    ("01_quantization", "12 bytes"): "the per-channel bookkeeping of the file format (float32 scale + int64 zero point)",
    ("01_quantization", "5 %"): "the significance level of the McNemar test (a convention)",
    ("01_quantization", "4x"): "32 bits over 8 bits (arithmetic, not a measurement)",
    ("01_quantization", "3.5x"): "the common expectation the bar states (a target, quoted beside LiteRT's table)",
    ("02_pruning", "75 %"): _SPARSITY,
    ("02_pruning", "50 %"): _SPARSITY,
    ("02_pruning", "90 %"): _SPARSITY,
    ("02_pruning", "80 %"): "the sparsity of a user's complaint the chapter quotes as a question",
    ("02_pruning", "25 %"): "a fraction of channels an exercise asks the reader to remove",
    ("02_pruning", "1 %"): "the tolerance of the per-layer sparsity check (a setting)",
    ("02_pruning", "95 %"): _CI,
    ("02_pruning", "2.5x"): "the gzip bar the chapter sets (a target)",
    ("02_pruning", "1.3x"): "the speed bar the chapter sets (a target)",
    ("02_pruning", "2x"): "what halving the channels would naively save (the expectation the text corrects)",
    ("03_distillation", "2x"): "the speed bar the chapter sets (a target)",
    ("03_distillation", "5 %"): "the significance level of the McNemar test (a convention)",
    ("04_computation", "95 %"): _CI,
    ("05_memory", "64 bytes"): "LiteRT's arena alignment (a constant of the runtime)",
    ("05_memory", "1 MiB"): "the block size of the leak probe's two controls (a setting)",
    ("05_memory", "100 %"): "the whole heap (a definition)",
    ("05_memory", "30 frames per second"): _FPS,
    ("06_energy", "75 %"): _SPARSITY,
    ("06_energy", "95 %"): _CI,
    ("06_energy", "45 °C"): "the assumed phone's throttling threshold (a setting of the thermal model)",
    ("06_energy", "50 °C"): "the assumed phone's half-clock temperature (a setting of the thermal model)",
    ("06_energy", "30 frames per second"): _FPS,
    ("06_energy", "30 fps"): _FPS,
    ("06_energy", "33.3 ms"): _BUDGET,
    ("06_energy", "5 K"): "a thermal resistance an exercise asks the reader to try",
    ("06_energy", "3.5x"): "the lower bound the robustness check asserts (a threshold)",
    ("06_energy", "4x"): "the lower bound the robustness check asserts (a threshold)",
    ("07_ux", "75 %"): _SPARSITY,
    ("07_ux", "20 %"): "the equivalence margin of the chapter's verdict (a setting)",
    ("07_ux", "30 frames per second"): _FPS,
    ("07_ux", "120 frames per second"): _FPS,
    ("07_ux", "30 Hz"): _FPS,
    ("07_ux", "60 Hz"): _FPS,
    ("07_ux", "120 Hz"): _FPS,
    ("07_ux", "16.7 ms"): _BUDGET,
    ("07_ux", "8.3 ms"): _BUDGET,
    ("08_large_models", "95 %"): _CI,
    ("10_seeds_and_digits", "95 %"): _CI,
    ("10_seeds_and_digits", "5 %"): "the significance level of the seed-level and image tests (a convention)",
    ("10_seeds_and_digits", "50 %"): _SPARSITY,
    ("10_seeds_and_digits", "75 %"): _SPARSITY,
    ("10_seeds_and_digits", "90 %"): _SPARSITY,
    ("reproducibility", "95 %"): _CI,
    ("reproducibility", "5 %"): "the significance level that sets the fewest rounds (a convention)",
    ("bars", "75 %"): "a bar quoted as an example (the page introduces the bars; mobileopt_ref.bars holds them)",
    ("bars", "2.5x"): "a bar quoted as an example (the page introduces the bars; mobileopt_ref.bars holds them)",
    ("bars", "3x"): "a bar quoted as an example (the page introduces the bars; mobileopt_ref.bars holds them)",
    ("inspect", "95 %"): _CI,
}
