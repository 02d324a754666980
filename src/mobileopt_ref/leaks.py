"""Leaks: does a process's memory grow each time a step repeats?

A leak is memory that a step keeps each time it runs and never gives back. One run of the
step cannot show it: the first runs of anything allocate (caches, pools, the allocator's
own heap) and keep it on purpose. What shows a leak is the *trend*: run the step many
times and see whether the resident memory keeps climbing, by how much per run, and how
sure that is.

:func:`leak_probe` runs a step ``warmup + cycles`` times in a fresh Python process (only
numpy, psutil and, for the model steps, LiteRT imported: no TensorFlow), and after each
cycle runs the garbage collector, asks the C allocator to return its free pages to the
system (glibc's ``malloc_trim(0)``, where it exists; ``release_free=False`` skips it), and
records

- the process's resident set size (RSS, ``psutil.Process().memory_info().rss``), which
  counts native allocations (LiteRT's arenas, XNNPACK's packed weights) as well as
  Python's, in pages actually held;
- the bytes of Python-side allocations still live (``tracemalloc``, started just before
  the first cycle; numpy's array buffers are traced too), which says whether growth comes
  from Python objects the step keeps or from native code;
- the wall time of the cycle.

Without the release, RSS also counts memory the allocator keeps after a free for the next
request; a step that allocates and frees tens of MiB (an interpreter created and dropped)
then shows RSS that jumps between plateaus for tens of cycles, which looks like growth
over a short window. With it, RSS counts what something still holds, plus the heap
fragments the allocator cannot return: what a leak is made of.

The warm-up cycles are discarded; over the ``cycles`` that follow, the growth per cycle is
the slope of an ordinary least-squares line through the memory readings, with a
confidence interval (:func:`slope_interval`). The verdict compares that interval with a
stated level ``L`` (bytes per cycle): the step *grows* if the whole interval lies above
``L``, *does not grow at the stated level* if the whole interval lies below ``L`` (any
growth is smaller than ``L`` per cycle; a falling trend, the allocator giving pages back,
is no leak either), and is *inconclusive* otherwise (then more cycles, or a higher ``L``,
decide). RSS is a measurement of this machine (its allocator, its kernel's paging), so a
verdict is glued into prose, never asserted (CONTRIBUTING.md); a planted leak, whose
growth is set by its design, is what the tests check.

Steps (:data:`STEPS`): ``"invoke"`` (one interpreter invoked every cycle),
``"create_drop"`` (an interpreter created, allocated, invoked and dropped every cycle),
``"create_keep"`` (the same, but every interpreter kept alive: what each further model
costs, and the leak of an app that never drops one), ``"keep_every_output"`` and
``"keep_last_output"`` (a new frame every cycle, with every input and output kept in a
history list, or only the latest: a classic leak and its fix), ``"planted_leak"`` and
``"allocate_free"`` (1 MiB kept, or allocated and freed, every cycle: controls whose
answer is known). Any picklable callable without arguments is a step as well.

Explained in notebooks/05_memory.ipynb.

Example:
    >>> from mobileopt_ref import leaks
    >>> r = leaks.leak_probe("planted_leak", cycles=20)  # doctest: +SKIP
    >>> r.text  # doctest: +SKIP
    'grows by 1028.0 KiB/cycle (95 % CI 1027.1-1028.9)'
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile

import numpy as np

LEVEL = 0.05
"""Significance level of the growth intervals (95 %), as everywhere in the book."""

MIN_CYCLES = 10
"""Fewest measured cycles :func:`leak_probe` accepts: a line through fewer points has too
few degrees of freedom (``n - 2``) for a useful interval."""

MAX_CYCLES = 100_000
"""Most cycles :func:`leak_probe` accepts (a guard against a typo, not a limit of the method)."""

DEFAULT_TOLERANCE_KIB = 16.0
"""The default stated level ``L``, KiB per cycle: four 4-KiB pages."""

PLANTED_BYTES = 1 << 20
"""What ``"planted_leak"`` keeps and ``"allocate_free"`` allocates each cycle (1 MiB)."""

MODEL_STEPS = ("invoke", "create_drop", "create_keep", "keep_every_output", "keep_last_output")
"""Steps that run a ``.tflite`` model (they need ``model=``)."""

CONTROL_STEPS = ("planted_leak", "allocate_free")
"""Steps whose answer is known by design (no model)."""

STEPS = {
    "invoke": "one interpreter, created in the first cycle, invoked once per cycle",
    "create_drop": "an interpreter created, allocated, invoked once and dropped every cycle",
    "create_keep": "an interpreter created, allocated, invoked once and kept alive every cycle",
    "keep_every_output": "one interpreter; every cycle a new input frame, invoked, and the frame and "
                         "its output appended to a history list that is never trimmed",
    "keep_last_output": "as keep_every_output, but only the latest frame and output are kept",
    "planted_leak": "1 MiB bytes object appended to a list every cycle (a leak by design)",
    "allocate_free": "1 MiB bytes object allocated and released every cycle (no leak by design)",
}
"""The named steps :func:`leak_probe` runs, with what one cycle does."""

VERDICTS = ("grows", "does not grow", "inconclusive")
"""The verdicts of :meth:`Slope.verdict`, against a stated level ``L`` per cycle."""

# The child process must not import TensorFlow (mobileopt_ref.litert does): it names LiteRT's
# op resolvers itself; tests check that this agrees with mobileopt_ref.litert.KERNELS.
_RESOLVERS = {"xnnpack": "AUTO", "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "reference": "BUILTIN_REF"}


# --------------------------------------------------------------------------------------
# Steps (run in the child process; module-level classes, so that they pickle by reference)
# --------------------------------------------------------------------------------------

def _new_interpreter(model: bytes, kernels: str, num_threads: int):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: PLC0415

    interpreter = Interpreter(model_content=model, num_threads=num_threads,
                              experimental_op_resolver_type=getattr(OpResolverType, _RESOLVERS[kernels]))
    interpreter.allocate_tensors()
    return interpreter


def _frame(detail: dict, rng) -> np.ndarray:
    """A new input for the model: uniform values in [-1, 1], or integers of its type."""
    shape, dtype = tuple(detail["shape"]), np.dtype(detail["dtype"])
    if np.issubdtype(dtype, np.floating):
        return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


@dataclasses.dataclass
class _ModelStep:
    """A named model step; ``__call__`` runs one cycle (see :data:`STEPS`)."""

    name: str
    model: bytes
    kernels: str = "xnnpack"
    num_threads: int = 2

    def __post_init__(self):
        self._interpreter = None
        self._kept = []
        self._history = collections.deque(maxlen=1) if self.name == "keep_last_output" else []
        self._rng = np.random.default_rng(0)

    def __getstate__(self):
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__post_init__()

    def _run_once(self, interpreter, fresh: bool) -> np.ndarray:
        inp = interpreter.get_input_details()[0]
        x = _frame(inp, self._rng) if fresh else np.zeros(inp["shape"], inp["dtype"])
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        return x

    def __call__(self):
        if self.name in ("create_drop", "create_keep"):
            interpreter = _new_interpreter(self.model, self.kernels, self.num_threads)
            self._run_once(interpreter, fresh=False)
            if self.name == "create_keep":
                self._kept.append(interpreter)
            del interpreter
            return
        if self._interpreter is None:
            self._interpreter = _new_interpreter(self.model, self.kernels, self.num_threads)
            if self.name == "invoke":
                self._run_once(self._interpreter, fresh=False)  # the input, set once
                return
        if self.name == "invoke":
            self._interpreter.invoke()
            return
        x = self._run_once(self._interpreter, fresh=True)
        out = self._interpreter.get_output_details()[0]
        self._history.append((x, self._interpreter.get_tensor(out["index"])))


class _Planted:
    """``"planted_leak"`` (``keep=True``) or ``"allocate_free"`` (``keep=False``)."""

    def __init__(self, keep: bool):
        self.keep = keep
        self.kept = []

    def __call__(self):
        block = b"\x01" * PLANTED_BYTES  # every byte written: every page resident
        if self.keep:
            self.kept.append(block)
        del block


# --------------------------------------------------------------------------------------
# The growth per cycle
# --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Slope:
    """A growth per cycle with its confidence interval (bytes per cycle).

    Attributes:
        estimate: the least-squares slope ``b``.
        low, high: the interval.
        confidence: the interval's coverage, ``1 - level``.
        stderr: the slope's standard error, widened for autocorrelation.
        n: the number of readings.
        lag1: the lag-1 autocorrelation of the residuals (0 when they are all zero).
        n_eff: the effective number of independent readings, from 3 to ``n``.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    stderr: float
    n: int
    lag1: float
    n_eff: float

    def verdict(self, tolerance: float) -> str:
        """``"grows"`` (the whole interval above ``tolerance``), ``"does not grow"`` (the
        whole interval below it: any growth is smaller) or ``"inconclusive"`` (it straddles it).

        Raises:
            ValueError: for a tolerance that is not a positive finite number.
        """
        tolerance = _check_positive(tolerance, "tolerance")
        if self.low > tolerance:
            return "grows"
        if self.high < tolerance:
            return "does not grow"
        return "inconclusive"

    def text(self, tolerance: float, unit: str = "KiB") -> str:
        """The verdict as a phrase with figures, e.g. ``"grows by 1024.0 KiB/cycle (95 % CI
        1023.5 to 1024.6)"``, ``"does not grow at the stated level: 0.1 KiB/cycle (95 % CI
        -0.4 to 0.6, below 16.0 KiB/cycle)"`` or, inconclusive, ``"may or may not grow at the stated level: ..."``;
        ``unit`` is ``"KiB"`` or ``"MiB"``."""
        scale = {"KiB": 1024.0, "MiB": 1024.0 ** 2}.get(unit)
        if scale is None:
            raise ValueError(f"unit must be 'KiB' or 'MiB', got {unit!r}")
        verdict = self.verdict(tolerance)

        def f(v):
            if not math.isfinite(v):
                return "∞" if v > 0 else "-∞"
            text = f"{v / scale:.1f}"
            return "0.0" if text == "-0.0" else text

        ci = f"{100 * self.confidence:.0f} % CI {f(self.low)} to {f(self.high)}"
        level = f"{f(tolerance)} {unit}/cycle"
        if verdict == "grows":
            return f"grows by {f(self.estimate)} {unit}/cycle ({ci})"
        if verdict == "does not grow":
            return f"does not grow at the stated level: {f(self.estimate)} {unit}/cycle ({ci}, below {level})"
        return (f"may or may not grow at the stated level: {f(self.estimate)} {unit}/cycle ({ci}, "
                f"reaching across {level})")

    def to_dict(self) -> dict:
        """Plain numbers, for a results record."""
        return dataclasses.asdict(self)


