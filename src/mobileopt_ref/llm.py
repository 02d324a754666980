"""A small GPT with a KV cache, exported for LiteRT and LiteRT-LM.

The book's large-model chapter needs a language model that a reader can train, export,
quantize and run on two CPU cores. This module builds one: a byte-level, decoder-only
transformer (GPT-2's pre-LayerNorm block) written with tf-keras layers inside a
``tf.Module`` whose attention reads and writes an explicit key/value cache, so that the
same weights export to a ``.tflite`` with the two signatures LiteRT-LM runs.

API summary:

- Tokenizer: :class:`ByteTokenizer` (ids 0-255 are the bytes of UTF-8 text, then
  :data:`BOS` and :data:`EOS`; :data:`VOCAB_SIZE` ids in all), ``encode``/``decode`` and
  ``hf_tokenizer_json()`` (the same tokenizer as a Hugging Face ``tokenizer.json`` for a
  LiteRT-LM bundle).
- Model: :class:`GPTConfig` (layers, ``d_model``, heads, ``context`` = the KV cache length
  ``T``, ``prefill_len`` = the prefill signature's ``S``, MLP ratio), :class:`GPT`
  (``GPT(config, seed)``; ``logits(tokens)`` is the causal forward pass used in training,
  ``step(tokens, input_pos, caches)`` the cached one used by the export;
  ``get_weights``/``set_weights``; ``count_params()``).
- Export: :func:`export_tflite` (``.tflite`` bytes with signatures ``prefill`` and
  ``decode`` sharing their weights; ``embedding="gather"`` exports the token table as a
  ``GATHER``, the form LiteRT Quantizer leaves float), :data:`PREFILL_SIGNATURE`,
  :data:`DECODE_SIGNATURE`, :func:`cache_names`, :func:`signature_shapes`.
- Running through ``ai_edge_litert``: :class:`TFLiteLM` (``prefill(ids)`` -> logits of
  every id, ``decode(id)`` -> next-byte logits, ``reset()``, ``generate(ids, n)``),
  :func:`generate` (greedy text from a prompt), :func:`decode_matches_prefill` (decoding
  token by token against one prefill call: largest logit difference and top-1 agreement).
- Data and training: :func:`corpus_text` / :func:`corpus_bytes` (``pydoc_data.topics``,
  shipped with CPython), :func:`split_corpus` (fixed held-out tail),
  :class:`LMTrainConfig` (model shape, steps, batch, learning rate, seeds, threads; its
  ``key()`` names the cache entry), :data:`GPT_SMALL` (the book's trained model),
  :func:`train`, :func:`load_or_train` (the book's verified cache, as
  :func:`mobileopt_ref.models.load_or_make`), :func:`load_cached`.
- Quality: :func:`evaluate` (bits per byte and next-byte predictions of a :class:`GPT` or
  of any exported ``.tflite``), :func:`top1_agreement`.
- Quantization: :data:`SCHEMES` (LiteRT Quantizer recipes: dynamic int8, weight-only
  int8, int4 channelwise, int4 blockwise 32/64/128, Hadamard int4, int2 blockwise, int4
  block 32 with int8 tables),
  :func:`quantize`, :func:`quantization_sweep` (size, bits per byte, top-1 agreement with
  float, a greedy sample, per scheme; falls back to built-in kernels where XNNPACK
  refuses a file), :data:`LAYER_GROUPS` and :func:`quantization_sensitivity` (what
  quantizing each group of layers alone costs), :func:`quantized_weights`, :func:`bits_difference`,
  :func:`fake_quantized` and :func:`grid_weights` (the weights' block-wise grid alone, run in
  float).
- LiteRT-LM: :func:`build_bundle` (a ``.litertlm`` with the model, the tokenizer and
  :func:`bundle_metadata`), :class:`LiteRTLM` (the engine: ``generate``, ``tokenize``),
  :func:`litert_lm_benchmark` (LiteRT-LM's own prefill/decode tokens per second),
  :func:`interpreter_benchmark` (the same work in the interpreter).
- Speed model: :data:`GPT_WIDE` and :func:`build_wide` (an untrained 57 M-parameter
  model whose weights do not fit in the CPU caches).

The signature convention is LiteRT-LM's (the engine behind Gemma on Android): inputs
``tokens`` ``[1, S]`` int32, ``input_pos`` ``[S]`` int32 (the positions of those tokens)
and, for every layer ``i``, ``kv_cache_k_i`` and ``kv_cache_v_i`` ``[1, heads, T,
head_dim]`` float32; outputs ``logits`` ``[1, S, vocab]`` and the updated caches under the
same names. ``prefill`` takes ``S = prefill_len`` tokens, ``decode`` one. The new keys and
values are written into the cache with ``DYNAMIC_UPDATE_SLICE`` at ``input_pos[0]``;
each query at position ``p`` attends to cache slots ``0..p``, so slots past the current
position may hold anything.

The attention of head ``h`` for a query at position ``p`` is
``softmax(q k_j^T / sqrt(head_dim) + m_j) v_j`` over cache slots ``j``, with
``m_j = 0`` for ``j <= p`` and ``-1e9`` otherwise.

Explained in notebooks/08_large_models.ipynb.

Example:
    >>> from mobileopt_ref import llm
    >>> model = llm.GPT(llm.GPTConfig(n_layers=2, d_model=64, n_heads=2, context=64, prefill_len=16))
    >>> tflite = llm.export_tflite(model)  # doctest: +SKIP
    >>> llm.generate(tflite, "The ", 20)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mobileopt_ref import env, litert, models, quantization
from mobileopt_ref._keras import keras, tf
from mobileopt_ref._quiet import native_stderr_captured

BOS = 256
"""Id of the beginning-of-sequence token (every training window starts with it)."""
EOS = 257
"""Id of the end-of-sequence token (a stop token for LiteRT-LM; never trained on)."""
VOCAB_SIZE = 258
"""The 256 byte values plus :data:`BOS` and :data:`EOS`."""

PREFILL_SIGNATURE = "prefill"
"""Signature key of the exported model's prefill (``S`` tokens at once), as LiteRT-LM names it."""
DECODE_SIGNATURE = "decode"
"""Signature key of the exported model's decode (one token), as LiteRT-LM names it."""

EMBEDDINGS = ("one_hot", "gather")
"""How :func:`export_tflite` writes the token embedding: ``"one_hot"`` (a one-hot row
times the table, which the converter turns into ``EMBEDDING_LOOKUP``, an op LiteRT
Quantizer quantizes) or ``"gather"`` (``tf.gather``, converted to ``GATHER``, which it
leaves float)."""

_MASKED = -1e9


def _bytes_to_unicode() -> dict:
    """GPT-2's reversible map from the 256 byte values to printable characters.

    Hugging Face's ``ByteLevel`` pre-tokenizer writes every byte as one of these
    characters, so a ``tokenizer.json`` whose vocabulary lists them in byte order maps
    each byte to its own value as id.
    """
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


class ByteTokenizer:
    """Bytes as tokens: the id of a byte is its value; :data:`BOS` and :data:`EOS` follow.

    A byte-level vocabulary needs no training and no file, never meets an unknown
    token, and makes bits per token equal bits per byte, so a model's loss reads
    directly as a compression rate of the text.

    Example:
        >>> tok = ByteTokenizer()
        >>> tok.encode("hé")
        array([104, 195, 169], dtype=int32)
        >>> tok.decode([104, 195, 169])
        'hé'
    """

    vocab_size = VOCAB_SIZE
    bos = BOS
    eos = EOS

    def encode(self, text: str, *, bos: bool = False) -> np.ndarray:
        """Returns the UTF-8 bytes of ``text`` as int32 ids, after :data:`BOS` if asked.

        Raises:
            ValueError: if ``text`` is not a ``str``.
        """
        if not isinstance(text, str):
            raise ValueError(f"encode takes a str, got {type(text).__name__}")
        ids = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)
        return np.concatenate([[BOS], ids]).astype(np.int32) if bos else ids

    def decode(self, ids) -> str:
        """Returns the text of ``ids``; special ids are dropped, broken UTF-8 shows as U+FFFD.

        Raises:
            ValueError: for ids outside ``[0, VOCAB_SIZE)``.
        """
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= VOCAB_SIZE):
            raise ValueError(f"token ids must lie in [0, {VOCAB_SIZE}), got {ids.min()}..{ids.max()}")
        return bytes(int(i) for i in ids if i < 256).decode("utf-8", errors="replace")

    def hf_tokenizer_json(self) -> str:
        """The tokenizer as a Hugging Face ``tokenizer.json`` (for LiteRT-LM bundles).

        A BPE model with no merges over GPT-2's byte-to-character map: every byte is one
        token whose id is the byte's value; ``<bos>`` and ``<eos>`` are special tokens
        :data:`BOS` and :data:`EOS`.
        """
        table = _bytes_to_unicode()
        vocab = {table[b]: b for b in range(256)}
        vocab["<bos>"], vocab["<eos>"] = BOS, EOS
        special = [
            {"id": i, "content": text, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for i, text in ((BOS, "<bos>"), (EOS, "<eos>"))
        ]
        spec = {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": special,
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                              "use_regex": False},
            "post_processor": None,
            "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": False, "vocab": vocab, "merges": []},
        }
        return json.dumps(spec, ensure_ascii=False)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    """The shape of a :class:`GPT`.

    Attributes:
        n_layers: transformer blocks.
        d_model: width of the residual stream.
        n_heads: attention heads; must divide ``d_model`` (``head_dim = d_model / n_heads``).
        context: the longest sequence, and the KV cache length ``T`` of the export.
        prefill_len: tokens the ``prefill`` signature takes at once (``S``), at most ``context``.
        mlp_ratio: width of each block's MLP as a multiple of ``d_model``.
        vocab_size: ids of the tokenizer, :data:`VOCAB_SIZE`.

    Raises:
        ValueError: for non-positive sizes, heads that do not divide ``d_model``, a
            prefill longer than the context, or another vocabulary size.
    """

    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 4
    context: int = 256
    prefill_len: int = 64
    mlp_ratio: int = 4
    vocab_size: int = VOCAB_SIZE

    def __post_init__(self):
        for field in ("n_layers", "d_model", "n_heads", "context", "prefill_len", "mlp_ratio"):
            _positive_int(field, getattr(self, field))
        if self.d_model % self.n_heads:
            raise ValueError(
                f"n_heads must divide d_model (each head gets d_model / n_heads channels), got d_model "
                f"{self.d_model} and n_heads {self.n_heads}"
            )
        if self.prefill_len > self.context:
            raise ValueError(
                f"prefill_len ({self.prefill_len}) must not exceed context ({self.context}): the prefill "
                "signature writes its tokens into the KV cache of context slots"
            )
        if self.vocab_size != VOCAB_SIZE:
            raise ValueError(f"vocab_size must be {VOCAB_SIZE} (bytes, BOS and EOS), got {self.vocab_size!r}")

    @property
    def head_dim(self) -> int:
        """Channels per head, ``d_model / n_heads``."""
        return self.d_model // self.n_heads

    def n_params(self) -> int:
        """Parameter count: embeddings, per block ``12 d^2 + 13 d`` (with ``mlp_ratio`` 4), head.

        Token table ``V d``, positions ``T d``; each block has two LayerNorms (``4 d``),
        q, k, v and output projections (``4 d^2 + 4 d``) and the MLP
        (``2 r d^2 + r d + d``); a final LayerNorm (``2 d``) and the output layer
        (``d V + V``).
        """
        d, r, v, t = self.d_model, self.mlp_ratio, self.vocab_size, self.context
        block = 4 * d + 4 * d * d + 4 * d + 2 * r * d * d + r * d + d
        return v * d + t * d + self.n_layers * block + 2 * d + d * v + v


