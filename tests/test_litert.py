"""Tests of conversion, evaluation and reading .tflite files."""

import numpy as np
import pytest

from mobileopt_ref import data, litert, models


def test_float_tflite_agrees_with_keras(tiny_model, tiny_tflite, tiny_split):
    keras_logits = models.predict_logits(tiny_model, tiny_split.images)
    tflite_logits = litert.predict_tflite(tiny_tflite, tiny_split.images, batch_size=16)
    assert tflite_logits.shape == keras_logits.shape == (40, 10)
    np.testing.assert_allclose(tflite_logits, keras_logits, atol=1e-4, rtol=1e-4)
    acc_keras = models.evaluate_keras(tiny_model, tiny_split.images, tiny_split.labels)
    acc_tflite = litert.evaluate_tflite(tiny_tflite, tiny_split.images, tiny_split.labels)
    assert acc_keras == acc_tflite


def test_batches_and_the_padded_last_batch_give_the_same_outputs(tiny_tflite, tiny_split):
    one = litert.predict_tflite(tiny_tflite, tiny_split.images, batch_size=40)
    uneven = litert.predict_tflite(tiny_tflite, tiny_split.images, batch_size=15)
    np.testing.assert_allclose(one, uneven, atol=1e-5)


@pytest.mark.parametrize("kernels", sorted(litert.KERNELS))
def test_every_kernel_set_runs_the_float_model(tiny_tflite, tiny_split, kernels):
    ref = litert.predict_tflite(tiny_tflite, tiny_split.images[:4], kernels="reference")
    out = litert.predict_tflite(tiny_tflite, tiny_split.images[:4], kernels=kernels)
    np.testing.assert_allclose(out, ref, atol=1e-3)


def test_int8_io_is_quantized_and_dequantized():
    detail = {"name": "x", "dtype": np.int8, "quantization": (0.5, -3)}
    q = litert.quantize_input(np.array([-100.0, 0.0, 1.2, 100.0]), detail)
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q, [-128, -3, -1, 127])  # clipped at both ends
    np.testing.assert_allclose(litert.dequantize_output(q, detail), 0.5 * (q.astype(float) + 3))
    with pytest.raises(ValueError, match="no quantization scale"):
        litert.quantize_input(np.zeros(2), {"name": "y", "dtype": np.int8, "quantization": (0.0, 0)})


def test_full_int8_model_is_evaluated_through_its_quantization_parameters(small_cnn, small_cnn_int8, tiny_split):
    interp = litert.make_interpreter(small_cnn_int8)
    assert interp.get_input_details()[0]["dtype"] == np.int8
    out = litert.predict_tflite(small_cnn_int8, tiny_split.images[:8])
    ref = litert.predict_tflite(litert.to_tflite(small_cnn), tiny_split.images[:8])
    assert out.dtype == np.float32
    # Dequantized int8 logits track the float ones within a few quantization steps.
    scale = interp.get_output_details()[0]["quantization"][0]
    assert np.max(np.abs(out - ref)) < 20 * scale + 0.05 * np.max(np.abs(ref))


def test_sizes(tiny_tflite):
    assert litert.model_size(tiny_tflite) == len(tiny_tflite)
    assert 0 < litert.gzip_size(tiny_tflite) < len(tiny_tflite)


