"""Tests of pruning: magnitude and N:M masks, tfmot's schedule, the pruning rate alpha.

The mask tests are pure numpy (property tests); the schedule, N:M axis and pruning-rate
tests compare with tfmot and with small tf_keras models converted to ``.tflite``.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mobileopt_ref import pruning

PROPERTY = settings(max_examples=100, deadline=None, database=None)
SPARSITY = st.floats(0.0, 1.0, exclude_max=True)
# Few distinct magnitudes, so that ties are common and the tie rule gets exercised.
TIED = st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]) | st.floats(-10, 10, allow_subnormal=False)
WEIGHTS = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), elements=TIED)


def _check_one_threshold(weights, mask):
    """Every kept |w| is >= every pruned |w|."""
    magnitudes = np.abs(np.asarray(weights))
    if mask.all() or not mask.any():
        return
    assert magnitudes[mask].min() >= magnitudes[~mask].max()


# --- check_sparsity ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 0.0, 0.5, 0.999, np.float32(0.25), np.int64(0)])
def test_check_sparsity_accepts_fractions_below_one(value):
    assert pruning.check_sparsity(value) == float(value)
    assert type(pruning.check_sparsity(value)) is float


@pytest.mark.parametrize("value", [-0.1, 1.0, 1, 1.5, math.nan, math.inf, True, False, "0.5", None, [0.5]])
def test_check_sparsity_rejects_everything_else(value):
    with pytest.raises(ValueError, match=r"sparsity must be a number in \[0, 1\), got"):
        pruning.check_sparsity(value)


# --- magnitude masks --------------------------------------------------------------------


@PROPERTY
@given(WEIGHTS, SPARSITY)
def test_magnitude_mask_prunes_exactly_k_of_the_smallest(weights, sparsity):
    mask = pruning.magnitude_mask(weights, sparsity)
    assert mask.dtype == bool and mask.shape == weights.shape
    assert np.count_nonzero(~mask) == round(sparsity * weights.size)
    _check_one_threshold(weights, mask)
    assert np.array_equal(mask, pruning.magnitude_mask(weights, sparsity))  # deterministic


def test_magnitude_mask_breaks_ties_by_position():
    # Four equal magnitudes, two pruned: the later ones go, the earlier ones stay.
    w = np.array([1.0, -1.0, 3.0, 1.0, 1.0])
    assert pruning.magnitude_mask(w, 0.4).tolist() == [True, True, True, False, False]
    # C order in several dimensions.
    assert pruning.magnitude_mask(np.ones((2, 2)), 0.5).tolist() == [[True, True], [False, False]]


def test_magnitude_mask_rounds_k_half_to_even():
    w = np.arange(1.0, 11.0)
    assert np.count_nonzero(~pruning.magnitude_mask(w, 0.25)) == 2  # round(2.5) == 2
    assert np.count_nonzero(~pruning.magnitude_mask(w, 0.35)) == 4  # round(3.5) == 4
    assert pruning.magnitude_mask(w, 0.0).all()


@pytest.mark.parametrize(
    "weights, match",
    [
        ([], "empty"),
        (np.zeros((0, 3)), "empty"),
        ([1.0, np.nan], "finite, but 1 of its 2"),
        ([np.inf, 1.0], "finite"),
        (["a", "b"], "real numbers"),
    ],
)
def test_magnitude_mask_rejects_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        pruning.magnitude_mask(weights, 0.5)


@PROPERTY
@given(st.lists(WEIGHTS, min_size=1, max_size=4), SPARSITY)
def test_global_masks_prune_exactly_k_overall_with_one_threshold(weights_list, sparsity):
    masks = pruning.global_magnitude_masks(weights_list, sparsity)
    total = sum(w.size for w in weights_list)
    assert [m.shape for m in masks] == [w.shape for w in weights_list]
    assert sum(np.count_nonzero(~m) for m in masks) == round(sparsity * total)
    flat_w = np.concatenate([w.ravel() for w in weights_list])
    flat_mask = np.concatenate([m.ravel() for m in masks])
    _check_one_threshold(flat_w, flat_mask)
    # The same as pruning the concatenation as one tensor.
    assert np.array_equal(flat_mask, pruning.magnitude_mask(flat_w, sparsity))


def test_global_masks_prune_small_layers_more():
    rng = np.random.default_rng(0)
    small, large = rng.normal(0, 0.01, 1000), rng.normal(0, 1.0, 1000)
    masks = pruning.global_magnitude_masks([small, large], 0.5)
    sparsities = [1 - m.mean() for m in masks]
    assert sum(np.count_nonzero(~m) for m in masks) == 1000
    assert sparsities[0] > 0.95 and sparsities[1] < 0.05
    # Per-tensor pruning would give both exactly one half.
    assert [1 - pruning.magnitude_mask(w, 0.5).mean() for w in (small, large)] == [0.5, 0.5]


def test_global_masks_accept_an_empty_tensor_among_others_but_not_no_weights():
    masks = pruning.global_magnitude_masks([np.zeros(0), np.array([3.0, 1.0])], 0.5)
    assert masks[0].shape == (0,) and masks[1].tolist() == [True, False]
    with pytest.raises(ValueError, match="no weights"):
        pruning.global_magnitude_masks([], 0.5)
    with pytest.raises(ValueError, match="no weights"):
        pruning.global_magnitude_masks([np.zeros(0)], 0.5)
    with pytest.raises(ValueError, match=r"weights_list\[1\] must be finite"):
        pruning.global_magnitude_masks([[1.0], [np.nan]], 0.5)
    with pytest.raises(ValueError, match="sparsity must be a number"):
        pruning.global_magnitude_masks([[1.0]], 1.0)


# --- N:M sparsity -----------------------------------------------------------------------


@st.composite
def n_m_cases(draw):
    m = draw(st.integers(1, 5))
    n = draw(st.integers(1, m))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    shape = list(shape)
    shape[axis] *= m  # divisible by m
    weights = draw(hnp.arrays(np.float64, tuple(shape), elements=TIED))
    return weights, n, m, axis


@PROPERTY
@given(n_m_cases())
def test_n_m_mask_keeps_the_n_largest_of_every_group(case):
    weights, n, m, axis = case
    mask = pruning.n_m_mask(weights, n, m, axis)
    assert mask.dtype == bool and mask.shape == weights.shape
    groups_w = np.moveaxis(np.abs(weights), axis, -1).reshape(-1, m)
    groups_mask = np.moveaxis(mask, axis, -1).reshape(-1, m)
    assert (groups_mask.sum(axis=1) == n).all()
    for w, keep in zip(groups_w, groups_mask):
        _check_one_threshold(w, keep)
    pruned = weights * mask
    assert pruning.is_n_m_sparse(pruned, n, m, axis)


def test_n_m_mask_groups_consecutive_entries_along_the_axis():
    w = np.array([[1.0, 4.0, 2.0, 3.0, 8.0, 5.0, 7.0, 6.0]])
    assert pruning.n_m_mask(w).astype(int).tolist() == [[0, 1, 0, 1, 1, 0, 1, 0]]
    assert pruning.n_m_mask(w.T, axis=0).astype(int).T.tolist() == [[0, 1, 0, 1, 1, 0, 1, 0]]
    assert pruning.n_m_mask(w, 1, 2).astype(int).tolist() == [[0, 1, 0, 1, 1, 0, 1, 0]]
    assert pruning.n_m_mask(w, 4, 4).all()
    # Ties: the earlier entry is kept, as tf.math.top_k does.
    assert pruning.n_m_mask(np.ones(4)).tolist() == [True, True, False, False]


def test_is_n_m_sparse():
    dense = np.arange(1.0, 17.0).reshape(2, 8)
    assert not pruning.is_n_m_sparse(dense)
    assert pruning.is_n_m_sparse(dense * pruning.n_m_mask(dense))
    # 2:4 along the last axis is not 2:4 along the first.
    w = np.array([[1.0, 2.0, 0.0, 0.0]] * 4)
    assert pruning.is_n_m_sparse(w, axis=-1) and not pruning.is_n_m_sparse(w, axis=0)
    # int8 weights as stored in a .tflite file.
    assert pruning.is_n_m_sparse(np.array([0, -3, 0, 127], dtype=np.int8))
    # A shorter last group, as tfmot leaves on 3 input channels: at most n non-zeros too.
    assert pruning.is_n_m_sparse(np.array([1.0, 2.0, 0.0]))
    assert not pruning.is_n_m_sparse(np.array([1.0, 2.0, 0.0, 0.0, 1.0, 2.0, 3.0]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 5, "m": 4}, "n must be at most m"),
        ({"n": 0, "m": 4}, "n .* must be a positive integer"),
        ({"n": 2, "m": 0}, "m .* must be a positive integer"),
        ({"n": True, "m": 4}, "n .* must be a positive integer"),
        ({"n": 2.0, "m": 4}, "n .* must be a positive integer"),
        ({"axis": 2}, "axis 2 is out of range .* allowed: -2 to 1"),
        ({"axis": 1.0}, "axis must be an integer"),
    ],
)
def test_n_m_functions_reject_bad_arguments(kwargs, match):
    w = np.ones((3, 8))
    with pytest.raises(ValueError, match=match):
        pruning.n_m_mask(w, **kwargs)
    with pytest.raises(ValueError, match=match):
        pruning.is_n_m_sparse(w, **kwargs)


def test_n_m_mask_needs_an_axis_length_divisible_by_m():
    with pytest.raises(ValueError, match=r"length of axis 1 \(6, shape \(2, 6\)\) must be divisible by m=4"):
        pruning.n_m_mask(np.ones((2, 6)))
    with pytest.raises(ValueError, match="finite"):
        pruning.n_m_mask([1.0, np.nan, 1.0, 1.0])
    with pytest.raises(ValueError, match="out of range.*a scalar has no axes"):
        pruning.n_m_mask(np.float64(1.0))
    with pytest.raises(ValueError, match="empty"):
        pruning.is_n_m_sparse(np.zeros((0, 4)))


# --- schedule ---------------------------------------------------------------------------


def test_polynomial_decay_by_hand():
    args = dict(initial_sparsity=0.2, final_sparsity=0.8, begin_step=100, end_step=300, power=3)
    assert pruning.polynomial_decay_sparsity(0, **args) == pytest.approx(0.2)
    assert pruning.polynomial_decay_sparsity(100, **args) == pytest.approx(0.2)
    assert pruning.polynomial_decay_sparsity(200, **args) == pytest.approx(0.8 - 0.6 * 0.5**3)
    assert pruning.polynomial_decay_sparsity(300, **args) == pytest.approx(0.8)
    assert pruning.polynomial_decay_sparsity(10**6, **args) == pytest.approx(0.8)
    assert pruning.polynomial_decay_sparsity(150, **{**args, "power": 1}) == pytest.approx(0.35)


def test_should_prune_by_hand():
    assert [s for s in range(0, 40) if pruning.should_prune(s, 10, 30, 7)] == [10, 17, 24]
    assert pruning.should_prune(10**6, 0, -1, 1000)  # -1: for ever
    assert not pruning.should_prune(-1, 0, -1, 1)


GREATER = "end_step must be an integer greater than begin_step"


@pytest.mark.parametrize(
    "args, kwargs, match",
    [  # polynomial_decay_sparsity(step, s_i, s_f, begin, end, power=3, frequency=100)
        ((0, 0.1, 0.5, 10, 5), {}, GREATER),
        ((0, 0.1, 0.5, 10, 10), {}, GREATER),  # tfmot allows it and returns NaN at step 10
        ((0, 0.1, 0.5, 10, -1), {}, GREATER),
        ((0, 0.1, 0.5, -1, 5), {}, "begin_step must be an integer >= 0"),
        ((0, 0.1, 0.5, 0, 5), {"frequency": 0}, "frequency must be a positive integer"),
        ((0, 1.0, 0.5, 0, 5), {}, r"initial_sparsity must be a number in \[0, 1\)"),
        ((0, 0.1, -0.1, 0, 5), {}, r"final_sparsity must be a number in \[0, 1\)"),
        ((0, 0.1, 0.5, 0, 5), {"power": 0}, "power must be a positive"),
        ((0, 0.1, 0.5, 0, 5), {"power": math.nan}, "power must be a positive"),
        ((0, 0.1, 0.5, 0, 5), {"power": True}, "power must be a positive"),
        ((1.5, 0.1, 0.5, 0, 5), {}, "step must be an integer"),
    ],
)
def test_polynomial_decay_rejects_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pruning.polynomial_decay_sparsity(*args, **kwargs)


@pytest.mark.parametrize(
    "args, match",
    [  # should_prune(step, begin, end, frequency)
        ((0, 10, 5, 1), r"end_step must be -1 \(prune forever\) or an integer >= begin_step \(10\)"),
        ((0, 10, -2, 1), "end_step must be -1"),
        ((0, -1, 5, 1), "begin_step must be an integer >= 0"),
        ((0, 0, 5, 0), "frequency must be a positive integer"),
        ((0.5, 0, 5, 1), "step must be an integer"),
    ],
)
def test_should_prune_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        pruning.should_prune(*args)


# --- pruning rate of arrays -------------------------------------------------------------


def test_pruning_rate_counts_exact_zeros():
    assert pruning.pruning_rate([np.array([0.0, 1.0, 0.0, 2.0]), np.array([[0.0, 0.0], [3.0, 0.0]])]) == 5 / 8
    assert pruning.pruning_rate([np.array([-0.0, 1e-30])]) == 0.5
    assert pruning.pruning_rate(np.array([0, 5, -1, 0, 0], dtype=np.int8)) == 0.6
    assert pruning.pruning_rate([[1.0, 2.0]]) == 0.0
    assert pruning.pruning_rate([np.zeros(3)]) == 1.0
    with pytest.raises(ValueError, match="no weights to count"):
        pruning.pruning_rate([])
    with pytest.raises(ValueError, match="no weights to count"):
        pruning.pruning_rate([np.zeros((0, 2))])


def test_numpy_part_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, mobileopt_ref.pruning; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- against tfmot ----------------------------------------------------------------------

SCHEDULES = [
    # initial, final, begin, end, power, frequency
    (0.0, 0.5, 0, 1000, 3, 100),
    (0.2, 0.8, 100, 350, 3, 10),
    (0.5, 0.9, 7, 8, 1, 1),
    (0.1, 0.75, 50, 199, 0.5, 13),
    (0.6, 0.3, 20, 120, 2, 25),  # decreasing: allowed by tfmot too
]


@pytest.fixture(scope="module")
def tfmot():
    from mobileopt_ref._keras import tf  # noqa: F401  (selects Keras 2 first)
    import tensorflow_model_optimization as tfmot

    return tfmot


@pytest.mark.parametrize("initial, final, begin, end, power, frequency", SCHEDULES)
def test_schedule_matches_tfmot_polynomial_decay(tfmot, initial, final, begin, end, power, frequency):
    from mobileopt_ref._keras import tf

    schedule = tfmot.sparsity.keras.PolynomialDecay(initial, final, begin, end, power, frequency)
    steps = sorted({*range(0, end + 3 * frequency + 2, max(1, (end + 3 * frequency) // 97)),
                    begin - 1, begin, begin + 1, end - 1, end, end + 1, end + frequency} - {-1})
    for step in steps:
        expected_prune, expected_sparsity = schedule(tf.constant(step))
        got = pruning.polynomial_decay_sparsity(step, initial, final, begin, end, power, frequency)
        assert got == pytest.approx(float(expected_sparsity), abs=1e-6), step
        assert pruning.should_prune(step, begin, end, frequency) == bool(expected_prune), step


def test_should_prune_matches_tfmot_without_end(tfmot):
    from mobileopt_ref._keras import tf

    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=30, end_step=-1, frequency=20)
    for step in [0, 29, 30, 31, 49, 50, 70, 1010, 10**6 + 10]:
        assert pruning.should_prune(step, 30, -1, 20) == bool(schedule(tf.constant(step))[0]), step


@pytest.mark.parametrize("n, m", [(2, 4), (1, 4), (3, 8)])
def test_n_m_axis_matches_tfmot(tfmot, n, m):
    """tfmot's sparsity_m_by_n groups Dense kernels along axis 0 and Conv2D kernels along axis 2."""
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_utils

    from mobileopt_ref._keras import tf

    def tfmot_mask(kernel):  # what PruningImpl._update_mask_sparsity_m_by_n computes
        w = tf.constant(kernel, tf.float32)
        rearranged = pruning_utils.weights_rearrange(w)
        mask = pruning_utils.generate_m_by_n_mask(rearranged, (m - n, m))
        return pruning_utils.m_by_n_sparsity_mask_prepare(mask, w.shape).numpy().astype(bool)

    rng = np.random.default_rng(n * 10 + m)
    dense = rng.standard_normal((16, 6)).astype(np.float32)  # (in, out)
    conv = rng.standard_normal((3, 3, 8, 5)).astype(np.float32)  # (kh, kw, cin, cout)
    assert np.array_equal(tfmot_mask(dense), pruning.n_m_mask(dense, n, m, axis=0))
    assert np.array_equal(tfmot_mask(conv), pruning.n_m_mask(conv, n, m, axis=2))
    # In the .tflite layouts, (out, in) and (cout, kh, kw, cin), that is the last axis.
    assert pruning.is_n_m_sparse((dense * tfmot_mask(dense)).T, n, m, axis=-1)
    assert pruning.is_n_m_sparse(np.transpose(conv * tfmot_mask(conv), (3, 0, 1, 2)), n, m, axis=-1)
    assert n == m or not pruning.is_n_m_sparse(conv * tfmot_mask(conv), n, m, axis=-1)


