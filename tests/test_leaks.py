"""The leak probe: a planted leak is found, a step that frees is not a leak, bad input is refused.

RSS growth of a deliberate leak is set by its design (1 MiB kept per cycle), not by the
CPU's speed, so these checks hold on any machine.
"""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mobileopt_ref import leaks

MIB = leaks.PLANTED_BYTES
KIB = 1024


class KeepHalfMiB:
    """A user-defined step (module-level, so that it pickles): keeps 512 KiB per cycle."""

    def __init__(self):
        self.kept = []

    def __call__(self):
        self.kept.append(b"\x02" * (MIB // 2))


def frees_everything():
    """A user-defined step that allocates and frees."""
    block = bytearray(b"\x03" * MIB)
    del block


@pytest.fixture(scope="module")
def planted():
    return leaks.leak_probe("planted_leak", cycles=15, warmup=2)


def test_a_planted_leak_is_found_at_its_size(planted):
    rss, python = planted.rss_slope, planted.python_slope
    assert planted.verdict == "grows" and planted.python_verdict == "grows"
    # Python keeps 1 MiB (plus a bytes header); the process takes it in whole pages.
    assert python.low <= MIB + 64 and python.high >= MIB
    assert rss.low <= MIB + 8 * KIB and rss.high >= MIB
    assert abs(rss.estimate / MIB - 1) < 0.02
    assert planted.text.startswith("grows by ")
    assert len(planted.rss) == len(planted.python) == len(planted.seconds) == 17
    assert planted.total_growth >= 15 * MIB
    assert planted.to_dict()["verdict"] == "grows"


def test_a_step_that_frees_what_it_allocates_does_not_grow():
    result = leaks.leak_probe("allocate_free", cycles=15, warmup=2)
    tolerance = result.tolerance
    assert result.verdict == "does not grow" and result.python_verdict == "does not grow"
    assert -tolerance < result.rss_slope.low <= result.rss_slope.high < tolerance
    assert -tolerance < result.python_slope.low <= result.python_slope.high < tolerance
    assert result.text.startswith("does not grow at the stated level")


def test_release_free_is_reported_and_can_be_switched_off():
    import ctypes

    kept = leaks.leak_probe("allocate_free", cycles=10, warmup=1, release_free=False)
    assert kept.released is False and kept.to_dict()["released"] is False
    released = leaks.leak_probe("allocate_free", cycles=10, warmup=1)
    assert released.released is hasattr(ctypes.CDLL(None), "malloc_trim")


def test_user_callables_run_in_the_child():
    result = leaks.leak_probe(KeepHalfMiB(), cycles=10, warmup=1)
    assert result.step == "KeepHalfMiB"
    assert result.verdict == "grows"
    assert result.python_slope.low <= MIB // 2 + 64 and result.python_slope.high >= MIB // 2
    result = leaks.leak_probe(frees_everything, cycles=10, warmup=1)
    assert result.step == "frees_everything" and result.python_verdict == "does not grow"


def test_model_steps_run_and_the_child_names_the_kernels_as_litert_does(tiny_tflite):
    from ai_edge_litert.interpreter import OpResolverType

    from mobileopt_ref import litert

    assert {k: getattr(OpResolverType, v) for k, v in leaks._RESOLVERS.items()} == litert.KERNELS
    assert set(leaks.MODEL_STEPS) | set(leaks.CONTROL_STEPS) == set(leaks.STEPS)
    kept = leaks.leak_probe("create_keep", model=tiny_tflite, kernels="builtin", cycles=10, warmup=1,
                            num_threads=1)
    assert kept.kernels == "builtin" and len(kept.rss) == 11 and kept.rss_slope.estimate > 0
    # every input frame (float32, 32x32x3) and every output kept: Python keeps at least a
    # frame per cycle; keeping only the last keeps nothing more after the first cycle
    frame = 32 * 32 * 3 * 4
    outputs = leaks.leak_probe("keep_every_output", model=tiny_tflite, cycles=10, warmup=2, tolerance_kib=1)
    assert outputs.python_verdict == "grows" and outputs.python_slope.low >= frame
    last = leaks.leak_probe("keep_last_output", model=tiny_tflite, cycles=10, warmup=2, tolerance_kib=1)
    assert last.python_verdict == "does not grow"


def test_slope_interval_of_an_exact_line_is_the_slope():
    s = leaks.slope_interval(100 + 7.0 * np.arange(12))
    assert s.estimate == pytest.approx(7.0) and s.low == s.high == pytest.approx(7.0)
    assert s.verdict(1.0) == "grows" and s.verdict(10.0) == "does not grow"


def test_slope_interval_is_the_t_interval_when_residuals_are_independent():
    rng = np.random.default_rng(1)
    x = np.arange(40)
    y = 5 + 2.0 * x + rng.normal(0, 3, x.size)
    s = leaks.slope_interval(y)
    fit = scipy_stats.linregress(x, y)
    if s.lag1 <= 0:  # no widening: exactly linregress's standard error and Student's t
        half = scipy_stats.t.ppf(0.975, x.size - 2) * fit.stderr
        assert s.low == pytest.approx(fit.slope - half) and s.high == pytest.approx(fit.slope + half)
    assert s.estimate == pytest.approx(fit.slope)
    assert s.low < 2.0 < s.high


def test_slope_interval_widens_for_runs_and_stays_finite():
    # a level shift halfway: residuals in two runs, strongly autocorrelated
    y = np.r_[np.zeros(20), np.ones(20) * 100] + np.tile([0.0, 1.0], 20)
    s = leaks.slope_interval(y)
    fit = scipy_stats.linregress(np.arange(40), y)
    assert s.lag1 > 0.5 and s.n_eff < 40
    assert s.high - s.low > 2 * scipy_stats.t.ppf(0.975, 38) * fit.stderr
    # flat but for one small jump: r1 near 1, few effective readings (never fewer than 3); the
    # interval stays finite and scaled by the jump, so a few stray bytes are no "inconclusive"
    # against 16 KiB per cycle
    jump = np.r_[np.zeros(30), np.full(30, 59.0)]
    s = leaks.slope_interval(jump)
    assert 3.0 <= s.n_eff < 10 and math.isfinite(s.high) and s.high > 0
    assert s.verdict(16 * KIB) == "does not grow"
    assert s.high - s.low > 2 * scipy_stats.t.ppf(0.975, 58) * scipy_stats.linregress(np.arange(60), jump).stderr


def test_verdict_words_and_text():
    s = leaks.Slope(20 * KIB, 18 * KIB, 22 * KIB, 0.95, 1.0, 30, 0.0, 30.0)
    assert s.verdict(16 * KIB) == "grows" and "grows by 20.0 KiB/cycle" in s.text(16 * KIB)
    assert s.verdict(20 * KIB) == "inconclusive" and "may or may not grow" in s.text(20 * KIB)
    assert s.verdict(32 * KIB) == "does not grow" and "below 32.0 KiB/cycle" in s.text(32 * KIB)
    assert leaks.interval_text(s, "KiB") == "20.0 KiB (95 % CI 18.0 to 22.0)"
    tiny = leaks.Slope(-10.0, -20.0, -1.0, 0.95, 1.0, 30, 0.0, 30.0)  # bytes: rounds to -0.0 KiB
    assert tiny.text(16 * KIB).startswith("does not grow at the stated level: 0.0 KiB/cycle (95 % CI 0.0 to 0.0")
    with pytest.raises(ValueError, match="unit"):
        s.text(1.0, unit="GB")
    with pytest.raises(ValueError, match="tolerance"):
        s.verdict(0)


@pytest.mark.parametrize("kwargs, match", [
    ({"step": "planted_leak", "cycles": leaks.MIN_CYCLES - 1}, "cycles must be an integer from 10"),
    ({"step": "planted_leak", "cycles": 10.5}, "cycles must be an integer"),
    ({"step": "planted_leak", "warmup": -1}, "warmup must be an integer from 0"),
    ({"step": "planted_leak", "tolerance_kib": 0}, "tolerance_kib must be a positive"),
    ({"step": "planted_leak", "level": 1.5}, "level must be a number in"),
    ({"step": "planted_leak", "num_threads": 0}, "num_threads must be a positive integer"),
    ({"step": "planted_leak", "release_free": "yes"}, "release_free must be True or False"),
    ({"step": "no_such_step"}, "unknown step 'no_such_step'.*planted_leak"),
    ({"step": 42}, "step must be a name or a callable.*picklable callable"),
    ({"step": lambda: None}, "cannot be pickled.*fresh process"),
    ({"step": "invoke"}, "runs a model: give model="),
    ({"step": "planted_leak", "model": b"x"}, "runs no model"),
    ({"step": frees_everything, "model": b"x"}, "model= is for the named model steps"),
    ({"step": "invoke", "model": b"not a model at all"}, "not a .tflite model"),
])
def test_bad_input_is_refused_before_a_process_starts(kwargs, match):
    step = kwargs.pop("step")
    with pytest.raises(ValueError, match=match):
        leaks.leak_probe(step, **kwargs)


def test_bad_kernels_are_refused(tiny_tflite):
    with pytest.raises(ValueError, match="kernels must be one of"):
        leaks.leak_probe("invoke", model=tiny_tflite, kernels="gpu")


def test_slope_interval_refuses_short_or_broken_series():
    with pytest.raises(ValueError, match="at least 10 readings"):
        leaks.slope_interval([1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        leaks.slope_interval([1.0] * 11 + [math.nan])
    with pytest.raises(ValueError, match="level"):
        leaks.slope_interval(np.arange(12), level=0)
