"""From Keras to ``.tflite`` and back: conversion, running and evaluating with LiteRT.

Models are converted with ``tf.lite.TFLiteConverter`` and run with
``ai_edge_litert.interpreter.Interpreter`` (``tf.lite.Interpreter`` is deprecated). The
interpreter can run three kernel sets, which matter for speed and for bit-exactness:

- ``"xnnpack"``: LiteRT's default, the XNNPACK delegate (SIMD kernels) where it applies;
- ``"builtin"``: LiteRT's optimized built-in kernels with no delegate;
- ``"reference"``: the plain reference kernels (slow, the definition of correct).

Quantized inputs and outputs are handled here: a real input ``x`` enters an int8 model
as ``q = clip(round(x / s + z), -128, 127)`` and an output ``q`` leaves it as
``x = s * (q - z)``, with the scale ``s`` and zero point ``z`` stored in the file.

Explained in notebooks/00_baseline.ipynb.

Example:
    >>> from mobileopt_ref import litert
    >>> tflite = litert.to_tflite(model)  # doctest: +SKIP
    >>> litert.evaluate_tflite(tflite, x_test, y_test)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gzip
import io
import logging
import os
import re
import struct
import tempfile
import warnings
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from mobileopt_ref import data, quantization
from mobileopt_ref._quiet import native_stderr_captured
from mobileopt_ref._keras import tf

KERNELS = {
    "xnnpack": OpResolverType.AUTO,
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    "reference": OpResolverType.BUILTIN_REF,
}
"""Kernel sets by name, mapped to LiteRT's op resolver types."""

_FLATBUFFER_ID = b"TFL3"


CONVERSIONS = ("float32", "float16", "dynamic_int8", "full_int8", "int16x8")
"""Converter-time quantization modes of :func:`to_tflite`.

- ``"float32"``: no quantization;
- ``"float16"``: weights stored as float16, dequantized to float32 when loaded;
- ``"dynamic_int8"``: int8 weights; activations quantized on the fly at run time;
- ``"full_int8"``: int8 weights and activations, int8 input and output, calibrated on a
  representative dataset (what integer-only accelerators need);
- ``"int16x8"``: int8 weights, int16 activations (calibrated), float input and output.
"""

RECIPES = ("dynamic_wi8_afp32", "static_wi8_ai8", "weight_only_wi4_afp32", "weight_only_wi8_afp32")
"""LiteRT Quantizer recipes that :func:`quantize_with_recipe` applies."""


def _representative(images, mode):
    if images is None:
        raise ValueError(f"{mode!r} needs representative_images (uint8 images to calibrate on)")
    images = data.check_pixels(images, "representative_images")
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"representative_images must be (n>0, h, w, 3), got {images.shape}")

    def dataset():
        for i in range(len(images)):
            yield [data.preprocess(images[i : i + 1])]

    return dataset


def _converter(model):
    """A converter for the model's inference function, frozen (weights as constants).

    ``TFLiteConverter.from_keras_model`` first exports a SavedModel, which traces every
    layer and takes about half a minute for any MobileNetV2 on two cores; converting the
    frozen graph of ``model(x, training=False)`` gives the same operators and outputs
    (tested) in a few seconds. The batch dimension stays dynamic.
    """
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([None, *model.input_shape[1:]], model.inputs[0].dtype, name="input")
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(function)
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # "providing without the trackable_obj is deprecated"
    try:
        return tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    finally:
        absl_logger.setLevel(level)


def _all_layers(model):
    """Every layer of a Keras model, nested models and wrapped layers included."""
    for layer in getattr(model, "layers", []):
        yield layer
        inner = getattr(layer, "layer", None)  # a wrapper's layer (tfmot, Bidirectional, ...)
        if inner is not None:
            yield inner
        if getattr(layer, "layers", None):
            yield from _all_layers(layer)


def _check_convertible(model) -> None:
    """Refuses what the converter would reject with an error deep inside TensorFlow."""
    if not (hasattr(model, "get_weights") and hasattr(model, "inputs") and hasattr(model, "input_shape")):
        raise ValueError(
            f"model must be a tf_keras model (from mobileopt_ref._keras), got {type(model).__name__}; "
            "for a .tflite file, use the functions that read one (read_graph, predict_tflite, ...)"
        )
    pruned = [layer.name for layer in _all_layers(model) if type(layer).__name__ == "PruneLowMagnitude"]
    if pruned:
        raise ValueError(
            f"model still has {len(pruned)} tfmot pruning wrapper(s) (e.g. {pruned[0]!r}): call "
            "tfmot.sparsity.keras.strip_pruning(model) before converting; the wrappers' mask and "
            "step variables cannot be frozen into a .tflite file"
        )
    if not model.inputs or len(model.inputs) != 1:
        raise ValueError(f"to_tflite converts models with one input, got {len(model.inputs or [])}")


def to_tflite(model, mode: str = "float32", *, representative_images=None, sparse: bool = False) -> bytes:
    """Converts a Keras model to a ``.tflite`` flatbuffer, optionally quantized.

    Uses ``tf.lite.TFLiteConverter``. Calibrated modes run the representative images
    through the float model to record each activation's range ``[min, max]``, from which
    the converter derives scales and zero points.

    Args:
        model: a ``tf_keras`` model.
        mode: one of :data:`CONVERSIONS`.
        representative_images: ``uint8`` images (preprocessed here with
            :func:`mobileopt_ref.data.preprocess`), required by ``"full_int8"`` and
            ``"int16x8"``; a few hundred suffice.
        sparse: also apply the converter's ``tf.lite.Optimize.EXPERIMENTAL_SPARSITY``:
            weights that are mostly zeros (pruned) are stored in LiteRT's sparse tensor
            format, only their non-zero values plus index arrays, and a ``DENSIFY``
            operator restores them when the model is prepared. The file shrinks; whether
            inference gets faster is up to the runtime (XNNPACK runs dense kernels on x86
            CPUs with AVX, see the pruning chapter).

    Conversions are cached (:func:`conversion_key`: architecture, weights, settings,
    calibration images, TensorFlow version) in the model cache's ``tflite/`` folder, each
    entry verified by its SHA-256 and written atomically; ``MOBILEOPT_TFLITE_CACHE=0``
    turns the cache off.

    Returns:
        The ``.tflite`` file content.

    Raises:
        ValueError: for an unknown mode; missing calibration images or images that are not
            pixels (already preprocessed, say); a model that is not a ``tf_keras`` model,
            has more than one input, or still carries tfmot's pruning wrappers (call
            ``strip_pruning`` first).
    """
    if mode not in CONVERSIONS:
        raise ValueError(f"mode must be one of {CONVERSIONS}, got {mode!r}")
    _check_convertible(model)
    if mode in ("full_int8", "int16x8"):
        _representative(representative_images, mode)  # checks them before any work
    key = conversion_key(model, mode, representative_images=representative_images, sparse=sparse)
    if key is None:
        return _convert(model, mode, representative_images, sparse)
    cached = _read_conversion(key)
    if cached is not None:
        return cached
    content = _convert(model, mode, representative_images, sparse)
    _write_conversion(key, content, mode)
    return content


TFLITE_CACHE_ENV = "MOBILEOPT_TFLITE_CACHE"
"""Set to ``0`` to convert every time instead of using the conversion cache."""

_TFLITE_FILE = "model.tflite"
_TFLITE_META = "meta.json"


