"""Quantization math and integer-only reference kernels.

Quantization stores a real tensor ``x`` as integers ``q`` in ``[qmin, qmax]`` with a
real ``scale`` ``s`` and an integer ``zero_point`` ``z``:

    q = clip(round(x / s) + z, qmin, qmax)        x_hat = (q - z) * s

*Asymmetric* (affine) quantization fits ``[qmin, qmax]`` to the tensor's range extended
to contain zero; *symmetric* quantization fixes ``z = 0`` and uses the signed narrow
range ``[-(2^(b-1) - 1), 2^(b-1) - 1]``, ``[-127, 127]`` at 8 bits, as LiteRT does for
int8 weights. Either way ``0.0`` is exactly representable, so zero padding and pruned
weights stay exactly zero. With one ``(s, z)`` per output channel (*per-channel*, along
``axis``) a channel of small weights no longer shares the coarse step of the largest:
the error bound of every channel shrinks, though rounding luck can still make the mean
error of a particular tensor larger.

Every element of the range is reconstructed to within half a step, ``|x - x_hat| <=
s / 2``. The metrics measure what is lost: the mean absolute error
``E_q = mean |theta - theta_q|``, the mean squared error and the signal-to-quantization
noise ratio in dB.

The second half of the module runs quantized layers with integers only, as LiteRT's
reference kernels do: int8 operands, int32 accumulators
``acc = bias + sum (x - z_in) * w`` and a fixed-point requantization
``y = clamp(round(acc * M) + z_out)`` with ``M = s_in * s_w / s_out`` applied as an int32
significand and a bit shift (:func:`quantize_multiplier`). On the layers of a real int8
MobileNetV2 they reproduce LiteRT's reference kernels bit for bit (tested).

Explained in notebooks/01_quantization.ipynb.

Example:
    >>> import numpy as np
    >>> from mobileopt_ref import quantization as qz
    >>> w = np.array([-1.0, 0.0, 0.5, 3.0])
    >>> p = qz.compute_params(w, num_bits=8)
    >>> qz.quantize(w, p)
    array([-128,  -64,  -32,  127], dtype=int8)
    >>> qz.quantization_error(w, qz.dequantize(qz.quantize(w, p), p)) < float(p.scale) / 2
    True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

MIN_BITS, MAX_BITS = 2, 16
"""Bit widths this module accepts (inclusive)."""


def _check_bits(num_bits) -> int:
    if (
        isinstance(num_bits, bool)
        or not isinstance(num_bits, (int, np.integer))
        or not MIN_BITS <= num_bits <= MAX_BITS
    ):
        raise ValueError(
            f"num_bits must be an integer from {MIN_BITS} to {MAX_BITS}, got {num_bits!r}"
        )
    return int(num_bits)


def integer_range(num_bits: int, signed: bool = True, narrow: bool = False) -> tuple:
    """Returns ``(qmin, qmax)``, the integers a ``num_bits``-bit value can hold.

    Signed: ``[-2^(b-1), 2^(b-1) - 1]``; unsigned: ``[0, 2^b - 1]``. ``narrow`` drops the
    lowest value, so signed narrow ranges are symmetric: ``[-127, 127]`` at 8 bits.

    Raises:
        ValueError: if ``num_bits`` is not an integer from 2 to 16.
    """
    b = _check_bits(num_bits)
    qmin, qmax = (-(2 ** (b - 1)), 2 ** (b - 1) - 1) if signed else (0, 2**b - 1)
    return (qmin + 1 if narrow else qmin), qmax


@dataclasses.dataclass(frozen=True, eq=False)
class QuantParams:
    """How a tensor is quantized: ``q = clip(round(x / scale) + zero_point, qmin, qmax)``.

    Attributes:
        scale: ``float64`` array, shape ``()`` per-tensor or ``(C,)`` per-channel; every
            entry finite and positive.
        zero_point: ``int64`` array of the same shape, every entry in ``[qmin, qmax]``.
        qmin, qmax: the integer range.
        axis: the non-negative channel axis, or ``None`` for per-tensor.
        num_bits: bit width of the integers.
        symmetric: whether the zero points are all 0 by construction.

    The arrays are made read-only. Comparison is by identity (``eq=False``), because
    arrays have no single truth value; compare fields with ``np.array_equal``.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    qmin: int
    qmax: int
    axis: int | None
    num_bits: int
    symmetric: bool

    def __post_init__(self):
        scale = np.array(self.scale, dtype=np.float64)
        zero_point = np.array(self.zero_point, dtype=np.int64)
        _check_bits(self.num_bits)
        expected_ndim = 0 if self.axis is None else 1
        if scale.ndim != expected_ndim or zero_point.shape != scale.shape:
            raise ValueError(
                f"scale and zero_point must both have shape () for per-tensor (axis None) "
                f"or (C,) for per-channel; got {scale.shape} and {zero_point.shape} with "
                f"axis {self.axis!r}"
            )
        if not np.all(np.isfinite(scale) & (scale > 0)):
            raise ValueError(f"scale must be finite and positive, got {scale}")
        if not self.qmin < self.qmax or np.any((zero_point < self.qmin) | (zero_point > self.qmax)):
            raise ValueError(
                f"need qmin < qmax and zero_point in [qmin, qmax] = [{self.qmin}, "
                f"{self.qmax}], got zero_point {zero_point}"
            )
        scale.setflags(write=False)
        zero_point.setflags(write=False)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", zero_point)

    @property
    def per_channel(self) -> bool:
        """Whether there is one ``(scale, zero_point)`` per channel along ``axis``."""
        return self.axis is not None

    def _broadcast(self, x: np.ndarray) -> tuple:
        """``(scale, zero_point)`` shaped to broadcast against ``x`` along ``axis``."""
        if self.axis is None:
            return self.scale, self.zero_point
        channels = len(self.scale)
        if x.ndim <= self.axis or x.shape[self.axis] != channels:
            raise ValueError(
                f"the params are per-channel along axis {self.axis} with {channels} "
                f"channels, so the array needs at least {self.axis + 1} dimensions and "
                f"{channels} entries along axis {self.axis}; got shape {x.shape}"
            )
        shape = [1] * x.ndim
        shape[self.axis] = channels
        return self.scale.reshape(shape), self.zero_point.reshape(shape)