def test_paths_are_accepted(tiny_tflite, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(tiny_tflite)
    assert litert.model_size(path) == len(tiny_tflite)
    assert litert.model_size(str(path)) == len(tiny_tflite)


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .tflite file"):
        litert.evaluate_tflite(tmp_path / "absent.tflite", np.zeros((1, 32, 32, 3)), [0])


@pytest.mark.parametrize(
    "content", [b"", b"hello world, not a model", b"PK\x03\x04" + bytes(100)]
)
def test_non_tflite_content_is_refused(content, tmp_path):
    path = tmp_path / "bad.tflite"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a .tflite model.*TFL3"):
        litert.evaluate_tflite(path, np.zeros((1, 32, 32, 3)), [0])


def test_truncated_tflite_is_refused(tiny_tflite, tiny_split):
    with pytest.raises(ValueError, match="truncated or corrupt"):
        litert.evaluate_tflite(tiny_tflite[: len(tiny_tflite) // 2], tiny_split.images, tiny_split.labels)


def test_wrong_image_shape_and_label_count(tiny_tflite, tiny_split):
    with pytest.raises(ValueError, match=r"images must have shape \(n>0, 32, 32, 3\)"):
        litert.predict_tflite(tiny_tflite, np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="40 images but 3 labels"):
        litert.evaluate_tflite(tiny_tflite, tiny_split.images, [0, 1, 2])


def test_bad_interpreter_settings(tiny_tflite):
    with pytest.raises(ValueError, match="kernels must be one of"):
        litert.make_interpreter(tiny_tflite, kernels="gpu")
    with pytest.raises(ValueError, match="num_threads must be a positive integer"):
        litert.make_interpreter(tiny_tflite, num_threads=0)
    with pytest.raises(ValueError, match="must be .tflite bytes or a path"):
        litert.read_tflite(12345)


# --- converter modes, LiteRT Quantizer recipes, reading the file back ------------------


def _weight_dtypes(model) -> set:
    graph = litert.read_graph(model)
    return {
        np.dtype(graph.tensors[op.inputs[1]].dtype).name
        for op in graph.find("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    }


@pytest.mark.parametrize(
    "mode, weights, io",
    [
        ("float32", {"float32"}, "float32"),
        ("float16", {"float32"}, "float32"),  # float16 constants feed DEQUANTIZE ops
        # weights under 1,024 elements stay float32 (the converter's default threshold)
        ("dynamic_int8", {"int8", "float32"}, "float32"),
        ("full_int8", {"int8"}, "int8"),
        ("int16x8", {"int8"}, "float32"),
    ],
)
def test_every_conversion_mode_stores_what_it_says(small_cnn, tiny_split, mode, weights, io):
    content = litert.to_tflite(small_cnn, mode, representative_images=tiny_split.images[:16])
    graph = litert.read_graph(content)
    assert _weight_dtypes(content) == weights
    interp = litert.make_interpreter(content)
    assert np.dtype(interp.get_input_details()[0]["dtype"]).name == io
    dtypes = {np.dtype(t.dtype).name for t in graph.tensors if not isinstance(t.dtype, str)}
    if mode == "dynamic_int8":
        for op in graph.find("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            w = graph.tensors[op.inputs[1]]
            assert (w.dtype is np.int8) == (np.prod(w.shape) >= 1024), (w.name, w.shape)
    if mode == "float16":
        assert "float16" in dtypes and "DEQUANTIZE" in graph.op_counts()
    if mode == "int16x8":
        conv_out = graph.tensors[graph.find("CONV_2D")[0].outputs[0]]
        assert conv_out.dtype is np.int16
    float_out = litert.predict_tflite(litert.to_tflite(small_cnn), tiny_split.images[:8])
    out = litert.predict_tflite(content, tiny_split.images[:8])
    assert np.max(np.abs(out - float_out)) < 0.1 * np.max(np.abs(float_out)) + 1e-3


def test_conversion_modes_refuse_bad_input(small_cnn):
    with pytest.raises(ValueError, match="mode must be one of"):
        litert.to_tflite(small_cnn, "int2")
    with pytest.raises(ValueError, match="needs representative_images"):
        litert.to_tflite(small_cnn, "full_int8")
    with pytest.raises(ValueError, match=r"representative_images must be \(n>0"):
        litert.to_tflite(small_cnn, "full_int8", representative_images=np.zeros((0, 32, 32, 3), np.uint8))


@pytest.mark.parametrize("recipe", litert.RECIPES)
def test_litert_quantizer_recipes(small_cnn, tiny_split, recipe):
    float_model = litert.to_tflite(small_cnn)
    content = litert.quantize_with_recipe(float_model, recipe, calibration_images=tiny_split.images[:16])
    assert len(content) < len(float_model)
    graph = litert.read_graph(content)
    kinds = {t.dtype if isinstance(t.dtype, str) else np.dtype(t.dtype).name for t in graph.tensors}
    expected = {"weight_only_wi4_afp32": "INT4"}.get(recipe, "int8")
    assert expected in kinds
    if recipe == "static_wi8_ai8":
        out = graph.tensors[graph.find("CONV_2D")[0].outputs[0]]
        assert out.dtype is np.int8 and out.quantized
    # The untrained net's logits are small and close together; compare their pattern.
    float_out = litert.predict_tflite(float_model, tiny_split.images[:8])
    out = litert.predict_tflite(content, tiny_split.images[:8])
    assert np.corrcoef(out.ravel(), float_out.ravel())[0, 1] > 0.9


def test_recipes_refuse_bad_input(tiny_tflite):
    with pytest.raises(ValueError, match="recipe must be one of"):
        litert.quantize_with_recipe(tiny_tflite, "static_wi2_ai2")
    with pytest.raises(ValueError, match="needs representative_images"):
        litert.quantize_with_recipe(tiny_tflite, "static_wi8_ai8")


def test_read_graph_returns_the_files_weights_and_options(small_cnn, small_cnn_int8):
    graph = litert.read_graph(small_cnn_int8)
    assert graph.op_counts() == {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 1, "MEAN": 1, "FULLY_CONNECTED": 1}
    first = graph.find("CONV_2D")[0]
    assert first.options["padding"] == "SAME"
    assert (first.options["strideH"], first.options["strideW"]) == (2, 2)
    assert first.options["fusedActivationFunction"] == "RELU6"
    w = graph.tensors[first.inputs[1]]
    assert w.dtype is np.int8 and w.shape == (16, 3, 3, 3) and w.data.shape == w.shape
    # Per-channel symmetric weights: one scale per output channel, zero points 0, and the
    # stored integers dequantize to the Keras kernel within half a step.
    assert len(w.scales) == 16 and not w.zero_points.any() and w.quantized_dimension == 0
    kernel = small_cnn.layers[0].get_weights()[0]  # (kh, kw, cin, cout)
    restored = w.data.astype(np.float64) * w.scales[:, None, None, None]
    np.testing.assert_allclose(restored.transpose(1, 2, 3, 0), kernel, atol=float(w.scales.max()) / 2 + 1e-7)
    assert np.abs(w.data).max() == 127 and w.data.min() >= -127
    bias = graph.tensors[first.inputs[2]]
    assert bias.dtype is np.int32


def test_with_outputs_exposes_intermediate_tensors(small_cnn_int8, tiny_split):
    graph = litert.read_graph(small_cnn_int8)
    inner = graph.find("DEPTHWISE_CONV_2D")[0].outputs[0]
    x = np.zeros((2, 32, 32, 3), np.int8)
    for kernels in litert.KERNELS:
        values = litert.run_tensors(small_cnn_int8, x, [inner, graph.outputs[0]], kernels=kernels)
        assert values[inner].shape == (2, 16, 16, 16) and values[inner].dtype == np.int8
        assert values[graph.outputs[0]].shape == (2, 10)
    with pytest.raises(ValueError, match="tensor indices must be"):
        litert.with_outputs(small_cnn_int8, [10_000])
    with pytest.raises(ValueError, match="the input must be int8"):
        litert.run_tensors(small_cnn_int8, np.zeros((1, 32, 32, 3), np.float32), [inner])


def test_replace_constants_changes_only_the_given_weights(small_cnn, tiny_split):
    float_model = litert.to_tflite(small_cnn)
    graph = litert.read_graph(float_model)
    conv = graph.find("CONV_2D")[0]
    w = graph.tensors[conv.inputs[1]]
    same = litert.replace_constants(float_model, {w.index: w.data})
    np.testing.assert_array_equal(
        litert.predict_tflite(same, tiny_split.images[:4]), litert.predict_tflite(float_model, tiny_split.images[:4])
    )
    zeroed = litert.replace_constants(float_model, {w.index: np.zeros_like(w.data)})
    assert not litert.read_graph(zeroed).tensors[w.index].data.any()
    assert litert.read_graph(zeroed).tensors[conv.inputs[2]].data.tobytes() == graph.tensors[conv.inputs[2]].data.tobytes()
    with pytest.raises(ValueError, match="has shape"):
        litert.replace_constants(float_model, {w.index: np.zeros(3)})
    with pytest.raises(ValueError, match="is not a constant"):
        litert.replace_constants(float_model, {conv.outputs[0]: np.zeros(3)})
    with pytest.raises(ValueError, match="need finite values"):
        litert.replace_constants(float_model, {w.index: np.full(w.shape, np.nan)})


def test_frozen_conversion_matches_the_keras_converter_path(small_cnn, tiny_split):
    from mobileopt_ref._keras import tf

    keras_path = tf.lite.TFLiteConverter.from_keras_model(small_cnn).convert()
    ours = litert.to_tflite(small_cnn)
    assert litert.read_graph(ours).op_counts() == litert.read_graph(keras_path).op_counts()
    np.testing.assert_allclose(
        litert.predict_tflite(ours, tiny_split.images), litert.predict_tflite(keras_path, tiny_split.images), atol=1e-6
    )
    runner = litert.make_interpreter(ours).get_signature_runner("serving_default")
    assert list(runner.get_input_details()) == ["input"] and list(runner.get_output_details()) == ["output"]


def test_execution_plan_shows_what_xnnpack_takes(small_cnn, small_cnn_int8, tiny_split):
    float_plan = litert.execution_plan(litert.to_tflite(small_cnn))
    assert float_plan["DELEGATE"] == 1 and float_plan["CONV_2D"] == 2  # one partition: the whole graph
    assert litert.execution_plan(small_cnn_int8)["DELEGATE"] == 1
    builtin = litert.execution_plan(small_cnn_int8, kernels="builtin")
    assert "DELEGATE" not in builtin and builtin["CONV_2D"] == 2


def test_recipe_calibration_in_one_batch_matches_the_converters_ranges(small_cnn, small_cnn_int8, tiny_split):
    float_model = litert.to_tflite(small_cnn)
    images = tiny_split.images[:16]
    whole = litert.read_graph(litert.quantize_with_recipe(float_model, "static_wi8_ai8", calibration_images=images))
    single = litert.read_graph(
        litert.quantize_with_recipe(float_model, "static_wi8_ai8", calibration_images=images, calibration_batch_size=1)
    )
    conv = litert.read_graph(small_cnn_int8)  # the converter, calibrated on the same 16 images
    for a, b, c in zip(whole.find("CONV_2D"), single.find("CONV_2D"), conv.find("CONV_2D")):
        s_whole, s_single, s_conv = (g.tensors[op.outputs[0]].scales[0] for g, op in ((whole, a), (single, b), (conv, c)))
        np.testing.assert_allclose(s_whole, s_conv, rtol=1e-5)
        assert s_single <= s_whole  # a moving average of per-image ranges is narrower
    with pytest.raises(ValueError, match="calibration_batch_size must be a positive integer"):
        litert.quantize_with_recipe(float_model, "static_wi8_ai8", calibration_images=images, calibration_batch_size=0)


def test_accelerator_status_reports_without_paths_or_fallback():
    from mobileopt_ref._keras import tf

    model = litert.function_to_tflite(lambda x: tf.matmul(x, tf.ones((8, 8))), [(1, 8)])
    assert litert.accelerator_status(model, "cpu") == "available"
    for accelerator in ("gpu", "npu"):
        status = litert.accelerator_status(model, accelerator)
        assert status == "available" or status.startswith("not available: ")
        assert "/" not in status and len(status) > len("not available: ")
    with pytest.raises(ValueError, match=r"accelerator must be one of \('cpu', 'gpu', 'npu'\)"):
        litert.accelerator_status(model, "tpu")
    with pytest.raises(ValueError, match="not a .tflite model"):
        litert.accelerator_status(b"nothing", "cpu")


def test_conversions_are_cached_verified_and_rebuilt_when_corrupt(small_cnn, tiny_split, tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILEOPT_CACHE_DIR", str(tmp_path))
    images = tiny_split.images[:8]
    first = litert.to_tflite(small_cnn, "full_int8", representative_images=images)
    key = litert.conversion_key(small_cnn, "full_int8", representative_images=images)
    folder = tmp_path / "tflite" / key[:32]
    assert (folder / "model.tflite").read_bytes() == first
    assert litert.to_tflite(small_cnn, "full_int8", representative_images=images) == first
    # Another mode, other calibration images, other weights: other keys.
    assert litert.conversion_key(small_cnn, "float32") != key
    assert litert.conversion_key(small_cnn, "full_int8", representative_images=images[:4]) != key
    # A corrupt entry is never used: rebuilt, equal to a fresh conversion, and replaced.
    (folder / "model.tflite").write_bytes(first[:-10] + b"0123456789")
    again = litert.to_tflite(small_cnn, "full_int8", representative_images=images)
    assert again == first and (folder / "model.tflite").read_bytes() == first
    monkeypatch.setenv("MOBILEOPT_TFLITE_CACHE", "0")
    assert litert.to_tflite(small_cnn, "full_int8", representative_images=images) == first  # deterministic
    assert sorted(p.name for p in (tmp_path / "tflite").iterdir()) == [key[:32]]  # no stray temporary folders


def test_conversion_key_follows_the_weights(small_cnn):
    key = litert.conversion_key(small_cnn, "float32")
    weights = small_cnn.get_weights()
    small_cnn.set_weights([w + 1 for w in weights])
    try:
        assert litert.conversion_key(small_cnn, "float32") != key
    finally:
        small_cnn.set_weights(weights)
    assert litert.conversion_key(small_cnn, "float32") == key


def test_select_signature_keeps_weights_stored_after_the_flatbuffer():
    """LiteRT Quantizer writes weights after the flatbuffer (buffer offset and size); the
    selected signature's file must carry them, not point past its own end."""
    from mobileopt_ref import llm

    # The small GPT's shape (untrained): a model this size gets offset buffers, a tiny one not.
    quantized = llm.quantize(llm.export_tflite(llm.GPT(llm.GPT_SMALL.model)), "int4_block32")
    flat = litert._parse(quantized)
    assert any(b is not None and getattr(b, "offset", 0) > 1 for b in flat.buffers), \
        "the quantizer no longer stores data after the flatbuffer: this test checks nothing"
    for key in litert.signatures(quantized):
        one = litert.select_signature(quantized, key)
        graph = litert.read_graph(one)
        assert any(t.dtype_name.lower() == "int4" for t in graph.tensors)
        interpreter = litert.make_interpreter(one, num_threads=1)
        for detail in interpreter.get_input_details():  # token 0 at position 0, empty caches
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()


def test_conversion_keys_hold_the_names_the_converter_writes_into_the_file():
    from mobileopt_ref._keras import keras

    def build(activation="relu"):
        keras.utils.set_random_seed(0)
        x = keras.Input((8, 8, 3))  # auto-named: input_N, numbered per session
        y = keras.layers.Conv2D(4, 3, activation=activation)(x)
        y = keras.layers.GlobalAveragePooling2D()(y)
        return keras.Model(x, keras.layers.Dense(2)(y))

    a, b, c = build(), build(), build("relu6")
    b.set_weights(a.get_weights())
    c.set_weights(a.get_weights())
    assert a.layers[0].name != b.layers[0].name  # Keras numbered them apart
    # The same network and weights under other names: other bytes, so another key.
    assert litert.to_tflite(a) != litert.to_tflite(b)
    assert litert.conversion_key(a, "float32") != litert.conversion_key(b, "float32")
    assert litert.conversion_key(a, "float32") == litert.conversion_key(a, "float32")
    # Any other difference changes the key too: a setting, the weights, the mode.
    assert litert.conversion_key(c, "float32") != litert.conversion_key(a, "float32")
    assert litert.conversion_key(a, "float16") != litert.conversion_key(a, "float32")
    b.set_weights([w + 1 for w in a.get_weights()])
    assert litert.conversion_key(a, "float32") != litert.conversion_key(b, "float32")
