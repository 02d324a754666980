"""A corpus of ``.tflite`` files the library did not make, and every function that reads one.

Readers point the library at their own files, and those come from other converters and
settings than :func:`mobileopt_ref.litert.to_tflite`'s defaults: Keras's own converter
path, a SavedModel, int8 or uint8 inputs and outputs, dynamic-range int8, float16 weights,
a quantization-aware-trained model, a one-channel image with a fixed batch and a static
reshape (as exporters of other frameworks write them), int16 activations on a vector
input, two inputs, two signatures (a language model's prefill and decode), no signature at
all, and LiteRT Quantizer's int4 weights (dequantized before use, or read by the kernels).
Each is built here, in seconds, from a tiny model.

Every public function that takes a ``.tflite`` either gives the right answer on each file
or raises a ``ValueError`` that names what it does not support (:data:`REFUSALS` is the
whole list); no other exception may escape. A truncated file and a file that is not a
model give a ``ValueError`` from every function.

The functions that measure (latency, per-operator times, CPU time, frame timelines, RSS and
cold start in fresh processes) run on four kinds (:data:`MEASURED_KINDS`) with the fewest
runs they accept; only the structure of their results is checked, never a time's size. What
they refuse, and broken files, they refuse before any process starts or any model is invoked.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import subprocess
import warnings

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from mobileopt_ref import compute, data, energy, leaks, litert, memory, pruning, report, ux
from mobileopt_ref._keras import keras, tf
from mobileopt_ref._quiet import native_stderr_captured

layers = keras.layers

KINDS = (
    "float32_keras_24x16",     # TFLiteConverter.from_keras_model, a non-square input
    "int8_io_int8",            # from a SavedModel: full integer, int8 input and output
    "int8_io_uint8",           # the same with uint8 input and output
    "dynamic_range_int8",      # int8 weights, activations quantized at run time
    "float16_weights",         # float16 weights, DEQUANTIZE'd when the model is loaded
    "qat_int8",                # tfmot quantize_model, converted: int8 inside, float input
    "grayscale_fixed_batch",   # one channel, batch fixed at 1, RESHAPE to a fixed shape
    "vector_int16x8",          # Dense only, a 1-D input, int16 activations
    "two_inputs",              # an image and a vector
    "prefill_decode",          # two signatures: token ids in, a KV cache out
    "no_signature",            # the first file with its signatures removed
    "quantizer_wi4",           # LiteRT Quantizer: int4 weights dequantized before use
    "quantizer_dynamic_wi4",   # LiteRT Quantizer: int4 weights read by the kernels themselves
    "prefill_only",            # the two-signature file cut to its prefill signature: token ids in
    "decode_only",             # ... and to its decode signature: a token and the KV cache in
)

# Multiply-accumulates of one inference, counted by hand from each architecture (below).
MACS = {
    # 24x16x3 -> conv 3x3 s2 -> 12x8x8: 12*8*8*27; depthwise 3x3: 12*8*8*9; dense 8 -> 5.
    "float32_keras_24x16": 20736 + 6912 + 40,
    # 16x16x3 -> conv 3x3 s2 -> 8x8x16: 8*8*16*27; depthwise: 8*8*16*9; 1x1 to 64: 8*8*64*16;
    # dense 64 -> 16.
    **dict.fromkeys(("int8_io_int8", "int8_io_uint8", "dynamic_range_int8", "float16_weights"),
                    27648 + 9216 + 65536 + 1024),
    "qat_int8": 8 * 8 * 8 * 27 + 8 * 4,
    # 20x12x1 -> conv 3x3 valid -> 18x10x4; max pool 2 -> 9x5x4 = 180; dense 180 -> 3.
    "grayscale_fixed_batch": 18 * 10 * 4 * 9 + 180 * 3,
    "vector_int16x8": 10 * 32 + 32 * 3,
    "two_inputs": 8 * 8 * 8 * 27 + 5 * 8 + 8 * 3,
    "no_signature": 20736 + 6912 + 40,
    "quantizer_wi4": 20736 + 6912 + 40,
    "quantizer_dynamic_wi4": 20736 + 6912 + 40,
}

# The 16-class model's weights: conv 16*3*3*3, depthwise 3*3*16, 1x1 64*16, dense 16*64,
# of which half the dense kernel (8 classes x 64) is set to 0.
SHARED_WEIGHTS, SHARED_ZEROS = 432 + 144 + 1024 + 1024, 512
SHARED_KINDS = ("int8_io_int8", "int8_io_uint8", "dynamic_range_int8", "float16_weights")


# ---------------------------------------------------------------------------------------
# Building the corpus
# ---------------------------------------------------------------------------------------


def _convert(converter) -> bytes:
    """Runs a converter with its logging kept out of the test output."""
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        with native_stderr_captured(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bytes(converter.convert())
    finally:
        absl_logger.setLevel(level)


def _calibration(shape, n=8, seed=0):
    rng = np.random.default_rng(seed)
    return lambda: ([rng.uniform(-1, 1, (1, *shape)).astype(np.float32)] for _ in range(n))


def _float_24x16():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((24, 16, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(5)(x))
    return _convert(tf.lite.TFLiteConverter.from_keras_model(model))


def _shared_classifier():
    """16x16x3 to 16 classes; its 1x1 convolution and dense kernel have 1,024 weights each,
    the converter's threshold for dynamic-range quantization; half the dense kernel is 0."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = layers.Conv2D(64, 1, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    dense = layers.Dense(16)
    model = keras.Model(inputs, dense(x))
    kernel, bias = dense.get_weights()
    kernel[:, :8] = 0.0
    dense.set_weights([kernel, bias])
    return model


def _from_saved_model(folder, **settings) -> bytes:
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder))
    for name, value in settings.items():
        if name == "supported_types":
            converter.target_spec.supported_types = value
        elif name == "supported_ops":
            converter.target_spec.supported_ops = value
        else:
            setattr(converter, name, value)
    return _convert(converter)


def _qat_int8():
    import tensorflow_model_optimization as tfmot

    keras.utils.set_random_seed(2)
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    qat = tfmot.quantization.keras.quantize_model(keras.Model(inputs, layers.Dense(4)(x)))
    converter = tf.lite.TFLiteConverter.from_keras_model(qat)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return _convert(converter)


