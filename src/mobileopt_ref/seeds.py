"""Seeds and a real dataset: do the book's training-based comparisons survive?

The book's headline training-based comparisons (distilled student against the student
trained alone, pruned students against the fine-tuned dense control, quantization-aware
training against post-training quantization) were first made with one training seed, and each
difference was judged by an exact McNemar test on the same test images. That test answers
"do these two *trained models* differ on these images?", not "does the *method* beat the
other one?": a second seed gives another pair of models, and the gap can move by as much as
the effect. This module repeats each comparison over several seeds and judges it at the
seed level:

- per seed ``s``, both models are trained from the same initial weights (``seed=s``) and
  evaluated on the same test images: the paired difference ``d_s`` (points) and its exact
  McNemar test;
- across seeds, the mean ``d̄``, the standard deviation ``s_d`` and the Student-t interval
  ``d̄ ± t_{0.975, k-1} s_d / sqrt(k)`` of ``k`` seeds (``scipy.stats.t``), and an exact
  sign test over the test images of the difference averaged over the seeds: the method's
  effect is "higher (or lower) across seeds" when the interval excludes 0 and the images
  agree, and "inconclusive over seeds" otherwise. With ``k = 3`` seeds,
  ``t_{0.975, 2} = 4.30``: only a difference that is consistent from seed to seed passes.

The teacher stays the book's (``seed=0``): the question is the student's method, not the
teacher's luck. Seed 0 of the generated patterns is the book's own students (the shipped
model cache); seeds 1 and 2 are trained here once and ship as *records* (accuracy, the
per-image correctness the paired tests need, the weights' SHA-256, the training time and
machine), not weights: no chapter loads them, and ``mobileopt retrain-check`` re-makes them.

The same comparisons run on a real dataset that works offline, scikit-learn's bundled
handwritten digits (:func:`mobileopt_ref.data.load_digits`): :data:`SETUPS` holds both.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math

import numpy as np
from scipy import stats as _scipy_stats

from mobileopt_ref import distillation, litert, models, pruning, quantization
from mobileopt_ref import stats as _stats

SEEDS = (0, 1, 2)
"""The training seeds of every repeated comparison (seed 0 is the book's models)."""

SEEDS_VERSION = 1
"""Bumped whenever what a record measures changes (its entries are then measured anew)."""

CALIBRATION_IMAGES = 200
"""Training images (epoch 0) that calibrate post-training int8, as in the chapters."""

DIGITS_BASE = {"dataset": "digits", "epochs": 20, "images_per_epoch": 2_560, "ramp_epochs": 0}
"""The digits schedule, 20 epochs of 2,560 shifted training digits (about two passes over
the 1,258 training images per epoch) and no curriculum; the rest as the patterns' configs."""

DIGITS_TEACHER = models.TrainConfig(alpha=models.TEACHER_ALPHA, name="digits-teacher", **DIGITS_BASE)
"""The teacher (width 1.0) trained on the digits."""

DIGITS_STUDENT = models.TrainConfig(alpha=models.STUDENT_ALPHA, name="digits-student", **DIGITS_BASE)
"""The student (width 0.35) trained on the digits."""


def _digits_pruning() -> dict:
    # 40 steps per epoch (2,560 / 64): the ramp of 8 epochs ends at step 320, which tfmot
    # reaches only if masks are updated every 40 steps (50 does not divide 320).
    steps = DIGITS_STUDENT.images_per_epoch // DIGITS_STUDENT.batch_size
    return {
        name: dataclasses.replace(recipe, frequency=steps) if recipe.method in ("magnitude", "2:4") else recipe
        for name, recipe in pruning.STUDENT_RECIPES.items()
    }


@dataclasses.dataclass(frozen=True)
class Setup:
    """A dataset and the configs its comparisons are trained with.

    Attributes:
        name: ``"patterns"`` or ``"digits"``.
        teacher: the teacher's config (one seed, the book's).
        student: the student's config at seed 0; other seeds replace its ``seed``.
        n_test: test images (``None``: the whole test split).
        pruning: pruning recipes by name (:data:`mobileopt_ref.pruning.STUDENT_RECIPES`,
            with a mask-update frequency that fits the schedule).
        variants: the variants this setup trains, in training order.
    """

    name: str
    teacher: models.TrainConfig
    student: models.TrainConfig
    n_test: int | None
    pruning: dict
    variants: tuple


VARIANTS = ("alone", "ptq8", "qat8", "finetuned", "channels50", "kd", "magnitude75", "magnitude50",
            "magnitude90", "2:4", "logits")
"""Every variant a seed can train, in training order.

The student alone; its int8 file after post-training quantization (``"ptq8"``) and after
quantization-aware training (``"qat8"``); distilled with Hinton's loss (``"kd"``) or logit
matching (``"logits"``); pruned by each of :data:`mobileopt_ref.pruning.STUDENT_RECIPES`
(``"finetuned"`` is the dense control)."""

SETUPS = {
    "patterns": Setup("patterns", models.TEACHER, models.STUDENT, 2_000, pruning.STUDENT_RECIPES, VARIANTS),
    "digits": Setup("digits", DIGITS_TEACHER, DIGITS_STUDENT, None, _digits_pruning(),
                    ("alone", "ptq8", "qat8", "finetuned", "channels50", "kd", "magnitude75")),
}
"""The two datasets. The digits repeat the headline results only (int8 PTQ and QAT, 75 %
pruning, distillation, half the channels)."""


@dataclasses.dataclass(frozen=True)
class Comparison:
    """A method against its baseline, trained the same way but for the method.

    Attributes:
        name: what is compared, for tables.
        baseline: the variant it is measured against (``A``).
        variant: the method's variant (``B``); differences are ``B - A``.
        chapter: where the book makes the single-seed comparison.
    """

    name: str
    baseline: str
    variant: str
    chapter: str


COMPARISONS = (
    Comparison("distillation (Hinton) vs the student alone", "alone", "kd", "03"),
    Comparison("logit matching vs the student alone", "alone", "logits", "03"),
    Comparison("QAT int8 vs post-training int8", "ptq8", "qat8", "01"),
    Comparison("int8 post-training vs float32", "alone", "ptq8", "01"),
    Comparison("magnitude 50 % vs the fine-tuned control", "finetuned", "magnitude50", "02"),
    Comparison("magnitude 75 % vs the fine-tuned control", "finetuned", "magnitude75", "02"),
    Comparison("magnitude 90 % vs the fine-tuned control", "finetuned", "magnitude90", "02"),
    Comparison("2:4 vs the fine-tuned control", "finetuned", "2:4", "02"),
    Comparison("half the channels vs the fine-tuned control", "finetuned", "channels50", "02"),
)
"""The book's training-based comparisons, each repeated over :data:`SEEDS`."""


def _setup(setup) -> Setup:
    if isinstance(setup, Setup):
        return setup
    if setup not in SETUPS:
        raise ValueError(f"setup must be one of {', '.join(SETUPS)}, got {setup!r}")
    return SETUPS[setup]


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"a seed is a non-negative integer, got {seed!r}")
    return seed


