"""Weights and KV-cache arithmetic of a decoder-only transformer, and the decode bound.

A language model on a phone needs memory for two things: its weights, whose size is the
parameter count times the bytes each parameter takes in the chosen storage scheme (with
the scales a quantized scheme stores beside the integers), and its *KV cache*, the keys
and values of every token seen so far, kept so that each new token attends to them
without recomputing them. For a model with ``L`` layers, ``H_kv`` key/value heads of
``d_h`` values each, stored in ``b`` bytes per value,

    KV bytes per token = 2 L H_kv d_h b,                       (K and V)
    KV bytes at context T = sum over layers of 2 H_kv d_h b min(T, W_layer),

where ``W_layer`` is the layer's attention window (``T`` for global attention). Grouped-query
attention (GQA, ``H_kv < H``) and multi-query attention (MQA, ``H_kv = 1``) shrink the cache
by ``H / H_kv`` against multi-head attention.

Generating one token (*decode*) multiplies one vector by every weight matrix, so it reads
every weight once and the whole KV cache once, and does about two operations per weight
byte at float32: far left of any CPU's ridge point. Its speed is therefore bounded by the
memory bandwidth ``B``:

    tokens/s <= B / bytes read per token.

Read backwards, a published size times a published decode rate is a lower bound on the
bandwidth the phone must have streamed (:func:`implied_bandwidth`): when it comes out about
the same for a model at several sizes, decode was bandwidth-bound.

Every figure here is arithmetic on a configuration; the two named configurations
(:data:`GEMMA3_1B`, :data:`LLAMA32_1B`) carry the source of each architecture figure, and
:data:`PUBLISHED` quotes on-device measurements with their sources. Nothing is measured here.

Explained in notebooks/08_large_models.ipynb.

Example:
    >>> from mobileopt_ref import kvcache
    >>> kvcache.parameter_counts(kvcache.GEMMA3_1B)["total"]
    999885952
    >>> kvcache.kv_bytes_per_token(kvcache.LLAMA32_1B, kv_bytes=2)
    32768
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import subprocess
import sys
import tempfile

MIB = 2**20
GIB = 2**30


# ---------------------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------------------

def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    value = int(value)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return value


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """The shape of a decoder-only transformer, as a Hugging Face ``config.json`` gives it.

    Attributes:
        name: a label.
        vocab_size: tokens in the vocabulary (rows of the embedding table).
        hidden_size: the model width ``d``.
        num_layers: transformer blocks ``L``.
        num_heads: query heads ``H``.
        num_kv_heads: key/value heads ``H_kv`` (``H`` for multi-head attention, fewer for
            GQA, 1 for MQA); must divide ``num_heads``.
        head_dim: values per head ``d_h`` (not always ``d / H``: Gemma 3 1B has 4 heads of
            256 on a width of 1152).
        intermediate_size: the MLP's hidden width.
        gated_mlp: three MLP matrices (gate, up, down: SwiGLU/GeGLU) if true, two if false.
        tied_embeddings: the output projection reuses the embedding table (no extra matrix).
        bias: linear layers carry biases (GPT-2 style) if true.
        norm_vectors_per_layer: normalization weight vectors per block (2 for pre-norm
            Llama, 4 for Gemma 3's pre- and post-norms).
        norm_params: parameters per normalization vector and channel (1 for RMSNorm, 2 for
            LayerNorm's scale and offset).
        qk_norm: a normalization of queries and keys (``2 d_h`` more parameters a layer).
        sliding_window: the attention window of the local layers (``None``: all global).
        global_every: with a window, every ``global_every``-th layer is global (Gemma 3: 6,
            five local layers then one global).
        max_context: the longest context the model was trained for.
        learned_positions: a learned position table of ``max_context`` rows (GPT-2) beside
            the token table.
        sources: ``{figure: source}``, where each architecture figure comes from.

    Raises:
        ValueError: for a non-positive size, ``num_kv_heads`` not dividing ``num_heads``,
            ``global_every`` without ``sliding_window`` or below 1, a bad ``norm_params``.
    """

    name: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    gated_mlp: bool = True
    tied_embeddings: bool = True
    bias: bool = False
    norm_vectors_per_layer: int = 2
    norm_params: int = 1
    qk_norm: bool = False
    sliding_window: int | None = None
    global_every: int | None = None
    max_context: int = 2048
    learned_positions: bool = False
    sources: dict = dataclasses.field(default_factory=dict, compare=False)

    def __post_init__(self):
        for field in ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads",
                      "head_dim", "intermediate_size", "max_context"):
            object.__setattr__(self, field, _positive_int(getattr(self, field), field))
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_kv_heads ({self.num_kv_heads}) must divide num_heads ({self.num_heads}): "
                             "each key/value head serves a whole group of query heads")
        if self.norm_params not in (1, 2):
            raise ValueError(f"norm_params must be 1 (RMSNorm) or 2 (LayerNorm), got {self.norm_params!r}")
        if isinstance(self.norm_vectors_per_layer, bool) or not isinstance(self.norm_vectors_per_layer, int) \
                or self.norm_vectors_per_layer < 0:
            raise ValueError(f"norm_vectors_per_layer must be a non-negative integer, got {self.norm_vectors_per_layer!r}")
        if self.sliding_window is not None:
            object.__setattr__(self, "sliding_window", _positive_int(self.sliding_window, "sliding_window"))
        if self.global_every is not None:
            if self.sliding_window is None:
                raise ValueError("global_every needs a sliding_window (without one every layer is global)")
            object.__setattr__(self, "global_every", _positive_int(self.global_every, "global_every"))

    @classmethod
    def gpt2_style(cls, name: str, *, vocab_size: int, d_model: int, n_layers: int, n_heads: int,
                   context: int, mlp_ratio: int = 4) -> "TransformerConfig":
        """GPT-2's block: multi-head attention, LayerNorms, biases, a two-matrix GELU MLP,
        learned positions and an untied output layer (the shape of
        :class:`mobileopt_ref.llm.GPTConfig`)."""
        d_model, n_heads = _positive_int(d_model, "d_model"), _positive_int(n_heads, "n_heads")
        if d_model % n_heads:
            raise ValueError(f"n_heads ({n_heads}) must divide d_model ({d_model})")
        return cls(name=name, vocab_size=vocab_size, hidden_size=d_model, num_layers=n_layers, num_heads=n_heads,
                   num_kv_heads=n_heads, head_dim=d_model // n_heads,
                   intermediate_size=_positive_int(mlp_ratio, "mlp_ratio") * d_model,
                   gated_mlp=False, tied_embeddings=False, bias=True, norm_vectors_per_layer=2, norm_params=2,
                   max_context=context, learned_positions=True)

    @property
    def attention(self) -> str:
        """``"MHA"``, ``"GQA"`` or ``"MQA"``, from the number of key/value heads."""
        if self.num_kv_heads == self.num_heads:
            return "MHA"
        return "MQA" if self.num_kv_heads == 1 else "GQA"

    def layer_windows(self, context: int) -> list:
        """Tokens each layer keeps in its KV cache at ``context`` tokens (one per layer)."""
        context = _positive_int(context, "context")
        windows = []
        for layer in range(self.num_layers):
            is_global = (self.sliding_window is None
                         or (self.global_every is not None and (layer + 1) % self.global_every == 0))
            windows.append(context if is_global else min(context, self.sliding_window))
        return windows


def matrices(config: TransformerConfig) -> list:
    """The weight matrices, as ``(block, name, rows, cols, count)``.

    ``rows`` is the output dimension and ``cols`` the input dimension (the row length a
    channelwise scale covers: LiteRT's FULLY_CONNECTED weights are ``[out, in]`` and are
    quantized along the output channel); the embedding table is ``[vocab, d]`` with one
    scale a row. ``count`` is how many such matrices the model has.
    """
    d, h, kv, hd, ff, n = (config.hidden_size, config.num_heads, config.num_kv_heads, config.head_dim,
                           config.intermediate_size, config.num_layers)
    rows = [("embedding", "token embedding", config.vocab_size, d, 1)]
    if config.learned_positions:
        rows.append(("embedding", "position embedding", config.max_context, d, 1))
    rows += [
        ("attention", "query", h * hd, d, n),
        ("attention", "key", kv * hd, d, n),
        ("attention", "value", kv * hd, d, n),
        ("attention", "output", d, h * hd, n),
    ]
    if config.gated_mlp:
        rows += [("mlp", "gate", ff, d, n), ("mlp", "up", ff, d, n), ("mlp", "down", d, ff, n)]
    else:
        rows += [("mlp", "up", ff, d, n), ("mlp", "down", d, ff, n)]
    if not config.tied_embeddings:
        rows.append(("output", "output projection", config.vocab_size, d, 1))
    return rows


def vector_parameters(config: TransformerConfig) -> int:
    """Parameters in vectors (normalization weights and biases), which stay float."""
    d, h, kv, hd, ff, n = (config.hidden_size, config.num_heads, config.num_kv_heads, config.head_dim,
                           config.intermediate_size, config.num_layers)
    per_layer = config.norm_vectors_per_layer * config.norm_params * d
    if config.qk_norm:
        per_layer += 2 * config.norm_params * hd
    if config.bias:
        per_layer += h * hd + 2 * kv * hd + d + (2 * ff if config.gated_mlp else ff) + d
    total = n * per_layer + config.norm_params * d          # the final normalization
    if config.bias and not config.tied_embeddings:
        total += config.vocab_size
    return total


def parameter_counts(config: TransformerConfig) -> dict:
    """Parameters by block.

    Returns:
        ``{"embedding", "attention", "mlp", "output", "vectors", "total"}`` (ints):
        the embedding table, all layers' attention matrices, all layers' MLP matrices, the
        untied output projection (0 when tied), normalization weights and biases, and the
        sum.
    """
    counts = {"embedding": 0, "attention": 0, "mlp": 0, "output": 0}
    for block, _, rows, cols, count in matrices(config):
        counts[block] += rows * cols * count
    counts["vectors"] = vector_parameters(config)
    counts["total"] = sum(counts.values())
    return counts


# ---------------------------------------------------------------------------------------
# Storage schemes
# ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Scheme:
    """How a weight matrix is stored: bits per value and the scales stored beside them.

    Attributes:
        name: a label.
        bits: bits per stored value (32, 16, 8, 4, 2).
        block_size: values sharing one scale along a row; ``None`` for one scale per output
            channel (a whole row, *channelwise*), 0 for no scale at all (float storage).
        scale_bytes: bytes of one scale (float32: 4; LiteRT's blockwise scales: 2).
        zero_point_bytes: bytes of one zero point stored with each scale.
        source: where the storage layout is documented.

    Raises:
        ValueError: for bits not in 2, 4, 8, 16, 32, a negative or non-integer block size,
            negative scale or zero-point bytes, or scales on a float scheme.
    """

    name: str
    bits: int
    block_size: int | None = 0
    scale_bytes: int = 0
    zero_point_bytes: int = 0
    source: str = ""

    def __post_init__(self):
        if self.bits not in (2, 4, 8, 16, 32):
            raise ValueError(f"bits must be one of 2, 4, 8, 16, 32, got {self.bits!r}")
        if self.block_size is not None:
            if isinstance(self.block_size, bool) or not isinstance(self.block_size, int) or self.block_size < 0:
                raise ValueError(f"block_size must be None (channelwise), 0 (no scales) or a positive integer, "
                                 f"got {self.block_size!r}")
        for field in ("scale_bytes", "zero_point_bytes"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{field} must be a non-negative integer, got {value!r}")
        if self.block_size == 0 and (self.scale_bytes or self.zero_point_bytes):
            raise ValueError("a scheme without scales (block_size 0) cannot store scale or zero-point bytes")
        if self.block_size != 0 and not self.scale_bytes:
            raise ValueError("a quantized scheme (channelwise or blockwise) needs scale_bytes > 0")

    @property
    def quantized(self) -> bool:
        """Whether the scheme stores integers with scales."""
        return self.block_size != 0

    def group(self, cols: int) -> int:
        """Values that share one scale in a row of ``cols`` values."""
        if self.block_size == 0:
            return 0
        if self.block_size is None:
            return cols
        if cols % self.block_size:
            raise ValueError(f"{self.name}: a row of {cols} values does not split into blocks of {self.block_size}")
        return self.block_size

    def matrix_bytes(self, rows: int, cols: int) -> float:
        """Bytes of one ``rows x cols`` matrix: packed values plus scales and zero points.

        ``rows cols bits / 8 + (rows cols / group) (scale_bytes + zero_point_bytes)``.
        """
        rows, cols = _positive_int(rows, "rows"), _positive_int(cols, "cols")
        values = rows * cols * self.bits / 8
        if not self.quantized:
            return values
        return values + rows * cols // self.group(cols) * (self.scale_bytes + self.zero_point_bytes)

    def bytes_per_parameter(self, cols: int) -> float:
        """Bytes per weight in a row of ``cols`` values, scales included."""
        return self.matrix_bytes(1, cols) / cols


_SCHEMA = ("TFLite schema (tensorflow/compiler/mlir/lite/schema/schema.fbs): QuantizationParameters store "
           "a float32 scale and an int64 zero point per channel")
_BLOCKWISE = ("litert_quantizer 0.11, transformations/quantize_tensor.py: blockwise scales stored as float16 "
              "(rounded through bfloat16), no zero point")

SCHEMES = {
    "fp32": Scheme("fp32", 32, source="IEEE 754 single precision"),
    "fp16": Scheme("fp16", 16, source="IEEE 754 half precision"),
    "int8 channelwise": Scheme("int8 channelwise", 8, None, 4, 8, _SCHEMA),
    "int4 channelwise": Scheme("int4 channelwise", 4, None, 4, 8, _SCHEMA),
    "int4 block 128": Scheme("int4 block 128", 4, 128, 2, 0, _BLOCKWISE),
    "int4 block 64": Scheme("int4 block 64", 4, 64, 2, 0, _BLOCKWISE),
    "int4 block 32": Scheme("int4 block 32", 4, 32, 2, 0, _BLOCKWISE),
    "int2 block 32": Scheme("int2 block 32", 2, 32, 2, 0, _BLOCKWISE),
}
"""The storage schemes of the chapter, as LiteRT lays them out in a ``.tflite`` file.

Channelwise schemes store one float32 scale and one int64 zero point per output channel
(the flatbuffer's layout: negligible beside a row of a thousand weights); blockwise ones
one float16 scale per block and no zero point, so int4 block 32 costs
``4/8 + 2/32 = 0.5625`` bytes a weight, 12.5 % more than the 4 bits."""


def _scheme(scheme) -> Scheme:
    if isinstance(scheme, Scheme):
        return scheme
    if scheme in SCHEMES:
        return SCHEMES[scheme]
    raise ValueError(f"unknown scheme {scheme!r}; use a Scheme or one of {sorted(SCHEMES)}")


def weight_bytes(config: TransformerConfig, scheme, *, embedding=None, output=None, vector_bytes: int = 4) -> dict:
    """Bytes of the weights stored in ``scheme``, by block.

    Args:
        config: the model.
        scheme: a :class:`Scheme` or a key of :data:`SCHEMES`, for every matrix.
        embedding: the scheme of the embedding table (and the tied output projection), if
            not ``scheme``: ``"fp32"`` models a converter that leaves the table float, as
            the LiteRT Quantizer does with a GATHER.
        output: the scheme of the output projection, if not ``embedding``'s (an untied
            output layer quantized like the blocks, say).
        vector_bytes: bytes of each normalization weight or bias (they stay float32).

    Returns:
        ``{"embedding", "attention", "mlp", "output", "vectors", "total"}`` in bytes.

    Raises:
        ValueError: for an unknown scheme or a row that does not split into blocks.
    """
    scheme = _scheme(scheme)
    table_scheme = scheme if embedding is None else _scheme(embedding)
    output_scheme = table_scheme if output is None else _scheme(output)
    out = {"embedding": 0.0, "attention": 0.0, "mlp": 0.0, "output": 0.0}
    for block, _, rows, cols, count in matrices(config):
        s = {"embedding": table_scheme, "output": output_scheme}.get(block, scheme)
        out[block] += count * s.matrix_bytes(rows, cols)
    out["vectors"] = float(vector_parameters(config) * vector_bytes)
    out["total"] = sum(out.values())
    return out


# ---------------------------------------------------------------------------------------
# The KV cache
# ---------------------------------------------------------------------------------------

def _kv_bytes(kv_bytes) -> float:
    if isinstance(kv_bytes, bool) or not isinstance(kv_bytes, (int, float)) or not kv_bytes > 0 \
            or not math.isfinite(kv_bytes):
        raise ValueError(f"kv_bytes (bytes per cached value) must be positive, got {kv_bytes!r}")
    return kv_bytes


def kv_bytes_per_token(config: TransformerConfig, *, kv_bytes=2) -> float:
    """KV-cache bytes one token adds to a global-attention model: ``2 L H_kv d_h b``.

    Args:
        config: the model.
        kv_bytes: bytes per cached value (2 for float16, 4 for float32, 1 for int8).

    Raises:
        ValueError: for a non-positive ``kv_bytes``.
    """
    return 2 * config.num_layers * config.num_kv_heads * config.head_dim * _kv_bytes(kv_bytes)


def kv_cache_bytes(config: TransformerConfig, context: int, *, kv_bytes=2) -> float:
    """KV-cache bytes at ``context`` tokens, windowed layers capped at their window.

    ``sum over layers of 2 H_kv d_h b min(T, W_layer)``.

    Raises:
        ValueError: for a non-positive context or ``kv_bytes``.
    """
    per_layer_token = 2 * config.num_kv_heads * config.head_dim * _kv_bytes(kv_bytes)
    return per_layer_token * sum(config.layer_windows(context))


def total_ram_bytes(config: TransformerConfig, scheme, context: int, *, kv_bytes=2, embedding=None) -> float:
    """Weights in ``scheme`` plus the KV cache at ``context`` tokens, in bytes.

    A lower bound on the RAM a runtime needs: activations, the runtime's own buffers and
    any unpacked copy of the weights come on top.
    """
    return weight_bytes(config, scheme, embedding=embedding)["total"] + kv_cache_bytes(config, context, kv_bytes=kv_bytes)


# ---------------------------------------------------------------------------------------
# The bandwidth bound on decode
# ---------------------------------------------------------------------------------------

def bytes_read_per_token(config: TransformerConfig, scheme, context: int, *, kv_bytes=2, embedding=None) -> float:
    """Bytes one decode step reads: every weight once, one embedding row, the whole KV cache.

    The embedding table is looked up by row, so only one row of it is read, unless the
    output projection is tied to it, which reads all of it; a learned position table
    gives one row too. At ``context`` tokens the step
    also reads the keys and values of every cached token.

    Raises:
        ValueError: for an unknown scheme, a non-positive context or ``kv_bytes``.
    """
    w = weight_bytes(config, scheme, embedding=embedding)
    table = _scheme(scheme) if embedding is None else _scheme(embedding)
    row = table.matrix_bytes(1, config.hidden_size)
    token_table = table.matrix_bytes(config.vocab_size, config.hidden_size)
    embedding_read = (token_table if config.tied_embeddings else row) + (row if config.learned_positions else 0)
    weights = w["total"] - w["embedding"] + embedding_read
    return weights + kv_cache_bytes(config, context, kv_bytes=kv_bytes)


def decode_bound(bandwidth_bytes_per_s: float, bytes_per_token: float) -> float:
    """The memory-bandwidth bound on decode: ``tokens/s <= B / bytes read per token``.

    Raises:
        ValueError: for a non-positive bandwidth or byte count.
    """
    for value, name in ((bandwidth_bytes_per_s, "bandwidth"), (bytes_per_token, "bytes per token")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    return bandwidth_bytes_per_s / bytes_per_token


def implied_bandwidth(model_bytes: float, tokens_per_s: float) -> float:
    """Bytes per second that ``tokens_per_s`` decode steps reading ``model_bytes`` each move.

    The bound read backwards: a phone that decodes at this rate streams at least this
    much, if every weight is read once a token (a lower bound: KV cache and activations
    come on top).

    Raises:
        ValueError: for a non-positive size or rate.
    """
    for value, name in ((model_bytes, "model bytes"), (tokens_per_s, "tokens per second")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(model_bytes) * float(tokens_per_s)


# ---------------------------------------------------------------------------------------
# What a fresh process actually holds
# ---------------------------------------------------------------------------------------

_PEAK_SCRIPT = r"""
import json, sys, tempfile, time

import numpy as np


def high_water_mark():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


path, runtime, prefill, decode, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if runtime == "interpreter":
    from ai_edge_litert.interpreter import Interpreter
else:
    import litert_lm
imports = high_water_mark()
if runtime == "interpreter":
    interpreter = Interpreter(model_path=path, num_threads=threads)
    runners = {key: interpreter.get_signature_runner(key) for key in ("prefill", "decode")}
    details = runners["prefill"].get_input_details()
    caches = {n: np.zeros(d["shape"], np.float32) for n, d in details.items() if n.startswith("kv_cache_")}
    chunk, position = int(details["tokens"]["shape"][1]), 0

    def run(key, n):
        global caches, position
        out = runners[key](tokens=np.zeros((1, n), np.int32),
                           input_pos=np.arange(position, position + n, dtype=np.int32), **caches)
        caches = {name: out[name] for name in caches}
        position += n

    for _ in range(-(-prefill // chunk)):
        run("prefill", chunk)
    started = time.perf_counter()
    for _ in range(decode):
        run("decode", 1)
    rate = decode / (time.perf_counter() - started)
else:
    with tempfile.TemporaryDirectory() as folder:
        info = litert_lm.Benchmark(model_path=path, backend=litert_lm.Backend.CPU(thread_count=threads),
                                   prefill_tokens=prefill, decode_tokens=decode, cache_dir=folder).run()
    rate = float(info.last_decode_tokens_per_second)
print(json.dumps({"imports": imports, "peak": high_water_mark(), "decode_tokens_per_second": rate}))
"""

RUNTIMES = ("interpreter", "litert-lm")
"""The runtimes :func:`measure_peak_rss` runs, ``ai_edge_litert``'s interpreter on a ``.tflite``
(:func:`mobileopt_ref.llm.interpreter_benchmark`) or LiteRT-LM's engine on a
``.litertlm`` bundle (:func:`mobileopt_ref.llm.litert_lm_benchmark`)."""


def measure_peak_rss(model, *, runtime: str = "interpreter", prefill_tokens: int = 64, decode_tokens: int = 64,
                     threads: int = 2, timeout: float = 600.0) -> dict:
    """The peak resident memory of a fresh process that loads a language model and runs it.

    A new Python process imports only numpy and the runtime (``ai_edge_litert``, or
    ``litert_lm``), reads its high-water mark of resident memory (``VmHWM`` in
    ``/proc/self/status``: the largest RSS the process has had), loads the model (the
    interpreter maps the file; LiteRT-LM's engine loads the bundle), prefills
    ``prefill_tokens`` (whole prefill chunks) and decodes ``decode_tokens`` tokens from
    an empty cache, and reads the mark again. The difference is what the model added at
    its peak: the weights the runtime touched or packed, the KV caches (copied in and
    out of every interpreter call) and the activations. Measured, so it differs from machine to machine
    and run to run; compare two models by their ratio.

    Args:
        model: ``.tflite`` bytes or path (``runtime="interpreter"``), or a ``.litertlm``
            path (``runtime="litert-lm"``).
        runtime: one of :data:`RUNTIMES`.
        prefill_tokens, decode_tokens: the work, as in the benchmarks.
        threads: CPU threads.
        timeout: seconds before the process is abandoned.

    Returns:
        ``{"imports": bytes, "peak": bytes, "model": peak - imports, "decode_tokens_per_second"}``.

    Raises:
        ValueError: for an unknown runtime, bad counts, or a bundle given as bytes.
        RuntimeError: if the process fails (with the end of its error output) or times out.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    for value, name in ((prefill_tokens, "prefill_tokens"), (decode_tokens, "decode_tokens"), (threads, "threads")):
        _positive_int(value, name)
    with tempfile.TemporaryDirectory() as folder:
        if isinstance(model, (bytes, bytearray)):
            if runtime != "interpreter":
                raise ValueError("a LiteRT-LM bundle must be given as a .litertlm path")
            path = os.path.join(folder, "model.tflite")
            with open(path, "wb") as f:
                f.write(model)
        else:
            path = os.fspath(model)
            if not os.path.isfile(path):
                raise ValueError(f"no model file at {path}")
        paths = [p for p in sys.path if p and os.path.isdir(p)]
        child_env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        try:
            result = subprocess.run(
                [sys.executable, "-c", _PEAK_SCRIPT, path, runtime, str(prefill_tokens), str(decode_tokens),
                 str(threads)], capture_output=True, text=True, timeout=timeout, env=child_env)
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"the measuring process did not finish in {timeout} s") from err
    if result.returncode != 0:
        raise RuntimeError(f"the measuring process failed: {result.stderr[-2000:]}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["model"] = out["peak"] - out["imports"]
    return out


# ---------------------------------------------------------------------------------------
# Named configurations, with the source of every figure
# ---------------------------------------------------------------------------------------

GEMMA3_CONFIG_URL = "https://huggingface.co/google/gemma-3-1b-it/blob/main/config.json"
LLAMA32_CONFIG_URL = "https://huggingface.co/meta-llama/Llama-3.2-1B/blob/main/config.json"

GEMMA3_1B = TransformerConfig(
    name="Gemma-3-1B-like", vocab_size=262144, hidden_size=1152, num_layers=26, num_heads=4,
    num_kv_heads=1, head_dim=256, intermediate_size=6912, gated_mlp=True, tied_embeddings=True,
    norm_vectors_per_layer=4, qk_norm=True, sliding_window=512, global_every=6, max_context=32768,
    sources={
        "vocab_size, hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim, "
        "intermediate_size, sliding_window, sliding_window_pattern, max_position_embeddings":
            f"config.json of google/gemma-3-1b-it ({GEMMA3_CONFIG_URL}), read from the copy published in "
            "mlx-community/gemma-3-1b-pt-6bit (transformers 4.50.0.dev0) {cite}`gemma3_1b_config`",
        "tied embeddings, four norms a block, query/key norms (gated GeGLU MLP)":
            "Gemma 3 technical report {cite}`gemmateam2025gemma3`; the count they give, 999,885,952 "
            "parameters, is the one KerasHub publishes for gemma3_1b {cite}`kerashub_gemma3_presets`",
    },
)
"""A model shaped like Gemma 3 1B, with multi-query attention (one key/value head for
four query heads of 256), five sliding-window layers (512 tokens) for every global one
and a 262,144-token vocabulary whose table is 30 % of the parameters and doubles as the
output projection."""

LLAMA32_1B = TransformerConfig(
    name="Llama-3.2-1B-like", vocab_size=128256, hidden_size=2048, num_layers=16, num_heads=32,
    num_kv_heads=8, head_dim=64, intermediate_size=8192, gated_mlp=True, tied_embeddings=True,
    norm_vectors_per_layer=2, qk_norm=False, max_context=131072,
    sources={
        "vocab_size, hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim, "
        "intermediate_size, tie_word_embeddings, max_position_embeddings":
            f"config.json of meta-llama/Llama-3.2-1B ({LLAMA32_CONFIG_URL}), read from the copy published in "
            "Emm9625/Llama-3.2-1B-chatml (duplicated from unsloth/Llama-3.2-1B) {cite}`llama32_1b_config`",
        "two RMSNorms a block, SwiGLU MLP, no biases": "the Llama architecture {cite}`touvron2023llama`",
    },
)
"""A model shaped like Llama 3.2 1B, with grouped-query attention (8 key/value heads for
32 query heads of 64), all layers global and a 128,256-token table tied to the output
projection."""

CONFIGS = {c.name: c for c in (GEMMA3_1B, LLAMA32_1B)}


# ---------------------------------------------------------------------------------------
# Published on-device figures (not measured here)
# ---------------------------------------------------------------------------------------

GEMMA3_CARD = "https://huggingface.co/litert-community/Gemma3-1B-IT"
LITERT_LM_README = "https://github.com/google-ai-edge/LiteRT-LM/blob/main/README.md"
LLAMA32_CARD = "https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct"

PUBLISHED = (
    # litert-community/Gemma3-1B-IT model card, "Android via Google AI Edge Gallery and MediaPipe",
    # Samsung S24 Ultra, CPU (XNNPACK, 4 threads), models with several prefill signatures.
    dict(model="Gemma 3 1B", runtime="MediaPipe LLM Inference", device="Samsung S24 Ultra", backend="CPU",
         scheme="fp32 (baseline)", context=1280, prefill=49, decode=10, size_mb=3824, rss_mb=4123,
         source="gemma3_1b_litert_card", url=GEMMA3_CARD),
    dict(model="Gemma 3 1B", runtime="MediaPipe LLM Inference", device="Samsung S24 Ultra", backend="CPU",
         scheme="dynamic_int4 (block size 128)", context=1280, prefill=138, decode=50, size_mb=657, rss_mb=982,
         source="gemma3_1b_litert_card", url=GEMMA3_CARD),
    dict(model="Gemma 3 1B", runtime="MediaPipe LLM Inference", device="Samsung S24 Ultra", backend="CPU",
         scheme="dynamic_int4 (block size 128)", context=4096, prefill=87, decode=37, size_mb=657, rss_mb=1145,
         source="gemma3_1b_litert_card", url=GEMMA3_CARD),
    dict(model="Gemma 3 1B", runtime="MediaPipe LLM Inference", device="Samsung S24 Ultra", backend="CPU",
         scheme="dynamic_int4 (block size 32)", context=1280, prefill=107, decode=48, size_mb=688, rss_mb=1045,
         source="gemma3_1b_litert_card", url=GEMMA3_CARD),
    dict(model="Gemma 3 1B", runtime="MediaPipe LLM Inference", device="Samsung S24 Ultra", backend="CPU",
         scheme="dynamic_int4 (block size 32)", context=4096, prefill=79, decode=36, size_mb=688, rss_mb=1210,
         source="gemma3_1b_litert_card", url=GEMMA3_CARD),
    dict(model="Gemma 3 1B", runtime="MediaPipe LLM Inference", device="Samsung S24 Ultra", backend="CPU",
         scheme="dynamic_int4 QAT", context=2048, prefill=322, decode=47, size_mb=529, rss_mb=1138,
         source="gemma3_1b_litert_card", url=GEMMA3_CARD),
    dict(model="Gemma 3 1B", runtime="MediaPipe LLM Inference", device="Samsung S24 Ultra", backend="CPU",
         scheme="dynamic_int8", context=1280, prefill=177, decode=33, size_mb=1005, rss_mb=1341,
         source="gemma3_1b_litert_card", url=GEMMA3_CARD),
    dict(model="Gemma 3 1B", runtime="MediaPipe LLM Inference", device="Samsung S24 Ultra", backend="CPU",
         scheme="dynamic_int8", context=4096, prefill=123, decode=29, size_mb=1005, rss_mb=1504,
         source="gemma3_1b_litert_card", url=GEMMA3_CARD),
    # Same card, "Android via LiteRT LM".
    dict(model="Gemma 3 1B", runtime="LiteRT-LM", device="Samsung S24 Ultra", backend="CPU",
         scheme="dynamic_int4 QAT", context=2048, prefill=379, decode=55, size_mb=529, rss_mb=1009,
         source="gemma3_1b_litert_card", url=GEMMA3_CARD),
    # LiteRT-LM README, "Supported Models and Performance": 1024 tokens prefill, 256 decode,
    # performance lock on Android; sizes from the README's model table (4-bit per-channel).
    dict(model="Gemma 3n E2B", runtime="LiteRT-LM", device="Samsung S24 Ultra", backend="CPU",
         scheme="4-bit per-channel", context=4096, prefill=110.5, decode=16.1, size_mb=2965, rss_mb=None,
         source="litert_lm_readme", url=LITERT_LM_README),
    dict(model="Gemma 3n E2B", runtime="LiteRT-LM", device="Samsung S24 Ultra", backend="GPU",
         scheme="4-bit per-channel", context=4096, prefill=816.4, decode=15.6, size_mb=2965, rss_mb=None,
         source="litert_lm_readme", url=LITERT_LM_README),
    dict(model="Gemma 3n E4B", runtime="LiteRT-LM", device="Samsung S24 Ultra", backend="CPU",
         scheme="4-bit per-channel", context=4096, prefill=73.5, decode=9.2, size_mb=4235, rss_mb=None,
         source="litert_lm_readme", url=LITERT_LM_README),
    dict(model="Gemma 3n E4B", runtime="LiteRT-LM", device="Samsung S24 Ultra", backend="GPU",
         scheme="4-bit per-channel", context=4096, prefill=548.0, decode=9.4, size_mb=4235, rss_mb=None,
         source="litert_lm_readme", url=LITERT_LM_README),
    dict(model="Gemma 3 1B", runtime="LiteRT-LM", device="Samsung S24 Ultra", backend="CPU",
         scheme="4-bit per-channel", context=4096, prefill=243.24, decode=43.56, size_mb=557, rss_mb=None,
         source="litert_lm_readme", url=LITERT_LM_README),
    # Llama 3.2 1B Instruct model card, "Inference time": ExecuTorch, Arm CPU, OnePlus 12,
    # prompt length 64; size is the .pte file.
    dict(model="Llama 3.2 1B", runtime="ExecuTorch", device="OnePlus 12", backend="CPU",
         scheme="BF16 (baseline)", context=None, prefill=60.3, decode=19.2, size_mb=2358, rss_mb=3185,
         source="llama32_1b_card", url=LLAMA32_CARD),
    dict(model="Llama 3.2 1B", runtime="ExecuTorch", device="OnePlus 12", backend="CPU",
         scheme="SpinQuant (int4 weights, int8 activations)", context=None, prefill=260.5, decode=50.2,
         size_mb=1083, rss_mb=1921, source="llama32_1b_card", url=LLAMA32_CARD),
    dict(model="Llama 3.2 1B", runtime="ExecuTorch", device="OnePlus 12", backend="CPU",
         scheme="QLoRA (QAT + LoRA, int4 weights)", context=None, prefill=252.0, decode=45.8,
         size_mb=1127, rss_mb=2255, source="llama32_1b_card", url=LLAMA32_CARD),
)
"""Published on-device prefill and decode rates (tokens/s), file sizes and peak RSS (MB, as
the sources print them), each with its bibliography key and URL. Quoted, not measured here;
an empty field (``None``) is one the source does not give."""


def published_rows(*, model=None, backend=None) -> list:
    """Rows of :data:`PUBLISHED`, filtered by model and backend, each with its implied
    bandwidth ``size x decode`` in GB/s (decimal: 1e9 bytes/s, sizes read as 1e6 bytes).

    Raises:
        ValueError: for a model or backend that no row has.
    """
    rows = [dict(r) for r in PUBLISHED]
    if model is not None:
        if model not in {r["model"] for r in rows}:
            raise ValueError(f"no published row for model {model!r}; have {sorted({r['model'] for r in rows})}")
        rows = [r for r in rows if r["model"] == model]
    if backend is not None:
        if backend not in {r["backend"] for r in rows}:
            raise ValueError(f"no published row for backend {backend!r}")
        rows = [r for r in rows if r["backend"] == backend]
    for r in rows:
        r["implied_gbs"] = implied_bandwidth(r["size_mb"] * 1e6, r["decode"]) / 1e9
    return rows
