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


def test_full_int8_model_is_evaluated_through_its_quantization_parameters(tiny_split):
    from mobileopt_ref._keras import keras, tf

    # A small conv net: full-integer conversion of MobileNetV2 takes a minute, and the
    # quantized input/output handling under test does not depend on the network's size.
    keras.utils.set_random_seed(0)
    tiny_model = keras.Sequential(
        [
            keras.layers.Input((32, 32, 3)),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )

    def representative():
        for img in tiny_split.images[:8]:
            yield [data.preprocess(img[None])]

    converter = tf.lite.TFLiteConverter.from_keras_model(tiny_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    int8 = converter.convert()
    interp = litert.make_interpreter(int8)
    assert interp.get_input_details()[0]["dtype"] == np.int8
    out = litert.predict_tflite(int8, tiny_split.images[:8])
    ref = litert.predict_tflite(litert.to_tflite(tiny_model), tiny_split.images[:8])
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