class _StaticGrayscale(tf.Module):
    """A one-channel classifier written with static shapes, as exporters of other
    frameworks write them: batch 1, and a RESHAPE to the fixed shape (1, 180)."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(3)
        self.kernel = tf.Variable(rng.normal(0, 0.3, (3, 3, 1, 4)).astype(np.float32))
        self.dense = tf.Variable(rng.normal(0, 0.1, (180, 3)).astype(np.float32))
        self.bias = tf.Variable(np.zeros(3, np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 20, 12, 1], tf.float32, name="gray")])
    def __call__(self, x):
        y = tf.nn.relu(tf.nn.conv2d(x, self.kernel, 1, "VALID"))
        y = tf.nn.max_pool2d(y, 2, 2, "VALID")
        return tf.matmul(tf.reshape(y, [1, 180]), self.dense) + self.bias


def _grayscale_fixed_batch():
    module = _StaticGrayscale()
    return _convert(tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module))


def _vector_int16x8():
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((10,)), layers.Dense(32, activation="relu"), layers.Dense(3)])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _calibration((10,))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return _convert(converter)


def _two_inputs():
    keras.utils.set_random_seed(5)
    image, extra = keras.Input((16, 16, 3), name="image"), keras.Input((5,), name="extra")
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(image))
    y = layers.Dense(8)(extra)
    model = keras.Model([image, extra], layers.Dense(3)(layers.Add()([x, y])))
    return _convert(tf.lite.TFLiteConverter.from_keras_model(model))


class _PrefillDecode(tf.Module):
    """A language model's two entry points around a KV cache of 6 positions x 8 values."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(6)
        self.embedding = tf.Variable(rng.normal(size=(16, 8)).astype(np.float32))
        self.projection = tf.Variable(rng.normal(size=(8, 8)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 6], tf.int32, name="tokens")])
    def prefill(self, tokens):
        keys = tf.matmul(tf.gather(self.embedding, tokens[0]), self.projection)
        return {"cache": keys[tf.newaxis]}

    @tf.function(input_signature=[tf.TensorSpec([1, 1], tf.int32, name="token"),
                                  tf.TensorSpec([1, 6, 8], tf.float32, name="cache")])
    def decode(self, token, cache):
        key = tf.matmul(tf.gather(self.embedding, token[0]), self.projection)
        return {"cache": tf.concat([cache[:, 1:], key[tf.newaxis]], axis=1)}


def _prefill_decode():
    module = _PrefillDecode()
    functions = [module.prefill.get_concrete_function(), module.decode.get_concrete_function()]
    return _convert(tf.lite.TFLiteConverter.from_concrete_functions(functions, module))


def _dynamic_wi4(content: bytes) -> bytes:
    """LiteRT Quantizer's dynamic int4 recipe (not one of the library's RECIPES)."""
    from litert_quantizer import quantizer, recipe

    qt = quantizer.Quantizer(bytearray(content))
    qt.load_quantization_recipe(recipe.dynamic_wi4_afp32())
    with native_stderr_captured(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bytes(qt.quantize(None, enable_progress_report=False, enable_progress_bar=False).quantized_model)


def _without_signatures(content: bytes) -> bytes:
    flat = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    flat.signatureDefs = None
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(flat.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def build_corpus(folder) -> dict:
    """``{kind: .tflite bytes}`` for every kind of :data:`KINDS`; ``folder`` holds a SavedModel."""
    files = {"float32_keras_24x16": _float_24x16()}
    tf.saved_model.save(_shared_classifier(), str(folder))
    full_integer = dict(optimizations=[tf.lite.Optimize.DEFAULT], representative_dataset=_calibration((16, 16, 3)),
                        supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8])
    files["int8_io_int8"] = _from_saved_model(folder, inference_input_type=tf.int8,
                                              inference_output_type=tf.int8, **full_integer)
    files["int8_io_uint8"] = _from_saved_model(folder, inference_input_type=tf.uint8,
                                               inference_output_type=tf.uint8, **full_integer)
    files["dynamic_range_int8"] = _from_saved_model(folder, optimizations=[tf.lite.Optimize.DEFAULT])
    files["float16_weights"] = _from_saved_model(folder, optimizations=[tf.lite.Optimize.DEFAULT],
                                                 supported_types=[tf.float16])
    files["qat_int8"] = _qat_int8()
    files["grayscale_fixed_batch"] = _grayscale_fixed_batch()
    files["vector_int16x8"] = _vector_int16x8()
    files["two_inputs"] = _two_inputs()
    files["prefill_decode"] = _prefill_decode()
    files["no_signature"] = _without_signatures(files["float32_keras_24x16"])
    files["quantizer_wi4"] = litert.quantize_with_recipe(files["float32_keras_24x16"], "weight_only_wi4_afp32")
    files["quantizer_dynamic_wi4"] = _dynamic_wi4(files["float32_keras_24x16"])
    files["prefill_only"] = litert.select_signature(files["prefill_decode"], "prefill")
    files["decode_only"] = litert.select_signature(files["prefill_decode"], "decode")
    assert tuple(files) == KINDS
    return files


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("saved_model"))


def test_the_corpus_is_what_it_says(corpus):
    """Each file differs from the library's defaults in the way its kind names."""
    def io(kind):
        interpreter = litert.make_interpreter(corpus[kind])
        return interpreter, interpreter.get_input_details(), interpreter.get_output_details()

    def dtypes(kind):
        return {str(t.dtype) if isinstance(t.dtype, str) else np.dtype(t.dtype).name
                for t in litert.read_graph(corpus[kind]).tensors}

    _, (inp,), _ = io("float32_keras_24x16")
    assert tuple(inp["shape"]) == (1, 24, 16, 3) and inp["dtype"] == np.float32
    for kind, dtype in (("int8_io_int8", np.int8), ("int8_io_uint8", np.uint8)):
        _, (inp,), (out,) = io(kind)
        assert inp["dtype"] == out["dtype"] == dtype and inp["quantization"][0] > 0
    assert "int8" in dtypes("dynamic_range_int8") and io("dynamic_range_int8")[1][0]["dtype"] == np.float32
    assert "float16" in dtypes("float16_weights") and "DEQUANTIZE" in litert.read_graph(corpus["float16_weights"]).op_counts()
    _, (inp,), _ = io("qat_int8")
    assert inp["dtype"] == np.float32 and "int8" in dtypes("qat_int8")
    _, (inp,), _ = io("grayscale_fixed_batch")
    assert tuple(inp["shape_signature"]) == (1, 20, 12, 1)
    assert "int16" in dtypes("vector_int16x8") and tuple(io("vector_int16x8")[1][0]["shape"]) == (1, 10)
    assert len(io("two_inputs")[1]) == 2
    assert len(io("prefill_decode")[0].get_signature_list()) == 2
    assert io("no_signature")[0].get_signature_list() == {} and io("float32_keras_24x16")[0].get_signature_list()
    assert "INT4" in dtypes("quantizer_wi4") and "DEQUANTIZE" in litert.read_graph(corpus["quantizer_wi4"]).op_counts()
    assert "INT4" in dtypes("quantizer_dynamic_wi4")
    assert "DEQUANTIZE" not in litert.read_graph(corpus["quantizer_dynamic_wi4"]).op_counts()


# ---------------------------------------------------------------------------------------
# The functions, each called on a file and then checked
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Inputs:
    """What a function needs besides the file, shaped for the file's first input."""

    images: np.ndarray  # 3 images of uint8 pixels
    x: np.ndarray  # 3 examples in the input's dtype
    tensors: list  # tensors to read out: the output of the first operator on the input, and the first output


