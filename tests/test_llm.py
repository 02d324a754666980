"""The small GPT: tokenizer, causal attention, KV-cached export, cache, bundles, LiteRT-LM."""

import json

import numpy as np
import pytest

from mobileopt_ref import litert, llm

TINY = llm.GPTConfig(n_layers=2, d_model=32, n_heads=2, context=32, prefill_len=8)


@pytest.fixture(scope="module")
def tiny_gpt():
    return llm.GPT(TINY, seed=3)


@pytest.fixture(scope="module")
def tiny_export(tiny_gpt):
    return llm.export_tflite(tiny_gpt)


def test_tokenizer_round_trip():
    tok = llm.ByteTokenizer()
    text = "Größe: 3 µs — ok\n"
    ids = tok.encode(text)
    assert ids.dtype == np.int32 and list(ids) == list(text.encode("utf-8"))
    assert tok.decode(ids) == text
    with_bos = tok.encode(text, bos=True)
    assert with_bos[0] == llm.BOS and tok.decode(with_bos) == text
    assert tok.decode([*ids, llm.EOS]) == text
    with pytest.raises(ValueError, match="token ids must lie in"):
        tok.decode([llm.VOCAB_SIZE])
    with pytest.raises(ValueError, match="takes a str"):
        tok.encode(b"bytes")


def test_hf_tokenizer_maps_every_byte_to_its_value():
    spec = json.loads(llm.ByteTokenizer().hf_tokenizer_json())
    vocab = spec["model"]["vocab"]
    assert sorted(vocab.values()) == list(range(llm.VOCAB_SIZE))
    assert len({k for k, v in vocab.items() if v < 256}) == 256
    assert vocab["<bos>"] == llm.BOS and vocab["<eos>"] == llm.EOS


def test_parameter_count_matches_formula(tiny_gpt):
    assert tiny_gpt.count_params() == TINY.n_params()
    assert llm.GPT(llm.GPTConfig()).count_params() == llm.GPTConfig().n_params()


def test_future_tokens_do_not_change_past_logits(tiny_gpt):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (1, 20)).astype(np.int32)
    b = a.copy()
    b[0, 12:] = rng.integers(0, 256, 8)
    la, lb = tiny_gpt.logits(a).numpy(), tiny_gpt.logits(b).numpy()
    np.testing.assert_array_equal(la[0, :12], lb[0, :12])
    assert np.abs(la[0, 12:] - lb[0, 12:]).max() > 1e-4


def test_signatures_follow_litert_lm_convention(tiny_export):
    assert set(litert.signatures(tiny_export)) == {llm.PREFILL_SIGNATURE, llm.DECODE_SIGNATURE}
    interpreter = litert.make_interpreter(tiny_export)
    for key, s in ((llm.PREFILL_SIGNATURE, TINY.prefill_len), (llm.DECODE_SIGNATURE, 1)):
        runner = interpreter.get_signature_runner(key)
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        expected = llm.signature_shapes(TINY, key)
        assert {n: tuple(d["shape"]) for n, d in inputs.items()} == expected
        assert inputs["tokens"]["dtype"] == np.int32 and inputs["input_pos"]["dtype"] == np.int32
        assert inputs["kv_cache_k_0"]["shape"].tolist() == [1, TINY.n_heads, TINY.context, TINY.head_dim]
        assert tuple(outputs["logits"]["shape"]) == (1, s, llm.VOCAB_SIZE)
        assert set(outputs) == {"logits", *llm.cache_names(TINY.n_layers)}
    ops = {op.op for op in litert.read_graph(litert.select_signature(tiny_export, llm.DECODE_SIGNATURE)).ops}
    assert "DYNAMIC_UPDATE_SLICE" in ops and "EMBEDDING_LOOKUP" in ops and "GATHER" not in ops
    # One copy of the weights serves both signatures.
    assert litert.model_size(tiny_export) < 1.3 * 4 * TINY.n_params()


