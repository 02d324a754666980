"""Tests of pruning recipes: tfmot magnitude, 2:4 and channel pruning, fine-tuned and cached."""

import shutil

import numpy as np
import pytest

from mobileopt_ref import models, pruning


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


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory, tiny_config):
    """A cache folder holding the tiny model, trained once for this module."""
    folder = tmp_path_factory.mktemp("cache")
    models.load_or_train(tiny_config, folder, verbose=False)
    return folder


def _kernel_sparsities(model):
    return pruning.layer_sparsities(model, ("Conv2D", "Dense"))


def test_magnitude_recipe_reaches_its_sparsity_and_is_cached(tiny_config, tiny_cache):
    # The tiny config has 8 steps per epoch: the ramp ends at step 8, a multiple of 4.
    recipe = pruning.PruningRecipe("magnitude", 0.6, epochs=2, ramp_epochs=1, learning_rate=1e-3, frequency=4,
                                   name="m60")
    pruned, meta = pruning.load_or_prune(tiny_config, recipe, tiny_cache, verbose=False)
    assert meta["source"] == "trained"
    # tfmot prunes round(s * n) weights of each kernel (conv and dense), exactly.
    sparsities = _kernel_sparsities(pruned)
    assert sparsities and all(abs(s - 0.6) < 0.01 for s in sparsities.values()), sparsities
    # Depthwise kernels are not pruned by tfmot.
    assert all(s < 0.01 for s in pruning.layer_sparsities(pruned, ("DepthwiseConv2D",)).values())
    again, meta2 = pruning.load_or_prune(tiny_config, recipe, tiny_cache, verbose=False)
    assert meta2["source"] == "cache" and meta2["weights_sha256"] == meta["weights_sha256"]
    for w1, w2 in zip(pruned.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(w1, w2)


def test_global_allocation_reaches_the_overall_sparsity_unevenly(tiny_config, tiny_cache):
    base, _ = models.load_or_train(tiny_config, tiny_cache, verbose=False)
    targets = pruning.global_layer_sparsities(base, 0.6)
    kernels = {layer.name: layer.get_weights()[0].size for layer in base.layers if layer.name in targets}
    assert sum(targets[n] * kernels[n] for n in targets) == pytest.approx(0.6 * sum(kernels.values()), abs=1.5)
    assert max(targets.values()) - min(targets.values()) > 0.1  # uneven: that is the point
    recipe = pruning.PruningRecipe("magnitude", 0.6, epochs=2, ramp_epochs=1, learning_rate=1e-3, frequency=4,
                                   allocation="global", name="g60")
    pruned, _ = pruning.load_or_prune(tiny_config, recipe, tiny_cache, verbose=False)
    got = _kernel_sparsities(pruned)
    # tfmot keeps every weight tied with its threshold and rounds its own way: one weight either side.
    assert all(abs(got[n] - targets[n]) <= 1.5 / kernels[n] + 1e-9 for n in targets), (got, targets)
    assert pruning.keras_pruning_rate(pruned, ("Conv2D", "Dense")) == pytest.approx(0.6, abs=0.01)


def test_a_ramp_that_never_reaches_its_final_step_is_refused(tiny_config, tiny_cache):
    recipe = pruning.PruningRecipe("magnitude", 0.6, epochs=2, ramp_epochs=1, learning_rate=1e-3, frequency=3)
    base, _ = models.load_or_train(tiny_config, tiny_cache, verbose=False)
    with pytest.raises(ValueError, match="not a multiple of frequency=3"):
        pruning.prune_and_fine_tune(base, tiny_config, recipe, verbose=False)


def test_two_four_recipe_gives_the_pattern(tiny_config, tiny_cache):
    recipe = pruning.PruningRecipe("2:4", 0.5, epochs=1, learning_rate=1e-3, name="24")
    pruned, _ = pruning.load_or_prune(tiny_config, recipe, tiny_cache, verbose=False)
    for layer in pruned.layers:
        if type(layer).__name__ in ("Conv2D", "Dense"):
            kernel = layer.get_weights()[0]
            if kernel.shape[-2] % 4 == 0:
                # Keras kernels are (..., in, out): groups of 4 run along the input channels.
                assert pruning.is_n_m_sparse(kernel, 2, 4, axis=-2), layer.name


def test_channel_recipe_is_thinner_and_reloads_into_the_thin_architecture(tiny_config, tiny_cache):
    recipe = pruning.PruningRecipe("channels", 0.5, epochs=1, learning_rate=1e-3, name="c50")
    base, _ = models.load_or_train(tiny_config, tiny_cache, verbose=False)
    pruned, meta = pruning.load_or_prune(tiny_config, recipe, tiny_cache, verbose=False)
    assert pruned.count_params() < base.count_params()
    again, meta2 = pruning.load_or_prune(tiny_config, recipe, tiny_cache, verbose=False)
    assert meta2["source"] == "cache"
    assert again.count_params() == pruned.count_params()
    x = np.zeros((2, 32, 32, 3), np.float32)
    np.testing.assert_array_equal(again(x, training=False).numpy(), pruned(x, training=False).numpy())


def test_a_corrupt_pruned_entry_is_rebuilt_not_used(tiny_config, tiny_cache, tmp_path, capsys):
    recipe = pruning.PruningRecipe("channels", 0.25, epochs=1, learning_rate=1e-3, name="c25")
    cache = tmp_path / "cache"
    shutil.copytree(tiny_cache, cache)
    _, meta = pruning.load_or_prune(tiny_config, recipe, cache, verbose=False)
    entry = cache / f"{tiny_config.name}-c25-{recipe.key(tiny_config.key())[:16]}"
    weights = entry / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:-100])
    _, meta2 = pruning.load_or_prune(tiny_config, recipe, cache, verbose=False)
    assert "cache entry unusable" in capsys.readouterr().err
    assert meta2["source"] == "trained"
    # Deterministic fine-tuning: the rebuilt entry is bit-identical to the first one.
    assert meta2["weights_sha256"] == meta["weights_sha256"]