def _example(detail: dict, n: int, seed: int = 0) -> np.ndarray:
    """``n`` inputs for a tensor: floats in [-1, 1], quantized integers over their range, other
    integers (token ids) below 6."""
    rng = np.random.default_rng(seed)
    shape, dtype = (n, *detail["shape"][1:]), np.dtype(detail["dtype"])
    if np.issubdtype(dtype, np.floating):
        return rng.uniform(-1, 1, shape).astype(dtype)
    if detail["quantization"][0] == 0:
        return rng.integers(0, 6, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def _inputs_for(content: bytes) -> Inputs:
    try:
        graph = litert.read_graph(content)
        inp = litert.make_interpreter(content).get_input_details()[0]
    except ValueError:  # a broken file: the function must refuse the file before its inputs
        return Inputs(np.zeros((3, 16, 16, 3), np.uint8), np.zeros((3, 16, 16, 3), np.float32), [0])
    first = next(op for op in graph.ops if set(op.inputs) & set(graph.inputs))
    images = np.random.default_rng(1).integers(0, 256, (3, *inp["shape"][1:]), dtype=np.uint8)
    return Inputs(images, _example(inp, 3), [first.outputs[0], graph.outputs[0]])


def _single_interpreter(content: bytes, kernels: str = "reference"):
    interpreter = litert.make_interpreter(content, kernels=kernels)
    return interpreter, interpreter.get_input_details()[0], interpreter.get_output_details()[0]


def _invoke_one(content: bytes, x: np.ndarray, kernels: str = "reference") -> np.ndarray:
    """The first output for one example, by hand."""
    interpreter, inp, out = _single_interpreter(content, kernels)
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(out["index"])


def check_read_tflite(content, kind, result):
    assert result == content and litert.read_tflite(bytearray(content)) == content


def check_read_graph(content, kind, graph):
    interpreter = litert.make_interpreter(content, kernels="builtin")
    # The same operators, in execution order, as the interpreter's own graph.
    assert [op.op for op in graph.ops] == [node["op_name"] for node in interpreter._get_ops_details()]
    counts = graph.op_counts()
    assert sum(counts.values()) == len(graph.ops) and list(counts) == list(dict.fromkeys(op.op for op in graph.ops))
    assert graph.inputs == tuple(d["index"] for d in interpreter.get_input_details())
    assert graph.outputs == tuple(d["index"] for d in interpreter.get_output_details())
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    for tensor in graph.tensors:
        assert details[tensor.index]["name"] == tensor.name
        assert tuple(details[tensor.index]["shape"]) == tensor.shape, tensor


# Operators XNNPACK leaves to LiteRT's built-in kernels, by kind (the others: none).
OFF_XNNPACK = {
    "int8_io_uint8": ["QUANTIZE", "QUANTIZE"],                 # uint8 in and out
    "vector_int16x8": ["QUANTIZE", "FULLY_CONNECTED", "FULLY_CONNECTED", "DEQUANTIZE"],  # no int16 kernels
    "quantizer_wi4": ["DEQUANTIZE", "CONV_2D", "DEQUANTIZE", "FULLY_CONNECTED"],  # weights computed at run time
    "quantizer_dynamic_wi4": ["CONV_2D"],
    "prefill_only": ["STRIDED_SLICE", "GATHER"],
    "decode_only": ["STRIDED_SLICE", "GATHER"],
}


def check_delegated_ops(content, kind, result):
    graph = litert.read_graph(content)
    assert sorted(result["delegated"] + result["not_delegated"]) == list(range(len(graph.ops)))
    assert [graph.ops[i].op for i in result["not_delegated"]] == OFF_XNNPACK.get(kind, [])
    assert result["partitions"] == litert.execution_plan(content).get("DELEGATE", 0)
    assert (result["partitions"] == 0) == (not result["delegated"])


def check_make_interpreter(content, kind, interpreter):
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], _example(detail, 1))
    interpreter.invoke()
    for detail in interpreter.get_output_details():
        value = interpreter.get_tensor(detail["index"])
        assert value.shape == tuple(detail["shape"]) and np.all(np.isfinite(value))
    if kind != "prefill_decode":  # the shapes the file declares
        graph = litert.read_graph(content)
        assert [graph.tensors[d["index"]].shape for d in interpreter.get_output_details()] == [
            tuple(d["shape"]) for d in interpreter.get_output_details()]


def check_model_size(content, kind, size):
    assert size == len(content)


def check_gzip_size(content, kind, size):
    assert 0 < size == len(gzip.compress(content, compresslevel=9, mtime=0))


def check_execution_plan(content, kind, plans):
    builtin, xnnpack = plans
    counts = litert.read_graph(content).op_counts()
    assert builtin == counts
    assert {op: n for op, n in xnnpack.items() if op != "DELEGATE"} == counts


def check_predict_tflite(content, kind, outputs):
    images = _inputs_for(content).images
    _, _, out = _single_interpreter(content)
    assert outputs.shape == (3, *out["shape"][1:]) and outputs.dtype == np.float32  # (n, classes)
    assert np.all(np.isfinite(outputs))
    np.testing.assert_allclose(litert.predict_tflite(content, images, batch_size=3), outputs, atol=1e-5)


def check_run_batches(content, kind, outputs):
    x = _inputs_for(content).x
    _, _, out = _single_interpreter(content)
    assert outputs.shape == (3, *out["shape"][1:]) and outputs.dtype == np.float32
    for i in range(3):
        expected = litert.dequantize_output(_invoke_one(content, x[i : i + 1]), out)[0]
        np.testing.assert_allclose(outputs[i], expected, rtol=0, atol=1e-6)


def check_run_tensors(content, kind, values):
    inputs = _inputs_for(content)
    graph = litert.read_graph(content)
    first, output = inputs.tensors
    assert set(values) == {first, output}
    assert values[first].shape == graph.tensors[first].shape
    np.testing.assert_array_equal(values[output], _invoke_one(content, inputs.x[:1]))


def check_with_outputs(content, kind, new):
    first, output = _inputs_for(content).tensors
    graph, new_graph = litert.read_graph(content), litert.read_graph(new)
    assert new_graph.outputs == (first, output) and new_graph.op_counts() == graph.op_counts()
    assert [d["index"] for d in litert.make_interpreter(new).get_output_details()] == [first, output]


def check_single_op_models(content, kind, pieces):
    graph = litert.read_graph(content)
    assert len(pieces) == len(graph.ops)
    for op, piece in zip(graph.ops, pieces):
        piece_graph = litert.read_graph(piece)
        assert [o.op for o in piece_graph.ops] == [op.op]
        computed = [i for i in op.inputs if i >= 0 and graph.tensors[i].data is None]
        assert len(litert.make_interpreter(piece, kernels="reference").get_input_details()) == len(set(computed))


