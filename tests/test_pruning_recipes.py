"""Tests of pruning recipes: tfmot magnitude, 2:4 and channel pruning, fine-tuned and cached."""

import dataclasses
import shutil

import numpy as np
import pytest

from mobileopt_ref import env, models, pruning


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(method="random", amount=0.5, epochs=1, learning_rate=1e-3), "method must be one of"),
        (dict(method="magnitude", amount=1.0, epochs=1, ramp_epochs=1, learning_rate=1e-3), r"\[0, 1\)"),
        (dict(method="magnitude", amount=-0.1, epochs=1, ramp_epochs=1, learning_rate=1e-3), r"\[0, 1\)"),
        (dict(method="2:4", amount=0.75, epochs=1, learning_rate=1e-3), "amount must be 0.5"),
        (dict(method="none", amount=0.5, epochs=1, learning_rate=1e-3), "amount must be 0"),
        (dict(method="magnitude", amount=0.5, epochs=0, ramp_epochs=0, learning_rate=1e-3), "epochs must be"),
        (dict(method="magnitude", amount=0.5, epochs=2, ramp_epochs=3, learning_rate=1e-3), "ramp_epochs"),
        (dict(method="magnitude", amount=0.5, epochs=2, ramp_epochs=0, learning_rate=1e-3), "1 <= ramp_epochs < epochs"),
        (dict(method="magnitude", amount=0.5, epochs=2, ramp_epochs=2, learning_rate=1e-3), "1 <= ramp_epochs < epochs"),
        (dict(method="channels", amount=0.5, epochs=2, learning_rate=0.0), "learning_rate"),
        (dict(method="channels", amount=0.5, epochs=2, learning_rate=1e-3, frequency=0), "frequency"),
        (dict(method="magnitude", amount=0.5, epochs=2, ramp_epochs=1, learning_rate=1e-3, allocation="x"),
         "allocation must be"),
        (dict(method="channels", amount=0.5, epochs=2, learning_rate=1e-3, allocation="global"),
         "magnitude pruning only"),
    ],
)
def test_bad_recipes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pruning.PruningRecipe(**kwargs)


def test_recipe_key_covers_recipe_and_base_but_not_the_name():
    a = pruning.PruningRecipe("magnitude", 0.5, epochs=2, ramp_epochs=1, learning_rate=1e-3, name="a")
    b = pruning.PruningRecipe("magnitude", 0.5, epochs=2, ramp_epochs=1, learning_rate=1e-3, name="b")
    c = pruning.PruningRecipe("magnitude", 0.6, epochs=2, ramp_epochs=1, learning_rate=1e-3, name="a")
    assert a.key("base") == b.key("base")
    assert a.key("base") != c.key("base")
    assert a.key("base") != a.key("other base")


# The recipe tests below each fine-tune a tiny MobileNetV2. What a run costs is almost all
# one-off graph tracing (30 to 60 s per model on 2 cores); the training steps themselves
# take about a second. So the tests train as few models as they can: no base training
# (an initialised model stands in for it), each recipe fine-tuned once, and the channel
# run shared by the reload test and the corrupt-entry test, which rebuilds it once.


@pytest.fixture(scope="module")
def config(tiny_config):
    """The tiny config with fewer, smaller batches: 4 steps of 16 images per epoch."""
    return dataclasses.replace(tiny_config, images_per_epoch=64, batch_size=16, n_validation=16)


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory, config):
    """A cache folder holding the base model of ``config`` for this module.

    The entry is a freshly initialised MobileNetV2 stored under the config's name and key
    through the ordinary cache (:func:`models.load_or_make`), so that ``load_or_train``
    and ``load_or_prune`` load it like a trained model. Training it would only add
    half a minute of graph tracing: the recipes need a MobileNetV2 of this config to
    prune, not a good one; training and its cache are what tests/test_models.py checks.
    """
    folder = tmp_path_factory.mktemp("cache")

    def make():
        env.seed_everything(config.seed)
        model = models.build_mobilenet_v2(config.alpha, config.resolution, bn_momentum=config.bn_momentum)
        return model, {"key": config.key(), "note": "initialised, not trained"}

    models.load_or_make(
        config.entry_name(), config.key(),
        lambda: models.build_mobilenet_v2(config.alpha, config.resolution, bn_momentum=config.bn_momentum),
        make, folder, verbose=False,
    )
    return folder


@pytest.fixture(scope="module")
def base(config, tiny_cache):
    """The base model, loaded from ``tiny_cache`` as ``load_or_prune`` loads it."""
    model, meta = models.load_or_train(config, tiny_cache, verbose=False)
    assert meta["source"] == "cache"
    return model


@pytest.fixture(scope="module")
def channel_run(config, tiny_cache):
    """``(recipe, pruned, meta)``: the channel recipe fine-tuned once, into ``tiny_cache``."""
    recipe = pruning.PruningRecipe("channels", 0.5, epochs=1, learning_rate=1e-3, name="c50")
    pruned, meta = pruning.load_or_prune(config, recipe, tiny_cache, verbose=False)
    return recipe, pruned, meta