def _as_finite(name: str, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    bad = np.size(x) - np.count_nonzero(np.isfinite(x))
    if bad:
        raise ValueError(
            f"{name} must be finite, but {bad} of its {x.size} values are NaN or infinite"
        )
    return x


def _normalize_axis(axis, ndim: int) -> int | None:
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"axis must be an integer or None, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"axis {axis} is out of range for an array with ndim {ndim}; allowed: "
            f"{-ndim} to {ndim - 1}, or None for per-tensor"
        )
    return int(axis) % ndim


def compute_params(
    x, num_bits: int = 8, symmetric: bool = False, axis=None, signed: bool = True
) -> QuantParams:
    """Chooses ``scale`` and ``zero_point`` from the range of ``x`` (min/max calibration).

    Asymmetric (affine), over the range extended to contain zero,
    ``lo = min(min(x), 0)``, ``hi = max(max(x), 0)``:

        scale = (hi - lo) / (qmax - qmin)
        zero_point = clip(round(qmin - lo / scale), qmin, qmax)

    so ``0.0`` maps exactly to the integer ``zero_point``. Because zero is included, a
    tensor whose values are all equal to ``c != 0`` still has the range ``|c|`` and ``c``
    maps to ``qmax`` (or ``qmin`` if negative).

    Symmetric: the signed narrow range ``[-(2^(b-1) - 1), 2^(b-1) - 1]``,
    ``zero_point = 0`` and ``scale = max|x| / qmax``, so ``-max|x|`` maps to ``-qmax``.

    A zero range (an all-zero tensor, or an all-zero channel such as a pruned one) gets
    ``scale = 1.0`` and the zero point given by the formulas above (``qmin`` asymmetric,
    0 symmetric), so it quantizes to exact zeros; so does a range of subnormal numbers so
    small (about ``1e-320``) that its scale underflows to 0.

    Args:
        x: the real tensor, any shape, at least one value.
        num_bits: integer bit width, 2 to 16.
        symmetric: symmetric (``zero_point = 0``) instead of asymmetric.
        axis: the channel axis for per-channel params (one per index along ``axis``,
            each from the values of that channel, reducing over all other axes);
            negative values count from the end. ``None`` gives per-tensor params.
        signed: signed or unsigned integers (asymmetric only: symmetric is signed).

    Raises:
        ValueError: for an empty ``x``, NaN or infinite values, a bad bit width, an
            axis out of range, or ``symmetric`` with ``signed=False``.
    """
    x = _as_finite("x", x)
    if x.size == 0:
        raise ValueError("cannot compute quantization params of an empty array")
    if symmetric and not signed:
        raise ValueError("symmetric quantization uses signed integers; use signed=True")
    axis = _normalize_axis(axis, x.ndim)
    reduce = None if axis is None else tuple(d for d in range(x.ndim) if d != axis)
    qmin, qmax = integer_range(num_bits, signed=signed, narrow=symmetric)
    if symmetric:
        scale = np.max(np.abs(x), axis=reduce) / qmax
    else:
        lo = np.minimum(np.min(x, axis=reduce), 0.0)
        hi = np.maximum(np.max(x, axis=reduce), 0.0)
        with np.errstate(over="ignore"):
            scale = (hi - lo) / (qmax - qmin)
        if not np.all(np.isfinite(scale)):
            raise ValueError("the range max(x) - min(x) overflows float64; rescale x first")
    scale = np.where(scale > 0, scale, 1.0)  # zero range: see the docstring
    if symmetric:
        zero_point = np.zeros(scale.shape, dtype=np.int64)
    else:
        zero_point = np.clip(round_half_away(qmin - lo / scale), qmin, qmax).astype(np.int64)
    return QuantParams(scale, zero_point, qmin, qmax, axis, int(num_bits), bool(symmetric))