def test_gather_embedding_export_is_the_same_model(tiny_gpt, tiny_export):
    gathered = llm.export_tflite(tiny_gpt, embedding="gather")
    ops = {op.op for op in litert.read_graph(litert.select_signature(gathered, llm.DECODE_SIGNATURE)).ops}
    assert "GATHER" in ops and "EMBEDDING_LOOKUP" not in ops
    ids = np.arange(TINY.prefill_len, dtype=np.int32) * 7
    a = llm.TFLiteLM(tiny_export).prefill(ids)
    b = llm.TFLiteLM(gathered).prefill(ids)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_decode_reproduces_prefill_and_keras(tiny_gpt, tiny_export):
    ids = llm.ByteTokenizer().encode("KV cache", bos=True)[: TINY.prefill_len]
    check = llm.decode_matches_prefill(tiny_export, ids)
    assert check["top1_agreement"] == 1.0
    assert check["max_abs_diff"] <= 1e-5 * max(1.0, check["max_abs_logit"])
    # The cached export computes what the training graph computes, also past one prefill chunk.
    long = np.resize(ids, 20)
    keras_logits = tiny_gpt.logits(long[None]).numpy()[0]
    runner = llm.TFLiteLM(tiny_export)
    np.testing.assert_allclose(runner.prefill(long), keras_logits, atol=1e-4)
    assert runner.position == 20
    with pytest.raises(ValueError, match="exceed the KV cache"):
        runner.prefill(np.zeros(TINY.context, np.int32))


def test_evaluate_agrees_between_tensorflow_and_litert(tiny_gpt, tiny_export):
    data = llm.corpus_bytes()[:100]
    a = llm.evaluate(tiny_gpt, data)
    b = llm.evaluate(tiny_export, data)
    assert a["n_bytes"] == b["n_bytes"] == 100
    assert abs(a["bits_per_byte"] - b["bits_per_byte"]) < 1e-4
    assert llm.top1_agreement(a["predictions"], b["predictions"]) >= 0.99
    # An untrained model is about as good as uniform guessing over 258 ids.
    assert abs(a["bits_per_byte"] - np.log2(llm.VOCAB_SIZE)) < 0.5
    with pytest.raises(ValueError, match="bytes"):
        llm.evaluate(tiny_gpt, np.array([300]))


def test_corpus_split_is_a_fixed_tail():
    data = llm.corpus_bytes()
    train, held = llm.split_corpus(data, 0.1)
    assert len(train) + len(held) == len(data) and abs(len(held) / len(data) - 0.1) < 1e-4
    np.testing.assert_array_equal(held, data[len(train):])
    with pytest.raises(ValueError, match="holdout_fraction"):
        llm.split_corpus(data, 0.9)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"d_model": 30, "n_heads": 4}, "n_heads must divide d_model"),
        ({"context": 16, "prefill_len": 32}, "must not exceed context"),
        ({"n_layers": 0}, "n_layers must be a positive integer"),
        ({"vocab_size": 300}, "vocab_size must be"),
    ],
)
def test_bad_configs_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        llm.GPTConfig(**fields)


def test_bad_train_configs_are_refused():
    with pytest.raises(ValueError, match="warmup_steps"):
        llm.LMTrainConfig(steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match="model must be a GPTConfig"):
        llm.LMTrainConfig(model={"n_layers": 2})
    with pytest.raises(ValueError, match="export_tflite takes a llm.GPT"):
        llm.export_tflite(b"not a model")


def test_cache_entry_is_verified_and_a_corrupt_one_refused(tmp_path, capsys):
    config = llm.LMTrainConfig(model=TINY, steps=2, warmup_steps=1, batch_size=2, threads=2, name="tiny-gpt")
    assert config.key() != llm.LMTrainConfig(model=TINY, steps=3, warmup_steps=1, batch_size=2, threads=2).key()
    assert llm.LMTrainConfig.from_dict(config.to_dict()) == config
    model, meta = llm.load_or_train(config, tmp_path, verbose=False)
    assert meta["source"] == "trained" and meta["key"] == config.key()
    assert 0 < meta["held_out_bits_per_byte"] < 9
    again, meta2 = llm.load_or_train(config, tmp_path, verbose=False)
    assert meta2["source"] == "cache" and meta2["weights_sha256"] == meta["weights_sha256"]
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    weights = tmp_path / config.entry_name() / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:-100])
    assert llm.load_cached(config, tmp_path) is None
    assert "cache entry unusable" in capsys.readouterr().err


