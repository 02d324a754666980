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
    assert all(stats.runs == 12 and stats.round_sizes == (3, 3, 3, 3) for stats in result.values())


def test_compare_latency_rotates_the_order_and_routes_kernels(tiny_tflite, monkeypatch):
    # Which model runs first in a round changes from round to round, and each model runs
    # on the kernels asked for it (timings themselves are never asserted).
    calls, kernels_used = [], {}
    real = compute.prepared_interpreter

    def recording(model, num_threads=2, kernels="xnnpack", seed=0):
        interpreter = real(model, num_threads, kernels, seed)
        kernels_used[id(interpreter)] = kernels
        return interpreter

    def timing(interpreter, n):
        calls.append(kernels_used[id(interpreter)])
        return [1.0] * n

    monkeypatch.setattr(compute, "prepared_interpreter", recording)
    monkeypatch.setattr(compute, "_time_invokes", timing)
    compute.compare_latency({"ref": tiny_tflite, "xnn": tiny_tflite, "builtin": tiny_tflite},
                            kernels={"ref": "reference", "xnn": "xnnpack", "builtin": "builtin"},
                            num_runs=3, warmup=1, rounds=3)
    warmups, timed = calls[:3], calls[3:]
    assert warmups == ["reference", "xnnpack", "builtin"]
    assert timed == ["reference", "xnnpack", "builtin", "xnnpack", "builtin", "reference",
                     "builtin", "reference", "xnnpack"]


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


# ---------------------------------------------------------------------------------------
# Counting a .tflite graph, per-operator profiling, speed-up factors, the roofline
# ---------------------------------------------------------------------------------------


def _with_nonzero_classifier_bias(model):
    """A trained classifier has a non-zero bias; the converter drops an all-zero one."""
    dense = model.layers[-1]
    dense.bias.assign(np.linspace(-1.0, 1.0, dense.bias.shape[0]).astype(np.float32))
    return model


def test_tflite_counts_equal_the_keras_counts_and_the_published_figures():
    from mobileopt_ref import litert
    from mobileopt_ref._keras import keras

    model = _with_nonzero_classifier_bias(
        keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, weights=None, classes=1000)
    )
    counts = compute.tflite_macs(litert.to_tflite(model))
    assert counts["total"] == compute.keras_macs(model)["total"] == 300_774_272
    bn_channels = sum(l.gamma.shape[0] for l in model.layers if isinstance(l, keras.layers.BatchNormalization))
    # Folding: gamma, beta, mean, var (4 per channel) become one bias entry per channel.
    assert counts["params"] == model.count_params() - 3 * bn_channels == 3_538_984 - 3 * 17_056
    assert counts["pooling_adds"] == 7 * 7 * 1280
    assert counts["by_kind"]["CONV_2D 1x1"]["count"] == 35 - 1
    assert counts["by_kind"]["DEPTHWISE_CONV_2D 3x3"] == {"count": 17, "macs": 20_716_416}
    assert sum(k["macs"] for k in counts["by_kind"].values()) == counts["total"]


def test_tflite_counts_of_a_small_net_by_hand_in_every_precision(small_cnn, tiny_split):
    from mobileopt_ref import litert
    from mobileopt_ref._keras import keras

    trained_like = keras.models.clone_model(small_cnn)
    trained_like.set_weights(small_cnn.get_weights())
    small_cnn = _with_nonzero_classifier_bias(trained_like)
    # small_cnn: 32x32x3 -> conv 3x3/2 16 -> dw 3x3 -> conv 1x1 72 -> GAP -> dense 10.
    by_hand = 16 * 16 * 16 * 3 * 3 * 3 + 16 * 16 * 16 * 3 * 3 + 16 * 16 * 72 * 16 + 72 * 10
    params = (16 * 27 + 16) + (9 * 16 + 16) + (72 * 16 + 72) + (72 * 10 + 10)
    assert compute.keras_macs(small_cnn)["total"] == by_hand
    for name, model in {
        "float32": litert.to_tflite(small_cnn),
        "float16": litert.to_tflite(small_cnn, "float16"),
        "int8": litert.to_tflite(small_cnn, "full_int8", representative_images=tiny_split.images[:8]),
    }.items():
        counts = compute.tflite_macs(model)
        assert counts["total"] == by_hand, name
        assert counts["params"] == params, name
        assert counts["pooling_adds"] == 16 * 16 * 72, name
        itemsize = 1 if name == "int8" else 4  # float16 weights are expanded to float32 at load
        conv = next(r for r in counts["ops"] if r["kind"] == "CONV_2D 1x1")
        assert conv["weight_bytes"] == 72 * 16 * itemsize + 72 * 4  # the int8 bias is int32
        assert conv["activation_bytes"] == (16 * 16 * 16 + 16 * 16 * 72) * itemsize
        if name == "float16":
            assert {r["kind"] for r in counts["ops"] if r["macs"] == 0} >= {"DEQUANTIZE (once, at load)"}
    assert compute.arithmetic_intensity(counts) > 0