def conversion_key(model, mode: str, *, representative_images=None, sparse: bool = False) -> str | None:
    """The conversion cache key of a Keras model and conversion settings, or ``None``.

    SHA-256 over the model's architecture (``model.to_json()``, layer names included), the
    shapes, dtypes and bytes of its weights, the mode, the sparse flag, the calibration
    images (shape and bytes, for calibrated modes) and the TensorFlow version: two
    conversions with the same key are conversions of the same network, names, weights and
    settings by the same converter, so they give the same bytes. The names stay in the key
    because the converter writes them into the file (tensor names such as
    ``serving_default_input_3:0``) and Keras numbers the names it makes up per session: a
    key without them let one chapter's conversion, carrying another process's names, stand
    in for its own, and the file's size then depended on what had run before (a distilled
    and a plain student, the same architecture, came out a few bytes apart). ``None`` when
    the model cannot describe its architecture (a subclassed model): it is converted, not
    cached.
    """
    import hashlib  # noqa: PLC0415

    from mobileopt_ref import models  # noqa: PLC0415 - models imports this module's users

    try:
        architecture = model.to_json()
    except (NotImplementedError, TypeError, ValueError, AttributeError):
        return None
    h = hashlib.sha256()
    for part in (architecture, models.weights_digest(model.get_weights()), mode, str(bool(sparse)),
                 tf.__version__, "tflite-cache-3"):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    if mode in ("full_int8", "int16x8"):
        images = np.ascontiguousarray(representative_images)
        h.update(f"{images.dtype.str}{images.shape}".encode())
        h.update(images.tobytes())
    return h.hexdigest()


def _conversion_folder(key: str) -> Path:
    from mobileopt_ref import models  # noqa: PLC0415

    return models.default_cache_dir() / "tflite" / key[:32]


def _read_conversion(key: str) -> bytes | None:
    """The cached conversion for ``key`` if it is there and verified, else ``None``.

    A missing, partial or corrupt entry (wrong key, size or SHA-256) is never used; it is
    rebuilt and replaced.
    """
    import hashlib  # noqa: PLC0415
    import json  # noqa: PLC0415

    if os.environ.get(TFLITE_CACHE_ENV, "1") == "0":
        return None
    folder = _conversion_folder(key)
    try:
        meta = json.loads((folder / _TFLITE_META).read_text(encoding="utf-8"))
        content = (folder / _TFLITE_FILE).read_bytes()
    except (OSError, ValueError):
        return None
    if (not isinstance(meta, dict) or meta.get("key") != key or meta.get("size") != len(content)
            or meta.get("sha256") != hashlib.sha256(content).hexdigest()):
        return None
    return content


def _write_conversion(key: str, content: bytes, mode: str) -> None:
    """Stores a conversion atomically (one folder rename); a failure to write is not fatal."""
    import hashlib  # noqa: PLC0415
    import json  # noqa: PLC0415

    from mobileopt_ref import models  # noqa: PLC0415

    if os.environ.get(TFLITE_CACHE_ENV, "1") == "0":
        return
    meta = {"key": key, "mode": mode, "size": len(content), "sha256": hashlib.sha256(content).hexdigest(),
            "tensorflow": tf.__version__}

    def fill(tmp: Path) -> None:
        (tmp / _TFLITE_FILE).write_bytes(content)
        (tmp / _TFLITE_META).write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")

    try:
        models._replace_folder(_conversion_folder(key), fill)  # noqa: SLF001 - the cache's one writer
    except OSError:
        pass  # a read-only cache folder: the conversion is still returned


def _convert(model, mode: str, representative_images, sparse: bool) -> bytes:
    """The conversion itself (see :func:`to_tflite`)."""
    converter = _converter(model)
    optimizations = [] if mode == "float32" else [tf.lite.Optimize.DEFAULT]
    if sparse:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    if optimizations:
        converter.optimizations = optimizations
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "full_int8":
        converter.representative_dataset = _representative(representative_images, mode)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif mode == "int16x8":
        converter.representative_dataset = _representative(representative_images, mode)
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    with native_stderr_captured(), warnings.catch_warnings():
        # "Statistics for quantized inputs were expected": the input scale comes from
        # the representative data instead, which is what we want.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return _with_signature(converter.convert())


def _with_signature(content: bytes) -> bytes:
    """Adds the ``serving_default`` signature (input ``"input"``, output ``"output"``).

    The frozen-graph conversion writes none, but signature-based tools (LiteRT
    Quantizer's calibrator, ``Interpreter.get_signature_runner``) need one.
    """
    flat = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    if flat.signatureDefs:
        return content
    subgraph = flat.subgraphs[0]
    signature = schema.SignatureDefT()
    signature.signatureKey = "serving_default"
    signature.subgraphIndex = 0
    signature.inputs, signature.outputs = [], []
    for names, indices, target in (("input", subgraph.inputs, signature.inputs),
                                   ("output", subgraph.outputs, signature.outputs)):
        for i, index in enumerate(indices):
            entry = schema.TensorMapT()
            entry.name = names if len(indices) == 1 else f"{names}_{i}"
            entry.tensorIndex = int(index)
            target.append(entry)
    flat.signatureDefs = [signature]
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(flat.Pack(builder), file_identifier=_FLATBUFFER_ID)
    return bytes(builder.Output())


def quantize_with_recipe(
    float_model, recipe: str, *, calibration_images=None, calibration_batch_size: int | None = None
) -> bytes:
    """Quantizes a float ``.tflite`` model with a LiteRT Quantizer recipe.

    LiteRT Quantizer (``litert_quantizer``) works on the float ``.tflite`` file rather
    than in the converter, which LiteRT's documentation now recommends. Recipe names
    read: ``wi8`` int8 weights (per channel), ``afp32`` float activations, ``ai8`` int8
    activations (calibrated), ``weight_only`` weights dequantized to float before use,
    ``dynamic`` activations quantized at run time.

    Calibration records each activation's ``[min, max]`` per calibration batch and, by
    LiteRT Quantizer's default, blends successive batches with a moving average
    (``0.95 * old + 0.05 * new``), not the running extremes the converter keeps. With one
    image per batch that gives ranges much narrower than the calibration set's; by
    default all images go in one batch here, which gives the set's global ``[min, max]``
    as the converter does.

    Args:
        float_model: float32 ``.tflite`` bytes or path (its batch dimension dynamic).
        recipe: one of :data:`RECIPES`.
        calibration_images: ``uint8`` images, required by ``"static_wi8_ai8"``.
        calibration_batch_size: images per calibration batch; ``None`` means all at once.

    Returns:
        The quantized ``.tflite`` content (its input and output stay float32).

    Raises:
        ValueError: for an unknown recipe, missing calibration images, or a model that is
            not float32 (int8, float16 or otherwise quantized already).
    """
    from litert_quantizer import quantizer as litert_quantizer
    from litert_quantizer import recipe as recipes

    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    content = read_tflite(float_model)
    graphs = [read_graph(select_signature(content, key)) for key in signatures(content)] \
        if len(signatures(content)) > 1 else [read_graph(content)]
    done = next((t for g in graphs for t in g.tensors if t.quantized or t.dtype is np.float16), None)
    if done is not None:  # LiteRT Quantizer would leave such tensors as they are, silently
        raise ValueError(
            f"quantize_with_recipe needs a float32 model; this one is quantized already: tensor "
            f"{done.name!r} is {getattr(done.dtype, '__name__', done.dtype)}"
            f"{' with a scale' if done.quantized else ''}"
        )
    qt = litert_quantizer.Quantizer(bytearray(content))
    qt.load_quantization_recipe(getattr(recipes, recipe)())
    calibration = None
    if qt.need_calibration:
        interpreter = make_interpreter(content)
        (input_name,) = interpreter.get_signature_runner().get_input_details().keys()
        _representative(calibration_images, recipe)  # validates the images
        images = np.asarray(calibration_images)
        size = len(images) if calibration_batch_size is None else calibration_batch_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"calibration_batch_size must be a positive integer, got {calibration_batch_size!r}")
        batches = [
            {input_name: data.preprocess(images[i : i + size])} for i in range(0, len(images), size)
        ]
        # The calibrator draws a progress bar and warns about its debugging mode.
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calibration = qt.calibrate({"serving_default": batches}, num_threads=2)
    # The quantizer draws progress bars on sys.stderr and logs from C++ on fd 2.
    with native_stderr_captured(), contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = qt.quantize(calibration, enable_progress_report=False, enable_progress_bar=False)
    return bytes(result.quantized_model)