class _Table(keras.layers.Layer):
    """A ``[rows, dim]`` table read by one-hot rows (or by ``tf.gather``)."""

    def __init__(self, rows: int, dim: int, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.rows, self.dim, self.seed = rows, dim, seed

    def build(self, input_shape=None):
        self.table = self.add_weight(
            "table", shape=(self.rows, self.dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02, seed=self.seed),
        )
        super().build(input_shape)

    def call(self, ids, gather: bool = False):
        if gather:
            return tf.gather(self.table, ids)
        return tf.matmul(tf.one_hot(ids, self.rows, dtype=self.table.dtype), self.table)


def _dense(units: int, seed: int, fan_in: int, name: str, std: float = 0.02):
    layer = keras.layers.Dense(
        units, name=name, kernel_initializer=keras.initializers.RandomNormal(stddev=std, seed=seed),
        bias_initializer="zeros",
    )
    layer.build((None, fan_in))
    return layer


class GPT(tf.Module):
    """A decoder-only transformer over bytes, with a KV-cached step for export.

    Token and learned position embeddings are added; each of ``n_layers`` blocks computes
    ``x += W_o attn(LN(x))`` and ``x += W_2 gelu(W_1 LN(x))`` (pre-LayerNorm, GELU with
    the tanh approximation); a final LayerNorm and a dense layer give the logits. Weights
    start from ``N(0, 0.02^2)`` (the residual projections from ``N(0, (0.02 /
    sqrt(2 n_layers))^2)``, as in GPT-2), biases from zero; each initializer has its own
    seed derived from ``seed``, so a model is reproducible without global random state.

    Args:
        config: the shape.
        seed: initialisation seed (an integer).
    """

    def __init__(self, config: GPTConfig, seed: int = 0):
        super().__init__(name="gpt")
        if not isinstance(config, GPTConfig):
            raise ValueError(f"config must be a GPTConfig, got {type(config).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.config = config
        c, seed = config, int(seed) * 1000
        d, hidden = c.d_model, c.mlp_ratio * c.d_model
        residual_std = 0.02 / math.sqrt(2 * c.n_layers)
        self.tokens = _Table(c.vocab_size, d, seed + 1, name="token_embedding")
        self.positions = _Table(c.context, d, seed + 2, name="position_embedding")
        self.tokens.build()
        self.positions.build()
        self.blocks = []
        for i in range(c.n_layers):
            s = seed + 10 * (i + 1)
            block = {
                "ln1": keras.layers.LayerNormalization(epsilon=1e-5, name=f"ln1_{i}"),
                "q": _dense(d, s + 1, d, f"q_{i}"),
                "k": _dense(d, s + 2, d, f"k_{i}"),
                "v": _dense(d, s + 3, d, f"v_{i}"),
                "o": _dense(d, s + 4, d, f"o_{i}", residual_std),
                "ln2": keras.layers.LayerNormalization(epsilon=1e-5, name=f"ln2_{i}"),
                "up": _dense(hidden, s + 5, d, f"up_{i}"),
                "down": _dense(d, s + 6, hidden, f"down_{i}", residual_std),
            }
            block["ln1"].build((None, None, d))
            block["ln2"].build((None, None, d))
            self.blocks.append(block)
        self.ln_f = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_f")
        self.ln_f.build((None, None, d))
        self.head = _dense(c.vocab_size, seed + 3, d, "head")
        order = [self.tokens, self.positions]
        for block in self.blocks:
            order += [block[k] for k in ("ln1", "q", "k", "v", "o", "ln2", "up", "down")]
        order += [self.ln_f, self.head]
        self._ordered = [w for layer in order for w in layer.weights]

    @property
    def weights(self) -> list:
        """The variables in a fixed order (the order of :meth:`get_weights`)."""
        return list(self._ordered)

    def get_weights(self) -> list:
        """Returns the weights as numpy arrays, in :attr:`weights` order."""
        return [w.numpy() for w in self._ordered]

    def set_weights(self, weights) -> None:
        """Sets the weights from arrays in :attr:`weights` order.

        Raises:
            ValueError: if the count or a shape does not match.
        """
        weights = list(weights)
        if len(weights) != len(self._ordered):
            raise ValueError(f"expected {len(self._ordered)} weight arrays, got {len(weights)}")
        for var, value in zip(self._ordered, weights):
            if tuple(var.shape) != tuple(np.shape(value)):
                raise ValueError(f"weight {var.name} has shape {tuple(var.shape)}, got {np.shape(value)}")
        for var, value in zip(self._ordered, weights):
            var.assign(value)

    def count_params(self) -> int:
        """Number of parameters (equals ``config.n_params()``)."""
        return int(sum(np.prod(w.shape) for w in self._ordered))

    def _split(self, x):
        b, n = tf.shape(x)[0], tf.shape(x)[1]
        x = tf.reshape(x, [b, n, self.config.n_heads, self.config.head_dim])
        return tf.transpose(x, [0, 2, 1, 3])  # [B, H, n, hd]

    def _attend(self, q, k, v, query_pos, key_count):
        """``softmax(q k^T / sqrt(hd) + mask) v`` with key ``j`` visible to a query at ``p`` iff ``j <= p``."""
        scores = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(self.config.head_dim))
        visible = tf.range(key_count)[None, :] <= query_pos[:, None]  # [n, keys]
        scores += (1.0 - tf.cast(visible, scores.dtype)) * _MASKED
        return tf.matmul(tf.nn.softmax(scores, axis=-1), v)

    def _run(self, tokens, positions, caches=None, gather: bool = False):
        """The forward pass; with ``caches`` (``[(k, v)]`` per layer) the cached step."""
        c = self.config
        x = self.tokens(tokens, gather=gather) + self.positions(positions, gather=gather)[None]
        new_caches = []
        for i, block in enumerate(self.blocks):
            h = block["ln1"](x)
            q, k, v = (self._split(block[name](h)) for name in ("q", "k", "v"))
            if caches is None:
                keys, values, count = k, v, tf.shape(tokens)[1]
            else:
                start = tf.stack([0, 0, positions[0], 0])
                keys = _dynamic_update_slice(caches[i][0], k, start)
                values = _dynamic_update_slice(caches[i][1], v, start)
                new_caches.append((keys, values))
                count = c.context
            a = self._attend(q, keys, values, positions, count)
            a = tf.reshape(tf.transpose(a, [0, 2, 1, 3]), [tf.shape(x)[0], tf.shape(x)[1], c.d_model])
            x = x + block["o"](a)
            x = x + block["down"](tf.nn.gelu(block["up"](block["ln2"](x)), approximate=True))
        logits = self.head(self.ln_f(x))
        return logits, new_caches

    def logits(self, tokens):
        """Causal forward pass over whole sequences (training and evaluation).

        Args:
            tokens: int32 ``[batch, n]`` ids, ``n <= context``; token ``t`` sits at position ``t``.

        Returns:
            float32 ``[batch, n, vocab]`` logits; row ``t`` predicts token ``t + 1``.
        """
        tokens = tf.convert_to_tensor(tokens, tf.int32)
        return self._run(tokens, tf.range(tf.shape(tokens)[1]))[0]

    def step(self, tokens, input_pos, caches, gather: bool = False):
        """The cached forward pass the export runs (batch 1).

        Args:
            tokens: int32 ``[1, S]``.
            input_pos: int32 ``[S]``, consecutive positions starting at ``input_pos[0]``,
                with ``input_pos[0] + S <= context``.
            caches: per layer ``(k, v)``, each float32 ``[1, heads, context, head_dim]``.
            gather: read the embeddings with ``tf.gather`` instead of one-hot rows.

        Returns:
            ``(logits [1, S, vocab], new caches)``: the caches with slots
            ``input_pos[0] .. input_pos[0] + S - 1`` replaced.
        """
        return self._run(tokens, input_pos, caches, gather)


def _dynamic_update_slice(operand, update, start):
    """``operand`` with ``update`` written at ``start`` (converts to ``DYNAMIC_UPDATE_SLICE``)."""
    from tensorflow.compiler.tf2xla.python import xla  # noqa: PLC0415

    return xla.dynamic_update_slice(operand, update, start)


def cache_names(n_layers: int) -> list:
    """The cache input/output names, ``kv_cache_k_0, kv_cache_v_0, kv_cache_k_1, ...``."""
    return [f"kv_cache_{kind}_{i}" for i in range(_positive_int("n_layers", n_layers)) for kind in ("k", "v")]


def signature_shapes(config: GPTConfig, signature: str) -> dict:
    """Input shapes of a signature in LiteRT-LM's convention.

    Returns:
        ``{"tokens": (1, S), "input_pos": (S,), "kv_cache_k_0": (1, heads, T, head_dim), ...}``
        with ``S = prefill_len`` for :data:`PREFILL_SIGNATURE` and 1 for :data:`DECODE_SIGNATURE`.

    Raises:
        ValueError: for another signature name.
    """
    if signature not in (PREFILL_SIGNATURE, DECODE_SIGNATURE):
        raise ValueError(f"signature must be {PREFILL_SIGNATURE!r} or {DECODE_SIGNATURE!r}, got {signature!r}")
    s = config.prefill_len if signature == PREFILL_SIGNATURE else 1
    cache = (1, config.n_heads, config.context, config.head_dim)
    return {"tokens": (1, s), "input_pos": (s,), **{name: cache for name in cache_names(config.n_layers)}}


def export_tflite(model: GPT, *, embedding: str = "one_hot") -> bytes:
    """Converts a :class:`GPT` to a float32 ``.tflite`` with ``prefill`` and ``decode``.

    The two signatures are two subgraphs of one file sharing the weight buffers (the
    converter stores each constant once). Shapes follow :func:`signature_shapes`; the
    outputs are ``logits`` ``[1, S, vocab]`` and the updated caches.

    Args:
        model: the model.
        embedding: one of :data:`EMBEDDINGS`.

    Returns:
        The ``.tflite`` content.

    Raises:
        ValueError: for a model that is not a :class:`GPT` or an unknown embedding form.
    """
    if not isinstance(model, GPT):
        raise ValueError(f"export_tflite takes a llm.GPT, got {type(model).__name__}")
    if embedding not in EMBEDDINGS:
        raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}")
    config, gather = model.config, embedding == "gather"
    names = cache_names(config.n_layers)

    def concrete(signature: str):
        def run(**inputs):
            caches = [(inputs[names[2 * i]], inputs[names[2 * i + 1]]) for i in range(config.n_layers)]
            logits, new = model.step(inputs["tokens"], inputs["input_pos"], caches, gather=gather)
            out = {"logits": logits}
            for i, (k, v) in enumerate(new):
                out[names[2 * i]], out[names[2 * i + 1]] = k, v
            return out

        specs = {name: tf.TensorSpec(shape, tf.int32 if name in ("tokens", "input_pos") else tf.float32, name=name)
                 for name, shape in signature_shapes(config, signature).items()}
        return tf.function(run).get_concrete_function(**specs)

    with tempfile.TemporaryDirectory() as folder, native_stderr_captured():
        signatures = {key: concrete(key) for key in (PREFILL_SIGNATURE, DECODE_SIGNATURE)}
        tf.saved_model.save(model, folder, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=list(signatures))
        return bytes(converter.convert())


