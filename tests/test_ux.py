"""Tests of the user-experience module: tail statistics, cold start, frame timelines, downloads."""

import math
import threading

import numpy as np
import pytest

from mobileopt_ref import compute, litert, ux


def test_frame_budgets():
    assert [round(ux.frame_budget_ms(f), 1) for f in ux.FRAME_RATES] == [33.3, 16.7, 8.3]
    for bad in (0, -30, float("nan"), float("inf"), "30", True, None):
        with pytest.raises(ValueError, match="the frame rate must be a positive number of frames per second"):
            ux.frame_budget_ms(bad)


def test_percentiles_and_tail_statistics():
    sample = [1.0, 2.0, 3.0, 4.0, 100.0]
    assert ux.percentile(sample, 50) == 3.0
    assert ux.percentile(sample, 0) == 1.0 and ux.percentile(sample, 100) == 100.0
    assert ux.percentile(sample, 90) == pytest.approx(np.percentile(sample, 90))
    stats = ux.tail_stats(sample)
    assert stats.runs == 5 and stats.p50_ms == 3.0 and stats.max_ms == 100.0
    assert stats.jitter_ms == pytest.approx((1 + 1 + 1 + 96) / 4)
    assert stats.p50_ms <= stats.p90_ms <= stats.p99_ms <= stats.p999_ms <= stats.max_ms
    assert ux.tail_stats([5.0]).jitter_ms == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ux.percentile([1.0, 2.0], 101), r"the percentile must be a number in \[0, 100\], got 101"),
        (lambda: ux.percentile([1.0, 2.0], -0.5), r"the percentile must be a number in \[0, 100\]"),
        (lambda: ux.percentile([], 50), "the latency sample is empty"),
        (lambda: ux.tail_stats([]), "the latency sample is empty"),
        (lambda: ux.tail_stats([1.0, -2.0]), "finite, non-negative"),
        (lambda: ux.tail_stats([1.0, float("nan")]), "finite, non-negative"),
    ],
)
def test_bad_latency_samples(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_latest_frame_queue_keeps_only_the_newest():
    queue = ux.LatestFrameQueue()
    for frame in range(3):
        queue.put(frame)
    assert queue.get() == 2 and queue.replaced == 2
    got = []
    consumer = threading.Thread(target=lambda: got.append(queue.get()))
    consumer.start()
    queue.put(7)
    consumer.join(timeout=5)
    assert got == [7]
    queue.close()
    assert queue.get() is None


def test_timeline_of_a_fast_model_has_a_consistent_structure(small_cnn):
    # How many refreshes drop depends on this CPU and its load; the structure does not.
    tfl = litert.to_tflite(small_cnn)
    for design in ux.DESIGNS:
        run = ux.run_timeline(tfl, fps=30, duration_s=0.5, design=design, render_ms=1.0)
        assert run.ticks == 15 and run.budget_ms == pytest.approx(1000 / 30)
        assert 0 <= run.dropped_ui <= run.ticks and set(run.dropped_refreshes) <= set(range(1, 16))
        frames = run.end_to_end_ms * 30 / 1000     # results appear at refreshes: whole frames after arrival
        assert np.allclose(frames, np.round(frames), atol=1e-6) and np.all(frames >= 1 - 1e-9)
        assert all(s <= e for _, s, e in run.inferences)
    assert len(run.ui_frames) == 15               # the worker design's UI loop draws every tick
    ui = ux.run_timeline(tfl, fps=30, duration_s=0.5, design="ui", render_ms=1.0)
    assert ui.skipped == 0 and 1 <= len(ui.inferences) <= 15   # ticks that pass while busy are lost


def test_a_minimum_inference_time_forces_the_ui_thread_to_drop_frames(small_cnn):
    # A fast model held to 1.5 frame budgets: the UI thread can draw at most one refresh in
    # every (min_inference + render) / budget, on any CPU; a worker keeps the UI in time.
    tfl = litert.to_tflite(small_cnn)
    fps, render_ms = 30, 1.0
    min_ms = 1.5 * ux.frame_budget_ms(fps)
    ui = ux.run_timeline(tfl, fps=fps, duration_s=1.0, design="ui", render_ms=render_ms, min_inference_ms=min_ms)
    forced = ui.ticks - math.floor(ui.ticks * ux.frame_budget_ms(fps) / (min_ms + render_ms) + 1e-9)
    assert ui.dropped_ui >= forced > 0, (ui.dropped_ui, forced)
    assert all(end - start >= min_ms / 1e3 for _, start, end in ui.inferences)
    worker = ux.run_timeline(tfl, fps=fps, duration_s=1.0, design="worker", render_ms=render_ms,
                             min_inference_ms=min_ms)
    assert all(end - start >= min_ms / 1e3 for _, start, end in worker.inferences)
    assert worker.skipped > 0 and len(worker.ui_frames) == worker.ticks


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_inference_ms": -1}, "min_inference_ms must be a non-negative time"),
        ({"min_inference_ms": float("nan")}, "min_inference_ms must be a non-negative time"),
        ({"fps": 0}, "the frame rate must be a positive number"),
        ({"fps": -60}, "the frame rate must be a positive number"),
        ({"duration_s": 0}, "duration_s must be positive"),
        ({"render_ms": -1}, "render_ms must be a non-negative time"),
        ({"design": "gpu"}, r"design must be one of \('ui', 'worker'\)"),
    ],
)
def test_bad_timeline_inputs(small_cnn, kwargs, message):
    args = {"fps": 30, "duration_s": 0.1} | kwargs
    with pytest.raises(ValueError, match=message):
        ux.run_timeline(litert.to_tflite(small_cnn), **args)


