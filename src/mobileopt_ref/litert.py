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

import gzip
import os
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from mobileopt_ref import data
from mobileopt_ref._quiet import native_stderr_captured
from mobileopt_ref._keras import tf

KERNELS = {
    "xnnpack": OpResolverType.AUTO,
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    "reference": OpResolverType.BUILTIN_REF,
}
"""Kernel sets by name, mapped to LiteRT's op resolver types."""

_FLATBUFFER_ID = b"TFL3"


def to_tflite(model) -> bytes:
    """Converts a Keras model to a float32 ``.tflite`` flatbuffer.

    Args:
        model: a ``tf_keras`` model.

    Returns:
        The ``.tflite`` file content.
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    return converter.convert()


def read_tflite(model) -> bytes:
    """Returns the bytes of a ``.tflite`` model given as bytes or as a path.

    Checks the flatbuffer file identifier ``TFL3`` at byte offset 4, so that a file of
    another kind fails here with a clear message rather than deep in the interpreter.

    Args:
        model: ``bytes`` (file content) or a path to a ``.tflite`` file.

    Raises:
        FileNotFoundError: if the path does not exist.
        ValueError: if the content is empty or not a ``.tflite`` flatbuffer.
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
    return content


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


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Converts real values to a tensor's dtype: ``q = clip(round(x / s + z))``.

    For a float tensor ``x`` is returned cast to its dtype.
    """
    dtype = detail["dtype"]
    if not np.issubdtype(dtype, np.integer):
        return np.asarray(x, dtype=dtype)
    scale, zero_point = detail["quantization"]
    if scale == 0:
        raise ValueError(f"tensor {detail['name']!r} is integer but has no quantization scale")
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, dtype=np.float32) / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


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
    model's input is integer, run in batches (the input is resized to the batch size) and
    the outputs dequantized.

    Args:
        model: ``.tflite`` bytes or path.
        images: ``(n, h, w, 3)`` pixel array matching the model's input size.
        batch_size: images per invoke.
        num_threads: interpreter threads.
        kernels: one of :data:`KERNELS`.

    Returns:
        ``float32`` array ``(n, outputs)``.

    Raises:
        ValueError: for an invalid model or images of the wrong shape.
    """
    interpreter = make_interpreter(model, num_threads=num_threads, kernels=kernels)
    inp = interpreter.get_input_details()[0]
    expected = tuple(inp["shape"][1:])
    images = np.asarray(images)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected or len(images) == 0:
        raise ValueError(
            f"images must have shape (n>0, {', '.join(map(str, expected))}) for this model, "
            f"got {images.shape}"
        )
    n = len(images)
    batch_size = min(batch_size, n)
    interpreter.resize_tensor_input(inp["index"], [batch_size, *expected])
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    outputs = []
    for start in range(0, n, batch_size):
        batch = data.preprocess(images[start : start + batch_size])
        valid = len(batch)
        if valid < batch_size:  # pad the last batch; the padding's outputs are dropped
            pad = np.zeros((batch_size - valid, *expected), dtype=np.float32)
            batch = np.concatenate([batch, pad])
        interpreter.set_tensor(inp["index"], quantize_input(batch, inp))
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
