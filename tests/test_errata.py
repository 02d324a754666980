"""The errata appendix (book/errata.md) checked against the installed packages.

Every call of the source article's listing that the page says "does not exist" is looked up
here in tf-keras, TensorFlow Model Optimization (tfmot) and LiteRT (``ai-edge-litert``); every
signature the page quotes is compared with ``inspect.signature``; every behaviour it describes
(ignored arguments, a deprecation warning, an error) is provoked. If a package gains one of
these APIs or changes one, a test here fails and the page must change. The last test executes
the page's corrected listing on small models.
"""

import inspect
import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ERRATA = ROOT / "book" / "errata.md"

# Every call of the article's listing (section 5.2), in its order, as the page's headings name them.
LISTING_CALLS = (
    "from tensorflow.keras.applications import MobileNetV2",
    "tf.keras.models.quantize_model(model, quantize_inputs=True, num_bits=2)",
    "tf.keras.models.prune_low_magnitude(model, pruning_params={'sparsity': 0.5, 'threshold': 0.01})",
    "MobileNetV2(input_shape=(224, 224, 3), weights='imagenet')",
    "student_model.trainable = True",
    "teacher_model.trainable = False",
    "tf.keras.models.model_from_json(teacher_model.to_json())",
    "student_model.compile(optimizer='adam', loss='categorical_crossentropy')",
    "student_model.load_weights('student_model_weights.h5')",
    "teacher_model.load_weights('teacher_model_weights.h5')",
    "student_model.fit_generator(..., steps_per_epoch=..., epochs=5)",
    "tf.keras.models.function(model, inputs=model.inputs, outputs=model.outputs)",
    "tf.keras.models.function(..., experiment=True)",
    "tf.keras.models.compile(model, optimizer='adam', loss=..., metrics=['accuracy'])",
    "tf.keras.models.wrappers.ExcludeFromSharding(model)",
    "tf.keras.models.pruning.connect_to_model(model)",
    "tf.keras.models.train_on_batch(model, x_train, y_train)",
)


@pytest.fixture(scope="module")
def lib():
    from ai_edge_litert import interpreter

    import ai_edge_litert
    import tensorflow_model_optimization as tfmot
    from mobileopt_ref._keras import keras, tf

    return SimpleNamespace(tf=tf, keras=keras, tfmot=tfmot, litert=ai_edge_litert, interpreter=interpreter)


def _params(function) -> set:
    return set(inspect.signature(function).parameters)


def _tiny_model(keras, size=8, classes=3):
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes)(x))


def test_the_page_covers_every_call_of_the_listing():
    text = ERRATA.read_text(encoding="utf-8")
    headings = [h.strip() for h in re.findall(r"^###\s+(.+)$", text, flags=re.M)]
    for call in LISTING_CALLS:
        assert any(call in h for h in headings), f"book/errata.md has no heading for `{call}`"
    # The two corrections made where the topic is taught are linked, not repeated silently.
    assert "{doc}`../notebooks/01_quantization`" in text and "{doc}`../notebooks/04_computation`" in text


def test_the_page_names_the_versions_it_was_checked_against():
    import importlib.metadata

    text = " ".join(ERRATA.read_text(encoding="utf-8").split())
    for package in ("tf-keras", "tensorflow-model-optimization", "ai-edge-litert"):
        major_minor = ".".join(importlib.metadata.version(package).split(".")[:2])
        assert re.search(rf"{re.escape(package)}( \([^)]*\))? {re.escape(major_minor)}\b", text), (
            f"book/errata.md does not say it was checked against {package} {major_minor}, the installed version")


def test_quantize_model_takes_no_bit_width(lib):
    assert not hasattr(lib.tf.keras.models, "quantize_model")
    qm = lib.tfmot.quantization.keras.quantize_model
    assert _params(qm) == {"to_quantize", "quantized_layer_name_prefix"}
    with pytest.raises(TypeError, match="quantize_inputs"):
        qm(_tiny_model(lib.keras), quantize_inputs=True, num_bits=2)
    scheme = lib.tfmot.quantization.keras.experimental.default_n_bit.DefaultNBitQuantizeScheme
    assert {"num_bits_weight", "num_bits_activation"} <= _params(scheme.__init__)


def test_prune_low_magnitude_silently_ignores_the_articles_arguments(lib):
    sparsity = lib.tfmot.sparsity.keras
    assert not hasattr(lib.tf.keras.models, "prune_low_magnitude")
    signature = inspect.signature(sparsity.prune_low_magnitude)
    assert not {"sparsity", "threshold", "pruning_params"} & set(signature.parameters)
    assert any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    # A whole model: accepted, the arguments dropped, the default schedule applied.
    for kwargs in ({"pruning_params": {"sparsity": 0.5, "threshold": 0.01}}, {"sparsity": 0.9, "threshold": 0.01}):
        pruned = sparsity.prune_low_magnitude(_tiny_model(lib.keras), **kwargs)
        wrappers = [layer for layer in pruned.layers if hasattr(layer, "pruning_schedule")]
        assert wrappers
        for layer in wrappers:
            config = layer.pruning_schedule.get_config()["config"]
            assert type(layer.pruning_schedule) is sparsity.ConstantSparsity
            assert (config["target_sparsity"], config["begin_step"]) == (0.5, 0)
    # A single layer: the arguments reach the Keras layer, which refuses them.
    with pytest.raises(TypeError):
        sparsity.prune_low_magnitude(lib.keras.layers.Dense(2), sparsity=0.5, threshold=0.01)