def _check_variant(setup: Setup, variant: str) -> str:
    if variant not in setup.variants:
        raise ValueError(f"variant must be one of {', '.join(setup.variants)} for {setup.name}, got {variant!r}")
    return variant


def student_config(setup, seed: int) -> models.TrainConfig:
    """The student's config for ``seed``: the setup's student with ``seed`` replaced.

    The setup's own seed returns its config unchanged (so seed 0 of the patterns is the
    book's student and its shipped cache entries); another seed gets its own name
    (``<name>-seed<seed>``) and key.

    Raises:
        ValueError: for an unknown setup or a seed that is not a non-negative integer.
    """
    setup = _setup(setup)
    seed = _check_seed(seed)
    if seed == setup.student.seed:
        return setup.student
    return dataclasses.replace(setup.student, seed=seed, name=f"{setup.student.name}-seed{seed}")


def model_key(setup, variant: str, seed: int) -> str:
    """The cache key of the model ``variant`` of ``seed`` is measured on (SHA-256 hex)."""
    setup = _setup(setup)
    _check_variant(setup, variant)
    config = student_config(setup, seed)
    if variant == "alone":
        return config.key()
    if variant == "ptq8":
        blob = json.dumps({"ptq": "full_int8", "base": config.key(), "calibration": CALIBRATION_IMAGES},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()
    if variant == "qat8":
        return quantization.STUDENT_QAT_RECIPES["qat8"].key(config.key())
    if variant in distillation.STUDENT_RECIPES:
        return distillation.STUDENT_RECIPES[variant].key(config.key(), setup.teacher.key())
    return setup.pruning[variant].key(config.key())


def model_config(setup, variant: str, seed: int) -> dict:
    """What the model of ``variant`` and ``seed`` was made from, as plain JSON values.

    ``{"student": <its TrainConfig>}`` plus, by variant: ``"post_training"`` (the
    conversion and its calibration images) for ``"ptq8"``, ``"qat"`` (the QAT recipe)
    for ``"qat8"``, ``"teacher"`` and ``"distillation"`` (its recipe) for ``"kd"`` and
    ``"logits"``, ``"pruning"`` (its recipe) for the pruned variants. Every record
    carries it, so a record says what was trained without the library at hand;
    :func:`model_key` is the digest the cache checks.

    Raises:
        ValueError: for an unknown setup, variant or seed.
    """
    setup = _setup(setup)
    _check_variant(setup, variant)
    config = student_config(setup, seed)
    out = {"student": dataclasses.asdict(config)}
    if variant == "ptq8":
        out["post_training"] = {"conversion": "full_int8", "calibration_images": CALIBRATION_IMAGES}
    elif variant == "qat8":
        out["qat"] = dataclasses.asdict(quantization.STUDENT_QAT_RECIPES["qat8"])
    elif variant in distillation.STUDENT_RECIPES:
        out["teacher"] = dataclasses.asdict(setup.teacher)
        out["distillation"] = dataclasses.asdict(distillation.STUDENT_RECIPES[variant])
    elif variant != "alone":
        out["pruning"] = dataclasses.asdict(setup.pruning[variant])
    return json.loads(json.dumps(out))


def record_key(setup, variant: str, seed: int) -> str:
    """The key of a seed record: the model's key, the test images and :data:`SEEDS_VERSION`."""
    setup = _setup(setup)
    blob = json.dumps(
        {"setup": setup.name, "variant": variant, "model": model_key(setup, variant, seed),
         "n_test": setup.n_test, "seeds_version": SEEDS_VERSION},
        sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def entry_name(setup, variant: str, seed: int) -> str:
    """The record's cache folder: ``seeds-<setup>-<variant>-s<seed>-<16 hex digits of its key>``."""
    setup = _setup(setup)
    return f"seeds-{setup.name}-{variant.replace(':', 'by')}-s{seed}-{record_key(setup, variant, seed)[:16]}"


def pack_correct(correct) -> dict:
    """Per-image correctness as a small JSON value: ``{"n", "bits"}`` (base64 of ``np.packbits``)."""
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 1:
        raise ValueError(f"correctness must be 1-D, got shape {correct.shape}")
    return {"n": int(correct.size), "bits": base64.b64encode(np.packbits(correct).tobytes()).decode("ascii")}


def unpack_correct(packed: dict) -> np.ndarray:
    """Inverse of :func:`pack_correct`: a ``bool`` array ``(n,)``.

    Raises:
        ValueError: if the value is not a packed correctness or its bits do not cover ``n``.
    """
    try:
        n, raw = int(packed["n"]), base64.b64decode(packed["bits"], validate=True)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"not a packed correctness ({{'n', 'bits'}}): {err}") from err
    if n < 0 or len(raw) != -(-n // 8):
        raise ValueError(f"packed correctness holds {len(raw)} bytes, {n} images need {-(-n // 8)}")
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8))[:n].astype(bool)


