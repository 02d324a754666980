"""Tests of quantization-aware training recipes: validated, keyed, fine-tuned once and cached."""

import dataclasses

import numpy as np
import pytest

from mobileopt_ref import data, env, litert, models, quantization


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(epochs=0, learning_rate=1e-3), "epochs must be a positive integer"),
        (dict(epochs=1.5, learning_rate=1e-3), "epochs must be a positive integer"),
        (dict(epochs=True, learning_rate=1e-3), "epochs must be a positive integer"),
        (dict(epochs=1, learning_rate=0.0), "learning_rate must be a positive number"),
        (dict(epochs=1, learning_rate="1e-3"), "learning_rate must be a positive number"),
        (dict(epochs=1, learning_rate=1e-3, num_bits_weight=1), "num_bits_weight must be an integer from 2 to 8"),
        (dict(epochs=1, learning_rate=1e-3, num_bits_activation=16), "num_bits_activation must be an integer from 2 to 8"),
    ],
)
def test_bad_qat_recipes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        quantization.QATRecipe(**kwargs)


def test_qat_key_covers_recipe_and_base_but_not_the_name():
    a = quantization.QATRecipe(epochs=2, learning_rate=1e-5, name="a")
    assert a.key("base") == dataclasses.replace(a, name="b").key("base")
    assert a.key("base") != dataclasses.replace(a, num_bits_weight=4).key("base")
    assert a.key("base") != dataclasses.replace(a, epochs=3).key("base")
    assert a.key("base") != a.key("other base")
    assert a.default_scheme and not dataclasses.replace(a, num_bits_weight=4).default_scheme


def test_the_shipped_qat_entries_load_and_match_their_recipes():
    """The chapter's QAT students in cache/ load, verify against their SHA-256 and match their keys."""
    from pathlib import Path

    cache = Path(__file__).resolve().parents[1] / "cache"
    for recipe in quantization.STUDENT_QAT_RECIPES.values():
        cached = quantization.load_cached_qat(models.STUDENT, recipe, cache)
        assert cached is not None, f"student-{recipe.name} is not shipped (valid) in cache/"
        _, meta = cached
        assert meta["key"] == recipe.key(models.STUDENT.key())
        assert meta["recipe"] == dataclasses.asdict(recipe)


def test_a_qat_run_is_cached_reloaded_identically_and_converts_to_full_int8(tiny_config, tmp_path):
    # An initialised model stands in for the trained base (see tests/test_pruning_recipes.py).
    config = dataclasses.replace(tiny_config, images_per_epoch=64, batch_size=16, n_validation=16)

    def make():
        env.seed_everything(config.seed)
        return models.build_mobilenet_v2(config.alpha, config.resolution, bn_momentum=config.bn_momentum), \
            {"key": config.key()}

    models.load_or_make(config.entry_name(), config.key(),
                        lambda: models.build_mobilenet_v2(config.alpha, config.resolution,
                                                          bn_momentum=config.bn_momentum),
                        make, tmp_path, verbose=False)
    recipe = quantization.QATRecipe(epochs=1, learning_rate=1e-3, name="q")
    qat, meta = quantization.load_or_qat(config, recipe, tmp_path, verbose=False)
    assert meta["source"] == "trained" and meta["key"] == recipe.key(config.key())
    assert any("quant" in layer.name for layer in qat.layers)  # wrapped by tfmot
    again, meta2 = quantization.load_or_qat(config, recipe, tmp_path, verbose=False)
    assert meta2["source"] == "cache" and meta2["weights_sha256"] == meta["weights_sha256"]
    images = data.generate_patterns(8, config.resolution, config.data_seed, split="test")[0]
    np.testing.assert_array_equal(models.predict_logits(qat, images), models.predict_logits(again, images))
    # The reloaded model converts to a full-integer file like the one it was saved from.
    content = litert.to_tflite(again, "full_int8", representative_images=images)
    ops = litert.read_graph(content).find("CONV_2D")
    assert ops and all(litert.read_graph(content).tensors[op.inputs[1]].data.dtype == np.int8 for op in ops)