def _check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _check_level(level) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    return float(level)


def slope_interval(values, *, level: float = LEVEL) -> Slope:
    """The growth per step of a series, with a confidence interval that allows for autocorrelation.

    With readings ``y_0, ..., y_{n-1}`` at steps ``x_i = i``, the least-squares slope and
    its standard error are (``scipy.stats.linregress``)::

        b = sum (x_i - x̄)(y_i - ȳ) / S_xx,     S_xx = sum (x_i - x̄)^2 = n (n^2 - 1) / 12
        s^2 = sum e_i^2 / (n - 2),           e_i = y_i - ȳ - b (x_i - x̄)
        SE(b) = s / sqrt(S_xx)

    and the interval is ``b ± t_{1 - level/2, dof} SE(b)`` (Student's t). Memory readings
    are not independent around the line: an allocator takes memory in chunks, so the
    residuals come in runs. The interval therefore uses the effective number of readings
    of an AR(1) series (Santer et al. 2000, J. Geophys. Res. 105, 7337; Bretherton et al.
    1999): with ``r1 = sum e_i e_{i+1} / sum e_i^2`` the lag-1 autocorrelation of the
    residuals, ``n_eff = n (1 - r1) / (1 + r1)`` when ``r1 > 0`` (else ``n``), the standard
    error becomes ``SE(b) sqrt((n - 2) / (n_eff - 2))`` and ``dof = n_eff - 2``.
    ``n_eff`` is floored at 3 (one degree of freedom, ``t = 12.7`` at 95 %): a series that
    is flat but for one jump has ``r1`` near 1, and an interval that grows without bound
    would call a few stray bytes "inconclusive" against any level; with the floor the
    interval is very wide, yet still scaled by how far the readings actually move. When
    every residual is 0 (an exact line) the interval is the slope itself.

    Args:
        values: at least :data:`MIN_CYCLES` finite readings, in order (bytes, say).
        level: ``1 -`` the interval's coverage.

    Returns:
        A :class:`Slope` in the readings' unit per step.

    Raises:
        ValueError: for fewer than :data:`MIN_CYCLES` readings, non-finite readings, or a
            level outside (0, 1).
    """
    from scipy import stats as scipy_stats  # noqa: PLC0415 - the child process never needs scipy

    level = _check_level(level)
    y = np.asarray(values, dtype=np.float64)
    if y.ndim != 1 or y.size < MIN_CYCLES:
        raise ValueError(f"need a 1-D series of at least {MIN_CYCLES} readings, got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("readings must be finite numbers")
    n = y.size
    x = np.arange(n, dtype=np.float64)
    fit = scipy_stats.linregress(x, y)
    residuals = y - (fit.intercept + fit.slope * x)
    ss = float(residuals @ residuals)
    scale = max(1.0, float(np.abs(y).max()))
    if ss <= (1e-9 * scale) ** 2 * n:  # an exact line (to rounding)
        return Slope(float(fit.slope), float(fit.slope), float(fit.slope), 1 - level, 0.0, n, 0.0, float(n))
    lag1 = float(residuals[:-1] @ residuals[1:]) / ss
    n_eff = max(3.0, n * (1 - lag1) / (1 + lag1)) if lag1 > 0 else float(n)
    stderr = float(fit.stderr) * math.sqrt((n - 2) / (n_eff - 2))
    half = float(scipy_stats.t.ppf(1 - level / 2, n_eff - 2)) * stderr
    return Slope(float(fit.slope), float(fit.slope) - half, float(fit.slope) + half, 1 - level, stderr, n,
                 lag1, float(n_eff))


# --------------------------------------------------------------------------------------
# The probe
# --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LeakResult:
    """What :func:`leak_probe` measured, and its verdict.

    Attributes:
        step: the step's name (or the callable's qualified name).
        kernels: the kernel set of a model step (``None`` for others).
        warmup: cycles run first and discarded.
        cycles: cycles measured after the warm-up.
        tolerance: the stated level ``L``, bytes per cycle.
        released: whether the allocator's free pages were returned to the system before each
            reading (``malloc_trim`` was asked for and found).
        start_rss: RSS before the first cycle (step unpickled, tracemalloc not yet started), bytes.
        rss: RSS after each cycle, warm-up included, bytes (``warmup + cycles`` values).
        python: bytes of Python-side allocations still live after each cycle (tracemalloc).
        seconds: wall time of each cycle.
        rss_slope: growth per cycle of ``rss`` over the measured cycles (:func:`slope_interval`).
        python_slope: the same for ``python``.
    """

    step: str
    kernels: str | None
    warmup: int
    cycles: int
    tolerance: float
    released: bool
    start_rss: int
    rss: tuple
    python: tuple
    seconds: tuple
    rss_slope: Slope
    python_slope: Slope

    @property
    def verdict(self) -> str:
        """Returns the RSS verdict, one of :data:`VERDICTS` (see :meth:`Slope.verdict`)."""
        return self.rss_slope.verdict(self.tolerance)

    @property
    def python_verdict(self) -> str:
        """The verdict on Python-side allocations, at the same level."""
        return self.python_slope.verdict(self.tolerance)

    @property
    def text(self) -> str:
        """The RSS verdict as a phrase with figures (:meth:`Slope.text`)."""
        return self.rss_slope.text(self.tolerance)

    @property
    def python_text(self) -> str:
        """The Python-side verdict as a phrase with figures."""
        return self.python_slope.text(self.tolerance)

    @property
    def warm_rss(self) -> int:
        """RSS after the last warm-up cycle (after the first cycle when there is no warm-up), bytes."""
        return int(self.rss[max(self.warmup, 1) - 1])

    @property
    def total_growth(self) -> int:
        """RSS after the last cycle minus RSS before the first, bytes."""
        return int(self.rss[-1] - self.start_rss)

    def to_dict(self) -> dict:
        """Plain numbers and words, for a results record (the series left out)."""
        return {"step": self.step, "kernels": self.kernels, "warmup": self.warmup, "cycles": self.cycles,
                "tolerance": self.tolerance, "released": self.released, "verdict": self.verdict, "text": self.text,
                "rss_slope": self.rss_slope.to_dict(), "python_slope": self.python_slope.to_dict(),
                "python_verdict": self.python_verdict}


def _check_count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not minimum <= value <= MAX_CYCLES:
        raise ValueError(f"{name} must be an integer from {minimum} to {MAX_CYCLES}, got {value!r}")
    return int(value)


def _make_step(step, model, kernels, num_threads):
    """The picklable step object and its display name; every refusal as a ValueError."""
    allowed = (f"a step is one of {sorted(STEPS)} or a picklable callable that takes no arguments "
               "(a module-level function or an instance of a module-level class)")
    if isinstance(step, str):
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}: {allowed}")
        if step in CONTROL_STEPS:
            if model is not None:
                raise ValueError(f"step {step!r} runs no model; leave model=None")
            return _Planted(keep=step == "planted_leak"), step, None
        if model is None:
            raise ValueError(f"step {step!r} runs a model: give model= (.tflite bytes or path)")
        from mobileopt_ref import litert  # noqa: PLC0415 - loads TensorFlow; the child never does

        if kernels not in litert.KERNELS:
            raise ValueError(f"kernels must be one of {sorted(litert.KERNELS)}, got {kernels!r}")
        content = litert.check_one_graph(model, f"leak_probe({step!r})")
        # Loaded here first, so that a model LiteRT refuses, a bad thread count or a second input
        # the step would leave unset is a ValueError before any process starts.
        interpreter = litert.make_interpreter(content, num_threads=num_threads, kernels="builtin")
        litert._single_input(interpreter, f"leak_probe({step!r})")  # noqa: SLF001
        del interpreter
        return _ModelStep(step, content, kernels, num_threads), step, kernels
    if not callable(step):
        raise ValueError(f"step must be a name or a callable, got {type(step).__name__}: {allowed}")
    if model is not None:
        raise ValueError("model= is for the named model steps; a callable step loads what it needs itself")
    try:
        pickle.dumps(step)
    except Exception as err:  # noqa: BLE001 - pickling raises many kinds
        raise ValueError(f"step {step!r} cannot be pickled ({err}); it runs in a fresh process: {allowed}") from err
    name = getattr(step, "__qualname__", None) or type(step).__qualname__
    return step, name, None