def check_kernel_deviations(content, kind, rows):
    graph = litert.read_graph(content)
    assert [r["index"] for r in rows] == [op.index for op in graph.find(*litert.INT8_LAYERS)]
    assert all(r["differ"] == 0 for r in rows), rows  # the reference kernels, bit for bit


def check_accelerator_status(content, kind, status):
    assert status == "available"


def _computed_tensors(graph) -> set:
    """Tensors computed at run time, plus the inputs; not weights, nor weights prepared at load."""
    prepared = {op.outputs[0] for op in graph.ops
                if op.op in ("DEQUANTIZE", "DENSIFY") and graph.tensors[op.inputs[0]].data is not None}
    used = {i for op in graph.ops for i in (*op.inputs, *op.outputs) if i >= 0 and graph.tensors[i].data is None}
    return (used - prepared) | set(graph.inputs)


def check_tensor_lifetimes(content, kind, lives):
    graph = litert.read_graph(content)
    assert {life.tensor for life in lives} == _computed_tensors(graph)
    last = len(graph.ops) - 1
    for life in lives:
        tensor = graph.tensors[life.tensor]
        assert life.size == int(np.prod(tensor.shape)) * np.dtype(tensor.dtype).itemsize > 0
        assert 0 <= life.first <= life.last <= last
        if life.tensor in graph.inputs or life.tensor in graph.outputs:
            assert life.last == last
    if kind in FIXED_BATCH:  # LiteRT cannot resize these to a batch of 2: refused, by name
        with pytest.raises(ValueError, match=FIXED_BATCH[kind]):
            memory.tensor_lifetimes(content, batch=2)
        return
    doubled = {life.tensor: life.size for life in memory.tensor_lifetimes(content, batch=2)}
    assert set(doubled) == {life.tensor for life in lives}
    if kind == "prefill_only":  # tokens[0]: only the input grows; the rest is fixed at one sequence
        assert [doubled[life.tensor] for life in lives] == [
            (2 if life.tensor in graph.inputs else 1) * life.size for life in lives]
    else:
        assert [doubled[life.tensor] for life in lives] == [2 * life.size for life in lives]


def check_share_in_place(content, kind, merged):
    lives = memory.tensor_lifetimes(content)
    flat = [t for life in merged for t in (life.tensor if isinstance(life.tensor, tuple) else (life.tensor,))]
    assert sorted(flat) == sorted(life.tensor for life in lives)
    assert memory.lower_bound(merged) <= memory.lower_bound(lives)
    memory.check_plan(merged, memory.plan_greedy_by_size(merged))


def check_runtime_offsets(content, kind, offsets):
    lives = memory.tensor_lifetimes(content)
    assert set(offsets) == {life.tensor for life in lives}
    assert min(offsets.values()) == 0 and all(isinstance(v, int) and v >= 0 for v in offsets.values())


def check_plans(content, kind, lives):
    bound = memory.lower_bound(lives)
    for planner in memory.PLANNERS.values():
        plan = planner(lives)
        memory.check_plan(lives, plan)
        assert plan.size >= bound


def check_tflite_macs(content, kind, counts):
    graph = litert.read_graph(content)
    assert [row["index"] for row in counts["ops"]] == [op.index for op in graph.ops]
    assert counts["total"] == sum(row["macs"] for row in counts["ops"]) == MACS[kind]


def check_prepared_interpreter(content, kind, interpreter):
    details = interpreter.get_input_details()
    for detail in details:
        value = interpreter.get_tensor(detail["index"])
        assert value.shape == tuple(detail["shape"]) and value.dtype == detail["dtype"]
        ids = np.issubdtype(value.dtype, np.integer) and detail["quantization"][0] == 0
        assert not np.any(value) if ids else np.any(value)  # token ids 0; other inputs random
    interpreter.invoke()  # ready to invoke: token ids within the embedding table
    assert np.all(np.isfinite(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])))


def check_inference_energy(content, kind, result):
    assert result["macs"] == MACS[kind]
    assert result["total_j"] > 0 and np.isclose(result["total_j"], result["compute_j"] + result["memory_j"])
    skipped = energy.inference_energy(content, skip_zeros=True)
    assert skipped["macs"] <= result["macs"] and skipped["bytes"] <= result["bytes"]
    if kind == "float16_weights":  # half the dense kernel is exactly 0
        assert skipped["macs"] == result["macs"] - SHARED_ZEROS


def check_tflite_pruning_rate(content, kind, rate):
    assert 0.0 <= rate <= 1.0
    if kind == "float16_weights":
        assert rate == SHARED_ZEROS / SHARED_WEIGHTS
    elif kind in SHARED_KINDS:  # int8 weights: small weights round to 0 as well
        assert rate >= SHARED_ZEROS / SHARED_WEIGHTS
    elif kind in ("float32_keras_24x16", "no_signature"):
        assert rate == 0.0  # random float weights, none exactly 0


def check_tflite_layer_sparsities(content, kind, sparsities):
    graph = litert.read_graph(content)
    assert 0 < len(sparsities) <= len(graph.find(*pruning.TFLITE_OPS))
    assert all(0.0 <= s <= 1.0 for s in sparsities.values())
    if kind in SHARED_KINDS:
        assert list(sparsities.values())[-1] >= 0.5  # the dense kernel


def check_tflite_op_densities(content, kind, densities):
    graph = litert.read_graph(content)
    assert list(densities) == [op.index for op in graph.find(*pruning.TFLITE_OPS)]
    assert all(0.0 <= d <= 1.0 for d in densities.values())
    assert sorted(1 - d for d in densities.values()) == pytest.approx(
        sorted(pruning.tflite_layer_sparsities(content).values()))


def check_replace_constants(content, kind, result):
    new, index = result
    assert not litert.read_graph(new).tensors[index].data.any()
    assert litert.read_graph(new).op_counts() == litert.read_graph(content).op_counts()


def _replace_first_constant(content):
    graph = litert.read_graph(content)
    tensor = next(t for t in graph.tensors if t.data is not None and not t.sparse)
    return litert.replace_constants(content, {tensor.index: np.zeros(tensor.shape)}), tensor.index


def check_quantize_with_recipe(content, kind, quantized):
    keys = list(litert.signatures(content)) if kind == "prefill_decode" else [None]
    assert list(litert.signatures(quantized)) == list(litert.signatures(content))
    for key in keys:  # each signature of a two-signature file gets its weights quantized
        before, after = (litert.select_signature(c, key) if key else c for c in (content, quantized))
        assert "DEQUANTIZE" in litert.read_graph(after).op_counts()
        assert "DEQUANTIZE" not in litert.read_graph(before).op_counts()
    dtypes = [[d["dtype"] for d in litert.make_interpreter(c).get_input_details()] for c in (content, quantized)]
    assert dtypes[0] == dtypes[1]  # inputs unchanged (float32, or token ids)


