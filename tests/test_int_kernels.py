"""Tests of the integer-only reference kernels against LiteRT.

The decisive test takes the layers of a real full-int8 MobileNetV2 (the shipped, trained
student, converted with a representative dataset), feeds each layer the input LiteRT's
reference kernels gave it, and requires the same int8 output, element for element.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobileopt_ref import data, litert, models
from mobileopt_ref import quantization as qz


# --- fixed-point arithmetic -------------------------------------------------------------


@given(st.floats(min_value=1e-8, max_value=100.0, allow_subnormal=False))
@settings(max_examples=200, deadline=None)
def test_quantize_multiplier_represents_the_real_multiplier(m):
    q, shift = qz.quantize_multiplier(m)
    assert 2**30 <= int(q) < 2**31
    assert abs(int(q) * 2.0 ** (int(shift) - 31) - m) <= m * 2.0**-31


@given(
    st.integers(min_value=-(2**24), max_value=2**24),
    st.floats(min_value=1e-6, max_value=0.99, allow_subnormal=False),
)
@settings(max_examples=300, deadline=None)
def test_fixed_point_multiply_is_round_to_nearest(acc, m):
    q, shift = qz.quantize_multiplier(m)
    got = int(qz.multiply_by_quantized_multiplier(acc, q, shift))
    exact = acc * int(q) * 2.0 ** (int(shift) - 31)
    # Two roundings: the first (to an integer before the right shift by r) moves the
    # value by at most 2**-(r+1) after the shift, so the result is the correctly rounded
    # product except when that lies within 2**-(r+1) of a half-way point.
    assert abs(got - exact) <= 1.0
    window = 2.0 ** -(max(-int(shift), 0) + 1)
    if abs(exact - np.floor(exact) - 0.5) > window + 1e-12:
        assert got == np.floor(exact + 0.5)


def test_gemmlowp_rounding_details():
    # SaturatingRoundingDoublingHighMul rounds exact halves upward; the only overflow saturates.
    assert int(qz.saturating_rounding_doubling_high_mul(7, 2**30)) == 4  # 3.5
    assert int(qz.saturating_rounding_doubling_high_mul(-7, 2**30)) == -3  # -3.5
    assert int(qz.saturating_rounding_doubling_high_mul(-(2**31), -(2**31))) == 2**31 - 1
    # RoundingDivideByPOT rounds halves away from zero.
    np.testing.assert_array_equal(qz.rounding_divide_by_pot([7, -7, 5, -5, 6], 1), [4, -4, 3, -3, 3])
    # So the same -3.5 becomes -3 when the tie falls in the multiply (M = 0.5, no shift)
    # and -4 when it falls in the shift (M = 0.25 = 0.5 * 2**-1).
    q, shift = qz.quantize_multiplier(0.5)
    assert (int(q), int(shift)) == (2**30, 0)
    np.testing.assert_array_equal(qz.multiply_by_quantized_multiplier([7, -7], q, shift), [4, -3])
    q, shift = qz.quantize_multiplier(0.25)
    assert (int(q), int(shift)) == (2**30, -1)
    np.testing.assert_array_equal(qz.multiply_by_quantized_multiplier([14, -14], q, shift), [4, -4])


def test_requantization_modes_differ_only_near_half_way_points():
    rng = np.random.default_rng(0)
    acc = rng.integers(-(2**20), 2**20, size=200_000)
    m = np.float64(0.000123456)
    low, high = -128, 127
    fixed = qz.requantize(acc, m, 3, (low, high))
    fp32 = qz.requantize(acc, m, 3, (low, high), rounding="fp32")
    exact = acc * m
    frac = np.abs(exact - np.floor(exact) - 0.5)
    differ = fixed != fp32
    assert 0 < differ.sum() < 0.01 * acc.size
    assert frac[differ].max() < 1e-3  # only where acc * M is within float32 noise of .5
    assert np.abs(fixed.astype(int) - fp32.astype(int)).max() == 1


def test_activation_ranges():
    assert qz.activation_range("NONE", 0.1, 5) == (-128, 127)
    assert qz.activation_range("RELU", 0.1, -20) == (-20, 127)
    assert qz.activation_range("RELU6", 6 / 255, -128) == (-128, 127)  # [0, 6] fills int8
    assert qz.activation_range("RELU6", 0.05, -100) == (-100, 20)
    with pytest.raises(ValueError, match="activation must be one of"):
        qz.activation_range("GELU", 0.1, 0)


# --- the kernels against float arithmetic ------------------------------------------------


def _float_conv(x, w, b, stride, padding):
    from mobileopt_ref._keras import tf

    y = tf.nn.conv2d(x, np.transpose(w, (1, 2, 3, 0)), strides=[1, *stride, 1], padding=padding)
    return y.numpy() + b


@pytest.mark.parametrize("stride, padding", [((1, 1), "SAME"), ((2, 2), "SAME"), ((2, 1), "VALID")])
def test_conv_kernel_matches_float_convolution_of_the_dequantized_operands(stride, padding):
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, size=(2, 9, 8, 5), dtype=np.int8)
    w = rng.integers(-127, 128, size=(6, 3, 3, 5), dtype=np.int8)
    bias = rng.integers(-500, 500, size=6).astype(np.int32)
    z_in, s_in, s_w, s_out, z_out = -3, 0.02, rng.uniform(0.001, 0.01, 6), 0.5, 4
    y = qz.conv2d_int8(
        x, w, bias, input_zero_point=z_in, real_multiplier=s_in * s_w / s_out,
        output_zero_point=z_out, stride=stride, padding=padding,
    )
    real = _float_conv(
        (x.astype(np.float64) - z_in) * s_in, w * s_w[:, None, None, None], bias * s_in * s_w, stride, padding
    )
    expected = np.clip(np.round(real / s_out) + z_out, -128, 127)
    assert y.shape == real.shape
    assert np.abs(y.astype(int) - expected).max() <= 1
    assert np.mean(y == expected) > 0.99


def test_depthwise_and_dense_kernels_match_float_arithmetic():
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, size=(1, 6, 6, 4), dtype=np.int8)
    w = rng.integers(-127, 128, size=(1, 3, 3, 8), dtype=np.int8)  # depth multiplier 2
    bias = np.zeros(8, np.int32)
    acc = qz.depthwise_conv2d_accumulate(x, w, bias, input_zero_point=0, depth_multiplier=2, padding="VALID")
    for k in range(8):
        c = k // 2
        manual = sum(int(x[0, 1 + i - 1, 1 + j - 1, c]) * int(w[0, i, j, k]) for i in range(3) for j in range(3))
        assert acc[0, 0, 0, k] == manual
    xd = rng.integers(-128, 128, size=(3, 20), dtype=np.int8)
    wd = rng.integers(-127, 128, size=(7, 20), dtype=np.int8)
    acc = qz.fully_connected_accumulate(xd, wd, np.arange(7, dtype=np.int32), input_zero_point=5)
    np.testing.assert_array_equal(acc, (xd.astype(int) - 5) @ wd.T.astype(int) + np.arange(7))


def test_kernels_refuse_bad_input():
    x = np.zeros((1, 4, 4, 3), np.int8)
    w = np.zeros((2, 3, 3, 3), np.int8)
    kw = dict(input_zero_point=0, real_multiplier=0.1, output_zero_point=0)
    with pytest.raises(ValueError, match="x must be int8"):
        qz.conv2d_int8(x.astype(np.float32), w, None, **kw)
    with pytest.raises(ValueError, match="weights expect 4 input channels, x has 3"):
        qz.conv2d_int8(x, np.zeros((2, 3, 3, 4), np.int8), None, **kw)
    with pytest.raises(ValueError, match="padding must be 'SAME' or 'VALID'"):
        qz.conv2d_int8(x, w, None, padding="same", **kw)
    with pytest.raises(ValueError, match=r"bias must be integer with shape \(2,\)"):
        qz.conv2d_int8(x, w, np.zeros(2, np.float32), **kw)
    with pytest.raises(ValueError, match=r"depthwise weights must be \(1, kh, kw, 6\)"):
        qz.depthwise_conv2d_int8(x, np.zeros((1, 3, 3, 3), np.int8), None, depth_multiplier=2, **kw)
    with pytest.raises(ValueError, match="rounding must be"):
        qz.requantize(np.zeros(3), 0.1, 0, (-128, 127), rounding="float64")
    with pytest.raises(ValueError, match="finite and non-negative"):
        qz.quantize_multiplier(-0.5)
    with pytest.raises(ValueError, match="must have 2 dimensions"):
        qz.fully_connected_int8(x, np.zeros((2, 3), np.int8), None, **kw)


# --- bit-exact against LiteRT on a real int8 MobileNetV2 ----------------------------------


@pytest.fixture(scope="module")
def student_int8():
    entry = models.load_cached(models.STUDENT)
    if entry is None:
        pytest.fail("the shipped student cache entry is missing; run `make retrain-check`")
    model, _ = entry
    calibration = data.generate_patterns(100, 32, seed=models.STUDENT.data_seed, split="train", epoch=0)[0]
    return litert.to_tflite(model, "full_int8", representative_images=calibration)


@pytest.fixture(scope="module")
def student_int8_input(student_int8):
    graph = litert.read_graph(student_int8)
    x = data.generate_patterns(4, 32, seed=models.STUDENT.data_seed, split="test")[0]
    t = graph.tensors[graph.inputs[0]]
    detail = {"name": t.name, "dtype": np.int8, "quantization": (float(t.scales[0]), int(t.zero_points[0]))}
    return litert.quantize_input(data.preprocess(x), detail)


def test_reference_kernels_are_bit_exact_on_every_layer_of_int8_mobilenet_v2(student_int8, student_int8_input):
    graph = litert.read_graph(student_int8)
    counts = graph.op_counts()
    assert counts["CONV_2D"] == 35 and counts["DEPTHWISE_CONV_2D"] == 17 and counts["FULLY_CONNECTED"] == 1
    rows = litert.kernel_deviations(student_int8, student_int8_input, "reference")
    assert len(rows) == 53
    assert sum(r["elements"] for r in rows) > 200_000
    assert all(r["differ"] == 0 for r in rows), [r for r in rows if r["differ"]]


def test_shipped_kernels_deviate_by_at_most_one_and_xnnpack_is_fp32_requantization(student_int8, student_int8_input):
    xnn = litert.kernel_deviations(student_int8, student_int8_input, "xnnpack")
    builtin = litert.kernel_deviations(student_int8, student_int8_input, "builtin")
    total = sum(r["elements"] for r in xnn)
    assert max(r["max_abs"] for r in xnn + builtin) == 1
    # XNNPACK requantizes in float32: the fp32 emulation reproduces it exactly.
    assert sum(r["differ_fp32"] for r in xnn) == 0
    assert 0 < sum(r["differ"] for r in xnn) < 0.01 * total
    # The optimized built-ins deviate on a few 1x1 (pointwise) convolutions only.
    assert 0 < sum(r["differ"] for r in builtin) < 0.001 * total
    assert {r["kernel"] for r in builtin if r["differ"]} == {"1x1"}


def test_int8_layer_helpers_refuse_other_ops(student_int8):
    graph = litert.read_graph(student_int8)
    add = graph.find("ADD")[0]
    with pytest.raises(ValueError, match="integer kernels exist for"):
        litert.run_int8_layer(graph, add, np.zeros((1, 4, 4, 8), np.int8))