def round_half_away(v: np.ndarray) -> np.ndarray:
    """Rounds half away from zero, like C's ``std::round`` (``np.round`` rounds to even).

    LiteRT's reference kernels round this way (``TfLiteRound``). Returns an array of the
    input's float dtype.

    ``v - trunc(v)`` is exact in floating point, so values just below ``k + 0.5`` are
    never pushed up, as the naive ``floor(v + 0.5)`` does to 0.49999999999999994.
    """
    whole = np.trunc(v)
    return whole + np.sign(v) * (np.abs(v - whole) >= 0.5)


def _storage_dtype(params: QuantParams) -> np.dtype:
    """``int8`` or ``int16`` for signed ranges, ``uint8`` or ``uint16`` for unsigned ones."""
    candidates = (np.uint8, np.uint16) if params.qmin >= 0 else (np.int8, np.int16)
    for dtype in candidates:
        info = np.iinfo(dtype)
        if info.min <= params.qmin and params.qmax <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def quantize(x, params: QuantParams) -> np.ndarray:
    """Quantizes ``x``: ``q = clip(round(x / scale) + zero_point, qmin, qmax)``.

    ``round`` rounds half away from zero, like ``std::round`` in LiteRT's converter.
    Per-channel params broadcast along ``params.axis``.

    Returns:
        Integers of the same shape as ``x`` in the storage type a ``.tflite`` tensor
        would use: ``int8`` (up to 8 bits) or ``int16`` for signed ranges, ``uint8`` or
        ``uint16`` for unsigned ones. Widen them (``astype(np.int32)``) before any
        arithmetic, which would otherwise wrap around.

    Raises:
        ValueError: for NaN or infinite values, or a shape that does not fit
            per-channel params.
    """
    x = _as_finite("x", x)
    scale, zero_point = params._broadcast(x)
    q = round_half_away(x / scale) + zero_point
    return np.clip(q, params.qmin, params.qmax).astype(_storage_dtype(params))


def dequantize(q, params: QuantParams) -> np.ndarray:
    """Maps integers back to reals: ``x_hat = (q - zero_point) * scale``, in ``float64``.

    Raises:
        ValueError: if ``q`` does not hold integers in ``[qmin, qmax]``, or its shape
            does not fit per-channel params.
    """
    q = np.asarray(q)
    if q.dtype.kind not in "iu" and q.size:
        raise ValueError(f"q must be an integer array (from quantize), got dtype {q.dtype}")
    q = q.astype(np.int64)
    if np.any((q < params.qmin) | (q > params.qmax)):
        raise ValueError(
            f"q must lie in [qmin, qmax] = [{params.qmin}, {params.qmax}], got values "
            f"from {q.min()} to {q.max()}"
        )
    scale, zero_point = params._broadcast(q)
    return (q - zero_point) * scale


def fake_quantize(x, num_bits: int = 8, symmetric: bool = False, axis=None) -> np.ndarray:
    """Quantizes and dequantizes at once: ``dequantize(quantize(x, p), p)``.

    ``p = compute_params(x, num_bits, symmetric, axis)`` (signed integers). The result
    has the float dtype and shape of a real tensor but only takes values on the grid
    ``(q - zero_point) * scale``: what quantization-aware training inserts in the graph.

    With ``p`` kept, grid values are fixed points: ``dequantize(quantize(x_hat, p), p)``
    is ``x_hat`` bit for bit. Calling ``fake_quantize`` again recomputes ``p`` from
    ``x_hat``: symmetric params come out the same (to an ulp), but asymmetric ones can
    differ when ``max(x)`` rounds to ``qmax - 1`` on a tie, e.g. ``[-1000, 1000]`` at 4
    bits, whose ``x_hat`` then spans one step fewer.
    """
    params = compute_params(x, num_bits=num_bits, symmetric=symmetric, axis=axis)
    return dequantize(quantize(x, params), params)


