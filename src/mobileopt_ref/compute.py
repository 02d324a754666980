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


# ---------------------------------------------------------------------------------------
# Counting the work: multiply-accumulates of a Keras model
# ---------------------------------------------------------------------------------------

MAC_FREE_LAYERS = (
    "InputLayer", "ZeroPadding2D", "BatchNormalization", "ReLU", "Activation", "Add",
    "Dropout", "Flatten", "Reshape", "Rescaling", "Softmax", "GlobalAveragePooling2D",
)
"""Layers that multiply-accumulate nothing.

Padding, reshaping, element-wise activations and additions, global average pooling
(``h w c`` additions, counted by :func:`keras_macs` separately), and batch normalization,
which LiteRT folds into the preceding convolution's weights and bias,
``w' = gamma w / sqrt(var + eps)``, ``b' = beta - gamma mean / sqrt(var + eps)``, so that
it costs nothing at inference."""


def keras_macs(model) -> dict:
    """Multiply-accumulates (MACs) of one inference of a Keras model, per layer.

    With the output map ``h_out x w_out``:

    - ``Conv2D``: ``h_out w_out k_h k_w (c_in / groups) c_out``;
    - ``DepthwiseConv2D``: ``h_out w_out k_h k_w c_in m`` (``m`` the depth multiplier);
    - ``Dense``: ``n_in n_out`` per input row (times the other input dimensions);
    - the layers of :data:`MAC_FREE_LAYERS`: 0 (global average pooling's ``h w c``
      additions are reported under ``"pooling_adds"``, not as MACs).

    Biases (one addition per output) are not MACs either. For Keras' MobileNetV2 at
    224x224 with 1,000 classes this gives the published 300.8 M (alpha 1.0) and 59.3 M
    (alpha 0.35) multiply-adds.

    Args:
        model: a built ``tf_keras`` model (nested models are looked into).

    Returns:
        ``{"layers": {layer name: MACs}, "total": int, "pooling_adds": int}``.

    Raises:
        ValueError: for a layer type the counter does not know (naming it): an unknown
            layer is an error, never a silent zero.
    """
    from mobileopt_ref._keras import keras  # noqa: PLC0415

    per_layer: dict = {}
    pooling = 0

    def visit(layer, prefix=""):
        nonlocal pooling
        kind = type(layer).__name__
        name = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):  # a nested model: count its layers
            for inner in layer.layers:
                visit(inner, f"{name}/")
            return
        if kind == "Conv2D":
            _, h, w, _ = layer.output_shape
            kh, kw, cin_per_group, cout = layer.kernel.shape
            per_layer[name] = int(h * w * kh * kw * cin_per_group * cout)
        elif kind == "DepthwiseConv2D":
            _, h, w, _ = layer.output_shape
            kh, kw, cin, mult = layer.depthwise_kernel.shape
            per_layer[name] = int(h * w * kh * kw * cin * mult)
        elif kind == "Dense":
            n_in, n_out = layer.kernel.shape
            rows = int(np.prod([d for d in layer.input_shape[1:-1]])) if len(layer.input_shape) > 2 else 1
            per_layer[name] = int(rows * n_in * n_out)
        elif kind in MAC_FREE_LAYERS:
            if kind == "GlobalAveragePooling2D":
                _, h, w, c = layer.input_shape
                pooling += int(h * w * c)
        else:
            raise ValueError(
                f"layer {name!r} is a {kind}, which keras_macs does not know how to count; "
                f"known: Conv2D, DepthwiseConv2D, Dense and {', '.join(MAC_FREE_LAYERS)}"
            )

    for layer in model.layers:
        visit(layer)
    return {"layers": per_layer, "total": int(sum(per_layer.values())), "pooling_adds": pooling}