def check_signatures(content, kind, keys):
    listed = litert.make_interpreter(content).get_signature_list()
    assert list(keys) == list(listed)
    assert keys == ({"decode": 0, "prefill": 1} if kind == "prefill_decode" else dict.fromkeys(listed, 0))


def _first_signature(content):
    return litert.select_signature(content, next(iter(litert.signatures(content)), "serving_default"))


def check_select_signature(content, kind, single):
    assert len(litert.signatures(single)) == 1
    original = litert.select_signature(content, "decode") if kind == "prefill_decode" else content
    assert litert.read_graph(single).op_counts() == litert.read_graph(original).op_counts()
    assert litert.model_size(single) <= litert.model_size(content)


def check_check_one_graph(content, kind, result):
    assert result == content


def check_evaluate_tflite(content, kind, accuracy):
    images = _inputs_for(content).images
    labels = np.arange(3) % litert.predict_tflite(content, images).shape[1]
    assert accuracy == np.mean(np.argmax(litert.predict_tflite(content, images), axis=1) == labels)


def _labels_for(content):
    """Three labels a classifier of the file's outputs can have (0, 1, 2 modulo its classes)."""
    try:
        classes = litert.make_interpreter(content).get_output_details()[0]["shape"][-1]
    except ValueError:
        classes = 3
    return np.arange(3) % classes


FUNCTIONS = {
    # name: (call(content, inputs), check(content, kind, result))
    "read_tflite": (lambda c, i: litert.read_tflite(c), check_read_tflite),
    "signatures": (lambda c, i: litert.signatures(c), check_signatures),
    "delegated_ops": (lambda c, i: litert.delegated_ops(c), check_delegated_ops),
    "select_signature": (lambda c, i: _first_signature(c), check_select_signature),
    "check_one_graph": (lambda c, i: litert.check_one_graph(c, "caller"), check_check_one_graph),
    "evaluate_tflite": (lambda c, i: litert.evaluate_tflite(c, i.images, _labels_for(c)), check_evaluate_tflite),
    "read_graph": (lambda c, i: litert.read_graph(c), check_read_graph),
    "make_interpreter": (lambda c, i: litert.make_interpreter(c), check_make_interpreter),
    "model_size": (lambda c, i: litert.model_size(c), check_model_size),
    "gzip_size": (lambda c, i: litert.gzip_size(c), check_gzip_size),
    "execution_plan": (lambda c, i: (litert.execution_plan(c, kernels="builtin"), litert.execution_plan(c)),
                       check_execution_plan),
    "predict_tflite": (lambda c, i: litert.predict_tflite(c, i.images, batch_size=2), check_predict_tflite),
    "run_batches": (lambda c, i: litert.run_batches(c, i.x, batch_size=2, kernels="reference"), check_run_batches),
    "run_tensors": (lambda c, i: litert.run_tensors(c, i.x[:1], i.tensors), check_run_tensors),
    "with_outputs": (lambda c, i: litert.with_outputs(c, i.tensors), check_with_outputs),
    "single_op_models": (lambda c, i: litert.single_op_models(c), check_single_op_models),
    "kernel_deviations": (lambda c, i: litert.kernel_deviations(c, i.x[:2], "reference"), check_kernel_deviations),
    "accelerator_status": (lambda c, i: litert.accelerator_status(c, "cpu"), check_accelerator_status),
    "replace_constants": (lambda c, i: _replace_first_constant(c), check_replace_constants),
    "quantize_with_recipe": (lambda c, i: litert.quantize_with_recipe(c, "weight_only_wi8_afp32"),
                             check_quantize_with_recipe),
    "tensor_lifetimes": (lambda c, i: memory.tensor_lifetimes(c), check_tensor_lifetimes),
    "share_in_place": (lambda c, i: memory.share_in_place(c, memory.tensor_lifetimes(c)), check_share_in_place),
    "runtime_offsets": (lambda c, i: memory.runtime_offsets(c), check_runtime_offsets),
    "runtime_offsets_batch_2": (lambda c, i: memory.runtime_offsets(c, batch=2), check_runtime_offsets),
    "plan_greedy_by_size": (lambda c, i: memory.tensor_lifetimes(c), check_plans),
    "tflite_macs": (lambda c, i: compute.tflite_macs(c), check_tflite_macs),
    "prepared_interpreter": (lambda c, i: compute.prepared_interpreter(c, kernels="reference"),
                             check_prepared_interpreter),
    "inference_energy": (lambda c, i: energy.inference_energy(c), check_inference_energy),
    "tflite_pruning_rate": (lambda c, i: pruning.tflite_pruning_rate(c), check_tflite_pruning_rate),
    "tflite_layer_sparsities": (lambda c, i: pruning.tflite_layer_sparsities(c), check_tflite_layer_sparsities),
    "tflite_op_densities": (lambda c, i: pruning.tflite_op_densities(c), check_tflite_op_densities),
}


# The functions that measure (time, memory, fresh processes) run on a few kinds, with the
# fewest runs they accept. Only the structure of what they return is checked (counts, keys,
# order statistics, causality): never how fast this CPU is (CONTRIBUTING.md).
MEASURED_KINDS = ("float32_keras_24x16", "int8_io_int8", "two_inputs", "prefill_decode", "decode_only")


def _check_order_statistics(samples, *quantiles):
    samples = np.asarray(samples)
    assert np.all(samples > 0)
    assert [samples.min(), *quantiles, samples.max()] == sorted([samples.min(), *quantiles, samples.max()])


def _check_latency_stats(stats, round_sizes):
    assert stats.runs == len(stats.samples_ms) == sum(round_sizes)
    assert stats.round_sizes == tuple(round_sizes)
    _check_order_statistics(stats.samples_ms, stats.p50_ms, stats.p90_ms, stats.p99_ms)
    assert stats.ci95_ms[0] <= stats.p50_ms <= stats.ci95_ms[1]


def check_measure_latency(content, kind, stats):
    _check_latency_stats(stats, (3,))


def check_compare_latency(content, kind, runs):
    assert list(runs) == ["xnnpack", "reference"]
    _check_latency_stats(runs["xnnpack"], (2, 1))
    _check_latency_stats(runs["reference"], (1, 1))


def check_profile_ops(content, kind, profile):
    timed = [row["index"] for row in compute.tflite_macs(content)["ops"] if "once, at load" not in row["kind"]]
    assert [op["index"] for op in profile.ops] == list(profile.runs) == timed
    for stats in profile.runs.values():
        _check_latency_stats(stats, (2, 1))
    _check_latency_stats(profile.whole, (2, 1))
    assert [op["p50_ms"] for op in profile.ops] == [profile.runs[i].p50_ms for i in timed]
    kinds = profile.by_kind()
    assert sum(entry["count"] for entry in kinds.values()) == len(timed)
    assert sum(entry["share"] for entry in kinds.values()) == pytest.approx(1.0)