class TFLiteLM:
    """Runs an exported model through ``ai_edge_litert``: prefill, then decode.

    Holds the KV caches between calls (they go in and come out of every invoke, as
    numpy arrays) and the next position. Prompts longer than ``S`` are prefilled ``S``
    tokens at a time; the last, shorter chunk is padded (the padding's cache slots lie
    past the last real position, so nothing attends to them before decode overwrites
    them); tokens that would make a chunk run past the cache are decoded one by one.

    Args:
        model: ``.tflite`` bytes or path with :data:`PREFILL_SIGNATURE` and :data:`DECODE_SIGNATURE`.
        num_threads: interpreter threads.
        kernels: one of :data:`mobileopt_ref.litert.KERNELS`.

    Raises:
        ValueError: for a model without the two signatures or whose inputs do not follow
            LiteRT-LM's names.
    """

    def __init__(self, model, *, num_threads: int = 2, kernels: str = "xnnpack"):
        content = litert.read_tflite(model)
        keys = litert.signatures(content)
        missing = [k for k in (PREFILL_SIGNATURE, DECODE_SIGNATURE) if k not in keys]
        if missing:
            raise ValueError(f"the model has no signature {missing[0]!r}; it has {sorted(keys) or 'none'} "
                             "(export one with llm.export_tflite)")
        self.interpreter = litert.make_interpreter(content, num_threads=num_threads, kernels=kernels)
        self.num_threads = num_threads
        self._prefill = self.interpreter.get_signature_runner(PREFILL_SIGNATURE)
        self._decode = self.interpreter.get_signature_runner(DECODE_SIGNATURE)
        inputs = self._prefill.get_input_details()
        if "tokens" not in inputs or "input_pos" not in inputs:
            raise ValueError(f"the prefill signature needs inputs 'tokens' and 'input_pos', got {sorted(inputs)}")
        self.prefill_len = int(inputs["tokens"]["shape"][1])
        self.names = sorted((n for n in inputs if n.startswith("kv_cache_")), key=lambda n: (int(n.rsplit("_", 1)[1]), n))
        if not self.names:
            raise ValueError("the prefill signature has no kv_cache_k_i / kv_cache_v_i inputs")
        self.cache_shape = tuple(int(d) for d in inputs[self.names[0]]["shape"])
        self.context = self.cache_shape[2]
        self.reset()

    def reset(self) -> None:
        """Empties the caches (zeros) and returns to position 0."""
        self.caches = {n: np.zeros(self.cache_shape, np.float32) for n in self.names}
        self.position = 0

    def _run(self, runner, tokens: np.ndarray, start: int) -> np.ndarray:
        n = tokens.shape[1]
        out = runner(tokens=tokens.astype(np.int32), input_pos=np.arange(start, start + n, dtype=np.int32),
                     **self.caches)
        self.caches = {name: out[name] for name in self.names}
        return out["logits"][0]

    def _check_ids(self, ids) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or (ids.size and (ids.min() < 0 or ids.max() >= VOCAB_SIZE)):
            raise ValueError(f"token ids must be a 1-D integer array of values in [0, {VOCAB_SIZE}), "
                             f"got {ids.dtype} {ids.shape}")
        if self.position + len(ids) > self.context:
            raise ValueError(f"{len(ids)} tokens at position {self.position} exceed the KV cache of {self.context} "
                             "slots; reset() first or use a shorter input")
        return ids.astype(np.int32)

    def prefill(self, ids) -> np.ndarray:
        """Feeds ``ids`` at the current position; returns their logits ``[len(ids), vocab]``."""
        ids = self._check_ids(ids)
        out, done, s = [], 0, self.prefill_len
        while done < len(ids):
            start = self.position
            if start + s <= self.context:
                chunk = ids[done: done + s]
                padded = np.zeros((1, s), np.int32)
                padded[0, : len(chunk)] = chunk
                out.append(self._run(self._prefill, padded, start)[: len(chunk)])
                taken = len(chunk)
            else:
                out.append(self._run(self._decode, ids[done: done + 1][None], start))
                taken = 1
            done += taken
            self.position += taken
        return np.concatenate(out) if out else np.zeros((0, VOCAB_SIZE), np.float32)

    def decode(self, token: int) -> np.ndarray:
        """Feeds one token at the current position; returns its logits ``[vocab]``."""
        ids = self._check_ids([int(token)])
        logits = self._run(self._decode, ids[None], self.position)[0]
        self.position += 1
        return logits

    def generate(self, ids, max_new_tokens: int, *, stop: int | None = EOS) -> np.ndarray:
        """Greedy continuation of ``ids`` (the cache is reset first).

        Returns:
            The new ids (at most ``max_new_tokens``, fewer at ``stop`` or a full cache).
        """
        max_new_tokens = _positive_int("max_new_tokens", max_new_tokens)
        self.reset()
        logits = self.prefill(ids)[-1]
        new = []
        while len(new) < max_new_tokens:
            token = int(np.argmax(logits))
            if token == stop:
                break
            new.append(token)
            if self.position >= self.context or len(new) == max_new_tokens:
                break
            logits = self.decode(token)
        return np.asarray(new, np.int32)


def generate(model, prompt: str, max_new_tokens: int, *, num_threads: int = 2, kernels: str = "xnnpack") -> str:
    """Greedy text from ``prompt`` (after :data:`BOS`) through LiteRT.

    Args:
        model: exported ``.tflite`` bytes or path.
        prompt: the text to continue.
        max_new_tokens: bytes to generate at most (the cache may end first).
        num_threads: interpreter threads.
        kernels: interpreter kernel set (:data:`mobileopt_ref.litert.KERNELS`).

    Returns:
        The generated text (without the prompt).
    """
    tok = ByteTokenizer()
    runner = TFLiteLM(model, num_threads=num_threads, kernels=kernels)
    return tok.decode(runner.generate(tok.encode(prompt, bos=True), max_new_tokens))


def decode_matches_prefill(model, ids, *, num_threads: int = 2, kernels: str = "xnnpack") -> dict:
    """Runs ``ids`` once through ``prefill`` and once token by token through ``decode``.

    Both start from an empty cache; the prefill call takes exactly ``S`` ids (the
    signature's length, no padding).

    Args:
        model: exported ``.tflite`` bytes or path.
        ids: ``S`` token ids.
        num_threads, kernels: as :class:`TFLiteLM`.

    Returns:
        A dict with ``max_abs_diff`` (the largest absolute difference between a prefill and
        a decode logit), ``max_abs_logit`` (the largest absolute logit, for scale),
        ``top1_agreement`` (the fraction of positions whose arg-max agrees) and
        ``positions`` (``S``).

    Raises:
        ValueError: if ``ids`` is not ``S`` valid ids.
    """
    runner = TFLiteLM(model, num_threads=num_threads, kernels=kernels)
    ids = np.asarray(ids)
    if ids.shape != (runner.prefill_len,):
        raise ValueError(f"ids must be {runner.prefill_len} token ids (the prefill length), got shape {ids.shape}")
    prefill = runner.prefill(ids)
    runner.reset()
    decode = np.stack([runner.decode(int(t)) for t in ids])
    return {
        "max_abs_diff": float(np.max(np.abs(prefill - decode))),
        "max_abs_logit": float(np.max(np.abs(prefill))),
        "top1_agreement": float(np.mean(prefill.argmax(-1) == decode.argmax(-1))),
        "positions": int(len(ids)),
    }


