"""Tests of the MobileNetV2 builders, deterministic training and the model cache."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from mobileopt_ref import models


def test_teacher_and_student_are_keras_mobilenet_v2_with_logits():
    teacher = models.build_mobilenet_v2(models.TEACHER_ALPHA, 64)
    student = models.build_mobilenet_v2(models.STUDENT_ALPHA, 64)
    assert teacher.name.startswith("mobilenetv2_1.00") and student.name.startswith("mobilenetv2_0.35")
    assert teacher.output_shape == student.output_shape == (None, 10)
    assert teacher.layers[-1].activation.__name__ == "linear"  # logits, no softmax
    # Published parameter counts of the Keras model (ImageNet head 1000 classes) are
    # 3,538,984 (alpha 1.0); with a 10-class head the Dense layer shrinks accordingly.
    assert models.count_params(teacher) == 3_538_984 - 1281 * 1000 + 1281 * 10
    assert models.count_params(student) < models.count_params(teacher) / 4
    bn = [l for l in student.layers if l.__class__.__name__ == "BatchNormalization"]
    assert bn and all(layer.momentum == 0.9 for layer in bn)


@pytest.fixture(scope="module")
def trained_entry(tiny_config, tmp_path_factory):
    """One tiny training, cached: (cache folder, meta). Tests copy the folder."""
    cache = tmp_path_factory.mktemp("cache")
    _, meta = models.load_or_train(tiny_config, cache, verbose=False)
    assert meta["source"] == "trained"
    return cache, meta


@pytest.fixture
def cache_copy(trained_entry, tmp_path):
    cache, _ = trained_entry
    shutil.copytree(cache, tmp_path, dirs_exist_ok=True)
    return tmp_path


def test_training_the_same_config_twice_gives_bit_identical_weights(tiny_config, trained_entry):
    _, first = trained_entry
    second, rec2 = models.train(tiny_config, verbose=False)
    assert models.weights_digest(second.get_weights()) == first["weights_sha256"]
    assert rec2["history"] == first["history"]
    # ...and a different seed gives different weights, so the check above can fail.
    other, _ = models.train(dataclasses.replace(tiny_config, seed=1), verbose=False)
    assert models.weights_digest(other.get_weights()) != first["weights_sha256"]


def test_cache_round_trip(tiny_config, trained_entry, cache_copy):
    _, meta = trained_entry
    entry = cache_copy / tiny_config.entry_name()
    assert sorted(p.name for p in entry.iterdir()) == ["meta.json", "weights.npz"]
    loaded, meta2 = models.load_or_train(tiny_config, cache_copy, verbose=False)
    assert meta2["source"] == "cache"
    assert models.weights_digest(loaded.get_weights()) == meta["weights_sha256"]
    # No temporary folders were left behind by the atomic write.
    assert [p.name for p in trained_entry[0].iterdir()] == [tiny_config.entry_name()]


def test_key_depends_on_training_fields_only():
    a = models.TrainConfig(name="a")
    assert a.key() == models.TrainConfig(name="b").key()
    assert a.key() != models.TrainConfig(seed=1).key()
    assert a.key() != models.TrainConfig(threads=1).key()
    assert a.key() != models.TrainConfig(ramp_epochs=0).key()
    assert a.key() != models.TrainConfig(dataset="digits").key()


def _damage(entry, how):
    weights, meta_file = entry / "weights.npz", entry / "meta.json"
    if how == "truncate":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif how == "flip":
        # Change one stored weight but keep a valid file: only the SHA-256 catches it.
        with np.load(weights) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["w0000"] = arrays["w0000"].copy()
        arrays["w0000"].flat[0] += 1.0
        np.savez_compressed(weights, **arrays)
    elif how == "drop_meta":
        meta_file.unlink()
    elif how == "bad_json":
        meta_file.write_text("{not json")
    elif how == "other_config":
        meta = json.loads(meta_file.read_text())
        meta["key"] = "0" * 64
        meta_file.write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", ["truncate", "flip", "drop_meta", "bad_json", "other_config"])
def test_corrupt_cache_entries_are_detected(tiny_config, cache_copy, damage, capsys):
    _damage(cache_copy / tiny_config.entry_name(), damage)
    assert models.load_cached(tiny_config, cache_copy) is None
    assert "cache entry unusable" in capsys.readouterr().err


def test_a_corrupt_entry_is_rebuilt_by_training(tiny_config, trained_entry, cache_copy):
    _, meta = trained_entry
    entry = cache_copy / tiny_config.entry_name()
    _damage(entry, "flip")
    _, rebuilt = models.load_or_train(tiny_config, cache_copy, verbose=False)
    assert rebuilt["source"] == "trained"
    # The rebuilt entry is valid again and equals the original training.
    assert rebuilt["weights_sha256"] == meta["weights_sha256"]
    assert models.load_cached(tiny_config, cache_copy) is not None
    assert sorted(p.name for p in cache_copy.iterdir()) == [tiny_config.entry_name()]


def test_retrain_flag_trains_even_when_cached(tiny_config, cache_copy, monkeypatch):
    monkeypatch.setenv(models.RETRAIN_ENV, "1")
    _, meta = models.load_or_train(tiny_config, cache_copy, verbose=False)
    assert meta["source"] == "trained"


def test_absent_entry_is_none_without_a_message(tiny_config, tmp_path, capsys):
    assert models.load_cached(tiny_config, tmp_path) is None
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("alpha", [0.25, 2.0, "1.0", True])
def test_alphas_keras_does_not_define_are_refused(alpha):
    with pytest.raises(ValueError, match="alpha must be one of 0.35, 0.5, 0.75, 1.0, 1.3, 1.4"):
        models.build_mobilenet_v2(alpha, 64)


@pytest.mark.parametrize("resolution", [0, -32, 31, 225])
def test_resolutions_mobilenet_v2_cannot_take_are_refused(resolution):
    with pytest.raises(ValueError, match=r"resolution must be in \[32, 224\]"):
        models.build_mobilenet_v2(0.35, resolution)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("epochs", 0, "epochs must be a positive integer"),
        ("images_per_epoch", -1, "images_per_epoch must be a positive integer"),
        ("batch_size", 0, "batch_size must be a positive integer"),
        ("learning_rate", 0.0, "learning_rate must be positive"),
        ("alpha", 0.6, "alpha must be one of"),
        ("resolution", 16, "resolution must be in"),
        ("dataset", "tf_flowers", "dataset must be one of patterns, digits"),
    ],
)
def test_bad_train_configs_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        models.TrainConfig(**{field: value})


def test_imagenet_weights_offline_fail_with_a_message_naming_the_default():
    with pytest.raises(RuntimeError, match="offline default is weights=None"):
        models.build_mobilenet_v2(1.0, 224, num_classes=1000, weights="imagenet")


def test_the_shipped_entries_are_valid_and_match_their_configs():
    """The weights in cache/ load, verify against their SHA-256 and are not retrained."""
    from pathlib import Path

    cache = Path(__file__).resolve().parents[1] / "cache"
    for config in (models.TEACHER, models.STUDENT):
        cached = models.load_cached(config, cache)
        assert cached is not None, f"{config.name} is not shipped (valid) in cache/"
        _, meta = cached
        assert meta["key"] == config.key()


def test_measurement_cache_round_trip_and_corruption(tmp_path, capsys):
    calls = []

    def measure():
        calls.append(1)
        return {"key": "k1", "accuracy": 0.5, "history": [0.1, 0.2]}

    first = models.load_or_measure("sweep-a", "k1", measure, tmp_path, verbose=False)
    assert first["source"] == "trained" and len(calls) == 1
    again = models.load_or_measure("sweep-a", "k1", measure, tmp_path, verbose=False)
    assert again == dict(first, source="cache") and len(calls) == 1
    # An altered record is detected and measured again, never used.
    path = tmp_path / "sweep-a" / "record.json"
    path.write_text(path.read_text().replace("0.5", "0.9"))
    third = models.load_or_measure("sweep-a", "k1", measure, tmp_path, verbose=False)
    assert third["accuracy"] == 0.5 and len(calls) == 2
    assert "does not match its recorded SHA-256" in capsys.readouterr().err
    # A record for another key is not used either; a wrong key from measure() is refused.
    fourth = models.load_or_measure("sweep-a", "k2", lambda: {"key": "k2", "accuracy": 0.7}, tmp_path, verbose=False)
    assert fourth["accuracy"] == 0.7 and fourth["source"] == "trained"
    with pytest.raises(ValueError, match="expected 'k3'"):
        models.load_or_measure("sweep-b", "k3", lambda: {"key": "other"}, tmp_path, verbose=False)
    assert not (tmp_path / "sweep-b").exists()


def test_the_readme_names_every_cpu_the_shipped_entries_were_made_on():
    """README's retrain-check note says which CPUs made the shipped entries; it must stay true."""
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = root / "README.md"
    cpus = {json.loads(p.read_text())["machine"]["cpu"] for p in (root / "cache").glob("*/meta.json")}
    assert cpus
    for cpu in cpus:
        short = " ".join(re.sub(r"\((R|TM)\)", "", cpu).split()[:2])  # "Intel Xeon", "AMD EPYC"
        assert short in readme.read_text(), f"README does not say that entries were made on {cpu}"


