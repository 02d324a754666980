"""The bars: the targets the chapters judge themselves by, introduced in one place.

A *bar* is a target a chapter sets before measuring ("the 75 % pruned file is at least
2.5x smaller after gzip"), then judges with a status computed from its measurement: never
typed, never bent after the fact, and kept in the chapter's table when missed. Each bar is
one of three kinds:

- ``"deterministic"``: judged from a figure that comes out the same on every machine (a
  count, the size of a deterministic conversion, the accuracy of a shipped model, a modelled
  figure); the notebook asserts the ones that must hold (invariants) and reports a missed
  target with its figure;
- ``"statistical"``: a timed or paired comparison, judged by a confidence interval or an
  exact McNemar test: met when the interval lies on the right side of the target, missed
  when it lies on the wrong side, undecided when it contains it;
- ``"reported"``: a figure the chapter must measure and show, whatever it is.

The book's page "The bars" renders :data:`BARS`; a test keeps the chapters' bars tables and
this registry in step (every row of a chapter's table matches exactly one bar of that
chapter, and every tabled bar appears).
"""

from __future__ import annotations

import dataclasses
import math
import re

#: The three ways a bar is judged (see the module's description).
KINDS = ("deterministic", "statistical", "reported")


@dataclasses.dataclass(frozen=True)
class Bar:
    """One target a chapter judges itself by.

    Attributes:
        chapter: the notebook's stem, e.g. ``"02_pruning"``.
        statement: the target in words, as the book states it.
        kind: one of :data:`mobileopt_ref.bars.KINDS`.
        why: why this value (its reasoning, anchor or source).
        pattern: a regular expression matching the row(s) of the chapter's bars table that
            judge this bar; ``None`` for a bar the chapter asserts in code without a table.
    """

    chapter: str
    statement: str
    kind: str
    why: str
    pattern: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.pattern is not None:
            re.compile(self.pattern)

    def matches(self, row: str) -> bool:
        """Whether a bars-table row's first cell is this bar's."""
        return self.pattern is not None and re.search(self.pattern, row) is not None


def ideal_sparse_ratio(sparsity: float, bits: int = 32) -> float:
    """The best size ratio a lossless coder can reach on a weight tensor with ``sparsity``
    zeros at random positions, against the dense tensor: ``bits / ((1 - s) * bits + H(s))``.

    Each weight costs ``H(s)`` bits to say whether it is zero (the binary entropy), and each
    non-zero its ``bits`` (float32 weights are close to incompressible).

    Args:
        sparsity: fraction of zeros ``s``, in ``[0, 1)``.
        bits: bits of a non-zero weight.

    Raises:
        ValueError: ``sparsity`` outside ``[0, 1)`` or ``bits`` < 1.
    """
    if not 0 <= sparsity < 1 or bits < 1:
        raise ValueError(f"need 0 <= sparsity < 1 and bits >= 1, got sparsity={sparsity}, bits={bits}")
    s = sparsity
    entropy = 0.0 if s == 0 else -(s * math.log2(s) + (1 - s) * math.log2(1 - s))
    return bits / ((1 - s) * bits + entropy)


_IDEAL_75 = ideal_sparse_ratio(0.75)

