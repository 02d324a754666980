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
import json
import math
import os
import tempfile

import numpy as np

from mobileopt_ref import litert
from mobileopt_ref._keras import keras, tf
from mobileopt_ref._quiet import native_stderr_captured

BOS = 256
"""Id of the beginning-of-sequence token (every training window starts with it)."""
EOS = 257
"""Id of the end-of-sequence token (a stop token for LiteRT-LM; never trained on)."""
VOCAB_SIZE = 258
"""The 256 byte values plus :data:`BOS` and :data:`EOS`."""

PREFILL_SIGNATURE = "prefill"
DECODE_SIGNATURE = "decode"
"""Signature keys of the exported model, the names LiteRT-LM looks for."""

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


def generate(model, prompt: str, max_new_tokens: int, *, num_threads: int = 2) -> str:
    """Greedy text from ``prompt`` (after :data:`BOS`) through LiteRT.

    Args:
        model: exported ``.tflite`` bytes or path.
        prompt: the text to continue.
        max_new_tokens: bytes to generate at most (the cache may end first).
        num_threads: interpreter threads.

    Returns:
        The generated text (without the prompt).
    """
    tok = ByteTokenizer()
    runner = TFLiteLM(model, num_threads=num_threads)
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
        ``{"max_abs_diff": largest |prefill - decode| logit difference, "max_abs_logit":
        largest |logit| (for scale), "top1_agreement": fraction of positions whose
        arg-max agrees, "positions": S}``.

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


__all__ = [
    "BOS", "EOS", "VOCAB_SIZE", "PREFILL_SIGNATURE", "DECODE_SIGNATURE", "EMBEDDINGS",
    "ByteTokenizer", "GPTConfig", "GPT", "cache_names", "signature_shapes", "export_tflite",
    "TFLiteLM", "generate", "decode_matches_prefill",
]