# --- pruning rate of Keras models and .tflite files -------------------------------------


def _tiny_model(batch_norm=False):
    """Conv2D, DepthwiseConv2D, 1x1 Conv2D, Dense; |w| in [0.5, 1] with random signs."""
    from mobileopt_ref._keras import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    body = [layers.Conv2D(8, 3, padding="same", use_bias=not batch_norm, name="conv")]
    if batch_norm:
        body += [layers.BatchNormalization(name="bn"), layers.ReLU()]
    model = keras.Sequential(
        [
            layers.Input((8, 8, 3)),
            *body,
            layers.DepthwiseConv2D(3, padding="same", activation="relu", name="depthwise"),
            layers.Conv2D(12, 1, name="project"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(4, name="dense"),
        ]
    )
    rng = np.random.default_rng(1)
    for layer in model.layers:
        for w in layer.weights:
            if w.name.split(":")[0].endswith("kernel"):
                magnitudes = rng.uniform(0.5, 1.0, w.shape) * rng.choice([-1.0, 1.0], w.shape)
                w.assign(magnitudes.astype(np.float32))
    return model


def _zero(model, layer_name, fraction, seed):
    """Zeros a given fraction of a layer's kernel; returns the count zeroed."""
    layer = model.get_layer(layer_name)
    kernel = layer.weights[0]
    values = kernel.numpy()
    count = round(fraction * values.size)
    flat = values.ravel()
    flat[np.random.default_rng(seed).permutation(values.size)[:count]] = 0.0
    kernel.assign(values)
    return count


@pytest.fixture(scope="module")
def pruned_model():
    model = _tiny_model()
    zeroed = {
        "conv": _zero(model, "conv", 0.5, 0),  # 216 weights
        "depthwise": _zero(model, "depthwise", 0.25, 1),  # 72
        "project": _zero(model, "project", 0.75, 2),  # 96
        "dense": 0,  # 48
    }
    return model, zeroed


def test_keras_pruning_rate_counts_kernels_only(pruned_model):
    model, zeroed = pruned_model
    sizes = {"conv": 216, "depthwise": 72, "project": 96, "dense": 48}
    # The biases are all zero (never trained) and must not count.
    assert all(not model.get_layer(n).bias.numpy().any() for n in ("conv", "project", "dense"))
    assert pruning.layer_sparsities(model) == {n: zeroed[n] / sizes[n] for n in sizes}
    assert pruning.keras_pruning_rate(model) == sum(zeroed.values()) / sum(sizes.values())
    only_conv = ("Conv2D",)
    assert pruning.layer_sparsities(model, only_conv) == {"conv": 0.5, "project": 0.75}
    assert pruning.keras_pruning_rate(model, only_conv) == (108 + 72) / (216 + 96)


def test_tflite_pruning_rate_equals_keras_rate(pruned_model):
    from mobileopt_ref import litert

    model, _ = pruned_model
    tflite = litert.to_tflite(model)
    keras_layers = pruning.layer_sparsities(model)
    tflite_layers = pruning.tflite_layer_sparsities(tflite)
    # Without batch normalization every kernel becomes one weight tensor, named after it.
    assert len(tflite_layers) == len(keras_layers)
    for (keras_name, expected), (tflite_name, got) in zip(keras_layers.items(), tflite_layers.items()):
        assert f"/{keras_name}/" in tflite_name
        assert got == expected
    assert pruning.tflite_pruning_rate(tflite) == pruning.keras_pruning_rate(model)
    # float16 weights are stored as such and expanded by DEQUANTIZE operators.
    assert pruning.tflite_pruning_rate(litert.to_tflite(model, "float16")) == pruning.keras_pruning_rate(model)


def test_sparse_format_file_stores_fewer_values_and_computes_the_same(pruned_model):
    from mobileopt_ref import litert

    model, _ = pruned_model
    dense = litert.to_tflite(model)
    sparse = litert.to_tflite(model, sparse=True)
    graph = litert.read_graph(sparse)
    stored = [t for t in graph.tensors if t.sparse]
    assert stored and graph.op_counts().get("DENSIFY") == len(stored)
    # Only the stored values are in the file: fewer than the dense shape holds.
    assert all(t.data.ndim == 1 and t.data.size < np.prod(t.shape) for t in stored)
    # The rate is counted over the dense shape, through the DENSIFY operators.
    assert pruning.tflite_pruning_rate(sparse) == pruning.tflite_pruning_rate(dense) == pruning.keras_pruning_rate(model)
    x = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    np.testing.assert_allclose(litert.predict_tflite(sparse, x), litert.predict_tflite(dense, x), rtol=1e-5, atol=1e-6)


def test_int8_tflite_counts_zero_integers_and_weights_that_round_to_them(pruned_model):
    from mobileopt_ref import litert

    model, _ = pruned_model
    images = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3), dtype=np.uint8)
    int8 = litert.to_tflite(model, "full_int8", representative_images=images)
    graph = litert.read_graph(int8)
    weights = [graph.tensors[op.inputs[1]] for op in graph.find(*pruning.TFLITE_OPS)]
    assert all(w.dtype is np.int8 and not w.zero_points.any() for w in weights)  # symmetric
    # |w| >= 0.5 of a channel max <= 1 never rounds to 0: the zeros are the pruned weights.
    assert pruning.tflite_pruning_rate(int8) == pruning.keras_pruning_rate(model)
    assert list(pruning.tflite_layer_sparsities(int8).values()) == list(pruning.layer_sparsities(model).values())

    # A tiny weight, below half a quantization step, becomes a zero integer too.
    tiny = _tiny_model()
    kernel = tiny.get_layer("dense").kernel
    kernel.assign(np.where(np.arange(48).reshape(12, 4) == 5, 1e-4, kernel.numpy()))
    assert pruning.keras_pruning_rate(tiny) == 0.0
    tiny_int8 = litert.to_tflite(tiny, "full_int8", representative_images=images)
    assert pruning.tflite_pruning_rate(tiny_int8) == 1 / (216 + 72 + 96 + 48)