RECIPE_VERSION = 1
"""Bumped whenever the training code changes what a :class:`LMTrainConfig` produces."""


def corpus_text() -> str:
    """The training text: every entry of ``pydoc_data.topics`` (ships with CPython).

    The help topics of Python's own documentation (about 466 KB of English prose and
    code in CPython 3.11), joined in sorted topic order with blank lines. It is
    available offline wherever Python is; its exact content depends on the Python
    version, so records carry its SHA-256.
    """
    from pydoc_data import topics  # noqa: PLC0415

    return "\n\n".join(topics.topics[key] for key in sorted(topics.topics))


def corpus_bytes() -> np.ndarray:
    """:func:`corpus_text` as ``uint8`` UTF-8 bytes."""
    return np.frombuffer(corpus_text().encode("utf-8"), dtype=np.uint8).copy()


def split_corpus(data: np.ndarray, holdout_fraction: float = 0.1) -> tuple:
    """Splits bytes into ``(train, held_out)``: the held-out part is the last fraction.

    A contiguous tail, not random windows, so no held-out byte ever sits in a training
    window (the topics near the end of the alphabet are the held-out text).

    Raises:
        ValueError: for a fraction outside ``(0, 0.5]``.
    """
    if not 0.0 < holdout_fraction <= 0.5:
        raise ValueError(f"holdout_fraction must be in (0, 0.5], got {holdout_fraction!r}")
    data = np.asarray(data, dtype=np.uint8)
    cut = len(data) - int(round(len(data) * holdout_fraction))
    return data[:cut], data[cut:]


@dataclasses.dataclass(frozen=True)
class LMTrainConfig:
    """Everything that determines a trained :class:`GPT`, and so its cache key.

    Attributes:
        model: the model's shape.
        steps: optimizer steps (a count, not a time limit, so training is reproducible).
        batch_size: windows per step; each window is :data:`BOS` then ``context - 1``
            bytes from a random offset of the training split.
        learning_rate: peak Adam learning rate, reached by a linear warm-up, then
            cosine-decayed to ``min_lr_fraction`` of it.
        warmup_steps: steps of linear warm-up.
        min_lr_fraction: final learning rate as a fraction of the peak.
        clip_norm: global gradient-norm clip.
        holdout_fraction: tail of the corpus kept out of training (see :func:`split_corpus`).
        seed: initialisation seed.
        data_seed: seed of the window offsets.
        threads: TensorFlow threads; weights are bit-identical only for equal counts.
        name: a label for people; not part of the key.
    """

    model: GPTConfig = GPTConfig()
    steps: int = 800
    batch_size: int = 16
    learning_rate: float = 3e-3
    warmup_steps: int = 30
    min_lr_fraction: float = 0.1
    clip_norm: float = 1.0
    holdout_fraction: float = 0.1
    seed: int = 0
    data_seed: int = 0
    threads: int = 1
    name: str = "gpt"

    def __post_init__(self):
        if not isinstance(self.model, GPTConfig):
            raise ValueError(f"model must be a GPTConfig, got {type(self.model).__name__}")
        for field in ("steps", "batch_size", "threads"):
            _positive_int(field, getattr(self, field))
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) \
                or not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"warmup_steps must be an integer in [0, steps), got {self.warmup_steps!r}")
        if not self.learning_rate > 0 or not self.clip_norm > 0:
            raise ValueError(f"learning_rate and clip_norm must be positive, got {self.learning_rate}, {self.clip_norm}")
        if not 0 <= self.min_lr_fraction <= 1:
            raise ValueError(f"min_lr_fraction must be in [0, 1], got {self.min_lr_fraction}")
        if not 0.0 < self.holdout_fraction <= 0.5:
            raise ValueError(f"holdout_fraction must be in (0, 0.5], got {self.holdout_fraction!r}")

    def to_dict(self) -> dict:
        """The config as plain JSON values (the model's shape nested under ``"model"``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: dict) -> "LMTrainConfig":
        """The inverse of :meth:`to_dict`."""
        fields = dict(fields)
        return cls(model=GPTConfig(**fields.pop("model")), **fields)

    def key(self) -> str:
        """Returns the cache key: SHA-256 of the canonical JSON of the config."""
        fields = self.to_dict()
        fields.pop("name")
        fields["recipe_version"] = RECIPE_VERSION
        blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def entry_name(self) -> str:
        """Returns the cache directory name: ``<name>-<first 16 hex digits of key>``."""
        return f"{self.name}-{self.key()[:16]}"


GPT_SMALL = LMTrainConfig()
"""The book's small GPT, with 4 layers, d 128, 4 heads and context 256 (0.89 M parameters), trained on one thread.

800 steps of 16 windows of 256 bytes: 3.3 M bytes, about 7.8 passes over the 420 KB
training split. The shipped entry reached 2.31 bits per byte on the held-out tail (its
record holds the loss history and the training time: 31 minutes on one thread of a 2-core
AMD EPYC shared with other jobs; about 1 s a step, so some 13 minutes, when the thread had
a core to itself). The same recipe stopped at 400 steps left the model on the plateau
where a byte-level transformer learns little more than which byte follows which (3.04
bits per byte held out, greedy text repeating one word); in this run the training loss
fell from 3.3 to 2.4 bits per byte between steps 400 and 800. Longer training gives a
better model and another cache key."""


GPT_WIDE = GPTConfig(n_layers=8, d_model=768, n_heads=12, context=128, prefill_len=32)
"""The wider model for speed, never trained, with 8 layers, d 768 and 12 heads (57.2 M parameters).