def _model(setup: Setup, variant: str, seed: int, cache_dir, verbose: bool):
    """``(kind, model, meta)``: the ``.tflite`` file of ``variant`` (``kind`` ``"tflite"``;
    float32, or full int8 for ``"ptq8"`` and ``"qat8"``) and the cache meta of its Keras model."""
    config = student_config(setup, seed)
    if variant in ("alone", "ptq8"):
        model, meta = models.load_or_train(config, cache_dir, verbose=verbose)
    elif variant == "qat8":
        model, meta = quantization.load_or_qat(config, quantization.STUDENT_QAT_RECIPES["qat8"], cache_dir,
                                               verbose=verbose)
    elif variant in distillation.STUDENT_RECIPES:
        model, meta = distillation.load_or_distill(config, setup.teacher, distillation.STUDENT_RECIPES[variant],
                                                   cache_dir, verbose=verbose)
    else:
        model, meta = pruning.load_or_prune(config, setup.pruning[variant], cache_dir, verbose=verbose)
    if variant in ("ptq8", "qat8"):
        calibration = models.training_images(config, 0, CALIBRATION_IMAGES)[0]
        return "tflite", litert.to_tflite(model, "full_int8", representative_images=calibration), meta
    return "tflite", litert.to_tflite(model), meta


def load_or_measure(setup, variant: str, seed: int, cache_dir=None, *, retrain=None, verbose: bool = False) -> dict:
    """The record of ``variant`` trained with ``seed``: from the cache, or trained and measured.

    The model comes from the model cache or is trained (and cached) by the chapters' own
    functions (:func:`mobileopt_ref.models.load_or_train`,
    :func:`mobileopt_ref.distillation.load_or_distill`,
    :func:`mobileopt_ref.pruning.load_or_prune`,
    :func:`mobileopt_ref.quantization.load_or_qat`) and converted to the ``.tflite`` file a
    phone would run, as the chapters measure it: float32, or for ``"ptq8"`` and ``"qat8"``
    full int8 calibrated on :data:`CALIBRATION_IMAGES` training images; every file runs on
    LiteRT's default (XNNPACK) kernels. The record
    (:func:`mobileopt_ref.models.load_or_measure`) is what ships.

    Args:
        setup: a :class:`Setup` or its name in :data:`SETUPS`.
        variant: one of the setup's ``variants``.
        seed: the student's training seed.
        cache_dir: model cache folder (the models of other seeds are cached there too).
        retrain: force training and measuring; ``None`` reads ``MOBILEOPT_RETRAIN``.
        verbose: print training progress.

    Returns:
        ``{"key", "setup", "variant", "seed", "model_key", "config", "weights_sha256",
        "train_seconds", "machine", "accuracy", "correct", "source"}`` (``config`` from
        :func:`model_config`): ``accuracy`` in
        [0, 1] on the setup's test images, ``correct`` packed (:func:`unpack_correct`),
        ``train_seconds`` of the last training step (s) on ``machine``.

    Raises:
        ValueError: for an unknown setup, variant or seed.
    """
    setup = _setup(setup)
    _check_variant(setup, variant)
    config = student_config(setup, seed)
    key = record_key(setup, variant, seed)

    def measure() -> dict:
        _, tflite, meta = _model(setup, variant, seed, cache_dir, verbose)
        images, labels = models.evaluation_images(config, "test", setup.n_test)
        correct = litert.predict_tflite(tflite, images).argmax(1) == labels
        return {
            "key": key, "setup": setup.name, "variant": variant, "seed": seed,
            "model_key": model_key(setup, variant, seed), "config": model_config(setup, variant, seed),
            "weights_sha256": meta["weights_sha256"],
            "train_seconds": meta.get("train_seconds"), "machine": meta.get("machine"),
            "accuracy": float(correct.mean()), "correct": pack_correct(correct),
        }

    return models.load_or_measure(entry_name(setup, variant, seed), key, measure, cache_dir,
                                  retrain=retrain, verbose=verbose)


