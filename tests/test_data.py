"""Tests of the offline pattern dataset."""


import numpy as np
import pytest

from mobileopt_ref import data


def test_shapes_dtypes_and_balanced_labels():
    x, y = data.generate_patterns(105, resolution=48, seed=3)
    assert x.shape == (105, 48, 48, 3) and x.dtype == np.uint8
    assert y.shape == (105,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=data.NUM_CLASSES)
    assert len(counts) == data.NUM_CLASSES == len(data.CLASS_NAMES) >= 10
    assert counts.min() == 10 and counts.max() == 11


def test_same_seed_gives_identical_bytes_and_other_seeds_differ():
    a = data.generate_patterns(64, 32, seed=7)
    b = data.generate_patterns(64, 32, seed=7)
    c = data.generate_patterns(64, 32, seed=8)
    assert a[0].tobytes() == b[0].tobytes() and np.array_equal(a[1], b[1])
    assert a[0].tobytes() != c[0].tobytes()


def test_splits_and_epochs_are_different_streams():
    train, _ = data.generate_patterns(32, 32, seed=0, split="train")
    test, _ = data.generate_patterns(32, 32, seed=0, split="test")
    epoch1, _ = data.generate_patterns(32, 32, seed=0, split="train", epoch=1)
    assert not np.array_equal(train, test)
    assert not np.array_equal(train, epoch1)


@pytest.mark.parametrize("resolution", [32, 64, 224])
def test_resolutions_from_32_to_224(resolution):
    x, _ = data.generate_patterns(12, resolution, seed=0)
    assert x.shape[1:3] == (resolution, resolution)
    # Real images: every one uses a range of pixel values, none is flat.
    spread = x.reshape(len(x), -1).max(axis=1).astype(int) - x.reshape(len(x), -1).min(axis=1)
    assert spread.min() > 40


def test_ten_thousand_images():
    # How long this takes depends on the CPU (about a second on the reference machine);
    # only the result is asserted.
    x, y = data.generate_patterns(10_000, 32, seed=0)
    assert x.shape == (10_000, 32, 32, 3) and x.dtype == np.uint8 and len(y) == 10_000


def test_mixing_makes_images_ambiguous_but_zero_mix_is_clean():
    clean, y = data.generate_patterns(50, 32, seed=0, mix_max=0.0, noise_max=0.0)
    mixed, y2 = data.generate_patterns(50, 32, seed=0, mix_max=0.5, noise_max=0.0)
    assert np.array_equal(y, y2)
    assert not np.array_equal(clean, mixed)


def test_return_mix_gives_the_distractor_weights_of_the_same_images():
    x, y = data.generate_patterns(30, 32, seed=5, mix_max=0.3)
    x2, y2, mix = data.generate_patterns(30, 32, seed=5, mix_max=0.3, return_mix=True)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert mix.shape == (30,) and mix.min() >= 0.0 and mix.max() <= 0.3


def test_preprocess_maps_to_minus_one_one():
    x = np.array([0, 51, 255])
    np.testing.assert_allclose(data.preprocess(x), [-1.0, -0.6, 1.0], rtol=1e-6)
    assert data.preprocess(np.zeros(3, np.uint8)).dtype == np.float32


def test_load_dataset_patterns_has_three_splits():
    ds = data.load_dataset("patterns", 32, n_train=30, n_validation=20, n_test=10, seed=4)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (30, 20, 10)
    assert ds.class_names == data.CLASS_NAMES and ds.resolution == 32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "imagenet"}, "unknown dataset 'imagenet'.*patterns"),
        ({"resolution": 16}, r"resolution must be in \[32, 224\]"),
        ({"resolution": 300}, r"resolution must be in \[32, 224\]"),
        ({"resolution": 64.0}, "resolution must be an integer"),
        ({"n_train": 0}, "n_train must be a positive integer"),
        ({"n_test": -5}, "n_test must be a positive integer"),
    ],
)
def test_load_dataset_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.load_dataset(**{"name": "patterns", "resolution": 32, **kwargs})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "n must be a positive integer"),
        ({"split": "dev"}, "split must be one of"),
        ({"epoch": -1}, "epoch must be a non-negative integer"),
        ({"mix_max": 0.7}, r"mix_max must be in \[0, 0.5\]"),
        ({"noise_max": float("nan")}, "noise_max must be in"),
    ],
)
def test_generate_patterns_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.generate_patterns(**{"n": 4, "resolution": 32, **kwargs})