Decode reads every weight once per token, so its speed shows the memory-bandwidth
bound only when the weights do not fit in the CPU's caches. The reference machine (a
2-core AMD EPYC) has a 32 MB L3: this model's float32 weights (228 MB) and int8 weights
(57 MB) exceed it, its int4 weights (about 30 MB) about fill it. A wider model would put
int4 clearly outside the cache too, but converting and quantizing it would take most
of the chapter's three minutes and several GB of memory; this one converts in about
30 s on an idle 2-core machine with 2.3 to 2.6 GB at peak (3 minutes when six jobs
shared the two cores). The context
of 128 keeps the KV cache (2 x 8 layers x 128 x 768 x 4 bytes = 6.3 MB) small beside
the weights, and a prefill of 32 tokens keeps the prefill graph small."""


def build_wide(config: GPTConfig = GPT_WIDE, seed: int = 0) -> GPT:
    """The untrained wide model for speed measurements (see :data:`GPT_WIDE`).

    Its weights are random (``N(0, 0.02^2)``): speed and memory depend on the shapes and
    the storage format, not on the values, so no training is needed. Its text is
    noise; only the trained :data:`GPT_SMALL` is judged on quality.

    Args:
        config: the shape (default :data:`GPT_WIDE`).
        seed: initialisation seed.

    Returns:
        A :class:`GPT`.
    """
    return GPT(config, seed=seed)


def _windows(data: np.ndarray, length: int) -> list:
    """Non-overlapping chunks of ``length`` bytes (the last may be shorter)."""
    return [data[i: i + length] for i in range(0, len(data), length)]


def _with_bos(chunk: np.ndarray) -> np.ndarray:
    """Model input for predicting ``chunk``: :data:`BOS` then all but its last byte."""
    return np.concatenate([[BOS], chunk[:-1]]).astype(np.int32)


def _check_bytes(data, caller: str) -> np.ndarray:
    data = np.asarray(data)
    if data.ndim != 1 or data.size < 1 or not np.issubdtype(data.dtype, np.integer) \
            or data.min() < 0 or data.max() > 255:
        raise ValueError(f"{caller} takes a non-empty 1-D array of bytes (integers 0-255), got "
                         f"{data.dtype} {data.shape}")
    return data.astype(np.uint8)


def evaluate(model, data, *, max_bytes: int | None = None, batch_size: int = 16, num_threads: int = 2,
             kernels: str = "xnnpack") -> dict:
    """Bits per byte and next-byte predictions of a model on a text.

    The text is cut into windows of ``context`` bytes; each window is predicted from
    :data:`BOS` and its own earlier bytes (the way the model was trained). Bits per byte
    is the mean of ``-log2 p(byte | earlier bytes)`` over every byte: the size a coder
    driven by the model would compress the text to (8 means no better than raw bytes).

    Args:
        model: a :class:`GPT` (run by TensorFlow), or exported ``.tflite`` bytes or path
            (run by ``ai_edge_litert`` through the prefill signature).
        data: the text as bytes (``uint8``), e.g. the held-out split.
        max_bytes: evaluate only the first ``max_bytes`` bytes.
        batch_size: windows per TensorFlow call.
        num_threads: interpreter threads for a ``.tflite``.
        kernels: interpreter kernel set for a ``.tflite`` (:data:`mobileopt_ref.litert.KERNELS`).

    Returns:
        ``{"bits_per_byte", "n_bytes", "predictions", "bits"}``: ``predictions`` is the
        arg-max next byte at every position (int32, for top-1 agreement between two
        models), ``bits`` the ``-log2 p`` of every byte (float64, for paired comparisons,
        :func:`bits_difference`).

    Raises:
        ValueError: for data that is not bytes, or a bad ``max_bytes``.
    """
    data = _check_bytes(data, "evaluate")
    if max_bytes is not None:
        data = data[: _positive_int("max_bytes", max_bytes)]
    nll, predictions = [], []
    if isinstance(model, GPT):
        chunks = _windows(data, model.config.context)
        groups = [chunks[i: i + batch_size] for i in range(0, len(chunks), batch_size)]
        for group in groups:
            for same in ([c for c in group if len(c) == len(group[0])], [c for c in group if len(c) != len(group[0])]):
                if not same:
                    continue
                x = np.stack([_with_bos(c) for c in same])
                logp = tf.nn.log_softmax(model.logits(x)).numpy()
                y = np.stack(same).astype(np.int64)
                nll.append(-np.take_along_axis(logp, y[..., None], -1)[..., 0].ravel())
                predictions.append(logp.argmax(-1).ravel())
    else:
        runner = TFLiteLM(model, num_threads=num_threads, kernels=kernels)
        for chunk in _windows(data, runner.context):
            runner.reset()
            logits = runner.prefill(_with_bos(chunk)).astype(np.float64)
            logp = logits - logits.max(-1, keepdims=True)
            logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
            nll.append(-logp[np.arange(len(chunk)), chunk.astype(np.int64)])
            predictions.append(logits.argmax(-1))
    nll = np.concatenate(nll)
    return {
        "bits_per_byte": float(nll.mean() / math.log(2)),
        "n_bytes": int(len(nll)),
        "predictions": np.concatenate(predictions).astype(np.int32),
        "bits": nll / math.log(2),
    }


def bits_difference(result_b: dict, result_a: dict, window: int, *, level: float = 0.05,
                    resamples: int = 2000) -> dict:
    """Bits per byte of B minus A on the same text, with a bootstrap interval over windows.

    Both models predicted the same bytes, window by window (:func:`evaluate` cuts the text
    into windows of ``context`` bytes, each predicted from its own start), so the
    difference is paired: ``delta`` is the mean over bytes of ``bits_b - bits_a`` (the
    difference of the two ``bits_per_byte``), and its BCa bootstrap interval resamples
    whole windows (``scipy.stats.bootstrap``, paired, seeded, so the same inputs give
    the same interval), each resample's statistic being the summed difference of its
    windows over their summed length, so a shorter last window weighs by its bytes. It
    says how much the verdict could move with another sample of text of the same kind;
    the text is fixed, so the difference itself is exact.

    Args:
        result_b, result_a: :func:`evaluate` results on the same text.
        window: the window length the evaluation used (the model's ``context``).
        level: significance level in (0, 1).
        resamples: bootstrap resamples.

    Returns:
        ``{"delta", "low", "high", "windows"}`` in bits per byte.

    Raises:
        ValueError: for results over different texts, fewer than two windows, or a bad
            ``window``.
    """
    from scipy import stats as scipy_stats  # noqa: PLC0415

    a, b = np.asarray(result_a["bits"], dtype=np.float64), np.asarray(result_b["bits"], dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"the two results cover different texts ({a.size} and {b.size} bytes)")
    window = _positive_int("window", window)
    starts = range(0, a.size, window)
    sums = np.array([np.sum(b[i: i + window] - a[i: i + window]) for i in starts])
    lengths = np.array([min(window, a.size - i) for i in starts], dtype=np.float64)
    if sums.size < 2:
        raise ValueError(f"a paired interval needs at least two windows of {window} bytes, got {a.size} bytes")

    def per_byte(s, n, axis=-1):
        return np.sum(s, axis=axis) / np.sum(n, axis=axis)

    ci = scipy_stats.bootstrap((sums, lengths), per_byte, paired=True, vectorized=True,
                               confidence_level=1 - level, n_resamples=resamples, method="BCa",
                               rng=np.random.default_rng(0)).confidence_interval
    return {"delta": float(sums.sum() / lengths.sum()), "low": float(ci.low), "high": float(ci.high),
            "windows": int(sums.size)}


def _grid_matrices(model: GPT, tables: bool):
    """``(variable, value, block axis)`` of every matrix :func:`fake_quantized` puts on a grid."""
    if not isinstance(model, GPT):
        raise ValueError(f"fake_quantized and grid_weights take a llm.GPT, got {type(model).__name__}")
    if not isinstance(tables, bool):
        raise ValueError(f"tables must be True or False, got {tables!r}")
    table_ids = {id(v) for v in (model.tokens.table, model.positions.table)}
    for var, value in zip(model.weights, model.get_weights()):
        if value.ndim == 2 and (tables or id(var) not in table_ids):
            yield var, value, 1 if id(var) in table_ids else 0


def fake_quantized(model: GPT, num_bits: int, block_size: int, *, tables: bool = True) -> GPT:
    """A copy of ``model`` whose weight matrices are on a block-wise integer grid, in float.

    Every matrix a dynamic recipe quantizes (the attention and MLP projections, the
    output layer and, with ``tables``, the token and position tables) goes through
    :func:`mobileopt_ref.quantization.blockwise_fake_quantize` with the blocks LiteRT
    Quantizer uses (along ``dim`` for a table ``[rows, dim]``, along the input for a
    dense kernel ``[in, out]``); LayerNorm parameters and biases stay as they are.
    Running the copy in TensorFlow shows what the weights' precision alone costs, with
    no integer kernel involved and activations in float32. :func:`grid_weights` counts
    the values it changes, to compare with :func:`quantized_weights` of a file.

    Args:
        model: the float model.
        num_bits: bits per weight, 2 to 8.
        block_size: weights per scale; must divide ``d_model`` (and the MLP's width).
        tables: whether the two tables go on the grid too (LiteRT Quantizer 0.11 leaves
            them float32 in its int2 recipe; see :func:`grid_weights`).

    Returns:
        A new :class:`GPT` of the same config.

    Raises:
        ValueError: for a model that is not a :class:`GPT`, or bad bits, block size or
            ``tables``.
    """
    grid = {id(var): quantization.blockwise_fake_quantize(value, num_bits, block_size, axis=axis)
            for var, value, axis in _grid_matrices(model, tables)}
    weights = [grid.get(id(var), value) for var, value in zip(model.weights, model.get_weights())]
    copy = GPT(model.config)
    copy.set_weights(weights)
    return copy


def grid_weights(model: GPT, *, tables: bool = True) -> int:
    """Number of weight values :func:`fake_quantized` puts on its grid.

    Equal to :func:`quantized_weights` of a file when the file quantizes the same
    matrices.

    Raises:
        ValueError: for a model that is not a :class:`GPT` or a bad ``tables``.
    """
    return int(sum(value.size for _, value, _ in _grid_matrices(model, tables)))


def top1_agreement(a, b) -> float:
    """Fraction of positions where two models predict the same next byte.

    Args:
        a, b: the ``"predictions"`` of two :func:`evaluate` results on the same text.

    Raises:
        ValueError: if the two are not of the same length.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1 or not a.size:
        raise ValueError(f"predictions must be two equal, non-empty 1-D arrays, got {a.shape} and {b.shape}")
    return float(np.mean(a == b))


def _schedule(config: LMTrainConfig):
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=config.steps - config.warmup_steps, alpha=config.min_lr_fraction,
        warmup_target=config.learning_rate, warmup_steps=config.warmup_steps,
    )


def _train_here(config: LMTrainConfig, verbose: bool):
    """Trains in this process (its TensorFlow thread count must be ``config.threads``)."""
    env.configure_threads(config.threads)
    env.seed_everything(config.seed)
    corpus = corpus_bytes()
    train_data, held_out = split_corpus(corpus, config.holdout_fraction)
    model = GPT(config.model, seed=config.seed)
    optimizer = keras.optimizers.Adam(_schedule(config), beta_2=0.99, global_clipnorm=config.clip_norm)
    variables = model.weights
    length = config.model.context

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=model.logits(x)))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    rng = np.random.default_rng(config.data_seed)
    history = {"step": [], "loss": []}
    started = time.perf_counter()
    window = 0.0
    log_every = max(1, config.steps // 20)
    for step in range(config.steps):
        starts = rng.integers(0, len(train_data) - length + 1, size=config.batch_size)
        chunks = np.stack([train_data[s: s + length] for s in starts])
        x = np.concatenate([np.full((config.batch_size, 1), BOS), chunks[:, :-1]], axis=1).astype(np.int32)
        loss = float(train_step(x, chunks.astype(np.int32)))
        window += loss
        if (step + 1) % log_every == 0 or step + 1 == config.steps:
            count = (step % log_every) + 1
            history["step"].append(step + 1)
            history["loss"].append(window / count)
            window = 0.0
            if verbose:
                print(f"[{config.name}] step {step + 1}/{config.steps}  loss {history['loss'][-1]:.3f} "
                      f"({history['loss'][-1] / math.log(2):.2f} bits/byte)  "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
    seconds = time.perf_counter() - started
    held = evaluate(model, held_out)
    record = {
        "config": config.to_dict(),
        "key": config.key(),
        "history": history,
        "held_out_bits_per_byte": held["bits_per_byte"],
        "held_out_bytes": held["n_bytes"],
        "train_bytes": int(len(train_data)),
        "corpus_sha256": hashlib.sha256(corpus.tobytes()).hexdigest(),
        "train_seconds": seconds,
        "tokens_per_second": config.steps * config.batch_size * length / seconds,
        "n_params": model.count_params(),
        "machine": dataclasses.asdict(env.machine_card(config.threads)),
    }
    if verbose:
        print(f"[{config.name}] trained in {seconds:.0f} s; held-out {held['bits_per_byte']:.3f} bits/byte", flush=True)
    return model, record


def _train_worker(folder: str) -> None:
    """Entry point of the training subprocess (see :func:`train`)."""
    folder = Path(folder)
    config = LMTrainConfig.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    env.setup(threads=config.threads, seed=config.seed, figures=False)
    model, record = _train_here(config, verbose=True)
    np.savez(folder / "weights.npz", **{f"w{i:04d}": w for i, w in enumerate(model.get_weights())})
    (folder / "record.json").write_text(json.dumps(record), encoding="utf-8")


def train(config: LMTrainConfig = GPT_SMALL, verbose: bool = True):
    """Trains a :class:`GPT` from scratch on :func:`corpus_text`, deterministically.

    Each step draws ``batch_size`` windows at random offsets of the training split
    (seeded by ``data_seed``) and minimises the mean next-byte cross-entropy with Adam
    (``beta_2 = 0.99``), a global gradient-norm clip, a linear warm-up and a cosine
    decay. With op determinism and a fixed thread count, the same config on the same
    kind of machine gives bit-identical weights.

    TensorFlow fixes its thread count once per process; when this process runs with
    another count than ``config.threads`` (a notebook set up with two threads, say),
    training runs in a fresh Python process and the weights come back through a
    temporary folder.

    Returns:
        ``(model, record)``: the model and a dict with the config, key, loss history,
        held-out bits per byte, training time, tokens per second, the corpus SHA-256
        and the machine card.
    """
    if not isinstance(config, LMTrainConfig):
        raise ValueError(f"config must be an LMTrainConfig, got {type(config).__name__}")
    current = tf.config.threading.get_intra_op_parallelism_threads()
    if current == config.threads:
        return _train_here(config, verbose)
    if current == 0:  # not fixed yet: fix it here if TensorFlow still allows it
        try:
            env.configure_threads(config.threads)
        except RuntimeError:
            pass
        else:
            return _train_here(config, verbose)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "config.json").write_text(json.dumps(config.to_dict()), encoding="utf-8")
        code = f"from mobileopt_ref import llm; llm._train_worker({folder!r})"
        package_root = str(Path(__file__).resolve().parents[1])
        child_env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p))
        result = subprocess.run([sys.executable, "-c", code], stdout=None if verbose else subprocess.DEVNULL,
                                env=child_env, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"training {config.name} in a subprocess with {config.threads} thread(s) failed "
                               f"(exit code {result.returncode}); see its output above")
        record = json.loads((Path(folder) / "record.json").read_text(encoding="utf-8"))
        with np.load(Path(folder) / "weights.npz") as npz:
            weights = [npz[f"w{i:04d}"] for i in range(len(npz.files))]
    model = GPT(config.model, seed=config.seed)
    model.set_weights(weights)
    return model, record