def teacher_record(setup, cache_dir=None, *, retrain=None, shipped_only: bool = False, verbose: bool = False):
    """The setup's teacher on its test images: ``{"key", "config", "accuracy", "correct",
    "weights_sha256", "train_seconds", "machine"}`` (one seed, the book's), from the cache or
    trained and measured.

    With ``shipped_only=True`` nothing is trained and a missing record returns ``None``.
    """
    setup = _setup(setup)
    blob = json.dumps({"setup": setup.name, "teacher": setup.teacher.key(), "n_test": setup.n_test,
                       "seeds_version": SEEDS_VERSION}, sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(blob.encode()).hexdigest()

    def measure() -> dict:
        if shipped_only:
            raise LookupError
        model, meta = models.load_or_train(setup.teacher, cache_dir, verbose=verbose)
        images, labels = models.evaluation_images(setup.teacher, "test", setup.n_test)
        correct = litert.predict_tflite(litert.to_tflite(model), images).argmax(1) == labels
        return {"key": key, "setup": setup.name, "config": {"teacher": json.loads(json.dumps(
                    dataclasses.asdict(setup.teacher)))}, "weights_sha256": meta["weights_sha256"],
                "train_seconds": meta.get("train_seconds"), "machine": meta.get("machine"),
                "accuracy": float(correct.mean()), "correct": pack_correct(correct)}

    try:
        return models.load_or_measure(f"seeds-{setup.name}-teacher-{key[:16]}", key, measure, cache_dir,
                                      retrain=retrain and not shipped_only, verbose=verbose)
    except LookupError:
        return None


def load_records(setup, seeds=SEEDS, variants=None, cache_dir=None) -> dict:
    """The shipped records of ``setup``, ``{(variant, seed): record}``, measuring nothing.

    Missing records are left out (a caller that needs them all checks the keys).
    """
    setup = _setup(setup)
    out = {}
    for variant in variants or setup.variants:
        for seed in seeds:
            def missing():
                raise LookupError
            try:
                out[variant, seed] = models.load_or_measure(
                    entry_name(setup, variant, seed), record_key(setup, variant, seed), missing, cache_dir,
                    retrain=False, verbose=False,
                )
            except LookupError:
                continue
    return out


@dataclasses.dataclass(frozen=True)
class SeedComparison:
    """A comparison repeated over seeds, with its seed-level verdict.

    Attributes:
        comparison: what was compared.
        setup: the dataset's name.
        seeds: the seeds, in order.
        deltas: ``accuracy(B) - accuracy(A)`` per seed, in points.
        tests: the exact McNemar test per seed (:func:`mobileopt_ref.stats.mcnemar`).
        mean: the mean difference over seeds (points).
        sd: its sample standard deviation over seeds (points; 0 for one seed).
        low, high: the Student-t interval of the mean at ``level`` (points; both equal
            ``mean`` when the deltas are all equal; ``nan`` for one seed).
        level: significance level.
        images_b, images_a: test images on which B (A) did better on average over the
            seeds (:func:`image_sign_test`).
        image_p: the exact sign test's p-value over those images.
        verdict: ``"higher across seeds"``, ``"lower across seeds"``, ``"inconclusive
            over seeds"`` or ``"one seed only"`` (see :func:`compare`).
    """

    comparison: Comparison
    setup: str
    seeds: tuple
    deltas: tuple
    tests: tuple
    mean: float
    sd: float
    low: float
    high: float
    level: float
    images_b: int
    images_a: int
    image_p: float
    verdict: str

    @property
    def significant_seeds(self) -> int:
        """Seeds whose own McNemar test found the difference significant, in either direction."""
        return sum(t.verdict != "not distinguishable" for t in self.tests)

    def text(self) -> str:
        """The result for prose, e.g. ``"+0.70 points (method minus baseline) on average over 3
        seeds (SD 0.35; 95 % CI -0.17 to +1.57; images: 14 better, 9 worse, exact p = 0.40):
        inconclusive over seeds"``."""
        images = f"images: {self.images_b} better, {self.images_a} worse, exact {_stats.p_text(self.image_p)}"
        if len(self.seeds) == 1:
            return f"{self.mean:+.2f} points (method minus baseline) with one seed ({images}): one seed only"
        pct = f"{100 * (1 - self.level):.0f} %"
        return (f"{self.mean:+.2f} points (method minus baseline) on average over {len(self.seeds)} seeds "
                f"(SD {self.sd:.2f}; {pct} CI {self.low:+.2f} to {self.high:+.2f}; {images}): {self.verdict}")


def seed_verdict(deltas, *, level: float = _stats.LEVEL) -> tuple:
    """Mean, SD and Student-t interval of per-seed differences, and what the interval says.

    ``d̄ ± t_{1 - level/2, k-1} s_d / sqrt(k)``; the interval is the point ``d̄`` when the
    ``k`` differences are equal (``s_d = 0``), which estimates no seed-to-seed variation
    and so decides nothing.

    Args:
        deltas: per-seed paired differences (any unit), at least one, all finite.
        level: significance level in (0, 1).

    Returns:
        ``(mean, sd, low, high, verdict)``; ``verdict`` is ``"higher across seeds"`` (the
        interval lies above 0 and ``s_d > 0``), ``"lower across seeds"``,
        ``"inconclusive over seeds"``, or ``"one seed only"`` (``low = high = nan``).

    Raises:
        ValueError: for no differences, a non-finite one, or a bad level.
    """
    level = _stats._check_level(level)
    d = np.asarray(deltas, dtype=float)
    if d.ndim != 1 or d.size == 0 or not np.all(np.isfinite(d)):
        raise ValueError(f"deltas must be a non-empty 1-D list of finite numbers, got {deltas!r}")
    mean = float(d.mean())
    if d.size == 1:
        return mean, 0.0, math.nan, math.nan, "one seed only"
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return mean, sd, mean, mean, INCONCLUSIVE
    half = float(_scipy_stats.t.ppf(1 - level / 2, d.size - 1)) * sd / math.sqrt(d.size)
    low, high = mean - half, mean + half
    word = {"above": "higher across seeds", "below": "lower across seeds"}.get(
        _stats.verdict(low, high, null=0.0), INCONCLUSIVE)
    return mean, sd, low, high, word


INCONCLUSIVE = "inconclusive over seeds"
"""The verdict of a comparison that the seeds do not decide (see :func:`compare`)."""


def image_sign_test(correct_a, correct_b) -> tuple:
    """The exact sign test over test images of a difference averaged over seeds.

    For image ``i``, ``x_i`` is the mean over the seeds of ``correct_B - correct_A``
    (each 0 or 1). If B and A were equally good on every image, ``x_i`` would be as
    likely positive as negative, so the count of positive ``x_i`` among the nonzero ones
    is ``Binomial(n, 1/2)``; the p-value is that binomial test's (``scipy.stats.binomtest``).
    Each image counts once, however many seeds agree on it. With one seed this is the
    exact McNemar test.

    Args:
        correct_a, correct_b: sequences (one per seed) of ``bool`` arrays ``(n,)`` over
            the same test images in the same order.

    Returns:
        ``(images_b, images_a, p)``: images with ``x_i > 0``, with ``x_i < 0``, and the
        two-sided exact p-value (1 when no image differs).

    Raises:
        ValueError: for no seeds, a different count of seeds for A and B, or arrays that
            do not cover the same images.
    """
    a = [np.asarray(c, dtype=bool) for c in correct_a]
    b = [np.asarray(c, dtype=bool) for c in correct_b]
    if not a or len(a) != len(b):
        raise ValueError(f"need the same number of seeds (at least one) for A and B, got {len(a)} and {len(b)}")
    shapes = {c.shape for c in a + b}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"every seed's correctness must be a 1-D array over the same images, got shapes {shapes}")
    x = np.mean([cb.astype(int) - ca.astype(int) for ca, cb in zip(a, b)], axis=0)
    images_b, images_a = int(np.sum(x > 0)), int(np.sum(x < 0))
    n = images_b + images_a
    p = 1.0 if n == 0 else float(_scipy_stats.binomtest(images_b, n, 0.5).pvalue)
    return images_b, images_a, p


