"""Tests of structured (hidden-channel) pruning of MobileNetV2."""

import numpy as np
import pytest

from mobileopt_ref import data, litert, pruning


@pytest.fixture(scope="module")
def mobilenet():
    """A small MobileNetV2 with random batch-norm statistics (not the identity)."""
    from mobileopt_ref import models
    from mobileopt_ref._keras import keras

    keras.utils.set_random_seed(3)
    model = models.build_mobilenet_v2(0.35, 32)
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape),
            ])
    return model


@pytest.fixture(scope="module")
def images():
    return data.preprocess(data.generate_patterns(8, 32, seed=5, split="test")[0])


def test_nothing_pruned_computes_exactly_the_same(mobilenet, images):
    same, kept = pruning.prune_hidden_channels(mobilenet, 0.0)
    assert sorted(kept) == list(range(1, 17))
    np.testing.assert_array_equal(same(images, training=False).numpy(), mobilenet(images, training=False).numpy())
    assert same.count_params() == mobilenet.count_params()


def test_half_the_hidden_channels_removed(mobilenet, images):
    from mobileopt_ref._keras import keras

    thin, kept = pruning.prune_hidden_channels(mobilenet, 0.5)
    importance = pruning.hidden_channel_importance(mobilenet)
    for block, k in kept.items():
        c = len(importance[block])
        assert len(k) == round(0.5 * c)
        assert thin.get_layer(f"block_{block}_expand").filters == len(k)
        assert thin.get_layer(f"block_{block}_depthwise").get_weights()[0].shape[2] == len(k)
        removed = np.setdiff1d(np.arange(c), k)
        assert importance[block][k].min() >= importance[block][removed].max()  # lowest L1 went
    # The parameter count drops exactly as computed.
    assert mobilenet.count_params() - thin.count_params() == pruning.hidden_channel_params(mobilenet, kept)
    # Equivalent to the original with the removed channels cut off before the projection.
    reference = keras.models.clone_model(mobilenet)
    reference.set_weights(mobilenet.get_weights())
    for block, k in kept.items():
        project = reference.get_layer(f"block_{block}_project")
        w = project.get_weights()
        mask = np.zeros(w[0].shape[2], bool)
        mask[k] = True
        w[0][:, :, ~mask, :] = 0.0
        project.set_weights(w)
    np.testing.assert_allclose(
        thin(images, training=False).numpy(), reference(images, training=False).numpy(), rtol=1e-4, atol=1e-5
    )
    # It converts and runs as an ordinary dense model.
    out = litert.predict_tflite(litert.to_tflite(thin), data.generate_patterns(4, 32, seed=5, split="test")[0])
    assert out.shape == (4, 10)


def test_selected_blocks_and_channel_multiples(mobilenet):
    thin, kept = pruning.prune_hidden_channels(mobilenet, 0.6, blocks=[2, 5], multiple_of=8)
    assert sorted(kept) == [2, 5]
    for block, k in kept.items():
        total = mobilenet.get_layer(f"block_{block}_expand").filters
        assert len(k) % 8 == 0 or len(k) == total
        assert len(k) >= round(0.4 * total)
    untouched = mobilenet.get_layer("block_3_expand").filters
    assert thin.get_layer("block_3_expand").filters == untouched
    np.testing.assert_array_equal(pruning.channels_to_keep([3.0, 1.0, 2.0, 0.5], 0.5), [0, 2])
    assert len(pruning.channels_to_keep(np.ones(10), 0.99)) == 1  # never an empty layer


def test_structured_pruning_refuses_bad_input(mobilenet):
    from mobileopt_ref._keras import keras

    for fraction in (-0.1, 1.0):
        with pytest.raises(ValueError, match="fraction must be a number in"):
            pruning.prune_hidden_channels(mobilenet, fraction)
    with pytest.raises(ValueError, match=r"block\(s\) \[0\] cannot be pruned"):
        pruning.prune_hidden_channels(mobilenet, 0.5, blocks=[0])
    with pytest.raises(ValueError, match=r"block\(s\) \[17\] cannot be pruned"):
        pruning.prune_hidden_channels(mobilenet, 0.5, blocks=[17])
    plain = keras.Sequential([keras.layers.Input((8,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no prunable inverted residual blocks"):
        pruning.prune_hidden_channels(plain, 0.5)
    with pytest.raises(ValueError, match="multiple_of must be a positive integer"):
        pruning.channels_to_keep(np.ones(4), 0.5, multiple_of=0)