def read_tflite(model) -> bytes:
    """Returns the bytes of a ``.tflite`` model given as bytes or as a path.

    Checks the flatbuffer file identifier ``TFL3`` at byte offset 4, so that a file of
    another kind fails here with a clear message rather than deep in the interpreter.

    Args:
        model: ``bytes`` (file content) or a path to a ``.tflite`` file.

    Raises:
        FileNotFoundError: if the path does not exist.
        ValueError: if the content is empty or not a ``.tflite`` flatbuffer, or ends before
            its tables and weights do (a truncated file).
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        content, source = bytes(model), "the given bytes"
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"no .tflite file at {path}")
        content, source = path.read_bytes(), str(path)
    else:
        raise ValueError(
            f"a model must be .tflite bytes or a path to a .tflite file, got {type(model).__name__}"
        )
    if len(content) < 8 or content[4:8] != _FLATBUFFER_ID:
        raise ValueError(
            f"{source} is not a .tflite model: a LiteRT flatbuffer carries the identifier "
            f"'TFL3' at byte offset 4 ({len(content)} bytes given)"
        )
    _check_complete(content, source)
    return content


def _check_complete(content: bytes, source: str) -> None:
    """Refuses a flatbuffer whose tables or weights reach past its end (a truncated file).

    Every table is read (:func:`_parse`, about 20 ms for a 14 MB model: a file cut by a
    single byte loses part of a table the converter wrote first, which sits at the end),
    and so is the extent of every buffer stored outside the flatbuffer (models over 2 GB).
    """
    try:
        _parse(content)
        root = schema.Model.GetRootAsModel(content, 0)
        for i in range(root.BuffersLength()):
            buffer = root.Buffers(i)
            if buffer.Offset() > 1 and buffer.Offset() + buffer.Size() > len(content):
                raise ValueError(f"buffer {i} ends at byte {buffer.Offset() + buffer.Size()}")
    except (struct.error, IndexError, ValueError) as err:
        raise ValueError(
            f"{source}: not a complete .tflite model ({len(content)} bytes; truncated or corrupt?): {err}"
        ) from err


def _parse(content: bytes):
    """The flatbuffer of a ``.tflite`` as LiteRT's schema objects (``schema.ModelT``).

    Raises:
        ValueError: for content the schema cannot parse (a truncated file, say) or a model
            without a subgraph.
    """
    try:
        flat = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    except (struct.error, IndexError, ValueError, TypeError) as err:
        raise ValueError(
            f"the .tflite flatbuffer cannot be parsed ({len(content)} bytes; truncated or corrupt?): {err}"
        ) from err
    if not flat.subgraphs:
        raise ValueError("the .tflite model has no subgraph: no operators or tensors to read")
    return flat


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def signatures(model) -> dict:
    """The signatures of a model and the subgraph each runs.

    A language model exported for LiteRT-LM has two, ``prefill`` and ``decode``, each its
    own subgraph sharing the weights; a classifier converted from Keras has one
    (``serving_default``); a file written by other tools may have none.

    Args:
        model: ``.tflite`` bytes or path.

    Returns:
        ``{signature key: subgraph index}`` in file order (empty without signatures).

    Raises:
        ValueError: for content that is not a complete ``.tflite`` model.
    """
    flat = _parse(read_tflite(model))
    return {_text(s.signatureKey): int(s.subgraphIndex) for s in flat.signatureDefs or []}


def _main_subgraph(flat, caller: str):
    """The one subgraph of a model; a ValueError saying how to choose one otherwise.

    The library reads one graph at a time. A file with several signatures (prefill and
    decode) is cut to one with :func:`select_signature`; other extra subgraphs are
    control-flow bodies (``WHILE``, ``IF``), whose operators a count of subgraph 0 would
    silently leave out.
    """
    if len(flat.subgraphs) == 1:
        return flat.subgraphs[0]
    keys = {_text(s.signatureKey): int(s.subgraphIndex) for s in flat.signatureDefs or []}
    if len(keys) > 1:
        listed = ", ".join(f"{key!r} (subgraph {index})" for key, index in keys.items())
        raise ValueError(
            f"{caller} reads one graph at a time; this model has {len(flat.subgraphs)} subgraphs with "
            f"signatures {listed}: choose one with litert.select_signature(model, {next(iter(keys))!r})"
        )
    raise ValueError(
        f"{caller} reads models with one subgraph; this one has {len(flat.subgraphs)} (control flow "
        "such as WHILE or IF keeps its bodies in subgraphs of their own, which the library does not analyse)"
    )


def check_one_graph(model, caller: str) -> bytes:
    """Returns the model's bytes if it has one subgraph; refuses it otherwise.

    Args:
        model: ``.tflite`` bytes or path.
        caller: the public function's name, for the message.

    Raises:
        ValueError: for content that is not a complete ``.tflite``, or a model with several
            subgraphs (several signatures: the message names them and
            :func:`select_signature`; or control flow).
    """
    content = read_tflite(model)
    root = schema.Model.GetRootAsModel(content, 0)
    if root.SubgraphsLength() != 1:
        _main_subgraph(_parse(content), caller)
    return content


def select_signature(model, key: str) -> bytes:
    """A model with one signature of a multi-signature file, as a file of its own.

    The chosen signature's subgraph becomes the only one (so the interpreter runs it by
    default and every function of the library reads it); the buffers it does not use are
    dropped, so :func:`model_size` counts what that signature needs. Signatures of a
    LiteRT-LM model share their weights: each selected file holds all of them.

    Args:
        model: ``.tflite`` bytes or path.
        key: a signature key of the model (see :func:`signatures`).

    Returns:
        ``.tflite`` bytes with one subgraph and one signature, ``key``.

    Raises:
        ValueError: for a key the model does not have (the message lists the keys), or a
            model with control-flow subgraphs besides its signatures'.
    """
    content = read_tflite(model)
    flat = _parse(content)
    by_key = {_text(s.signatureKey): s for s in flat.signatureDefs or []}
    if key not in by_key:
        raise ValueError(f"no signature {key!r} in this model; it has {sorted(by_key) or 'none'}")
    if len(flat.subgraphs) != len(by_key):
        raise ValueError(
            f"this model has {len(flat.subgraphs)} subgraphs for {len(by_key)} signatures (control flow): "
            "select_signature cuts only models whose subgraphs are all signatures"
        )
    signature = by_key[key]
    subgraph = flat.subgraphs[signature.subgraphIndex]
    kept = sorted({0, *(t.buffer for t in subgraph.tensors), *(m.buffer for m in flat.metadata or [])})
    renumber = {old: new for new, old in enumerate(kept)}
    for tensor in subgraph.tensors:
        tensor.buffer = renumber[tensor.buffer]
    for entry in flat.metadata or []:
        entry.buffer = renumber[entry.buffer]
    flat.buffers = [flat.buffers[old] for old in kept]
    for buffer in flat.buffers:
        # Data stored after the flatbuffer (LiteRT Quantizer writes weights there, found by
        # offset and size) would point past the end of the new, shorter file: carry it inline.
        if buffer is not None and getattr(buffer, "offset", 0) > 1:
            buffer.data = np.frombuffer(content[buffer.offset : buffer.offset + buffer.size], dtype=np.uint8)
            buffer.offset, buffer.size = 0, 0
    flat.subgraphs = [subgraph]
    signature.subgraphIndex = 0
    flat.signatureDefs = [signature]
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(flat.Pack(builder), file_identifier=_FLATBUFFER_ID)
    return bytes(builder.Output())


def make_interpreter(model, *, num_threads: int = 2, kernels: str = "xnnpack") -> Interpreter:
    """Creates a LiteRT interpreter with its tensors allocated.

    Args:
        model: ``.tflite`` bytes or path.
        num_threads: CPU threads for the kernels (a positive integer).
        kernels: one of :data:`KERNELS`.

    Raises:
        FileNotFoundError: if a path does not exist.
        ValueError: for content that is not a valid (for example truncated) model, a bad
            thread count or an unknown kernel set.
    """
    content = read_tflite(model)
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {sorted(KERNELS)}, got {kernels!r}")
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
    try:
        # LiteRT announces the XNNPACK delegate on fd 2 at every creation; keep it quiet.
        with native_stderr_captured():
            interpreter = Interpreter(
                model_content=content,
                num_threads=num_threads,
                experimental_op_resolver_type=KERNELS[kernels],
            )
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise ValueError(
            f"LiteRT could not load this model ({len(content)} bytes; truncated or "
            f"corrupt?): {err}"
        ) from err
    return interpreter


ACCELERATORS = ("cpu", "gpu", "npu")
"""Hardware a LiteRT ``CompiledModel`` can be asked to run on."""


def accelerator_status(model, accelerator: str) -> str:
    """Tries to compile a model for one accelerator with LiteRT's ``CompiledModel`` API.

    Phones run models on their GPU or NPU through the same runtime:
    ``CompiledModel.from_buffer(content, options=Options(hardware_accelerators=...))``
    with ``HardwareAccelerator.GPU`` or ``NPU``, combined with ``CPU`` for the operators the
    accelerator cannot run. This reports what happens here, without falling back: a
    machine without a GPU driver or an NPU dispatch library refuses.

    Args:
        model: ``.tflite`` bytes or path.
        accelerator: one of :data:`ACCELERATORS`.

    Returns:
        ``"available"``, or ``"not available: <the runtime's reason, first line>"``.

    Raises:
        ValueError: for an unknown accelerator or a model that is not a ``.tflite`` (or cannot be
            parsed: a truncated file is refused here, not reported as "not available").
    """
    from ai_edge_litert.compiled_model import CompiledModel  # noqa: PLC0415
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator  # noqa: PLC0415
    from ai_edge_litert.options import CpuOptions, Options  # noqa: PLC0415

    if accelerator not in ACCELERATORS:
        raise ValueError(f"accelerator must be one of {ACCELERATORS}, got {accelerator!r}")
    content = read_tflite(model)
    _parse(content)
    options = Options(
        hardware_accelerators=getattr(HardwareAccelerator, accelerator.upper()),
        cpu_options=CpuOptions(num_threads=1),
    )
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)  # the runtime logs its probing (paths, plugins) to fd 2
        try:
            CompiledModel.from_buffer(content, options=options)
            return "available"
        except RuntimeError as err:
            log.seek(0)
            lines = str(err).splitlines() + log.read().decode("utf-8", errors="replace").splitlines()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return f"not available: {_runtime_reason(lines)}"


def _runtime_reason(lines) -> str:
    """The most telling line of a LiteRT error and its log, without locations or paths."""
    cleaned = []
    for line in lines:
        text = re.sub(r"\[[^\]]*\]|^[\s\u2514]*|^[EWI]\d{4} [\d:.]+\s+\d+ \S+\]", "", line)
        text = re.sub(r"^(ERROR|WARNING|INFO):\s*", "", text.strip()).strip()
        if text and "/" not in text and not text.startswith("at "):
            cleaned.append(text)
    for clue in ("No adapters found", "not accelerated", "could not be loaded", "Failed"):
        for text in cleaned:
            if clue in text:
                return text
    return cleaned[0] if cleaned else "the runtime gave no reason"


def execution_plan(model, *, kernels: str = "xnnpack", num_threads: int = 2) -> dict:
    """Counts the nodes of the interpreter's graph by operator name, delegates included.

    The file's operators are all listed, and every partition of the graph the XNNPACK
    delegate takes over adds one ``"DELEGATE"`` node (the operators inside it are then not
    run by LiteRT). So the ``"DELEGATE"`` count says how many pieces XNNPACK runs: a model
    with none gets no XNNPACK speed-up, and many pieces mean operators XNNPACK could not
    take sit between them, running on LiteRT's built-in kernels.

    Args:
        model: ``.tflite`` bytes or path.
        kernels: one of :data:`KERNELS`.
        num_threads: interpreter threads.

    Returns:
        ``{op name: count}``.
    """
    interpreter = make_interpreter(check_one_graph(model, "execution_plan"), num_threads=num_threads, kernels=kernels)
    counts: dict = {}
    for node in interpreter._get_ops_details():  # the only view of the delegated plan
        counts[node["op_name"]] = counts.get(node["op_name"], 0) + 1
    return counts


INPUT_ROUNDING = {"half_away": "reference", "half_even": "builtin and xnnpack"}
"""How LiteRT's ``QUANTIZE`` kernels round ``x / s`` (float32) to an integer, by kernel set."""


