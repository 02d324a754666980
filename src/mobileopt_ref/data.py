"""Offline image data: procedurally generated pattern images, handwritten digits, and one online dataset.

The book must run with no network, so its default dataset is drawn by code. Each of the
ten classes is a family of textures (stripes, rings, a checkerboard, ...) with random
frequency, orientation, centre, colours and noise. To make the task hard enough that a
trained MobileNetV2 is not perfect, every image also blends in a *distractor* pattern of
another class with a random weight ``m`` drawn from ``[0, mix_max]``:

    P = (1 - m) * P_label + m * P_distractor

When ``m`` approaches 0.5 both patterns are equally strong and the label is genuinely
hard to read, so accuracy saturates below 100 % and the losses that compression causes
stay visible. Pixels are rendered as ``bg + (fg - bg) * (0.5 + 0.5 * contrast * P)``
plus Gaussian noise, and stored as ``uint8``.

The same ``(seed, split, epoch, n, resolution)`` always gives identical bytes. Patterns
are defined on the square ``[-1, 1]^2``, so the same seed at another resolution draws
the same scenes more or less finely.

Explained in notebooks/00_baseline.ipynb.

The second offline dataset is real: the 1,797 handwritten digits that ship inside
scikit-learn (:func:`load_digits`), upsampled to the book's input size. ``tf_flowers``
(:func:`load_tf_flowers`) is for readers who are online.

Example:
    >>> from mobileopt_ref import data
    >>> x, y = data.generate_patterns(8, resolution=32, seed=0)
    >>> x.shape, x.dtype, y.shape
    ((8, 32, 32, 3), dtype('uint8'), (8,))
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

CLASS_NAMES = (
    "horizontal stripes",
    "vertical stripes",
    "diagonal stripes",
    "antidiagonal stripes",
    "checkers",
    "dots",
    "grid",
    "rings",
    "blobs",
    "interference",
)
"""Names of the ten pattern classes, indexed by label."""

NUM_CLASSES = len(CLASS_NAMES)
MIN_RESOLUTION = 32
MAX_RESOLUTION = 224
DATASET_NAMES = ("patterns", "digits", "tf_flowers")
"""Datasets :func:`load_dataset` knows. ``patterns`` is the offline default; ``digits``
is real and offline; ``tf_flowers`` needs a network connection."""

DIGIT_CLASS_NAMES = tuple(str(d) for d in range(10))
"""Names of the ten digit classes, indexed by label."""

DIGITS_SPLIT = {"train": 0.7, "validation": 0.1, "test": 0.2}
"""Share of each digit class that goes to each split of :func:`load_digits`."""

_SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}
# Images are rendered in chunks so that memory stays bounded at 224 px; the chunk size
# is fixed because the noise stream is drawn chunk by chunk.
_CHUNK = 256


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of a dataset.

    Attributes:
        images: ``uint8`` array of shape ``(n, resolution, resolution, 3)``.
        labels: ``int64`` array of shape ``(n,)`` with values in ``[0, num_classes)``.
    """

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Train, validation and test splits plus what they were made from.

    Attributes:
        name: dataset name, one of :data:`DATASET_NAMES`.
        resolution: image side in pixels.
        class_names: label names, indexed by label.
        train: the fixed training split (training may also draw fresh samples per epoch
            with :func:`generate_patterns`).
        validation: the validation split.
        test: the test split.
        seed: the seed everything was drawn from.
    """

    name: str
    resolution: int
    class_names: tuple
    train: Split
    validation: Split
    test: Split
    seed: int


def check_resolution(resolution) -> int:
    """Validates an image side length and returns it as an ``int``.

    MobileNetV2 (``include_top=True``) needs at least 32 x 32 inputs; above 224 px the
    generated patterns carry no more detail, so larger sides are refused.

    Raises:
        ValueError: if ``resolution`` is not an integer in ``[32, 224]``.
    """
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
        raise ValueError(
            f"resolution must be an integer number of pixels in [{MIN_RESOLUTION}, "
            f"{MAX_RESOLUTION}], got {resolution!r}"
        )
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise ValueError(
            f"resolution must be in [{MIN_RESOLUTION}, {MAX_RESOLUTION}] pixels "
            f"(MobileNetV2 needs at least {MIN_RESOLUTION}), got {resolution}"
        )
    return int(resolution)


def _check_count(name: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def _check_unit_interval(name: str, value: float, upper: float = 1.0) -> float:
    value = float(value)
    if not (0.0 <= value <= upper) or math.isnan(value):
        raise ValueError(f"{name} must be in [0, {upper}], got {value}")
    return value


# Stripe classes differ only in orientation: the base angle of each, jittered by up to
# +-15 degrees. Other classes take any orientation.
_STRIPE_ANGLES = {0: 0.0, 1: np.pi / 2, 2: np.pi / 4, 3: 3 * np.pi / 4}
_STRIPE_JITTER = np.pi / 12


def _pattern(kind: int, u, v, r, p):
    """Evaluates pattern family ``kind`` on rotated, centred coordinates.

    ``u, v`` are the rotated coordinates, ``r`` the distance from the centre, ``p`` a
    dict of per-image parameters broadcastable to the image grid. Returns values in
    [-1, 1]. Blobs (kind 8) are drawn by :func:`_render_field` itself.
    """
    f = p["freq"]
    tau = 2.0 * np.pi
    if kind in _STRIPE_ANGLES:  # stripes across v, so running along u
        return np.sin(tau * f * v + p["phase"])
    if kind == 4:  # checkers (slightly softened squares)
        return np.tanh(4.0 * np.sin(np.pi * f * u + p["phase"]) * np.sin(np.pi * f * v))
    if kind == 5:  # dots on a lattice
        return np.tanh(3.0 * (np.cos(tau * 0.8 * f * u) + np.cos(tau * 0.8 * f * v) - 1.0))
    if kind == 6:  # grid of thin lines
        line = np.maximum(np.cos(tau * 0.7 * f * u), np.cos(tau * 0.7 * f * v))
        return np.tanh(6.0 * (line - 0.75))
    if kind == 7:  # concentric rings
        return np.sin(tau * f * r + p["phase"])
    if kind == 9:  # interference: four plane waves in random directions
        acc = 0.0
        for k in range(4):
            direction = p["wave_dir"][:, k, None, None]
            acc = acc + np.sin(
                tau * 1.5 * f * (np.cos(direction) * u + np.sin(direction) * v) + k * p["phase"]
            )
        return np.tanh(acc)
    raise ValueError(f"unknown pattern kind {kind}")


def _draw_params(rng: np.random.Generator, n: int) -> dict:
    """Draws every per-image random parameter for ``n`` images at once."""
    params = {
        "angle": rng.uniform(0.0, 2.0 * np.pi, n),
        "cx": rng.uniform(-0.5, 0.5, n),
        "cy": rng.uniform(-0.5, 0.5, n),
        "freq": rng.uniform(1.0, 2.6, n),
        "phase": rng.uniform(0.0, 2.0 * np.pi, n),
        "arms": rng.integers(1, 4, n).astype(np.float64),
        "bx": rng.uniform(-0.8, 0.8, (n, 3)),
        "by": rng.uniform(-0.8, 0.8, (n, 3)),
        "bs": rng.uniform(0.12, 0.3, n),
        "wave_dir": rng.uniform(0.0, np.pi, (n, 4)),
    }
    # float32 halves the rendering time; the draws themselves stay float64 so the
    # random stream does not depend on this choice.
    return {k: v.astype(np.float32) for k, v in params.items()}


def _render_field(kinds, params, idx, grid):
    """Renders the pattern fields of the images ``idx`` (all of their own kind)."""
    xs, ys = grid
    field = np.empty((len(idx),) + xs.shape, dtype=np.float32)
    for kind in np.unique(kinds[idx]):
        sel = idx[kinds[idx] == kind]
        pos = np.nonzero(kinds[idx] == kind)[0]
        p = {
            k: (val[sel][:, None, None] if val.ndim == 1 else val[sel])
            for k, val in params.items()
        }
        a = p["angle"]
        if kind in _STRIPE_ANGLES:
            # Map the uniform angle in [0, 2 pi) to the class's base angle +- jitter.
            a = _STRIPE_ANGLES[int(kind)] + (a / np.pi - 1.0) * _STRIPE_JITTER
        dx, dy = xs[None] - p["cx"], ys[None] - p["cy"]
        u = np.cos(a) * dx + np.sin(a) * dy
        v = -np.sin(a) * dx + np.cos(a) * dy
        r = np.sqrt(u * u + v * v)
        if kind == 8:  # blobs: three Gaussian spots at random places
            spots = 0.0
            for k in range(3):
                du = u - params["bx"][sel][:, k, None, None]
                dv = v - params["by"][sel][:, k, None, None]
                spots = spots + np.exp(-(du * du + dv * dv) / (2.0 * p["bs"] ** 2))
            field[pos] = 2.0 * np.clip(spots, 0.0, 1.0) - 1.0
            continue
        field[pos] = _pattern(int(kind), u, v, r, p)
    return field


def generate_patterns(
    n: int,
    resolution: int = 32,
    seed: int = 0,
    *,
    split: str = "train",
    epoch: int = 0,
    mix_max: float = 0.5,
    noise_max: float = 0.1,
    return_mix: bool = False,
):
    """Draws ``n`` labelled pattern images, deterministically.

    Each image ``i`` with label ``c`` and distractor class ``d != c`` is

        P_i = (1 - m_i) * P_c + m_i * P_d,   m_i ~ U(0, mix_max)
        x_i = clip(bg + (fg - bg) * (0.5 + 0.5 * k_i * P_i) + N(0, s_i^2), 0, 1) * 255

    with contrast ``k_i ~ U(0.5, 1)``, noise level ``s_i ~ U(0, noise_max)``, a random
    background colour ``bg ~ U(0, 0.5)^3`` and a foreground ``fg = bg + a * g`` brighter
    in every channel (``a ~ U(0.35, 0.5)``, per-channel gains ``g ~ U(0.3, 1)^3``).

    Args:
        n: number of images (a positive integer). Labels are balanced: each class
            appears ``n // 10`` or ``n // 10 + 1`` times, in random order.
        resolution: image side in pixels, 32 to 224.
        seed: the dataset seed.
        split: ``"train"``, ``"validation"`` or ``"test"``; each has its own stream.
        epoch: for ``"train"``, which epoch's fresh samples to draw (0, 1, ...).
        mix_max: largest distractor weight ``m``, in ``[0, 0.5]``. 0 gives clean
            images; 0.5 makes the hardest images genuinely ambiguous.
        noise_max: largest per-image noise standard deviation, in ``[0, 1]``.
        return_mix: also return each image's distractor weight ``m``.

    Returns:
        ``(images, labels)``: ``uint8`` array ``(n, resolution, resolution, 3)`` and
        ``int64`` array ``(n,)``; with ``return_mix``, ``(images, labels, mix)`` where
        ``mix`` is the ``float32`` array of the weights ``m``.

    Raises:
        ValueError: for a non-positive ``n``, a resolution outside ``[32, 224]``, an
            unknown split, a negative epoch, or a mixing or noise level out of range.
    """
    n = _check_count("n", n)
    resolution = check_resolution(resolution)
    if split not in _SPLIT_IDS:
        raise ValueError(f"split must be one of {sorted(_SPLIT_IDS)}, got {split!r}")
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
    mix_max = _check_unit_interval("mix_max", mix_max, 0.5)
    noise_max = _check_unit_interval("noise_max", noise_max)

    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_IDS[split], epoch]))
    labels = rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.int64)
    distractors = (labels + rng.integers(1, NUM_CLASSES, n)) % NUM_CLASSES
    main_params = _draw_params(rng, n)
    dist_params = _draw_params(rng, n)
    mix = rng.uniform(0.0, mix_max, n).astype(np.float32)
    contrast = rng.uniform(0.5, 1.0, n).astype(np.float32)
    noise = rng.uniform(0.0, noise_max, n).astype(np.float32)
    # Colours: a random background and a foreground brighter in every channel. Keeping
    # the pattern's polarity the same in all channels leaves colour as a nuisance that
    # does not flip the sign of the texture, which lets MobileNetV2 start learning fast.
    bg = rng.uniform(0.0, 0.5, (n, 3))
    fg = bg + rng.uniform(0.35, 0.5, (n, 1)) * rng.uniform(0.3, 1.0, (n, 3))
    fg, bg = fg.astype(np.float32), bg.astype(np.float32)

    coords = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution * 2.0 - 1.0
    grid = np.meshgrid(coords, coords, indexing="xy")
    images = np.empty((n, resolution, resolution, 3), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        idx = np.arange(start, min(start + _CHUNK, n))
        p_main = _render_field(labels, main_params, idx, grid)
        p_dist = _render_field(distractors, dist_params, idx, grid)
        m = mix[idx, None, None]
        field = (1.0 - m) * p_main + m * p_dist
        shade = 0.5 + 0.5 * contrast[idx, None, None] * field
        img = bg[idx, None, None, :] + (fg - bg)[idx, None, None, :] * shade[..., None]
        img += rng.standard_normal(img.shape, dtype=np.float32) * noise[idx, None, None, None]
        images[idx] = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    if return_mix:
        return images, labels, mix
    return images, labels


def check_pixels(images, name: str = "images") -> np.ndarray:
    """Returns ``images`` as an array after checking that they are pixels: whole numbers 0-255.

    Every function of the library that takes images takes camera pixels and
    preprocesses them itself (:func:`preprocess`). Images already scaled (to [-1, 1] by
    MobileNetV2's preprocessing, or to [0, 1]) would be scaled a second time without
    complaint, so they are refused here.

    Args:
        images: ``uint8`` array, or an integer or float array whose values are whole
            numbers in ``[0, 255]``.
        name: the argument's name, for the error message.

    Returns:
        The images as a numpy array (not copied when already one).

    Raises:
        ValueError: for non-numeric data, values outside ``[0, 255]``, or fractional values
            (the message says what the values look like and what is required).
    """
    array = np.asarray(images)
    if array.dtype == np.uint8:
        return array
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)) \
            or np.issubdtype(array.dtype, np.bool_):
        raise ValueError(f"{name} must be pixels (uint8, 0-255), got dtype {array.dtype}")
    if array.size == 0:
        return array
    low, high = float(np.min(array)), float(np.max(array))
    fractional = np.issubdtype(array.dtype, np.floating) and not np.array_equal(array, np.round(array))
    if low < 0 or high > 255 or fractional or not np.isfinite(low + high):
        hint = ""
        if np.issubdtype(array.dtype, np.floating) and low >= -1.0 and high <= 1.0:
            hint = (" These look already preprocessed (scaled to [-1, 1] or [0, 1]): pass the "
                    "original pixels; the library applies preprocess() itself.")
        raise ValueError(
            f"{name} must be pixels, whole numbers 0-255 (uint8 is best), got {array.dtype} values in "
            f"[{low:.4g}, {high:.4g}]{' with fractions' if fractional else ''}.{hint}"
        )
    return array


def preprocess(images) -> np.ndarray:
    """Maps pixels to MobileNetV2's input range: ``x / 127.5 - 1`` in [-1, 1].

    Args:
        images: pixel array, whole numbers in ``[0, 255]`` (``uint8``, or any integer or
            float dtype holding such values), any shape.

    Returns:
        ``float32`` array of the same shape.

    Raises:
        ValueError: for values that are not pixels (see :func:`check_pixels`), for
            example images already preprocessed.
    """
    return check_pixels(images).astype(np.float32) / 127.5 - 1.0


def load_dataset(
    name: str = "patterns",
    resolution: int = 32,
    *,
    n_train: int = 10_000,
    n_validation: int = 2_000,
    n_test: int = 2_000,
    seed: int = 0,
    **pattern_kwargs,
) -> Dataset:
    """Loads a dataset with train, validation and test splits.

    ``"patterns"`` (the default) is generated here, offline, by
    :func:`generate_patterns`. ``"digits"`` is scikit-learn's bundled handwritten
    digits, offline; see :func:`load_digits`. ``"tf_flowers"`` needs
    tensorflow-datasets and a network connection; see :func:`load_tf_flowers`.

    Args:
        name: one of :data:`DATASET_NAMES`.
        resolution: image side in pixels, 32 to 224.
        n_train, n_validation, n_test: split sizes (positive integers); for the real
            datasets, caps on the fixed splits.
        seed: the dataset seed.
        **pattern_kwargs: ``mix_max`` and ``noise_max`` for ``"patterns"``.

    Raises:
        ValueError: for an unknown name, bad resolution or bad split sizes.
        RuntimeError: when a real dataset cannot be fetched (for example offline).
    """
    if name not in DATASET_NAMES:
        raise ValueError(
            f"unknown dataset {name!r}; available: {', '.join(DATASET_NAMES)} "
            f"('patterns' is generated offline and is the default)"
        )
    resolution = check_resolution(resolution)
    sizes = {
        "train": _check_count("n_train", n_train),
        "validation": _check_count("n_validation", n_validation),
        "test": _check_count("n_test", n_test),
    }
    if name == "tf_flowers":
        return load_tf_flowers(resolution, seed=seed, sizes=sizes)
    if name == "digits":
        if pattern_kwargs:
            raise ValueError(
                f"{', '.join(sorted(pattern_kwargs))} only apply to the 'patterns' dataset"
            )
        return load_digits(resolution, seed=seed, sizes=sizes)
    splits = {
        split: Split(*generate_patterns(size, resolution, seed, split=split, **pattern_kwargs))
        for split, size in sizes.items()
    }
    return Dataset(name, resolution, CLASS_NAMES, seed=seed, **splits)


def resize_bilinear(images, resolution: int) -> np.ndarray:
    """Resizes square images with bilinear interpolation (half-pixel centres).

    Output pixel ``i`` samples the input at ``x = (i + 0.5) * n / resolution - 0.5``,
    clamped to ``[0, n - 1]``, and mixes its two neighbours linearly, in rows and then in
    columns: ``out = R @ image @ R.T`` with the ``(resolution, n)`` interpolation matrix
    ``R``. This is the sampling of ``tf.image.resize(..., "bilinear")``; done in float64
    numpy, the result is the same on every CPU.

    Args:
        images: array of shape ``(count, n, n)``, any real dtype.
        resolution: output side in pixels (positive).

    Returns:
        ``float64`` array of shape ``(count, resolution, resolution)``.

    Raises:
        ValueError: if ``images`` is not a stack of square images or ``resolution`` is
            not a positive integer.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or images.shape[1] != images.shape[2] or images.shape[1] == 0:
        raise ValueError(f"images must have shape (count, n, n), got {images.shape}")
    resolution = _check_count("resolution", resolution)
    n = images.shape[1]
    x = np.clip((np.arange(resolution) + 0.5) * n / resolution - 0.5, 0, n - 1)
    lo = np.floor(x).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    frac = x - lo
    interp = np.zeros((resolution, n))
    interp[np.arange(resolution), lo] += 1 - frac
    interp[np.arange(resolution), hi] += frac
    return np.einsum("ri,kij,sj->krs", interp, images, interp)


def load_digits(resolution: int = 32, *, seed: int = 0, sizes: dict | None = None) -> Dataset:
    """Loads the handwritten digits that ship with scikit-learn, offline.

    ``sklearn.datasets.load_digits``: 1,797 images of the digits 0-9, each 8 x 8 pixels
    with 17 grey levels (0-16), from the UCI "Optical Recognition of Handwritten Digits"
    set (43 writers); the data file is inside the scikit-learn wheel, so nothing is
    downloaded. Each image is scaled to 0-255, upsampled to ``resolution`` with
    :func:`resize_bilinear`, rounded to ``uint8`` and repeated on three channels (white
    strokes on black, as in the source). Each class is shuffled with ``seed`` and cut
    :data:`DIGITS_SPLIT` (70/10/20 %: 1,258, 179 and 360 images), so every split has
    every digit in proportion; the splits are disjoint and together hold every image once.

    Args:
        resolution: image side in pixels, 32 to 224.
        seed: the shuffling seed of the split.
        sizes: optional caps ``{"train": n, "validation": n, "test": n}`` on the split
            sizes, as in :func:`load_dataset`.

    Returns:
        A :class:`Dataset` named ``"digits"`` with class names ``"0"`` to ``"9"``.

    Raises:
        ValueError: for a bad resolution.
        RuntimeError: if scikit-learn is not installed (it is a dependency of the book).
    """
    resolution = check_resolution(resolution)
    try:
        from sklearn.datasets import load_digits as sk_load_digits  # noqa: PLC0415
    except ImportError as err:
        raise RuntimeError(
            "the digits dataset ships inside scikit-learn, a dependency of mobileopt-ref: "
            "pip install scikit-learn (no download is needed after that)"
        ) from err
    raw = sk_load_digits()
    grey = np.clip(np.rint(resize_bilinear(raw.images * (255.0 / 16.0), resolution)), 0, 255)
    images = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=-1)
    labels = np.asarray(raw.target, dtype=np.int64)
    rng = np.random.default_rng(seed)
    parts = {split: [] for split in DIGITS_SPLIT}
    for label in range(len(DIGIT_CLASS_NAMES)):
        idx = rng.permutation(np.flatnonzero(labels == label))
        cut1 = round(DIGITS_SPLIT["train"] * len(idx))
        cut2 = cut1 + round(DIGITS_SPLIT["validation"] * len(idx))
        for split, chunk in zip(parts, (idx[:cut1], idx[cut1:cut2], idx[cut2:])):
            parts[split].append(chunk)
    splits = {}
    for split, chunks in parts.items():
        idx = rng.permutation(np.concatenate(chunks))
        if sizes is not None:
            idx = idx[: sizes[split]]
        splits[split] = Split(images[idx], labels[idx])
    return Dataset("digits", resolution, DIGIT_CLASS_NAMES, seed=seed, **splits)