def check_measure_long_runs(content, kind, runs):
    ((tail, samples),) = runs.values()
    assert samples.shape == (3,) and tail.runs == 3
    _check_order_statistics(samples, tail.p50_ms, tail.p90_ms, tail.p99_ms, tail.p999_ms)
    assert tail.max_ms == samples.max() and tail.std_ms >= 0 and tail.jitter_ms >= 0


def check_measure_cpu_time(content, kind, times):
    assert list(times) == ["a", "b"]
    for name, runs in (("a", [2.0, 1.0]), ("b", [1.0, 1.0])):
        assert times[name].inferences == sum(runs) and list(times[name].runs) == runs
        assert times[name].wall_s.shape == times[name].cpu_s.shape == (2,)
        assert np.all(times[name].wall_s > 0) and np.all(times[name].cpu_s >= 0)


def check_run_timeline(content, kind, timelines):
    for design, timeline in zip(ux.DESIGNS, timelines):
        assert timeline.design == design and timeline.ticks == 6  # 0.2 s at 30 frames a second
        np.testing.assert_allclose(timeline.arrivals, np.arange(6) / 30)
        frames = [frame for frame, _, _ in timeline.inferences]
        assert len(frames) == len(set(frames)) and set(frames) <= set(range(6))
        assert len(frames) + timeline.skipped == 6  # every camera frame inferred or skipped
        assert all(timeline.arrivals[frame] - 1e-6 <= start <= end for frame, start, end in timeline.inferences)
        ticks = [tick for tick, _, _, _ in timeline.ui_frames]
        assert ticks == sorted(set(ticks)) and set(ticks) <= set(range(6))
        if design == "worker":
            assert ticks == list(range(6))  # the UI thread draws every tick
        assert {shown for _, _, _, shown in timeline.ui_frames} <= {-1, *frames}
        assert set(timeline.dropped_refreshes) <= set(range(1, 7))
        assert timeline.shown.sum() == 6 - timeline.dropped_ui
        assert len(timeline.end_to_end_ms) <= len(frames) and np.all(timeline.end_to_end_ms >= 0)


def check_measure_rss(content, kind, stages):
    names = ["start", "read", "created", "allocated", "invoked", "steady"]
    assert list(stages) == [*names, "growth"]
    assert all(isinstance(stages[n], int) and stages[n] > 0 for n in names)
    assert stages["growth"] == {b: stages[b] - stages[a] for a, b in zip(names, names[1:])}


def check_measure_cold_start(content, kind, cold):
    assert list(cold.stages_ms) == list(ux.COLD_STAGES)
    for stage, times in cold.stages_ms.items():
        assert times.shape == (1,) and times[0] >= 0, stage
    assert cold.warm.runs == 2 and cold.warm.p50_ms <= cold.warm.p99_ms <= cold.warm.max_ms
    assert cold.app_cold_ms[0] >= cold.model_cold_ms[0] >= 0


def check_measure_variants(content, kind, records):
    (record,) = records
    images = _inputs_for(content).images
    correct = np.argmax(litert.predict_tflite(content, images), axis=1) == _labels_for(content)
    assert record.name == "model" and record.size_bytes == len(content) and record.accuracy == correct.mean()
    np.testing.assert_array_equal(record.correct, correct)
    _check_latency_stats(record.latency, (2, 1))


def check_leak_probe(content, kind, result):
    assert result.step == "invoke" and result.cycles == 10 and len(result.rss) == len(result.python) == 11
    assert all(r > 0 for r in result.rss) and result.verdict in leaks.VERDICTS
    assert result.rss_slope.low <= result.rss_slope.estimate <= result.rss_slope.high


def check_litert_benchmark(content, kind, result):
    assert result["num_runs"] == 3 and result["median_ms"] >= 0 and result["min_ms"] <= result["median_ms"] <= result["max_ms"]


MEASURES = {
    # name: (call(content, inputs), check(content, kind, result)), as in FUNCTIONS
    "litert_benchmark": (lambda c, i: compute.litert_benchmark(c, num_runs=3, warmup=1), check_litert_benchmark),
    "leak_probe": (lambda c, i: leaks.leak_probe("invoke", cycles=10, warmup=1, model=c, num_threads=1),
                   check_leak_probe),
    "measure_variants": (lambda c, i: report.measure_variants(
        {"model": c}, data.Split(_inputs_for(c).images, _labels_for(c)), num_runs=3, warmup=1, rounds=2,
        num_threads=1), check_measure_variants),
    "measure_latency": (lambda c, i: compute.measure_latency(c, num_runs=3, warmup=1), check_measure_latency),
    "compare_latency": (lambda c, i: compute.compare_latency(
        {"xnnpack": c, "reference": c}, num_runs={"xnnpack": 3, "reference": 2}, warmup=1, rounds=2,
        kernels={"xnnpack": "xnnpack", "reference": "reference"}), check_compare_latency),
    "profile_ops": (lambda c, i: compute.profile_ops(c, num_runs=3, warmup=1, rounds=2, num_threads=1),
                    check_profile_ops),
    "measure_long_runs": (lambda c, i: ux.measure_long_runs({"model": c}, num_runs=3, rounds=2, warmup=1),
                          check_measure_long_runs),
    "measure_cpu_time": (lambda c, i: energy.measure_cpu_time(
        {"a": c, "b": c}, num_runs={"a": 3, "b": 2}, rounds=2, warmup=1, num_threads=1), check_measure_cpu_time),
    "run_timeline": (lambda c, i: [ux.run_timeline(c, fps=30, duration_s=0.2, design=design, render_ms=1.0,
                                                   warmup=1) for design in ux.DESIGNS], check_run_timeline),
    "measure_rss": (lambda c, i: memory.measure_rss(c, num_threads=1), check_measure_rss),
    "measure_cold_start": (lambda c, i: ux.measure_cold_start(c, repeats=1, warm_runs=2, num_threads=1),
                           check_measure_cold_start),
}

FUNCTIONS_NAMES, MEASURES_NAMES = tuple(FUNCTIONS), tuple(MEASURES)

# What each function refuses, with the words its ValueError must contain. Every other
# (file, function) pair must give the right answer.
_ONE_INPUT = "runs models with one input"
_NO_INT8_LAYER = "is not int8-quantized"
_CHOOSE_SIGNATURE = r"signatures 'decode' \(subgraph 0\), 'prefill' \(subgraph 1\): choose one with litert.select_signature"
_IMAGES_ONLY = r"runs image models .* feed inputs you prepared with run_batches"
# Files LiteRT cannot resize to a batch of 2, and the words of the refusal.
FIXED_BATCH = {
    "grayscale_fixed_batch": r"cannot run this model with batch=2.*RESHAPE",
    "two_inputs": "batch=2 needs a model with one input",
    "decode_only": "batch=2 needs a model with one input",
}
# Functions that read a file as a whole: they take a file with several signatures.
WHOLE_FILE = ("read_tflite", "make_interpreter", "model_size", "gzip_size", "accelerator_status",
              "quantize_with_recipe", "signatures", "select_signature")
