"""A small Vision Transformer on the book's pattern images, and where its operators go in int8.

The source article names ViT beside BERT and GPT as the large models phones now run. A
ViT cuts the image into patches, embeds each patch with one matrix (a convolution whose
stride is its kernel), adds a learned position vector, and runs transformer blocks over
the patch sequence. Its operators are not MobileNetV2's: LayerNorm (no single LiteRT
operator; the converter writes it as ``MEAN``, ``SQUARED_DIFFERENCE``, ``RSQRT``, ...),
a softmax over attention scores, matrix products of two activations (``BATCH_MATMUL``)
and GELU. How each of them is stored and run in a full-integer file decides what int8
costs a transformer; :func:`int8_op_table` reads it from the file.

API summary:

- :class:`ViTConfig` (patch size, width, blocks, heads, MLP ratio and the training
  recipe; ``key()`` names the cache entry), :data:`VIT_SMALL` (the book's ViT).
- :func:`build_vit` (the ``tf_keras`` model: ``uint8``-derived ``[-1, 1]`` images in,
  logits out), :func:`train` (deterministic, the MobileNetV2 recipe of
  :func:`mobileopt_ref.models.train`: fresh images every epoch, a curriculum of
  difficulty, Adam with cosine decay), :func:`load_or_train` / :func:`load_cached` (the
  book's model cache, :func:`mobileopt_ref.models.load_or_make`).
- :func:`op_role` (which part of a transformer an operator of a converted ViT belongs
  to), :func:`int8_op_table` (every operator of a ``.tflite`` with its role, input and
  output types, and whether XNNPACK runs it), :func:`float_islands` (the operators
  that compute in float inside a quantized graph, between ``DEQUANTIZE`` and
  ``QUANTIZE``).

Explained in notebooks/08_large_models.ipynb.

Example:
    >>> from mobileopt_ref import vit
    >>> model, meta = vit.load_or_train(vit.VIT_SMALL)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import numpy as np

from mobileopt_ref import data, env, litert, models
from mobileopt_ref._keras import keras, tf

RECIPE_VERSION = 1
"""Bumped whenever the model or training code changes what a :class:`ViTConfig` produces."""


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    """Everything that determines a trained ViT, and so its cache key.

    The training fields mean what they mean in :class:`mobileopt_ref.models.TrainConfig`
    (fresh images every epoch, ``ramp_epochs`` of growing difficulty, Adam with a cosine
    decay to 0), so the ViT and MobileNetV2 see data of the same kind.

    Attributes:
        resolution: image side in pixels (32 to 224, see :func:`mobileopt_ref.data.check_resolution`).
        patch: patch side in pixels; must divide ``resolution``. The sequence has
            ``(resolution / patch)^2`` tokens.
        d_model: width of each token's vector.
        n_layers: transformer blocks.
        n_heads: attention heads; must divide ``d_model``.
        mlp_ratio: the MLP's hidden width as a multiple of ``d_model``.
        epochs, images_per_epoch, batch_size, learning_rate, seed, data_seed,
        n_validation, mix_max, noise_max, ramp_epochs, threads: the training recipe.
        name: a label for people; not part of the key.

    Raises:
        ValueError: for non-positive sizes, a patch that does not divide the resolution,
            heads that do not divide the width, or a bad training field.
    """

    resolution: int = 32
    patch: int = 8
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    mlp_ratio: int = 2
    epochs: int = 10
    images_per_epoch: int = 6_400
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = 0
    data_seed: int = 0
    n_validation: int = 2_000
    mix_max: float = 0.5
    noise_max: float = 0.1
    ramp_epochs: int = 3
    threads: int = env.DEFAULT_THREADS
    name: str = "vit"

    def __post_init__(self):
        data.check_resolution(self.resolution)
        for field in ("patch", "d_model", "n_layers", "n_heads", "mlp_ratio", "epochs", "images_per_epoch",
                      "batch_size", "n_validation", "threads"):
            _positive_int(field, getattr(self, field))
        if self.resolution % self.patch:
            raise ValueError(f"patch ({self.patch}) must divide resolution ({self.resolution})")
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        if isinstance(self.ramp_epochs, bool) or not isinstance(self.ramp_epochs, int) or self.ramp_epochs < 0:
            raise ValueError(f"ramp_epochs must be a non-negative integer, got {self.ramp_epochs!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")

    @property
    def tokens(self) -> int:
        """Patches per image, the sequence length ``(resolution / patch)^2``."""
        return (self.resolution // self.patch) ** 2

    def n_params(self) -> int:
        """Parameter count from the shape alone.

        Patch embedding ``p^2 3 d + d``; positions ``N d``; per block two LayerNorms
        (``4 d``), q, k, v and output projections (``4 d^2 + 4 d``) and the MLP
        (``2 r d^2 + r d + d``); a final LayerNorm (``2 d``) and the classifier
        (``d C + C``, ``C`` = ``mobileopt_ref.data.NUM_CLASSES``).
        """
        d, r, p, c = self.d_model, self.mlp_ratio, self.patch, data.NUM_CLASSES
        block = 4 * d + 4 * d * d + 4 * d + 2 * r * d * d + r * d + d
        return p * p * 3 * d + d + self.tokens * d + self.n_layers * block + 2 * d + d * c + c

    def key(self) -> str:
        """Returns the cache key: SHA-256 of the canonical JSON of the config."""
        fields = dataclasses.asdict(self)
        fields.pop("name")
        fields["recipe_version"] = RECIPE_VERSION
        blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def entry_name(self) -> str:
        """Returns the cache directory name: ``<name>-<first 16 hex digits of key>``."""
        return f"{self.name}-{self.key()[:16]}"


VIT_SMALL = ViTConfig()
"""The book's ViT, on 32 px images cut into 8 x 8 patches (16 tokens), width 64, 2 blocks of 4 heads.

