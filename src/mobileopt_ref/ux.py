"""User experience: tail latency, cold start, frame budgets and download time.

People do not feel a model's median latency. They feel the slow frame (the tail of the
latency distribution), the wait before the first answer (cold start: loading the model,
allocating its tensors, the first inference) and a camera preview that stutters (frames
dropped because the UI thread was busy). This module measures each of them with real
LiteRT inference:

- :func:`tail_stats`: p50, p90, p99, p99.9, maximum and jitter of a long run;
- :func:`measure_cold_start`: a fresh process loading and running a model, stage by stage;
- :func:`run_timeline`: frames arriving at a fixed rate, inference on the UI thread or on
  a worker thread fed by a latest-frame-wins queue (:class:`LatestFrameQueue`), dropped
  UI frames and end-to-end latency, measured on real threads (LiteRT releases the GIL
  while it invokes);
- :func:`download_seconds`: the time to fetch a model file over a network.

Explained in notebooks/07_ux.ipynb.

Example:
    >>> from mobileopt_ref import ux
    >>> ux.frame_budget_ms(60)
    16.666666666666668
    >>> run = ux.run_timeline(tflite, fps=30, design="worker")  # doctest: +SKIP
    >>> run.dropped_ui, run.end_to_end_ms.mean()  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from mobileopt_ref import compute, litert

FRAME_RATES = (30, 60, 120)
"""The frame rates of the book's budgets (33.3, 16.7 and 8.3 ms a frame)."""


def _check_rate(fps) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"the frame rate must be a positive number of frames per second, got {fps!r}")
    return float(fps)


def frame_budget_ms(fps) -> float:
    """The time one frame may take at ``fps`` frames per second: ``1000 / fps`` ms.

    Raises:
        ValueError: for a frame rate that is not a positive number.
    """
    return 1000.0 / _check_rate(fps)