def compare(records: dict, comparison: Comparison, setup, seeds=SEEDS, *, level: float = _stats.LEVEL) -> SeedComparison:
    """Judges ``comparison`` over ``seeds`` from the records of :func:`load_records`.

    Two sources of chance move a difference: the training (another seed, other models)
    and the test images (another sample of images, another count of errors). The verdict
    is "higher (lower) across seeds" only when both tests agree at ``level``: the
    Student-t interval over seeds (:func:`seed_verdict`) lies above (below) 0, and the
    exact sign test over images of the seed-averaged difference
    (:func:`image_sign_test`) finds the same direction. Otherwise it is "inconclusive over
    seeds": not shown, which is not the same as shown to be zero.

    Raises:
        KeyError: naming the first missing ``(variant, seed)`` record.
        ValueError: for a repeated seed, or if two records of one seed cover different
            test images.
    """
    setup = _setup(setup)
    seeds = tuple(seeds)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"each seed may appear once, got {seeds}")
    deltas, tests, correct_a, correct_b = [], [], [], []
    for seed in seeds:
        for variant in (comparison.baseline, comparison.variant):
            if (variant, seed) not in records:
                raise KeyError(f"no record of {variant!r} with seed {seed} for {setup.name}: "
                               f"`mobileopt seeds --dataset {setup.name} --train` makes the missing ones")
        a = unpack_correct(records[comparison.baseline, seed]["correct"])
        b = unpack_correct(records[comparison.variant, seed]["correct"])
        tests.append(_stats.mcnemar(a, b, level=level))
        deltas.append(100 * (b.mean() - a.mean()))
        correct_a.append(a)
        correct_b.append(b)
    mean, sd, low, high, word = seed_verdict(deltas, level=level)
    images_b, images_a, image_p = image_sign_test(correct_a, correct_b)
    if word in ("higher across seeds", "lower across seeds"):
        images_agree = image_p < level and (images_b > images_a) == (word == "higher across seeds")
        if not images_agree:
            word = INCONCLUSIVE
    return SeedComparison(comparison, setup.name, seeds, tuple(deltas), tuple(tests), mean, sd, low, high,
                          level, images_b, images_a, image_p, word)