def test_real_dataset_offline_fails_with_a_message_naming_the_offline_datasets():
    # tensorflow-datasets is not a dependency and this machine is offline: either way
    # the reader must be told which datasets work offline.
    with pytest.raises(RuntimeError) as error:
        data.load_dataset("tf_flowers", 64)
    assert "load_dataset('patterns')" in str(error.value)
    assert "load_dataset('digits')" in str(error.value)


# --- the handwritten digits (scikit-learn's bundled copy, offline) -------------------


@pytest.fixture(scope="module")
def digits():
    return data.load_dataset("digits", 32)


def test_digits_splits_are_disjoint_stratified_and_hold_every_image_once(digits):
    from sklearn.datasets import load_digits

    total = load_digits().target.size
    splits = (digits.train, digits.validation, digits.test)
    assert sum(len(s) for s in splits) == total
    for s in splits:
        assert s.images.shape == (len(s), 32, 32, 3) and s.images.dtype == np.uint8
        assert s.labels.dtype == np.int64
        assert set(np.unique(s.labels)) == set(range(10))
    # Every class is cut 70/10/20 % (within one image of rounding).
    counts = np.bincount(np.concatenate([s.labels for s in splits]), minlength=10)
    for split, s in zip(data.DIGITS_SPLIT, splits):
        share = np.bincount(s.labels, minlength=10) / counts
        assert np.all(np.abs(share - data.DIGITS_SPLIT[split]) <= 1 / counts + 1e-12)
    # Disjoint and complete: the images of the three splits are the whole set, as a multiset.
    everything = np.concatenate([s.images for s in splits]).reshape(total, -1)
    grey = np.rint(data.resize_bilinear(load_digits().images * (255 / 16), 32)).astype(np.uint8)
    source = np.repeat(grey[..., None], 3, axis=-1)

    def rows(a):
        return np.sort(np.ascontiguousarray(a.reshape(total, -1)).view(np.dtype((np.void, 32 * 32 * 3))).ravel())

    assert np.array_equal(rows(everything), rows(source))
    assert digits.class_names == data.DIGIT_CLASS_NAMES and digits.name == "digits"


def test_digits_keep_the_source_grey_levels_and_are_grey(digits):
    x = digits.test.images
    assert np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 0], x[..., 2])
    assert x.min() == 0 and x.max() == 255


def test_digits_same_seed_same_bytes_other_seed_other_split():
    a, b = data.load_digits(32, seed=3), data.load_digits(32, seed=3)
    c = data.load_digits(32, seed=4)
    assert np.array_equal(a.train.images, b.train.images)
    assert np.array_equal(a.test.labels, b.test.labels)
    assert not np.array_equal(a.test.images, c.test.images)


def test_digits_caps_and_bad_input():
    ds = data.load_dataset("digits", 48, n_train=100, n_validation=10, n_test=50)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (100, 10, 50)
    assert ds.test.images.shape[1:] == (48, 48, 3)
    with pytest.raises(ValueError, match="only apply to the 'patterns' dataset"):
        data.load_dataset("digits", 32, mix_max=0.2)
    with pytest.raises(ValueError, match=r"resolution must be in \[32, 224\]"):
        data.load_digits(8)


def test_bilinear_resize_matches_tensorflow_and_keeps_constants():
    from mobileopt_ref._keras import tf

    rng = np.random.default_rng(0)
    img = rng.uniform(0, 16, size=(3, 8, 8))
    for r in (8, 13, 32, 64):
        ours = data.resize_bilinear(img, r)
        theirs = tf.image.resize(img[..., None], (r, r), method="bilinear").numpy()[..., 0]
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(data.resize_bilinear(np.full((1, 8, 8), 7.0), 32), 7.0)
    np.testing.assert_allclose(data.resize_bilinear(img, 8), img, atol=1e-12)
    with pytest.raises(ValueError, match=r"shape \(count, n, n\)"):
        data.resize_bilinear(np.zeros((8, 8)), 32)
