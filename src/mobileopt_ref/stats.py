"""Verdicts from measurements: paired accuracy tests and confidence intervals of speed-ups.

The book's rule (DESIGN.md, "Asserts and verdicts"): an ``assert`` fails only when the code
or a dependency is wrong, never because the CPU is slower, faster, different or busy. So
anything timed is not asserted; it is measured, judged by a statistical test, and the
*verdict* is glued into prose that reads true whichever way it comes out. This module
computes those verdicts with scipy.stats:

* two models on the same test images: an exact McNemar test
  (:func:`mcnemar`, ``scipy.stats.binomtest`` on the discordant pairs);
* two latency samples measured side by side in interleaved rounds
  (:func:`mobileopt_ref.compute.compare_latency`): the ratio of their medians with a
  bootstrap confidence interval that resamples whole rounds, so that a slow minute of the
  machine, which hits every model of a round alike, widens the interval instead of
  biasing it (:func:`latency_ratio`, ``scipy.stats.bootstrap``);
* a verdict word from an interval and a null value (:func:`verdict`).

Explained in notebooks/00_baseline.ipynb.

Example:
    >>> from mobileopt_ref import stats
    >>> r = stats.mcnemar([1, 1, 0, 1], [1, 0, 0, 1])
    >>> r.only_a, r.only_b, r.verdict
    (1, 0, 'not distinguishable')
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats as _scipy_stats

LEVEL = 0.05
"""Significance level of every verdict in the book (95 % intervals, p < 0.05)."""

VERDICTS = ("above", "below", "not distinguishable")


def _check_level(level) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    return float(level)


def min_rounds(level: float = LEVEL) -> int:
    """The fewest interleaved rounds an interval over rounds needs to reach ``1 - level``.

    With ``k`` rounds (independent, each giving one estimate of a ratio), the chance that
    every round's estimate falls on the same side of the true median ratio is
    ``2 * 2**-k``; then every interval built from the rounds misses it. So an interval
    over rounds can cover with probability ``1 - level`` only if ``2 * 2**-k <= level``:
    6 rounds at the book's 5 %, 8 at 1 %.

    Args:
        level: ``1 - confidence``, in (0, 1).

    Returns:
        The smallest such ``k``.

    Raises:
        ValueError: for a level outside (0, 1).
    """
    level = _check_level(level)
    return next(k for k in range(1, 64) if 2 * 0.5**k <= level)


def verdict(low: float, high: float, null: float = 1.0) -> str:
    """The verdict of a confidence interval against a null value.

    Args:
        low, high: the interval, ``low <= high``.
        null: the value of "no effect" (1.0 for a ratio, 0.0 for a difference).

    Returns:
        ``"above"`` if the whole interval lies above ``null``, ``"below"`` if it lies
        below, else ``"not distinguishable"``.

    Raises:
        ValueError: for a non-finite bound or ``low > high``.
    """
    low, high, null = float(low), float(high), float(null)
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(null)):
        raise ValueError(f"interval and null must be finite, got ({low}, {high}) and {null}")
    if low > high:
        raise ValueError(f"interval low {low} is above its high {high}")
    if low > null:
        return "above"
    if high < null:
        return "below"
    return "not distinguishable"


@dataclasses.dataclass(frozen=True)
class McNemar:
    """Two classifiers compared on the same images.

    Attributes:
        n: number of images.
        accuracy_a, accuracy_b: top-1 accuracies in [0, 1].
        only_a: images model A got right and model B wrong (discordant pairs).
        only_b: images model B got right and model A wrong.
        p_value: exact two-sided McNemar p-value, ``binomtest(only_a, only_a + only_b,
            0.5)``; 1.0 when there is no discordant pair.
        level: significance level of the verdict.
        verdict: ``"A better"``, ``"B better"`` or ``"not distinguishable"``.
    """

    n: int
    accuracy_a: float
    accuracy_b: float
    only_a: int
    only_b: int
    p_value: float
    level: float
    verdict: str

    @property
    def difference(self) -> float:
        """``accuracy_b - accuracy_a``, in [-1, 1]."""
        return self.accuracy_b - self.accuracy_a

    @property
    def phrase(self) -> str:
        """The verdict on B's accuracy against A's, as a phrase for prose.

        One of ``"significantly higher (exact McNemar p = 0.003)"``, ``"significantly lower
        (...)"`` or ``"not distinguishable at the 95 % level (...)"``.
        """
        if self.verdict == "not distinguishable":
            return f"not distinguishable at the {100 * (1 - self.level):.0f} % level (exact McNemar {p_text(self.p_value)})"
        word = "higher" if self.verdict == "B better" else "lower"
        return f"significantly {word} (exact McNemar {p_text(self.p_value)})"

    @property
    def note(self) -> str:
        """The verdict in a shorter form, for tables and parentheses.

        For example ``"significantly higher, exact McNemar p = 0.036"``.
        """
        word = {"B better": "significantly higher", "A better": "significantly lower"}.get(self.verdict, self.verdict)
        return f"{word}, exact McNemar {p_text(self.p_value)}"


def p_text(p: float) -> str:
    """A p-value for prose: ``"p = 0.036"`` (two significant digits) or ``"p < 0.0001"``."""
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a p-value lies in [0, 1], got {p}")
    return f"p = {p:.2g}" if p >= 1e-4 else "p < 0.0001"


def _as_correct(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of per-image correctness, got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.all(np.isin(arr, (0, 1))):
            raise ValueError(f"{name} must hold booleans or 0/1 (image right or wrong)")
        arr = arr.astype(bool)
    return arr


def mcnemar(correct_a, correct_b, *, level: float = LEVEL) -> McNemar:
    """Exact McNemar test of two classifiers on the same images.

    Only images where the two disagree carry information: if A and B were equally
    accurate, each such image would be A's with probability 1/2, so
    ``only_a ~ Binomial(only_a + only_b, 1/2)``; the p-value is that binomial test's
    (``scipy.stats.binomtest``), exact for any count.

    Args:
        correct_a, correct_b: ``bool`` (or 0/1) arrays ``(n,)``: whether each model got
            each image right, in the same image order.
        level: significance level in (0, 1).

    Returns:
        A :class:`McNemar`.

    Raises:
        ValueError: for arrays of different lengths, empty arrays, values other than
            booleans or 0/1, or a bad level.
    """
    level = _check_level(level)
    a = _as_correct(correct_a, "correct_a")
    b = _as_correct(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(f"correct_a and correct_b must cover the same images, got {a.size} and {b.size}")
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(b & ~a))
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(_scipy_stats.binomtest(only_a, discordant, 0.5).pvalue)
    if p < level:
        word = "A better" if only_a > only_b else "B better"
    else:
        word = "not distinguishable"
    return McNemar(
        n=int(a.size),
        accuracy_a=float(a.mean()),
        accuracy_b=float(b.mean()),
        only_a=only_a,
        only_b=only_b,
        p_value=p,
        level=level,
        verdict=word,
    )


def accuracy_difference_interval(correct_a, correct_b, *, level: float = LEVEL) -> tuple:
    """Confidence interval of ``accuracy(A) - accuracy(B)`` on the same images.

    The companion of :func:`mcnemar`: only the ``m = only_a + only_b`` images where the
    two disagree move the difference, ``(only_a - only_b) / n = m (2 q - 1) / n`` with
    ``q = only_a / m``. Given ``m``, ``only_a ~ Binomial(m, q)``; the exact
    (Clopper-Pearson) interval ``[q_lo, q_hi]`` of ``q`` (:func:`proportion_interval`)
    gives the interval ``[m (2 q_lo - 1) / n, m (2 q_hi - 1) / n]`` of the difference.
    It is conditional on ``m``, as the exact McNemar test is.

    Args:
        correct_a, correct_b: ``bool`` (or 0/1) arrays ``(n,)``, as in :func:`mcnemar`.
        level: significance level in (0, 1).

    Returns:
        ``(estimate, low, high)``: fractions in ``[-1, 1]`` (multiply by 100 for points);
        ``(0.0, 0.0, 0.0)`` when the two never disagree.

    Raises:
        ValueError: as :func:`mcnemar`.
    """
    test = mcnemar(correct_a, correct_b, level=level)
    m, n = test.only_a + test.only_b, test.n
    estimate = (test.only_a - test.only_b) / n
    if m == 0:
        return 0.0, 0.0, 0.0
    q_lo, q_hi = proportion_interval(test.only_a, m, level=level)
    return float(estimate), m * (2 * q_lo - 1) / n, m * (2 * q_hi - 1) / n


@dataclasses.dataclass(frozen=True)
class Ratio:
    """A ratio of two medians with its bootstrap confidence interval.

    Attributes:
        estimate: ``median(baseline) / median(variant)`` (> 1: the variant is faster).
        low, high: the confidence interval.
        confidence: its coverage, ``1 - level``.
        method: ``"rounds"`` (paired bootstrap over interleaved rounds) or ``"samples"``
            (independent bootstrap over single runs, when round structure is missing).
        verdict: :func:`verdict` of the interval against 1: ``"above"`` (faster),
            ``"below"`` (slower) or ``"not distinguishable"``.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    method: str
    verdict: str
    words: tuple = ("faster", "slower")

    @property
    def speed_word(self) -> str:
        """``"faster"``, ``"slower"`` or ``"not distinguishable"`` (for speed-ups)."""
        return {"above": "faster", "below": "slower"}.get(self.verdict, "not distinguishable")

    @property
    def word(self) -> str:
        """The verdict in this ratio's own words.

        ``words[0]`` when the interval lies above 1, ``words[1]`` when below, else
        ``"not distinguishable"``.
        """
        return {"above": self.words[0], "below": self.words[1]}.get(self.verdict, "not distinguishable")

    def worded(self, above: str, below: str) -> "Ratio":
        """The same ratio with other verdict words, for ratios that are not speed-ups.

        ``latency_ratio(warm, cold)`` of a cold start against a warm inference reads
        better as ``.worded("longer", "shorter")``.
        """
        return dataclasses.replace(self, words=(str(above), str(below)))

    def clause(self, other: str) -> str:
        """A clause that reads true for any verdict: ``"longer than X (2.10x, 95 % CI 1.90-2.30)"``."""
        head = self.than(other)
        return (f"{head} ({self.estimate:.2f}x, {100 * self.confidence:.0f} % CI "
                f"{self.low:.2f}-{self.high:.2f})")

    def text(self, digits: int = 2) -> str:
        """``"1.93x (95 % CI 1.85-2.01)"``."""
        return (f"{self.estimate:.{digits}f}x ({100 * self.confidence:.0f} % CI "
                f"{self.low:.{digits}f}-{self.high:.{digits}f})")

    def than(self, other: str, *, quantity: str | None = None) -> str:
        """The verdict as a phrase: ``"faster than X"``, ``"slower than X"`` or ``"not distinguishable from X"``
        (with :meth:`worded` words instead of faster/slower).

        With ``quantity="speed"`` the last reads ``"not distinguishable in speed from X"``.
        """
        neutral = f"not distinguishable in {quantity} from {other}" if quantity else f"not distinguishable from {other}"
        return {"above": f"{self.words[0]} than {other}", "below": f"{self.words[1]} than {other}"}.get(
            self.verdict, neutral)

    def inverted(self) -> "Ratio":
        """The reciprocal ratio, ``1 / estimate`` with the interval ``(1 / high, 1 / low)``.

        The verdict words stay as they are: they name what "above 1" means for the ratio
        at hand, so choose them (:meth:`worded`) for the inverted ratio's meaning.
        """
        if self.low <= 0:
            raise ValueError(f"cannot invert an interval that reaches {self.low}")
        return Ratio(1 / self.estimate, 1 / self.high, 1 / self.low, self.confidence, self.method,
                     verdict(1 / self.high, 1 / self.low), self.words)

    def scaled(self, factor: float, null: float = 1.0) -> "Ratio":
        """The ratio times an exact positive ``factor`` (a ratio of counts, say), judged against ``null``.

        For example, a time ratio ``T_a / T_b`` inverted and scaled by ``MACs_a / MACs_b``
        is the ratio of MACs per second, with its interval.
        """
        if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
            raise ValueError(f"factor must be a positive number, got {factor!r}")
        low, high = self.low * factor, self.high * factor
        return Ratio(self.estimate * factor, low, high, self.confidence, self.method, verdict(low, high, null),
                     self.words)

    def to_dict(self) -> dict:
        """Plain numbers and words, for a results record."""
        return dataclasses.asdict(self)