def blockwise_fake_quantize(w, num_bits: int, block_size: int, axis: int = 0) -> np.ndarray:
    """Symmetric block-wise quantization and dequantization, by LiteRT Quantizer's rule.

    ``w`` is cut along ``axis`` into blocks of ``block_size`` values; each block gets
    one scale ``s = max|w_block| / qmax`` with ``qmax = 2^(b-1) - 1``, rounded to
    bfloat16's 8-bit significand and stored as float16 (as the quantizer stores block
    scales), and each value becomes ``clip(rint(w / s), -2^(b-1), qmax) * s``. At 2 bits
    ``qmax`` is 1, so every weight becomes ``-s``, 0 or ``+s``: a value below half its
    block's largest magnitude becomes 0. The rule is ``tensor_zp_scale_from_min_max``
    and ``uniform_quantize`` of ``litert_quantizer.algorithms.uniform_quantize``
    (litert-quantizer 0.11), which quantizes a ``FULLY_CONNECTED`` weight
    ``[out, in]`` in blocks along ``in`` and an ``EMBEDDING_LOOKUP`` table
    ``[rows, dim]`` along ``dim``.

    Args:
        w: float array of any rank.
        num_bits: bits of the signed integers, 2 to 8.
        block_size: values per block; must divide ``w.shape[axis]``.
        axis: the axis cut into blocks.

    Returns:
        float32 array of ``w``'s shape, on each block's grid.

    Raises:
        ValueError: for bits outside 2..8, a block size that does not divide the axis,
            a bad axis, or non-finite values.
    """
    import ml_dtypes  # noqa: PLC0415

    if isinstance(num_bits, bool) or not isinstance(num_bits, (int, np.integer)) or not 2 <= num_bits <= 8:
        raise ValueError(f"num_bits must be an integer from 2 to 8, got {num_bits!r}")
    w = _as_finite("w", w).astype(np.float32)
    axis = _normalize_axis(axis, w.ndim)
    if axis is None:
        raise ValueError("axis must name one axis of w, got None")
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1 \
            or w.shape[axis] % block_size:
        raise ValueError(f"block_size must be a positive divisor of axis {axis}'s length {w.shape[axis]}, "
                         f"got {block_size!r}")
    moved = np.moveaxis(w, axis, -1)
    blocks = moved.reshape(*moved.shape[:-1], moved.shape[-1] // block_size, block_size)
    qmin, qmax = -(2 ** (num_bits - 1)), 2 ** (num_bits - 1) - 1
    bound = np.maximum(np.abs(blocks).max(axis=-1, keepdims=True), 1e-9)
    scale = (bound / qmax).astype(ml_dtypes.bfloat16).astype(np.float16).astype(np.float32)
    q = np.clip(np.rint(blocks / scale), qmin, qmax)
    return np.moveaxis((q * scale).reshape(moved.shape), -1, axis).astype(np.float32)


def _error(x, x_hat) -> np.ndarray:
    x, x_hat = _as_finite("x", x), _as_finite("x_hat", x_hat)
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {x.shape} and {x_hat.shape}")
    if x.size == 0:
        raise ValueError("cannot measure the error of empty arrays")
    return x - x_hat


def quantization_error(x, x_hat) -> float:
    """The mean absolute quantization error ``E_q = mean |theta - theta_q|``.

    Raises:
        ValueError: for arrays of different shapes, empty or non-finite arrays.
    """
    return float(np.mean(np.abs(_error(x, x_hat))))


def mse(x, x_hat) -> float:
    """The mean squared error ``mean (x - x_hat)^2``.

    Raises:
        ValueError: for arrays of different shapes, empty or non-finite arrays.
    """
    return float(np.mean(_error(x, x_hat) ** 2))


def sqnr_db(x, x_hat) -> float:
    """Signal-to-quantization-noise ratio ``10 log10(sum x^2 / sum (x - x_hat)^2)`` in dB.

    Each extra bit halves the step and so adds about 6 dB. Returns ``inf`` when the
    error is exactly zero (and ``-inf`` when ``x`` is all zeros but ``x_hat`` is not).

    Raises:
        ValueError: for arrays of different shapes, empty or non-finite arrays.
    """
    err = _error(x, x_hat)
    noise = float(np.sum(err**2))
    if noise == 0.0:
        return float("inf")
    signal = float(np.sum(np.asarray(x, dtype=np.float64) ** 2))
    return float("-inf") if signal == 0.0 else float(10.0 * np.log10(signal / noise))
# ---------------------------------------------------------------------------------------
# Integer-only reference kernels
# ---------------------------------------------------------------------------------------

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
"""Fused activations the integer kernels understand (LiteRT's names)."""


def quantize_multiplier(real_multiplier):
    """Splits real multipliers into a Q31 fixed-point significand and a power-of-two shift.

    A positive real ``M`` is written ``M = m * 2**shift`` with ``m`` in ``[0.5, 1)``
    (``frexp``); the significand is stored as the int32 ``M0 = round(m * 2**31)``, so
    ``M ~= M0 * 2**(shift - 31)``. This is LiteRT's ``QuantizeMultiplier``: when rounding
    gives ``2**31`` the significand is halved and the shift increased; multipliers too
    small to represent (``shift < -31``) become zero.

    Args:
        real_multiplier: non-negative float or array (computed in float64, as LiteRT does).

    Returns:
        ``(multiplier, shift)``: int64 arrays of the input's shape.

    Raises:
        ValueError: for negative or non-finite multipliers.
    """
    real = np.asarray(real_multiplier, dtype=np.float64)
    if not np.all(np.isfinite(real)) or np.any(real < 0):
        raise ValueError("real multipliers must be finite and non-negative")
    significand, shift = np.frexp(real)
    q = round_half_away(np.asarray(significand * 2.0**31, dtype=np.float64)).astype(np.int64)
    overflow = q == 2**31
    q = np.where(overflow, q // 2, q)
    shift = np.where(overflow, shift + 1, shift).astype(np.int64)
    tiny = shift < -31
    q = np.where(tiny | (real == 0), 0, q)
    shift = np.where(tiny | (real == 0), 0, shift)
    return q, shift


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp's ``SaturatingRoundingDoublingHighMul``: ``round(a * b / 2**31)`` in int32.

    The product is formed in 64 bits, nudged by ``2**30`` (or ``1 - 2**30`` when
    negative) and divided by ``2**31`` with C's truncation toward zero: this rounds to
    nearest, exact halves upward (``3.5 -> 4``, ``-3.5 -> -3``). The only overflow,
    ``a = b = -2**31``, saturates to ``2**31 - 1``.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    product = a * b
    nudge = np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    total = product + nudge
    high = np.sign(total) * (np.abs(total) // (1 << 31))  # C division truncates toward 0
    overflow = (a == _INT32_MIN) & (b == _INT32_MIN)
    return np.where(overflow, _INT32_MAX, high)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp's ``RoundingDivideByPOT``: ``x / 2**exponent`` rounded half away from zero.

    With an arithmetic shift ``x >> e`` (floor) and a correction of one when the
    remainder exceeds half (or, for negative ``x``, exceeds half by more than one).
    """
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(acc, multiplier, shift):
    """Scales int32 accumulators by ``M0 * 2**(shift - 31)`` with integer arithmetic only.

    LiteRT's ``MultiplyByQuantizedMultiplier``: a left shift for positive ``shift``, the
    rounding doubling high multiply by ``M0``, then a rounding right shift. Together they
    compute ``round(acc * M)`` with no floating point. The result is rounded twice
    (to an integer before the right shift by ``r = -shift``, then by the shift), so a
    product lying within ``2**-(r+1)`` of a half-way point can come out one away from the
    correctly rounded ``round(acc * M)``; for the ``M ~ 1e-3`` of typical layers that
    window is below 0.004.

    Args:
        acc: int32 accumulators (any shape).
        multiplier: int32 significands broadcastable to ``acc`` (per channel: last axis).
        shift: exponents, broadcastable like ``multiplier``.
    """
    acc = np.asarray(acc, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    scaled = np.clip(acc * (np.int64(1) << left), _INT32_MIN, _INT32_MAX)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, multiplier), right)


def requantize(acc, real_multiplier, output_zero_point, activation_range, *, rounding="fixed_point"):
    """Maps int32 accumulators to int8 outputs: ``clamp(round(acc * M) + z_out)``.

    ``M = s_in * s_w / s_out`` is the real multiplier of each output channel. Two ways to
    apply it exist in shipped kernels:

    - ``"fixed_point"``: LiteRT's reference and built-in kernels, integer only
      (:func:`quantize_multiplier` then :func:`multiply_by_quantized_multiplier`);
    - ``"fp32"``: XNNPACK's, ``lrintf(float32(acc) * float32(M))``, rounding halves to
      even in single precision.

    The two agree except near a half-way point of ``acc * M``, where they may differ by
    one. The fp32 path errs only within float32 rounding of it; the fixed-point path rounds
    twice (the rounding doubling high multiply, then the rounding right shift), so it can
    part from exact rounding at a wider distance from the half-way point. The quantization
    chapter measures how far on its own layers.

    Args:
        acc: int32 accumulators, channels last.
        real_multiplier: per-tensor float or per-channel array (last axis of ``acc``).
        output_zero_point: the output's zero point.
        activation_range: ``(low, high)`` integer clamp from :func:`activation_range`.
        rounding: ``"fixed_point"`` or ``"fp32"``.

    Returns:
        int8 array of ``acc``'s shape.
    """
    low, high = activation_range
    if rounding == "fixed_point":
        multiplier, shift = quantize_multiplier(real_multiplier)
        scaled = multiply_by_quantized_multiplier(acc, multiplier, shift)
    elif rounding == "fp32":
        scale = np.asarray(real_multiplier, dtype=np.float32)
        product = np.asarray(acc, dtype=np.int64).astype(np.float32) * scale
        scaled = np.rint(product).astype(np.int64)
    else:
        raise ValueError(f"rounding must be 'fixed_point' or 'fp32', got {rounding!r}")
    return np.clip(scaled + int(output_zero_point), low, high).astype(np.int8)


def activation_range(activation, output_scale, output_zero_point, num_bits=8):
    """The integer clamp that implements a fused activation on a quantized output.

    ``RELU`` clamps at the integer that represents 0.0, ``RELU6`` also at the one that
    represents 6.0: ``z + round(0 / s)`` and ``z + round(6 / s)``, intersected with the
    integer range. This is LiteRT's ``CalculateActivationRangeQuantized``.

    Args:
        activation: one of :data:`ACTIVATIONS`.
        output_scale: output scale ``s``.
        output_zero_point: output zero point ``z``.
        num_bits: output bit width (signed).

    Returns:
        ``(low, high)`` as Python ints.
    """
    qmin, qmax = integer_range(num_bits)
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")

    def q(v):
        return int(output_zero_point) + int(round_half_away(np.float64(v / float(output_scale))))

    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, q(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    return max(qmin, q(-1.0)), min(qmax, q(1.0))


def _same_padding(size, kernel, stride, dilation=1):
    """LiteRT's SAME padding: ``out = ceil(size / stride)``, extra padding at the end."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _patches(x, kernel_hw, stride, padding, pad_value):
    """Sliding ``(kh, kw)`` windows of an NHWC tensor: ``(n, oh, ow, c, kh, kw)``."""
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
    kh, kw = kernel_hw
    sh, sw = stride
    if padding == "SAME":
        pads = [(0, 0), _same_padding(x.shape[1], kh, sh), _same_padding(x.shape[2], kw, sw), (0, 0)]
        x = np.pad(x, pads, constant_values=pad_value)
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    return windows[:, ::sh, ::sw]


def _bias(bias, channels):
    """int32 bias as int64 ``(channels,)``; ``None`` means no bias (zeros)."""
    if bias is None:
        return np.zeros(channels, dtype=np.int64)
    bias = np.asarray(bias)
    if bias.shape != (channels,) or not np.issubdtype(bias.dtype, np.integer):
        raise ValueError(f"bias must be integer with shape ({channels},), got {bias.dtype} {bias.shape}")
    return bias.astype(np.int64)


def _check_int8(name, x, ndim):
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"{name} must be int8, got {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {x.shape}")
    return x


def conv2d_accumulate(x, weights, bias, *, input_zero_point, stride=(1, 1), padding="SAME"):
    """The int32 accumulators of an integer convolution (before requantization).

    ``acc[n, i, j, k] = bias[k] + sum_{di, dj, c} (x[n, i*sh+di, j*sw+dj, c] - z_in) * w[k, di, dj, c]``.
    Computed in int64 here; LiteRT uses int32, which these sums never overflow for int8
    operands and realistic kernel sizes.

    Args: as :func:`conv2d_int8`.

    Returns:
        int64 array ``(n, oh, ow, out_channels)``.
    """
    x = _check_int8("x", x, 4)
    weights = _check_int8("weights", weights, 4)
    if weights.shape[3] != x.shape[3]:
        raise ValueError(f"weights expect {weights.shape[3]} input channels, x has {x.shape[3]}")
    patches = _patches(x.astype(np.int64) - int(input_zero_point), weights.shape[1:3], stride, padding, 0)
    # patches: (n, oh, ow, c, kh, kw); weights: (k, kh, kw, c)
    acc = np.einsum("nhwcij,kijc->nhwk", patches, weights.astype(np.int64), optimize=True)
    return acc + _bias(bias, weights.shape[0])


def conv2d_int8(
    x, weights, bias, *, input_zero_point, real_multiplier, output_zero_point,
    stride=(1, 1), padding="SAME", activation_range=(-128, 127), rounding="fixed_point",
):
    """Integer-only 2-D convolution, as LiteRT's reference ``ConvPerChannel``.

    With symmetric int8 weights (zero point 0) the accumulator of output channel ``k`` is

        ``acc[k] = bias[k] + sum_{i,j,c} (x[i,j,c] - z_in) * w[k,i,j,c]``  (int32)

    and the output ``y = clamp(round(acc * M[k]) + z_out)`` with
    ``M[k] = s_in * s_w[k] / s_out`` (:func:`requantize`). Padding contributes nothing:
    padded positions hold ``z_in``, i.e. the real value 0.

    Args:
        x: int8 input ``(n, h, w, c)``.
        weights: int8 filters ``(out_channels, kh, kw, c)`` (LiteRT's OHWI layout).
        bias: int32 ``(out_channels,)`` with scale ``s_in * s_w`` and zero point 0.
        input_zero_point: ``z_in``.
        real_multiplier: ``M``, per tensor or per output channel.
        output_zero_point: ``z_out``.
        stride: ``(sh, sw)``.
        padding: ``"SAME"`` or ``"VALID"``.
        activation_range: integer clamp (:func:`activation_range`).
        rounding: see :func:`requantize`.

    Returns:
        int8 ``(n, oh, ow, out_channels)``.
    """
    acc = conv2d_accumulate(
        x, weights, bias, input_zero_point=input_zero_point, stride=stride, padding=padding
    )
    return requantize(acc, real_multiplier, output_zero_point, activation_range, rounding=rounding)


def depthwise_conv2d_accumulate(
    x, weights, bias, *, input_zero_point, stride=(1, 1), padding="SAME", depth_multiplier=1
):
    """The int32 accumulators of an integer depthwise convolution.

    ``acc[n, i, j, c*d+m] = bias[c*d+m] + sum_{di, dj} (x[n, i*sh+di, j*sw+dj, c] - z_in) * w[0, di, dj, c*d+m]``.

    Args: as :func:`depthwise_conv2d_int8`.

    Returns:
        int64 array ``(n, oh, ow, c * depth_multiplier)``.
    """
    x = _check_int8("x", x, 4)
    weights = _check_int8("weights", weights, 4)
    channels = x.shape[3]
    if weights.shape[0] != 1 or weights.shape[3] != channels * depth_multiplier:
        raise ValueError(
            f"depthwise weights must be (1, kh, kw, {channels * depth_multiplier}) for {channels} "
            f"channels and depth multiplier {depth_multiplier}, got {weights.shape}"
        )
    patches = _patches(x.astype(np.int64) - int(input_zero_point), weights.shape[1:3], stride, padding, 0)
    patches = np.repeat(patches, depth_multiplier, axis=3)  # channel c feeds outputs c*d .. c*d+d-1
    acc = np.einsum("nhwkij,ijk->nhwk", patches, weights[0].astype(np.int64), optimize=True)
    return acc + _bias(bias, weights.shape[3])


def depthwise_conv2d_int8(
    x, weights, bias, *, input_zero_point, real_multiplier, output_zero_point,
    stride=(1, 1), padding="SAME", depth_multiplier=1, activation_range=(-128, 127),
    rounding="fixed_point",
):
    """Integer-only depthwise convolution, as LiteRT's reference ``DepthwiseConvPerChannel``.

    Each input channel ``c`` is filtered on its own; output channel ``k = c * d + m``
    (``d`` the depth multiplier) accumulates
    ``bias[k] + sum_{i,j} (x[i,j,c] - z_in) * w[0,i,j,k]`` and is requantized as in
    :func:`conv2d_int8`.

    Args:
        x: int8 input ``(n, h, w, c)``.
        weights: int8 filters ``(1, kh, kw, c * depth_multiplier)``.
        depth_multiplier: output channels per input channel.
        bias, input_zero_point, real_multiplier: as in :func:`conv2d_int8`.
        output_zero_point, stride, padding: as in :func:`conv2d_int8`.
        activation_range, rounding: as in :func:`conv2d_int8`.

    Returns:
        int8 ``(n, oh, ow, c * depth_multiplier)``.
    """
    acc = depthwise_conv2d_accumulate(
        x, weights, bias, input_zero_point=input_zero_point, stride=stride, padding=padding,
        depth_multiplier=depth_multiplier,
    )
    return requantize(acc, real_multiplier, output_zero_point, activation_range, rounding=rounding)


def fully_connected_accumulate(x, weights, bias, *, input_zero_point):
    """The int32 accumulators of an integer fully connected layer.

    ``acc[n, k] = bias[k] + sum_c (x[n, c] - z_in) * w[k, c]``.

    Args: as :func:`fully_connected_int8`.

    Returns:
        int64 array ``(n, out_features)``.
    """
    x = _check_int8("x", x, 2)
    weights = _check_int8("weights", weights, 2)
    if weights.shape[1] != x.shape[1]:
        raise ValueError(f"weights expect {weights.shape[1]} input features, x has {x.shape[1]}")
    acc = (x.astype(np.int64) - int(input_zero_point)) @ weights.astype(np.int64).T
    return acc + _bias(bias, weights.shape[0])


def fully_connected_int8(
    x, weights, bias, *, input_zero_point, real_multiplier, output_zero_point,
    activation_range=(-128, 127), rounding="fixed_point",
):
    """Integer-only fully connected layer, as LiteRT's reference ``FullyConnected``.

    ``acc[k] = bias[k] + sum_c (x[c] - z_in) * w[k, c]``, requantized as in
    :func:`conv2d_int8`.

    Args:
        x: int8 ``(n, c)``.
        weights: int8 ``(out_features, c)``.
        bias, input_zero_point, real_multiplier: as in :func:`conv2d_int8`.
        output_zero_point, activation_range, rounding: as in :func:`conv2d_int8`.

    Returns:
        int8 ``(n, out_features)``.
    """
    acc = fully_connected_accumulate(x, weights, bias, input_zero_point=input_zero_point)
    return requantize(acc, real_multiplier, output_zero_point, activation_range, rounding=rounding)


# ---------------------------------------------------------------------------------------
# Quantization-aware training, reproducibly, and caching it
# ---------------------------------------------------------------------------------------

QAT_VERSION = 1
"""Bumped whenever :func:`quantization_aware_train` changes what a recipe produces."""


@dataclasses.dataclass(frozen=True)
class QATRecipe:
    """How a trained model is fine-tuned with fake quantization; with its config, its cache key.

    Attributes:
        epochs: fine-tuning epochs (see :func:`mobileopt_ref.models.fine_tune`), positive.
        learning_rate: peak fine-tuning learning rate (cosine-decayed to 0), positive.
        num_bits_weight: bits of the fake-quantized weights, 2-8.
        num_bits_activation: bits of the fake-quantized activations, 2-8. With 8 and 8 the
            model is wrapped by tfmot's ``quantize_model`` (the scheme the LiteRT converter
            turns into a full-integer model); otherwise by ``quantize_apply`` with tfmot's
            experimental ``DefaultNBitQuantizeScheme``.
        name: a label for people, used in the cache folder name; not part of the key.

    Raises:
        ValueError: for a non-positive epoch count or learning rate, or bit widths outside
            2-8.
    """

    epochs: int
    learning_rate: float
    num_bits_weight: int = 8
    num_bits_activation: int = 8
    name: str = "qat"

    def __post_init__(self):
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, (int, float)) \
                or not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate!r}")
        for field in ("num_bits_weight", "num_bits_activation"):
            bits = getattr(self, field)
            if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
                raise ValueError(f"{field} must be an integer from 2 to 8 (tfmot's range), got {bits!r}")

    @property
    def default_scheme(self) -> bool:
        """Whether the recipe is tfmot's default ``quantize_model`` (8-bit weights and activations)."""
        return self.num_bits_weight == 8 and self.num_bits_activation == 8

    def key(self, base_key: str) -> str:
        """SHA-256 of the recipe (without its name) and the key of the model it fine-tunes."""
        fields = dataclasses.asdict(self)
        fields.pop("name")
        fields.update(base=base_key, qat_version=QAT_VERSION)
        blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def wrap(self, model):
        """Returns ``model`` wrapped for quantization-aware training (``model`` is unchanged).

        tfmot clones the model and wraps every supported layer with fake-quantization
        ops, ``x_hat = s * (clip(round(x / s) + z) - z)``, whose gradient is the
        straight-through estimator.
        """
        import tensorflow_model_optimization as tfmot  # noqa: PLC0415

        if self.default_scheme:
            return tfmot.quantization.keras.quantize_model(model)
        n_bit = tfmot.quantization.keras.experimental.default_n_bit
        return tfmot.quantization.keras.quantize_apply(
            tfmot.quantization.keras.quantize_annotate_model(model),
            scheme=n_bit.DefaultNBitQuantizeScheme(
                num_bits_weight=self.num_bits_weight, num_bits_activation=self.num_bits_activation
            ),
        )


