"""The latency benchmark harness.

Timings on a shared two-core machine are noisy, so the harness never reports a single
time. It warms each interpreter up, times many single-image invokes, and reports the
median with a distribution-free confidence interval plus the 90th and 99th percentiles.
Variants that are to be compared are measured *side by side*: in interleaved rounds
within one run, so that a slow minute of the machine slows all of them alike and their
ratio stays meaningful.

Explained in notebooks/00_baseline.ipynb.

Example:
    >>> from mobileopt_ref import compute
    >>> stats = compute.measure_latency(tflite, num_runs=200)  # doctest: +SKIP
    >>> stats.p50_ms, stats.p99_ms  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from mobileopt_ref import data, litert


@dataclasses.dataclass(frozen=True)
class LatencyStats:
    """Summary of a latency sample.

    Attributes:
        samples_ms: every timed run, in milliseconds, in the order measured.
        p50_ms, p90_ms, p99_ms: percentiles (linear interpolation).
        mean_ms: arithmetic mean.
        ci95_ms: ``(low, high)``, a 95 % confidence interval of the median.
    """

    samples_ms: tuple
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    ci95_ms: tuple

    @property
    def runs(self) -> int:
        """Number of timed runs."""
        return len(self.samples_ms)

    def summary(self) -> dict:
        """Returns the statistics without the raw samples."""
        return {
            "runs": self.runs,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "ci95_low_ms": self.ci95_ms[0],
            "ci95_high_ms": self.ci95_ms[1],
        }


def median_confidence_interval(samples, confidence: float = 0.95) -> tuple:
    """Distribution-free confidence interval of the median from order statistics.

    The number of samples below the true median is Binomial(n, 1/2). With the normal
    approximation, the interval ``[x_(j), x_(k)]`` of the sorted sample with
    ``j = floor(n/2 - z sqrt(n)/2)`` and ``k = ceil(n/2 + z sqrt(n)/2)`` (1-based ranks,
    clipped to ``[1, n]``) covers the median with probability ``confidence``; ``z`` is
    the normal quantile (1.96 for 95 %). It assumes nothing about the shape of the
    latency distribution, which is skewed.

    Args:
        samples: at least one value.
        confidence: coverage in ``(0, 1)``.

    Returns:
        ``(low, high)``.

    Raises:
        ValueError: for an empty sample or a confidence outside ``(0, 1)``.
    """
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(x)
    if n == 0:
        raise ValueError("cannot compute a confidence interval of an empty sample")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    from statistics import NormalDist  # noqa: PLC0415

    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    j = max(1, math.floor(n / 2.0 - z * math.sqrt(n) / 2.0))
    k = min(n, math.ceil(n / 2.0 + z * math.sqrt(n) / 2.0 + 1.0))
    return float(x[j - 1]), float(x[k - 1])


def latency_stats(samples_ms) -> LatencyStats:
    """Summarises latency samples (milliseconds) into a :class:`LatencyStats`.

    Raises:
        ValueError: for an empty sample or non-finite or negative times.
    """
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.size == 0:
        raise ValueError("latency sample is empty: measure at least one run")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError("latency samples must be finite, non-negative times")
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return LatencyStats(
        samples_ms=tuple(float(v) for v in x),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        mean_ms=float(x.mean()),
        ci95_ms=median_confidence_interval(x),
    )


def _check_runs(num_runs, warmup, rounds=1):
    if isinstance(num_runs, bool) or not isinstance(num_runs, int) or num_runs < 1:
        raise ValueError(f"num_runs must be a positive integer, got {num_runs!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= num_runs:
        raise ValueError(f"rounds must be an integer in [1, num_runs={num_runs}], got {rounds!r}")


def _prepared_interpreter(model, num_threads, kernels, seed):
    """An interpreter with a fixed random input in place, ready to invoke."""
    interpreter = litert.make_interpreter(model, num_threads=num_threads, kernels=kernels)
    inp = interpreter.get_input_details()[0]
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=inp["shape"], dtype=np.uint8)
    interpreter.set_tensor(inp["index"], litert.quantize_input(data.preprocess(image), inp))
    return interpreter


def _time_invokes(interpreter, n: int) -> list:
    times = []
    for _ in range(n):
        start = time.perf_counter_ns()
        interpreter.invoke()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def measure_latency(
    model,
    *,
    num_runs: int = 200,
    warmup: int = 20,
    num_threads: int = 2,
    kernels: str = "xnnpack",
    seed: int = 0,
) -> LatencyStats:
    """Times single-image invokes of one ``.tflite`` model.

    Args:
        model: ``.tflite`` bytes or path.
        num_runs: timed invokes (positive).
        warmup: untimed invokes first (non-negative); they fill caches and let XNNPACK
            finish its lazy set-up.
        num_threads: interpreter threads.
        kernels: one of :data:`mobileopt_ref.litert.KERNELS`.
        seed: seed of the random input image.

    Raises:
        ValueError: for a bad run count, warm-up or model.
    """
    return compare_latency(
        {"model": model},
        num_runs=num_runs,
        warmup=warmup,
        rounds=1,
        num_threads=num_threads,
        kernels=kernels,
        seed=seed,
    )["model"]


def compare_latency(
    models: dict,
    *,
    num_runs: int = 200,
    warmup: int = 20,
    rounds: int = 10,
    num_threads: int = 2,
    kernels: str | dict = "xnnpack",
    seed: int = 0,
) -> dict:
    """Measures several models side by side, interleaved in rounds.

    Every model is warmed up, then each round times ``num_runs / rounds`` invokes of
    every model in turn. Drift in the machine's speed (other processes, frequency
    changes) then hits all models alike, so ratios of their medians are trustworthy
    even when absolute times wander.

    Args:
        models: ``{name: .tflite bytes or path}``.
        num_runs: timed invokes per model.
        warmup: untimed invokes per model before the first round.
        rounds: number of interleaved rounds, in ``[1, num_runs]``.
        num_threads: interpreter threads.
        kernels: one kernel set for all, or ``{name: kernel set}``.
        seed: seed of the random input image.

    Returns:
        ``{name: LatencyStats}`` in the order given.

    Raises:
        ValueError: for no models, bad counts or an invalid model.
    """
    if not models:
        raise ValueError("compare_latency needs at least one model")
    _check_runs(num_runs, warmup, rounds)
    interpreters = {}
    for name, model in models.items():
        kernel_set = kernels[name] if isinstance(kernels, dict) else kernels
        interpreters[name] = _prepared_interpreter(model, num_threads, kernel_set, seed)
        _time_invokes(interpreters[name], warmup)
    samples = {name: [] for name in models}
    base, extra = divmod(num_runs, rounds)
    for r in range(rounds):
        per_round = base + (1 if r < extra else 0)
        for name, interpreter in interpreters.items():
            samples[name].extend(_time_invokes(interpreter, per_round))
    return {name: latency_stats(values) for name, values in samples.items()}


def speedup(baseline: LatencyStats, variant: LatencyStats) -> float:
    """Returns ``baseline.p50 / variant.p50``: how many times faster the variant is."""
    return baseline.p50_ms / variant.p50_ms