def delegated_ops(model, *, num_threads: int = 2) -> dict:
    """Which operators XNNPACK runs and which stay on LiteRT's built-in kernels.

    LiteRT's node list keeps every operator of the file and adds one ``DELEGATE`` node per
    partition XNNPACK takes (:func:`execution_plan`); the operators inside a partition are
    not run by LiteRT. An operator runs outside every partition exactly when one of its
    outputs is read by a partition (a ``DELEGATE`` node's input), is a model output that
    no partition writes, or is read by another operator outside every partition; the rest
    sit inside a partition (an output a partition writes is the partition's own).

    Args:
        model: ``.tflite`` bytes or path with one subgraph.
        num_threads: interpreter threads.

    Returns:
        ``{"partitions": int, "delegated": [op indices], "not_delegated": [op indices]}``,
        indices in execution order.

    Raises:
        ValueError: for content that is not a ``.tflite`` model, or a model with several
            subgraphs.
    """
    content = check_one_graph(model, "delegated_ops")
    nodes = make_interpreter(content, num_threads=num_threads, kernels="xnnpack")._get_ops_details()
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    ops = [n for n in nodes if n["op_name"] != "DELEGATE"]
    read_by_delegate = {int(t) for n in delegates for t in n["inputs"]}
    written_by_delegate = {int(t) for n in delegates for t in n["outputs"]}
    graph_outputs = set(read_graph(content).outputs)
    consumers: dict = {}
    for op in ops:
        for t in op["inputs"]:
            consumers.setdefault(int(t), []).append(op["index"])
    outside: set = set()
    changed = True
    while changed:
        changed = False
        for op in ops:
            if op["index"] in outside:
                continue
            for t in (int(t) for t in op["outputs"]):
                if t in written_by_delegate:  # a partition's output: this operator is inside it
                    continue
                if t in read_by_delegate or t in graph_outputs or any(c in outside for c in consumers.get(t, [])):
                    outside.add(op["index"])
                    changed = True
                    break
    order = [op["index"] for op in ops]
    return {"partitions": len(delegates), "delegated": [i for i in order if i not in outside],
            "not_delegated": [i for i in order if i in outside]}


def quantize_input(x: np.ndarray, detail: dict, *, rounding: str = "half_away") -> np.ndarray:
    """Converts real values to a tensor's dtype as LiteRT's ``QUANTIZE`` operator does.

    ``q = clip(round(x / s) + z, qmin, qmax)``: the division in float32, *then* the
    zero point added. The rounding depends on the kernel set, like everything int8:

    - ``"half_away"`` (default): halves away from zero, C's ``std::round``, as LiteRT's
      reference ``AffineQuantize`` (``tensorflow/lite/kernels/internal/reference/quantize.h``,
      ``TfLiteRound``); the kernel set that defines bit-exactness in this library.
    - ``"half_even"``: halves to even in float32, what the optimized built-in kernels and
      XNNPACK were measured to do (``tests/test_inputs.py`` checks both against LiteRT on
      every pixel value).

    Only values on an exact half step tell them apart, and the book's preprocessing puts
    pixels there: with ``x = p / 127.5 - 1`` and an int8 input of ``s = 2/255``, ``z = -1``,
    ``x / s = p - 127.5``. Adding ``z`` before rounding, ``round(x / s + z)``, is a third,
    different rule that no LiteRT kernel follows.

    Args:
        x: real values, any shape (cast to float32).
        detail: the tensor's entry of ``get_input_details()``: ``dtype``,
            ``quantization`` ``(scale, zero_point)`` and ``name``.
        rounding: one of :data:`INPUT_ROUNDING`.

    Returns:
        An array of the tensor's dtype. A float tensor gets ``x`` cast to its dtype.

    Raises:
        ValueError: for an integer tensor without a quantization scale, a ``detail``
            without the keys above, or an unknown rounding.
    """
    if rounding not in INPUT_ROUNDING:
        raise ValueError(f"rounding must be one of {tuple(INPUT_ROUNDING)}, got {rounding!r}")
    try:
        dtype = np.dtype(detail["dtype"])
        scale, zero_point = detail["quantization"] if np.issubdtype(dtype, np.integer) else (0.0, 0)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            "detail must be a tensor's entry of Interpreter.get_input_details() (with 'dtype' "
            f"and 'quantization'), got {detail!r}"
        ) from err
    if not np.issubdtype(dtype, np.integer):
        return np.asarray(x, dtype=dtype)
    if scale == 0:
        raise ValueError(f"tensor {detail.get('name')!r} is integer but has no quantization scale")
    info = np.iinfo(dtype)
    ratio = np.asarray(x, dtype=np.float32) / np.float32(scale)
    whole = quantization.round_half_away(ratio) if rounding == "half_away" else np.rint(ratio)
    return np.clip(whole + int(zero_point), info.min, info.max).astype(dtype)