_CHILD = r"""
import array, gc, json, pickle, sys, time, tracemalloc
payload = pickle.load(sys.stdin.buffer)
sys.path[:0] = [p for p in payload["sys_path"] if p not in sys.path]
import psutil
step = pickle.loads(payload["step"])
process = psutil.Process()
total = payload["total"]
trim = None
if payload["release_free"]:
    try:  # glibc: give free heap pages back to the system, so that RSS counts what is held
        import ctypes
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        trim = None
# Filled in place: storing a reading allocates nothing that tracemalloc would count.
rss, python, seconds = array.array("q", [0]) * total, array.array("q", [0]) * total, array.array("d", [0.0]) * total
gc.collect()
if trim is not None:
    trim(0)
start_rss = process.memory_info().rss
tracemalloc.start()
for i in range(total):
    t0 = time.perf_counter()
    step()
    seconds[i] = time.perf_counter() - t0
    gc.collect()
    if trim is not None:
        trim(0)
    rss[i] = process.memory_info().rss
    python[i] = tracemalloc.get_traced_memory()[0]
tracemalloc.stop()
with open(payload["out"], "w") as f:
    json.dump({"released": trim is not None, "start_rss": start_rss, "rss": rss.tolist(), "python": python.tolist(),
               "seconds": seconds.tolist()}, f)
"""