def load_tf_flowers(resolution: int = 224, *, seed: int = 0, sizes: dict | None = None) -> Dataset:
    """Loads tf_flowers (5 classes, 3,670 photos) through tensorflow-datasets.

    For readers who are online: the photos are downloaded once by tensorflow-datasets,
    resized to ``resolution`` and split 80/10/10 with a fixed seed. Offline, or without
    ``pip install tensorflow-datasets``, this raises a ``RuntimeError`` that names the
    offline datasets.

    Args:
        resolution: image side in pixels, 32 to 224.
        seed: the shuffling seed of the split.
        sizes: optional caps on the split sizes, as in :func:`load_dataset`.

    Raises:
        RuntimeError: if tensorflow-datasets is missing or the download fails.
    """
    resolution = check_resolution(resolution)
    offline_hint = (
        "The offline datasets are load_dataset('patterns') (the book's default, generated "
        "locally) and load_dataset('digits') (bundled with scikit-learn); neither downloads "
        "anything."
    )
    try:
        import tensorflow_datasets as tfds  # noqa: PLC0415 - optional dependency
    except ImportError as err:
        raise RuntimeError(
            "tf_flowers needs the optional package tensorflow-datasets "
            "(pip install 'mobileopt-ref[online]') and a network connection. " + offline_hint
        ) from err
    from mobileopt_ref._keras import tf  # noqa: PLC0415

    try:
        ds, info = tfds.load("tf_flowers", split="train", as_supervised=True, with_info=True)
    except Exception as err:  # tfds raises many kinds of network and file errors
        raise RuntimeError(
            f"could not download tf_flowers ({type(err).__name__}: {err}). " + offline_hint
        ) from err
    images, labels = [], []
    for img, label in ds:
        images.append(tf.image.resize(img, (resolution, resolution)).numpy().astype(np.uint8))
        labels.append(int(label))
    images, labels = np.stack(images), np.asarray(labels, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    images, labels = images[order], labels[order]
    n = len(labels)
    cut1, cut2 = int(0.8 * n), int(0.9 * n)
    parts = {"train": (0, cut1), "validation": (cut1, cut2), "test": (cut2, n)}
    splits = {}
    for split, (lo, hi) in parts.items():
        if sizes is not None:
            hi = min(hi, lo + sizes[split])
        splits[split] = Split(images[lo:hi], labels[lo:hi])
    names = tuple(info.features["label"].names)
    return Dataset("tf_flowers", resolution, names, seed=seed, **splits)