def quantization_aware_train(model, config, recipe: QATRecipe, *, verbose: bool = True):
    """Wraps a trained Keras model for quantization-aware training and fine-tunes it.

    The wrapped model (:meth:`QATRecipe.wrap`) is fine-tuned by
    :func:`mobileopt_ref.models.fine_tune` (fresh images, Adam, cosine decay, the config's
    seeds and threads), so the result is deterministic for a given ``config`` on one CPU
    kind and thread count.

    Args:
        model: the trained ``tf_keras`` model (left unchanged).
        config: its :class:`mobileopt_ref.models.TrainConfig`.
        recipe: the bit widths, epochs and learning rate.
        verbose: print one line per epoch.

    Returns:
        ``(qat_model, record)``: the wrapped, fine-tuned model (convert it with
        :func:`mobileopt_ref.litert.to_tflite`) and a record with the recipe, the base
        entry, the key, the fine-tuning history, ``train_seconds`` and the machine card.
    """
    from mobileopt_ref import env, models  # noqa: PLC0415

    env.configure_threads(config.threads)
    env.seed_everything(config.seed)
    wrapped = recipe.wrap(model)
    history = models.fine_tune(wrapped, config, epochs=recipe.epochs, learning_rate=recipe.learning_rate,
                               verbose=verbose)
    record = models.fine_tune_record(config, recipe, recipe.key(config.key()), history)
    return wrapped, record