def leak_probe(step, *, cycles: int = 30, warmup: int = 5, model=None, kernels: str = "xnnpack",
               num_threads: int = 2, tolerance_kib: float = DEFAULT_TOLERANCE_KIB, level: float = LEVEL,
               release_free: bool = True, timeout: float = 600.0) -> LeakResult:
    """Runs a step ``warmup + cycles`` times in a fresh process and judges whether memory grows.

    The child process (``python -c``, this interpreter, the parent's ``sys.path``) imports
    only psutil, numpy and what the step needs (LiteRT for the model steps; no TensorFlow),
    unpickles the step, reads its RSS, starts ``tracemalloc``, then for each cycle: calls
    the step, runs ``gc.collect()`` (so that only memory something still refers to
    counts), with ``release_free`` asks the C allocator to return its free pages
    (``malloc_trim(0)``, glibc only; elsewhere nothing is done and ``released`` is False),
    and reads RSS and the traced Python bytes. The first ``warmup`` cycles are
    discarded; the growth per cycle over the remaining ``cycles`` readings, with its
    interval, is :func:`slope_interval`; the verdict compares it with
    ``L = tolerance_kib`` KiB per cycle (:meth:`Slope.verdict`).

    Args:
        step: a name in :data:`STEPS`, or a picklable callable without arguments (a
            module-level function, or an instance of a module-level class whose
            ``__call__`` runs one cycle and whose attributes hold its state).
        cycles: measured cycles, at least :data:`MIN_CYCLES`.
        warmup: cycles run first and discarded (first allocations, caches, the
            allocator's heap), at least 0.
        model: for :data:`MODEL_STEPS`: ``.tflite`` bytes or path, one input.
        kernels: for :data:`MODEL_STEPS`: one of :data:`mobileopt_ref.litert.KERNELS`.
        num_threads: interpreter threads (model steps).
        tolerance_kib: the stated level ``L``, KiB per cycle (positive).
        level: ``1 -`` the interval's coverage.
        release_free: return the allocator's free pages before each reading (see above);
            ``False`` measures RSS as the app would see it, allocator reserves included.
        timeout: seconds the child process may take.

    Returns:
        A :class:`LeakResult`: the series (bytes, seconds), the slopes and the verdicts.

    Raises:
        ValueError: for an unknown step name, a step that is neither a name nor a
            picklable callable, ``cycles`` below :data:`MIN_CYCLES` (or above
            :data:`MAX_CYCLES`), a negative ``warmup``, a bad level or tolerance; for a
            model step, a missing model, a model that is not a ``.tflite`` LiteRT can load
            or that has more than one input, an unknown kernel set or a bad thread count;
            a model given to a step that takes none. All before the process starts.
        RuntimeError: if the child process fails or times out (with its error output).
    """
    cycles = _check_count(cycles, "cycles", MIN_CYCLES)
    warmup = _check_count(warmup, "warmup", 0)
    tolerance = _check_positive(tolerance_kib, "tolerance_kib") * 1024.0
    level = _check_level(level)
    _check_positive(timeout, "timeout")
    if not isinstance(release_free, bool):
        raise ValueError(f"release_free must be True or False, got {release_free!r}")
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
    obj, name, kernel_set = _make_step(step, model, kernels, num_threads)
    with tempfile.TemporaryDirectory() as folder:
        out_path = os.path.join(folder, "series.json")
        payload = pickle.dumps({"sys_path": list(sys.path), "step": pickle.dumps(obj),
                                "total": warmup + cycles, "out": out_path, "release_free": release_free})
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            result = subprocess.run([sys.executable, "-c", _CHILD], input=payload, capture_output=True,
                                    timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"the probe's process took more than {timeout:g} s ({name})") from err
        if result.returncode != 0 or not os.path.exists(out_path):
            tail = result.stderr.decode("utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"the probe's process failed (exit {result.returncode}) running {name}: {tail}")
        with open(out_path, encoding="utf-8") as f:
            series = json.load(f)
    rss, python = series["rss"], series["python"]
    return LeakResult(
        step=name, kernels=kernel_set, warmup=warmup, cycles=cycles, tolerance=tolerance,
        released=bool(series["released"]),
        start_rss=int(series["start_rss"]), rss=tuple(int(v) for v in rss), python=tuple(int(v) for v in python),
        seconds=tuple(float(s) for s in series["seconds"]),
        rss_slope=slope_interval(rss[warmup:], level=level), python_slope=slope_interval(python[warmup:], level=level),
    )


def interval_text(slope: Slope, unit: str = "MiB", digits: int = 1) -> str:
    """``"27.3 MiB (95 % CI 27.1-27.5)"``: a growth per cycle as an amount, without a verdict.

    For a step whose growth is its point (what each further interpreter costs).
    """
    scale = {"KiB": 1024.0, "MiB": 1024.0 ** 2}.get(unit)
    if scale is None:
        raise ValueError(f"unit must be 'KiB' or 'MiB', got {unit!r}")
    return (f"{slope.estimate / scale:.{digits}f} {unit} ({100 * slope.confidence:.0f} % CI "
            f"{slope.low / scale:.{digits}f} to {slope.high / scale:.{digits}f})")


__all__ = ["CONTROL_STEPS", "DEFAULT_TOLERANCE_KIB", "LEVEL", "LeakResult", "MAX_CYCLES", "MIN_CYCLES",
           "MODEL_STEPS", "PLANTED_BYTES", "STEPS", "Slope", "VERDICTS", "interval_text", "leak_probe",
           "slope_interval"]
