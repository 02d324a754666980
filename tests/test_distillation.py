"""Tests of the distillation losses and the Distiller."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mobileopt_ref import distillation as kd


def test_logit_matching_closed_form():
    t = np.array([[2.0, 0.0, -1.0]])
    s = np.array([[1.0, 0.5, -0.5]])
    assert kd.logit_matching_loss(t, s) == pytest.approx((1 + 0.25 + 0.25) / 3)


def test_soft_kl_closed_form_at_two_temperatures():
    t = np.array([[0.0, math.log(3.0)]])  # softmax: 1/4, 3/4
    s = np.zeros((1, 2))  # softmax: 1/2, 1/2
    at_1 = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert kd.soft_kl(t, s, 1.0) == pytest.approx(at_1)
    r = math.sqrt(3.0)  # at T = 2 the teacher's probabilities are 1/(1+r), r/(1+r)
    p = np.array([1 / (1 + r), r / (1 + r)])
    at_2 = 4.0 * float(np.sum(p * np.log(p / 0.5)))
    assert kd.soft_kl(t, s, 2.0) == pytest.approx(at_2)


def test_cross_entropy_and_kd_mix():
    t = np.array([[0.0, math.log(3.0)]])
    s = np.array([[0.0, math.log(3.0)]])
    assert kd.cross_entropy([1], s) == pytest.approx(-math.log(0.75))
    # Same logits: the soft term vanishes and only (1 - alpha) CE remains.
    assert kd.kd_loss(t, s, [1], temperature=3.0, alpha=0.25) == pytest.approx(0.75 * -math.log(0.75))
    s2 = np.zeros((1, 2))
    expected = 0.5 * -math.log(0.5) + 0.5 * kd.soft_kl(t, s2, 2.0)
    assert kd.kd_loss(t, s2, [1], temperature=2.0, alpha=0.5) == pytest.approx(expected)
    assert kd.kd_loss(t, s2, [1], temperature=2.0, alpha=0.0) == pytest.approx(kd.cross_entropy([1], s2))


logits = arrays(np.float64, (3, 5), elements=st.floats(-8, 8, allow_nan=False, width=64))


@settings(max_examples=40, deadline=None)
@given(logits, logits, st.floats(0.5, 20))
def test_soft_kl_is_nonnegative_and_zero_only_for_equal_distributions(t, s, temperature):
    assert kd.soft_kl(t, s, temperature) >= -1e-12
    assert kd.soft_kl(t, t, temperature) == pytest.approx(0.0, abs=1e-12)
    # Shifting a row's logits by a constant leaves its softmax, hence the loss, unchanged.
    assert kd.soft_kl(t + 3.0, s - 1.0, temperature) == pytest.approx(kd.soft_kl(t, s, temperature), abs=1e-9)


@settings(max_examples=20, deadline=None)
@given(logits, logits, st.floats(0.5, 10))
def test_soft_kl_gradient_matches_finite_differences(t, s, temperature):
    grad = kd.soft_kl_gradient(t, s, temperature)
    eps = 1e-6
    for i, j in [(0, 0), (1, 3), (2, 4)]:
        up, down = s.copy(), s.copy()
        up[i, j] += eps
        down[i, j] -= eps
        # soft_kl is a batch mean: its derivative is grad / batch.
        numeric = (kd.soft_kl(t, up, temperature) - kd.soft_kl(t, down, temperature)) / (2 * eps) * len(s)
        assert numeric == pytest.approx(grad[i, j], rel=1e-4, abs=1e-6)


def test_kd_gradient_tends_to_half_the_logit_matching_gradient_as_temperature_grows():
    rng = np.random.default_rng(0)
    t, s = rng.normal(0, 2, (8, 10)), rng.normal(0, 2, (8, 10))
    t -= t.mean(axis=1, keepdims=True)  # Hinton et al.: logits of zero mean per example
    s -= s.mean(axis=1, keepdims=True)
    target = 0.5 * kd.logit_matching_gradient(t, s)
    errors = []
    for temperature in (1, 3, 10, 30, 100, 1000):
        g = kd.soft_kl_gradient(t, s, temperature)
        errors.append(np.abs(g - target).max() / np.abs(target).max())
    assert all(a > b for a, b in zip(errors, errors[1:])), errors  # closer at every step
    assert errors[0] > 0.3 and errors[-1] < 5e-3, errors
    assert 5 < errors[-2] / errors[-1] < 20, errors  # the gap shrinks like 1/T


@pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), float("inf"), "2", True])
def test_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature must be"):
        kd.kd_loss(np.zeros((1, 3)), np.zeros((1, 3)), [0], temperature=temperature, alpha=0.5)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), None, False])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha must be"):
        kd.kd_loss(np.zeros((1, 3)), np.zeros((1, 3)), [0], temperature=2.0, alpha=alpha)


def test_logits_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        kd.logit_matching_loss(np.zeros((2, 10)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="same shape"):
        kd.kd_loss(np.zeros((2, 10)), np.zeros((3, 10)), [0, 1, 2], temperature=2.0, alpha=0.5)
    with pytest.raises(ValueError, match="labels must be"):
        kd.cross_entropy([0, 10], np.zeros((2, 10)))


def test_tensorflow_losses_equal_the_numpy_ones():
    rng = np.random.default_rng(1)
    t, s = rng.normal(0, 3, (16, 10)), rng.normal(0, 3, (16, 10))
    y = rng.integers(0, 10, 16)
    for temperature, alpha in ((1.0, 0.0), (4.0, 0.5), (10.0, 1.0)):
        got = float(kd.tf_kd_loss(t.astype(np.float32), s.astype(np.float32), y, temperature, alpha))
        assert got == pytest.approx(kd.kd_loss(t, s, y, temperature, alpha), rel=1e-5)
    got = float(kd.tf_logit_matching_loss(t.astype(np.float32), s.astype(np.float32)))
    assert got == pytest.approx(kd.logit_matching_loss(t, s), rel=1e-6)


def _dense(units, seed, classes=4):
    from mobileopt_ref._keras import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.layers.Input((6,)), keras.layers.Dense(units, activation="relu"),
                             keras.layers.Dense(classes)])


def test_distiller_refuses_mismatched_models_and_bad_settings():
    teacher = _dense(16, 0)
    with pytest.raises(ValueError, match="same shape"):
        kd.make_distiller(_dense(4, 1, classes=3), teacher)
    with pytest.raises(ValueError, match="loss must be one of"):
        kd.make_distiller(_dense(4, 1), teacher, loss="mse")
    with pytest.raises(ValueError, match="temperature must be"):
        kd.make_distiller(_dense(4, 1), teacher, temperature=0)
    with pytest.raises(ValueError, match="alpha must be"):
        kd.make_distiller(_dense(4, 1), teacher, alpha=2)


def test_distiller_with_alpha_zero_is_ordinary_training():
    from mobileopt_ref._keras import keras

    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 6)).astype(np.float32)
    y = rng.integers(0, 4, 32)
    plain, student = _dense(4, 1), _dense(4, 1)
    plain.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    plain.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
    distiller = kd.make_distiller(student, _dense(16, 0), loss="kd", temperature=5.0, alpha=0.0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    distiller.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(plain.get_weights(), student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_distiller_trains_only_the_student_towards_the_teacher():
    from mobileopt_ref._keras import keras

    rng = np.random.default_rng(3)
    x = rng.normal(size=(256, 6)).astype(np.float32)
    y = rng.integers(0, 4, 256)
    teacher, student = _dense(16, 0), _dense(8, 1)
    teacher_before = [w.copy() for w in teacher.get_weights()]
    before = kd.logit_matching_loss(teacher(x).numpy(), student(x).numpy())
    distiller = kd.make_distiller(student, teacher, loss="logits")
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    history = distiller.fit(x, y, batch_size=32, epochs=20, verbose=0, validation_data=(x, y))
    after = kd.logit_matching_loss(teacher(x).numpy(), student(x).numpy())
    assert after < before / 10, (before, after)
    for a, b in zip(teacher_before, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)  # the teacher is frozen
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    # evaluate() and predict() use the student alone.
    np.testing.assert_allclose(distiller.predict(x, verbose=0), student(x).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(loss="mse"), "loss must be one of"),
        (dict(loss="kd", temperature=0.0), "temperature must be"),
        (dict(loss="kd", temperature=2.0, alpha=1.2), "alpha must be"),
        (dict(loss="logits", temperature=4.0), "no temperature"),
    ],
)
def test_bad_distill_recipes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kd.DistillRecipe(**kwargs)


def test_distilling_with_alpha_zero_reproduces_plain_training_and_is_cached(tiny_config, tmp_path):
    from mobileopt_ref import models

    teacher_config = dataclasses.replace(tiny_config, name="tiny-teacher", seed=1)
    plain, _ = models.load_or_train(tiny_config, tmp_path, verbose=False)
    recipe = kd.DistillRecipe("kd", temperature=4.0, alpha=0.0, name="alpha0")
    student, meta = kd.load_or_distill(tiny_config, teacher_config, recipe, tmp_path, verbose=False)
    assert meta["source"] == "trained" and meta["teacher_key"] == teacher_config.key()
    # Same seeds, initial weights, data and schedule: only the loss's implementation differs.
    for a, b in zip(plain.get_weights(), student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    again, meta2 = kd.load_or_distill(tiny_config, teacher_config, recipe, tmp_path, verbose=False)
    assert meta2["source"] == "cache" and meta2["weights_sha256"] == meta["weights_sha256"]
    other = kd.DistillRecipe("kd", temperature=4.0, alpha=0.5, name="alpha0")
    assert other.key(tiny_config.key(), teacher_config.key()) != recipe.key(tiny_config.key(), teacher_config.key())


def test_sweep_point_records_test_accuracy_and_caches_only_the_record(tiny_config, tmp_path):
    from mobileopt_ref import data, models

    record = kd.sweep_point(tiny_config, tiny_config, None, tmp_path, n_test=64, verbose=False)
    assert record["source"] == "trained" and record["recipe"] is None
    plain, _ = models.load_or_train(tiny_config, tmp_path / "weights", verbose=False)
    images, labels = data.generate_patterns(64, 32, tiny_config.data_seed, split="test",
                                            mix_max=tiny_config.mix_max, noise_max=tiny_config.noise_max)
    assert record["test_accuracy"] == models.evaluate_keras(plain, images, labels)  # deterministic training
    (entry,) = [p for p in tmp_path.iterdir() if p.name.startswith("sweep-")]
    assert [p.name for p in entry.iterdir()] == ["record.json"]
    again = kd.sweep_point(tiny_config, tiny_config, None, tmp_path, n_test=64, verbose=False)
    assert again == dict(record, source="cache")