81 k parameters, trained with the MobileNetV2 student's data recipe (fresh images,
a curriculum of difficulty) for 10 epochs of 6,400 images on two threads: a few
minutes, where the student trained 60 epochs. Patches of 4 x 4 (64 tokens) cost
about four times as much per image; on a busy 2-core machine that did not fit the
chapter's training budget."""


class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector to each token: ``x + P`` with ``P`` of shape ``[tokens, d]``.

    Args:
        seed: initialiser seed (``N(0, 0.02^2)``).
    """

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)

    def build(self, input_shape):
        """Creates the ``[tokens, d]`` table for inputs of shape ``[batch, tokens, d]``."""
        self.table = self.add_weight(
            "table", shape=(int(input_shape[1]), int(input_shape[2])),
            initializer=keras.initializers.RandomNormal(stddev=0.02, seed=self.seed),
        )
        super().build(input_shape)

    def call(self, x):
        """Returns ``x + P`` (``P`` broadcast over the batch)."""
        return x + self.table[None]

    def get_config(self) -> dict:
        """The layer's config (its seed beside Keras's fields)."""
        return {**super().get_config(), "seed": self.seed}


def build_vit(config: ViTConfig = VIT_SMALL):
    """Builds the untrained ViT of ``config`` as a functional ``tf_keras`` model.

    ``Conv2D(d, patch, strides=patch)`` embeds each patch; a :class:`PositionEmbedding`
    adds positions; each block computes ``x += MHA(LN(x))`` and
    ``x += W_2 GELU(W_1 LN(x))`` (pre-LayerNorm, exact GELU); a final LayerNorm, the
    mean over tokens and a dense layer give the logits. No class token: the mean over
    tokens classifies as well on small images and keeps every token alike. Each
    initializer has its own seed derived from ``config.seed``.

    Args:
        config: the shape (the training fields are not used here).

    Returns:
        A ``tf_keras.Model``: float32 ``[batch, resolution, resolution, 3]`` in
        ``[-1, 1]`` (:func:`mobileopt_ref.data.preprocess`) to ``[batch, 10]`` logits.
    """
    if not isinstance(config, ViTConfig):
        raise ValueError(f"config must be a ViTConfig, got {type(config).__name__}")
    c, seed = config, int(config.seed) * 1000
    d, side = c.d_model, c.resolution // c.patch

    def init(offset):
        return keras.initializers.TruncatedNormal(stddev=0.02, seed=seed + offset)

    inputs = keras.Input((c.resolution, c.resolution, 3), name="image")
    x = keras.layers.Conv2D(d, c.patch, strides=c.patch, kernel_initializer=init(1), name="patch_embedding")(inputs)
    x = keras.layers.Reshape((side * side, d), name="tokens")(x)
    x = PositionEmbedding(seed + 2, name="positions")(x)
    for i in range(c.n_layers):
        s = 10 * (i + 1)
        h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_ln1")(x)
        h = keras.layers.MultiHeadAttention(
            c.n_heads, d // c.n_heads, kernel_initializer=init(s + 1), name=f"block{i}_attention",
        )(h, h)
        x = keras.layers.Add(name=f"block{i}_add1")([x, h])
        h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_ln2")(x)
        h = keras.layers.Dense(c.mlp_ratio * d, activation="gelu", kernel_initializer=init(s + 2),
                               name=f"block{i}_mlp_up")(h)
        h = keras.layers.Dense(d, kernel_initializer=init(s + 3), name=f"block{i}_mlp_down")(h)
        x = keras.layers.Add(name=f"block{i}_add2")([x, h])
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="final_ln")(x)
    x = keras.layers.GlobalAveragePooling1D(name="mean_over_tokens")(x)
    outputs = keras.layers.Dense(data.NUM_CLASSES, kernel_initializer=init(3), name="logits")(x)
    return keras.Model(inputs, outputs, name="vit")


def train(config: ViTConfig = VIT_SMALL, verbose: bool = True):
    """Trains a ViT from scratch on the pattern images, deterministically.

    The recipe of :func:`mobileopt_ref.models.train` (the book's MobileNetV2s): every
    epoch draws ``images_per_epoch`` fresh images, the first ``ramp_epochs`` with
    reduced distractors and noise, Adam with a cosine decay to 0 over all steps,
    cross-entropy on logits, validation on the fixed validation split after each epoch.
    With op determinism and ``config.threads`` threads, the same config on the same kind
    of machine gives bit-identical weights.

    Returns:
        ``(model, record)``: the trained model and a dict with the config, key, history,
        training time, images per second and the machine card.

    Raises:
        ValueError: for a config that is not a :class:`ViTConfig`.
        RuntimeError: if TensorFlow already runs with another thread count.
    """
    if not isinstance(config, ViTConfig):
        raise ValueError(f"config must be a ViTConfig, got {type(config).__name__}")
    env.configure_threads(config.threads)
    env.seed_everything(config.seed)
    model = build_vit(config)
    steps_per_epoch = config.images_per_epoch // config.batch_size
    x_val, y_val = models._compile_for(model, config, config.learning_rate, steps_per_epoch * config.epochs)
    history: dict = {}
    started = time.perf_counter()
    log = models._EpochLog(config.name, config.epochs, started)
    for epoch in range(config.epochs):
        level = min(1.0, (epoch + 1) / (config.ramp_epochs + 1))
        x, y = data.generate_patterns(
            steps_per_epoch * config.batch_size, config.resolution, config.data_seed, split="train",
            epoch=epoch, mix_max=level * config.mix_max, noise_max=level * config.noise_max,
        )
        models._fit_epoch(model, x, y, epoch, config, (x_val, y_val), [log] if verbose else [], history)
    seconds = time.perf_counter() - started
    record = {
        "config": dataclasses.asdict(config),
        "key": config.key(),
        "history": history,
        "train_seconds": seconds,
        "images_per_second": config.epochs * steps_per_epoch * config.batch_size / seconds,
        "n_params": int(model.count_params()),
        "machine": dataclasses.asdict(env.machine_card(config.threads)),
    }
    return model, record


def load_or_train(config: ViTConfig = VIT_SMALL, cache_dir=None, *, retrain: bool | None = None,
                  verbose: bool = True):
    """Returns the trained ViT of ``config``, from the book's model cache or by training it.

    See :func:`mobileopt_ref.models.load_or_make`: a verified entry is loaded; a missing,
    partial or corrupt one is reported and trained anew; ``retrain=True`` (or
    ``MOBILEOPT_RETRAIN=1``) always trains.

    Returns:
        ``(model, meta)``: the model and its record (see :func:`train`) with
        ``weights_sha256`` and ``"source"`` (``"cache"`` or ``"trained"``).
    """
    if not isinstance(config, ViTConfig):
        raise ValueError(f"config must be a ViTConfig, got {type(config).__name__}")
    return models.load_or_make(config.entry_name(), config.key(), lambda: build_vit(config),
                               lambda: train(config, verbose=verbose), cache_dir, retrain=retrain,
                               verbose=verbose)


def load_cached(config: ViTConfig = VIT_SMALL, cache_dir=None):
    """The verified cache entry of ``config`` as ``(model, meta)``, or ``None`` (nothing is trained)."""
    return models.load_entry(config.entry_name(), config.key(), lambda: build_vit(config), cache_dir)


ROLES = ("conversion", "patch embedding", "layernorm", "attention", "softmax", "mlp", "gelu", "residual", "head",
         "shape", "other")
"""What :func:`op_role` can answer."""

_ROLE_PATTERNS = (  # (substring of an output tensor's name, role), first match wins
    ("mean_over_tokens", "head"),
    ("patch_embedding", "patch embedding"),
    ("positions", "patch embedding"),
    ("/tokens", "patch embedding"),
    ("_ln", "layernorm"),
    ("layer_normalization", "layernorm"),
    ("softmax", "softmax"),
    ("attention", "attention"),
    ("mlp_up", "mlp"),
    ("mlp_down", "mlp"),
    ("_add", "residual"),
    ("mean_over_tokens", "head"),
    ("logits", "head"),
)


SHAPE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK", "GATHER", "REDUCE_PROD", "CONCATENATION")
"""Operators that :func:`op_role` calls ``"shape"`` when they write ``int32`` (shape arithmetic)."""


def op_role(graph: litert.Graph, op: litert.OpInfo) -> str:
    """Which part of a transformer an operator of a converted :func:`build_vit` model belongs to.

    Read from the operator itself (``QUANTIZE`` and ``DEQUANTIZE`` are
    ``"conversion"``, ``SOFTMAX`` is ``"softmax"``, ``GELU`` is ``"gelu"``, an operator
    writing the model's output is ``"head"``), else from the names the converter gives
    its output tensors (the Keras layer path). Integer arithmetic on shapes (``SHAPE``,
    ``GATHER``, ``REDUCE_PROD``, ... writing ``int32``: the converter computes the
    dynamic batch size this way before a ``RESHAPE``) is ``"shape"``.

    Args:
        graph: from :func:`mobileopt_ref.litert.read_graph`.
        op: one of ``graph.ops``.

    Returns:
        One of :data:`ROLES`.
    """
    if op.op in ("QUANTIZE", "DEQUANTIZE"):
        return "conversion"
    if op.op == "SOFTMAX":
        return "softmax"
    if op.op == "GELU":
        return "gelu"
    if any(t in graph.outputs for t in op.outputs):
        return "head"
    if op.op in SHAPE_OPS and all(graph.tensors[t].dtype_name == "int32" for t in op.outputs if t >= 0):
        return "shape"
    names = " ".join(graph.tensors[t].name for t in op.outputs if t >= 0).lower()
    for pattern, role in _ROLE_PATTERNS:
        if pattern in names:
            return role
    return "other"


def _dtype_of(graph: litert.Graph, indices) -> str:
    kinds = []
    for t in indices:
        if t < 0 or graph.tensors[t].data is not None:  # omitted, or a constant (weights)
            continue
        name = graph.tensors[t].dtype_name
        if name not in kinds:
            kinds.append(name)
    return "/".join(kinds) or "-"


def int8_op_table(model, *, num_threads: int = 2) -> list:
    """Every operator of a ``.tflite`` with its role, the types it computes in, and its kernels.

    Args:
        model: ``.tflite`` bytes or path (one subgraph), e.g. a full-integer ViT.
        num_threads: interpreter threads for asking XNNPACK what it takes.

    Returns:
        A list with one dict per operator, in execution order, with ``index``, ``op`` (LiteRT's name),
        ``role`` (:func:`op_role`), ``in`` and ``out`` (the dtypes of its activation
        inputs and outputs, constants left out, e.g. ``"int8"``), ``weights`` (dtypes of
        its constant inputs, ``"-"`` if none) and ``kernels`` (``"XNNPACK"`` when a
        delegate partition runs it, else ``"built-in"``).

    Raises:
        ValueError: for content that is not a ``.tflite`` model or has several subgraphs.
    """
    content = litert.check_one_graph(model, "int8_op_table")
    graph = litert.read_graph(content)
    placed = litert.delegated_ops(content, num_threads=num_threads)
    delegated = set(placed["delegated"])
    rows = []
    for op in graph.ops:
        constants = [graph.tensors[t].dtype_name for t in op.inputs if t >= 0 and graph.tensors[t].data is not None]
        rows.append({
            "index": op.index,
            "op": op.op,
            "role": op_role(graph, op),
            "in": _dtype_of(graph, op.inputs),
            "out": _dtype_of(graph, op.outputs),
            "weights": "/".join(dict.fromkeys(constants)) or "-",
            "kernels": "XNNPACK" if op.index in delegated else "built-in",
        })
    return rows


def float_islands(rows) -> list:
    """The operators that compute in float32 inside a quantized graph.

    An operator whose activation inputs are all float32 while the file's input or some
    other operator is integer runs on float values that a ``DEQUANTIZE`` made (and a
    ``QUANTIZE`` turns back): each such operator costs two conversions and float
    arithmetic.

    Args:
        rows: from :func:`int8_op_table`.

    Returns:
        The rows of the operators (other than ``DEQUANTIZE`` and ``QUANTIZE``) that take
        float32 activations, in execution order; empty for a graph that stays integer,
        and for a float graph (no operator computes in an integer type).
    """
    rows = list(rows)
    integer = any(r["in"] in ("int8", "int16") or r["out"] in ("int8", "int16") for r in rows)
    if not integer:  # a float graph has no islands: it is all float
        return []
    return [r for r in rows if r["op"] not in ("DEQUANTIZE", "QUANTIZE") and r["in"] == "float32"]


def summarize_roles(rows) -> dict:
    """Per role, the operators used and the types they compute in.

    Args:
        rows: from :func:`int8_op_table`.

    Returns:
        For each role present, in order of first appearance, a dict with ``"ops"``
        (``{op: count}``), ``"types"`` (each distinct ``"in -> out"`` pair of activation
        types, once), ``"kernels"`` (kernel sets) and ``"kernels_by_op"``
        (``{op: [kernel sets]}``), keyed by role.
    """
    out: dict = {}
    for r in rows:
        entry = out.setdefault(r["role"], {"ops": {}, "types": [], "kernels": [], "kernels_by_op": {}})
        entry["ops"][r["op"]] = entry["ops"].get(r["op"], 0) + 1
        pair = f"{r['in']} -> {r['out']}"
        if pair not in entry["types"]:
            entry["types"].append(pair)
        if r["kernels"] not in entry["kernels"]:
            entry["kernels"].append(r["kernels"])
        by_op = entry["kernels_by_op"].setdefault(r["op"], [])
        if r["kernels"] not in by_op:
            by_op.append(r["kernels"])
    return out


__all__ = [
    "RECIPE_VERSION", "ViTConfig", "VIT_SMALL", "PositionEmbedding", "build_vit", "train", "load_or_train",
    "load_cached", "ROLES", "SHAPE_OPS", "op_role", "int8_op_table", "float_islands", "summarize_roles",
]
