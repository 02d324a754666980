"""MobileNetV2 teacher and student, deterministic training, and the trained-model cache.

The book's two models are ``tf_keras.applications.MobileNetV2`` with ``alpha = 1.0``
(the teacher) and ``alpha = 0.35`` (the student), trained from scratch on the offline
pattern dataset. They output logits (no softmax), which distillation needs and which
leave the arg-max, and so the accuracy, unchanged.

Training is reproducible: with the same :class:`TrainConfig` (which fixes seeds and the
thread count) on the same kind of machine it produces bit-identical weights. Trained
models are cached under a hash of their config; entries are written atomically and
verified by a SHA-256 of their weights when loaded, so a corrupt or partial entry is
detected and rebuilt, never used.

Explained in notebooks/00_baseline.ipynb.

Example:
    >>> from mobileopt_ref import models
    >>> config = models.TrainConfig(alpha=0.35, resolution=32, epochs=1, images_per_epoch=256)
    >>> model, record = models.load_or_train(config)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from mobileopt_ref import data, env
from mobileopt_ref._quiet import native_stderr_captured
from mobileopt_ref._keras import keras, tf

KERAS_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
"""Width multipliers Keras defines MobileNetV2 for (the published checkpoints)."""

TEACHER_ALPHA = 1.0
STUDENT_ALPHA = 0.35
RECIPE_VERSION = 1
"""Bumped whenever the training code changes what a config produces."""

CACHE_ENV = "MOBILEOPT_CACHE_DIR"
RETRAIN_ENV = "MOBILEOPT_RETRAIN"
_WEIGHTS_FILE = "weights.npz"
_META_FILE = "meta.json"


def check_alpha(alpha) -> float:
    """Validates a MobileNetV2 width multiplier.

    Raises:
        ValueError: if ``alpha`` is not one of :data:`KERAS_ALPHAS`.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or float(alpha) not in KERAS_ALPHAS:
        raise ValueError(
            f"alpha must be one of {', '.join(str(a) for a in KERAS_ALPHAS)} "
            f"(the widths Keras defines MobileNetV2 for), got {alpha!r}"
        )
    return float(alpha)


def build_mobilenet_v2(
    alpha: float = STUDENT_ALPHA,
    resolution: int = 32,
    num_classes: int = data.NUM_CLASSES,
    *,
    bn_momentum: float = 0.9,
    weights: str | None = None,
):
    """Builds a flat Keras MobileNetV2 that maps ``[-1, 1]`` images to logits.

    The model is ``tf_keras.applications.MobileNetV2`` unchanged except for two
    settings: the classifier has no softmax (it returns logits), and the batch-norm
    momentum is lowered from Keras' 0.999 to ``bn_momentum``. With 0.999 the moving
    statistics need thousands of steps to settle, longer than the short from-scratch
    training this book can afford on two cores.

    Args:
        alpha: width multiplier, one of :data:`KERAS_ALPHAS`.
        resolution: input side in pixels, 32 to 224.
        num_classes: number of output logits (positive).
        bn_momentum: batch-norm moving-average momentum, in ``(0, 1)``.
        weights: ``None`` (random init) or ``"imagenet"`` (downloads the published
            checkpoint; needs a network, a resolution of 96, 128, 160, 192 or 224 and,
            with 1000 classes, the ImageNet head).

    Returns:
        An uncompiled ``tf_keras.Model``.

    Raises:
        ValueError: for a bad alpha, resolution, class count or momentum.
        RuntimeError: if ImageNet weights are asked for and cannot be downloaded.
    """
    alpha = check_alpha(alpha)
    resolution = data.check_resolution(resolution)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not 0.0 < bn_momentum < 1.0:
        raise ValueError(f"bn_momentum must be in (0, 1), got {bn_momentum}")
    if weights not in (None, "imagenet"):
        raise ValueError(f"weights must be None or 'imagenet', got {weights!r}")
    try:
        model = keras.applications.MobileNetV2(
            input_shape=(resolution, resolution, 3),
            alpha=alpha,
            include_top=True,
            weights=weights,
            classes=num_classes,
            classifier_activation=None,
        )
    except Exception as err:
        if weights == "imagenet" and not isinstance(err, ValueError):
            raise RuntimeError(
                f"could not download the ImageNet weights of MobileNetV2 ({err}). The "
                "book's offline default is weights=None with training on the generated "
                "'patterns' dataset."
            ) from err
        raise
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = bn_momentum
    return model


