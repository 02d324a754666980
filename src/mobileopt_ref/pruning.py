"""Pruning: masks, schedules, N:M sparsity, structured channel pruning.

Pruning removes weights. *Unstructured* (magnitude) pruning sets individual weights to
zero, those of smallest ``|w|``: a boolean *mask* ``M`` (``True`` = kept) gives the pruned
tensor ``w * M``. Pruning a fraction ``s`` (the *sparsity*) of ``n`` weights removes
``k = round(s * n)`` of them. Per tensor, every tensor loses the same fraction; with one
*global* threshold over all tensors together, layers of small weights lose more.

*N:M* (semi-structured) sparsity keeps the ``n`` largest of every group of ``m``
consecutive weights, 2:4 for instance, a pattern some accelerators skip in hardware.

Training with pruning raises the sparsity gradually, on tfmot's ``PolynomialDecay``
schedule ``s(t) = s_f + (s_i - s_f) (1 - (t - t0) / (t1 - t0))^p``, pruning every
``frequency`` steps in ``[t0, t1]``.

The article's pruning rate is ``alpha = N_pruned / N_original``. A trained weight is
practically never exactly ``0.0``, so it is measured by counting exact zeros: in the
kernels of a Keras model (:func:`keras_pruning_rate`) or in the weights of a ``.tflite``
file (:func:`tflite_pruning_rate`), where they are what gzip compresses away.

*Structured* pruning removes whole channels instead, so that what remains is a smaller
dense model every runtime runs faster: :func:`prune_hidden_channels` removes the
lowest-L1 hidden channels of MobileNetV2's inverted residual blocks.

The numpy functions here need no TensorFlow; the Keras and ``.tflite`` ones import it
through :mod:`mobileopt_ref.litert` only when called. :class:`PruningRecipe` and
:func:`load_or_prune` prune a trained model with tfmot (or by removing channels),
fine-tune it and keep the result in the verified model cache.

Explained in notebooks/02_pruning.ipynb.

Example:
    >>> import numpy as np
    >>> from mobileopt_ref import pruning
    >>> w = np.array([0.5, -0.1, 2.0, 0.05])
    >>> pruning.magnitude_mask(w, 0.5)
    array([ True, False,  True, False])
    >>> pruning.pruning_rate([w * pruning.magnitude_mask(w, 0.5)])
    0.5
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import numpy as np

KERAS_LAYERS = ("Conv2D", "DepthwiseConv2D", "Dense")
"""Keras layer classes whose kernels the pruning rate counts by default."""

TFLITE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
"""``.tflite`` operators whose weights (input 1) the pruning rate counts."""


# ---------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------


def _is_number(value) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(
        value, (int, float, np.integer, np.floating)
    )


def _is_integer(value) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def _check_sparsity(sparsity, name: str) -> float:
    if not _is_number(sparsity) or not 0.0 <= float(sparsity) < 1.0:  # NaN fails too
        raise ValueError(
            f"{name} must be a number in [0, 1), got {sparsity!r} (1 would prune every weight)"
        )
    return float(sparsity)


def check_sparsity(sparsity) -> float:
    """Returns ``sparsity`` as a float after checking it is a fraction in ``[0, 1)``.

    ``0`` prunes nothing; ``1`` is excluded because it would remove every weight (tfmot
    excludes it too).

    Raises:
        ValueError: for a bool, NaN, a non-number, a value below 0 or from 1 on.
    """
    return _check_sparsity(sparsity, "sparsity")


def _finite_weights(name: str, weights, allow_empty: bool = False) -> np.ndarray:
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of real numbers: {err}") from err
    if w.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty; need at least one weight")
    bad = w.size - np.count_nonzero(np.isfinite(w))
    if bad:
        raise ValueError(
            f"{name} must be finite, but {bad} of its {w.size} values are NaN or infinite"
        )
    return w


def _check_n_m(n, m) -> tuple:
    if not _is_integer(m) or m < 1:
        raise ValueError(f"m (the group size) must be a positive integer, got {m!r}")
    if not _is_integer(n) or n < 1:
        raise ValueError(f"n (the weights kept per group) must be a positive integer, got {n!r}")
    if n > m:
        raise ValueError(
            f"n must be at most m: n of every m consecutive weights are kept; got n={n}, m={m}"
        )
    return int(n), int(m)


def _check_axis(axis, ndim: int) -> int:
    if not _is_integer(axis):
        raise ValueError(f"axis must be an integer, got {axis!r}")
    if not -ndim <= axis < ndim:
        allowed = f"{-ndim} to {ndim - 1}" if ndim else "none (a scalar has no axes)"
        raise ValueError(
            f"axis {axis} is out of range for an array with ndim {ndim}; allowed: {allowed}"
        )
    return int(axis) % ndim


# ---------------------------------------------------------------------------------------
# Unstructured magnitude pruning
# ---------------------------------------------------------------------------------------


def _keep_largest(magnitudes: np.ndarray, keep: int) -> np.ndarray:
    """Flat boolean mask of the ``keep`` largest entries, ties kept in position order."""
    order = np.argsort(-magnitudes, kind="stable")  # descending; equal values keep order
    mask = np.zeros(magnitudes.size, dtype=bool)
    mask[order[:keep]] = True
    return mask


def magnitude_mask(weights, sparsity) -> np.ndarray:
    """The mask of unstructured magnitude pruning of one tensor (``True`` = kept).

    Prunes exactly ``k = round(sparsity * n)`` of the ``n`` weights, those of smallest
    ``|w|``, so every kept weight has ``|w|`` at least as large as every pruned one.
    ``round`` is Python's (halves to even: ``round(2.5) = 2``). Ties in magnitude are
    broken by position in C order: of equal ``|w|`` the earlier entry is kept and the
    later one pruned (as ``tf.math.top_k`` keeps the earlier of equal values), so the
    mask is deterministic.

    tfmot's ``prune_low_magnitude`` differs in two details: it keeps
    ``max(round(n * (1 - s)), 1)`` weights, so it never prunes a whole tensor and can
    prune one weight more or fewer than here at exact halves, and it keeps *every*
    weight tied with the threshold, so it can prune fewer than ``k``. Here a very small
    tensor can lose all its weights: ``round(0.9 * 1) = 1``.

    Args:
        weights: the real weights, any shape, at least one value.
        sparsity: the fraction to prune, in ``[0, 1)``.

    Returns:
        ``bool`` array of ``weights``' shape with ``n - k`` entries ``True``.

    Raises:
        ValueError: for a bad sparsity, an empty array or NaN/infinite weights.
    """
    sparsity = check_sparsity(sparsity)
    w = _finite_weights("weights", weights)
    k = round(sparsity * w.size)
    return _keep_largest(np.abs(w).ravel(), w.size - k).reshape(w.shape)


def global_magnitude_masks(weights_list, sparsity) -> list:
    """Masks of global magnitude pruning: one threshold over all tensors together.

    All weights are ranked by ``|w|`` as if concatenated (in list order, each tensor
    flattened in C order) and exactly ``k = round(sparsity * N)`` of the ``N`` weights in
    total are pruned, those of smallest magnitude, with ties broken by that order as in
    :func:`magnitude_mask`. Every kept weight of any tensor is at least as large as
    every pruned weight of any tensor. The per-tensor sparsities then differ: a layer
    of small weights loses more than ``sparsity``, one of large weights less, and a
    layer can lose all its weights.

    Args:
        weights_list: a sequence of real arrays (at least one weight in total).
        sparsity: the overall fraction to prune, in ``[0, 1)``.

    Returns:
        A list of ``bool`` masks (``True`` = kept), one per tensor, of their shapes.

    Raises:
        ValueError: for a bad sparsity, no weights at all, or NaN/infinite weights.
    """
    sparsity = check_sparsity(sparsity)
    if isinstance(weights_list, np.ndarray):
        weights_list = [weights_list]
    arrays = [
        _finite_weights(f"weights_list[{i}]", w, allow_empty=True)
        for i, w in enumerate(weights_list)
    ]
    total = sum(w.size for w in arrays)
    if total == 0:
        raise ValueError("weights_list holds no weights; need at least one")
    k = round(sparsity * total)
    flat = np.concatenate([np.abs(w).ravel() for w in arrays])
    mask = _keep_largest(flat, total - k)
    ends = np.cumsum([w.size for w in arrays])[:-1]
    return [part.reshape(w.shape) for part, w in zip(np.split(mask, ends), arrays)]


# ---------------------------------------------------------------------------------------
# N:M (semi-structured) sparsity
# ---------------------------------------------------------------------------------------


def n_m_mask(weights, n: int = 2, m: int = 4, axis: int = -1) -> np.ndarray:
    """The N:M sparsity mask: in every ``m`` consecutive weights along ``axis`` keep ``n``.

    The weights are split along ``axis`` into groups of ``m`` (positions
    ``[0, m), [m, 2m), ...`` for every index of the other axes); in each group the ``n``
    of largest ``|w|`` are kept, ties broken by position (the earlier is kept, as
    ``tf.math.top_k`` does). ``n = m`` keeps everything; 2:4 prunes exactly half.

    Which axis: tfmot's ``prune_low_magnitude(..., sparsity_m_by_n=(2, 4))`` groups the
    weights along the *input channels*, which are the last axis of the ``.tflite``
    layouts (``pruning_utils.weights_rearrange`` transposes the Keras kernel into
    LiteRT's layout and groups along its last axis):

    - ``Dense`` kernel ``(in, out)``: ``axis=0``; in a ``.tflite`` ``FULLY_CONNECTED``
      ``(out, in)``: ``axis=-1``;
    - ``Conv2D`` kernel ``(kh, kw, cin, cout)``: ``axis=2``; in a ``.tflite`` ``CONV_2D``
      ``(cout, kh, kw, cin)``: ``axis=-1``.

    (tfmot's ``sparsity_m_by_n=(z, m)`` counts the *zeros* ``z`` per group: N:M here is
    ``(m - n, m)`` there.)

    Args:
        weights: real weights, at least one dimension, none NaN or infinite.
        n: weights kept per group, ``1 <= n <= m``.
        m: group size, a positive integer dividing ``weights.shape[axis]``.
        axis: the axis the groups run along (negative counts from the end).

    Returns:
        ``bool`` array of ``weights``' shape (``True`` = kept), ``n`` per group.

    Raises:
        ValueError: for ``n > m`` or non-positive ``n``/``m``, an axis out of range, an
            axis length not divisible by ``m`` (tfmot would zero-pad the last group;
            here a partial group is refused), an empty or non-finite array.
    """
    n, m = _check_n_m(n, m)
    w = _finite_weights("weights", weights)
    axis = _check_axis(axis, w.ndim)
    length = w.shape[axis]
    if length % m:
        raise ValueError(
            f"the length of axis {axis} ({length}, shape {w.shape}) must be divisible by "
            f"m={m} to split it into groups of {m}; choose another axis or m"
        )
    moved = np.moveaxis(np.abs(w), axis, -1)
    groups = moved.reshape(-1, m)
    order = np.argsort(-groups, axis=-1, kind="stable")
    mask = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(mask, order[:, :n], True, axis=-1)
    return np.moveaxis(mask.reshape(moved.shape), -1, axis)


def is_n_m_sparse(weights, n: int = 2, m: int = 4, axis: int = -1) -> bool:
    """Whether every group of ``m`` consecutive weights along ``axis`` has at most ``n`` non-zeros.

    The check for N:M sparsity read back from a model. For tfmot's
    ``sparsity_m_by_n`` (see :func:`n_m_mask`) use ``axis=-1`` on ``.tflite``
    ``CONV_2D`` ``(cout, kh, kw, cin)`` and ``FULLY_CONNECTED`` ``(out, in)`` weights, and
    ``axis=2`` on a Keras ``Conv2D`` kernel, ``axis=0`` on a ``Dense`` kernel.

    Unlike :func:`n_m_mask`, an axis length that ``m`` does not divide is accepted: the
    last group is then shorter and may hold at most ``n`` non-zeros too, which is what
    tfmot produces (it zero-pads the last group before choosing), for example on the 3
    input channels of a first convolution.

    Works on any numeric dtype. int8 ``.tflite`` weights can be checked as stored: their
    zero point is 0 (symmetric), so the integer 0 is the real value 0.

    Raises:
        ValueError: for bad ``n``/``m``, an axis out of range or an empty array.
    """
    n, m = _check_n_m(n, m)
    w = np.asarray(weights)
    if w.size == 0:
        raise ValueError("weights is empty; need at least one weight")
    axis = _check_axis(axis, w.ndim)
    nonzero = np.moveaxis(w != 0, axis, -1)
    pad = -nonzero.shape[-1] % m
    if pad:
        widths = [(0, 0)] * (nonzero.ndim - 1) + [(0, pad)]
        nonzero = np.pad(nonzero, widths, constant_values=False)
    counts = nonzero.reshape(-1, m).sum(axis=-1)
    return bool(np.all(counts <= n))


# ---------------------------------------------------------------------------------------
# The pruning schedule of tfmot's PolynomialDecay
# ---------------------------------------------------------------------------------------


def _check_steps(begin_step, end_step, frequency, *, allow_forever: bool) -> None:
    if not _is_integer(begin_step) or begin_step < 0:
        raise ValueError(f"begin_step must be an integer >= 0, got {begin_step!r}")
    if allow_forever:
        if not _is_integer(end_step) or (end_step != -1 and end_step < begin_step):
            raise ValueError(
                f"end_step must be -1 (prune forever) or an integer >= begin_step "
                f"({begin_step}), got {end_step!r}"
            )
    elif not _is_integer(end_step) or end_step <= begin_step:
        raise ValueError(
            f"end_step must be an integer greater than begin_step ({begin_step}), got "
            f"{end_step!r}: the sparsity decays over end_step - begin_step > 0 steps"
        )
    if not _is_integer(frequency) or frequency < 1:
        raise ValueError(f"frequency must be a positive integer (steps), got {frequency!r}")


def _check_step(step) -> int:
    if not _is_integer(step):
        raise ValueError(f"step must be an integer (a training step), got {step!r}")
    return int(step)


def should_prune(step, begin_step, end_step, frequency) -> bool:
    """Whether the masks are updated at training step ``step``, as in tfmot's schedules.

    tfmot's ``PruningSchedule._should_prune_in_step``: pruning happens at
    ``begin_step, begin_step + frequency, ...`` up to and including ``end_step``,

        ``begin_step <= step <= end_step  and  (step - begin_step) mod frequency == 0``

    and with ``end_step = -1`` (allowed by ``ConstantSparsity``) forever from
    ``begin_step`` on. Between these steps the masks, and so the sparsity, stay as last
    set.

    Args:
        step: the training step (tfmot's pruning step counts optimizer updates from 0).
        begin_step: first step that prunes, ``>= 0``.
        end_step: last step that can prune, ``>= begin_step``, or ``-1`` for no end.
        frequency: prune every ``frequency`` steps, ``>= 1``.

    Raises:
        ValueError: for non-integer steps, ``begin_step < 0``, ``end_step`` below
            ``begin_step`` (other than -1) or ``frequency < 1``.
    """
    step = _check_step(step)
    _check_steps(begin_step, end_step, frequency, allow_forever=True)
    in_range = begin_step <= step and (end_step < 0 or step <= end_step)
    return bool(in_range and (step - begin_step) % frequency == 0)


def polynomial_decay_sparsity(
    step, initial_sparsity, final_sparsity, begin_step, end_step, power=3, frequency=100
) -> float:
    """The target sparsity of tfmot's ``PolynomialDecay`` schedule at ``step``.

    With ``t0 = begin_step``, ``t1 = end_step`` and the progress clamped to ``[0, 1]``,

        ``p = min(1, max(0, (t - t0) / (t1 - t0)))``
        ``s(t) = s_f + (s_i - s_f) * (1 - p)^power``

    so ``s(t) = s_i`` up to ``t0``, rises steeply at first and then flattens into
    ``s_f``, which it keeps after ``t1``. The masks only follow it at the steps where
    :func:`should_prune` is true (``frequency`` matters only there).

    tfmot computes in float32, so its values differ from these (float64) by about
    ``1e-7``. It also accepts ``end_step == begin_step``, but then divides 0 by 0 and
    returns NaN at that step; here ``end_step`` must be larger. tfmot does not check
    ``power``: 0 would stay at ``s_i`` for ever and a negative power gives ``-inf``
    after ``t1``; here it must be positive.

    Args:
        step: the training step (any integer; before ``begin_step`` gives ``s_i``).
        initial_sparsity: ``s_i`` in ``[0, 1)``.
        final_sparsity: ``s_f`` in ``[0, 1)`` (usually above ``s_i``).
        begin_step: ``t0 >= 0``.
        end_step: ``t1 > t0`` (-1, "no end", is not allowed: the decay needs an end).
        power: the exponent, a positive number (tfmot's default 3).
        frequency: steps between mask updates, ``>= 1`` (checked, as tfmot does).

    Raises:
        ValueError: for bad sparsities, steps, power or frequency.
    """
    step = _check_step(step)
    s_i = _check_sparsity(initial_sparsity, "initial_sparsity")
    s_f = _check_sparsity(final_sparsity, "final_sparsity")
    _check_steps(begin_step, end_step, frequency, allow_forever=False)
    if not _is_number(power) or not math.isfinite(power) or power <= 0:
        raise ValueError(f"power must be a positive finite number, got {power!r}")
    p = min(1.0, max(0.0, (step - begin_step) / (end_step - begin_step)))
    return float(s_f + (s_i - s_f) * (1.0 - p) ** power)


# ---------------------------------------------------------------------------------------
# The pruning rate alpha of Keras models and .tflite files
# ---------------------------------------------------------------------------------------


def pruning_rate(weights_list) -> float:
    """The article's pruning rate ``alpha = N_pruned / N_original`` of some weights.

    ``N_original`` is the number of weights, ``N_pruned`` the number that are exactly
    zero (``-0.0`` included). A trained weight is practically never exactly ``0.0``
    (its random initial value and all its gradient updates would have to cancel to the
    last bit), so the zeros are the pruned weights.
    The rate is taken over all the weights together, so a large tensor weighs more
    than a small one.

    Args:
        weights_list: a sequence of arrays (or one array) of any numeric dtype.

    Returns:
        ``alpha`` in ``[0, 1]``.

    Raises:
        ValueError: if there are no weights at all.
    """
    if isinstance(weights_list, np.ndarray):
        weights_list = [weights_list]
    arrays = [np.asarray(w) for w in weights_list]
    total = sum(a.size for a in arrays)
    if total == 0:
        raise ValueError("no weights to count: weights_list is empty or holds only empty arrays")
    zeros = sum(a.size - np.count_nonzero(a) for a in arrays)
    return float(zeros / total)


def _layers(model, prefix=""):
    """``(name, layer)`` of the leaf layers of a Keras model, wrappers looked into.

    Layers of a nested model are named ``"inner_model/layer"``.
    """
    for layer in getattr(model, "layers", ()):
        inner = getattr(layer, "layer", None)  # keras.layers.Wrapper: tfmot, QAT wrappers
        while inner is not None and hasattr(inner, "weights"):
            layer, inner = inner, getattr(inner, "layer", None)
        if hasattr(layer, "layers"):
            yield from _layers(layer, f"{prefix}{layer.name}/")
        else:
            yield f"{prefix}{layer.name}", layer


def _is_kernel(variable) -> bool:
    """``kernel``, ``depthwise_kernel``, ... (``"conv2d/kernel:0"``), not bias or BN."""
    return variable.name.split(":")[0].split("/")[-1].endswith("kernel")


def _keras_kernels(model, layer_types) -> dict:
    """``{layer name: [kernel arrays]}`` of the layers of the given class names."""
    if not hasattr(model, "layers"):
        raise ValueError(f"model must be a tf_keras model, got {type(model).__name__}")
    if isinstance(layer_types, str) or not layer_types or not all(
        isinstance(t, str) for t in layer_types
    ):
        raise ValueError(
            f"layer_types must be a non-empty sequence of Keras class names such as "
            f"{KERAS_LAYERS}, got {layer_types!r}"
        )
    kernels = {}
    for name, layer in _layers(model):
        if type(layer).__name__ not in layer_types:
            continue
        found = [w.numpy() for w in layer.weights if _is_kernel(w)]
        if found:
            kernels[name] = found
    if not kernels:
        raise ValueError(
            f"the model has no built layer of the types {tuple(layer_types)} with a kernel "
            f"to prune; its layers are {[type(layer).__name__ for _, layer in _layers(model)]}"
        )
    return kernels


def keras_pruning_rate(model, layer_types=KERAS_LAYERS) -> float:
    """The pruning rate ``alpha`` over the kernels of a Keras model's prunable layers.

    Counts the exact zeros of every kernel (``kernel``, ``depthwise_kernel``, ...; not
    biases nor batch-normalization parameters) of the layers whose class name is in
    ``layer_types``, together (:func:`pruning_rate`). Nested models are looked into, and
    so are wrappers such as tfmot's ``PruneLowMagnitude``, whose kernel holds the masked
    weights once training has applied the mask.

    tfmot's ``prune_low_magnitude`` does not prune ``DepthwiseConv2D`` kernels (its
    registry lists no prunable weight for them), so over the default types the rate of
    a tfmot-pruned MobileNetV2 is a little below its target sparsity; pass
    ``("Conv2D", "Dense")`` for the layers it prunes.

    Args:
        model: a ``tf_keras`` model (built).
        layer_types: Keras class names, default :data:`KERAS_LAYERS`.

    Raises:
        ValueError: if the model has no built layer of those types.
    """
    return pruning_rate([k for ks in _keras_kernels(model, layer_types).values() for k in ks])


def layer_sparsities(model, layer_types=KERAS_LAYERS) -> dict:
    """The fraction of exactly-zero kernel weights of each prunable layer of a Keras model.

    The per-layer view of :func:`keras_pruning_rate` (same layers and kernels): after
    global magnitude pruning these differ from layer to layer.

    Returns:
        ``{layer name: sparsity}`` in the model's layer order; the layers of a nested
        model are named ``"inner_model/layer"``, those inside a wrapper by their own name.

    Raises:
        ValueError: if the model has no built layer of those types.
    """
    return {name: pruning_rate(ks) for name, ks in _keras_kernels(model, layer_types).items()}


def _stored_values(tensor) -> np.ndarray:
    """The integer or float values of a constant, packed INT4 unpacked to int8."""
    data = tensor.data
    if tensor.dtype == "INT4":
        size = int(np.prod(tensor.shape))
        if data.size == size:  # one value per byte
            nibbles = data & 0x0F
        else:  # two per byte, the lower nibble first (LiteRT's dense int4 packing)
            nibbles = np.stack([data & 0x0F, data >> 4], axis=-1).ravel()[:size]
        values = nibbles.astype(np.int8)
        return np.where(values > 7, values - 16, values).reshape(tensor.shape)
    if isinstance(tensor.dtype, str):
        raise ValueError(f"tensor {tensor.name!r} has type {tensor.dtype}, which cannot be read")
    return data


def _pruned_count(tensor) -> int:
    """Entries of a weight constant whose real value is 0 (``q == zero_point`` if quantized).

    A tensor in LiteRT's sparse format stores only some of its values; every entry of its
    dense ``shape`` that is not a stored non-zero value is a zero.
    """
    values = _stored_values(tensor)
    total = int(np.prod(tensor.shape))
    if tensor.quantized and np.issubdtype(values.dtype, np.integer):
        zero = tensor.zero_points.astype(np.int64)
        if tensor.sparse:
            if np.any(zero != 0):
                raise ValueError(f"tensor {tensor.name!r}: sparse with non-zero zero points, not supported")
            zero = np.int64(0)
        elif zero.size > 1:
            shape = [1] * values.ndim
            shape[tensor.quantized_dimension] = zero.size
            zero = zero.reshape(shape)
        return total - int(np.count_nonzero(values.astype(np.int64) != zero))
    return total - int(np.count_nonzero(values))


def _stored_weights(graph, producer: dict, op):
    """The constant that holds ``op``'s weights (input 1), as stored in the file.

    Weights that a ``DEQUANTIZE`` or ``DENSIFY`` operator expands (float16, int4,
    sparse-format files) are followed back to the stored constant.
    """
    tensor = graph.tensors[op.inputs[1]]
    source = producer.get(tensor.index)
    while tensor.data is None and source is not None and source.op in ("DEQUANTIZE", "DENSIFY"):
        tensor = graph.tensors[source.inputs[0]]
        source = producer.get(tensor.index)
    if tensor.data is None:
        raise ValueError(
            f"op {op.index} ({op.op}): its weights {tensor.name!r} are not a constant "
            f"of the file (computed by {source.op if source else 'nothing'}), so they "
            f"cannot be counted"
        )
    return tensor


def _tflite_weights(model) -> dict:
    """``{name: TensorInfo}`` of the stored weights of every CONV_2D/DEPTHWISE/FC op."""
    from mobileopt_ref import litert

    graph = litert.read_graph(model)
    producer = {out: op for op in graph.ops for out in op.outputs}
    weights = {}
    for op in graph.find(*TFLITE_OPS):
        tensor = _stored_weights(graph, producer, op)
        if any(t.index == tensor.index for t in weights.values()):
            continue  # shared by two operators: count it once
        name = tensor.name if tensor.name not in weights else f"{tensor.name}#{tensor.index}"
        weights[name] = tensor
    if not weights:
        raise ValueError(
            f"the model has no {', '.join(TFLITE_OPS)} operator; its operators are "
            f"{sorted(graph.op_counts())}"
        )
    return weights


def tflite_pruning_rate(model) -> float:
    """The pruning rate ``alpha`` over the weights of a ``.tflite`` model's layers.

    Counts the weights (input 1) of every ``CONV_2D``, ``DEPTHWISE_CONV_2D`` and
    ``FULLY_CONNECTED`` operator, as stored (read with
    :func:`mobileopt_ref.litert.read_graph`; weights that a ``DEQUANTIZE`` or ``DENSIFY``
    operator expands, as in float16, int4 and sparse-format files, are counted as stored,
    over their dense shape). A weight is pruned
    when its real value is 0: a float 0, or a quantized integer equal to its zero point.
    LiteRT's int8 weights are symmetric, zero point 0, so the integer 0 is a pruned
    weight, and ``0.0`` quantizes to exactly 0.

    For a model without batch normalization the converter stores each Keras kernel
    transposed (``(cout, kh, kw, cin)``, ``(1, kh, kw, c)``, ``(out, in)``), so the rate
    equals :func:`keras_pruning_rate` over the same layers. With batch normalization,
    the folded kernel ``w * gamma / sigma`` keeps the zeros. Quantized files can count
    *more* zeros: a weight with ``|w| < scale / 2`` (``scale = max|w| / 127`` of its
    channel) rounds to the integer 0 as well.

    Args:
        model: ``.tflite`` bytes or path.

    Raises:
        ValueError: if the model has none of these operators, or its weights are not
            stored as constants.
    """
    tensors = list(_tflite_weights(model).values())
    pruned = sum(_pruned_count(t) for t in tensors)
    return float(pruned / sum(int(np.prod(t.shape)) for t in tensors))


def tflite_layer_sparsities(model) -> dict:
    """The fraction of pruned weights of each layer of a ``.tflite`` model.

    Same weights and rule as :func:`tflite_pruning_rate`.

    Returns:
        ``{weight tensor name: sparsity}`` in execution order; the names are the
        converter's (``"sequential/conv2d/Conv2D"``, ...), suffixed with ``#index`` in
        the rare case that two weight tensors share one.
    """
    return {
        name: float(_pruned_count(t) / int(np.prod(t.shape)))
        for name, t in _tflite_weights(model).items()
    }


def tflite_op_densities(model) -> dict:
    """The fraction of non-zero weights of each weighted operator, by operator index.

    Same weights and zero rule as :func:`tflite_pruning_rate`, but one entry per
    ``CONV_2D``, ``DEPTHWISE_CONV_2D`` and ``FULLY_CONNECTED`` operator (two operators
    sharing a weight tensor both get its density), for models of work that skip zeros.

    Returns:
        ``{operator index: density}``, where density = 1 - sparsity, in ``[0, 1]``.
    """
    from mobileopt_ref import litert

    graph = litert.read_graph(model)
    producer = {out: op for op in graph.ops for out in op.outputs}
    densities = {}
    for op in graph.find(*TFLITE_OPS):
        tensor = _stored_weights(graph, producer, op)
        densities[op.index] = 1.0 - _pruned_count(tensor) / int(np.prod(tensor.shape))
    return densities


# ---------------------------------------------------------------------------------------
# Structured pruning: removing hidden channels of MobileNetV2's inverted residual blocks
# ---------------------------------------------------------------------------------------


def _mobilenet_blocks(model) -> list:
    """Indices ``i`` of the blocks with an expansion: layers ``block_{i}_expand`` etc."""
    from mobileopt_ref import models  # noqa: PLC0415

    models.check_keras_model(model, "hidden-channel pruning")
    names = {layer.name for layer in model.layers}
    blocks = []
    for name in names:
        if name.startswith("block_") and name.endswith("_expand"):
            index = name[len("block_") : -len("_expand")]
            if index.isdigit() and {f"block_{index}_depthwise", f"block_{index}_project"} <= names:
                blocks.append(int(index))
    return sorted(blocks)


def hidden_channel_importance(model) -> dict:
    """L1 norm of every hidden (expanded) channel of every inverted residual block.

    Block ``i`` of Keras' MobileNetV2 expands its input with a 1x1 convolution
    ``block_{i}_expand`` (kernel ``(1, 1, c_in, c_hidden)``), filters each hidden channel
    with ``block_{i}_depthwise`` and projects back with ``block_{i}_project``. The
    importance of hidden channel ``c`` is ``sum_k |W_expand[0, 0, k, c]|``, the L1 norm of
    the weights that produce it.

    Returns:
        ``{block index: float array of length c_hidden}``.

    Raises:
        ValueError: if the model has no such blocks (not a Keras MobileNetV2).
    """
    blocks = _mobilenet_blocks(model)
    if not blocks:
        raise ValueError(
            "no prunable inverted residual blocks (layers block_<i>_expand, _depthwise, "
            "_project) in this model; structured pruning here works on Keras' MobileNetV2"
        )
    return {
        i: np.abs(model.get_layer(f"block_{i}_expand").get_weights()[0]).sum(axis=(0, 1, 2))
        for i in blocks
    }


def channels_to_keep(importance: np.ndarray, fraction: float, multiple_of: int = 1) -> np.ndarray:
    """Indices of the channels that survive removing ``fraction`` of them, lowest L1 first.

    ``keep = max(1, round((1 - fraction) * c))``, rounded up to a multiple of
    ``multiple_of`` (SIMD kernels prefer channel counts divisible by 4, 8 or 16) but
    never above ``c``. The surviving indices are returned in their original order.

    Raises:
        ValueError: for a fraction outside ``[0, 1)`` or a bad ``multiple_of``.
    """
    fraction = check_sparsity(fraction)
    if isinstance(multiple_of, bool) or not isinstance(multiple_of, int) or multiple_of < 1:
        raise ValueError(f"multiple_of must be a positive integer, got {multiple_of!r}")
    importance = np.asarray(importance, dtype=np.float64)
    count = len(importance)
    keep = max(1, int(round((1.0 - fraction) * count)))
    keep = min(count, -(-keep // multiple_of) * multiple_of)
    order = np.argsort(-importance, kind="stable")  # largest first; ties keep index order
    return np.sort(order[:keep])


def prune_hidden_channels(model, fraction: float, *, blocks=None, multiple_of: int = 1):
    """Removes the lowest-L1 hidden channels of MobileNetV2 blocks: a thinner dense model.

    For every pruned block ``i`` the kept hidden channels ``K`` (see
    :func:`channels_to_keep`) define the new, smaller layers:

    - ``block_{i}_expand``: kernel ``W[:, :, :, K]`` (fewer filters);
    - ``block_{i}_expand_BN`` and ``block_{i}_depthwise_BN``: ``gamma, beta, mean,
      variance`` restricted to ``K``;
    - ``block_{i}_depthwise``: kernel ``W[:, :, K, :]``;
    - ``block_{i}_project``: kernel ``W[:, :, K, :]`` (fewer inputs, same outputs).

    Every other layer keeps its weights. A removed channel's contribution to the block's
    output is lost, so the model usually needs fine-tuning afterwards; with ``fraction = 0``
    the new model computes exactly what the old one does (tested). Unlike a sparsity mask,
    the result is an ordinary dense model with fewer channels, so every runtime runs it
    faster.

    Args:
        model: a Keras MobileNetV2 (:func:`mobileopt_ref.models.build_mobilenet_v2`).
        fraction: share of each block's hidden channels to remove, in ``[0, 1)``.
        blocks: block indices to prune (default: all blocks with an expansion, 1-16).
        multiple_of: round kept channel counts up to a multiple of this.

    Returns:
        ``(pruned_model, kept)`` with ``kept = {block: kept channel indices}``.

    Raises:
        ValueError: for a bad fraction, or a block that has no expansion to prune
            (block 0 of MobileNetV2 has none) or does not exist.
    """
    from mobileopt_ref._keras import keras

    importance = hidden_channel_importance(model)
    fraction = _check_sparsity(fraction, "fraction")
    if blocks is None:
        blocks = sorted(importance)
    blocks = list(blocks)
    bad = [b for b in blocks if b not in importance]
    if bad:
        raise ValueError(
            f"block(s) {bad} cannot be pruned: prunable blocks of this model are "
            f"{sorted(importance)} (block 0 has no expansion layer)"
        )
    kept = {b: channels_to_keep(importance[b], fraction, multiple_of) for b in blocks}
    new_filters = {f"block_{b}_expand": len(k) for b, k in kept.items()}

    def clone(layer):
        config = layer.get_config()
        if layer.name in new_filters:
            config["filters"] = new_filters[layer.name]
        return layer.__class__.from_config(config)

    pruned = keras.models.clone_model(model, clone_function=clone)
    for layer in pruned.layers:
        weights = model.get_layer(layer.name).get_weights()
        block = _block_of(layer.name)
        if block in kept:
            k = kept[block]
            suffix = layer.name[len(f"block_{block}_") :]
            if suffix == "expand":
                weights = [w[..., k] for w in weights]
            elif suffix in ("expand_BN", "depthwise_BN"):
                weights = [w[k] for w in weights]
            elif suffix in ("depthwise", "project"):
                weights = [weights[0][:, :, k, :], *weights[1:]]
        layer.set_weights(weights)
    return pruned, kept


def _block_of(name: str):
    """The block index in a layer name ``block_{i}_...``, or ``None``."""
    parts = name.split("_")
    if len(parts) >= 3 and parts[0] == "block" and parts[1].isdigit():
        return int(parts[1])
    return None


def hidden_channel_params(model, kept: dict) -> int:
    """Parameters removed by :func:`prune_hidden_channels` with the given kept channels.

    Each removed hidden channel of block ``i`` takes ``c_in`` expand weights, 4 expand
    batch-norm values, ``kh * kw`` depthwise weights, 4 depthwise batch-norm values and
    ``c_out`` projection weights with it (MobileNetV2's convolutions have no bias).

    Returns:
        The count ``N_original - N_pruned_model`` (batch-norm statistics included, as in
        ``model.count_params()``).
    """
    _mobilenet_blocks(model)  # a tf_keras model
    if not isinstance(kept, dict):
        raise ValueError(f"kept must be {{block: kept channel indices}} as prune_hidden_channels returns, got {type(kept).__name__}")
    removed = 0
    for block, k in kept.items():
        expand = model.get_layer(f"block_{block}_expand").get_weights()[0]
        depthwise = model.get_layer(f"block_{block}_depthwise").get_weights()[0]
        project = model.get_layer(f"block_{block}_project").get_weights()[0]
        gone = expand.shape[-1] - len(k)
        per_channel = expand.shape[2] + 4 + depthwise.shape[0] * depthwise.shape[1] + 4 + project.shape[-1]
        removed += gone * per_channel
    return removed


def global_layer_sparsities(model, sparsity, layer_types=("Conv2D", "Dense")) -> dict:
    """Per-layer sparsities that one global magnitude threshold gives a trained model.

    Applies :func:`global_magnitude_masks` to the kernels of the layers of
    ``layer_types`` together and returns the fraction each layer loses. The weights
    pruned overall are exactly ``round(sparsity * N)``, but layers of small weights get
    more than ``sparsity`` and layers of large weights less. Used as per-layer targets
    for gradual pruning (``PruningRecipe(allocation="global")``); a layer whose share
    would reach 1 is capped just below it so that it keeps a weight.

    Args:
        model: a built ``tf_keras`` model.
        sparsity: overall fraction to prune, in ``[0, 1)``.
        layer_types: Keras class names of the layers to prune (tfmot prunes ``Conv2D``
            and ``Dense``, not ``DepthwiseConv2D``).

    Returns:
        ``{layer name: sparsity}`` in layer order.
    """
    kernels = _keras_kernels(model, layer_types)
    names = [name for name, ks in kernels.items() for _ in ks]
    arrays = [k for ks in kernels.values() for k in ks]
    masks = global_magnitude_masks(arrays, sparsity)
    pruned, sizes = {}, {}
    for name, mask in zip(names, masks):
        pruned[name] = pruned.get(name, 0) + int(mask.size - mask.sum())
        sizes[name] = sizes.get(name, 0) + int(mask.size)
    return {name: min(pruned[name] / sizes[name], 1.0 - 1.0 / sizes[name]) for name in sizes}


# ---------------------------------------------------------------------------------------
# Pruning recipes: prune a trained model, fine-tune it, cache the result
# ---------------------------------------------------------------------------------------

PRUNING_METHODS = ("magnitude", "2:4", "channels", "none")
"""What :class:`PruningRecipe` can do: tfmot magnitude pruning to a target sparsity,
tfmot 2:4 pruning, removing hidden channels (:func:`prune_hidden_channels`), or nothing
(the same fine-tuning without pruning: the control that shows what the extra training
alone is worth)."""

PRUNING_VERSION = 1
"""Bumped whenever :func:`prune_and_fine_tune` changes what a recipe produces."""


@dataclasses.dataclass(frozen=True)
class PruningRecipe:
    """How a trained model is pruned and fine-tuned; with the model's config, its cache key.

    Attributes:
        method: one of :data:`PRUNING_METHODS`.
        amount: ``"magnitude"``: the final sparsity ``s_f`` of every prunable kernel;
            ``"channels"``: the share of hidden channels removed from every block;
            ``"2:4"``: must be 0.5 (two of every four weights).
        epochs: fine-tuning epochs (see :func:`mobileopt_ref.models.fine_tune`).
        ramp_epochs: ``"magnitude"`` only: the sparsity rises from 0 to ``amount`` on
            :func:`polynomial_decay_sparsity` (cubic) over the first ``ramp_epochs``
            epochs, pruning every ``frequency`` steps, then stays there. It must be
            shorter than ``epochs``: tfmot applies the final sparsity at the ramp's last
            step, which only a later epoch reaches.
        learning_rate: peak fine-tuning learning rate (cosine-decayed to 0).
        frequency: steps between mask updates (tfmot's ``frequency``).
        allocation: ``"magnitude"`` only: ``"uniform"`` prunes every ``Conv2D`` and
            ``Dense`` kernel to ``amount``; ``"global"`` gives each layer the sparsity
            one global magnitude threshold over the trained model gives it
            (:func:`global_layer_sparsities`), ``amount`` overall.
        name: a label for people, used in the cache folder name; not part of the key.
    """

    method: str
    amount: float
    epochs: int
    learning_rate: float
    ramp_epochs: int = 0
    frequency: int = 50
    allocation: str = "uniform"
    name: str = "pruned"

    def __post_init__(self):
        if self.method not in PRUNING_METHODS:
            raise ValueError(f"method must be one of {', '.join(PRUNING_METHODS)}, got {self.method!r}")
        check_sparsity(self.amount)
        if self.method == "none" and self.amount != 0:
            raise ValueError(f"method 'none' prunes nothing: amount must be 0, got {self.amount!r}")
        if self.method == "2:4" and self.amount != 0.5:
            raise ValueError(f"2:4 pruning removes exactly half the weights: amount must be 0.5, got {self.amount!r}")
        for field in ("epochs", "frequency"):
            value = getattr(self, field)
            if not _is_integer(value) or value < 1:
                raise ValueError(f"{field} must be a positive integer, got {value!r}")
        if not _is_integer(self.ramp_epochs) or not 0 <= self.ramp_epochs <= self.epochs:
            raise ValueError(f"ramp_epochs must be an integer in [0, epochs={self.epochs}], got {self.ramp_epochs!r}")
        if self.method == "magnitude" and not 1 <= self.ramp_epochs < self.epochs:
            raise ValueError(
                f"magnitude pruning needs 1 <= ramp_epochs < epochs (the ramp, then at least one "
                f"epoch at the final sparsity), got ramp_epochs={self.ramp_epochs!r}, epochs={self.epochs!r}"
            )
        if not (_is_number(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if self.allocation not in ("uniform", "global"):
            raise ValueError(f"allocation must be 'uniform' or 'global', got {self.allocation!r}")
        if self.allocation != "uniform" and self.method != "magnitude":
            raise ValueError(f"allocation={self.allocation!r} applies to magnitude pruning only")

    def key(self, base_key: str) -> str:
        """SHA-256 of the recipe (without its name) and the key of the model it prunes."""
        fields = dataclasses.asdict(self)
        fields.pop("name")
        fields.update(base=base_key, pruning_version=PRUNING_VERSION)
        blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def prune_and_fine_tune(model, config, recipe: PruningRecipe, *, verbose: bool = True):
    """Prunes a trained Keras MobileNetV2 as ``recipe`` says and fine-tunes it.

    - ``"magnitude"``: tfmot's ``prune_low_magnitude`` wraps every ``Conv2D`` and
      ``Dense`` layer (tfmot has no pruning for ``DepthwiseConv2D``) with a
      ``PolynomialDecay(0, s_l, begin_step=0, end_step=ramp_epochs * steps_per_epoch,
      frequency)`` schedule, where ``s_l`` is ``amount`` or, with
      ``allocation="global"``, the layer's share from :func:`global_layer_sparsities`;
      fine-tuned with tfmot's ``UpdatePruningStep``, then ``strip_pruning``: an ordinary
      model whose kernels hold exact zeros.
    - ``"2:4"``: the same with ``sparsity_m_by_n=(2, 4)``.
    - ``"channels"``: :func:`prune_hidden_channels` with ``fraction = amount``, then
      ordinary fine-tuning of the thinner model.
    - ``"none"``: ordinary fine-tuning of a copy, the same epochs and learning rate.

    Fine-tuning is :func:`mobileopt_ref.models.fine_tune` (fresh images, Adam, cosine
    decay), so the result is deterministic for a given ``config``.

    Args:
        model: the trained model (left unchanged).
        config: its :class:`mobileopt_ref.models.TrainConfig`.
        recipe: the pruning recipe.
        verbose: print one line per epoch.

    Returns:
        ``(pruned_model, record)``; the record holds the recipe, the base key, the
        fine-tuning history and time, and the machine card.
    """
    from mobileopt_ref import env, models  # noqa: PLC0415
    from mobileopt_ref._keras import keras  # noqa: PLC0415

    import tensorflow_model_optimization as tfmot  # noqa: PLC0415

    env.configure_threads(config.threads)
    env.seed_everything(config.seed)
    steps_per_epoch = config.images_per_epoch // config.batch_size
    callbacks = []
    end_step = recipe.ramp_epochs * steps_per_epoch
    if recipe.method == "magnitude" and end_step % recipe.frequency:
        raise ValueError(
            f"the sparsity ramp ends at step {end_step} ({recipe.ramp_epochs} epochs of "
            f"{steps_per_epoch} steps), not a multiple of frequency={recipe.frequency}: tfmot "
            "prunes only every `frequency` steps, so the final sparsity would never be applied"
        )
    if recipe.method == "channels":
        pruned, _ = prune_hidden_channels(model, recipe.amount)
        trained = pruned
    elif recipe.method == "none":
        trained = keras.models.clone_model(model)
        trained.set_weights(model.get_weights())
    else:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
        if recipe.method == "2:4":
            wrapped = tfmot.sparsity.keras.prune_low_magnitude(copy, sparsity_m_by_n=(2, 4))
        else:
            if recipe.allocation == "global":
                targets = global_layer_sparsities(copy, recipe.amount)
            else:
                targets = {name: recipe.amount for name in _keras_kernels(copy, ("Conv2D", "Dense"))}

            def wrap(layer):
                if layer.name not in targets:
                    return layer
                schedule = tfmot.sparsity.keras.PolynomialDecay(
                    initial_sparsity=0.0,
                    final_sparsity=targets[layer.name],
                    begin_step=0,
                    end_step=end_step,
                    frequency=recipe.frequency,
                )
                return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)

            wrapped = keras.models.clone_model(copy, clone_function=wrap)
        callbacks.append(tfmot.sparsity.keras.UpdatePruningStep())
        trained = wrapped
    history = models.fine_tune(
        trained, config, epochs=recipe.epochs, learning_rate=recipe.learning_rate,
        callbacks=callbacks, verbose=verbose,
    )
    if recipe.method in ("magnitude", "2:4"):
        trained = tfmot.sparsity.keras.strip_pruning(trained)
    record = models.fine_tune_record(config, recipe, recipe.key(config.key()), history)
    return trained, record


def _entry(config, recipe: PruningRecipe, cache_dir):
    """``(entry name, key, build)`` of the cache entry of ``config`` pruned by ``recipe``."""
    from mobileopt_ref import models  # noqa: PLC0415

    key = recipe.key(config.key())
    base = {}

    def trained():
        if "model" not in base:
            base["model"] = models.load_or_train(config, cache_dir, verbose=False)[0]
        return base["model"]

    def build():
        if recipe.method == "channels":
            return prune_hidden_channels(trained(), recipe.amount)[0]
        return models.build_mobilenet_v2(config.alpha, config.resolution, bn_momentum=config.bn_momentum)

    return f"{config.name}-{recipe.name}-{key[:16]}", key, build, trained


def load_cached_pruned(config, recipe: PruningRecipe, cache_dir=None):
    """Loads the verified cache entry of ``config`` pruned by ``recipe``, or returns ``None``.

    Nothing is pruned or fine-tuned (see :func:`mobileopt_ref.models.load_cached`).
    """
    from mobileopt_ref import models  # noqa: PLC0415

    name, key, build, _ = _entry(config, recipe, cache_dir)
    return models.load_entry(name, key, build, cache_dir)


def load_or_prune(config, recipe: PruningRecipe, cache_dir=None, *, retrain=None, verbose: bool = True):
    """Returns the model ``config`` pruned by ``recipe``, from the model cache or made now.

    The trained model comes from :func:`mobileopt_ref.models.load_or_train`; the pruned
    one is cached beside it under ``<config.name>-<recipe.name>-<key>`` and verified by
    its SHA-256 when loaded, like every cache entry (see
    :func:`mobileopt_ref.models.load_or_make`). A ``"channels"`` entry is loaded into the
    thin architecture :func:`prune_hidden_channels` derives from the trained model.

    Returns:
        ``(pruned_model, meta)``.
    """
    from mobileopt_ref import models  # noqa: PLC0415

    name, key, build, trained = _entry(config, recipe, cache_dir)
    return models.load_or_make(
        name, key, build, lambda: prune_and_fine_tune(trained(), config, recipe, verbose=verbose),
        cache_dir, retrain=retrain, verbose=verbose,
    )


def _student_recipes() -> dict:
    common = dict(epochs=16, learning_rate=1e-3)
    ramp = dict(common, ramp_epochs=8)
    return {
        "magnitude50": PruningRecipe("magnitude", 0.5, **ramp, name="magnitude50"),
        "magnitude75": PruningRecipe("magnitude", 0.75, **ramp, name="magnitude75"),
        "magnitude90": PruningRecipe("magnitude", 0.9, **ramp, name="magnitude90"),
        "global75": PruningRecipe("magnitude", 0.75, **ramp, allocation="global", name="global75"),
        "2:4": PruningRecipe("2:4", 0.5, **common, name="2by4"),
        "channels50": PruningRecipe("channels", 0.5, **common, name="channels50"),
        "finetuned": PruningRecipe("none", 0.0, **common, name="finetuned"),
    }


STUDENT_RECIPES = _student_recipes()
"""The pruning chapter's recipes for the student (:data:`mobileopt_ref.models.STUDENT`):
magnitude pruning to 50, 75 and 90 % (uniform) and to 75 % with global allocation, 2:4,
half the hidden channels removed, and the dense student fine-tuned the same way without
pruning (the control); 16 fine-tuning epochs each (the sparsity ramps up over the first 8),
Adam from 1e-3, cosine-decayed. Their results ship in the model cache."""