def test_shipped_small_gpt_entry_loads():
    cached = llm.load_cached(llm.GPT_SMALL)
    if cached is None:
        pytest.skip("no shipped entry for the small GPT in this cache folder")
    model, meta = cached
    assert model.count_params() == llm.GPT_SMALL.model.n_params()
    assert meta["held_out_bits_per_byte"] < 8


def test_quantize_keeps_both_signatures(tiny_export):
    q = llm.quantize(tiny_export, "dynamic_int8")
    assert set(litert.signatures(q)) == {llm.PREFILL_SIGNATURE, llm.DECODE_SIGNATURE}
    assert len(q) < 0.6 * len(tiny_export)
    assert llm.decode_matches_prefill(q, np.arange(TINY.prefill_len) + 60)["top1_agreement"] >= 0.75
    with pytest.raises(ValueError, match="scheme must be one of"):
        llm.quantize(tiny_export, "int3")
    with pytest.raises(ValueError, match="quantized already"):
        llm.quantize(q, "dynamic_int8")


def test_layer_groups_split_every_quantized_weight_once(tiny_export):
    total = llm.quantized_weights(llm.quantize(tiny_export, "int4_block32"))
    assert llm.quantized_weights(tiny_export) == 0
    d, v, t, r = TINY.d_model, TINY.vocab_size, TINY.context, TINY.mlp_ratio
    expected = {  # the matrices of each group, from the architecture
        "token table": v * d,
        "position table": t * d,
        "attention": TINY.n_layers * 4 * d * d,
        "MLP": TINY.n_layers * 2 * r * d * d,
        "output layer": d * v,
    }
    counts = {g: llm.quantized_weights(llm.quantize(tiny_export, "int4_block32", g)) for g in llm.LAYER_GROUPS}
    assert counts == expected
    assert sum(counts.values()) == total


def test_mixed_scheme_keeps_the_tables_int8_and_the_rest_int4(tiny_export):
    q = llm.quantize(tiny_export, "int4_block32_int8_tables")
    graph = litert.read_graph(litert.select_signature(q, llm.DECODE_SIGNATURE))
    kinds = {}
    for op in graph.ops:
        if op.op in ("EMBEDDING_LOOKUP", "FULLY_CONNECTED"):
            weight = graph.tensors[op.inputs[1]]
            kinds.setdefault(op.op, set()).add(weight.dtype_name.lower())
    assert kinds == {"EMBEDDING_LOOKUP": {"int8"}, "FULLY_CONNECTED": {"int4"}}
    assert len(q) > len(llm.quantize(tiny_export, "int4_block32"))


def test_quantize_by_group_refuses_what_it_cannot_do(tiny_export):
    with pytest.raises(ValueError, match="group must be one of"):
        llm.quantize(tiny_export, "int4_block32", "embeddings")
    with pytest.raises(ValueError, match="cannot be restricted to a group"):
        llm.quantize(tiny_export, "weight_only_int8", "MLP")
    with pytest.raises(ValueError, match="cannot be restricted to a group"):
        llm.quantize(tiny_export, "int4_block32_int8_tables", "MLP")


def test_quantization_sensitivity_measures_each_group_alone(tiny_export):
    data = llm.ByteTokenizer().encode("The for statement iterates over the items of a sequence. " * 8)
    rows = llm.quantization_sensitivity(tiny_export, data.astype(np.uint8), num_threads=1)
    assert [r["group"] for r in rows] == list(llm.LAYER_GROUPS)
    assert sum(r["weight_share"] for r in rows) == pytest.approx(1.0)
    reference = llm.evaluate(tiny_export, data.astype(np.uint8), num_threads=1)["bits_per_byte"]
    for r in rows:
        assert r["bits_per_byte"] - reference == pytest.approx(r["delta_bits_per_byte"])
        assert 0.0 <= r["top1_agreement"] <= 1.0
        assert r["bytes"] < len(tiny_export)
        assert r["delta_low"] <= r["delta_bits_per_byte"] <= r["delta_high"]