def test_an_unknown_operator_or_an_unreadable_file_is_an_error():
    from mobileopt_ref import litert
    from mobileopt_ref._keras import tf

    tanh = litert.function_to_tflite(lambda x: tf.tanh(x), [(4,)])
    with pytest.raises(ValueError, match="operator 0 is TANH, which tflite_macs does not know"):
        compute.tflite_macs(tanh)
    with pytest.raises(ValueError, match="not a .tflite model"):
        compute.tflite_macs(b"this is not a model")
    with pytest.raises(ValueError, match="not a .tflite model"):
        compute.profile_ops(b"this is not a model")
    with pytest.raises(ValueError, match="fully known positive shapes"):
        litert.function_to_tflite(lambda x: x, [(0, 3)])


def test_single_op_models_reproduce_every_operator_exactly(small_cnn):
    from mobileopt_ref import litert

    model = litert.to_tflite(small_cnn)
    graph = litert.read_graph(model)
    pieces = litert.single_op_models(model)
    assert len(pieces) == len(graph.ops)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    wanted = [op.outputs[0] for op in graph.ops]
    values = litert.run_tensors(model, x, wanted)
    values[graph.inputs[0]] = x
    for op, piece in zip(graph.ops, pieces):
        interpreter = litert.make_interpreter(piece, kernels="reference")
        dynamic = [i for i in op.inputs if i >= 0 and graph.tensors[i].data is None]
        details = interpreter.get_input_details()
        assert len(details) == len(dynamic)
        for detail, index in zip(details, dynamic):
            interpreter.set_tensor(detail["index"], values[index])
        interpreter.invoke()
        out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        np.testing.assert_array_equal(out, values[op.outputs[0]], err_msg=op.op)


def test_profile_ops_times_every_operator_beside_the_whole_model(small_cnn):
    from mobileopt_ref import litert

    model = litert.to_tflite(small_cnn)
    profile = compute.profile_ops(model, num_runs=10, warmup=1, rounds=2)
    counts = compute.tflite_macs(model)
    assert [op["index"] for op in profile.ops] == [r["index"] for r in counts["ops"]]
    assert all(op["p50_ms"] > 0 for op in profile.ops)
    assert profile.whole.runs == 10
    kinds = profile.by_kind()
    assert sum(k["share"] for k in kinds.values()) == pytest.approx(1.0)
    assert sum(k["macs"] for k in kinds.values()) == counts["total"]
    assert list(kinds.values())[0]["ms"] == max(k["ms"] for k in kinds.values())
    assert set(profile.runs) == {op["index"] for op in profile.ops}
    assert all(profile.runs[op["index"]].p50_ms == op["p50_ms"] for op in profile.ops)
    with pytest.raises(ValueError, match="num_runs must be a positive integer"):
        compute.profile_ops(model, num_runs=0)
    with pytest.raises(ValueError, match="at least one model"):
        compute.profile_ops({})