def _qat_entry(config, recipe: QATRecipe):
    """``(entry name, key, build)`` of the cache entry of ``config`` fine-tuned by ``recipe``."""
    from mobileopt_ref import models  # noqa: PLC0415

    key = recipe.key(config.key())

    def build():
        return recipe.wrap(models.build_mobilenet_v2(config.alpha, config.resolution, bn_momentum=config.bn_momentum))

    return f"{config.name}-{recipe.name}-{key[:16]}", key, build


def load_cached_qat(config, recipe: QATRecipe, cache_dir=None):
    """Loads the verified cache entry of ``config`` fine-tuned by ``recipe``, or returns ``None``.

    Nothing is trained (see :func:`mobileopt_ref.models.load_cached`).
    """
    from mobileopt_ref import models  # noqa: PLC0415

    name, key, build = _qat_entry(config, recipe)
    return models.load_entry(name, key, build, cache_dir)


def load_or_qat(config, recipe: QATRecipe, cache_dir=None, *, retrain=None, verbose: bool = True):
    """Returns the model of ``config`` after quantization-aware training by ``recipe``.

    From the verified model cache (entry ``<config.name>-<recipe.name>-<key>``, its
    weights, quantizer ranges included, checked against their SHA-256 and set into a
    freshly wrapped model), or made now by :func:`quantization_aware_train` from the
    trained model that :func:`mobileopt_ref.models.load_or_train` returns. With
    ``retrain=True`` (or ``MOBILEOPT_RETRAIN=1``) it is always made anew.

    Returns:
        ``(qat_model, meta)``; ``meta["train_seconds"]`` is the fine-tuning time recorded
        when the entry was made, on the machine in ``meta["machine"]``.
    """
    from mobileopt_ref import models  # noqa: PLC0415

    name, key, build = _qat_entry(config, recipe)

    def make():
        base, _ = models.load_or_train(config, cache_dir, verbose=verbose)
        return quantization_aware_train(base, config, recipe, verbose=verbose)

    return models.load_or_make(name, key, build, make, cache_dir, retrain=retrain, verbose=verbose)


STUDENT_QAT_RECIPES = {
    "qat8": QATRecipe(epochs=2, learning_rate=1e-5, name="qat8"),
    "qat-w2a8": QATRecipe(epochs=3, learning_rate=1e-3, num_bits_weight=2, num_bits_activation=8, name="qat-w2a8"),
}
"""The quantization chapter's quantization-aware students (:data:`mobileopt_ref.models.STUDENT`):
8-bit weights and activations for 2 epochs from a learning rate of 1e-5 (converted to a
full-integer model), and 2-bit weights with 8-bit activations for 3 epochs from 1e-3 (the
source article's ``num_bits=2``, evaluated in Keras: LiteRT has no 2-bit kernels). Their
weights ship in the model cache; ``mobileopt retrain-check`` retrains and compares them."""