def test_quantization_sweep_keeps_each_bytes_bits_for_paired_comparisons(tiny_export):
    data = llm.ByteTokenizer().encode("The for statement iterates over the items of a sequence. " * 8)
    rows = llm.quantization_sweep(tiny_export, data.astype(np.uint8), schemes=["dynamic_int8", "int2_block32"],
                                  sample_tokens=4, num_threads=1)
    assert [r["scheme"] for r in rows] == ["float32", "dynamic_int8", "int2_block32"]
    for r in rows:
        assert r["bits"].shape == (data.size,) and np.mean(r["bits"]) == pytest.approx(r["bits_per_byte"])
    assert rows[0]["top1_agreement"] == 1.0 and rows[0]["xnnpack_error"] is None
    assert rows[2]["kernels"] == "builtin" and rows[2]["xnnpack_error"]  # XNNPACK has no int2 kernels
    d = llm.bits_difference(rows[1], rows[0], TINY.context)
    assert d["delta"] == pytest.approx(rows[1]["bits_per_byte"] - rows[0]["bits_per_byte"])
    assert d["low"] <= d["delta"] <= d["high"]
    with pytest.raises(ValueError, match="unknown scheme 'int3'"):
        llm.quantization_sweep(tiny_export, data.astype(np.uint8), schemes=["int3"])


def test_fake_quantized_puts_every_matrix_on_its_block_grid(tiny_gpt):
    from mobileopt_ref import quantization as qz

    copy = llm.fake_quantized(tiny_gpt, 2, 16)
    tables = {id(tiny_gpt.tokens.table), id(tiny_gpt.positions.table)}
    for var, before, after in zip(tiny_gpt.weights, tiny_gpt.get_weights(), copy.get_weights()):
        if before.ndim == 1:
            np.testing.assert_array_equal(after, before)  # LayerNorm and biases stay float
            continue
        axis = 1 if id(var) in tables else 0
        np.testing.assert_array_equal(after, qz.blockwise_fake_quantize(before, 2, 16, axis=axis))
        # two bits, symmetric: each block of 16 holds at most -s, 0 and +s
        blocks = np.moveaxis(after, axis, -1).reshape(-1, 16)
        assert max(len(np.unique(b)) for b in blocks) <= 3
    assert copy.config == tiny_gpt.config
    # without the tables: they stay float, everything else is on the same grid
    no_tables = llm.fake_quantized(tiny_gpt, 2, 16, tables=False)
    for var, before, after, grid in zip(tiny_gpt.weights, tiny_gpt.get_weights(), no_tables.get_weights(),
                                        copy.get_weights()):
        np.testing.assert_array_equal(after, before if id(var) in tables else grid)
    table_values = tiny_gpt.tokens.table.shape.num_elements() + tiny_gpt.positions.table.shape.num_elements()
    assert llm.grid_weights(tiny_gpt) - llm.grid_weights(tiny_gpt, tables=False) == table_values
    with pytest.raises(ValueError, match="fake_quantized and grid_weights take a llm.GPT"):
        llm.fake_quantized("gpt", 2, 16)
    with pytest.raises(ValueError, match="tables must be True or False"):
        llm.grid_weights(tiny_gpt, tables="no")
    with pytest.raises(ValueError, match="block_size must be a positive divisor"):
        llm.fake_quantized(tiny_gpt, 4, 24)


def test_grid_weights_count_what_litert_quantizer_quantizes(tiny_gpt, tiny_export):
    # int4 block 32 quantizes every matrix; int2 block 32 leaves both tables float32
    assert llm.quantized_weights(llm.quantize(tiny_export, "int4_block32")) == llm.grid_weights(tiny_gpt)
    assert llm.quantized_weights(llm.quantize(tiny_export, "int2_block32")) == llm.grid_weights(tiny_gpt,
                                                                                                tables=False)


