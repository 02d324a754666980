"""Tests of the quantization math: ranges, params, round trips, errors (pure numpy)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mobileopt_ref import quantization as qz

# Finite values of moderate magnitude; subnormals would only test float64 itself.
FINITE = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False)
PROPERTY = settings(max_examples=100, deadline=None, database=None)
EPS = np.finfo(np.float64).eps


@st.composite
def cases(draw, per_channel=None):
    """``(x, num_bits, symmetric, axis)``; ``axis`` is None unless per-channel is drawn."""
    shapes = hnp.array_shapes(min_dims=1, max_dims=3, max_side=5)
    x = draw(hnp.arrays(np.float64, shapes, elements=FINITE))
    if per_channel is None:
        per_channel = draw(st.booleans())
    axis = draw(st.integers(-x.ndim, x.ndim - 1)) if per_channel else None
    return x, draw(st.integers(2, 16)), draw(st.booleans()), axis


def _float_tol(x):
    """Rounding slack of float64 arithmetic on values up to max|x|."""
    return 8 * EPS * float(np.max(np.abs(x))) + 1e-300


def _channel_view(params, x):
    """``(scale, zero_point)`` broadcast against ``x``."""
    return params._broadcast(np.asarray(x))


def _depthwise_weights(channels=144, seed=0):
    """Depthwise-like 3x3 weights whose channel std spans 100x (0.01 to 1), log-spaced."""
    rng = np.random.default_rng(seed)
    stds = np.geomspace(0.01, 1.0, channels)
    return rng.standard_normal((3, 3, channels, 1)) * stds[None, None, :, None]


# --- integer ranges --------------------------------------------------------------------


@pytest.mark.parametrize(
    "num_bits, signed, narrow, expected",
    [
        (8, True, False, (-128, 127)),
        (8, True, True, (-127, 127)),
        (8, False, False, (0, 255)),
        (8, False, True, (1, 255)),
        (2, True, False, (-2, 1)),
        (4, True, True, (-7, 7)),
        (16, True, False, (-32768, 32767)),
        (16, False, False, (0, 65535)),
    ],
)
def test_integer_range(num_bits, signed, narrow, expected):
    assert qz.integer_range(num_bits, signed=signed, narrow=narrow) == expected


@pytest.mark.parametrize("num_bits", [0, 1, 17, 8.5, True, 8.0, "8"])
def test_bad_bit_widths_are_refused(num_bits):
    with pytest.raises(ValueError, match="num_bits must be an integer from 2 to 16"):
        qz.integer_range(num_bits)
    with pytest.raises(ValueError, match="num_bits must be an integer from 2 to 16"):
        qz.compute_params(np.ones(3), num_bits=num_bits)


# --- params ----------------------------------------------------------------------------


def test_asymmetric_params_follow_the_formula():
    p = qz.compute_params(np.array([-1.0, 0.0, 0.5, 3.0]), num_bits=8)
    assert p.scale == pytest.approx(4.0 / 255.0)
    assert p.zero_point == -64  # round(-128 + 1 / (4/255)) = round(-64.25)
    assert (p.qmin, p.qmax, p.axis, p.symmetric, p.per_channel) == (-128, 127, None, False, False)
    unsigned = qz.compute_params(np.array([-1.0, 3.0]), signed=False)
    assert (unsigned.qmin, unsigned.qmax, int(unsigned.zero_point)) == (0, 255, 64)
    # A positive-only tensor still includes zero in its range: zero_point = qmin.
    positive = qz.compute_params(np.array([2.0, 3.0]), num_bits=8)
    assert positive.scale == pytest.approx(3.0 / 255.0) and positive.zero_point == -128


def test_per_channel_params_reduce_over_every_other_axis():
    w = _depthwise_weights(channels=6)
    for symmetric in (False, True):
        p = qz.compute_params(w, symmetric=symmetric, axis=-2)
        assert p.axis == 2 and p.scale.shape == p.zero_point.shape == (6,)
        for c in range(6):
            one = qz.compute_params(w[:, :, c, :], symmetric=symmetric)
            assert p.scale[c] == one.scale and p.zero_point[c] == one.zero_point


def test_params_are_read_only_and_validated():
    p = qz.compute_params(np.array([[1.0, -2.0], [3.0, 0.5]]), axis=1)
    with pytest.raises(ValueError, match="read-only"):
        p.scale[0] = 5.0
    base = dict(qmin=-128, qmax=127, axis=None, num_bits=8, symmetric=False)
    with pytest.raises(ValueError, match="scale must be finite and positive"):
        qz.QuantParams(np.float64(-0.1), np.int64(0), **base)
    with pytest.raises(ValueError, match=r"zero_point in \[qmin, qmax\] = \[-128, 127\]"):
        qz.QuantParams(np.float64(0.1), np.int64(200), **base)
    with pytest.raises(ValueError, match=r"shape \(\) for per-tensor"):
        qz.QuantParams(np.ones(3), np.zeros(3), **base)


def test_symmetric_needs_signed_integers():
    with pytest.raises(ValueError, match="symmetric quantization uses signed integers"):
        qz.compute_params(np.ones(3), symmetric=True, signed=False)


# --- round trips (properties) ----------------------------------------------------------


@PROPERTY
@given(cases())
def test_round_trip_error_is_at_most_half_a_step(case):
    """Every x in [lo, hi] (all of x, by construction) comes back within scale / 2."""
    x, num_bits, symmetric, axis = case
    p = qz.compute_params(x, num_bits, symmetric, axis)
    x_hat = qz.dequantize(qz.quantize(x, p), p)
    scale, _ = _channel_view(p, x)
    assert np.all(np.abs(x - x_hat) <= scale / 2 + _float_tol(x))


@PROPERTY
@given(cases())
def test_zero_is_exactly_representable(case):
    x, num_bits, symmetric, axis = case
    p = qz.compute_params(x, num_bits, symmetric, axis)
    zeros = np.zeros_like(x)
    _, zero_point = _channel_view(p, x)
    q = qz.quantize(zeros, p)
    assert np.array_equal(q, np.broadcast_to(zero_point, x.shape))
    assert np.array_equal(qz.dequantize(q, p), zeros)  # exactly 0.0, not merely close
    # Zeros inside x (padding, pruned weights) survive a round trip exactly too.
    x_hat = qz.dequantize(qz.quantize(x, p), p)
    assert np.all(x_hat[x == 0] == 0.0)


@PROPERTY
@given(cases(), st.integers(2, 16))
def test_integers_stay_in_range_and_in_the_storage_dtype(case, num_bits):
    x, _, symmetric, axis = case
    p = qz.compute_params(x, num_bits, symmetric, axis)
    q = qz.quantize(x * 3.0, p)  # values beyond the range clip to [qmin, qmax]
    assert q.dtype == (np.int8 if num_bits <= 8 else np.int16)
    assert p.qmin <= q.min() and q.max() <= p.qmax


@pytest.mark.parametrize(
    "num_bits, signed, dtype",
    [
        (8, True, np.int8),
        (4, True, np.int8),
        (8, False, np.uint8),
        (9, False, np.uint16),
        (12, True, np.int16),
        (16, False, np.uint16),
    ],
)
def test_storage_dtype_is_the_smallest_that_fits(num_bits, signed, dtype):
    p = qz.compute_params(np.array([-1.0, 2.0]), num_bits=num_bits, signed=signed)
    assert qz.quantize(np.array([0.5]), p).dtype == dtype


def test_rounding_is_half_away_from_zero_like_std_round():
    p = qz.QuantParams(np.float64(1.0), np.int64(0), -128, 127, None, 8, True)
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.49999999999999994, 300.0, -300.0])
    assert qz.quantize(x, p).tolist() == [1, 2, 3, -1, -3, 0, 127, -128]
    assert np.round(x[:5]).tolist() == [0, 2, 2, -0, -2]  # numpy's half-to-even differs


# --- symmetric int8 --------------------------------------------------------------------


def test_symmetric_int8_uses_minus_127_to_127():
    x = np.array([-1.0, -0.25, 0.3, 1.0])
    p = qz.compute_params(x, num_bits=8, symmetric=True)
    assert (p.qmin, p.qmax, int(p.zero_point)) == (-127, 127, 0)
    assert p.scale == pytest.approx(1.0 / 127.0)
    assert qz.quantize(x, p).tolist() == [-127, -32, 38, 127]


@PROPERTY
@given(cases())
def test_symmetric_int8_never_uses_minus_128(case):
    x, _, _, axis = case
    x = np.concatenate([x.ravel(), -np.abs(x).ravel()])  # make -max|x| present
    p = qz.compute_params(x, num_bits=8, symmetric=True)
    q = qz.quantize(x, p)
    assert p.qmin == -127 and q.min() >= -127
    if np.any(x != 0):
        assert q[np.argmin(x)] == -127


# --- per-channel versus per-tensor -----------------------------------------------------


@PROPERTY
@given(cases(per_channel=True))
def test_per_channel_error_bound_is_never_worse_than_per_tensor(case):
    """max_c scale_c / 2 <= scale / 2, over channels with a non-zero range."""
    x, num_bits, symmetric, axis = case
    per_tensor = qz.compute_params(x, num_bits, symmetric)
    per_channel = qz.compute_params(x, num_bits, symmetric, axis)
    reduce = tuple(d for d in range(x.ndim) if d != per_channel.axis)
    nonzero = np.any(x != 0, axis=reduce)
    assert np.all(per_channel.scale[nonzero] <= per_tensor.scale)
    # And each channel's actual worst error is within its own half step.
    x_hat = qz.dequantize(qz.quantize(x, per_channel), per_channel)
    worst = np.max(np.abs(x - x_hat), axis=reduce)
    assert np.all(worst <= per_channel.scale / 2 + _float_tol(x))


def test_a_pruned_channel_has_scale_one_but_no_error():
    """The exception to the bound above: an all-zero channel gets scale 1.0 by convention."""
    w = np.array([[0.0, 0.3], [0.0, -0.2], [0.0, 0.1]])
    per_tensor = qz.compute_params(w)
    per_channel = qz.compute_params(w, axis=1)
    assert per_channel.scale[0] == 1.0 > per_tensor.scale
    x_hat = qz.dequantize(qz.quantize(w, per_channel), per_channel)
    assert np.array_equal(x_hat[:, 0], np.zeros(3))


@pytest.mark.parametrize(
    "x, num_bits, symmetric",
    [
        # Per-tensor grid {-0.5, 0, 0.5, 1} hits every value; channel 0 = [0.5, 1] gets
        # the grid {0, 1/3, 2/3, 1} and misses 0.5 by 1/6.
        ([[0.5, -0.5], [1.0, 1.0]], 2, False),
        ([[383.0, 127.0], [0.0, 235.0]], 8, True),
    ],
)
def test_per_channel_mean_error_can_be_larger_by_rounding_luck(x, num_bits, symmetric):
    """Per-channel guarantees a smaller bound, not a smaller mean error on every input."""
    x = np.array(x)
    e_channel = qz.quantization_error(x, qz.fake_quantize(x, num_bits, symmetric, axis=1))
    e_tensor = qz.quantization_error(x, qz.fake_quantize(x, num_bits, symmetric))
    assert e_channel > e_tensor


@pytest.mark.parametrize("symmetric", [False, True])
def test_per_channel_wins_on_depthwise_like_weights(symmetric):
    """144 channels (a MobileNetV2 expansion width) whose std spans 100x.

    Over 200 seeds the per-tensor / per-channel MSE ratio at 8 bits was at least 9.0
    (median 16-19); with only 32 such channels it fell as low as 5.4 (median 11).
    """
    w = _depthwise_weights(channels=144, seed=0)
    per_tensor = qz.fake_quantize(w, 8, symmetric)
    per_channel = qz.fake_quantize(w, 8, symmetric, axis=2)
    assert qz.quantization_error(w, per_channel) * 4 < qz.quantization_error(w, per_tensor)
    assert qz.mse(w, per_tensor) >= 10 * qz.mse(w, per_channel)
    assert qz.sqnr_db(w, per_channel) > qz.sqnr_db(w, per_tensor) + 10


# --- bit width -------------------------------------------------------------------------


@pytest.mark.parametrize("symmetric", [False, True])
def test_error_shrinks_as_bit_width_grows(symmetric):
    w = np.random.default_rng(0).standard_normal((64, 64))
    errors = [qz.mse(w, qz.fake_quantize(w, b, symmetric)) for b in range(2, 17)]
    assert all(finer <= coarser for coarser, finer in zip(errors, errors[1:]))
    # Each bit halves the step: about 6 dB of SQNR per bit once the grid is fine.
    sqnr = [qz.sqnr_db(w, qz.fake_quantize(w, b, symmetric)) for b in (8, 9, 10)]
    assert np.diff(sqnr) == pytest.approx([6.02, 6.02], abs=0.5)


# --- degenerate tensors ----------------------------------------------------------------


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("axis", [None, 0])
def test_all_zero_tensor_gets_scale_one_and_exact_zeros(symmetric, axis):
    x = np.zeros((3, 4))
    p = qz.compute_params(x, symmetric=symmetric, axis=axis)
    assert np.all(p.scale == 1.0)
    assert np.all(p.zero_point == (0 if symmetric else -128))  # qmin - 0 / 1
    assert np.array_equal(qz.dequantize(qz.quantize(x, p), p), x)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("c", [0.7, -3.25, 112.5, 768.2712291434585])
def test_all_equal_tensor_round_trips_to_within_float_rounding(c, symmetric):
    """With zero included the range is |c|, and c maps to qmax (or qmin): no step error.

    Only float64 rounding remains: ``(q - z) * (|c| / n)`` need not be exactly ``c``
    (112.5 symmetric at 4 bits gives 112.50000000000001; 768.2712291434585 asymmetric at
    2 bits gives 768.2712291434584), so equality holds to one ulp, not bit for bit.
    """
    for num_bits in (2, 4, 8, 16):
        x = np.full(5, c)
        p = qz.compute_params(x, num_bits, symmetric)
        assert p.scale == pytest.approx(abs(c) / (p.qmax - p.qmin if not symmetric else p.qmax))
        q = qz.quantize(x, p)
        assert np.all(q == (p.qmax if c > 0 else p.qmin))
        assert np.all(np.abs(qz.dequantize(q, p) - c) <= np.spacing(abs(c)))


# --- fake quantization -----------------------------------------------------------------


@PROPERTY
@given(cases())
def test_fake_quantize_is_quantize_then_dequantize_and_idempotent(case):
    """Idempotent with the params fixed: grid values are fixed points, bit for bit."""
    x, num_bits, symmetric, axis = case
    p = qz.compute_params(x, num_bits, symmetric, axis)
    x_hat = qz.fake_quantize(x, num_bits, symmetric, axis)
    assert np.array_equal(x_hat, qz.dequantize(qz.quantize(x, p), p))
    assert np.array_equal(qz.dequantize(qz.quantize(x_hat, p), p), x_hat)


@PROPERTY
@given(cases())
def test_symmetric_fake_quantize_is_idempotent_with_recomputed_params(case):
    """max|x| maps to +-qmax, so x_hat has the same max|.| and the same grid (to an ulp)."""
    x, num_bits, _, axis = case
    x_hat = qz.fake_quantize(x, num_bits, True, axis)
    again = qz.fake_quantize(x_hat, num_bits, True, axis)
    assert np.all(np.abs(again - x_hat) <= _float_tol(x))


def test_asymmetric_fake_quantize_is_not_idempotent_with_recomputed_params():
    """Recomputing asymmetric params from x_hat can give another grid.

    ``[-1000, 1000]`` at 4 bits: scale s = 2000 / 15 and zero_point = round(-8 + 7.5) =
    -1, so the grid is {-7, ..., 8} * s and -1000 clips to -7 s. On paper 1000 / s = 7.5
    rounds up to 8 s, but in float64 it is 7.4999999..., so 1000 -> 7 s = 933.33: x_hat =
    [-933.33, 933.33] spans 14 steps, not 15, and its own params (scale 14 s / 15)
    move both values by almost half a step. Without such a tie, x_hat's range
    (qmax - qmin) * s need not be bit-exactly hi - lo either, so the grid can move by
    an ulp (``[-37, 997]`` at 5 bits).
    """
    x = np.array([-1000.0, 1000.0])
    x_hat = qz.fake_quantize(x, 4)
    assert x_hat == pytest.approx([-7 * 2000 / 15, 7 * 2000 / 15])
    assert qz.fake_quantize(x_hat, 4) == pytest.approx([-871.1111, 995.5556])
    p = qz.compute_params(x, 4)  # with these params fixed it is idempotent
    assert np.array_equal(qz.dequantize(qz.quantize(x_hat, p), p), x_hat)

    x = np.array([-37.0, 997.0])
    x_hat = qz.fake_quantize(x, 5)
    again = qz.fake_quantize(x_hat, 5)
    assert not np.array_equal(again, x_hat)
    assert np.all(np.abs(again - x_hat) <= 2 * np.spacing(np.abs(x_hat)))


# --- errors ----------------------------------------------------------------------------


def test_metrics_values_and_types():
    x, x_hat = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])
    assert qz.quantization_error(x, x_hat) == pytest.approx(1 / 3)
    assert qz.mse(x, x_hat) == pytest.approx(1 / 3)
    assert qz.sqnr_db(x, x_hat) == pytest.approx(10 * np.log10(14.0))
    for metric in (qz.quantization_error, qz.mse, qz.sqnr_db):
        assert type(metric(x, x_hat)) is float
    assert qz.sqnr_db(x, x) == float("inf")
    assert qz.sqnr_db(np.zeros(2), np.ones(2)) == float("-inf")


@pytest.mark.parametrize("metric", [qz.quantization_error, qz.mse, qz.sqnr_db])
def test_metrics_refuse_mismatched_shapes(metric):
    with pytest.raises(ValueError, match=r"same shape, got \(3,\) and \(1, 3\)"):
        metric(np.ones(3), np.ones((1, 3)))


def test_non_finite_and_empty_inputs_are_refused():
    with pytest.raises(ValueError, match="1 of its 3 values are NaN or infinite"):
        qz.compute_params(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="2 of its 4 values are NaN or infinite"):
        qz.compute_params(np.array([np.inf, 1.0, -np.inf, 0.0]))
    p = qz.compute_params(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="1 of its 2 values are NaN or infinite"):
        qz.quantize(np.array([np.inf, 1.0]), p)
    with pytest.raises(ValueError, match="overflows float64"):
        qz.compute_params(np.array([-1e308, 1e308]))
    tiny = qz.compute_params(np.array([5e-324]))  # a subnormal range: scale underflows
    assert tiny.scale == 1.0 and qz.quantize(np.array([5e-324]), tiny).tolist() == [-128]
    with pytest.raises(ValueError, match="empty array"):
        qz.compute_params(np.array([]))
    with pytest.raises(ValueError, match="empty array"):
        qz.compute_params(np.zeros((0, 4)), axis=1)


def test_bad_axes_are_refused():
    x = np.ones((3, 4))
    message = r"axis 2 is out of range for an array with ndim 2; allowed: -2 to 1"
    with pytest.raises(ValueError, match=message):
        qz.compute_params(x, axis=2)
    with pytest.raises(ValueError, match="axis -3 is out of range .* ndim 2"):
        qz.compute_params(x, axis=-3)
    with pytest.raises(ValueError, match="axis must be an integer or None"):
        qz.compute_params(x, axis=1.0)


def test_per_channel_params_refuse_arrays_of_another_shape():
    p = qz.compute_params(np.ones((3, 4)), axis=1)
    message = r"per-channel along axis 1 with 4 channels.*got shape \(3, 5\)"
    with pytest.raises(ValueError, match=message):
        qz.quantize(np.ones((3, 5)), p)
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*got shape \(4,\)"):
        qz.quantize(np.ones(4), p)
    with pytest.raises(ValueError, match="per-channel along axis 1 with 4 channels"):
        qz.dequantize(np.zeros((3, 5), dtype=np.int8), p)


def test_dequantize_refuses_floats_and_out_of_range_integers():
    p = qz.compute_params(np.array([-1.0, 1.0]), num_bits=4)
    with pytest.raises(ValueError, match="q must be an integer array .* got dtype float64"):
        qz.dequantize(np.array([1.0, 2.0]), p)
    message = r"q must lie in \[qmin, qmax\] = \[-8, 7\], got values from -9 to 3"
    with pytest.raises(ValueError, match=message):
        qz.dequantize(np.array([-9, 3]), p)


def test_blockwise_fake_quantize_hand_checked():
    w = np.array([0.9, -0.3, 0.5, 0.1], np.float32)
    # 2 bits: qmax 1, scale = 0.9 rounded to bfloat16 (0.8984375); 0.5 / s rounds to 1
    np.testing.assert_array_equal(qz.blockwise_fake_quantize(w, 2, 4), [0.8984375, 0, 0.8984375, 0])
    # 4 bits: scale 0.9 / 7 -> 0.12890625; q = rint(w / s) = 7, -2, 4, 1
    np.testing.assert_allclose(qz.blockwise_fake_quantize(w, 4, 4), np.array([7, -2, 4, 1]) * 0.12890625)
    # blocks are independent: a second block's large values do not coarsen the first
    two = qz.blockwise_fake_quantize(np.r_[w, 100 * w], 4, 4)
    np.testing.assert_allclose(two[:4], qz.blockwise_fake_quantize(w, 4, 4))


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_blockwise_fake_quantize_follows_litert_quantizers_rule(bits):
    from litert_quantizer import qtyping
    from litert_quantizer.algorithms.uniform_quantize import uniform_quantize_tensor as uqt

    w = np.random.default_rng(bits).normal(0, 0.02, (64, 96)).astype(np.float32)
    blocks = w.T.reshape(96, 2, 32)  # blocks of 32 along axis 0, as for a dense kernel [in, out]
    _, scale = uqt.tensor_zp_scale_from_min_max(blocks.min(-1), blocks.max(-1), bits, True,
                                                qtyping.QuantGranularity.BLOCKWISE_32)
    qmin, qmax = uqt.get_quantized_range(uqt.IntType(bits, signed=True))
    expected = np.clip(np.rint(blocks / scale[..., None]), qmin, qmax) * scale[..., None]
    np.testing.assert_allclose(qz.blockwise_fake_quantize(w, bits, 32, axis=0), expected.reshape(96, 64).T,
                               rtol=1e-6, atol=0)


@pytest.mark.parametrize(("args", "message"), [
    ((1, 4), "num_bits must be an integer from 2 to 8"),
    ((4, 3), "block_size must be a positive divisor"),
    ((4, 0), "block_size must be a positive divisor"),
    ((4, 4, 2), "out of range"),
])
def test_blockwise_fake_quantize_refuses_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        qz.blockwise_fake_quantize(np.ones((4, 8)), *args)