def load_or_train(config: LMTrainConfig = GPT_SMALL, cache_dir=None, *, retrain: bool | None = None,
                  verbose: bool = True):
    """Returns the trained :class:`GPT` for ``config``, from the cache or by training it.

    The cache is the book's (:func:`mobileopt_ref.models.load_or_make`): the entry
    ``<name>-<key>`` holds the weights and their SHA-256, verified when loaded; a
    missing, partial or corrupt entry is reported and trained anew; ``retrain=True`` (or
    ``MOBILEOPT_RETRAIN=1``) always trains.

    Returns:
        ``(model, meta)``: the model and its record (see :func:`train`) with
        ``weights_sha256`` and ``"source"`` (``"cache"`` or ``"trained"``).
    """
    if not isinstance(config, LMTrainConfig):
        raise ValueError(f"config must be an LMTrainConfig, got {type(config).__name__}")
    return models.load_or_make(
        config.entry_name(), config.key(), lambda: GPT(config.model, seed=config.seed),
        lambda: train(config, verbose=verbose), cache_dir, retrain=retrain, verbose=verbose,
    )


def load_cached(config: LMTrainConfig = GPT_SMALL, cache_dir=None):
    """The verified cache entry of ``config`` as ``(model, meta)``, or ``None`` (nothing is trained)."""
    return models.load_entry(config.entry_name(), config.key(), lambda: GPT(config.model, seed=config.seed),
                             cache_dir)


LAYER_GROUPS = {
    "token table": r"(^|;)token_embedding/",
    "position table": r"(^|;)position_embedding/",
    "attention": r"(^|;)[qkvo]_\d+/",
    "MLP": r"(^|;)(up|down)_\d+/",
    "output layer": r"^(?!.*(^|;)(token_embedding|position_embedding|[qkvo]_\d+|up_\d+|down_\d+)/)",
}
"""The weights of an exported :class:`GPT` in five groups, as regular expressions over op scopes.

The LiteRT Quantizer names each operator by its output tensors' names (its *scope*) and
applies a recipe entry to the operators whose scope matches the entry's regular
expression (``re.search``; a later entry overrides an earlier one). The export keeps the
Keras layer names in those names (``q_0/Tensordot``, ``token_embedding/MatMul``...), so
the groups are: the token table and the position table (each an ``EMBEDDING_LOOKUP``),
the attention projections ``q``, ``k``, ``v``, ``o`` of every block, the MLP's ``up``
and ``down``, and everything else the recipe quantizes (the output layer, whose output is
the signature's ``logits``). Each quantized weight falls in exactly one group (tested)."""


def _dynamic(bits: int, granularity: str = "CHANNELWISE", hadamard: bool = False, tables_bits: int | None = None):
    """A recipe maker for dynamic quantization (int weights, activations quantized at run time).

    The maker takes ``regex`` (the op scopes to quantize, default all; see
    :data:`LAYER_GROUPS`). With ``tables_bits``, the token and position tables are
    quantized channel-wise to that many bits instead.
    """
    def make(regex: str = ".*"):
        from litert_quantizer import algorithm_manager, qtyping, recipe_manager  # noqa: PLC0415

        manager = recipe_manager.RecipeManager()
        manager.add_dynamic_config(
            regex=regex, operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=bits,
            granularity=getattr(qtyping.QuantGranularity, granularity),
            algorithm_key=(algorithm_manager.AlgorithmName.DECOMPOSED_HADAMARD_ROTATION if hadamard
                           else algorithm_manager.AlgorithmName.MIN_MAX_UNIFORM_QUANT),
        )
        if tables_bits is not None:
            for table in ("token table", "position table"):
                manager.add_dynamic_config(
                    regex=LAYER_GROUPS[table], operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                    num_bits=tables_bits, granularity=qtyping.QuantGranularity.CHANNELWISE,
                    algorithm_key=algorithm_manager.AlgorithmName.MIN_MAX_UNIFORM_QUANT,
                )
        return manager.get_quantization_recipe()

    make.by_group = tables_bits is None  # quantization_sensitivity can restrict it to a group
    return make


def _weight_only_int8():
    from litert_quantizer import recipe  # noqa: PLC0415

    return recipe.weight_only_wi8_afp32()


_weight_only_int8.by_group = False


SCHEMES = {
    "dynamic_int8": ("int8 weights per channel, activations quantized at run time (dynamic_wi8_afp32)",
                     _dynamic(8)),
    "weight_only_int8": ("int8 weights per channel, dequantized to float before use (weight_only_wi8_afp32)",
                         _weight_only_int8),
    "int4_channelwise": ("int4 weights, one scale per output channel (dynamic_wi4c_afp32)", _dynamic(4)),
    "int4_block32": ("int4 weights, one scale per 32 weights (dynamic_wi4b32_afp32)", _dynamic(4, "BLOCKWISE_32")),
    "int4_block64": ("int4 weights, one scale per 64 weights (dynamic_wi4b64_afp32)", _dynamic(4, "BLOCKWISE_64")),
    "int4_block128": ("int4 weights, one scale per 128 weights (dynamic, BLOCKWISE_128)",
                      _dynamic(4, "BLOCKWISE_128")),
    "int4_hadamard": ("int4 weights per channel after a Hadamard rotation (dynamic_wi4c_hr_afp32)",
                      _dynamic(4, hadamard=True)),
    "int2_block32": ("int2 weights, one scale per 32 weights (dynamic_wi2b32_afp32)", _dynamic(2, "BLOCKWISE_32")),
    "int4_block32_int8_tables": ("int4 weights per block of 32; the token and position tables int8 per channel",
                                 _dynamic(4, "BLOCKWISE_32", tables_bits=8)),
}
"""LiteRT Quantizer schemes for an exported model, as ``{name: (description, recipe())}``.

All quantize the weights of every supported op (``FULLY_CONNECTED``,
``EMBEDDING_LOOKUP``, ...) symmetrically; ``weight_only`` dequantizes them before a float
op, the others keep activations float32 and let the kernels quantize them on the fly
(``afp32``). A block of ``b`` weights along the input dimension shares one scale, so a
4-bit weight costs ``4 + 16 / b`` bits with 16-bit scales. The last,
``int4_block32_int8_tables``, is int4 block 32 except for the token and position tables,
which stay int8 (:func:`mobileopt_ref.kvcache.weight_bytes` counts it with
``embedding="int8 channelwise", output="int4 block 32"``); :func:`quantization_sensitivity`
shows why."""


def quantize(model, scheme: str, group: str | None = None) -> bytes:
    """Quantizes an exported model's weights with a LiteRT Quantizer scheme.

    Both signatures are quantized together; their weights stay shared.

    Args:
        model: float32 ``.tflite`` bytes or path (from :func:`export_tflite`).
        scheme: a key of :data:`SCHEMES`.
        group: a key of :data:`LAYER_GROUPS` to quantize only that group's weights (the
            rest stay float32); ``None`` for all. Dynamic schemes only.

    Returns:
        The quantized ``.tflite`` content (inputs and outputs unchanged).

    Raises:
        ValueError: for an unknown scheme or group, a group with a scheme that cannot be
            restricted (weight-only int8, the mixed tables scheme), or a model that is not
            float32.
    """
    import contextlib  # noqa: PLC0415
    import io  # noqa: PLC0415
    import warnings  # noqa: PLC0415

    from litert_quantizer import quantizer as litert_quantizer  # noqa: PLC0415

    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(SCHEMES)}, got {scheme!r}")
    make = SCHEMES[scheme][1]
    if group is not None:
        if group not in LAYER_GROUPS:
            raise ValueError(f"group must be one of {list(LAYER_GROUPS)} or None, got {group!r}")
        if not make.by_group:
            allowed = [name for name, (_, m) in SCHEMES.items() if m.by_group]
            raise ValueError(f"scheme {scheme!r} cannot be restricted to a group; schemes that can: {allowed}")
    content = litert.read_tflite(model)
    graph = litert.read_graph(litert.select_signature(content, DECODE_SIGNATURE)) \
        if DECODE_SIGNATURE in litert.signatures(content) else litert.read_graph(content)
    done = next((t for t in graph.tensors if t.quantized), None)
    if done is not None:
        raise ValueError(f"quantize needs a float32 model; tensor {done.name!r} is quantized already")
    qt = litert_quantizer.Quantizer(bytearray(content))
    qt.load_quantization_recipe(make() if group is None else make(LAYER_GROUPS[group]))
    with native_stderr_captured(), contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = qt.quantize(None, enable_progress_report=False, enable_progress_bar=False)
    return bytes(result.quantized_model)


