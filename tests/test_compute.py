"""Tests of the latency harness."""

import numpy as np
import pytest

from mobileopt_ref import compute


def test_latency_stats_percentiles_and_interval():
    samples = np.arange(1, 101, dtype=float)  # 1..100 ms
    stats = compute.latency_stats(samples)
    assert stats.runs == 100
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01)
    lo, hi = stats.ci95_ms
    assert lo < stats.p50_ms < hi
    # Order-statistic ranks for n = 100: j = floor(50 - 9.8) = 40, k = ceil(50 + 9.8 + 1) = 61.
    assert (lo, hi) == (40.0, 61.0)


def test_median_interval_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true_median = np.log(2.0)  # median of Exponential(1), a skewed law like latencies
    covered = 0
    trials = 2000
    for _ in range(trials):
        lo, hi = compute.median_confidence_interval(rng.exponential(1.0, 60))
        covered += lo <= true_median <= hi
    assert 0.93 <= covered / trials <= 0.99


def test_measure_latency_runs_the_model(tiny_tflite):
    stats = compute.measure_latency(tiny_tflite, num_runs=15, warmup=2)
    assert stats.runs == 15
    assert 0 < stats.p50_ms <= stats.p90_ms <= stats.p99_ms


def test_compare_latency_interleaves_and_returns_every_model(tiny_tflite):
    result = compute.compare_latency(
        {"a": tiny_tflite, "b": tiny_tflite}, num_runs=12, warmup=1, rounds=4
    )
    assert list(result) == ["a", "b"]
    assert all(stats.runs == 12 for stats in result.values())
    ratio = compute.speedup(result["a"], result["b"])
    assert 0.2 < ratio < 5.0  # the same model twice: no order-of-magnitude difference


def test_reference_kernels_are_slower_than_xnnpack(tiny_tflite):
    result = compute.compare_latency(
        {"ref": tiny_tflite, "xnn": tiny_tflite},
        kernels={"ref": "reference", "xnn": "xnnpack"},
        num_runs=20,
        warmup=2,
        rounds=5,
    )
    assert compute.speedup(result["ref"], result["xnn"]) > 1.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_runs": 0}, "num_runs must be a positive integer"),
        ({"warmup": -1}, "warmup must be a non-negative integer"),
        ({"num_runs": 3, "rounds": 5}, r"rounds must be an integer in \[1, num_runs=3\]"),
    ],
)
def test_bad_run_counts(tiny_tflite, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compute.compare_latency({"m": tiny_tflite}, **kwargs)


def test_empty_or_invalid_samples():
    with pytest.raises(ValueError, match="empty"):
        compute.latency_stats([])
    with pytest.raises(ValueError, match="finite, non-negative"):
        compute.latency_stats([1.0, float("nan")])
    with pytest.raises(ValueError, match="at least one model"):
        compute.compare_latency({})
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
        compute.median_confidence_interval([1.0], confidence=1.0)


@pytest.mark.parametrize(("alpha", "published"), [(1.0, 300_774_272), (0.35, 59_285_808)])
def test_mobilenet_v2_macs_match_the_published_figures(alpha, published):
    from mobileopt_ref._keras import keras

    model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=alpha, weights=None, classes=1000)
    counted = compute.keras_macs(model)
    assert counted["total"] == published
    assert round(counted["total"] / 1e6, 1) == (300.8 if alpha == 1.0 else 59.3)  # the papers' rounding
    assert counted["pooling_adds"] == 7 * 7 * 1280
    if alpha == 1.0:
        assert model.count_params() == 3_538_984


def test_macs_of_a_small_net_by_hand():
    from mobileopt_ref._keras import keras

    layers = keras.layers
    inner = keras.Sequential([layers.Input((4, 4, 8)), layers.DepthwiseConv2D(3, padding="same")], name="inner")
    model = keras.Sequential([
        layers.Input((8, 8, 3)),
        layers.Conv2D(8, 3, strides=2, padding="same"),  # 4*4*3*3*3*8 = 3456
        layers.BatchNormalization(),
        inner,  # 4*4*3*3*8 = 1152
        layers.GlobalAveragePooling2D(),  # 4*4*8 = 128 additions
        layers.Dense(5),  # 8*5 = 40
    ])
    counted = compute.keras_macs(model)
    assert counted["total"] == 3456 + 1152 + 40
    assert counted["layers"]["inner/" + inner.layers[0].name] == 1152
    assert counted["pooling_adds"] == 128


def test_an_unknown_layer_is_an_error_naming_it():
    from mobileopt_ref._keras import keras

    model = keras.Sequential([keras.layers.Input((8, 8, 3)), keras.layers.Conv2DTranspose(4, 3, name="up")])
    with pytest.raises(ValueError, match="'up' is a Conv2DTranspose"):
        compute.keras_macs(model)