def test_int4_weights_are_unpacked(pruned_model):
    from mobileopt_ref import litert

    model, _ = pruned_model
    int4 = litert.quantize_with_recipe(litert.to_tflite(model), "weight_only_wi4_afp32")
    graph = litert.read_graph(int4)
    assert "INT4" in {t.dtype for t in graph.tensors if isinstance(t.dtype, str)}
    # |w| in [0.5, 1] of a channel max <= 1 is at least 3 of the 7 int4 steps: no new zeros.
    got = pruning.tflite_layer_sparsities(int4)
    assert list(got.values()) == list(pruning.layer_sparsities(model).values())
    assert pruning.tflite_pruning_rate(int4) == pruning.keras_pruning_rate(model)


def test_folded_batch_norm_keeps_the_zeros():
    from mobileopt_ref import litert

    model = _tiny_model(batch_norm=True)
    bn = model.get_layer("bn")
    rng = np.random.default_rng(3)
    bn.set_weights([rng.uniform(0.5, 2, 8), rng.normal(0, 1, 8), rng.normal(0, 1, 8), rng.uniform(0.5, 2, 8)])
    _zero(model, "conv", 0.5, 4)
    tflite = litert.to_tflite(model)
    assert litert.read_graph(tflite).op_counts().get("MUL", 0) == 0  # folded into the conv
    assert pruning.tflite_pruning_rate(tflite) == pruning.keras_pruning_rate(model)
    assert list(pruning.tflite_layer_sparsities(tflite).values())[0] == 0.5