def dequantize_output(q: np.ndarray, detail: dict) -> np.ndarray:
    """Converts a tensor's values to real numbers: ``x = s * (q - z)``."""
    if not np.issubdtype(detail["dtype"], np.integer):
        return np.asarray(q, dtype=np.float32)
    scale, zero_point = detail["quantization"]
    return (scale * (q.astype(np.float32) - zero_point)).astype(np.float32)


def predict_tflite(
    model,
    images: np.ndarray,
    *,
    batch_size: int = 100,
    num_threads: int = 2,
    kernels: str = "xnnpack",
) -> np.ndarray:
    """Runs a ``.tflite`` classifier on ``uint8`` images and returns real-valued outputs.

    Images are preprocessed with :func:`mobileopt_ref.data.preprocess`, quantized if the
    model's input is integer (:func:`quantize_input`, as LiteRT's ``QUANTIZE`` does), run
    in batches by :func:`run_batches` and the outputs dequantized.

    Args:
        model: ``.tflite`` bytes or path.
        images: ``(n, h, w, 3)`` pixels (whole numbers 0-255, see
            :func:`mobileopt_ref.data.check_pixels`) matching the model's input size.
        batch_size: images per invoke.
        num_threads: interpreter threads.
        kernels: one of :data:`KERNELS`.

    Returns:
        ``float32`` array ``(n, outputs)``.

    Raises:
        ValueError: for an invalid model, images of the wrong shape, or values that are
            not pixels (images already preprocessed, for example); a model with more than
            one input or subgraph (:func:`select_signature`), or whose input is not an
            image (a vector, token ids).
    """
    images = data.check_pixels(images)
    content = check_one_graph(model, "predict_tflite")
    interpreter = make_interpreter(content, num_threads=num_threads, kernels=kernels)
    inp = _single_input(interpreter, "predict_tflite")
    _check_image_input(inp, "predict_tflite")
    _check_batch_shape(images, inp, "images")
    # Preprocessed batch by batch: 2,000 float images at 224 px would take 1.2 GB at once.
    return _invoke_batches(interpreter, len(images), batch_size,
                           lambda start, stop: quantize_input(data.preprocess(images[start:stop]), inp))


def _check_image_input(inp: dict, caller: str) -> None:
    """Refuses an input that does not take images: rank 4 (batch, height, width, 1 or 3
    channels), float or quantized integers (not token ids)."""
    shape, dtype = tuple(int(d) for d in inp["shape"]), np.dtype(inp["dtype"])
    floating = np.issubdtype(dtype, np.floating)
    quantized = dtype in (np.int8, np.uint8) and inp["quantization"][0] > 0
    if len(shape) != 4 or shape[-1] not in (1, 3) or not (floating or quantized):
        kind = "token ids or indices" if np.issubdtype(dtype, np.integer) and not quantized else dtype.name
        raise ValueError(
            f"{caller} runs image models (an input of shape (n, height, width, 1 or 3), float or "
            f"int8/uint8 quantized); this model's input {inp['name']!r} is {shape} {kind}: feed "
            "inputs you prepared with run_batches"
        )


def _check_batch_shape(x, inp: dict, name: str) -> None:
    expected = tuple(int(d) for d in inp["shape"][1:])
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected or len(x) == 0:
        raise ValueError(
            f"{name} must have shape (n>0, {', '.join(map(str, expected))}) for this model, got {x.shape}"
        )


def _single_input(interpreter, caller: str) -> dict:
    """The input details of a model with one input; a ValueError naming the inputs otherwise."""
    details = interpreter.get_input_details()
    if len(details) != 1:
        names = ", ".join(repr(d["name"]) for d in details)
        raise ValueError(
            f"{caller} runs models with one input; this one has {len(details)} ({names}): set each "
            "with Interpreter.set_tensor on an interpreter from make_interpreter"
        )
    return details[0]


def run_batches(model, inputs: np.ndarray, *, batch_size: int = 100, num_threads: int = 2,
                kernels: str = "xnnpack") -> np.ndarray:
    """Runs a single-input, single-output model on inputs already in its input dtype.

    For inputs prepared by hand (integer inputs quantized another way, say). The input is
    resized to ``batch_size`` (a batch size fixed in the file is kept); the last batch is
    padded with zeros and the padding's outputs dropped. Outputs are dequantized
    (:func:`dequantize_output`).

    Args:
        model: ``.tflite`` bytes or path, or an ``ai_edge_litert`` ``Interpreter`` from
            :func:`make_interpreter`.
        inputs: ``(n, ...)`` array of the input tensor's dtype and per-example shape.
        batch_size: examples per invoke (positive).
        num_threads, kernels: as in :func:`make_interpreter` (ignored for an interpreter).

    Returns:
        ``float32`` array ``(n, ...)`` of the first output.

    Raises:
        ValueError: for inputs of another dtype or shape, a bad batch size, or a model with
            more than one input.
    """
    interpreter = model if isinstance(model, Interpreter) else \
        make_interpreter(check_one_graph(model, "run_batches"), num_threads=num_threads, kernels=kernels)
    inp = _single_input(interpreter, "run_batches")
    inputs = np.asarray(inputs)
    _check_batch_shape(inputs, inp, "inputs")
    if inputs.dtype != inp["dtype"]:
        raise ValueError(f"inputs must be {np.dtype(inp['dtype']).name} for this model, got {inputs.dtype}")
    return _invoke_batches(interpreter, len(inputs), batch_size, lambda start, stop: inputs[start:stop])