def test_profile_ops_of_several_models_share_their_rounds(small_cnn, small_cnn_int8):
    from mobileopt_ref import litert, stats

    models = {"float32": litert.to_tflite(small_cnn), "int8": small_cnn_int8}
    profiles = compute.profile_ops(models, num_runs=12, warmup=1, rounds=6)
    assert set(profiles) == {"float32", "int8"}
    runs = {**profiles["float32"].all_runs("float32"), **profiles["int8"].all_runs("int8")}
    assert {s.round_sizes for s in runs.values()} == {(2,) * 6}
    share = stats.rounds_ratio(lambda m: m[("int8", "whole")] / m[("float32", "whole")], runs, n_resamples=200)
    assert share.method == "rounds" and share.low <= share.estimate <= share.high


def test_speedup_factors_multiply_to_the_total():
    factors = compute.speedup_factors(120.0, 30.0, 10.0)
    assert factors["e"] == pytest.approx(4.0)
    assert factors["h"] == pytest.approx(3.0)
    assert factors["total"] == pytest.approx(12.0)
    stats = compute.latency_stats([2.0, 2.0, 2.0])
    assert compute.speedup_factors(stats, 1.0, 0.5)["total"] == pytest.approx(4.0)
    for bad in (0.0, -1.0, float("nan"), "fast"):
        with pytest.raises(ValueError, match="algorithm must be a LatencyStats or a positive time"):
            compute.speedup_factors(1.0, bad, 1.0)


def test_compare_latency_takes_threads_per_model(tiny_tflite):
    result = compute.compare_latency(
        {"one": tiny_tflite, "two": tiny_tflite}, num_threads={"one": 1, "two": 2}, num_runs=6, warmup=1, rounds=2
    )
    assert list(result) == ["one", "two"]
    runs = compute.compare_latency(
        {"slow": tiny_tflite, "fast": tiny_tflite}, num_runs={"slow": 4, "fast": 9}, warmup=0, rounds=4
    )
    assert (runs["slow"].runs, runs["fast"].runs) == (4, 9)
    with pytest.raises(ValueError, match=r"rounds must be an integer in \[1, num_runs=2\]"):
        compute.compare_latency({"a": tiny_tflite, "b": tiny_tflite}, num_runs={"a": 2, "b": 9}, rounds=3)
    with pytest.raises(ValueError, match="num_threads given per model must name exactly the models"):
        compute.compare_latency({"one": tiny_tflite}, num_threads={"two": 2}, num_runs=2, warmup=0, rounds=1)
    with pytest.raises(ValueError, match="kernels given per model must name exactly the models"):
        compute.compare_latency({"one": tiny_tflite}, kernels={}, num_runs=2, warmup=0, rounds=1)


def test_roofline_measures_both_roofs_and_its_ridge():
    roof = compute.measure_roofline(num_runs=6, warmup=1, shapes=[(64, 512, 512), (128, 256, 128)], elements=4 * 2**20)
    assert roof["peak_gflops"] > 0 and roof["bandwidth_gbs"] > 0  # how far apart: measured, not asserted
    assert roof["peak_gflops"] == max(roof["matmul"].values())
    assert set(roof["matmul"]) == {(64, 512, 512), (128, 256, 128)}
    with pytest.raises(ValueError, match="at least one matrix-product shape"):
        compute.measure_roofline(shapes=[])
    assert roof["ridge_flops_per_byte"] == pytest.approx(roof["peak_gflops"] / roof["bandwidth_gbs"])
    line = compute.attainable_gflops([0.0, 1.0, 1e6], peak_gflops=100.0, bandwidth_gbs=10.0)
    np.testing.assert_allclose(line, [0.0, 10.0, 100.0])
    with pytest.raises(ValueError, match="must be positive"):
        compute.attainable_gflops(1.0, peak_gflops=0.0, bandwidth_gbs=1.0)
    with pytest.raises(ValueError, match="cannot be negative"):
        compute.attainable_gflops(-1.0, peak_gflops=1.0, bandwidth_gbs=1.0)


def test_separable_convolution_does_the_published_fraction_of_the_work():
    pair = compute.convolution_models(size=14, channels=32, kernel=3)
    standard = compute.keras_macs(pair["standard"])["total"]
    separable = compute.keras_macs(pair["separable"])["total"]
    assert standard == 14 * 14 * 9 * 32 * 32
    assert separable == 14 * 14 * 32 * (9 + 32)
    assert separable / standard == pytest.approx(compute.separable_mac_ratio(32, 3))
    assert pair["standard"].output_shape == pair["separable"].output_shape == (None, 14, 14, 32)
    with pytest.raises(ValueError, match="channels must be a positive integer"):
        compute.convolution_models(channels=0)