def quantization_sweep(float_model, data, *, schemes=None, max_bytes: int | None = None, prompt: str = "The ",
                       sample_tokens: int = 60, num_threads: int = 2) -> list:
    """Quantizes an exported model with each scheme and measures it on a text.

    Every figure comes from running the quantized ``.tflite`` itself. When XNNPACK
    refuses a file (it has no int2 kernels, for one), the file is run on LiteRT's
    built-in kernels instead and XNNPACK's message is kept.

    Args:
        float_model: float32 ``.tflite`` bytes or path (from :func:`export_tflite`).
        data: held-out bytes (see :func:`split_corpus`).
        schemes: keys of :data:`SCHEMES` (default: all, in their order).
        max_bytes: evaluate on the first ``max_bytes`` bytes only.
        prompt: the prompt of each greedy sample.
        sample_tokens: bytes of each greedy sample (0 for none).
        num_threads: interpreter threads.

    Returns:
        One dict per model (float32 first) with ``scheme``, ``description``, ``bytes``,
        ``size_ratio`` (to float), ``bits_per_byte``, ``top1_agreement`` (next-byte
        arg-max equal to float's), ``kernels`` (the set it ran on), ``xnnpack_error``
        (``None`` or XNNPACK's refusal), ``sample`` (greedy text), ``content`` (the
        ``.tflite`` bytes), ``bits`` (each predicted byte's cost in bits, float64
        ``[n]``, as :func:`evaluate` gives it, for :func:`bits_difference`).

    Raises:
        ValueError: for an unknown scheme, or a model that is not a float32 export.
    """
    content = litert.read_tflite(float_model)
    schemes = list(SCHEMES) if schemes is None else list(schemes)
    unknown = [s for s in schemes if s not in SCHEMES]
    if unknown:
        raise ValueError(f"unknown scheme {unknown[0]!r}; choose from {sorted(SCHEMES)}")
    rows = []
    reference = None
    for scheme in ["float32", *schemes]:
        model = content if scheme == "float32" else quantize(content, scheme)
        kernels, refusal = "xnnpack", None
        try:
            result = evaluate(model, data, max_bytes=max_bytes, num_threads=num_threads, kernels=kernels)
        except ValueError as err:
            if "XNNPACK" not in str(err):
                raise
            kernels, refusal = "builtin", str(err).split(": ", 1)[-1]
            result = evaluate(model, data, max_bytes=max_bytes, num_threads=num_threads, kernels=kernels)
        if reference is None:
            reference = result["predictions"]
        sample = generate(model, prompt, sample_tokens, num_threads=num_threads, kernels=kernels) \
            if sample_tokens else ""
        rows.append({
            "scheme": scheme,
            "description": "float32 weights and activations" if scheme == "float32" else SCHEMES[scheme][0],
            "bytes": len(model),
            "size_ratio": len(model) / len(content),
            "bits_per_byte": result["bits_per_byte"],
            "top1_agreement": top1_agreement(result["predictions"], reference),
            "kernels": kernels,
            "xnnpack_error": refusal,
            "sample": sample,
            "content": model,
            "bits": result["bits"],
        })
    return rows


def quantized_weights(model) -> int:
    """Number of quantized weight values in an exported model (both signatures share them).

    Args:
        model: ``.tflite`` bytes or path.

    Returns:
        The element count of every constant int8, int4 or int2 tensor of the ``decode``
        signature (the schemes here quantize weights only; activations stay float32); 0
        for a float32 file.
    """
    content = litert.read_tflite(model)
    graph = litert.read_graph(litert.select_signature(content, DECODE_SIGNATURE))
    return int(sum(int(np.prod(t.shape, dtype=np.int64)) for t in graph.tensors
                   if t.data is not None and t.dtype_name.lower() in ("int8", "int4", "int2")))


def quantization_sensitivity(float_model, data, *, scheme: str = "int4_block32", max_bytes: int | None = None,
                             num_threads: int = 2) -> list:
    """Quantizes one :data:`LAYER_GROUPS` group at a time and measures what each costs.

    For each group, only that group's weights are quantized with ``scheme`` and the
    rest stay float32; the file is evaluated on ``data``. The group whose own
    quantization costs the most bits per byte is where a mixed recipe should spend
    more bits. The costs need not add up to the whole scheme's: errors of different
    layers interact.

    Args:
        float_model: float32 ``.tflite`` bytes or path (from :func:`export_tflite`).
        data: held-out bytes (see :func:`split_corpus`).
        scheme: a dynamic key of :data:`SCHEMES` (one whose recipe takes a group).
        max_bytes: evaluate on the first ``max_bytes`` bytes only.
        num_threads: interpreter threads.

    Returns:
        One dict per group, in :data:`LAYER_GROUPS` order: ``group``, ``weights`` (values
        quantized), ``weight_share`` (of all values the whole scheme quantizes),
        ``bytes``, ``bits_per_byte``, ``delta_bits_per_byte`` (against float32),
        ``delta_low`` and ``delta_high`` (its 95 % bootstrap interval over windows,
        :func:`bits_difference`) and ``top1_agreement`` (with float32).

    Raises:
        ValueError: for a scheme that cannot be restricted to a group, or a model that
            is not a float32 export.
    """
    content = litert.read_tflite(float_model)
    reference = evaluate(content, data, max_bytes=max_bytes, num_threads=num_threads)
    window = _config_of(content).context
    total = quantized_weights(quantize(content, scheme))
    rows = []
    for group in LAYER_GROUPS:
        model = quantize(content, scheme, group)
        result = evaluate(model, data, max_bytes=max_bytes, num_threads=num_threads)
        weights = quantized_weights(model)
        diff = bits_difference(result, reference, window)
        rows.append({
            "group": group,
            "weights": weights,
            "weight_share": weights / total,
            "bytes": len(model),
            "bits_per_byte": result["bits_per_byte"],
            "delta_bits_per_byte": result["bits_per_byte"] - reference["bits_per_byte"],
            "delta_low": diff["low"],
            "delta_high": diff["high"],
            "top1_agreement": top1_agreement(result["predictions"], reference["predictions"]),
        })
    return rows


def bundle_metadata(config: GPTConfig) -> bytes:
    """LiteRT-LM's ``LlmMetadata`` for a model: the serialized protocol buffer.

    Start token :data:`BOS`, stop token :data:`EOS`, ``max_num_tokens`` = the context, a
    generic model type, and greedy sampling. LiteRT-LM 0.18 implements only its top-p
    sampler on the CPU (the ``GREEDY`` and ``TOP_K`` types fail at the first decode with
    "not implemented yet"), so greedy decoding is written as top-p with ``k = 1``.
    """
    from litert_lm_builder.runtime.proto import llm_metadata_pb2, sampler_params_pb2  # noqa: PLC0415

    if not isinstance(config, GPTConfig):
        raise ValueError(f"config must be a GPTConfig, got {type(config).__name__}")
    meta = llm_metadata_pb2.LlmMetadata()
    meta.start_token.token_ids.ids.append(BOS)
    meta.stop_tokens.add().token_ids.ids.append(EOS)
    meta.max_num_tokens = config.context
    meta.llm_model_type.generic_model.SetInParent()
    params = meta.sampler_params
    params.type = sampler_params_pb2.SamplerParameters.TOP_P
    params.k, params.p, params.temperature, params.seed = 1, 1.0, 1.0, 0
    params.backend = sampler_params_pb2.SamplerParameters.CPU
    return meta.SerializeToString()


def _config_of(content: bytes) -> GPTConfig:
    """The :class:`GPTConfig` an exported file was made from (read from its signatures)."""
    keys = litert.signatures(content)
    for key in (PREFILL_SIGNATURE, DECODE_SIGNATURE):
        if key not in keys:
            raise ValueError(f"the model has no signature {key!r}; it has {sorted(keys) or 'none'} "
                             "(export one with llm.export_tflite)")
    interpreter = litert.Interpreter(model_content=content)
    details = interpreter.get_signature_runner(PREFILL_SIGNATURE).get_input_details()
    shapes = {name: tuple(int(d) for d in detail["shape"]) for name, detail in details.items()}
    caches = sorted(n for n in shapes if n.startswith("kv_cache_k_"))
    tokens = shapes.get("tokens")
    if not caches or tokens is None or len(tokens) != 2:
        raise ValueError(f"the prefill signature needs inputs 'tokens' [1, S] and kv_cache_k_i; it has {sorted(shapes)}")
    _, heads, context, head_dim = shapes[caches[0]]
    return GPTConfig(n_layers=len(caches), d_model=heads * head_dim, n_heads=heads, context=context,
                     prefill_len=tokens[1])


def build_bundle(model, path) -> Path:
    """Writes a ``.litertlm`` bundle: the model, the tokenizer and the LLM metadata.

    The bundle is LiteRT-LM's file format (``litert-lm-builder``): a ``PREFILL_DECODE``
    ``.tflite`` section, the tokenizer as a Hugging Face ``tokenizer.json``
    (:meth:`ByteTokenizer.hf_tokenizer_json`) and :func:`bundle_metadata`. The builder
    stamps each file with a fresh UUID and time, so two bundles of one model differ in
    those bytes only.

    Args:
        model: exported ``.tflite`` bytes or path (float or quantized).
        path: the ``.litertlm`` file to write (its folder must exist).

    Returns:
        ``path`` as a ``pathlib.Path``.

    Raises:
        ValueError: for a model without LiteRT-LM's signatures.
        FileNotFoundError: if the folder of ``path`` does not exist.
    """
    from litert_lm_builder import litertlm_builder as builder  # noqa: PLC0415

    content = litert.read_tflite(model)
    config = _config_of(content)
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"no folder {path.parent} to write the bundle into")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "model.tflite").write_bytes(content)
        (folder / "tokenizer.json").write_text(ByteTokenizer().hf_tokenizer_json(), encoding="utf-8")
        (folder / "llm_metadata.pb").write_bytes(bundle_metadata(config))
        files = builder.LitertLmFileBuilder()
        files.add_system_metadata(builder.Metadata(key="Authors", value="mobileopt_ref", dtype=builder.DType.STRING))
        files.add_tflite_model(str(folder / "model.tflite"), builder.TfLiteModelType.PREFILL_DECODE)
        files.add_hf_tokenizer(str(folder / "tokenizer.json"))
        files.add_llm_metadata(str(folder / "llm_metadata.pb"))
        tmp = path.with_name(f".{path.name}.partial")
        with open(tmp, "wb") as stream:
            files.build(stream)
        tmp.replace(path)
    return path