def test_model_from_json_rebuilds_the_teacher_with_fresh_weights(lib):
    teacher = _tiny_model(lib.keras)
    copy = lib.tf.keras.models.model_from_json(teacher.to_json())
    assert copy.count_params() == teacher.count_params()
    assert [w.shape for w in copy.get_weights()] == [w.shape for w in teacher.get_weights()]
    assert not np.array_equal(copy.get_weights()[0], teacher.get_weights()[0])


def test_fit_generator_is_a_deprecated_alias_that_keras_3_dropped(lib):
    import keras as keras3

    model = _tiny_model(lib.keras)
    model.compile(optimizer="adam", loss=lib.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)

    def batches():
        while True:
            yield rng.normal(size=(4, 8, 8, 3)).astype("float32"), rng.integers(0, 3, size=4)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit_generator(batches(), steps_per_epoch=1, epochs=1, verbose=0)
    assert any("fit_generator" in str(w.message) and "deprecated" in str(w.message) for w in caught)
    assert int(keras3.__version__.split(".")[0]) >= 3 and not hasattr(keras3.Model, "fit_generator")


def test_there_is_no_models_function_and_no_experiment_switch(lib):
    tf = lib.tf
    assert not hasattr(tf.keras.models, "function")
    assert "experiment" not in _params(tf.function)
    model = _tiny_model(lib.keras)
    with pytest.raises(ValueError, match="experiment"):
        tf.keras.backend.function(model.inputs, model.outputs, experiment=True)


def test_compile_and_train_on_batch_are_training_methods_of_a_model(lib):
    tf = lib.tf
    for name in ("compile", "train_on_batch"):
        assert not hasattr(tf.keras.models, name)
        assert callable(getattr(tf.keras.Model, name))
    assert {"optimizer", "loss", "metrics"} <= _params(tf.keras.Model.compile)
    assert {"x", "y"} <= _params(tf.keras.Model.train_on_batch)
    # train_on_batch runs one gradient step: it changes the weights.
    model = _tiny_model(lib.keras)
    model.compile(optimizer="sgd", loss=lib.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = model.get_weights()[0].copy()
    model.train_on_batch(np.ones((2, 8, 8, 3), "float32"), np.array([0, 1]))
    assert not np.array_equal(before, model.get_weights()[0])


def test_exclude_from_sharding_and_connect_to_model_exist_nowhere(lib):
    tf, tfmot = lib.tf, lib.tfmot
    modules = [tf, tf.keras, tf.keras.models, tf.keras.layers, tf.keras.utils, tf.keras.backend, tf.keras.callbacks,
               tf.distribute, tf.lite, tfmot, tfmot.sparsity.keras, tfmot.quantization.keras,
               tfmot.clustering.keras, lib.litert, lib.interpreter]
    for name in ("ExcludeFromSharding", "connect_to_model"):
        found = [m.__name__ for m in modules if hasattr(m, name)]
        assert not found, f"{name} now exists in {found}: book/errata.md says it does not"
    for name in ("wrappers", "pruning"):
        assert not hasattr(tf.keras.models, name)


def _corrected_listing() -> str:
    text = ERRATA.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    listing = [b for b in blocks if b.startswith("# The corrected listing")]
    assert len(listing) == 1, "book/errata.md must hold one code block starting '# The corrected listing'"
    return listing[0]


def test_the_corrected_listing_runs(lib):
    from mobileopt_ref import data, litert

    keras = lib.keras
    namespace = {}
    exec(compile(_corrected_listing(), str(ERRATA), "exec"), namespace)  # noqa: S102 - the page's own code

    def small(width):  # a MobileNet-like block: the layers the listing's calls must handle
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False)(inputs)
        x = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(x))
        x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(x))
        x = keras.layers.Conv2D(2 * width, 1, use_bias=False)(x)
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.BatchNormalization()(x))
        return keras.Model(inputs, keras.layers.Dense(data.NUM_CLASSES)(x))

    images, labels = data.generate_patterns(128, 32, 0, split="train", epoch=0)[:2]
    tflite, student = namespace["compress"](small(16), small(8), images, labels, epochs=1, batch_size=32)
    kernels = [layer.get_weights()[0] for layer in student.layers if type(layer).__name__ in ("Conv2D", "Dense")]
    assert kernels and all(abs(np.mean(k == 0) - 0.5) < 0.02 for k in kernels)
    inp = lib.interpreter.Interpreter(model_content=tflite).get_input_details()[0]
    assert inp["dtype"] == np.int8  # full-integer
    out = litert.predict_tflite(tflite, images[:8])
    assert out.shape == (8, data.NUM_CLASSES) and np.all(np.isfinite(out))