def test_round_plan_splits_runs_evenly_over_rounds():
    plan = compute.round_plan({"a": None, "b": None}, {"a": 10, "b": 3}, 0, 3)
    assert plan == {"a": [4, 3, 3], "b": [1, 1, 1]}
    assert compute.round_plan({"a": None}, 5, 0, 1) == {"a": [5]}
    with pytest.raises(ValueError, match="num_runs given per model must name exactly the models"):
        compute.round_plan({"a": None}, {"b": 3}, 0, 1)
    with pytest.raises(ValueError, match="rounds must be an integer"):
        compute.round_plan({"a": None}, 2, 0, 3)


# ---------------------------------------------------------------------------------------
# LiteRT's CompiledModel API beside the Interpreter
# ---------------------------------------------------------------------------------------


def _interpreter_output(model, threads=2, kernels="xnnpack"):
    interpreter = compute.prepared_interpreter(model, threads, kernels)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.parametrize("kernels", ["xnnpack", "builtin", "reference"])
def test_the_compiled_model_computes_what_the_interpreter_computes(tiny_tflite, kernels):
    runner = compute.CompiledModelRunner(tiny_tflite, num_threads=2, kernels=kernels)
    runner.invoke()
    out = runner.output()
    expected = _interpreter_output(tiny_tflite, kernels=kernels)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert runner.fully_accelerated == (kernels == "xnnpack")


def test_the_compiled_model_gets_each_input_by_name():
    from mobileopt_ref import litert  # noqa: PLC0415

    # a - b: swapping the two inputs would flip the sign of every output.
    model = litert.function_to_tflite(lambda a, b: a - 2.0 * b, [(6,), (6,)])
    runner = compute.CompiledModelRunner(model, num_threads=1)
    runner.invoke()
    np.testing.assert_allclose(runner.output(), _interpreter_output(model, threads=1), rtol=1e-6)
    with pytest.raises(ValueError, match="no output 'logits'; the outputs are"):
        runner.output("logits")


def test_compare_latency_times_both_apis_side_by_side(tiny_tflite, monkeypatch):
    made = []
    real = compute.CompiledModelRunner
    monkeypatch.setattr(compute, "CompiledModelRunner", lambda *a: made.append(a) or real(*a))
    runs = compute.compare_latency({"Interpreter": tiny_tflite, "CompiledModel": tiny_tflite}, num_runs=12, warmup=1,
                                   rounds=3, api={"Interpreter": "interpreter", "CompiledModel": "compiled_model"},
                                   num_threads={"Interpreter": 1, "CompiledModel": 2})
    assert [s.runs for s in runs.values()] == [12, 12] and all(s.round_sizes == (4, 4, 4) for s in runs.values())
    assert len(made) == 1 and made[0][1:3] == (2, "xnnpack")   # threads and kernels reach the runner


def test_a_bad_api_or_runner_setting_is_refused_before_anything_runs(tiny_tflite):
    with pytest.raises(ValueError, match="api must be one of interpreter, compiled_model, got 'npu'"):
        compute.compare_latency({"a": tiny_tflite}, api="npu", num_runs=2, rounds=1)
    with pytest.raises(ValueError, match="api given per model must name exactly the models"):
        compute.compare_latency({"a": tiny_tflite}, api={"b": "interpreter"}, num_runs=2, rounds=1)
    with pytest.raises(ValueError, match="num_threads must be a positive integer"):
        compute.CompiledModelRunner(tiny_tflite, num_threads=0)
    with pytest.raises(ValueError, match="kernels must be one of"):
        compute.CompiledModelRunner(tiny_tflite, kernels="gpu")
    with pytest.raises(ValueError, match=r"not a (complete )?\.tflite model"):
        compute.CompiledModelRunner(b"not a model at all, just some bytes")
