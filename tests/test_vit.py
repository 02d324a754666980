"""The chapter 08 ViT: its shape, its cache entry, and where its operators go when quantized."""

import dataclasses

import numpy as np
import pytest

from mobileopt_ref import data, litert, vit

TINY = vit.ViTConfig(patch=16, d_model=16, n_layers=1, n_heads=2, mlp_ratio=2, epochs=1, images_per_epoch=64,
                     batch_size=32, n_validation=32)


@pytest.fixture(scope="module")
def tiny_model():
    return vit.build_vit(TINY)


@pytest.fixture(scope="module")
def calibration():
    return data.generate_patterns(32, 32, 0, split="validation")[0]


@pytest.fixture(scope="module")
def tiny_files(tiny_model, calibration):
    return {mode: litert.to_tflite(tiny_model, mode, representative_images=calibration)
            for mode in ("float32", "full_int8", "int16x8")}


def test_config_checks_its_fields():
    with pytest.raises(ValueError, match="patch .* must divide resolution"):
        vit.ViTConfig(patch=5)
    with pytest.raises(ValueError, match="n_heads .* must divide d_model"):
        vit.ViTConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="d_model must be a positive integer"):
        vit.ViTConfig(d_model=0)
    with pytest.raises(ValueError, match="config must be a ViTConfig"):
        vit.build_vit("vit")
    assert vit.VIT_SMALL.tokens == (32 // vit.VIT_SMALL.patch) ** 2


def test_key_follows_the_recipe_not_the_name():
    a = vit.ViTConfig()
    assert a.key() == dataclasses.replace(a, name="other").key()
    assert a.key() != dataclasses.replace(a, epochs=a.epochs + 1).key()
    assert a.entry_name().startswith("vit-")


def test_parameter_count_matches_the_built_model(tiny_model):
    assert tiny_model.count_params() == TINY.n_params()
    assert vit.build_vit(vit.VIT_SMALL).count_params() == vit.VIT_SMALL.n_params()


def test_float_file_matches_keras(tiny_model, tiny_files, calibration):
    from mobileopt_ref import models

    keras_logits = models.predict_logits(tiny_model, calibration)
    tflite_logits = litert.predict_tflite(tiny_files["float32"], calibration)
    np.testing.assert_allclose(tflite_logits, keras_logits, atol=1e-4)


def test_roles_find_layernorm_softmax_and_gelu_in_every_file(tiny_files):
    for mode, content in tiny_files.items():
        rows = vit.int8_op_table(content)
        roles = vit.summarize_roles(rows)
        assert {"layernorm", "softmax", "gelu", "attention", "mlp", "head", "shape"} <= set(roles), mode
        assert roles["softmax"]["ops"] == {"SOFTMAX": TINY.n_layers}
        assert roles["gelu"]["ops"] == {"GELU": TINY.n_layers}
        # LayerNorm is no single operator: two means (the mean and the variance) and a rsqrt per norm
        norms = 2 * TINY.n_layers + 1
        assert roles["layernorm"]["ops"]["MEAN"] == 2 * norms and roles["layernorm"]["ops"]["RSQRT"] == norms


def test_full_int8_keeps_transformer_ops_integer(tiny_files):
    rows = vit.int8_op_table(tiny_files["full_int8"])
    roles = vit.summarize_roles(rows)
    for role in ("layernorm", "softmax", "gelu"):
        assert roles[role]["types"] == ["int8 -> int8"], role
    assert {"int32 -> int32", "int8 -> int32"} & set(roles["shape"]["types"])
    assert vit.float_islands(rows) == []
    assert vit.float_islands(vit.int8_op_table(tiny_files["float32"])) == []
    # int16 activations: XNNPACK takes no operator of the 16x8 file
    assert all(r["kernels"] == "built-in" for r in vit.int8_op_table(tiny_files["int16x8"]))


def test_float_islands_reports_float_ops_in_an_integer_graph():
    rows = [
        {"index": 0, "op": "QUANTIZE", "role": "conversion", "in": "float32", "out": "int8", "kernels": "built-in"},
        {"index": 1, "op": "FULLY_CONNECTED", "role": "mlp", "in": "int8", "out": "int8", "kernels": "XNNPACK"},
        {"index": 2, "op": "DEQUANTIZE", "role": "conversion", "in": "int8", "out": "float32", "kernels": "built-in"},
        {"index": 3, "op": "GELU", "role": "gelu", "in": "float32", "out": "float32", "kernels": "XNNPACK"},
    ]
    assert [r["index"] for r in vit.float_islands(rows)] == [3]


def test_shipped_vit_entry_loads_and_classifies():
    cached = vit.load_cached(vit.VIT_SMALL)
    if cached is None:
        pytest.skip("no shipped entry for the ViT in this cache folder")
    model, meta = cached
    assert model.count_params() == vit.VIT_SMALL.n_params()
    from mobileopt_ref import models

    x, y = data.generate_patterns(vit.VIT_SMALL.n_validation, 32, vit.VIT_SMALL.data_seed, split="validation",
                                  mix_max=vit.VIT_SMALL.mix_max, noise_max=vit.VIT_SMALL.noise_max)
    accuracy = models.evaluate_keras(model, x, y)
    # the recorded validation accuracy, up to a few images of CPU-dependent rounding
    assert abs(accuracy - meta["history"]["val_accuracy"][-1]) <= 0.005


def test_retrain_check_of_the_vit_without_a_shipped_entry_fails_without_training(tmp_path, monkeypatch, capsys):
    from mobileopt_ref import cli

    monkeypatch.setenv("MOBILEOPT_CACHE_DIR", str(tmp_path))
    assert cli.main(["retrain-check", "vit"]) == 1
    assert "vit: no valid shipped entry" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_tiny_vit_trains_deterministically_on_the_patterns():
    config = vit.ViTConfig(epochs=1, images_per_epoch=128, batch_size=32, n_validation=64, name="tiny-vit")
    model, record = vit.train(config, verbose=False)
    again, _ = vit.train(config, verbose=False)
    assert record["key"] == config.key() and len(record["history"]["val_accuracy"]) == 1
    # Validated on the 64 generated validation images: the accuracy is a multiple of 1/64.
    correct = record["history"]["val_accuracy"][0] * 64
    assert abs(correct - round(correct)) < 1e-3
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