def _invoke_batches(interpreter, n: int, batch_size: int, get_batch) -> np.ndarray:
    """Invokes ``interpreter`` on ``get_batch(start, stop)`` for consecutive batches."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    inp = interpreter.get_input_details()[0]
    batch_size = min(batch_size, n)
    if len(inp["shape_signature"]) and inp["shape_signature"][0] > 0:
        batch_size = int(inp["shape_signature"][0])  # fixed in the file (a RESHAPE may rely on it)
    expected = tuple(int(d) for d in inp["shape"][1:])
    interpreter.resize_tensor_input(inp["index"], [batch_size, *expected])
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    outputs = []
    for start in range(0, n, batch_size):
        batch = get_batch(start, min(start + batch_size, n))
        valid = len(batch)
        if valid < batch_size:  # pad the last batch; the padding's outputs are dropped
            batch = np.concatenate([batch, np.zeros((batch_size - valid, *expected), dtype=batch.dtype)])
        interpreter.set_tensor(inp["index"], batch)
        interpreter.invoke()
        outputs.append(dequantize_output(interpreter.get_tensor(out["index"]), out)[:valid])
    return np.concatenate(outputs)


def evaluate_tflite(model, images: np.ndarray, labels: np.ndarray, **kwargs) -> float:
    """Returns the top-1 accuracy of a ``.tflite`` classifier.

    Args:
        model: ``.tflite`` bytes or path.
        images: ``uint8`` images.
        labels: integer labels, one per image.
        **kwargs: passed to :func:`predict_tflite`.

    Raises:
        ValueError: if images and labels differ in length, or as :func:`predict_tflite`.
    """
    labels = np.asarray(labels)
    if len(labels) != len(images):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels")
    outputs = predict_tflite(model, images, **kwargs)
    return float(np.mean(np.argmax(outputs, axis=1) == labels))


def model_size(model) -> int:
    """Returns the size in bytes of a ``.tflite`` model (bytes or path)."""
    return len(read_tflite(model))


def gzip_size(model) -> int:
    """Returns the size in bytes of the model compressed with gzip (level 9).

    This is what an app download or an APK's compressed asset costs; it is where
    pruned (sparse) weights pay off, because runs of zeros compress well.
    """
    return len(gzip.compress(read_tflite(model), compresslevel=9, mtime=0))


# ---------------------------------------------------------------------------------------
# Reading a .tflite file: its operators, tensors, weights and quantization parameters
# ---------------------------------------------------------------------------------------


def _enum_names(enum_class) -> dict:
    return {value: name for name, value in vars(enum_class).items() if not name.startswith("_")}


_TENSOR_DTYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "INT8": np.int8,
    "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_,
    "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64, "COMPLEX64": np.complex64,
    "COMPLEX128": np.complex128,
}

SUB_BYTE_BITS = {"INT4": 4, "INT2": 2}
"""Bits per element of the packed sub-byte types (two int4 or four int2 values per byte,
as LiteRT Quantizer stores int4 and int2 weights)."""

_OTHER_BITS = {"BFLOAT16": 16}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One tensor of a ``.tflite`` graph.

    Attributes:
        index: position in the subgraph's tensor list (the interpreter's tensor index).
        name: the converter's name for it (often the Keras layer path).
        shape: static shape.
        dtype: numpy dtype, or the schema's type name (``"INT4"``) when numpy has none.
        scales: quantization scales (empty for a float tensor; one per channel when
            per-axis).
        zero_points: quantization zero points, same length as ``scales``.
        quantized_dimension: the channel axis of per-axis parameters.
        data: the constant's values (weights, biases) as stored, or ``None`` for a tensor
            computed at run time. Packed sub-byte types are returned as raw ``uint8``.
        sparse: whether the constant is stored in LiteRT's sparse tensor format (see
            ``to_tflite(..., sparse=True)``); ``data`` then holds only the stored values,
            flat, in the format's traversal order, and a ``DENSIFY`` operator rebuilds
            the dense tensor of ``shape`` when the model is prepared.
    """

    index: int
    name: str
    shape: tuple
    dtype: object
    scales: np.ndarray = dataclasses.field(repr=False)
    zero_points: np.ndarray = dataclasses.field(repr=False)
    quantized_dimension: int = 0
    data: np.ndarray | None = dataclasses.field(default=None, repr=False)
    sparse: bool = False

    @property
    def quantized(self) -> bool:
        """Whether the tensor carries quantization parameters."""
        return len(self.scales) > 0

    @property
    def dtype_name(self) -> str:
        """Name of the element type, numpy's (``"int8"``) or the schema's (``"INT4"``)."""
        return self.dtype if isinstance(self.dtype, str) else np.dtype(self.dtype).name

    @property
    def bits(self) -> int:
        """Number of bits per element (4 for ``INT4``, 2 for ``INT2``, else 8 x the numpy item size).

        Raises:
            ValueError: for a type without a fixed size (``STRING``, ``RESOURCE``, ``VARIANT``).
        """
        if not isinstance(self.dtype, str):
            return 8 * np.dtype(self.dtype).itemsize
        bits = SUB_BYTE_BITS.get(self.dtype, _OTHER_BITS.get(self.dtype))
        if bits is None:
            raise ValueError(f"tensor {self.index} ({self.name!r}) is {self.dtype}, which has no fixed size per element")
        return bits

    @property
    def nbytes(self) -> int:
        """Bytes of the dense tensor, ``ceil(elements x bits / 8)``: packed sub-byte types take
        half (int4) or a quarter (int2) of a byte per element, as stored in the file.

        Raises:
            ValueError: for a type without a fixed size.
        """
        elements = int(np.prod(self.shape, dtype=np.int64)) if len(self.shape) else 1
        return (elements * self.bits + 7) // 8


@dataclasses.dataclass(frozen=True)
class OpInfo:
    """One operator of a ``.tflite`` graph: its kind, tensors and options.

    Attributes:
        index: execution order.
        op: LiteRT's builtin operator name, such as ``"CONV_2D"``.
        inputs: tensor indices (``-1`` for an omitted optional input).
        outputs: tensor indices.
        options: the operator's builtin options as a dict, enum values as names
            (``{"padding": "SAME", "strideH": 2, "fusedActivationFunction": "RELU6", ...}``).
    """

    index: int
    op: str
    inputs: tuple
    outputs: tuple
    options: dict


@dataclasses.dataclass(frozen=True)
class Graph:
    """The main subgraph of a ``.tflite`` model, read with the LiteRT flatbuffer schema."""

    ops: tuple
    tensors: tuple
    inputs: tuple
    outputs: tuple

    def op_counts(self) -> dict:
        """Returns ``{op name: count}`` in order of first appearance."""
        counts = {}
        for op in self.ops:
            counts[op.op] = counts.get(op.op, 0) + 1
        return counts

    def find(self, *names: str) -> list:
        """Returns the operators whose name is one of ``names``, in execution order."""
        return [op for op in self.ops if op.op in names]


def _option_dict(options) -> dict:
    if options is None:
        return {}
    padding = _enum_names(schema.Padding)
    activation = _enum_names(schema.ActivationFunctionType)
    out = {}
    for key, value in vars(options).items():
        if key == "padding":
            value = padding.get(value, value)
        elif key == "fusedActivationFunction":
            value = activation.get(value, value)
        out[key] = value
    return out


def read_graph(model) -> Graph:
    """Reads the operators, tensors, constants and quantization parameters of a model.

    This is what the file actually says (no interpreter involved): the int8 weights, int32
    biases, per-channel scales and zero points that LiteRT's kernels will use.

    Args:
        model: ``.tflite`` bytes or path.

    Returns:
        The main (first) subgraph as a :class:`Graph`.

    Raises:
        ValueError: for content that is not a ``.tflite`` model or cannot be parsed (a
            truncated file, say).
    """
    content = read_tflite(model)
    flat = _parse(content)
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)
    subgraph = _main_subgraph(flat, "read_graph")
    tensors = []
    for index, t in enumerate(subgraph.tensors):
        type_name = type_names.get(t.type, str(t.type))
        dtype = _TENSOR_DTYPES.get(type_name, type_name)
        q = t.quantization
        scales = np.asarray(q.scale if q is not None and q.scale is not None else [], np.float32)
        zero_points = np.asarray(
            q.zeroPoint if q is not None and q.zeroPoint is not None else [], np.int64
        )
        shape = tuple(int(s) for s in (t.shape if t.shape is not None else []))
        data = None
        buffer = flat.buffers[t.buffer] if t.buffer < len(flat.buffers) else None
        raw = None
        if buffer is not None and buffer.data is not None and len(buffer.data):
            raw = np.asarray(buffer.data, dtype=np.uint8).tobytes()
        elif buffer is not None and getattr(buffer, "offset", 0) > 1:
            raw = content[buffer.offset : buffer.offset + buffer.size]
        sparse = t.sparsity is not None
        if raw is not None:
            if isinstance(dtype, str):
                data = np.frombuffer(raw, dtype=np.uint8).copy()
            elif sparse:
                data = np.frombuffer(raw, dtype=dtype).copy()
            else:
                data = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        tensors.append(
            TensorInfo(
                index=index,
                name=t.name.decode() if isinstance(t.name, bytes) else str(t.name),
                shape=shape,
                dtype=dtype,
                scales=scales,
                zero_points=zero_points,
                quantized_dimension=int(q.quantizedDimension) if q is not None else 0,
                data=data,
                sparse=sparse,
            )
        )
    ops = []
    for index, op in enumerate(subgraph.operators):
        code = flat.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        ops.append(
            OpInfo(
                index=index,
                op=op_names.get(builtin, str(builtin)),
                inputs=tuple(int(i) for i in op.inputs),
                outputs=tuple(int(i) for i in op.outputs),
                options=_option_dict(op.builtinOptions),
            )
        )
    return Graph(
        ops=tuple(ops),
        tensors=tuple(tensors),
        inputs=tuple(int(i) for i in subgraph.inputs),
        outputs=tuple(int(i) for i in subgraph.outputs),
    )


