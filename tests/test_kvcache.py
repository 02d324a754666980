"""Weights and KV-cache arithmetic: hand-checked cases, properties, refused configurations."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobileopt_ref import kvcache
from mobileopt_ref.kvcache import Scheme, TransformerConfig

TINY = TransformerConfig(name="tiny", vocab_size=10, hidden_size=4, num_layers=2, num_heads=2,
                         num_kv_heads=1, head_dim=2, intermediate_size=8, gated_mlp=False,
                         tied_embeddings=False, bias=True, norm_vectors_per_layer=2, norm_params=2)


def test_tiny_parameter_count_by_hand():
    # embedding 10x4 = 40; per layer: q 4x4 + k 4x2 + v 4x2 + o 4x4 = 48, mlp 4x8 + 8x4 = 64,
    # biases 4 + 2 + 2 + 4 + 8 + 4 = 24, two LayerNorms 2 x 2 x 4 = 16; final LayerNorm 8;
    # untied head 10x4 = 40 plus its bias 10.
    counts = kvcache.parameter_counts(TINY)
    assert counts["embedding"] == 40
    assert counts["attention"] == 2 * 48
    assert counts["mlp"] == 2 * 64
    assert counts["output"] == 40
    assert counts["vectors"] == 2 * (24 + 16) + 8 + 10
    assert counts["total"] == 40 + 96 + 128 + 40 + 98


def test_gpt2_style_matches_the_gpt_of_llm():
    # GPT-2 block: per layer 12 d^2 + 13 d (mlp_ratio 4); tables V d + T d; head d V + V; final LN 2 d.
    d, n, v, t = 128, 4, 258, 256
    config = TransformerConfig.gpt2_style("small", vocab_size=v, d_model=d, n_layers=n, n_heads=4, context=t)
    assert kvcache.parameter_counts(config)["total"] == v * d + t * d + n * (12 * d * d + 13 * d) + 2 * d + d * v + v
    w = kvcache.weight_bytes(config, "fp32")
    read = kvcache.bytes_read_per_token(config, "fp32", 1, kv_bytes=4)
    assert read == w["total"] - w["embedding"] + 2 * 4 * d + kvcache.kv_bytes_per_token(config, kv_bytes=4)
    with pytest.raises(ValueError, match="divide"):
        TransformerConfig.gpt2_style("bad", vocab_size=v, d_model=100, n_layers=1, n_heads=3, context=8)


def test_published_parameter_counts():
    # KerasHub's gemma3_1b preset: 999,885,952 parameters; Llama 3.2 1B: 1.24 B (1,235,814,400).
    assert kvcache.parameter_counts(kvcache.GEMMA3_1B)["total"] == 999_885_952
    assert kvcache.parameter_counts(kvcache.LLAMA32_1B)["total"] == 1_235_814_400


def test_scheme_bytes_by_hand():
    s = kvcache.SCHEMES
    assert s["fp32"].matrix_bytes(3, 64) == 3 * 64 * 4
    assert s["fp16"].matrix_bytes(3, 64) == 3 * 64 * 2
    # int8 channelwise: 1 byte a value, one float32 scale and one int64 zero point a row.
    assert s["int8 channelwise"].matrix_bytes(3, 64) == 3 * 64 + 3 * 12
    assert s["int4 channelwise"].matrix_bytes(3, 64) == 3 * 32 + 3 * 12
    # int4 block 32: half a byte a value, one float16 scale per 32 values.
    assert s["int4 block 32"].matrix_bytes(3, 64) == 3 * 32 + 3 * 2 * 2
    assert s["int4 block 64"].matrix_bytes(3, 64) == 3 * 32 + 3 * 2
    assert s["int2 block 32"].matrix_bytes(3, 64) == 3 * 16 + 3 * 2 * 2
    assert s["int4 block 32"].bytes_per_parameter(1024) == 0.5 + 2 / 32


def test_kv_by_hand():
    # Llama 3.2 1B: 2 x 16 layers x 8 heads x 64 x 2 bytes = 32 KiB a token.
    assert kvcache.kv_bytes_per_token(kvcache.LLAMA32_1B, kv_bytes=2) == 32768
    assert kvcache.kv_cache_bytes(kvcache.LLAMA32_1B, 4096, kv_bytes=2) == 4096 * 32768
    # Gemma 3 1B: 26 layers, 4 of them global (layers 6, 12, 18, 24); local ones keep 512 tokens.
    g = kvcache.GEMMA3_1B
    assert sum(w == 8192 for w in g.layer_windows(8192)) == 4
    per_layer_token = 2 * 1 * 256 * 2
    assert kvcache.kv_cache_bytes(g, 8192) == per_layer_token * (4 * 8192 + 22 * 512)
    assert kvcache.kv_cache_bytes(g, 100) == 26 * 100 * per_layer_token


def test_attention_kind():
    assert kvcache.GEMMA3_1B.attention == "MQA"
    assert kvcache.LLAMA32_1B.attention == "GQA"
    mha = TransformerConfig(name="m", vocab_size=8, hidden_size=8, num_layers=1, num_heads=2, num_kv_heads=2,
                            head_dim=4, intermediate_size=8)
    assert mha.attention == "MHA"


def test_embedding_left_float_and_decode_reads():
    g = kvcache.LLAMA32_1B
    q = kvcache.weight_bytes(g, "int4 block 32")
    f = kvcache.weight_bytes(g, "int4 block 32", embedding="fp32")
    assert f["embedding"] == 4 * 128256 * 2048 and f["mlp"] == q["mlp"]
    # an untied output layer can keep the blocks' scheme while the table does not
    small = kvcache.TransformerConfig.gpt2_style("small GPT", vocab_size=258, d_model=128, n_layers=4, n_heads=4,
                                                 context=256, mlp_ratio=4)
    u = kvcache.weight_bytes(small, "int4 block 32", embedding="int8 channelwise", output="int4 block 32")
    i8 = kvcache.weight_bytes(small, "int8 channelwise")
    i4 = kvcache.weight_bytes(small, "int4 block 32")
    assert u["output"] > 0 and u["output"] == i4["output"] != i8["output"]
    assert u["embedding"] == i8["embedding"] != i4["embedding"] and u["mlp"] == i4["mlp"]
    # Tied: the output projection reads the whole table each token.
    read = kvcache.bytes_read_per_token(g, "int4 block 32", 1, kv_bytes=2)
    assert read == q["total"] + kvcache.kv_bytes_per_token(g, kv_bytes=2)
    # Untied: only one row of the table is read.
    tiny_read = kvcache.bytes_read_per_token(TINY, "fp32", 3, kv_bytes=4)
    w = kvcache.weight_bytes(TINY, "fp32")
    assert tiny_read == w["total"] - w["embedding"] + 4 * 4 + kvcache.kv_cache_bytes(TINY, 3, kv_bytes=4)


def test_bound_and_implied_bandwidth():
    assert kvcache.decode_bound(50e9, 1e9) == 50.0
    assert kvcache.implied_bandwidth(657e6, 50) == pytest.approx(32.85e9)
    rows = kvcache.published_rows(model="Gemma 3 1B", backend="CPU")
    assert rows and all(r["implied_gbs"] == pytest.approx(r["size_mb"] * r["decode"] / 1e3) for r in rows)
    assert all(r["url"].startswith("https://") and r["source"] for r in kvcache.PUBLISHED)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_heads=6, num_kv_heads=4), "divide"),
    (dict(num_layers=0), "num_layers"),
    (dict(hidden_size=-4), "hidden_size"),
    (dict(head_dim=2.5), "head_dim"),
    (dict(vocab_size=True), "vocab_size"),
    (dict(global_every=6), "sliding_window"),
    (dict(sliding_window=0), "sliding_window"),
    (dict(norm_params=3), "norm_params"),
])
def test_bad_configs_refused(kwargs, match):
    base = dict(name="x", vocab_size=16, hidden_size=8, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=2,
                intermediate_size=16)
    with pytest.raises(ValueError, match=match):
        TransformerConfig(**{**base, **kwargs})


@pytest.mark.parametrize("kwargs, match", [
    (dict(bits=3), "bits"),
    (dict(bits=4, block_size=-32, scale_bytes=2), "block_size"),
    (dict(bits=32, scale_bytes=4), "cannot store"),
    (dict(bits=4, block_size=32), "scale_bytes"),
])
def test_bad_schemes_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Scheme(name="bad", **kwargs)


def test_bad_calls_refused():
    with pytest.raises(ValueError, match="unknown scheme"):
        kvcache.weight_bytes(kvcache.GEMMA3_1B, "int3")
    with pytest.raises(ValueError, match="blocks of 128"):
        kvcache.SCHEMES["int4 block 128"].matrix_bytes(2, 100)
    with pytest.raises(ValueError, match="context"):
        kvcache.kv_cache_bytes(kvcache.GEMMA3_1B, 0)
    with pytest.raises(ValueError, match="kv_bytes"):
        kvcache.kv_bytes_per_token(kvcache.GEMMA3_1B, kv_bytes=0)
    with pytest.raises(ValueError, match="bandwidth"):
        kvcache.decode_bound(0, 1e6)
    with pytest.raises(ValueError, match="model"):
        kvcache.published_rows(model="GPT-5")


configs = st.builds(
    lambda kv, group, hd, layers, d_mult, ff_mult, vocab, window, every: TransformerConfig(
        name="h", vocab_size=vocab, hidden_size=128 * d_mult, num_layers=layers, num_heads=kv * group,
        num_kv_heads=kv, head_dim=hd, intermediate_size=128 * ff_mult,
        sliding_window=window, global_every=every if window else None),
    st.integers(1, 4), st.integers(1, 4), st.sampled_from([128, 256]), st.integers(1, 8),
    st.integers(1, 8), st.integers(1, 16), st.integers(2, 5000), st.one_of(st.none(), st.integers(1, 300)),
    st.integers(1, 6))


@settings(max_examples=60, deadline=None)
@given(configs, st.integers(1, 5000))
def test_properties(config, context):
    counts = kvcache.parameter_counts(config)
    w = {name: kvcache.weight_bytes(config, name)["total"] for name in kvcache.SCHEMES}
    n = counts["total"]
    assert w["fp32"] == 4 * n and w["fp16"] == 2 * n + 2 * counts["vectors"]
    # Fewer bits never cost more; finer blocks cost more scale bytes.
    assert w["fp32"] > w["fp16"] > w["int8 channelwise"] > w["int4 channelwise"] > w["int2 block 32"]
    assert w["int4 block 32"] > w["int4 block 64"] > w["int4 block 128"] > w["int2 block 32"]
    # Scales cost what the formula says: int4 block 32 is 4.5 bits a matrix weight.
    matrix_params = n - counts["vectors"]
    assert w["int4 block 32"] == pytest.approx(matrix_params * 4.5 / 8 + 4 * counts["vectors"])
    # The KV cache grows with the context, never faster than a global model's, and at most
    # by one token's worth per token.
    per_token = kvcache.kv_bytes_per_token(config)
    kv = kvcache.kv_cache_bytes(config, context)
    assert 0 < kv <= context * per_token
    assert kvcache.kv_cache_bytes(config, context + 1) - kv <= per_token
    if config.sliding_window is None:
        assert kv == context * per_token
    # Decode reads at least the matrices (bar the table) and at most everything once.
    read = kvcache.bytes_read_per_token(config, "int8 channelwise", context)
    total = kvcache.total_ram_bytes(config, "int8 channelwise", context)
    assert read <= total + 1e-6
    bound = kvcache.decode_bound(30e9, read)
    assert math.isclose(bound * read, 30e9)


def test_peak_rss_refuses_bad_calls():
    with pytest.raises(ValueError, match="runtime"):
        kvcache.measure_peak_rss(b"x", runtime="gpu")
    with pytest.raises(ValueError, match="bundle"):
        kvcache.measure_peak_rss(b"x", runtime="litert-lm")
    with pytest.raises(ValueError, match="decode_tokens"):
        kvcache.measure_peak_rss(b"x", decode_tokens=0)
    with pytest.raises(ValueError, match="no model file"):
        kvcache.measure_peak_rss("/nonexistent/model.tflite")


def test_peak_rss_of_a_fresh_process(tmp_path):
    from mobileopt_ref import llm

    model = llm.export_tflite(llm.GPT(llm.GPTConfig(n_layers=1, d_model=32, n_heads=2, context=32, prefill_len=8)))
    out = kvcache.measure_peak_rss(model, prefill_tokens=8, decode_tokens=4)
    assert out["peak"] >= out["imports"] > 0 and out["model"] == out["peak"] - out["imports"]
    assert out["decode_tokens_per_second"] > 0
    bundle = llm.build_bundle(model, tmp_path / "tiny.litertlm")
    in_engine = kvcache.measure_peak_rss(bundle, runtime="litert-lm", prefill_tokens=8, decode_tokens=4)
    assert in_engine["peak"] >= in_engine["imports"] > 0 and in_engine["decode_tokens_per_second"] > 0
    with pytest.raises(RuntimeError, match="failed"):
        kvcache.measure_peak_rss(b"not a model")