def _kernel_sparsities(model):
    return pruning.layer_sparsities(model, ("Conv2D", "Dense"))


def test_magnitude_recipe_reaches_its_sparsity_and_is_cached(config, tiny_cache):
    # The config has 4 steps per epoch: the ramp ends at step 4, a multiple of 4.
    recipe = pruning.PruningRecipe("magnitude", 0.6, epochs=2, ramp_epochs=1, learning_rate=1e-3, frequency=4,
                                   name="m60")
    pruned, meta = pruning.load_or_prune(config, recipe, tiny_cache, verbose=False)
    assert meta["source"] == "trained"
    # tfmot prunes round(s * n) weights of each kernel (conv and dense), exactly.
    sparsities = _kernel_sparsities(pruned)
    assert sparsities and all(abs(s - 0.6) < 0.01 for s in sparsities.values()), sparsities
    # Depthwise kernels are not pruned by tfmot.
    assert all(s < 0.01 for s in pruning.layer_sparsities(pruned, ("DepthwiseConv2D",)).values())
    again, meta2 = pruning.load_or_prune(config, recipe, tiny_cache, verbose=False)
    assert meta2["source"] == "cache" and meta2["weights_sha256"] == meta["weights_sha256"]
    for w1, w2 in zip(pruned.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(w1, w2)


def test_global_allocation_reaches_the_overall_sparsity_unevenly(config, tiny_cache, base):
    targets = pruning.global_layer_sparsities(base, 0.6)
    kernels = {layer.name: layer.get_weights()[0].size for layer in base.layers if layer.name in targets}
    assert sum(targets[n] * kernels[n] for n in targets) == pytest.approx(0.6 * sum(kernels.values()), abs=1.5)
    assert max(targets.values()) - min(targets.values()) > 0.1  # uneven: that is the point
    recipe = pruning.PruningRecipe("magnitude", 0.6, epochs=2, ramp_epochs=1, learning_rate=1e-3, frequency=4,
                                   allocation="global", name="g60")
    pruned, _ = pruning.load_or_prune(config, recipe, tiny_cache, verbose=False)
    got = _kernel_sparsities(pruned)
    # tfmot keeps every weight tied with its threshold and rounds its own way: one weight either side.
    assert all(abs(got[n] - targets[n]) <= 1.5 / kernels[n] + 1e-9 for n in targets), (got, targets)
    assert pruning.keras_pruning_rate(pruned, ("Conv2D", "Dense")) == pytest.approx(0.6, abs=0.01)


def test_a_ramp_that_never_reaches_its_final_step_is_refused(config, base):
    # The ramp ends at step 4 (one epoch of 4 steps), which frequency 3 never reaches.
    recipe = pruning.PruningRecipe("magnitude", 0.6, epochs=2, ramp_epochs=1, learning_rate=1e-3, frequency=3)
    with pytest.raises(ValueError, match="not a multiple of frequency=3"):
        pruning.prune_and_fine_tune(base, config, recipe, verbose=False)


def test_two_four_recipe_gives_the_pattern(config, tiny_cache):
    recipe = pruning.PruningRecipe("2:4", 0.5, epochs=1, learning_rate=1e-3, name="24")
    pruned, _ = pruning.load_or_prune(config, recipe, tiny_cache, verbose=False)
    checked = 0
    for layer in pruned.layers:
        if type(layer).__name__ in ("Conv2D", "Dense"):
            kernel = layer.get_weights()[0]
            if kernel.shape[-2] % 4 == 0:
                # Keras kernels are (..., in, out): groups of 4 run along the input channels.
                assert pruning.is_n_m_sparse(kernel, 2, 4, axis=-2), layer.name
                checked += 1
    assert checked > 10  # nearly every conv and dense layer has a multiple of 4 inputs


def test_channel_recipe_is_thinner_and_reloads_into_the_thin_architecture(config, tiny_cache, base, channel_run):
    recipe, pruned, _ = channel_run
    assert pruned.count_params() < base.count_params()
    again, meta2 = pruning.load_or_prune(config, recipe, tiny_cache, verbose=False)
    assert meta2["source"] == "cache"
    assert again.count_params() == pruned.count_params()
    x = np.zeros((2, 32, 32, 3), np.float32)
    np.testing.assert_array_equal(again(x, training=False).numpy(), pruned(x, training=False).numpy())


def test_a_corrupt_pruned_entry_is_rebuilt_not_used(config, tiny_cache, channel_run, tmp_path, capsys):
    # The channel run made its entry by fine-tuning; a copy of it is corrupted and rebuilt.
    recipe, _, meta = channel_run
    assert meta["source"] == "trained"
    cache = tmp_path / "cache"
    shutil.copytree(tiny_cache, cache)
    entry = cache / f"{config.name}-c50-{recipe.key(config.key())[:16]}"
    weights = entry / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:-100])
    _, meta2 = pruning.load_or_prune(config, recipe, cache, verbose=False)
    assert "cache entry unusable" in capsys.readouterr().err
    assert meta2["source"] == "trained"
    # Deterministic fine-tuning: the rebuilt entry is bit-identical to the first one.
    assert meta2["weights_sha256"] == meta["weights_sha256"]