def test_bits_difference_is_paired_over_windows():
    rng = np.random.default_rng(0)
    a = {"bits": rng.random(64) * 3}
    b = {"bits": a["bits"] + 0.25 + rng.normal(0, 0.01, 64)}
    d = llm.bits_difference(b, a, 16)
    assert d["windows"] == 4 and d["delta"] == pytest.approx(np.mean(b["bits"] - a["bits"]))
    assert d["low"] <= d["delta"] <= d["high"] and d["low"] > 0.2
    assert llm.bits_difference(b, a, 16) == d  # seeded: the same interval every time
    # a short last window weighs by its bytes: delta is the difference of bits per byte
    short_a, short_b = {"bits": a["bits"][:40]}, {"bits": b["bits"][:40] + np.r_[np.zeros(32), np.ones(8)]}
    d = llm.bits_difference(short_b, short_a, 16)
    assert d["windows"] == 3 and d["delta"] == pytest.approx(np.mean(short_b["bits"] - short_a["bits"]))
    with pytest.raises(ValueError, match="different texts"):
        llm.bits_difference({"bits": b["bits"][:10]}, a, 16)
    with pytest.raises(ValueError, match="at least two windows"):
        llm.bits_difference(b, a, 64)


def test_bundle_runs_in_litert_lm_like_the_interpreter(tiny_export, tmp_path):
    pytest.importorskip("litert_lm")
    path = llm.build_bundle(tiny_export, tmp_path / "tiny.litertlm")
    with llm.LiteRTLM(path, threads=1) as engine:
        assert engine.tokenize("Hé") == [72, 195, 169]
        text = engine.generate("The ", 12)
    assert text == llm.generate(tiny_export, "The ", 12)
    speed = llm.litert_lm_benchmark(path, prefill_tokens=8, decode_tokens=8, threads=1)
    assert speed["prefill_tokens"] == 8 and speed["decode_tokens"] == 8
    assert speed["decode_tokens_per_second"] > 0
    with pytest.raises(FileNotFoundError):
        llm.build_bundle(tiny_export, tmp_path / "missing" / "x.litertlm")


def test_interpreter_benchmark_reuses_a_loaded_model(tiny_export):
    runner = llm.TFLiteLM(tiny_export, num_threads=1)
    runner.prefill(np.arange(1, runner.context - 2, dtype=np.int32))  # nearly full: the benchmark empties it
    for _ in range(2):
        speed = llm.interpreter_benchmark(runner, prefill_tokens=8, decode_tokens=4, threads=1)
        assert speed["prefill_tokens"] == 8 and speed["decode_tokens"] == 4 and len(speed["decode_ms"]) == 4
        assert runner.position == 8 + 4
    fresh = llm.interpreter_benchmark(tiny_export, prefill_tokens=8, decode_tokens=4, threads=1)
    assert fresh["decode_tokens"] == 4
    with pytest.raises(ValueError, match="runs 1 threads, not threads=2"):
        llm.interpreter_benchmark(runner, prefill_tokens=8, decode_tokens=4, threads=2)


def test_litert_lm_benchmark_reuses_a_cache_folder(tiny_export, tmp_path):
    pytest.importorskip("litert_lm")
    path = llm.build_bundle(tiny_export, tmp_path / "tiny.litertlm")
    cache = tmp_path / "compiled"
    cache.mkdir()
    for _ in range(2):
        speed = llm.litert_lm_benchmark(path, prefill_tokens=8, decode_tokens=8, threads=1, cache_dir=cache)
        assert speed["decode_tokens"] == 8
    assert any(cache.iterdir()), "LiteRT-LM kept nothing in its cache folder"
    with pytest.raises(FileNotFoundError, match="must be an existing folder"):
        llm.litert_lm_benchmark(path, prefill_tokens=8, decode_tokens=8, cache_dir=tmp_path / "absent")


def test_retrain_check_of_the_gpt_without_a_shipped_entry_fails_without_training(tmp_path, monkeypatch, capsys):
    from mobileopt_ref import cli

    monkeypatch.setenv("MOBILEOPT_CACHE_DIR", str(tmp_path))
    assert cli.main(["retrain-check", "gpt"]) == 1
    assert "gpt: no valid shipped entry" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