REFUSALS = {
    # A float, int16 or weight-only model has no int8 layer to recompute.
    **{(kind, "kernel_deviations"): _NO_INT8_LAYER for kind in (
        "float32_keras_24x16", "dynamic_range_int8", "float16_weights", "grayscale_fixed_batch",
        "vector_int16x8", "two_inputs", "no_signature", "quantizer_wi4",
        "quantizer_dynamic_wi4", "prefill_only", "decode_only")},
    # Two signatures (prefill and decode): every function that reads or runs one graph asks
    # for one, and names them.
    **{("prefill_decode", function): _CHOOSE_SIGNATURE
       for function in (*FUNCTIONS_NAMES, *MEASURES_NAMES) if function not in WHOLE_FILE},
    # Not images: a vector, token ids.
    **{(kind, function): _IMAGES_ONLY for kind in ("vector_int16x8", "prefill_only")
       for function in ("predict_tflite", "evaluate_tflite")},
    # No signature to select.
    ("no_signature", "select_signature"): r"no signature 'serving_default' in this model; it has none",
    # LiteRT Quantizer takes float32 models; it would leave quantized tensors as they are.
    **{(kind, "quantize_with_recipe"): "needs a float32 model" for kind in (
        "int8_io_int8", "int8_io_uint8", "dynamic_range_int8", "float16_weights", "qat_int8",
        "vector_int16x8", "quantizer_wi4", "quantizer_dynamic_wi4")},
    # Two inputs (an image and a vector; the decode signature's token and cache): the
    # functions that feed one input cannot run them.
    **{(kind, function): _ONE_INPUT for kind in ("two_inputs", "decode_only")
       for function in ("predict_tflite", "evaluate_tflite", "run_batches", "run_tensors", "measure_variants")},
    # A batch fixed in the file (a RESHAPE to (1, 180)), or several inputs: no batch of 2.
    **{(kind, "runtime_offsets_batch_2"): words for kind, words in FIXED_BATCH.items()},
    # int16 activations: the energy table has int8 and float32 arithmetic only.
    ("vector_int16x8", "inference_energy"): "no arithmetic for dtype 'int16'",
    # A language model's ops: no MAC count for slicing and gathering.
    **{(kind, function): "STRIDED_SLICE, which tflite_macs does not know how to count"
       for kind in ("prefill_only", "decode_only") for function in ("tflite_macs", "inference_energy", "profile_ops")},
    # A fresh process that loads the file sets one input (the other would stay unset).
    **{(kind, function): _ONE_INPUT for kind in ("two_inputs", "decode_only")
       for function in ("measure_rss", "measure_cold_start", "leak_probe")},
    # LiteRT's benchmark tool fills inputs with random values: token ids would index past the table.
    ("decode_only", "litert_benchmark"): r"int32 without quantization \(token ids or indices\)",
}


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_function_answers_right_or_names_what_it_does_not_support(corpus, kind, function):
    content = corpus[kind]
    call, check = FUNCTIONS[function]
    refusal = REFUSALS.get((kind, function))
    if refusal is not None:
        with pytest.raises(ValueError, match=refusal):
            call(content, _inputs_for(content))
        return
    check(content, kind, call(content, _inputs_for(content)))


def _forbid_measuring(monkeypatch):
    """Makes starting a process or invoking a model fail the test: a refusal comes first."""
    def forbidden(*args, **kwargs):
        pytest.fail("a process was started or a model invoked before the refusal")

    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(Interpreter, "invoke", forbidden)


@pytest.mark.parametrize("function", MEASURES)
@pytest.mark.parametrize("kind", MEASURED_KINDS)
def test_every_measurement_has_its_structure_or_names_what_it_does_not_support(corpus, kind, function,
                                                                                monkeypatch):
    content = corpus[kind]
    call, check = MEASURES[function]
    refusal = REFUSALS.get((kind, function))
    if refusal is not None:
        _forbid_measuring(monkeypatch)
        with pytest.raises(ValueError, match=refusal):
            call(content, None)
        return
    check(content, kind, call(content, None))