def with_outputs(model, tensor_indices) -> bytes:
    """Returns a copy of the model whose outputs are the given tensors.

    Kernels may reuse an intermediate tensor's memory, and a delegate such as XNNPACK
    never writes its internal tensors back, so the only reliable way to read an
    intermediate activation from every kernel set is to make it a model output. The
    computation is unchanged.

    Args:
        model: ``.tflite`` bytes or path.
        tensor_indices: indices of tensors computed at run time, in the order wanted.

    Raises:
        ValueError: for an index that is not a tensor of the graph, or a model that cannot be parsed.
    """
    content = read_tflite(model)
    flat = _parse(content)
    subgraph = _main_subgraph(flat, "with_outputs")
    indices = [int(i) for i in tensor_indices]
    bad = [i for i in indices if not 0 <= i < len(subgraph.tensors)]
    if bad or not indices:
        raise ValueError(
            f"tensor indices must be 0..{len(subgraph.tensors) - 1} and not empty, got {bad or indices}"
        )
    subgraph.outputs = np.asarray(indices, dtype=np.int32)
    flat.signatureDefs = []  # the signature would still name the old outputs
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(flat.Pack(builder), file_identifier=_FLATBUFFER_ID)
    return bytes(builder.Output())


def single_op_models(model) -> list:
    """Cuts a model into one ``.tflite`` model per operator, for per-operator timing.

    The Python interpreter has no per-operator profiler, so the book times each operator
    on its own: model ``i`` holds operator ``i`` alone, with its constant inputs (weights,
    biases) as constants, its other inputs as model inputs and its outputs as model
    outputs, tensors and options unchanged. Timing model ``i`` then measures operator
    ``i`` plus one ``invoke`` call's fixed overhead (a few microseconds). What the cut
    loses is what a runtime does across operators: XNNPACK fuses nothing across them here
    and keeps no activation in cache between them.

    Args:
        model: ``.tflite`` bytes or path.

    Returns:
        One ``.tflite`` content per operator of the main subgraph, in execution order.

    Raises:
        ValueError: for content that is not a ``.tflite`` model or cannot be parsed.
    """
    content = read_tflite(model)
    flat = _parse(content)
    subgraph = _main_subgraph(flat, "single_op_models")
    pieces = []
    for op in subgraph.operators:
        outputs = [int(i) for i in op.outputs]
        used = list(dict.fromkeys(int(i) for i in [*op.inputs, *op.outputs] if i >= 0))
        new_index = {old: new for new, old in enumerate(used)}
        buffers, tensors, inputs = [schema.BufferT()], [], []
        for old in used:
            tensor = copy.copy(subgraph.tensors[old])
            buffer = flat.buffers[tensor.buffer]
            if buffer.data is not None and len(buffer.data):
                buffers.append(buffer)
                tensor.buffer = len(buffers) - 1
            else:
                tensor.buffer = 0
                if old not in outputs:
                    inputs.append(new_index[old])
            tensors.append(tensor)
        piece_op = copy.copy(op)
        piece_op.inputs = np.asarray([new_index[int(i)] if i >= 0 else -1 for i in op.inputs], np.int32)
        piece_op.outputs = np.asarray([new_index[i] for i in outputs], np.int32)
        piece = schema.SubGraphT()
        piece.tensors, piece.operators = tensors, [piece_op]
        piece.inputs = np.asarray(inputs, np.int32)
        piece.outputs = piece_op.outputs
        single = schema.ModelT()
        single.version, single.operatorCodes = flat.version, flat.operatorCodes
        single.subgraphs, single.buffers, single.description = [piece], buffers, flat.description
        builder = flatbuffers.Builder(1024)
        builder.Finish(single.Pack(builder), file_identifier=_FLATBUFFER_ID)
        pieces.append(bytes(builder.Output()))
    return pieces


def function_to_tflite(function, input_shapes) -> bytes:
    """Converts a TensorFlow function of float32 tensors to a ``.tflite`` model.

    Used for micro-benchmarks (one large matrix product, one large addition) whose
    shapes are fixed, batch dimension included.

    Args:
        function: a Python function of ``len(input_shapes)`` tensors.
        input_shapes: one fully known shape per input.

    Raises:
        ValueError: for no inputs or a shape with an unknown or non-positive size.
    """
    shapes = [tuple(shape) for shape in input_shapes]
    if not shapes or any(not s or any(not isinstance(d, int) or d < 1 for d in s) for s in shapes):
        raise ValueError(f"input_shapes must be fully known positive shapes, got {input_shapes!r}")
    specs = [tf.TensorSpec(s, tf.float32, name=f"input_{i}") for i, s in enumerate(shapes)]
    concrete = tf.function(function).get_concrete_function(*specs)
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # "providing without the trackable_obj is deprecated"
    try:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
        with native_stderr_captured():
            return bytes(converter.convert())
    finally:
        absl_logger.setLevel(level)


def replace_constants(model, values: dict) -> bytes:
    """Returns a copy of the model with some constant tensors (weights) replaced.

    Used to simulate weight quantization on the deployed graph itself: LiteRT's
    converter folds batch normalization into the convolution weights, and it is these
    folded weights, whose per-channel ranges differ the most, that a quantizer sees.

    Args:
        model: ``.tflite`` bytes or path.
        values: ``{tensor index: array}``; each array must have the tensor's shape and
            is cast to its dtype.

    Raises:
        ValueError: for an index that is not a constant of the graph or an array of the
            wrong shape or with non-finite values.
    """
    content = read_tflite(model)
    graph = read_graph(content)
    flat = _parse(content)
    subgraph = _main_subgraph(flat, "replace_constants")
    for index, array in values.items():
        if not 0 <= int(index) < len(graph.tensors) or graph.tensors[index].data is None:
            raise ValueError(f"tensor {index} is not a constant of this model")
        info = graph.tensors[index]
        array = np.asarray(array)
        if tuple(array.shape) != info.shape:
            raise ValueError(f"tensor {index} ({info.name}) has shape {info.shape}, got {array.shape}")
        if isinstance(info.dtype, str) or not np.all(np.isfinite(array)):
            raise ValueError(f"tensor {index} ({info.name}): need finite values of a numpy-supported type")
        raw = np.ascontiguousarray(array.astype(info.dtype)).view(np.uint8).ravel()
        flat.buffers[subgraph.tensors[index].buffer].data = raw
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(flat.Pack(builder), file_identifier=_FLATBUFFER_ID)
    return bytes(builder.Output())