def test_tfmot_wrapped_model_is_looked_into(tfmot):
    """One training step of prune_low_magnitude at 50 %: Conv2D and Dense, not depthwise."""
    from mobileopt_ref._keras import keras

    sparsity = tfmot.sparsity.keras
    model = sparsity.prune_low_magnitude(
        _tiny_model(), pruning_schedule=sparsity.ConstantSparsity(0.5, begin_step=0, frequency=1)
    )
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", run_eagerly=True)
    x, y = np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 4), np.float32)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[sparsity.UpdatePruningStep()])
    expected = {"conv": 0.5, "depthwise": 0.0, "project": 0.5, "dense": 0.5}
    assert pruning.layer_sparsities(model) == expected
    assert pruning.layer_sparsities(sparsity.strip_pruning(model)) == expected
    assert pruning.keras_pruning_rate(model, ("Conv2D", "Dense")) == 0.5


def test_nested_models_are_looked_into(pruned_model):
    from mobileopt_ref._keras import keras

    model, _ = pruned_model
    outer = keras.Sequential([keras.layers.Input((8, 8, 3)), model, keras.layers.Dense(2, name="conv")])
    outer.get_layer("conv").kernel.assign(np.zeros((4, 2), np.float32))
    inner = {f"{model.name}/{name}": s for name, s in pruning.layer_sparsities(model).items()}
    assert pruning.layer_sparsities(outer) == {**inner, "conv": 1.0}
    assert pruning.keras_pruning_rate(outer) == (
        pruning.keras_pruning_rate(model) * 432 + 8
    ) / 440


def test_models_without_prunable_layers_are_rejected():
    from mobileopt_ref import litert
    from mobileopt_ref._keras import keras

    model = keras.Sequential([keras.layers.Input((4, 4, 3)), keras.layers.GlobalAveragePooling2D()])
    with pytest.raises(ValueError, match=r"no built layer of the types \('Conv2D', 'DepthwiseConv2D', 'Dense'\)"):
        pruning.keras_pruning_rate(model)
    with pytest.raises(ValueError, match="no built layer"):
        pruning.layer_sparsities(model)
    with pytest.raises(ValueError, match="no CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED operator"):
        pruning.tflite_pruning_rate(litert.to_tflite(model))
    with pytest.raises(ValueError, match="layer_types must be a non-empty sequence"):
        pruning.keras_pruning_rate(model, "Conv2D")
    with pytest.raises(ValueError, match="model must be a tf_keras model"):
        pruning.keras_pruning_rate(np.zeros(3))