# --- training on the digits ------------------------------------------------------------


def test_pattern_training_images_are_the_generated_ones():
    from mobileopt_ref import data

    config = models.TrainConfig(mix_max=0.4, noise_max=0.2)
    x, y = models.training_images(config, 3, 50, level=0.5)
    gx, gy = data.generate_patterns(50, 32, 0, split="train", epoch=3, mix_max=0.2, noise_max=0.1)
    assert np.array_equal(x, gx) and np.array_equal(y, gy)
    vx, vy = models.evaluation_images(config, "test", 20)
    gx, gy = data.generate_patterns(20, 32, 0, split="test", mix_max=0.4, noise_max=0.2)
    assert np.array_equal(vx, gx) and np.array_equal(vy, gy)


def test_digit_training_images_are_shifted_copies_of_the_training_split():
    from mobileopt_ref import data

    config = models.TrainConfig(dataset="digits")
    train = data.load_digits(32, seed=0).train
    x, y = models.training_images(config, 0, 2 * len(train) + 10)
    again, _ = models.training_images(config, 0, 2 * len(train) + 10)
    other, _ = models.training_images(config, 1, 2 * len(train) + 10)
    assert np.array_equal(x, again) and not np.array_equal(x, other)
    assert x.dtype == np.uint8 and x.shape == (2 * len(train) + 10, 32, 32, 3)
    # Each full pass holds every training label exactly as often as the split does.
    assert np.array_equal(np.bincount(y[: len(train)], minlength=10), np.bincount(train.labels, minlength=10))
    # Every image is one of the split's images moved by at most 3 px (zeros fill the border).
    limit = round(models.DIGITS_MAX_SHIFT * 32)
    for image, label in zip(x[:40], y[:40]):
        found = False
        for source in train.images[train.labels == label]:
            for dy in range(-limit, limit + 1):
                for dx in range(-limit, limit + 1):
                    if np.array_equal(models._shift(source[None], np.array([[dy, dx]]))[0], image):
                        found = True
                        break
                if found:
                    break
            if found:
                break
        assert found


def test_digit_evaluation_images_are_the_fixed_splits():
    from mobileopt_ref import data

    config = models.TrainConfig(dataset="digits")
    ds = data.load_digits(32, seed=0)
    x, y = models.evaluation_images(config, "test")
    assert np.array_equal(x, ds.test.images) and np.array_equal(y, ds.test.labels)
    x, y = models.evaluation_images(config, "validation", 7)
    assert np.array_equal(y, ds.validation.labels[:7])
    with pytest.raises(ValueError, match="split must be 'validation' or 'test'"):
        models.evaluation_images(config, "train")


def test_a_model_trains_on_the_digits_and_validates_on_their_split():
    config = models.TrainConfig(dataset="digits", epochs=1, images_per_epoch=128, batch_size=32, name="tiny-digits")
    model, record = models.train(config, verbose=False)
    assert record["key"] == config.key() and len(record["history"]["val_accuracy"]) == 1
    # Validated on the digits' own validation split: the accuracy is a multiple of 1/n.
    from mobileopt_ref import data

    n = len(data.load_digits(32).validation)
    correct = record["history"]["val_accuracy"][0] * n
    assert abs(correct - round(correct)) < 1e-3