BROKEN = {
    "last_byte_missing": lambda corpus: corpus["float32_keras_24x16"][:-1],
    "last_16_bytes_missing": lambda corpus: corpus["prefill_decode"][:-16],
    "first_100_bytes": lambda corpus: corpus["int8_io_int8"][:100],
    "first_half": lambda corpus: corpus["float16_weights"][: len(corpus["float16_weights"]) // 2],
    "not_a_model": lambda corpus: b"hello",
}


@pytest.mark.parametrize("function", {**FUNCTIONS, **MEASURES})
@pytest.mark.parametrize("broken", BROKEN)
def test_a_truncated_file_or_one_that_is_not_a_model_gives_a_value_error(corpus, broken, function, monkeypatch):
    content = BROKEN[broken](corpus)
    call, _ = {**FUNCTIONS, **MEASURES}[function]
    if function in MEASURES:
        _forbid_measuring(monkeypatch)
    with pytest.raises(ValueError, match=r"not a (complete )?\.tflite model"):
        call(content, _inputs_for(content))


@pytest.mark.parametrize("function", ["compare_latency", "measure_long_runs", "measure_cpu_time", "profile_ops"])
def test_a_broken_file_beside_a_good_one_is_refused_before_either_is_invoked(corpus, function, monkeypatch):
    models = {"good": corpus["float32_keras_24x16"], "broken": BROKEN["first_half"](corpus)}
    call = {
        "compare_latency": lambda: compute.compare_latency(models, num_runs=3, warmup=1, rounds=2),
        "measure_long_runs": lambda: ux.measure_long_runs(models, num_runs=3, warmup=1, rounds=2),
        "measure_cpu_time": lambda: energy.measure_cpu_time(models, num_runs=3, warmup=1, rounds=2),
        "profile_ops": lambda: compute.profile_ops(models, num_runs=3, warmup=1, rounds=2),
    }[function]
    _forbid_measuring(monkeypatch)
    with pytest.raises(ValueError, match=r"not a (complete )?\.tflite model"):
        call()


def test_token_ids_alone_are_timed_with_id_0_or_refused_by_a_fresh_process(corpus, monkeypatch):
    """The prefill signature alone: one input of int32 token ids. The in-process harness feeds
    id 0; a cold start's random pixel values would index past the embedding table."""
    content = corpus["prefill_only"]
    (inp,) = litert.make_interpreter(content).get_input_details()
    assert inp["dtype"] == np.int32 and inp["quantization"][0] == 0
    _check_latency_stats(compute.measure_latency(content, num_runs=3, warmup=1), (3,))
    _forbid_measuring(monkeypatch)
    with pytest.raises(ValueError, match=r"int32 without quantization \(token ids"):
        ux.measure_cold_start(content, repeats=1, warm_runs=2)
    with pytest.raises(ValueError, match=r"int32 without quantization \(token ids or indices\)"):
        compute.litert_benchmark(content, num_runs=3, warmup=1)


def test_share_in_place_refuses_a_broken_file_with_valid_lifetimes(corpus):
    lives = [memory.Lifetime(0, 64, 0, 0)]
    for make in BROKEN.values():
        content = make(corpus)
        with pytest.raises(ValueError, match=r"not a (complete )?\.tflite model"):
            memory.share_in_place(content, lives)


def test_paths_work_as_bytes_do(corpus, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(corpus["prefill_only"])
    assert litert.read_tflite(path) == corpus["prefill_only"] == litert.read_tflite(str(path))
    assert litert.read_graph(path).op_counts() == litert.read_graph(corpus["prefill_only"]).op_counts()
    assert [life.tensor for life in memory.tensor_lifetimes(path)] == [
        life.tensor for life in memory.tensor_lifetimes(corpus["prefill_only"])]
    path.write_bytes(corpus["prefill_decode"])
    assert litert.select_signature(path, "decode") == litert.select_signature(corpus["prefill_decode"], "decode")


def test_a_batch_fixed_in_the_file_is_kept_or_refused_by_name(corpus):
    """The grayscale file reshapes to (1, 180): batches of 1 run, a batch of 2 cannot."""
    content = corpus["grayscale_fixed_batch"]
    x = np.random.default_rng(0).uniform(-1, 1, (3, 20, 12, 1)).astype(np.float32)
    outputs = litert.run_batches(content, x, batch_size=3)
    assert outputs.shape == (3, 3)
    np.testing.assert_allclose(outputs[2], litert.run_batches(content, x[2:], batch_size=1)[0], atol=1e-6)
    with pytest.raises(ValueError, match=r"cannot take an input of shape \(2, 20, 12, 1\)"):
        litert.run_tensors(content, x[:2], [litert.read_graph(content).outputs[0]])


def test_select_signature_makes_a_file_of_one_signature_with_the_buffers_it_uses(corpus):
    content = corpus["prefill_decode"]
    assert litert.signatures(content) == {"decode": 0, "prefill": 1}
    for key, tokens in (("prefill", (1, 6)), ("decode", (1, 1))):
        single = litert.select_signature(content, key)
        assert litert.signatures(single) == {key: 0}
        interpreter = litert.make_interpreter(single)
        assert tuple(interpreter.get_input_details()[0]["shape"]) == tokens
        # The same computation as the signature of the whole file.
        whole = litert.make_interpreter(content).get_signature_runner(key)
        runner = interpreter.get_signature_runner(key)
        inputs = {name: _example(detail, 1, seed=3) for name, detail in runner.get_input_details().items()}
        np.testing.assert_array_equal(runner(**inputs)["cache"], whole(**inputs)["cache"])
        # Every buffer kept is used by a tensor of the signature, by the file's metadata
        # (the converter's version records), or is the empty buffer 0.
        flat = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(single, 0))
        used = {t.buffer for t in flat.subgraphs[0].tensors} | {m.buffer for m in flat.metadata} | {0}
        assert len(flat.buffers) < len(schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0)).buffers)
        assert set(range(len(flat.buffers))) == used
    assert litert.signatures(corpus["no_signature"]) == {}
    with pytest.raises(ValueError, match=r"no signature 'generate' in this model; it has \['decode', 'prefill'\]"):
        litert.select_signature(content, "generate")
    with pytest.raises(ValueError, match="no signature 'serving_default' in this model; it has none"):
        litert.select_signature(corpus["no_signature"], "serving_default")


def test_every_constant_takes_in_the_file_the_bytes_its_type_says(corpus):
    """``TensorInfo.nbytes`` (int4 two per byte) against the bytes each weight has in the file:
    the count that model sizes, MAC tables and the energy model rest on."""
    seen = set()
    for kind, content in corpus.items():
        if kind == "prefill_decode":
            continue
        for tensor in litert.read_graph(content).tensors:
            if tensor.data is not None and not tensor.sparse:
                assert tensor.nbytes == tensor.data.nbytes, (kind, tensor)
                seen.add(tensor.dtype_name)
    assert {"INT4", "int8", "float16", "float32", "int32"} <= seen


_INTEGER_OPTIONS = {
    # function: (call with one option set, the options that must be positive or non-negative integers)
    "measure_latency": (lambda c, **o: compute.measure_latency(c, **{"num_runs": 3, "warmup": 1, **o}),
                        ("num_runs", "warmup", "num_threads")),
    "compare_latency": (lambda c, **o: compute.compare_latency({"a": c}, **{"num_runs": 3, "warmup": 1, "rounds": 1, **o}),
                        ("num_runs", "warmup", "rounds", "num_threads")),
    "profile_ops": (lambda c, **o: compute.profile_ops(c, **{"num_runs": 3, "warmup": 1, "rounds": 1, **o}),
                    ("num_runs", "warmup", "rounds", "num_threads")),
    "measure_long_runs": (lambda c, **o: ux.measure_long_runs({"a": c}, **{"num_runs": 3, "warmup": 1, "rounds": 1, **o}),
                          ("num_runs", "warmup", "rounds")),
    "measure_cpu_time": (lambda c, **o: energy.measure_cpu_time({"a": c}, **{"num_runs": 3, "warmup": 1, "rounds": 1, **o}),
                         ("num_runs", "warmup", "rounds", "num_threads")),
    "run_timeline": (lambda c, **o: ux.run_timeline(c, **{"fps": 30, "duration_s": 0.1, "warmup": 1, **o}),
                     ("warmup", "num_threads")),
    "measure_rss": (lambda c, **o: memory.measure_rss(c, **o), ("num_threads",)),
    "measure_cold_start": (lambda c, **o: ux.measure_cold_start(c, **{"repeats": 1, "warm_runs": 2, **o}),
                           ("repeats", "warm_runs", "num_threads")),
    "predict_tflite": (lambda c, **o: litert.predict_tflite(c, np.zeros((2, 24, 16, 3), np.uint8), **o),
                       ("batch_size", "num_threads")),
    "tensor_lifetimes": (lambda c, **o: memory.tensor_lifetimes(c, **o), ("batch",)),
    "runtime_offsets": (lambda c, **o: memory.runtime_offsets(c, **o), ("batch",)),
}


@pytest.mark.parametrize("value", [1.5, -1, True, "2"], ids=repr)
@pytest.mark.parametrize("function", _INTEGER_OPTIONS)
def test_counts_that_are_not_whole_numbers_are_refused_before_anything_runs(corpus, function, value, monkeypatch):
    call, options = _INTEGER_OPTIONS[function]
    _forbid_measuring(monkeypatch)
    for option in options:  # every value given is wrong for every option: none is a whole number >= 0
        with pytest.raises(ValueError, match=rf"{option} must be a"):
            call(corpus["float32_keras_24x16"], **{option: value})