#: Every bar of the book, in reading order.
BARS = (
    # 01 quantization
    Bar("01_quantization", "the full-integer int8 file is at least 3.5x smaller than float32", "deterministic",
        "32 bits to 8 is 4x on the weights; 3.5x leaves an eighth of the file for what does not shrink "
        "(int32 biases, per-channel scales and zero points, the graph). LiteRT's published table reaches "
        "3.9x on MobileNetV2."),
    Bar("01_quantization", "post-training full-integer int8 loses at most 2 accuracy points", "deterministic",
        "a loss small enough to ship for a 4x smaller file; the published ImageNet MobileNetV2 lost far "
        "more with an early PTQ tool (LiteRT's table), which is why the chapter measures instead of assuming."),
    Bar("01_quantization", "quantization-aware training loses at most 1 point", "deterministic",
        "QAT trains the weights to absorb the rounding, so it is held to half the PTQ bar; tfmot's "
        "published QAT table loses under one point on MobileNetV2."),
    # 02 pruning
    Bar("02_pruning", "75 % unstructured sparsity: gzip at least 2.5x smaller than the dense file's gzip", "deterministic",
        f"the ideal lossless ratio for 75 % zeros at random positions in float32 is {_IDEAL_75:.2f}x "
        "(ideal_sparse_ratio: the non-zeros cost their bits, the zero mask its entropy); gzip is a "
        "general-purpose coder, so the bar asks for about two thirds of the ideal. Judged on the figure as "
        "printed.",
        r"gzip >= 2\.5x"),
    Bar("02_pruning", "75 % unstructured sparsity loses at most 2 accuracy points", "deterministic",
        "the same tolerance as PTQ int8: pruning is worth it only if it costs no more than quantizing. "
        "Judged against the dense student and against the control fine-tuned as long, whichever is stricter.",
        r"75 % unstructured.*loses <= 2 points"),
    Bar("02_pruning", "the sparsity read back from the .tflite is within 1 point of the target on every pruned layer",
        "deterministic", "the conversion must keep the zeros; 1 point allows for layers whose weight count is not "
        "divisible by the target fraction.", r"sparsity read from the \.tflite"),
    Bar("02_pruning", "removing half the hidden channels makes p50 at least 1.3x faster", "statistical",
        "halving the expansion channels halves most MACs, but time does not follow MACs (depthwise layers and "
        "fixed per-operator costs are memory-bound), so the bar asks for a modest share of the naive 2x.",
        r"p50 >= 1\.3x faster"),
    Bar("02_pruning", "removing half the hidden channels loses at most 3 points after fine-tuning", "deterministic",
        "structured pruning removes capacity outright, so it gets one point more than unstructured pruning.",
        r"half the hidden channels removed: loses <= 3 points"),
    # 03 distillation
    Bar("03_distillation", "the distilled student beats the student trained alone by at least 1 point at equal epochs",
        "statistical", "the smallest gain worth a teacher's training cost; judged beside an exact McNemar test, "
        "since a one-point difference on 2,000 images is near the noise.",
        r"beats the student alone by >= 1 point"),
    Bar("03_distillation", "the distilled student's .tflite is at least 4x smaller than the teacher's", "deterministic",
        "a student is worth distilling only if it is much cheaper: in float32 it must save at least what "
        "int8's 32-to-8 bits promise.", r">= 4x smaller than the teacher"),
    Bar("03_distillation", "the distilled student is at least 2x faster than the teacher (p50, same run)", "statistical",
        "the student has several times fewer MACs; time does not follow MACs, so half is asked.",
        r">= 2x faster than the teacher"),
    # 04 computation
    Bar("04_computation", "MAC and parameter counts equal the published MobileNetV2 figures", "deterministic",
        "a counting identity: the counter must reproduce Sandler et al.'s table exactly.",
        r"MAC and parameter counts equal"),
    Bar("04_computation", "XNNPACK is at least 3x faster than LiteRT's reference kernels (p50, same run)", "statistical",
        "the reference kernels are plain loops written for correctness; an optimized library that did not beat "
        "them by a wide margin would be misconfigured.", r"XNNPACK >= 3x faster"),
    Bar("04_computation", "2 threads are faster than 1 (p50, same run)", "statistical",
        "the hardware lever h the article names; a verdict per precision, since it need not hold for a small model.",
        r"2 threads faster than 1"),
    Bar("04_computation", "e and h reported for an algorithmic and a hardware change, as ratios from one run", "reported",
        "the article's T_a = T/e and T_h = T/h made concrete: each factor must be measured, whatever it is.",
        r"e and h from one run"),
    # 05 memory
    Bar("05_memory", "the greedy-by-size arena is at most a third of the naive one (MobileNetV2, 224 px)", "deterministic",
        "a network whose tensors live briefly reuses memory heavily; a planner that saved less would be doing "
        "little more than the naive one.", r"greedy-by-size arena <= naive / 3"),
    Bar("05_memory", "the greedy-by-size arena is within 10 % of the lower bound", "deterministic",
        "the lower bound (the largest set of tensors alive at once) cannot be beaten; a heuristic within a "
        "tenth of it leaves nothing worth a better planner.", r"within 10 % of the lower bound"),
    Bar("05_memory", "the int8 arena is within 10 % of float32's divided by 4", "deterministic",
        "activations shrink from 4 bytes to 1; the plan's shape should not change with the element size.",
        r"int8 arena within 10 %"),
    Bar("05_memory", "every plan passes the no-overlap checker", "deterministic",
        "an arena plan that lets two live tensors share bytes corrupts results silently.", r"no-overlap checker"),
    Bar("05_memory", "the RSS growth of a process is reported against the planned arena", "reported",
        "what the planner promises and what the process takes differ (code, allocator, caches); the ratio "
        "is measured, not assumed.", r"RSS growth"),
    Bar("05_memory", "leaks are measured as a growth per cycle with its interval", "reported",
        "a leak is a trend, not one reading: the probe reports the slope and whether its interval "
        "excludes growth at the stated level.", r"leak probe|classic leak"),
    # 06 energy
    Bar("06_energy", "int8 energy per inference is at least 4x lower than float32 (modelled)", "deterministic",
        "the bytes moved shrink 4x and, in Horowitz's table, an int8 multiply-add costs far less than a "
        "float32 one, so 4x is the floor the bytes alone set. The book's 32 px models are reported beside it.", r"energy per inference >= 4x lower|book's trained models at 32 px"),
    Bar("06_energy", "the thermal simulation conserves energy", "deterministic",
        "heat in = heat stored + heat out, to rounding: a model that loses energy cannot be trusted.",
        r"conserves energy"),
    Bar("06_energy", "RAPL energy measured where readable, the reason given where not", "reported",
        "a measured figure beats a model; where the machine hides it, the book says why.", r"RAPL"),
    # 07 ux
    Bar("07_ux", "the UI-thread design drops at least the frames its frame time forces", "deterministic",
        "a check of the simulation itself: a frame that takes longer than a refresh cannot be shown on time.",
        r"UI-thread design drops at least"),
    Bar("07_ux", "the worker-thread design drops fewer UI frames than the UI-thread design", "statistical",
        "the design lesson of the chapter; judged refresh by refresh with an exact McNemar test.",
        r"worker thread drops fewer|\.\.\. at 60 Hz"),
    Bar("07_ux", "cold start is reported separately from warm latency", "reported",
        "a user's first inference pays for loading and planning; hiding it in a warm median misleads.",
        r"cold start reported separately"),
    # 08 large models
    Bar("08_large_models", "the dynamic-int8 file is at most 0.40x the float32 file", "deterministic",
        "int8 weights are a quarter of float32's; 0.40 leaves room for what stays float (embeddings a "
        "recipe skips, norms, scales).", r"int8 file <= 0\.40x"),
    Bar("08_large_models", "the int4 block-32 file is at most 0.27x the float32 file", "deterministic",
        "int4 is an eighth of float32, plus one float16 scale per 32 weights (half a bit per weight); "
        "0.27 leaves room for what stays float.", r"int4 block 32 file <= 0\.27x"),
    Bar("08_large_models", "dynamic int8 keeps held-out bits per byte within 0.01 of float32", "deterministic",
        "a byte-level model's quality is its bits per byte; 0.01 is a loss no reader of its text would notice.",
        r"bits per byte: int8 within"),
    Bar("08_large_models", "int4 block 32 keeps bits per byte within 0.05 of float32 and no worse than int4 "
        "channel-wise", "deterministic",
        "4 bits lose more than 8, so the tolerance is five times int8's; blockwise scales exist to beat "
        "one scale per channel, so they must not lose to it.", r"bits per byte: int4 block 32"),
    Bar("08_large_models", "on the wider model, int8 and int4 block-32 decode at least 1.5x as many tokens/s as "
        "float32", "statistical",
        "decoding reads every weight once per token, so fewer bytes should mean more tokens per second; "
        "1.5x asks for a clear share of the 4x and 8x byte ratios.", r"decode tokens/s of .* >= 1\.5x"),
    Bar("08_large_models", "float32 decode streams at least 50 % and at most 100 % of the measured memory "
        "bandwidth", "statistical",
        "the bandwidth bound says decode cannot read weights faster than memory delivers them (100 %); "
        "a runtime that reached less than half of it would be leaving the bound unused.",
        r"float32 decode streams"),
    Bar("08_large_models", "the dynamic-int8 model's peak RSS is at most 0.5x float32's (fresh process)",
        "statistical", "the weights dominate a language model's memory; int8 weights should at least halve "
        "it, measured, since a runtime may keep float copies.", r"peak RSS of dynamic int8"),
    # 09 case study
    Bar("09_case_study", "the chain's file is at least 10x smaller than the float teacher's", "deterministic",
        "the article's own case study goes from 100 MB to 10 MB; int8 alone gives 4x and half the hidden "
        "channels about 2x more, so 10x asks the whole chain to deliver the article's factor.",
        r"chain's file >= 10x smaller"),
    Bar("09_case_study", "the chain's p50 latency is at least 5x lower than the teacher's (95 % CI, side by side)",
        "statistical", "half the article's 10 s to 1 s: time does not follow MACs or bytes (fixed per-operator "
        "costs, memory-bound depthwise layers), so half the claimed factor is asked, judged by its interval.",
        r"p50 latency >= 5x lower"),
    Bar("09_case_study", "the chain's LiteRT arena is at least 5x smaller than the teacher's", "deterministic",
        "the article's 500 MB to 100 MB; the arena is the part of memory a model decides, and int8 "
        "activations alone are 4x smaller, so the narrower student must add to it.", r"LiteRT arena >= 5x"),
    Bar("09_case_study", "the chain loses at most 2 accuracy points against the teacher (exact McNemar test "
        "beside it)", "deterministic", "the same tolerance as the quantization and pruning chapters: a chain "
        "is worth shipping only if its steps together cost no more than one of them is allowed.",
        r"accuracy loses <= 2 points"),
    Bar("09_case_study", "every row of the article's case study has a measured, counted, modelled or published "
        "counterpart and a computed verdict", "reported",
        "the article gives figures without a way to reproduce them; the book's answer is a figure and a "
        "verdict for each, asserted in the chapter's code."),
)


def for_chapter(chapter: str) -> list:
    """The bars of one chapter (its notebook's stem), in order."""
    return [b for b in BARS if b.chapter == chapter]


def match_row(chapter: str, row: str) -> list:
    """The bars of ``chapter`` whose pattern matches a bars-table row's first cell."""
    return [b for b in for_chapter(chapter) if b.matches(row)]


def to_markdown() -> str:
    """Every bar as one markdown table: chapter, bar, kind, why this value."""
    lines = ["| chapter | bar | kind | why this value |", "|---|---|---|---|"]
    for b in BARS:
        lines.append(f"| {{doc}}`../notebooks/{b.chapter}` | {b.statement} | {b.kind} | {b.why} |")
    return "\n".join(lines)