def _quiet_litert_lm():
    import litert_lm  # noqa: PLC0415

    litert_lm.set_min_log_severity(litert_lm.LogSeverity.ERROR)
    return litert_lm


class LiteRTLM:
    """A ``.litertlm`` bundle loaded in LiteRT-LM's engine (``litert-lm-api``), on the CPU.

    The engine compiles the model for XNNPACK once and keeps that in ``cache_dir``
    (a temporary folder unless given). Use as a context manager, or call :meth:`close`.

    Args:
        bundle: a ``.litertlm`` path (:func:`build_bundle`).
        threads: CPU threads of the engine.
        max_num_tokens: KV cache length the engine may use (default: the bundle's).
        cache_dir: an existing folder for the engine's compiled artefacts.

    Raises:
        FileNotFoundError: if the bundle or ``cache_dir`` does not exist.
        RuntimeError: if LiteRT-LM cannot load the bundle.
    """

    def __init__(self, bundle, *, threads: int = 2, max_num_tokens: int | None = None, cache_dir=None):
        bundle = Path(bundle)
        if not bundle.is_file():
            raise FileNotFoundError(f"no .litertlm bundle at {bundle}")
        _positive_int("threads", threads)
        self._tmp = None
        if cache_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="litert-lm-")
            cache_dir = self._tmp.name
        if not Path(cache_dir).is_dir():
            raise FileNotFoundError(f"cache_dir {cache_dir} must be an existing folder")
        litert_lm = _quiet_litert_lm()
        self.bundle, self.threads, self.cache_dir = bundle, threads, str(cache_dir)
        self.max_num_tokens = max_num_tokens
        with native_stderr_captured():
            self.engine = litert_lm.Engine(str(bundle), backend=litert_lm.Backend.CPU(thread_count=threads),
                                           max_num_tokens=max_num_tokens, cache_dir=self.cache_dir)

    def generate(self, prompt: str, max_new_tokens: int) -> str:
        """Greedy text after ``prompt`` (the engine adds :data:`BOS`): prefill, then decode."""
        max_new_tokens = _positive_int("max_new_tokens", max_new_tokens)
        with native_stderr_captured():
            session = self.engine.create_session(apply_prompt_template=False, max_output_tokens=max_new_tokens)
            try:
                session.run_prefill([prompt])
                return session.run_decode().texts[0]
            finally:
                session.close()

    def tokenize(self, text: str) -> list:
        """The engine's token ids of ``text`` (its tokenizer is the bundle's)."""
        return list(self.engine.tokenize(text))

    def close(self) -> None:
        """Frees the engine (and the temporary cache folder)."""
        if getattr(self, "engine", None) is not None:
            self.engine.close()
            self.engine = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def litert_lm_benchmark(bundle, *, prefill_tokens: int, decode_tokens: int, threads: int = 2,
                        max_num_tokens: int | None = None, cache_dir=None) -> dict:
    """Prefill and decode speed of a bundle measured by LiteRT-LM's own ``Benchmark``.

    The benchmark loads the engine, prefills ``prefill_tokens`` tokens (a short prompt
    padded with id 0), then decodes ``decode_tokens`` tokens, and reports the rate of
    each phase as its token count over its wall time.

    Args:
        bundle: a ``.litertlm`` path.
        prefill_tokens, decode_tokens: tokens of each phase; their sum must fit the
            KV cache (``max_num_tokens``, by default the bundle's context).
        threads: CPU threads.
        max_num_tokens: KV cache length.
        cache_dir: an existing folder for compiled artefacts (a temporary one if omitted).

    Returns:
        ``{"prefill_tokens_per_second", "decode_tokens_per_second", "prefill_tokens",
        "decode_tokens", "init_seconds", "time_to_first_token_seconds"}``.

    Raises:
        FileNotFoundError: for a missing bundle or cache folder.
        ValueError: for non-positive token counts or threads.
    """
    bundle = Path(bundle)
    if not bundle.is_file():
        raise FileNotFoundError(f"no .litertlm bundle at {bundle}")
    for name, value in (("prefill_tokens", prefill_tokens), ("decode_tokens", decode_tokens), ("threads", threads)):
        _positive_int(name, value)
    litert_lm = _quiet_litert_lm()
    with tempfile.TemporaryDirectory(prefix="litert-lm-") as tmp:
        folder = str(cache_dir) if cache_dir is not None else tmp
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"cache_dir {folder} must be an existing folder")
        with native_stderr_captured():
            info = litert_lm.Benchmark(
                model_path=str(bundle), backend=litert_lm.Backend.CPU(thread_count=threads),
                prefill_tokens=prefill_tokens, decode_tokens=decode_tokens, max_num_tokens=max_num_tokens,
                cache_dir=folder,
            ).run()
    return {
        "prefill_tokens_per_second": float(info.last_prefill_tokens_per_second),
        "decode_tokens_per_second": float(info.last_decode_tokens_per_second),
        "prefill_tokens": int(info.last_prefill_token_count),
        "decode_tokens": int(info.last_decode_token_count),
        "init_seconds": float(info.init_time_in_second),
        "time_to_first_token_seconds": float(info.time_to_first_token_in_second),
    }


def interpreter_benchmark(model, *, prefill_tokens: int, decode_tokens: int, threads: int = 2) -> dict:
    """Prefill and decode speed of an exported model in ``ai_edge_litert``'s interpreter.

    The same work as :func:`litert_lm_benchmark`: ``prefill_tokens`` ids (``S`` per
    prefill call) from an empty cache, then ``decode_tokens`` greedy decode steps, each
    phase timed as a whole with ``time.perf_counter``. Unlike LiteRT-LM, the interpreter
    copies every KV cache in and out of each call (numpy arrays through the signature
    runner), which the decode rate includes.

    Each signature is first called once, untimed: a first call allocates and sets up
    XNNPACK. Repeated measurements can share one loaded model: pass a :class:`TFLiteLM`
    (its caches are emptied first), so only the first pays for loading it and for
    XNNPACK's packing of the weights, neither of which is part of either rate.

    Args:
        model: exported ``.tflite`` bytes or path, or a loaded :class:`TFLiteLM`.
        prefill_tokens, decode_tokens: tokens of each phase (sum at most the context).
        threads: interpreter threads (a :class:`TFLiteLM` must have been made with as many).

    Returns:
        ``{"prefill_tokens_per_second", "decode_tokens_per_second", "prefill_tokens",
        "decode_tokens", "decode_ms"}``; the last holds each decode step's time.

    Raises:
        ValueError: for counts that do not fit the cache, bad threads, or a
            :class:`TFLiteLM` made with another thread count.
    """
    for name, value in (("prefill_tokens", prefill_tokens), ("decode_tokens", decode_tokens)):
        _positive_int(name, value)
    if isinstance(model, TFLiteLM):
        if model.num_threads != threads:
            raise ValueError(f"the loaded model runs {model.num_threads} threads, not threads={threads}; "
                             f"load it with TFLiteLM(..., num_threads={threads})")
        runner = model
    else:
        runner = TFLiteLM(model, num_threads=threads)
    if prefill_tokens + decode_tokens > runner.context:
        raise ValueError(f"prefill_tokens + decode_tokens ({prefill_tokens + decode_tokens}) must fit the KV cache "
                         f"of {runner.context} tokens")
    ids = np.resize(ByteTokenizer().encode("How are you", bos=True), prefill_tokens).astype(np.int32)
    runner.reset()
    runner.prefill(ids)  # each signature's first call allocates and sets up XNNPACK: not timed
    runner.decode(0)
    runner.reset()
    started = time.perf_counter()
    logits = runner.prefill(ids)[-1]
    prefill_seconds = time.perf_counter() - started
    steps = []
    for _ in range(decode_tokens):
        t0 = time.perf_counter()
        logits = runner.decode(int(np.argmax(logits)))
        steps.append(time.perf_counter() - t0)
    return {
        "prefill_tokens_per_second": prefill_tokens / prefill_seconds,
        "decode_tokens_per_second": decode_tokens / float(np.sum(steps)),
        "prefill_tokens": int(prefill_tokens),
        "decode_tokens": int(decode_tokens),
        "decode_ms": [1e3 * s for s in steps],
    }


__all__ = [
    "BOS", "EOS", "VOCAB_SIZE", "PREFILL_SIGNATURE", "DECODE_SIGNATURE", "EMBEDDINGS",
    "ByteTokenizer", "GPTConfig", "GPT", "cache_names", "signature_shapes", "export_tflite",
    "TFLiteLM", "generate", "decode_matches_prefill", "RECIPE_VERSION", "corpus_text", "corpus_bytes",
    "split_corpus", "LMTrainConfig", "GPT_SMALL", "evaluate", "top1_agreement", "train", "load_or_train",
    "load_cached", "bundle_metadata", "build_bundle", "LiteRTLM", "litert_lm_benchmark",
    "interpreter_benchmark", "SCHEMES", "LAYER_GROUPS", "quantize", "quantized_weights", "quantization_sweep",
    "quantization_sensitivity", "bits_difference", "fake_quantized", "grid_weights", "GPT_WIDE", "build_wide",
]