def comparisons_for(setup) -> tuple:
    """The :data:`COMPARISONS` whose both variants the setup trains."""
    setup = _setup(setup)
    return tuple(c for c in COMPARISONS if c.baseline in setup.variants and c.variant in setup.variants)


def run(setup, seeds=SEEDS, variants=None, cache_dir=None, *, retrain=None, verbose: bool = False,
        progress: bool = True) -> dict:
    """Trains (or loads) and measures every variant of ``setup`` for every seed.

    Seeds run one after the other, each seed's variants in the setup's training order;
    every finished model and record is cached at once, so an interrupted run resumes where
    it stopped. Progress is shown by ``tqdm``.

    Returns:
        ``{(variant, seed): record}``.
    """
    from tqdm.auto import tqdm

    setup = _setup(setup)
    seeds = tuple(_check_seed(s) for s in seeds)
    variants = tuple(_check_variant(setup, v) for v in (variants or setup.variants))
    out = {}
    jobs = [(v, s) for s in seeds for v in variants]
    for variant, seed in tqdm(jobs, desc=f"seeds ({setup.name})", disable=not progress):
        out[variant, seed] = load_or_measure(setup, variant, seed, cache_dir, retrain=retrain, verbose=verbose)
    return out


def judge_all(setup, records: dict, seeds=SEEDS, *, level: float = _stats.LEVEL) -> list:
    """Every comparison of ``setup`` (:func:`comparisons_for`) judged over ``seeds``.

    Raises:
        KeyError: as :func:`compare`, for the first missing record.
    """
    return [compare(records, c, setup, seeds, level=level) for c in comparisons_for(setup)]