def run_tensors(model, x: np.ndarray, tensor_indices, *, kernels: str = "reference", num_threads: int = 2) -> dict:
    """Runs a model once and returns the values of chosen tensors.

    Args:
        model: ``.tflite`` bytes or path.
        x: the model input, already in the input tensor's dtype (for example int8).
        tensor_indices: the tensors to read (made outputs with :func:`with_outputs`).
        kernels: one of :data:`KERNELS`.
        num_threads: interpreter threads.

    Returns:
        ``{tensor index: array}``.

    Raises:
        ValueError: for a model with more than one input, an input of another dtype, or of a
            shape the model cannot be resized to (a batch fixed in the file, say).
    """
    indices = [int(i) for i in tensor_indices]
    interpreter = make_interpreter(with_outputs(model, indices), num_threads=num_threads, kernels=kernels)
    inp = _single_input(interpreter, "run_tensors")
    x = np.asarray(x)
    if x.dtype != inp["dtype"]:
        raise ValueError(f"the input must be {np.dtype(inp['dtype']).name}, got {x.dtype}")
    if tuple(x.shape) != tuple(inp["shape"]):
        try:
            interpreter.resize_tensor_input(inp["index"], list(x.shape))
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ValueError(
                f"this model cannot take an input of shape {x.shape} (its input is "
                f"{tuple(inp['shape_signature'])}, -1 where any size goes): {err}"
            ) from err
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    outputs = interpreter.get_output_details()
    return {i: interpreter.get_tensor(d["index"]).copy() for i, d in zip(indices, outputs)}


# ---------------------------------------------------------------------------------------
# Running int8 layers of a file with the reference library's integer kernels
# ---------------------------------------------------------------------------------------

INT8_LAYERS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
"""Operators :func:`run_int8_layer` reproduces with :mod:`mobileopt_ref.quantization`."""


def _layer_tensors(graph: Graph, op: OpInfo):
    if op.op not in INT8_LAYERS:
        raise ValueError(f"op {op.index} is {op.op}; integer kernels exist for {INT8_LAYERS}")
    x, w, y = (graph.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    bias = graph.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    for t in (x, w, y):
        if t.dtype is not np.int8 or not t.quantized:
            kind = f"{t.dtype_name}, quantized" if t.quantized else f"{t.dtype_name}, not quantized"
            raise ValueError(f"op {op.index} ({op.op}) is not int8-quantized: tensor {t.name!r} is {kind}")
    return x, w, bias, y


def layer_multiplier(graph: Graph, op: OpInfo, precision: str = "float64") -> np.ndarray:
    """The real requantization multipliers ``M = s_in * s_w / s_out`` of an int8 layer.

    LiteRT's built-in kernels compute ``M`` in float64 from the float32 scales stored in
    the file before turning it into a fixed-point multiplier; XNNPACK computes it in
    float32, ``(s_in * s_w) / s_out`` with each step rounded to single precision. The
    two can differ in the last bit, which matters when ``acc * M`` falls on a half-way
    point.

    Args:
        graph: the model's graph.
        op: an int8 layer of it.
        precision: ``"float64"`` (LiteRT) or ``"float32"`` (XNNPACK).

    Returns:
        One value per output channel for per-channel weights.
    """
    x, w, _, y = _layer_tensors(graph, op)
    if precision == "float64":
        return np.float64(x.scales[0]) * w.scales.astype(np.float64) / np.float64(y.scales[0])
    if precision == "float32":
        return (np.float32(x.scales[0]) * w.scales.astype(np.float32)) / np.float32(y.scales[0])
    raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}")


def run_int8_layer(graph: Graph, op: OpInfo, x: np.ndarray, *, rounding: str = "fixed_point",
                   accumulate_only: bool = False) -> np.ndarray:
    """Runs one int8 layer of a ``.tflite`` graph with the reference integer kernels.

    The weights, int32 bias, scales, zero points, strides, padding and fused activation
    all come from the file (:func:`read_graph`).

    Args:
        graph: the model's graph.
        op: a ``CONV_2D``, ``DEPTHWISE_CONV_2D`` or ``FULLY_CONNECTED`` operator of it.
        x: the layer's int8 input (for example read with :func:`run_tensors`).
        rounding: ``"fixed_point"`` (LiteRT's reference) or ``"fp32"`` (XNNPACK's:
            float32 multiplier from :func:`layer_multiplier`, float32 product, round half
            to even), see :func:`mobileopt_ref.quantization.requantize`.
        accumulate_only: return the int32 accumulators instead of the int8 output.

    Returns:
        The layer's int8 output (or accumulators), shaped like the output tensor.
    """
    from mobileopt_ref import quantization as qz

    xt, w, bias, y = _layer_tensors(graph, op)
    bias_data = None if bias is None else bias.data
    z_in = int(xt.zero_points[0])
    options = op.options
    if op.op == "FULLY_CONNECTED":
        acc = qz.fully_connected_accumulate(
            np.asarray(x).reshape(-1, w.shape[1]), w.data, bias_data, input_zero_point=z_in
        )
    else:
        stride = (options["strideH"], options["strideW"])
        if options.get("dilationHFactor", 1) != 1 or options.get("dilationWFactor", 1) != 1:
            raise ValueError(f"op {op.index}: dilated convolutions are not implemented")
        if op.op == "CONV_2D":
            acc = qz.conv2d_accumulate(
                x, w.data, bias_data, input_zero_point=z_in, stride=stride, padding=options["padding"]
            )
        else:
            acc = qz.depthwise_conv2d_accumulate(
                x, w.data, bias_data, input_zero_point=z_in, stride=stride,
                padding=options["padding"], depth_multiplier=options["depthMultiplier"],
            )
    if accumulate_only:
        return acc
    y_scale, y_zero = float(y.scales[0]), int(y.zero_points[0])
    clamp = qz.activation_range(options.get("fusedActivationFunction", "NONE"), y_scale, y_zero)
    precision = "float32" if rounding == "fp32" else "float64"
    return qz.requantize(acc, layer_multiplier(graph, op, precision), y_zero, clamp, rounding=rounding)


def kernel_deviations(model, x: np.ndarray, kernels: str, *, num_threads: int = 2) -> list:
    """Compares every int8 layer LiteRT computed with the reference integer kernels.

    The model runs once with the given kernel set, with every int8 layer's input and
    output made visible (:func:`with_outputs`). Each layer is then recomputed from *the
    same input* by :func:`run_int8_layer` twice, with fixed-point and with fp32
    requantization, so a difference belongs to that layer alone, not to an earlier one.

    Args:
        model: a full-int8 ``.tflite`` (bytes or path).
        x: an int8 input batch for it.
        kernels: one of :data:`KERNELS`.
        num_threads: interpreter threads.

    Returns:
        One dict per layer, with ``index``, ``op``, ``kernel`` (``"1x1"``, ``"3x3"``...),
        ``elements``, ``differ`` (elements where LiteRT and the fixed-point reference
        differ), ``max_abs`` (largest difference) and ``differ_fp32`` (elements where
        LiteRT and fp32 requantization differ).

    Raises:
        ValueError: for a model without these layers or with one that is not int8 (a float,
            dynamic-range or int16 model), a model with more than one input, or an input of
            another dtype.
    """
    graph = read_graph(model)
    layers = graph.find(*INT8_LAYERS)
    if not layers:
        raise ValueError(
            f"the model has no {', '.join(INT8_LAYERS)} operator to compare; its operators are "
            f"{sorted(graph.op_counts())}"
        )
    for op in layers:
        _layer_tensors(graph, op)  # refuses a layer that is not int8 before anything runs
    wanted = sorted({t for op in layers for t in (op.inputs[0], op.outputs[0])})
    values = run_tensors(model, x, wanted, kernels=kernels, num_threads=num_threads)
    rows = []
    for op in layers:
        got = values[op.outputs[0]]
        fixed = run_int8_layer(graph, op, values[op.inputs[0]]).reshape(got.shape)
        fp32 = run_int8_layer(graph, op, values[op.inputs[0]], rounding="fp32").reshape(got.shape)
        diff = np.abs(fixed.astype(np.int32) - got.astype(np.int32))
        shape = graph.tensors[op.inputs[1]].shape
        rows.append(
            {
                "index": op.index,
                "op": op.op,
                "kernel": "dense" if op.op == "FULLY_CONNECTED" else f"{shape[1]}x{shape[2]}",
                "elements": int(got.size),
                "differ": int(np.count_nonzero(diff)),
                "max_abs": int(diff.max()),
                "differ_fp32": int(np.count_nonzero(fp32 != got)),
            }
        )
    return rows