TRAINING_DATASETS = ("patterns", "digits")
"""Datasets a :class:`TrainConfig` can train on (both offline)."""

DIGITS_MAX_SHIFT = 3 / 32
"""Largest random shift of a training digit, as a share of the image side (3 px at 32 px)."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model, and so its cache key.

    Attributes:
        alpha: MobileNetV2 width multiplier.
        resolution: image side in pixels.
        epochs: passes of training; every epoch draws ``images_per_epoch`` fresh images.
        images_per_epoch: images generated for each epoch.
        batch_size: images per step.
        learning_rate: peak Adam learning rate, decayed to 0 by a cosine schedule.
        bn_momentum: batch-norm momentum (see :func:`build_mobilenet_v2`).
        seed: weight-initialisation and shuffling seed.
        data_seed: dataset seed.
        n_validation: validation images, evaluated after each epoch.
        mix_max: distractor weight of the data (see :func:`mobileopt_ref.data.generate_patterns`).
        noise_max: noise level of the data.
        ramp_epochs: curriculum length. Epoch ``e`` trains on data whose ``mix_max`` and
            ``noise_max`` are scaled by ``min(1, (e + 1) / (ramp_epochs + 1))``; 0 trains
            on the full difficulty from the start. MobileNetV2 from scratch sits at chance
            for a long time on the hardest images; easy ones first get it going.
        threads: TensorFlow thread count; results are bit-identical only for equal counts.
        name: a label for people; not part of what is trained.
        dataset: ``"patterns"`` (generated, the book's default) or ``"digits"``
            (scikit-learn's handwritten digits, see :func:`training_images`). For
            ``"digits"`` the curriculum and the pattern knobs (``mix_max``,
            ``noise_max``, ``ramp_epochs``, ``n_validation``) do not apply.
    """

    alpha: float = STUDENT_ALPHA
    resolution: int = 32
    epochs: int = 60
    images_per_epoch: int = 6_400
    batch_size: int = 64
    learning_rate: float = 2e-3
    bn_momentum: float = 0.9
    seed: int = 0
    data_seed: int = 0
    n_validation: int = 2_000
    mix_max: float = 0.5
    noise_max: float = 0.1
    ramp_epochs: int = 10
    threads: int = env.DEFAULT_THREADS
    name: str = "model"
    dataset: str = "patterns"

    def __post_init__(self):
        check_alpha(self.alpha)
        if self.dataset not in TRAINING_DATASETS:
            raise ValueError(
                f"dataset must be one of {', '.join(TRAINING_DATASETS)} (the offline datasets), "
                f"got {self.dataset!r}"
            )
        data.check_resolution(self.resolution)
        if isinstance(self.ramp_epochs, bool) or not isinstance(self.ramp_epochs, int) or self.ramp_epochs < 0:
            raise ValueError(f"ramp_epochs must be a non-negative integer, got {self.ramp_epochs!r}")
        for field in ("epochs", "images_per_epoch", "batch_size", "n_validation", "threads"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{field} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")

    def key(self) -> str:
        """Returns the cache key: SHA-256 of the canonical JSON of the config."""
        fields = dataclasses.asdict(self)
        fields.pop("name")
        if fields["dataset"] == "patterns":
            fields.pop("dataset")  # the keys of every model trained before the field existed
        fields["recipe_version"] = RECIPE_VERSION
        blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def entry_name(self) -> str:
        """Returns the cache directory name: ``<name>-<first 16 hex digits of key>``."""
        return f"{self.name}-{self.key()[:16]}"


TEACHER = TrainConfig(alpha=TEACHER_ALPHA, name="teacher")
"""MobileNetV2 alpha 1.0 at 32 px, 60 epochs of 6,400 fresh images (the book's teacher)."""
STUDENT = TrainConfig(alpha=STUDENT_ALPHA, name="student")
"""MobileNetV2 alpha 0.35 at 32 px, the teacher's recipe (the book's student)."""


def weights_digest(weights) -> str:
    """SHA-256 over the shapes, dtypes and bytes of a list of weight arrays.

    Two models have the same digest exactly when their weights are bit-identical.
    """
    h = hashlib.sha256()
    for w in weights:
        w = np.ascontiguousarray(w)
        h.update(f"{w.dtype.str}{w.shape}".encode())
        h.update(w.tobytes())
    return h.hexdigest()


class _EpochLog(keras.callbacks.Callback):
    """Prints one line per epoch (visible progress without a progress bar's noise)."""

    def __init__(self, name: str, epochs: int, started: float):
        super().__init__()
        self.name, self.epochs, self.started = name, epochs, started

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        print(
            f"[{self.name}] epoch {epoch + 1}/{self.epochs}  loss {logs.get('loss', 0):.3f}  "
            f"acc {logs.get('accuracy', 0):.3f}  val_acc {logs.get('val_accuracy', 0):.3f}  "
            f"({time.perf_counter() - self.started:.0f} s)",
            flush=True,
        )


def _shift(images: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Moves each image by ``(dy, dx)`` pixels, filling the uncovered border with zeros."""
    out = np.zeros_like(images)
    side = images.shape[1]
    for i, (dy, dx) in enumerate(shifts):
        out[i, max(dy, 0):side + min(dy, 0), max(dx, 0):side + min(dx, 0)] = images[
            i, max(-dy, 0):side + min(-dy, 0), max(-dx, 0):side + min(-dx, 0)
        ]
    return out


def training_images(config: TrainConfig, epoch: int, n: int, *, level: float = 1.0) -> tuple:
    """The ``n`` training images of one epoch of ``config``'s dataset.

    ``"patterns"``: ``n`` freshly generated images of the epoch, with the distractor and
    noise levels scaled by ``level`` (the curriculum). ``"digits"``: the digits training
    split (:func:`mobileopt_ref.data.load_digits`) shuffled once per pass, as many passes
    as ``n`` needs, each image moved by a random whole-pixel shift of up to
    :data:`DIGITS_MAX_SHIFT` of the side in each direction (zeros fill the border), so
    the model sees each real image many times but rarely the same pixels. The same
    ``(config.data_seed, epoch)`` always gives the same bytes.

    Args:
        config: the training config (dataset, resolution, data seed, pattern knobs); a
            config without a ``dataset`` field (:class:`mobileopt_ref.vit.ViTConfig`)
            means the patterns.
        epoch: the data epoch (non-negative integer).
        n: images to return (positive integer).
        level: curriculum level in ``[0, 1]``; ignored for digits.

    Returns:
        ``(images, labels)``: ``uint8`` ``(n, resolution, resolution, 3)`` and ``int64``
        ``(n,)``.
    """
    if getattr(config, "dataset", "patterns") == "patterns":  # a ViTConfig has no dataset
        return data.generate_patterns(
            n, config.resolution, config.data_seed, split="train", epoch=epoch,
            mix_max=level * config.mix_max, noise_max=level * config.noise_max,
        )
    train = data.load_digits(config.resolution, seed=config.data_seed).train
    rng = np.random.default_rng([config.data_seed, epoch, 1])
    passes = -(-n // len(train))
    order = np.concatenate([rng.permutation(len(train)) for _ in range(passes)])[:n]
    limit = round(DIGITS_MAX_SHIFT * config.resolution)
    shifts = rng.integers(-limit, limit + 1, size=(n, 2))
    return _shift(train.images[order], shifts), train.labels[order]


def evaluation_images(config: TrainConfig, split: str, n: int | None = None) -> tuple:
    """The validation or test images of ``config``'s dataset.

    ``"patterns"``: ``n`` generated images of the split (``config.n_validation`` by
    default), at full difficulty. ``"digits"``: the fixed split of
    :func:`mobileopt_ref.data.load_digits` (1,258 training, 179 validation and 360 test images), its first
    ``n`` images if ``n`` is given.

    Args:
        config: the training config.
        split: ``"validation"`` or ``"test"``.
        n: image count (positive), or ``None``.

    Returns:
        ``(images, labels)`` as in :func:`training_images`.

    Raises:
        ValueError: for another split name.
    """
    if split not in ("validation", "test"):
        raise ValueError(f"split must be 'validation' or 'test', got {split!r}")
    if getattr(config, "dataset", "patterns") == "patterns":  # a ViTConfig has no dataset
        return data.generate_patterns(
            config.n_validation if n is None else n, config.resolution, config.data_seed,
            split=split, mix_max=config.mix_max, noise_max=config.noise_max,
        )
    part = getattr(data.load_digits(config.resolution, seed=config.data_seed), split)
    return part.images[:n], part.labels[:n]


def _compile_for(model, config: TrainConfig, learning_rate: float, total_steps: int):
    """Compiles with Adam, cosine-decayed learning rate and cross-entropy on logits.

    Returns the preprocessed validation split ``(x_val, y_val)`` of ``config``.
    """
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x_val, y_val = evaluation_images(config, "validation")
    return data.preprocess(x_val), y_val


def _fit_epoch(model, x, y, epoch: int, config: TrainConfig, validation, callbacks, history: dict) -> None:
    """Trains one epoch on ``uint8`` images ``x`` and appends its metrics to ``history``."""
    with native_stderr_captured():  # tf.data's C++ notices on fd 2
        result = model.fit(
            data.preprocess(x),
            y,
            batch_size=config.batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=False,  # the images are freshly drawn in random order already
            validation_data=validation,
            validation_batch_size=256,
            verbose=0,
            callbacks=callbacks,
        )
    for metric, values in result.history.items():
        history.setdefault(metric, []).extend(float(v) for v in values)


def train(config: TrainConfig, verbose: bool = True, *, wrap=None):
    """Trains a MobileNetV2 from scratch, deterministically.

    Every epoch draws ``config.images_per_epoch`` fresh images (generated data costs
    nothing to renew, and fresh samples keep the model from memorising). The optimizer
    is Adam with a cosine-decayed learning rate over all steps; the loss is
    cross-entropy on logits.

    Args:
        config: the training config.
        verbose: print one progress line per epoch.
        wrap: optional ``wrap(model)`` returning the Keras model that is actually fitted
            around the freshly built one, such as a distiller that trains it on a
            teacher's outputs (:func:`mobileopt_ref.distillation.make_distiller`). The
            seeds, initial weights, data and schedule are those of plain training.

    Returns:
        ``(model, record)``: the trained model and a dict with the history, the
        training time and the machine card.
    """
    env.configure_threads(config.threads)
    env.seed_everything(config.seed)
    model = build_mobilenet_v2(config.alpha, config.resolution, bn_momentum=config.bn_momentum)
    fitted = model if wrap is None else wrap(model)
    steps_per_epoch = config.images_per_epoch // config.batch_size
    x_val, y_val = _compile_for(fitted, config, config.learning_rate, steps_per_epoch * config.epochs)
    history: dict = {}
    started = time.perf_counter()
    log = _EpochLog(config.name, config.epochs, started)
    for epoch in range(config.epochs):
        level = min(1.0, (epoch + 1) / (config.ramp_epochs + 1))
        x, y = training_images(config, epoch, steps_per_epoch * config.batch_size, level=level)
        _fit_epoch(fitted, x, y, epoch, config, (x_val, y_val), [log] if verbose else [], history)
    seconds = time.perf_counter() - started
    record = {
        "config": dataclasses.asdict(config),
        "key": config.key(),
        "history": history,
        "train_seconds": seconds,
        "images_per_second": config.epochs * steps_per_epoch * config.batch_size / seconds,
        "machine": dataclasses.asdict(env.machine_card(config.threads)),
    }
    return model, record


def fine_tune(
    model,
    config: TrainConfig,
    *,
    epochs: int,
    learning_rate: float,
    first_epoch: int | None = None,
    callbacks=None,
    verbose: bool = True,
) -> dict:
    """Continues training a model (quantization-aware, pruned, ...) on fresh images.

    Used after a model has been wrapped by tfmot (``quantize_model``,
    ``prune_low_magnitude``): it recompiles the model with Adam and a cosine-decayed
    learning rate ``lr_t = lr * (1 + cos(pi * t / T)) / 2`` over the ``T`` fine-tuning
    steps, and trains on images drawn at full difficulty (no ramp). The images of epoch
    ``first_epoch + i`` are new ones: by default ``first_epoch = config.epochs``, past
    every epoch the model was trained on.

    Args:
        model: a compiled or uncompiled ``tf_keras`` model with logits output.
        config: the config the model was trained with (data, batch size, seeds, threads).
        epochs: fine-tuning epochs of ``config.images_per_epoch`` images (positive).
        learning_rate: initial learning rate (positive).
        first_epoch: data epoch of the first fine-tuning epoch.
        callbacks: extra Keras callbacks (tfmot's pruning step callback, for example).
        verbose: print one line per epoch.

    Returns:
        The history, ``{metric: [value per epoch]}`` with ``loss``, ``accuracy`` and the
        validation metrics, plus ``"seconds"``: the wall time of the fine-tuning.

    Raises:
        ValueError: for a non-positive epoch count or learning rate.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
    env.configure_threads(config.threads)
    env.seed_everything(config.seed)
    first_epoch = config.epochs if first_epoch is None else first_epoch
    steps_per_epoch = config.images_per_epoch // config.batch_size
    x_val, y_val = _compile_for(model, config, learning_rate, steps_per_epoch * epochs)
    started = time.perf_counter()
    log = _EpochLog(f"{config.name} fine-tune", epochs, started)
    history: dict = {}
    for epoch in range(epochs):
        x, y = training_images(config, first_epoch + epoch, steps_per_epoch * config.batch_size)
        extra = ([log] if verbose else []) + list(callbacks or [])
        _fit_epoch(model, x, y, epoch, config, (x_val, y_val), extra, history)
    history["seconds"] = time.perf_counter() - started
    return history


def fine_tune_record(config: TrainConfig, recipe, key: str, history: dict) -> dict:
    """The cache record of a model fine-tuned from ``config``'s trained model by ``recipe``.

    Args:
        config: the base model's config.
        recipe: a dataclass (a pruning or QAT recipe), stored as a dict.
        key: the entry's key.
        history: what :func:`fine_tune` returned.

    Returns:
        ``{"recipe", "base", "key", "history", "train_seconds", "machine"}``: the history
        without its wall time, which goes to ``train_seconds`` (s), and the machine card.
    """
    return {
        "recipe": dataclasses.asdict(recipe),
        "base": config.entry_name(),
        "key": key,
        "history": {k: v for k, v in history.items() if k != "seconds"},
        "train_seconds": history["seconds"],
        "machine": dataclasses.asdict(env.machine_card(config.threads)),
    }


def default_cache_dir() -> Path:
    """Returns the model cache directory.

    In order: the environment variable ``MOBILEOPT_CACHE_DIR``; the ``cache/`` folder of
    the book's checkout when the current directory lies inside one (found by its
    ``_toc.yml``), which holds the shipped weights; ``~/.cache/mobileopt_ref``.
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    root = checkout_root()
    return root / "cache" if root is not None else Path.home() / ".cache" / "mobileopt_ref"


def checkout_root() -> Path | None:
    """The book's checkout that holds the current directory (found by its ``_toc.yml`` and
    ``src/mobileopt_ref``), or ``None`` outside one."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "src" / "mobileopt_ref").is_dir():
            return folder
    return None


class CacheError(Exception):
    """A cache entry is missing, partial or corrupt."""


def _read_entry(path: Path, key: str, build):
    """Loads and verifies one cache entry; raises :class:`CacheError` if unusable.

    ``key`` is the key the entry must have been made for; ``build()`` returns the
    untrained model the stored weights are set into.
    """
    meta_path, weights_path = path / _META_FILE, path / _WEIGHTS_FILE
    if not meta_path.is_file() or not weights_path.is_file():
        raise CacheError(f"{path.name}: missing {_META_FILE} or {_WEIGHTS_FILE}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        with np.load(weights_path, allow_pickle=False) as npz:
            weights = [npz[f"w{i:04d}"] for i in range(len(npz.files))]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise CacheError(f"{path.name}: unreadable ({type(err).__name__}: {err})") from err
    if meta.get("key") != key:
        raise CacheError(f"{path.name}: made for another config")
    digest = weights_digest(weights)
    if digest != meta.get("weights_sha256"):
        raise CacheError(f"{path.name}: weights do not match their recorded SHA-256")
    model = build()
    try:
        model.set_weights(weights)
    except ValueError as err:
        raise CacheError(f"{path.name}: weights do not fit the model ({err})") from err
    return model, meta


def _replace_folder(path: Path, fill) -> None:
    """Writes a cache folder atomically: ``fill(tmp)`` fills a temporary folder, one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a cache entry is ordinary data
    try:
        fill(tmp)
        if path.exists():
            # A corrupt entry is moved aside first; rename over a non-empty folder fails.
            stale = path.with_name(f".{path.name}.stale-{os.getpid()}")
            path.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_entry(path: Path, model, record: dict) -> dict:
    """Writes a cache entry (weights and meta) atomically."""
    weights = model.get_weights()
    meta = dict(record, weights_sha256=weights_digest(weights), format=1)

    def fill(tmp: Path) -> None:
        np.savez_compressed(tmp / _WEIGHTS_FILE, **{f"w{i:04d}": w for i, w in enumerate(weights)})
        (tmp / _META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")

    _replace_folder(path, fill)
    return meta


def load_or_make(
    entry_name: str,
    key: str,
    build,
    make,
    cache_dir: str | os.PathLike | None = None,
    *,
    retrain: bool | None = None,
    verbose: bool = True,
):
    """Returns a cached model, or makes it and caches it: the cache behind every model.

    A valid entry ``cache_dir/entry_name`` made for ``key`` (its weights match their
    recorded SHA-256) is loaded into ``build()``. A missing, partial or corrupt entry is
    reported and rebuilt with ``make()``. With ``retrain=True`` (or the environment
    variable ``MOBILEOPT_RETRAIN=1``) the model is always made anew and the entry replaced.

    Args:
        entry_name: the entry's folder name.
        key: what the entry must have been made for (a hash of everything that
            determines the weights).
        build: ``build()`` returns the untrained model of the right architecture.
        make: ``make()`` returns ``(model, record)``; the record must hold ``"key"``.
        cache_dir: cache folder; :func:`default_cache_dir` if omitted.
        retrain: force ``make()``; ``None`` reads ``MOBILEOPT_RETRAIN``.
        verbose: print where the model came from.

    Returns:
        ``(model, meta)``: the model and its cache record (``record`` plus
        ``weights_sha256`` and ``"source"``: ``"cache"`` or ``"trained"``).
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if retrain is None:
        retrain = os.environ.get(RETRAIN_ENV, "") not in ("", "0")
    if not retrain:
        cached = _load_entry(cache_dir / entry_name, key, build)
        if cached is not None:
            if verbose:
                print(f"loaded {entry_name.rsplit('-', 1)[0]} from cache entry {entry_name}")
            return cached
    model, record = make()
    if record.get("key") != key:
        raise ValueError(f"make() returned a record for key {record.get('key')!r}, expected {key!r}")
    meta = _write_entry(cache_dir / entry_name, model, record)
    return model, dict(meta, source="trained")


def load_entry(entry_name: str, key: str, build, cache_dir: str | os.PathLike | None = None):
    """Loads the verified cache entry ``entry_name`` made for ``key``, or returns ``None``.

    The generic form of :func:`load_cached` (see :func:`load_or_make` for the arguments):
    an absent entry returns ``None`` silently, a partial or corrupt one returns ``None``
    and says why on stderr. Nothing is trained.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return _load_entry(cache_dir / entry_name, key, build)


def _load_entry(path: Path, key: str, build):
    if not path.exists():
        return None
    try:
        model, meta = _read_entry(path, key, build)
    except CacheError as err:
        print(f"cache entry unusable, retraining: {err}", file=sys.stderr)
        return None
    return model, dict(meta, source="cache")


_RECORD_FILE = "record.json"


def _record_digest(record: dict) -> str:
    blob = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def load_or_measure(
    entry_name: str,
    key: str,
    measure,
    cache_dir: str | os.PathLike | None = None,
    *,
    retrain: bool | None = None,
    verbose: bool = True,
) -> dict:
    """Returns a cached measurement, or makes it and caches it (no weights kept).

    For results whose models are too many to ship (a hyper-parameter sweep, say): the
    entry ``cache_dir/entry_name/record.json`` holds the record that ``measure()``
    returned and the SHA-256 of its canonical JSON, verified when loaded. A missing,
    unreadable, altered or mismatched entry is reported and measured anew; with
    ``retrain=True`` (or ``MOBILEOPT_RETRAIN=1``) it always is.

    Args:
        entry_name: the entry's folder name.
        key: what the record must have been made for.
        measure: ``measure()`` returns a JSON-serialisable dict with ``"key"``.
        cache_dir: cache folder; :func:`default_cache_dir` if omitted.
        retrain: force ``measure()``; ``None`` reads ``MOBILEOPT_RETRAIN``.
        verbose: print where the record came from.

    Returns:
        The record, plus ``"source"``: ``"cache"`` or ``"trained"``.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if retrain is None:
        retrain = os.environ.get(RETRAIN_ENV, "") not in ("", "0")
    path = cache_dir / entry_name
    if not retrain and path.exists():
        try:
            stored = json.loads((path / _RECORD_FILE).read_text(encoding="utf-8"))
            record = stored["record"]
            if record.get("key") != key:
                raise CacheError(f"{entry_name}: made for another config")
            if _record_digest(record) != stored.get("sha256"):
                raise CacheError(f"{entry_name}: record does not match its recorded SHA-256")
            if verbose:
                print(f"loaded {entry_name.rsplit('-', 1)[0]} from cache entry {entry_name}")
            return dict(record, source="cache")
        except (OSError, ValueError, KeyError, TypeError, CacheError) as err:
            print(f"cache entry unusable, measuring again: {err}", file=sys.stderr)
    record = measure()
    if record.get("key") != key:
        raise ValueError(f"measure() returned a record for key {record.get('key')!r}, expected {key!r}")
    record = json.loads(json.dumps(record))  # what is stored is exactly what is returned
    text = json.dumps({"record": record, "sha256": _record_digest(record)}, indent=1, sort_keys=True)
    _replace_folder(path, lambda tmp: (tmp / _RECORD_FILE).write_text(text, encoding="utf-8"))
    return dict(record, source="trained")


def _builder(config: TrainConfig):
    return lambda: build_mobilenet_v2(config.alpha, config.resolution, bn_momentum=config.bn_momentum)


def load_or_train(
    config: TrainConfig,
    cache_dir: str | os.PathLike | None = None,
    *,
    retrain: bool | None = None,
    verbose: bool = True,
):
    """Returns the trained model for ``config``, from the cache or by training it.

    A valid cache entry (its weights match their recorded SHA-256) is loaded. A missing,
    partial or corrupt entry is reported and rebuilt by :func:`train`. With
    ``retrain=True`` (or the environment variable ``MOBILEOPT_RETRAIN=1``) the model is
    always trained anew and the entry replaced.

    Args:
        config: the training config.
        cache_dir: cache folder; :func:`default_cache_dir` if omitted.
        retrain: force training; ``None`` reads ``MOBILEOPT_RETRAIN``.
        verbose: print what happens and the training progress.

    Returns:
        ``(model, meta)``: the model and its cache record (config, history, training
        time, machine card, ``weights_sha256``, and ``"source"``: ``"cache"`` or
        ``"trained"``).
    """
    return load_or_make(
        config.entry_name(), config.key(), _builder(config), lambda: train(config, verbose=verbose),
        cache_dir, retrain=retrain, verbose=verbose,
    )


def load_cached(config: TrainConfig, cache_dir: str | os.PathLike | None = None):
    """Loads the verified cache entry of ``config``, or returns ``None``.

    An absent entry returns ``None`` silently; a partial or corrupt one returns ``None``
    and says why on stderr. Nothing is trained.

    Returns:
        ``(model, meta)`` with ``meta["source"] == "cache"``, or ``None``.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return _load_entry(cache_dir / config.entry_name(), config.key(), _builder(config))


def check_keras_model(model, caller: str):
    """Returns ``model`` if it is a built tf_keras model with one input; refuses it otherwise.

    Args:
        model: what a public function was given as a Keras model.
        caller: the function's name, for the message.

    Raises:
        ValueError: for anything that is not a tf_keras model (``.tflite`` bytes, a path, a
            Keras 3 model), or a model with several inputs.
    """
    if not (hasattr(model, "layers") and hasattr(model, "weights") and hasattr(model, "input_shape")):
        hint = " (a .tflite file: use the litert functions)" if isinstance(model, (bytes, bytearray, str)) else ""
        raise ValueError(f"{caller} needs a tf_keras model (from mobileopt_ref._keras), got {type(model).__name__}{hint}")
    if isinstance(model.input_shape, list):
        raise ValueError(f"{caller} takes models with one input; this one has {len(model.input_shape)}")
    return model


def predict_logits(model, images, batch_size: int = 256) -> np.ndarray:
    """Returns a Keras model's outputs for ``uint8`` images, in inference mode.

    Calls the model directly batch by batch (``Model.predict`` would build a tf.data
    pipeline for every call, which is slower for small arrays and noisier in logs).

    Args:
        model: a tf_keras classifier with one image input.
        images: ``(n, h, w, c)`` pixels, whole numbers 0-255
            (:func:`mobileopt_ref.data.check_pixels`), ``h, w, c`` as the model's input.
        batch_size: images per call (positive).

    Returns:
        ``float32`` array ``(n, outputs)``.

    Raises:
        ValueError: for a model that is not a tf_keras model, images that are not pixels
            or not of the model's input shape, or a bad batch size.
    """
    check_keras_model(model, "predict_logits")
    images = data.check_pixels(images)
    expected = tuple(model.input_shape[1:])
    if images.ndim != len(expected) + 1 or any(e is not None and e != d for e, d in zip(expected, images.shape[1:])) \
            or len(images) == 0:
        raise ValueError(f"images must have shape (n>0, {', '.join(map(str, expected))}) for this model, got {images.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    outputs = [
        model(data.preprocess(images[start : start + batch_size]), training=False).numpy()
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(outputs)


def evaluate_keras(model, images, labels, batch_size: int = 256) -> float:
    """Returns the top-1 accuracy of a logits model on ``uint8`` images.

    Args:
        model, images, batch_size: as in :func:`predict_logits`.
        labels: integer labels ``(n,)``, each in ``[0, outputs)``.

    Raises:
        ValueError: as :func:`predict_logits`; for labels that are not one integer per image
            or fall outside the model's classes.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, one per image: got {labels.dtype} {labels.shape} for "
                         f"{len(images)} images")
    logits = predict_logits(model, images, batch_size)
    if len(labels) and (labels.min() < 0 or labels.max() >= logits.shape[-1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[-1]}) for this model's {logits.shape[-1]} outputs, "
                         f"got {labels.min()}..{labels.max()}")
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def count_params(model) -> int:
    """Returns the number of parameters (trainable and not) of a Keras model.

    Raises:
        ValueError: for anything that is not a tf_keras model.
    """
    check_keras_model(model, "count_params")
    return int(sum(np.prod(w.shape) for w in model.weights))
