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
        round_sizes: invokes timed in each interleaved round, in order (they sum to
            ``runs``), or ``None`` when the sample has no round structure. Speed-up
            intervals resample whole rounds (:func:`mobileopt_ref.stats.latency_ratio`).
    """

    samples_ms: tuple
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    ci95_ms: tuple
    round_sizes: tuple | None = None

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


def latency_stats(samples_ms, round_sizes=None) -> LatencyStats:
    """Summarises latency samples (milliseconds) into a :class:`LatencyStats`.

    Args:
        samples_ms: timed runs in milliseconds, in the order measured.
        round_sizes: optional runs per interleaved round, summing to the sample size.

    Raises:
        ValueError: for an empty sample, non-finite or negative times, or round sizes
            that do not add up to the sample.
    """
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.size == 0:
        raise ValueError("latency sample is empty: measure at least one run")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError("latency samples must be finite, non-negative times")
    if round_sizes is not None:
        round_sizes = tuple(int(n) for n in round_sizes)
        if any(n < 1 for n in round_sizes) or sum(round_sizes) != x.size:
            raise ValueError(f"round_sizes {round_sizes} must be positive and sum to the {x.size} samples")
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return LatencyStats(
        samples_ms=tuple(float(v) for v in x),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        mean_ms=float(x.mean()),
        ci95_ms=median_confidence_interval(x),
        round_sizes=round_sizes,
    )


def _check_runs(num_runs, warmup, rounds=1):
    if isinstance(num_runs, bool) or not isinstance(num_runs, int) or num_runs < 1:
        raise ValueError(f"num_runs must be a positive integer, got {num_runs!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= num_runs:
        raise ValueError(f"rounds must be an integer in [1, num_runs={num_runs}], got {rounds!r}")


def _check_per_model(option: str, value, models: dict) -> None:
    if isinstance(value, dict) and set(value) != set(models):
        raise ValueError(
            f"{option} given per model must name exactly the models {sorted(models, key=str)}, "
            f"got {sorted(value, key=str)}"
        )


def round_plan(models: dict, num_runs, warmup: int, rounds: int) -> dict:
    """How many invokes each model gets in each interleaved round.

    ``num_runs`` (one count, or ``{name: count}``) is split as evenly as possible over
    ``rounds``, the first rounds taking the remainder.

    Returns:
        ``{name: [invokes in round 0, round 1, ...]}``.

    Raises:
        ValueError: for a per-model dict that does not name exactly the models, or bad
            counts.
    """
    _check_per_model("num_runs", num_runs, models)
    plan = {}
    for name in models:
        runs = num_runs[name] if isinstance(num_runs, dict) else num_runs
        _check_runs(runs, warmup, rounds)
        base, extra = divmod(runs, rounds)
        plan[name] = [base + (1 if r < extra else 0) for r in range(rounds)]
    return plan


def prepared_interpreter(model, num_threads: int = 2, kernels: str = "xnnpack", seed: int = 0):
    """An interpreter with fixed random inputs in place, ready to invoke.

    An image input gets a random image, preprocessed and quantized as real images are;
    any other input (an operator cut out of a model, a micro-benchmark) gets uniform
    values in ``[-1, 1]``, or uniform integers of its type when quantized. An integer input
    without quantization parameters (token ids, indices, positions) gets 0, valid for any
    table it indexes.

    Args:
        model: ``.tflite`` bytes or path.
        num_threads: interpreter threads.
        kernels: one of :data:`mobileopt_ref.litert.KERNELS`.
        seed: seed of the random inputs.

    Raises:
        ValueError: for content that is not a ``.tflite`` model, a model with several
            subgraphs (choose a signature with :func:`mobileopt_ref.litert.select_signature`),
            or bad threads or kernels.
    """
    interpreter = litert.make_interpreter(litert.check_one_graph(model, "prepared_interpreter"),
                                          num_threads=num_threads, kernels=kernels)
    details = interpreter.get_input_details()
    for inp, value in zip(details, _random_input_values(details, seed)):
        interpreter.set_tensor(inp["index"], value)
    return interpreter


def _random_input_values(details: list, seed: int) -> list:
    """The inputs :func:`prepared_interpreter` sets, one array per entry of ``details``."""
    rng = np.random.default_rng(seed)
    values = []
    for inp in details:
        shape, dtype = tuple(inp["shape"]), np.dtype(inp["dtype"])
        if len(details) == 1 and len(shape) == 4 and shape[-1] == 3:
            image = rng.integers(0, 256, size=shape, dtype=np.uint8)
            value = litert.quantize_input(data.preprocess(image), inp)
        elif np.issubdtype(dtype, np.floating):
            value = rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
        elif inp["quantization"][0] == 0:  # ids or indices: random ones would fall off the table
            value = np.zeros(shape, dtype)
        else:
            info = np.iinfo(dtype)
            value = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        values.append(value)
    return values


APIS = ("interpreter", "compiled_model")
"""LiteRT's two Python APIs that :func:`compare_latency` can time a model through:
the ``Interpreter`` (:func:`prepared_interpreter`) and the newer ``CompiledModel``
(:class:`CompiledModelRunner`)."""

_CPU_KERNEL_MODES = {"xnnpack": "DELEGATE", "builtin": "BUILTIN", "reference": "REFERENCE"}
_LITERT_ENVIRONMENT = []


def _litert_environment():
    """One LiteRT ``Environment`` for every :class:`CompiledModelRunner` of this process.

    ``CompiledModel`` otherwise creates one per model, and each creation and destruction
    logs its accelerator registry to file descriptor 2 (a stderr output in a notebook);
    this one is created once, quietly, and lives as long as the process.
    """
    if not _LITERT_ENVIRONMENT:
        import os  # noqa: PLC0415

        import ai_edge_litert.compiled_model as cm  # noqa: PLC0415
        from ai_edge_litert.environment import Environment, EnvironmentOptions  # noqa: PLC0415

        from mobileopt_ref._quiet import native_stderr_captured  # noqa: PLC0415

        with native_stderr_captured():
            _LITERT_ENVIRONMENT.append(Environment.create(
                options=EnvironmentOptions(runtime_path=os.path.dirname(os.path.abspath(cm.__file__)))))
    return _LITERT_ENVIRONMENT[0]


class CompiledModelRunner:
    """A ``.tflite`` loaded through LiteRT's ``CompiledModel`` API, inputs in place.

    ``CompiledModel`` (``ai_edge_litert.compiled_model``, the Python face of LiteRT's C++
    ``CompiledModel``) compiles the model for a set of hardware accelerators (here the CPU
    only, whose kernels are XNNPACK's unless ``kernels`` says otherwise) and runs it on
    ``TensorBuffer`` objects instead of the interpreter's tensors. Its CPU threads are set
    by ``Options(cpu_options=CpuOptions(num_threads=n))``: without options it uses one
    thread, and ``CpuOptions()`` alone (``num_threads=0``) lets the runtime choose.

    The inputs are the ones :func:`prepared_interpreter` sets for the same ``seed`` (matched
    by signature input name), so both APIs compute the same outputs, and
    :meth:`invoke` runs the model once, as ``Interpreter.invoke`` does: it can stand in for
    an interpreter in :func:`compare_latency` (``api="compiled_model"``).

    Args:
        model: ``.tflite`` bytes or path with one signature.
        num_threads: CPU threads (positive).
        kernels: ``"xnnpack"`` (default), ``"builtin"`` or ``"reference"``: the CPU kernel mode.
        seed: seed of the random inputs.

    Raises:
        ValueError: for content that is not a ``.tflite`` model, several subgraphs, bad
            threads or kernels, or a model LiteRT cannot compile.
    """

    def __init__(self, model, num_threads: int = 2, kernels: str = "xnnpack", seed: int = 0):
        from ai_edge_litert.cpu_kernel_mode import CpuKernelMode  # noqa: PLC0415
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator  # noqa: PLC0415
        from ai_edge_litert.options import CpuOptions, Options  # noqa: PLC0415

        from mobileopt_ref._quiet import native_stderr_captured  # noqa: PLC0415

        # The interpreter checks the content, threads and kernel set, and gives the inputs'
        # quantization (CompiledModel's tensor details do not hold it).
        reference = litert.make_interpreter(litert.check_one_graph(model, "CompiledModelRunner"),
                                            num_threads=num_threads, kernels=kernels)
        self.content = litert.read_tflite(model)  # kept alive for as long as the compiled model
        self.num_threads, self.kernels = num_threads, kernels
        runner = reference.get_signature_runner() if reference.get_signature_list() else None
        options = Options(hardware_accelerators=HardwareAccelerator.CPU,
                          cpu_options=CpuOptions(num_threads=num_threads,
                                                 kernel_mode=CpuKernelMode[_CPU_KERNEL_MODES[kernels]]))
        # LiteRT logs its accelerator registry to file descriptor 2 as it compiles the model
        # and creates the buffers (a stderr output in a notebook): quiet unless it fails.
        with native_stderr_captured():
            self._compile(options, reference, runner, seed)

    def _compile(self, options, reference, runner, seed):
        from ai_edge_litert.compiled_model import CompiledModel  # noqa: PLC0415

        try:
            self.model = CompiledModel.from_buffer(self.content, environment=_litert_environment(), options=options)
        except (RuntimeError, ValueError) as err:
            raise ValueError(f"LiteRT's CompiledModel could not compile this model: {err}") from err
        self.signature = next(iter(self.model.get_signature_list()))
        names = list(self.model.get_input_tensor_details(self.signature))
        ordered = reference.get_input_details()  # the order prepared_interpreter draws the values in
        by_index = {d["index"]: v for d, v in zip(ordered, _random_input_values(ordered, seed))}
        if runner is not None:
            tensor_of = {name: d["index"] for name, d in runner.get_input_details().items()}
        else:  # a file without a signature: inputs in the interpreter's order
            tensor_of = {name: d["index"] for name, d in zip(names, ordered)}
        self.inputs = {name: self.model.create_input_buffer_by_name(self.signature, name) for name in names}
        self.outputs = {name: self.model.create_output_buffer_by_name(self.signature, name)
                        for name in self.model.get_output_tensor_details(self.signature)}
        for name in names:
            self.inputs[name].write(by_index[tensor_of[name]])

    def invoke(self) -> None:
        """Runs the model once on the inputs in place."""
        self.model.run_by_name(self.signature, self.inputs, self.outputs)

    def output(self, name: str | None = None) -> np.ndarray:
        """One output after :meth:`invoke`, in its dtype and shape (the first output by default)."""
        details = self.model.get_output_tensor_details(self.signature)
        name = name if name is not None else next(iter(details))
        if name not in details:
            raise ValueError(f"no output {name!r}; the outputs are {', '.join(details)}")
        shape, dtype = tuple(details[name]["shape"]), np.dtype(details[name]["dtype"])
        return self.outputs[name].read(int(np.prod(shape)), dtype).reshape(shape)

    @property
    def fully_accelerated(self) -> bool:
        """Whether every operator runs on the accelerators asked for (``CompiledModel.is_fully_accelerated``)."""
        return self.model.is_fully_accelerated()


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


def litert_benchmark(model, *, num_threads: int = 1, num_runs: int = 50, warmup: int = 5) -> dict:
    """Times a model with LiteRT's own benchmark tool, as a cross-check of this library's harness.

    Runs ``ai_edge_litert.tools.benchmark_litert_model`` (shipped in the ``ai-edge-litert``
    wheel, built on LiteRT's newer ``CompiledModel`` API) in a fresh process on the CPU
    accelerator, and reads the JSON it writes. Its times are rounded to 0.01 ms, and it
    runs its invokes back to back in one block after its own warm-up: compare its median
    with :func:`measure_latency`'s p50 as two measurements, not as one truth.

    Args:
        model: ``.tflite`` bytes or path with one subgraph.
        num_threads: CPU threads (positive).
        num_runs, warmup: timed and untimed runs (positive, non-negative).

    Returns:
        The tool's ``latency`` record: ``median_ms``, ``p5_ms``, ``p95_ms``, ``avg_ms``,
        ``min_ms``, ``max_ms``, ``std_ms``, ``init_ms``, ``num_runs``, plus
        ``fully_accelerated``.

    Raises:
        ValueError: for an invalid model or counts, or a model with an integer input
            without quantization (token ids: the tool's random values would index past the
            tables), all before the process starts.
        RuntimeError: if the tool fails (with the end of its output).
    """
    import json  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import tempfile  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    content = litert.check_one_graph(model, "litert_benchmark")
    _check_runs(num_runs, warmup)
    for detail in litert.make_interpreter(content, kernels="builtin").get_input_details():
        if np.issubdtype(np.dtype(detail["dtype"]), np.integer) and detail["quantization"][0] == 0:
            raise ValueError(
                f"litert_benchmark cannot time this model: its input {detail['name']!r} is "
                f"{np.dtype(detail['dtype']).name} without quantization (token ids or indices), and LiteRT's "
                "benchmark tool fills every input with random values, which would index past their tables; "
                "time it with measure_latency, which feeds such inputs 0"
            )
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
    with tempfile.TemporaryDirectory() as folder:
        path, out = Path(folder) / "model.tflite", Path(folder) / "result.json"
        path.write_bytes(content)
        done = subprocess.run(
            [sys.executable, "-m", "ai_edge_litert.tools.benchmark_litert_model", f"--model={path}",
             f"--num_threads={num_threads}", f"--num_runs={num_runs}", f"--warmup_runs={warmup}",
             f"--result_json={out}"], capture_output=True, text=True, check=False)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"LiteRT's benchmark tool failed ({done.returncode}): {(done.stderr or done.stdout)[-1500:]}")
        result = json.loads(out.read_text())
    return {**result["latency"], "fully_accelerated": result.get("fully_accelerated")}


def compare_latency(
    models: dict,
    *,
    num_runs: int | dict = 200,
    warmup: int = 20,
    rounds: int = 10,
    num_threads: int | dict = 2,
    kernels: str | dict = "xnnpack",
    seed: int = 0,
    api: str | dict = "interpreter",
) -> dict:
    """Measures several models side by side, interleaved in rounds.

    Every model is warmed up, then each round times ``num_runs / rounds`` invokes of
    every model in turn, round ``r`` starting with model ``r mod n`` so that no model is
    always first. Drift in the machine's speed (other processes, frequency changes) then
    hits all models alike, so ratios of their medians are trustworthy even when absolute
    times wander. (With one core busy, always running the baseline first made an
    identical copy of it measure 1.07x, 95 % CI 1.05-1.10, "faster" in the pruning
    chapter's A/A control; rotating the order removes that position effect.)

    Args:
        models: ``{name: .tflite bytes or path}``.
        num_runs: timed invokes per model, or ``{name: runs}`` (a slow variant may get
            fewer runs than a fast one; every model still runs in every round).
        warmup: untimed invokes per model before the first round.
        rounds: number of interleaved rounds, in ``[1, smallest num_runs]``.
        num_threads: interpreter threads for all, or ``{name: threads}``.
        kernels: one kernel set for all, or ``{name: kernel set}``.
        seed: seed of the random input image.
        api: one of :data:`APIS` for all, or ``{name: api}``: run each model through
            LiteRT's ``Interpreter`` or its ``CompiledModel`` (:class:`CompiledModelRunner`);
            the same model through both, side by side, compares the two APIs.

    Returns:
        ``{name: LatencyStats}`` in the order given.

    Raises:
        ValueError: for no models, bad counts or an invalid model (before any model is
            invoked).
    """
    if not models:
        raise ValueError("compare_latency needs at least one model")
    for option, value in (("kernels", kernels), ("num_threads", num_threads), ("api", api)):
        _check_per_model(option, value, models)
    plan = round_plan(models, num_runs, warmup, rounds)
    for name in models:
        chosen = api[name] if isinstance(api, dict) else api
        if chosen not in APIS:
            raise ValueError(f"api must be one of {', '.join(APIS)}, got {chosen!r}")
    interpreters = {}
    for name, model in models.items():  # every model checked and loaded before any is invoked
        kernel_set = kernels[name] if isinstance(kernels, dict) else kernels
        threads = num_threads[name] if isinstance(num_threads, dict) else num_threads
        if (api[name] if isinstance(api, dict) else api) == "compiled_model":
            interpreters[name] = CompiledModelRunner(model, threads, kernel_set, seed)
        else:
            interpreters[name] = prepared_interpreter(model, threads, kernel_set, seed)
    for interpreter in interpreters.values():
        _time_invokes(interpreter, warmup)
    samples = {name: [] for name in models}
    names = list(interpreters)
    for r in range(rounds):
        # Each round starts with the next model: running first (after another model's
        # invokes, or after a pause) must not favour one model in every round.
        for name in names[r % len(names):] + names[: r % len(names)]:
            samples[name].extend(_time_invokes(interpreters[name], plan[name][r]))
    return {name: latency_stats(values, plan[name]) for name, values in samples.items()}


def speedup(baseline: LatencyStats, variant: LatencyStats) -> float:
    """Returns ``baseline.p50 / variant.p50``: how many times faster the variant is.

    A point estimate only; :func:`mobileopt_ref.stats.latency_ratio` gives its confidence
    interval and verdict, which is what the book states and records.
    """
    return baseline.p50_ms / variant.p50_ms


def _p50(value, name: str) -> float:
    ms = value.p50_ms if isinstance(value, LatencyStats) else value
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms <= 0:
        raise ValueError(f"{name} must be a LatencyStats or a positive time in ms, got {value!r}")
    return float(ms)


def speedup_factors(original, algorithm, hardware) -> dict:
    """The source article's speed-up factors of an algorithmic and a hardware change.

    A better algorithm divides the time by ``e`` and better hardware (here: SIMD kernels,
    more threads) by ``h``:

        T_algorithm = T_original / e,      T_hardware = T_algorithm / h,
        e = T_original / T_algorithm,      h = T_algorithm / T_hardware,

    so the two together give ``T_original / T_hardware = e h``. ``h`` is measured on the
    new algorithm: a hardware change does not speed every algorithm up alike (the book
    measures both orders), so the three times must come from one side-by-side run.

    Args:
        original: the starting point (median of a :class:`LatencyStats`, or ms).
        algorithm: the same task with the better algorithm, on the old hardware.
        hardware: the better algorithm on the better hardware.

    Returns:
        ``{"e": e, "h": h, "total": e * h}``.

    Raises:
        ValueError: for a time that is not positive and finite.
    """
    t_original = _p50(original, "original")
    t_algorithm = _p50(algorithm, "algorithm")
    t_hardware = _p50(hardware, "hardware")
    e = t_original / t_algorithm
    h = t_algorithm / t_hardware
    return {"e": e, "h": h, "total": e * h}


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
            layer is an error, never a silent zero; for anything that is not a tf_keras model.
    """
    from mobileopt_ref import models  # noqa: PLC0415
    from mobileopt_ref._keras import keras  # noqa: PLC0415

    models.check_keras_model(model, "keras_macs")

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


def convolution_models(size: int = 28, channels: int = 128, kernel: int = 3, seed: int = 0) -> dict:
    """One standard and one depthwise-separable convolution layer, as Keras models.

    Both map ``size x size x channels`` to the same shape (stride 1, ``same`` padding):

    - ``"standard"``: one ``k x k`` convolution, ``h w k^2 c_in c_out`` MACs;
    - ``"separable"``: a ``k x k`` depthwise convolution (one filter per channel) and a
      ``1 x 1`` pointwise convolution, ``h w c_in (k^2 + c_out)`` MACs.

    The ratio, ``1 / c_out + 1 / k^2`` (:func:`separable_mac_ratio`), is the MobileNet
    argument (Howard et al. 2017): about 8 to 9 times less work for ``3 x 3`` kernels.

    Raises:
        ValueError: for a size, channel count or kernel that is not a positive integer.
    """
    from mobileopt_ref._keras import keras  # noqa: PLC0415

    for name, value in (("size", size), ("channels", channels), ("kernel", kernel)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    standard = keras.Sequential(
        [layers.Input((size, size, channels)), layers.Conv2D(channels, kernel, padding="same")],
        name="standard",
    )
    separable = keras.Sequential(
        [
            layers.Input((size, size, channels)),
            layers.DepthwiseConv2D(kernel, padding="same"),
            layers.Conv2D(channels, 1),
        ],
        name="separable",
    )
    return {"standard": standard, "separable": separable}


def separable_mac_ratio(channels_out: int, kernel: int) -> float:
    """MACs of a depthwise-separable over a standard convolution: ``1/c_out + 1/k^2``."""
    return 1.0 / channels_out + 1.0 / kernel**2


# ---------------------------------------------------------------------------------------
# Counting the work of a .tflite graph
# ---------------------------------------------------------------------------------------

TFLITE_MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL")
"""Operators that multiply-accumulate; :func:`tflite_macs` counts their MACs."""

TFLITE_MAC_FREE_OPS = (
    "ADD", "SUB", "MUL", "PAD", "PADV2", "RESHAPE", "SQUEEZE", "CONCATENATION", "SOFTMAX",
    "LOGISTIC", "RELU", "RELU6", "HARD_SWISH", "MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D",
    "QUANTIZE", "DEQUANTIZE", "DENSIFY",
)
"""Operators that multiply-accumulate nothing (element-wise, data movement, pooling).

``MEAN`` (global average pooling) adds ``h w c`` values, reported by :func:`tflite_macs`
under ``"pooling_adds"``. ``DEQUANTIZE`` and ``DENSIFY`` of a constant (float16, weight-only
int8 or sparse weights) run once, when the interpreter is prepared, not per inference."""

_WEIGHT_PREPARING_OPS = ("DEQUANTIZE", "DENSIFY")


def _elements(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def tflite_macs(model) -> dict:
    """Multiply-accumulates, parameters and bytes moved by one inference of a ``.tflite``.

    Read from the file's operators and tensor shapes (batch 1 where the batch is
    dynamic). With the output ``n x h_out x w_out x c_out``:

    - ``CONV_2D``, weights ``c_out x k_h x k_w x c_in/g``: ``n h_out w_out c_out k_h k_w c_in/g``;
    - ``DEPTHWISE_CONV_2D``, weights ``1 x k_h x k_w x c_out``: ``n h_out w_out c_out k_h k_w``;
    - ``FULLY_CONNECTED``, weights ``n_out x n_in``: ``n_in`` per output element;
    - ``BATCH_MATMUL``: the contracted size per output element;
    - the operators of :data:`TFLITE_MAC_FREE_OPS`: 0.

    Batch normalization is already folded into the convolutions by the converter, so the
    parameters here are the weights and biases the kernels read: a Keras model's count
    minus three per batch-norm channel (its four statistics become one bias entry).

    Bytes moved are a model of the memory traffic if nothing stayed in cache: every
    operator reads its weights and its input activations and writes its outputs once.
    Weights count at the type the kernel reads (float16 weights are expanded to float32
    when the interpreter is prepared, so they move as float32).

    Args:
        model: ``.tflite`` bytes or path.

    Returns:
        A dict with ``"ops"`` (one dict per operator: ``index``, ``op``, ``kind``,
        ``macs``, ``params``, ``weight_bytes``, ``activation_bytes``; ``kind`` adds the
        kernel size to convolutions, as in ``"CONV_2D 1x1"``), the totals ``"total"``
        (MACs), ``"params"``, ``"weight_bytes"``, ``"activation_bytes"`` and
        ``"pooling_adds"``, and ``"by_kind"`` (``{kind: {"count": n, "macs": m}}``).

    Raises:
        ValueError: for content that is not a ``.tflite`` model, or an operator the
            counter does not know (naming it): never a silent zero.
    """
    graph = litert.read_graph(model)
    producer = {out: op for op in graph.ops for out in op.outputs}

    def constant(index):
        """The constant behind an input: stored, or prepared once from a stored one."""
        if index < 0:
            return None
        tensor = graph.tensors[index]
        if tensor.data is not None:
            return tensor
        source = producer.get(index)
        if source is not None and source.op in _WEIGHT_PREPARING_OPS:
            if graph.tensors[source.inputs[0]].data is not None:
                return tensor
        return None

    rows, pooling = [], 0
    for op in graph.ops:
        if op.op not in TFLITE_MAC_OPS and op.op not in TFLITE_MAC_FREE_OPS:
            raise ValueError(
                f"operator {op.index} is {op.op}, which tflite_macs does not know how to count; "
                f"known: {', '.join(TFLITE_MAC_OPS + TFLITE_MAC_FREE_OPS)}"
            )
        if op.op in _WEIGHT_PREPARING_OPS and constant(op.outputs[0]) is not None:
            rows.append(dict(index=op.index, op=op.op, kind=f"{op.op} (once, at load)", macs=0,
                             params=0, weight_bytes=0, activation_bytes=0))
            continue
        consts = [constant(i) for i in op.inputs]
        weights = [t for t in consts if t is not None]
        activations = [graph.tensors[i] for i, c in zip(op.inputs, consts) if i >= 0 and c is None]
        activations += [graph.tensors[i] for i in op.outputs]
        out_elements = _elements(graph.tensors[op.outputs[0]].shape)
        kind, macs = op.op, 0
        if op.op == "CONV_2D":
            _, kh, kw, cin_per_group = graph.tensors[op.inputs[1]].shape
            macs = out_elements * kh * kw * cin_per_group
            kind = f"CONV_2D {kh}x{kw}"
        elif op.op == "DEPTHWISE_CONV_2D":
            _, kh, kw, _ = graph.tensors[op.inputs[1]].shape
            macs = out_elements * kh * kw
            kind = f"DEPTHWISE_CONV_2D {kh}x{kw}"
        elif op.op == "FULLY_CONNECTED":
            macs = out_elements * graph.tensors[op.inputs[1]].shape[-1]
        elif op.op == "BATCH_MATMUL":
            a = graph.tensors[op.inputs[0]].shape
            macs = out_elements * (a[-2] if op.options.get("adjX") else a[-1])
        elif op.op == "MEAN":
            pooling += _elements(graph.tensors[op.inputs[0]].shape)
        rows.append(dict(
            index=op.index, op=op.op, kind=kind, macs=int(macs),
            params=sum(_elements(t.shape) for t in weights) if op.op in TFLITE_MAC_OPS else 0,
            weight_bytes=sum(t.nbytes for t in weights),
            activation_bytes=sum(t.nbytes for t in activations),
        ))
    by_kind: dict = {}
    for row in rows:
        entry = by_kind.setdefault(row["kind"], {"count": 0, "macs": 0})
        entry["count"] += 1
        entry["macs"] += row["macs"]
    return {
        "ops": rows,
        "total": sum(r["macs"] for r in rows),
        "params": sum(r["params"] for r in rows),
        "weight_bytes": sum(r["weight_bytes"] for r in rows),
        "activation_bytes": sum(r["activation_bytes"] for r in rows),
        "pooling_adds": pooling,
        "by_kind": by_kind,
    }


def arithmetic_intensity(counts: dict) -> float:
    """Operations per byte moved, ``2 MACs / (weight bytes + activation bytes)``.

    A multiply-accumulate is two operations (floating-point or integer). ``counts`` is a
    :func:`tflite_macs` result; the bytes are its no-cache traffic model.
    """
    moved = counts["weight_bytes"] + counts["activation_bytes"]
    if moved <= 0:
        raise ValueError("the counts move no bytes: not a tflite_macs result of a model with operators")
    return 2.0 * counts["total"] / moved


# ---------------------------------------------------------------------------------------
# Where the time goes: per-operator profiling
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OpProfile:
    """Per-operator times of one model, measured side by side with the whole model.

    Attributes:
        ops: one dict per operator (``index, op, kind, macs, p50_ms``), execution order.
        whole: the whole model's :class:`LatencyStats`, measured in the same rounds.
        kernels: the kernel set used.
        num_threads: interpreter threads.
        runs: ``{operator index: LatencyStats}``, every timed operator's samples (for
            intervals of statistics of several medians,
            :func:`mobileopt_ref.stats.rounds_ratio`).
    """

    ops: tuple
    whole: LatencyStats
    kernels: str
    num_threads: int
    runs: dict = dataclasses.field(default_factory=dict, repr=False)

    def all_runs(self, prefix=None) -> dict:
        """``{(prefix, index): LatencyStats, (prefix, "whole"): ...}``: every sample of the profile.

        Profiles measured in one :func:`profile_ops` call share their rounds, so their
        ``all_runs`` merged form one side-by-side run.
        """
        out = {(prefix, index): s for index, s in self.runs.items()}
        out[(prefix, "whole")] = self.whole
        return out

    @property
    def sum_ms(self) -> float:
        """Sum of the operators' median times."""
        return float(sum(op["p50_ms"] for op in self.ops))

    def by_kind(self) -> dict:
        """``{kind: {"count", "ms", "macs", "share"}}``, slowest kind first.

        ``share`` is the kind's fraction of :attr:`sum_ms`.
        """
        out: dict = {}
        for op in self.ops:
            entry = out.setdefault(op["kind"], {"count": 0, "ms": 0.0, "macs": 0})
            entry["count"] += 1
            entry["ms"] += op["p50_ms"]
            entry["macs"] += op["macs"]
        total = self.sum_ms
        for entry in out.values():
            entry["share"] = entry["ms"] / total if total > 0 else 0.0
        return dict(sorted(out.items(), key=lambda item: -item[1]["ms"]))


def profile_ops(
    model,
    *,
    num_runs: int = 50,
    warmup: int = 5,
    rounds: int = 5,
    num_threads: int = 2,
    kernels: str = "xnnpack",
    seed: int = 0,
) -> OpProfile:
    """Times every operator of a model on its own, and the whole model, side by side.

    LiteRT's Python API has no per-operator profiler, so each operator is cut out into a
    model of its own (:func:`mobileopt_ref.litert.single_op_models`), fed random inputs of
    its input shapes, and timed with :func:`compare_latency` in the same interleaved rounds
    as the whole model. Each operator's median includes one ``invoke`` call's overhead,
    and loses what the runtime does across operators (fusion, activations still in cache),
    so ``sum_ms`` and ``whole.p50_ms`` differ; the book reports both. Operators that run
    once at load (:data:`TFLITE_MAC_FREE_OPS`) are not timed.

    Args:
        model: ``.tflite`` bytes or path; or ``{name: model}`` to profile several models
            in one interleaved run (their operators and wholes all side by side).
        num_runs, warmup, rounds: as in :func:`compare_latency`.
        num_threads: interpreter threads.
        kernels: one of :data:`mobileopt_ref.litert.KERNELS`.
        seed: seed of the random inputs.

    Returns:
        An :class:`OpProfile`, or ``{name: OpProfile}`` for a dict of models.

    Raises:
        ValueError: for a bad run count, warm-up, kernel set or model, no models, or an
            operator :func:`tflite_macs` does not know.
    """
    _check_runs(num_runs, warmup, rounds)
    several = isinstance(model, dict)
    named = model if several else {None: model}
    if not named:
        raise ValueError("profile_ops needs at least one model")
    pieces, rows = {}, {}
    for name, m in named.items():
        counts = tflite_macs(m)
        for row, piece in zip(counts["ops"], litert.single_op_models(m)):
            if "once, at load" not in row["kind"]:
                pieces[(name, row["index"])], rows[(name, row["index"])] = piece, row
        pieces[(name, "whole")] = m
    stats = compare_latency(
        pieces, num_runs=num_runs, warmup=warmup, rounds=rounds,
        num_threads=num_threads, kernels=kernels, seed=seed,
    )
    profiles = {}
    for name in named:
        keys = [key for key in rows if key[0] == name]
        ops = tuple(
            dict(index=rows[key]["index"], op=rows[key]["op"], kind=rows[key]["kind"], macs=rows[key]["macs"],
                 p50_ms=stats[key].p50_ms)
            for key in keys
        )
        profiles[name] = OpProfile(ops=ops, whole=stats[(name, "whole")], kernels=kernels,
                                   num_threads=num_threads, runs={key[1]: stats[key] for key in keys})
    return profiles if several else profiles[None]


# ---------------------------------------------------------------------------------------
# The roofline of this machine
# ---------------------------------------------------------------------------------------


def matmul_model(rows: int = 256, inner: int = 1024, cols: int = 1024, seed: int = 0) -> bytes:
    """A ``.tflite`` of one float32 matrix product ``(rows x inner) (inner x cols)``.

    It does ``2 rows inner cols`` floating-point operations on
    ``4 (rows inner + inner cols + rows cols)`` bytes: for the default and the shapes of
    :data:`PEAK_SHAPES`, far right of any ridge point, so its speed is the compute peak as
    the runtime reaches it.
    """
    from mobileopt_ref._keras import tf  # noqa: PLC0415

    weights = np.random.default_rng(seed).standard_normal((inner, cols)).astype(np.float32)
    return litert.function_to_tflite(lambda x: tf.matmul(x, tf.constant(weights)), [(rows, inner)])


PEAK_SHAPES = ((256, 1024, 1024), (512, 256, 256), (196, 384, 384), (784, 384, 384))
"""Matrix products ``(rows, inner, cols)`` timed by :func:`measure_roofline`.

From operands that fit in the L2 cache to ones that need the L3; which is fastest
depends on the machine, so the peak is the best of them."""


def add_model(elements: int = 16 * 2**20) -> bytes:
    """A ``.tflite`` of one float32 addition of two vectors of ``elements`` values.

    It moves ``12 elements`` bytes (two reads, one write) for ``elements`` operations,
    1/12 operation per byte, far left of any ridge point: its speed is the memory
    bandwidth as the runtime reaches it (vectors much larger than the caches).
    """
    return litert.function_to_tflite(lambda a, b: a + b, [(elements,), (elements,)])


def measure_roofline(
    *, num_threads: int = 2, num_runs: int = 60, warmup: int = 5, shapes=PEAK_SHAPES,
    elements: int = 16 * 2**20,
) -> dict:
    """Measures this machine's two roofs with LiteRT's default kernels (XNNPACK).

    The roofline model bounds the speed of a computation of arithmetic intensity ``I``
    (operations per byte moved) by ``min(P, B I)``: the peak rate ``P`` (operations per
    second) and the memory bandwidth ``B`` (bytes per second). ``P`` is the best median
    speed of a few matrix products (:func:`matmul_model` with each of ``shapes``, timed
    side by side), ``B`` the traffic of a large vector addition (:func:`add_model`),
    timed after them: interleaved with the addition, the products ran about a third slower
    on the book's machine. Both are what this runtime achieves, not the vendor's peak,
    and on a shared machine they drift from minute to minute. The ridge point ``P / B``
    is the intensity above which a computation is compute-bound.

    Args:
        num_threads: interpreter threads.
        num_runs, warmup: as in :func:`compare_latency`.
        shapes: ``(rows, inner, cols)`` of the matrix products (at least one).
        elements: length of the added vectors (much larger than the caches).

    Returns:
        A dict with ``"peak_gflops"``, ``"bandwidth_gbs"``, ``"ridge_flops_per_byte"``,
        ``"matmul"`` (``{shape: GFLOP/s}``) and ``"add"`` (its :class:`LatencyStats`).

    Raises:
        ValueError: for no shapes or bad run counts.
    """
    shapes = [tuple(int(d) for d in shape) for shape in shapes]
    if not shapes:
        raise ValueError("measure_roofline needs at least one matrix-product shape")
    products = compare_latency(
        {shape: matmul_model(*shape) for shape in shapes},
        num_runs=num_runs, warmup=warmup, rounds=min(10, num_runs), num_threads=num_threads,
    )
    rates = {shape: 2.0 * np.prod(shape) / (stats.p50_ms * 1e-3) / 1e9 for shape, stats in products.items()}
    add = measure_latency(add_model(elements), num_runs=num_runs, warmup=warmup, num_threads=num_threads)
    peak = float(max(rates.values()))
    bandwidth = 12.0 * elements / (add.p50_ms * 1e-3) / 1e9
    return {
        "peak_gflops": peak,
        "bandwidth_gbs": bandwidth,
        "ridge_flops_per_byte": peak / bandwidth,
        "matmul": {shape: float(rate) for shape, rate in rates.items()},
        "add": add,
    }


def attainable_gflops(intensity, peak_gflops: float, bandwidth_gbs: float):
    """The roofline: ``min(P, B I)`` in GFLOP/s for intensity ``I`` in FLOP per byte.

    Raises:
        ValueError: for a non-positive peak or bandwidth, or a negative intensity.
    """
    if not peak_gflops > 0 or not bandwidth_gbs > 0:
        raise ValueError(f"peak and bandwidth must be positive, got {peak_gflops} and {bandwidth_gbs}")
    intensity = np.asarray(intensity, dtype=np.float64)
    if np.any(intensity < 0):
        raise ValueError("arithmetic intensity cannot be negative")
    return np.minimum(peak_gflops, bandwidth_gbs * intensity)


# ---------------------------------------------------------------------------------------
# Published phone latencies (not measured here)
# ---------------------------------------------------------------------------------------

PUBLISHED_LATENCIES = (
    dict(device="Google Pixel 1, one large core", threads=1, accelerator="CPU (TF-Lite)", precision="float32",
         ms=75.0, source="Sandler et al. 2018, MobileNetV2, Table 4 (arXiv:1801.04381)"),
    dict(device="Google Pixel 2, one big core", threads=1, accelerator="CPU (TF-Lite built-in kernels)",
         precision="float32", ms=89.0,
         source="LiteRT model optimization page, table of post-training quantization results"),
    dict(device="Google Pixel 2", threads=1, accelerator="CPU (XNNPACK end2end_bench)", precision="float32",
         ms=53.0, source="google/XNNPACK README, 27 March 2020, random weights"),
    dict(device="Google Pixel 2, big cores", threads=4, accelerator="CPU (XNNPACK end2end_bench)",
         precision="float32", ms=18.0, source="google/XNNPACK README, 27 March 2020, random weights"),
    dict(device="Google Pixel 3, Android 10", threads=4, accelerator="CPU (TFLite)", precision="float32",
         ms=17.5, source="TFLite hosted models page (tensorflow/lite/g3doc/guide/hosted_models.md)"),
    dict(device="Google Pixel 3, Android 10", threads=None, accelerator="GPU delegate", precision="float32",
         ms=6.2, source="TFLite hosted models page (tensorflow/lite/g3doc/guide/hosted_models.md)"),
    dict(device="Google Pixel 3, Android 10", threads=None, accelerator="NNAPI", precision="float32",
         ms=11.23, source="TFLite hosted models page (tensorflow/lite/g3doc/guide/hosted_models.md)"),
    dict(device="Google Pixel 3, Android 10", threads=4, accelerator="CPU (TFLite)",
         precision="uint8 (quantization-aware)", ms=12.0,
         source="TFLite hosted models page (tensorflow/lite/g3doc/guide/hosted_models.md)"),
    dict(device="Google Pixel 3, Android 10", threads=None, accelerator="NNAPI",
         precision="uint8 (quantization-aware)", ms=6.9,
         source="TFLite hosted models page (tensorflow/lite/g3doc/guide/hosted_models.md)"),
)
"""Published single-image latencies of MobileNetV2 (width 1.0, 224x224), in ms.

Quoted from their sources, none measured in this book; ``threads`` is ``None`` where the
work runs on an accelerator. The sources used different tools, model files and years, so
compare each row only with a measurement made under the same conditions (same model,
same precision, same thread count)."""