def table_rows(results: list) -> tuple:
    """``(header, rows)`` of a results table: per-seed differences and the seed-level verdict.

    Five columns, narrow enough for a book page: the comparison; every seed's difference
    B - A in points, in seed order, with its exact McNemar verdict (the p-value if
    significant at the results' level, ``n.s.`` if not); the mean with the SD over seeds
    and the Student-t interval; the sign test over images; the verdict.

    Raises:
        ValueError: for an empty list.
    """
    if not results:
        raise ValueError("no comparisons to tabulate")
    seeds = results[0].seeds
    level = f"{100 * (1 - results[0].level):.0f} %"
    header = ["comparison (B vs A)",
              f"B - A by seed ({', '.join(map(str, seeds))}), points (McNemar)",
              f"mean (SD); {level} CI over seeds", "images B / A better (sign test)", "verdict"]
    rows = []
    for r in results:
        per_seed = "; ".join(
            f"{d:+.2f} {'n.s.' if t.verdict == 'not distinguishable' else _stats.p_text(t.p_value)}"
            for d, t in zip(r.deltas, r.tests))
        interval = "-" if math.isnan(r.low) else f"{r.low:+.2f} to {r.high:+.2f}"
        sd = f"{r.sd:.2f}" if len(r.seeds) > 1 else "-"
        images = f"{r.images_b} / {r.images_a}, {_stats.p_text(r.image_p)}"
        rows.append([r.comparison.name, per_seed, f"{r.mean:+.2f} ({sd}); {interval}", images, r.verdict])
    return header, rows