def _sample(samples_ms) -> np.ndarray:
    x = np.asarray(samples_ms, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("the latency sample is empty: measure at least one run")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError("latency samples must be finite, non-negative times")
    return x


def percentile(samples_ms, q) -> float:
    """The ``q``-th percentile of a latency sample (linear interpolation between ranks).

    Args:
        samples_ms: latencies (at least one, finite, non-negative).
        q: the percentile, in ``[0, 100]`` (50 is the median, 99 the 1-in-100 slow run).

    Raises:
        ValueError: for an empty sample, bad times, or ``q`` outside ``[0, 100]``.
    """
    x = _sample(samples_ms)
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 <= q <= 100:
        raise ValueError(f"the percentile must be a number in [0, 100], got {q!r}")
    return float(np.percentile(x, q))


@dataclasses.dataclass(frozen=True)
class TailStats:
    """Latency statistics of a long run, tail first.

    Attributes:
        runs: number of samples.
        mean_ms, p50_ms, p90_ms, p99_ms, p999_ms, max_ms: the mean, percentiles and worst.
        std_ms: standard deviation.
        jitter_ms: mean absolute difference between consecutive latencies,
            ``mean |x_i - x_(i-1)|`` (the variation a user sees from one frame to the
            next; RFC 3550's interarrival jitter without its smoothing).
    """

    runs: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    std_ms: float
    jitter_ms: float


def tail_stats(samples_ms) -> TailStats:
    """Summarises a latency sample, in the order measured, into :class:`TailStats`.

    A p99.9 needs a thousand samples or more to be more than the maximum; with fewer
    it is reported all the same, interpolated between the largest ones.

    Raises:
        ValueError: for an empty sample or non-finite or negative times.
    """
    x = _sample(samples_ms)
    p50, p90, p99, p999 = np.percentile(x, [50, 90, 99, 99.9])
    return TailStats(
        runs=int(x.size),
        mean_ms=float(x.mean()),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        p999_ms=float(p999),
        max_ms=float(x.max()),
        std_ms=float(x.std()),
        jitter_ms=float(np.abs(np.diff(x)).mean()) if x.size > 1 else 0.0,
    )


def measure_long_runs(models: dict, *, num_runs: int | dict = 2000, rounds: int = 10, warmup: int = 20,
                      num_threads: int = 2, kernels: str = "xnnpack") -> dict:
    """Long latency runs of several models, interleaved in rounds, as :class:`TailStats`.

    The timing is :func:`mobileopt_ref.compute.compare_latency`'s (same input, same
    interleaving); this adds the tail: p99.9, maximum and jitter.

    Returns:
        ``{name: (TailStats, samples in ms as measured)}``.

    Raises:
        ValueError: as :func:`mobileopt_ref.compute.compare_latency` (no models, bad counts,
            or an invalid model, before any model is invoked).
    """
    runs = compute.compare_latency(models, num_runs=num_runs, rounds=rounds, warmup=warmup,
                                   num_threads=num_threads, kernels=kernels)
    return {name: (tail_stats(s.samples_ms), np.asarray(s.samples_ms)) for name, s in runs.items()}


# ---------------------------------------------------------------------------------------
# Cold start
# ---------------------------------------------------------------------------------------

_COLD_SCRIPT = r"""
import json, sys, time
spawned = time.time()
t = time.perf_counter()
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
out = {"spawned": spawned, "import": time.perf_counter() - t}
path, kernels, threads, warm = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
resolver = {"xnnpack": OpResolverType.AUTO, "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            "reference": OpResolverType.BUILTIN_REF}[kernels]
t = time.perf_counter()
interpreter = Interpreter(model_path=path, num_threads=threads, experimental_op_resolver_type=resolver)
out["load"] = time.perf_counter() - t
t = time.perf_counter()
interpreter.allocate_tensors()
out["allocate"] = time.perf_counter() - t
inp = interpreter.get_input_details()[0]
image = np.random.default_rng(0).integers(0, 256, size=inp["shape"]).astype(inp["dtype"])
interpreter.set_tensor(inp["index"], image)
t = time.perf_counter()
interpreter.invoke()
out["first_invoke"] = time.perf_counter() - t
samples = []
for _ in range(warm):
    t = time.perf_counter()
    interpreter.invoke()
    samples.append(time.perf_counter() - t)
out["warm"] = samples
print(json.dumps(out))
"""

COLD_STAGES = ("process", "import", "load", "allocate", "first_invoke")
"""The stages of a cold start, in order (see :func:`measure_cold_start`)."""


@dataclasses.dataclass(frozen=True)
class ColdStart:
    """Cold starts of a model in fresh processes, and its warm latency in the same processes.

    Attributes:
        stages_ms: ``{stage: one time per fresh process}`` for the stages of
            :data:`COLD_STAGES`: starting Python (``process``), importing LiteRT and numpy,
            creating the interpreter from the file (``load``), ``allocate_tensors``
            (where XNNPACK packs the weights), and the first ``invoke``.
        warm: :class:`TailStats` of the invokes after the first, pooled over processes.
    """

    stages_ms: dict
    warm: TailStats

    def median_ms(self, stage: str) -> float:
        """Median over processes of one stage."""
        if stage not in self.stages_ms:
            raise ValueError(f"unknown stage {stage!r}; the stages are {list(self.stages_ms)}")
        return float(np.median(self.stages_ms[stage]))

    @property
    def model_cold_ms(self) -> np.ndarray:
        """Per process, what the model itself costs before its first answer (load, allocate, first invoke)."""
        return sum(np.asarray(self.stages_ms[s]) for s in ("load", "allocate", "first_invoke"))

    @property
    def app_cold_ms(self) -> np.ndarray:
        """Per process, from starting the process to the first answer (every stage)."""
        return sum(np.asarray(self.stages_ms[s]) for s in COLD_STAGES)


def measure_cold_start(model, *, repeats: int = 5, warm_runs: int = 50, num_threads: int = 2,
                       kernels: str = "xnnpack") -> ColdStart:
    """Cold start of a ``.tflite`` model, measured in ``repeats`` fresh Python processes.

    Each process times its stages with ``time.perf_counter``: importing LiteRT and numpy,
    ``Interpreter(model_path=...)`` (the file is memory-mapped, as an app maps it from its
    assets), ``allocate_tensors``, the first ``invoke``, then ``warm_runs`` more invokes.
    The process start is the wall-clock time from launching the process to its first
    line. The file stays in the operating system's page cache between processes (a
    "warm" disk), as it does on a phone that ran the app recently.

    Args:
        model: ``.tflite`` bytes or path.
        repeats: fresh processes (positive).
        warm_runs: invokes after the first in each process (positive).
        num_threads: interpreter threads.
        kernels: one of :data:`mobileopt_ref.litert.KERNELS`.

    Returns:
        A :class:`ColdStart`.

    Raises:
        ValueError: for bad counts, an unknown kernel set, a model that is not a ``.tflite``
            or that LiteRT cannot load, a model with more than one input, or an input of
            token ids (``int32`` or ``int64`` without quantization: the random pixel values
            the processes feed would index past a table); all before any process starts.
        RuntimeError: if a measuring process fails (with its error output).
    """
    for name, value in (("repeats", repeats), ("warm_runs", warm_runs), ("num_threads", num_threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if kernels not in litert.KERNELS:
        raise ValueError(f"kernels must be one of {sorted(litert.KERNELS)}, got {kernels!r}")
    content = litert.check_one_graph(model, "measure_cold_start")
    # Loaded here first (builtin kernels, no weight packing): what the processes could not run
    # is a ValueError before any of them starts.
    inp = litert._single_input(  # noqa: SLF001
        litert.make_interpreter(content, num_threads=1, kernels="builtin"), "measure_cold_start")
    if np.dtype(inp["dtype"]) in (np.int32, np.int64) and inp["quantization"][0] == 0:
        raise ValueError(
            f"measure_cold_start feeds random pixel values 0-255; input {inp['name']!r} is "
            f"{np.dtype(inp['dtype']).name} without quantization (token ids or indices), which they "
            "would index past its table: time such a model with compute.measure_latency (ids 0)"
        )
    stages = {s: [] for s in COLD_STAGES}
    warm = []
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.tflite")
        with open(path, "wb") as f:
            f.write(content)
        for _ in range(repeats):
            launched = time.time()
            result = subprocess.run(
                [sys.executable, "-c", _COLD_SCRIPT, path, kernels, str(num_threads), str(warm_runs)],
                capture_output=True, text=True, timeout=600,
            )
            if result.returncode != 0:
                raise RuntimeError(f"the measuring process failed: {result.stderr[-2000:]}")
            out = json.loads(result.stdout.strip().splitlines()[-1])
            stages["process"].append(1e3 * max(0.0, out["spawned"] - launched))
            for s in ("import", "load", "allocate", "first_invoke"):
                stages[s].append(1e3 * out[s])
            warm.extend(1e3 * np.asarray(out["warm"]))
    return ColdStart(stages_ms={s: np.asarray(v) for s, v in stages.items()}, warm=tail_stats(warm))


# ---------------------------------------------------------------------------------------
# Frame timelines
# ---------------------------------------------------------------------------------------


class LatestFrameQueue:
    """A one-slot queue where the newest frame wins.

    A camera puts every frame in it; a slower consumer gets only the newest one, and
    every frame replaced before it was taken is counted in ``replaced``. The consumer
    never works on a stale frame and the queue never grows.
    """

    def __init__(self):
        self._condition = threading.Condition()
        self._item = None
        self._closed = False
        self.replaced = 0

    def put(self, item) -> None:
        """Offers a frame, replacing one that is still waiting."""
        with self._condition:
            if self._item is not None:
                self.replaced += 1
            self._item = item
            self._condition.notify()

    def close(self) -> None:
        """No more frames: :meth:`get` returns ``None`` once the last one is taken."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def get(self):
        """The newest frame, waiting for one; ``None`` when closed and empty."""
        with self._condition:
            while self._item is None and not self._closed:
                self._condition.wait()
            item, self._item = self._item, None
            return item


DESIGNS = ("ui", "worker")
"""Where inference runs (on the UI thread itself, or on a worker thread)."""


@dataclasses.dataclass(frozen=True)
class Timeline:
    """What happened, frame by frame, in one :func:`run_timeline` (times in seconds from the start).

    Attributes:
        design: ``"ui"`` or ``"worker"``.
        fps: frame rate of the camera and the display.
        arrivals: arrival time of each camera frame ``k`` (``k / fps``).
        inferences: ``(frame, start, end)`` of every inference.
        ui_frames: ``(tick, start, end, shown)`` of every UI frame: the display tick it
            was drawn for, when the UI thread started and finished it, and the camera
            frame whose result it shows (-1 before the first result).
        dropped_refreshes: the refreshes ``j`` (at ``j / fps``) that showed no new UI
            frame: the screen repeated the previous picture, a stutter.
        skipped: camera frames never inferred.
        end_to_end_ms: for each inferred frame whose result was shown, the time from the
            frame's arrival to the display refresh that first shows its result.
    """

    design: str
    fps: float
    arrivals: np.ndarray
    inferences: list
    ui_frames: list
    dropped_refreshes: tuple
    skipped: int
    end_to_end_ms: np.ndarray

    @property
    def ticks(self) -> int:
        """Display ticks (= camera frames) in the run."""
        return len(self.arrivals)

    @property
    def budget_ms(self) -> float:
        """The frame budget, ``1000 / fps``."""
        return 1000.0 / self.fps

    @property
    def dropped_ui(self) -> int:
        """Number of dropped refreshes (UI frames the user did not get)."""
        return len(self.dropped_refreshes)

    @property
    def dropped_ui_fraction(self) -> float:
        """Share of display ticks without a new UI frame in time."""
        return self.dropped_ui / self.ticks

    @property
    def shown(self) -> np.ndarray:
        """``bool`` array ``(ticks,)``: whether refresh ``j = 1 .. ticks`` showed a new UI frame.

        Two timelines of the same length pair refresh by refresh, for an exact McNemar test
        of their drops (:func:`compare_drops`).
        """
        return ~np.isin(np.arange(1, self.ticks + 1), self.dropped_refreshes)


def forced_drops(ticks: int, fps, frame_ms) -> int:
    """Refreshes a UI thread must drop when each of its frames takes at least ``frame_ms``.

    A thread that needs at least ``frame_ms`` per frame finishes at most one frame every
    ``frame_ms``, so of ``ticks`` refreshes at most ``floor(ticks * budget / frame_ms)``
    can show a new frame; the rest are dropped on any CPU, however fast (a slower or busier
    one only drops more). This is the design floor the UX chapter asserts.

    Args:
        ticks: display refreshes in the run (non-negative integer).
        fps: frame rate (positive).
        frame_ms: the least time per UI-thread frame, in milliseconds (positive).

    Returns:
        ``max(0, ticks - floor(ticks * budget_ms / frame_ms))``.

    Raises:
        ValueError: for a negative tick count, a non-positive rate or frame time.
    """
    budget = frame_budget_ms(fps)
    if isinstance(ticks, bool) or not isinstance(ticks, (int, np.integer)) or ticks < 0:
        raise ValueError(f"ticks must be a non-negative integer, got {ticks!r}")
    if not (isinstance(frame_ms, (int, float)) and math.isfinite(frame_ms) and frame_ms > 0):
        raise ValueError(f"frame_ms must be a positive time, got {frame_ms!r}")
    return max(0, int(ticks) - math.floor(ticks * budget / frame_ms + 1e-9))


def compare_drops(ui: "Timeline", worker: "Timeline"):
    """The worker design's dropped refreshes against the UI-thread design's, refresh by refresh.

    An exact McNemar test (:func:`mobileopt_ref.stats.mcnemar`) on ``ui.shown`` (A) and
    ``worker.shown`` (B): ``"B better"`` means the worker dropped significantly fewer.

    Raises:
        ValueError: if the two timelines have different numbers of refreshes.
    """
    from mobileopt_ref import stats  # noqa: PLC0415

    if ui.ticks != worker.ticks:
        raise ValueError(f"timelines must have the same refreshes to pair, got {ui.ticks} and {worker.ticks}")
    return stats.mcnemar(ui.shown, worker.shown)


def _spin(seconds: float) -> None:
    """Busy work on the calling thread (holding the GIL, as Python UI code would)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _sleep_until(t: float) -> None:
    delay = t - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def _vsync_after(t: float, fps: float) -> float:
    """The first display refresh at or after ``t`` (refreshes at ``j / fps``)."""
    return math.ceil(t * fps - 1e-9) / fps


def _dropped_refreshes(ui_frames, ticks: int, fps: float) -> tuple:
    """Refreshes ``j = 1 .. ticks`` with no UI frame finished since the refresh before."""
    fresh = {round(_vsync_after(end, fps) * fps) for _, _, end, _ in ui_frames}
    return tuple(j for j in range(1, ticks + 1) if j not in fresh)


def _end_to_end(inferences, ui_frames, arrivals, fps: float) -> np.ndarray:
    done = {frame: end for frame, _, end in inferences}
    latencies = []
    for frame, finished in sorted(done.items()):
        shown = [end for _, start, end, shows in ui_frames if shows == frame and end >= finished]
        if shown:
            latencies.append(1e3 * (_vsync_after(min(shown), fps) - arrivals[frame]))
    return np.asarray(latencies)


def run_timeline(model, *, fps, duration_s: float = 3.0, design: str = "worker", render_ms: float = 2.0,
                 num_threads: int = 1, kernels: str = "xnnpack", warmup: int = 5,
                 min_inference_ms: float = 0.0) -> Timeline:
    """Runs a camera-to-screen loop for ``duration_s`` with real LiteRT inference.

    A camera delivers frame ``k`` at ``k / fps``, and the display refreshes at the same
    times. The UI thread draws UI frames (``render_ms`` of busy work, holding the GIL like
    Python UI code); a finished UI frame appears at the next refresh. A refresh with no
    new UI frame since the one before is a *dropped* frame: the screen shows the same
    picture twice and the preview stutters.

    - ``design="ui"``: the UI thread, at each tick, runs inference on the newest frame and
      then draws it; while it infers, it draws nothing.
    - ``design="worker"``: a camera thread puts each frame into a
      :class:`LatestFrameQueue`; a worker thread infers the newest frame whenever it is
      free; the UI thread draws every tick with the newest result. LiteRT releases the GIL
      during ``invoke``, so the threads really run in parallel.

    Args:
        model: ``.tflite`` bytes or path.
        fps: frame rate of camera and display (positive).
        duration_s: length of the run (positive).
        design: one of :data:`DESIGNS`.
        render_ms: the UI thread's own work per frame (non-negative).
        num_threads: interpreter threads.
        kernels: one of :data:`mobileopt_ref.litert.KERNELS`.
        warmup: invokes before the run starts.
        min_inference_ms: the least time an inference keeps its thread (non-negative):
            after ``invoke`` returns, the thread sleeps (releasing the GIL, as a thread
            waiting for a slower processor or an accelerator does) until this long has
            passed since the invoke started. 0 (the default) adds nothing. It lets a
            timeline show a slower device's inference time on any CPU: a UI-thread frame
            then takes at least ``min_inference_ms + render_ms``, whatever the CPU.

    Returns:
        A :class:`Timeline`.

    Raises:
        ValueError: for a non-positive frame rate or duration, a negative render or
            minimum inference time, a warm-up that is not a non-negative integer, an
            unknown design, or an invalid model (before any invoke).
    """
    fps = _check_rate(fps)
    if not (isinstance(duration_s, (int, float)) and math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be positive, got {duration_s!r}")
    if not (isinstance(render_ms, (int, float)) and math.isfinite(render_ms) and render_ms >= 0):
        raise ValueError(f"render_ms must be a non-negative time, got {render_ms!r}")
    if isinstance(min_inference_ms, bool) or not (isinstance(min_inference_ms, (int, float))
                                                    and math.isfinite(min_inference_ms) and min_inference_ms >= 0):
        raise ValueError(f"min_inference_ms must be a non-negative time, got {min_inference_ms!r}")
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {DESIGNS}, got {design!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")
    interpreter = compute.prepared_interpreter(model, num_threads, kernels)
    for _ in range(warmup):
        interpreter.invoke()
    ticks = max(1, int(round(duration_s * fps)))
    arrivals = np.arange(ticks) / fps
    render_s = render_ms / 1e3
    min_inference_s = min_inference_ms / 1e3
    inferences, ui_frames = [], []
    t0 = time.perf_counter() + 0.05

    def now():
        return time.perf_counter() - t0

    def infer(start):
        interpreter.invoke()
        while (rest := t0 + start + min_inference_s - time.perf_counter()) > 0:
            time.sleep(rest)

    if design == "ui":
        tick = 0
        while tick < ticks:
            _sleep_until(t0 + tick / fps)
            tick = max(tick, min(ticks - 1, int(now() * fps)))   # ticks that passed while busy are lost
            start = now()
            infer(start)
            inferred = now()
            inferences.append((tick, start, inferred))
            _spin(render_s)
            ui_frames.append((tick, start, now(), tick))
            tick += 1
        skipped = ticks - len(inferences)
    else:
        queue = LatestFrameQueue()
        latest = {"frame": -1}
        lock = threading.Lock()

        def camera():
            for k in range(ticks):
                _sleep_until(t0 + k / fps)
                queue.put(k)
            queue.close()

        def worker():
            while (frame := queue.get()) is not None:
                start = now()
                infer(start)
                end = now()
                with lock:
                    inferences.append((frame, start, end))
                    latest["frame"] = frame

        threads = [threading.Thread(target=camera, daemon=True), threading.Thread(target=worker, daemon=True)]
        for thread in threads:
            thread.start()
        for tick in range(ticks):
            _sleep_until(t0 + tick / fps)
            start = now()
            with lock:
                shown = latest["frame"]
            _spin(render_s)
            ui_frames.append((tick, start, now(), shown))
        for thread in threads:
            thread.join()
        skipped = queue.replaced
    return Timeline(
        design=design,
        fps=fps,
        arrivals=arrivals,
        inferences=sorted(inferences, key=lambda r: r[1]),
        ui_frames=ui_frames,
        dropped_refreshes=_dropped_refreshes(ui_frames, ticks, fps),
        skipped=skipped,
        end_to_end_ms=_end_to_end(inferences, ui_frames, arrivals, fps),
    )


# ---------------------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------------------

NETWORKS = {
    "slow mobile (1 Mbit/s, 300 ms)": (1.0, 0.3),
    "typical 4G (10 Mbit/s, 80 ms)": (10.0, 0.08),
    "fast 5G or Wi-Fi (100 Mbit/s, 30 ms)": (100.0, 0.03),
}
"""Assumed networks as ``{name: (Mbit/s, round-trip seconds)}`` (round figures, not measurements)."""


def download_seconds(size_bytes, mbit_per_s, *, rtt_s: float = 0.0) -> float:
    """Time to fetch ``size_bytes``: ``rtt + 8 x size / rate``.

    One round trip to start the transfer plus the bytes at the link's rate (TCP's slow
    start and retransmissions are not modelled, so this is a lower bound).

    Raises:
        ValueError: for a negative size or round trip, or a non-positive rate.
    """
    if not (isinstance(size_bytes, (int, float, np.integer)) and size_bytes >= 0):
        raise ValueError(f"size_bytes must be a non-negative number of bytes, got {size_bytes!r}")
    if not (isinstance(mbit_per_s, (int, float)) and math.isfinite(mbit_per_s) and mbit_per_s > 0):
        raise ValueError(f"mbit_per_s must be a positive rate, got {mbit_per_s!r}")
    if not (isinstance(rtt_s, (int, float)) and math.isfinite(rtt_s) and rtt_s >= 0):
        raise ValueError(f"rtt_s must be a non-negative time, got {rtt_s!r}")
    return float(rtt_s + 8.0 * size_bytes / (mbit_per_s * 1e6))