def _rounds(stats) -> list | None:
    sizes = getattr(stats, "round_sizes", None)
    if not sizes:
        return None
    x = np.asarray(stats.samples_ms, dtype=np.float64)
    edges = np.cumsum((0, *sizes))
    return [x[edges[i]:edges[i + 1]] for i in range(len(sizes))]


def latency_ratio(baseline, variant, *, level: float = LEVEL, n_resamples: int = 2000,
                  seed: int = 0, null: float = 1.0) -> Ratio:
    """How many times faster ``variant`` is than ``baseline``, with a confidence interval.

    The estimate is the ratio of medians, ``median(baseline) / median(variant)``. When
    both were measured side by side by :func:`mobileopt_ref.compute.compare_latency` (they
    carry ``round_sizes`` with the same number of rounds, at least :func:`min_rounds`: 6 at
    the book's level), the interval comes from a paired bootstrap over rounds: each
    resample draws rounds with replacement and takes both models' samples from the *same*
    rounds, so the machine's drift between rounds enters the interval. Otherwise (no
    rounds, or too few for the level) the two samples are bootstrapped independently, run
    by run. Both use ``scipy.stats.bootstrap`` with the percentile method.

    Few rounds limit any interval over rounds (:func:`min_rounds`): with ``k`` rounds the
    chance that every round's ratio falls on one side of the true one is ``2 * 2**-k``
    (25 % for 3 rounds, 6.25 % for 5), which is why fewer rounds fall back to the runs;
    the percentile bootstrap also falls somewhat short of its level with few rounds or
    few runs. ``compare_latency``'s default is 10 rounds.

    Args:
        baseline, variant: :class:`mobileopt_ref.compute.LatencyStats`.
        level: ``1 - confidence``, in (0, 1).
        n_resamples: bootstrap resamples (at least 100).
        seed: seed of the resampling (the interval is reproducible for given samples).
        null: the ratio the verdict is judged against (1.0: "no faster, no slower").

    Returns:
        A :class:`Ratio`.

    Raises:
        ValueError: for empty samples, a bad level or too few resamples.
    """
    level = _check_level(level)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 100:
        raise ValueError(f"n_resamples must be an integer >= 100, got {n_resamples!r}")
    a = np.asarray(baseline.samples_ms, dtype=np.float64)
    b = np.asarray(variant.samples_ms, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("latency_ratio needs two non-empty latency samples")
    estimate = float(np.median(a) / np.median(b))
    rng = np.random.default_rng(seed)
    ra, rb = _rounds(baseline), _rounds(variant)
    if ra is not None and rb is not None and len(ra) == len(rb) and len(ra) >= min_rounds(level):
        method = "rounds"

        def statistic(idx, axis=-1):
            idx = np.atleast_2d(idx)
            out = np.empty(idx.shape[0])
            for k, rows in enumerate(idx.astype(int)):
                out[k] = np.median(np.concatenate([ra[i] for i in rows])) / np.median(
                    np.concatenate([rb[i] for i in rows]))
            return out if out.size > 1 else out[0]

        result = _scipy_stats.bootstrap(
            (np.arange(len(ra)),), statistic, vectorized=True, n_resamples=n_resamples,
            confidence_level=1 - level, method="percentile", random_state=rng)
    else:
        method = "samples"

        def statistic(x, y, axis=-1):
            return np.median(x, axis=axis) / np.median(y, axis=axis)

        result = _scipy_stats.bootstrap(
            (a, b), statistic, vectorized=True, paired=False, n_resamples=n_resamples,
            confidence_level=1 - level, method="percentile", random_state=rng)
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    low, high = min(low, estimate), max(high, estimate)
    return Ratio(estimate=estimate, low=low, high=high, confidence=1 - level, method=method,
                 verdict=verdict(low, high, null))


def rounds_ratio(statistic, runs: dict, *, null: float = 1.0, level: float = LEVEL,
                 n_resamples: int = 2000, seed: int = 0) -> Ratio:
    """Any ratio built from several models' medians, with a bootstrap interval over rounds.

    :func:`latency_ratio` covers one model against another; this covers statistics of many
    medians measured side by side in one :func:`mobileopt_ref.compute.compare_latency` run,
    such as "share of the time spent in depthwise operators over their share of the MACs".
    Each resample draws interleaved rounds with replacement and recomputes every model's
    median from the same rounds, then the statistic (``scipy.stats.bootstrap``, percentile
    method).

    Args:
        statistic: a function of ``{name: median}`` returning a positive number. During
            resampling the medians are arrays (one value per resample), so write it with
            arithmetic that works element-wise (``+ - * /``, ``sum``), not ``if``.
        runs: ``{name: LatencyStats}`` from one ``compare_latency`` call (same number of
            rounds for every model, at least :func:`min_rounds`: 6 at the book's level).
        null: the value the verdict is judged against.
        level, n_resamples, seed: as in :func:`latency_ratio`.

    Returns:
        A :class:`Ratio` (method ``"rounds"``).

    Raises:
        ValueError: for runs without a common round structure, a bad level or too few
            resamples.
    """
    level = _check_level(level)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 100:
        raise ValueError(f"n_resamples must be an integer >= 100, got {n_resamples!r}")
    split = {name: _rounds(s) for name, s in runs.items()}
    counts = {len(r) if r is not None else 0 for r in split.values()}
    need = min_rounds(level)
    if not runs or len(counts) != 1 or min(counts) < need:
        raise ValueError("rounds_ratio needs LatencyStats from one compare_latency run, with the "
                         f"same number of rounds for every model, at least {need} for a "
                         f"{100 * (1 - level):g} % interval (got {sorted(counts)})")
    n_rounds = counts.pop()
    equal = {tuple(s.round_sizes) for s in runs.values()}
    if len(equal) == 1 and len(set(next(iter(equal)))) == 1:
        # every model ran the same invokes in every round: a (round, invoke) matrix each
        blocks = {name: np.asarray(s.samples_ms, dtype=np.float64).reshape(n_rounds, -1) for name, s in runs.items()}

        def medians(idx):
            return {name: np.median(b[idx].reshape(len(idx), -1), axis=1) for name, b in blocks.items()}
    else:
        def medians(idx):
            return {name: np.array([np.median(np.concatenate([r[i] for i in row])) for row in idx])
                    for name, r in split.items()}

    def resampled(idx, axis=-1):
        idx = np.atleast_2d(idx).astype(int)
        value = np.asarray(statistic(medians(idx)), dtype=np.float64)
        return value if value.size > 1 else value.item()

    estimate = float(statistic({name: float(np.median(s.samples_ms)) for name, s in runs.items()}))
    result = _scipy_stats.bootstrap(
        (np.arange(n_rounds),), resampled, vectorized=True, n_resamples=n_resamples,
        confidence_level=1 - level, method="percentile", random_state=np.random.default_rng(seed))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    low, high = min(low, estimate), max(high, estimate)
    return Ratio(estimate=estimate, low=low, high=high, confidence=1 - level, method="rounds",
                 verdict=verdict(low, high, null))


def over_median(value: float, sample, *, level: float = LEVEL) -> Ratio:
    """A fixed value (a published figure, a modelled time) over a measured sample's median.

    The interval comes from the median's distribution-free confidence interval
    (:func:`mobileopt_ref.compute.median_confidence_interval`, order statistics), since the
    value itself carries no sampling error: ``(value / high, value / low)``.

    Args:
        value: a positive number in the sample's unit.
        sample: a :class:`mobileopt_ref.compute.LatencyStats` (or anything with
            ``samples_ms``).
        level: ``1 - confidence``.

    Returns:
        A :class:`Ratio` with method ``"median interval"``, judged against 1.

    Raises:
        ValueError: for a non-positive value, an empty sample or a sample whose interval
            reaches 0.
    """
    from mobileopt_ref import compute  # noqa: PLC0415 - compute imports litert, TensorFlow

    level = _check_level(level)
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"value must be a positive number, got {value!r}")
    x = np.asarray(sample.samples_ms, dtype=np.float64)
    if x.size == 0:
        raise ValueError("over_median needs a non-empty sample")
    lo, hi = compute.median_confidence_interval(x, 1 - level)
    if lo <= 0:
        raise ValueError("the sample's median interval reaches 0; the ratio is unbounded")
    low, high = value / hi, value / lo
    estimate = value / float(np.median(x))
    return Ratio(estimate, low, high, 1 - level, "median interval", verdict(low, high))


def proportion_interval(successes: int, trials: int, *, level: float = LEVEL) -> tuple:
    """Exact (Clopper-Pearson) confidence interval of a proportion.

    For counts such as dropped refreshes out of all refreshes, or images right out of all
    images (``scipy.stats.binomtest(...).proportion_ci(method="exact")``).

    Returns:
        ``(low, high)`` in [0, 1].

    Raises:
        ValueError: for negative counts or ``successes > trials`` or ``trials == 0``.
    """
    level = _check_level(level)
    for name, v in (("successes", successes), ("trials", trials)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    if trials == 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes} of {trials}")
    ci = _scipy_stats.binomtest(int(successes), int(trials)).proportion_ci(1 - level, method="exact")
    return float(ci.low), float(ci.high)