CHECK_LABELS = tuple(f"seeds-{name}-s{seed}" for name in SETUPS for seed in SEEDS)
"""What ``mobileopt retrain-check`` accepts for the seed records: one label per dataset and
seed (every variant of that seed is re-made)."""


def parse_check_label(label: str) -> tuple:
    """``"seeds-digits-s1"`` -> ``("digits", 1)``.

    Raises:
        ValueError: for a label not in :data:`CHECK_LABELS`.
    """
    if label not in CHECK_LABELS:
        raise ValueError(f"unknown seed label {label!r}; choose from {', '.join(CHECK_LABELS)}")
    _, name, seed = label.split("-")
    return name, int(seed[1:])


def same_measurement(shipped: dict, fresh: dict) -> bool:
    """Whether a re-made record equals the shipped one: same weights, same per-image results."""
    return (shipped["weights_sha256"] == fresh["weights_sha256"]
            and np.array_equal(unpack_correct(shipped["correct"]), unpack_correct(fresh["correct"])))


def figure(results: list, *, title: str | None = None):
    """Each comparison's per-seed differences (grey dots) and their mean with its interval.

    The mean is green when the comparison is "higher across seeds", red when "lower",
    grey otherwise (:func:`compare`).

    Args:
        results: :class:`SeedComparison` results (:func:`judge_all`), one row each.
        title: optional axes title.

    Returns:
        The matplotlib figure (show it with :func:`mobileopt_ref.plotting.show`).

    Raises:
        ValueError: for no results.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415

    if not results:
        raise ValueError("no comparisons to draw")
    fig, ax = plt.subplots(figsize=(8.5, 0.45 * len(results) + 1.4))
    colours = {"higher across seeds": "C2", "lower across seeds": "C3"}
    for y, r in enumerate(results):
        ax.plot(r.deltas, [y] * len(r.deltas), "o", color="0.6", ms=4, label="one seed" if y == 0 else None)
        colour = colours.get(r.verdict, "0.35")
        if math.isnan(r.low):
            ax.plot(r.mean, y, "D", color=colour)
        else:
            ax.errorbar(r.mean, y, xerr=[[r.mean - r.low], [r.high - r.mean]], fmt="D", color=colour, capsize=3,
                        label=f"mean, {100 * (1 - r.level):.0f} % CI over seeds" if y == 0 else None)
    ax.axvline(0.0, color="0.3", lw=0.8, ls=":")
    ax.set_yticks(range(len(results)), [r.comparison.name for r in results], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy difference, method minus baseline (points)")
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