def test_cold_start_in_fresh_processes(small_cnn):
    tfl = litert.to_tflite(small_cnn)
    cold = ux.measure_cold_start(tfl, repeats=2, warm_runs=5, num_threads=1)
    assert set(cold.stages_ms) == set(ux.COLD_STAGES)
    assert all(len(v) == 2 and np.all(v >= 0) for v in cold.stages_ms.values())
    assert cold.median_ms("import") > 0 and cold.warm.runs == 10
    assert np.all(cold.app_cold_ms >= cold.model_cold_ms)
    with pytest.raises(ValueError, match="unknown stage 'boot'"):
        cold.median_ms("boot")
    with pytest.raises(ValueError, match="repeats must be a positive integer"):
        ux.measure_cold_start(tfl, repeats=0)
    with pytest.raises(ValueError, match="kernels must be one of"):
        ux.measure_cold_start(tfl, kernels="gpu")


def test_download_time():
    assert ux.download_seconds(10_000_000, 10.0) == pytest.approx(8.0)
    assert ux.download_seconds(10_000_000, 10.0, rtt_s=0.1) == pytest.approx(8.1)
    with pytest.raises(ValueError, match="mbit_per_s must be a positive rate"):
        ux.download_seconds(1000, 0.0)
    with pytest.raises(ValueError, match="size_bytes must be a non-negative number of bytes"):
        ux.download_seconds(-1, 10.0)


def test_forced_drops_is_the_design_floor():
    assert ux.forced_drops(180, 120, 21.5) == 180 - math.floor(180 * (1000 / 120) / 21.5)
    assert ux.forced_drops(45, 30, 21.5) == 0  # a 21.5 ms frame fits the 33.3 ms budget
    assert ux.forced_drops(0, 60, 10.0) == 0
    with pytest.raises(ValueError, match="ticks"):
        ux.forced_drops(-1, 60, 10.0)
    with pytest.raises(ValueError, match="frame_ms"):
        ux.forced_drops(10, 60, 0)


def test_compare_drops_pairs_refreshes():
    def timeline(dropped, ticks=10):
        return ux.Timeline(design="ui", fps=60, arrivals=np.arange(ticks) / 60, inferences=[], ui_frames=[],
                           dropped_refreshes=tuple(dropped), skipped=0, end_to_end_ms=np.array([]))

    ui, worker = timeline(range(1, 9)), timeline([])
    assert ui.shown.tolist() == [False] * 8 + [True] * 2
    m = ux.compare_drops(ui, worker)
    assert (m.only_a, m.only_b, m.verdict) == (0, 8, "B better")
    with pytest.raises(ValueError, match="same refreshes"):
        ux.compare_drops(ui, timeline([], ticks=5))
