"""The case study: the whole chain, every variant, one table, the article's claims judged.

The source article's case study takes an image model "from 100 MB to 10 MB, 10 s to 1 s,
500 MB to 100 MB and 50 J to 5 J". This module builds the book's version of that chain
and measures it end to end:

    float teacher (width 1.0) -> distilled student (width 0.35, Hinton's loss)
        -> pruned (unstructured: 75 % of the weights, global magnitude; structured: half
           the hidden channels) -> int8 (quantization-aware training, or post-training)

Each step starts from the previous step's model: the pruned students are pruned from the
*distilled* student and fine-tuned (:func:`load_or_prune_distilled`), the structured one
is then fine-tuned with fake quantization (:func:`load_or_qat`). Their weights ship
in the model cache like every other trained model, so nothing is trained here unless asked.

Every variant (the chain's, and the other chapters') becomes one
:class:`mobileopt_ref.report.VariantRecord` with accuracy (and the exact McNemar test
against the teacher), file and gzip size, p50/p99 latency with intervals measured side by
side in one run, the planned and the LiteRT-real activation arena, the resident memory of a
fresh process, and the modelled energy per inference (:func:`measure_all`). The article's
claims are set beside the measured or modelled figures with a computed verdict
(:func:`judge_claims`); :func:`ablation` removes each step of the chain in turn;
:func:`pareto_front` finds the variants no other beats on accuracy, size and latency.

Run from the command line with
``mobileopt case-study``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mobileopt_ref import compute, data, distillation, energy, litert, memory, models, pruning, quantization, report, stats

KD_RECIPE = distillation.STUDENT_RECIPES["kd"]
"""The distillation step, Hinton's loss with T = 4 and alpha = 0.9 (the distillation chapter's best)."""

CHAIN_PRUNING = {
    "unstructured": pruning.STUDENT_RECIPES["global75"],
    "structured": pruning.STUDENT_RECIPES["channels50"],
}
"""The pruning step applied to the distilled student, with the pruning chapter's recipes
(75 % of the weights by global magnitude; half of every block's hidden channels) and the
same 16 fine-tuning epochs."""

CHAIN_QAT = quantization.STUDENT_QAT_RECIPES["qat8"]
"""The quantization step, the quantization chapter's 8-bit QAT recipe (2 epochs, 1e-5)."""


def distilled_key() -> str:
    """The cache key of the distilled student (student config, teacher config, recipe)."""
    return KD_RECIPE.key(models.STUDENT.key(), models.TEACHER.key())


def load_distilled(cache_dir=None, *, retrain=None, verbose: bool = False):
    """The distilled student, ``(model, meta)``, from the cache (or distilled now)."""
    return distillation.load_or_distill(models.STUDENT, models.TEACHER, KD_RECIPE, cache_dir,
                                        retrain=retrain, verbose=verbose)


def _check_kind(kind: str) -> None:
    if kind not in CHAIN_PRUNING:
        raise ValueError(f"kind must be one of {sorted(CHAIN_PRUNING)}, got {kind!r}")


def _pruned_entry(kind: str, cache_dir):
    _check_kind(kind)
    recipe = CHAIN_PRUNING[kind]
    key = recipe.key(distilled_key())
    name = f"{models.STUDENT.name}-{KD_RECIPE.name}-{recipe.name}-{key[:16]}"
    base = {}

    def distilled():
        if "model" not in base:
            base["model"] = load_distilled(cache_dir)[0]
        return base["model"]

    def build():
        if recipe.method == "channels":
            return pruning.prune_hidden_channels(distilled(), recipe.amount)[0]
        config = models.STUDENT
        return models.build_mobilenet_v2(config.alpha, config.resolution, bn_momentum=config.bn_momentum)

    return name, key, build, distilled


def load_or_prune_distilled(kind: str, cache_dir=None, *, retrain=None, verbose: bool = False):
    """The distilled student pruned by the chain's ``kind`` of pruning and fine-tuned.

    Exactly :func:`mobileopt_ref.pruning.prune_and_fine_tune` with the recipe of
    :data:`CHAIN_PRUNING`, started from the distilled student instead of the student
    trained alone; cached under ``student-kd-<recipe>-<key>``, its key the recipe's key
    over the distilled student's key.

    Args:
        kind: ``"unstructured"`` or ``"structured"``.
        cache_dir: model cache folder (default: the checkout's ``cache/``).
        retrain: force fine-tuning anew (``None`` reads ``MOBILEOPT_RETRAIN``).
        verbose: print one line per epoch when training.

    Returns:
        ``(model, meta)``.

    Raises:
        ValueError: for an unknown ``kind``.
    """
    name, key, build, distilled = _pruned_entry(kind, cache_dir)
    recipe = CHAIN_PRUNING[kind]

    def make():
        model, record = pruning.prune_and_fine_tune(distilled(), models.STUDENT, recipe, verbose=verbose)
        return model, dict(record, key=key, base=distilled_entry_name())

    return models.load_or_make(name, key, build, make, cache_dir, retrain=retrain, verbose=verbose)


def distilled_entry_name() -> str:
    """The cache folder name of the distilled student."""
    return f"{models.STUDENT.name}-{KD_RECIPE.name}-{distilled_key()[:16]}"



QAT_BASES = ("distilled, structured", "distilled", "student, structured")
"""The models the chain fine-tunes with fake quantization (the structured chain's pruned
student, the chain itself) and, for the ablation, the distilled student without pruning
and the pruned student trained without distillation."""


def _qat_base(base: str, cache_dir, loaded=None):
    """``(entry name prefix, base key, loader)`` of a model that QAT starts from."""
    if base not in QAT_BASES:
        raise ValueError(f"base must be one of {QAT_BASES}, got {base!r}")
    if base == "distilled, structured":
        name, key, _, _ = _pruned_entry("structured", cache_dir)
        prefix = name.rsplit("-", 1)[0]
    elif base == "distilled":
        prefix, key = distilled_entry_name().rsplit("-", 1)[0], distilled_key()
    else:
        recipe = CHAIN_PRUNING["structured"]
        prefix, key = f"{models.STUDENT.name}-{recipe.name}", recipe.key(models.STUDENT.key())
    return prefix, key, lambda: load_source(base, cache_dir, loaded=loaded)  # each base is a SOURCES key


def load_or_qat(base: str = "distilled, structured", cache_dir=None, *, retrain=None, verbose: bool = False,
                loaded: dict | None = None):
    """A model of the chain after 8-bit quantization-aware training (:data:`CHAIN_QAT`).

    :func:`mobileopt_ref.quantization.quantization_aware_train` on the model named by
    ``base`` (one of :data:`QAT_BASES`); the default is the chain's last step, the
    structured-pruned distilled student. Pruning by channels leaves an ordinary, thinner
    dense model, so fake quantization keeps its architecture; the zeros of unstructured
    pruning would not survive QAT's fine-tuning (tfmot's default scheme does not keep
    masks), so the unstructured chain is quantized after training instead. Cached under
    ``<base entry>-qat8-<key>``, the key being the recipe's key over the base's key.

    Args:
        base: one of :data:`QAT_BASES`.
        cache_dir: model cache folder.
        retrain: force training anew (``None`` reads ``MOBILEOPT_RETRAIN``).
        verbose: print one line per epoch when training.
        loaded: ``{source: model}`` already loaded (see :func:`load_source`): the base is
            taken from it, or loaded and added to it, instead of loaded again.

    Returns:
        ``(qat_model, meta)``; convert it with ``litert.to_tflite(model, "full_int8", ...)``.

    Raises:
        ValueError: for an unknown ``base``.
    """
    name, key, build, make = _qat_entry(base, cache_dir, loaded, verbose)
    return models.load_or_make(name, key, build, make, cache_dir, retrain=retrain, verbose=verbose)


def _qat_entry(base: str, cache_dir, loaded, verbose: bool):
    """``(entry name, key, build, make)`` of the QAT entry on ``base`` (see :func:`load_or_qat`)."""
    prefix, base_key, load_base = _qat_base(base, cache_dir, loaded)
    key = CHAIN_QAT.key(base_key)
    name = f"{prefix}-{CHAIN_QAT.name}-{key[:16]}"
    held = {}

    def base_model():
        if "model" not in held:
            held["model"] = load_base()
        return held["model"]

    def build():
        from mobileopt_ref._keras import keras  # noqa: PLC0415

        return CHAIN_QAT.wrap(keras.models.clone_model(base_model()))

    def make():
        model, record = quantization.quantization_aware_train(base_model(), models.STUDENT, CHAIN_QAT, verbose=verbose)
        return model, dict(record, key=key, base=prefix)

    return name, key, build, make


CHAIN_ENTRIES = {
    "student-kd-global75": ("pruned", "unstructured"),
    "student-kd-channels50": ("pruned", "structured"),
    "student-kd-channels50-qat8": ("qat", "distilled, structured"),
    "student-kd-qat8": ("qat", "distilled"),
    "student-channels50-qat8": ("qat", "student, structured"),
}
"""The model-cache entries only the case study trains, by label (the folder name without
its key): the distilled student pruned both ways, and 8-bit QAT on three bases."""


def load_chain_entry(label: str, cache_dir=None, *, retrain=None, shipped_only: bool = False,
                     verbose: bool = False):
    """One of :data:`CHAIN_ENTRIES`: loaded, or trained from the entries it starts from.

    Args:
        label: a key of :data:`CHAIN_ENTRIES`.
        cache_dir: model cache folder.
        retrain: train anew even if cached (``None`` reads ``MOBILEOPT_RETRAIN``).
        shipped_only: load only; return ``None`` instead of training when the entry is
            absent or corrupt.
        verbose: print one line per epoch when training.

    Returns:
        ``(model, meta)``, or ``None`` (``shipped_only`` and no valid entry).

    Raises:
        ValueError: for an unknown label.
    """
    if label not in CHAIN_ENTRIES:
        raise ValueError(f"unknown case-study entry {label!r}; choose from {', '.join(CHAIN_ENTRIES)}")
    kind, arg = CHAIN_ENTRIES[label]
    if kind == "pruned":
        name, key, build, _ = _pruned_entry(arg, cache_dir)
        if shipped_only:
            return models.load_entry(name, key, build, cache_dir)
        return load_or_prune_distilled(arg, cache_dir, retrain=retrain, verbose=verbose)
    name, key, build, make = _qat_entry(arg, cache_dir, None, verbose)
    if shipped_only:
        return models.load_entry(name, key, build, cache_dir)
    return models.load_or_make(name, key, build, make, cache_dir, retrain=retrain, verbose=verbose)


# ---------------------------------------------------------------------------------------
# The variants: the chain, its ablation, and the other chapters' models
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model variant of the case study: which trained model, converted how.

    Attributes:
        name: its label in every table (unique).
        source: the trained model, a key of :data:`SOURCES`.
        precision: ``"float32"``, ``"int8 PTQ"`` (full-integer, calibrated after training)
            or ``"int8 QAT"`` (full-integer, from a quantization-aware model).
        group: ``"chain"``, ``"ablation"`` or ``"chapters"`` (the other chapters' variants).
        steps: the chain's steps it went through, a subset of :data:`STEPS` in order.
    """

    name: str
    source: str
    precision: str
    group: str
    steps: tuple = ()


STEPS = ("distillation", "pruning", "quantization")
"""The steps of the chain after the teacher, in order."""

PRECISIONS = ("float32", "int8 PTQ", "int8 QAT")

SOURCES = {
    "teacher": "the float teacher, MobileNetV2 width 1.0",
    "student": "the student (width 0.35) trained alone",
    "distilled": "the student distilled from the teacher (Hinton's loss, T = 4, alpha = 0.9)",
    "distilled, unstructured": "the distilled student, 75 % of its weights pruned (global magnitude), fine-tuned",
    "distilled, structured": "the distilled student, half of every block's hidden channels removed, fine-tuned",
    "distilled, structured, QAT": "the structured-pruned distilled student after 8-bit QAT",
    "distilled, QAT": "the distilled student after 8-bit QAT (no pruning)",
    "student, structured, QAT": "the student trained alone, half its hidden channels removed, after 8-bit QAT",
    "student, unstructured": "the student trained alone, 75 % of its weights pruned (global magnitude)",
    "student, structured": "the student trained alone, half its hidden channels removed",
    "student, magnitude90": "the student trained alone, 90 % of every layer's weights pruned",
    "student, 2:4": "the student trained alone, 2:4 pruned",
    "student, QAT": "the student trained alone after 8-bit QAT",
    "student, logits": "the student distilled by logit matching (the article's loss)",
}
"""Every trained model the case study converts, by key (all shipped in the model cache)."""

CHAIN_END = "KD+channels+QAT int8"
"""The end of the chain (teacher, distilled, structured pruning, QAT int8)."""

CHAIN_END_UNSTRUCTURED = "KD+sparse75+PTQ int8"
"""The end of the unstructured chain (teacher, distilled, 75 % sparse, int8 after training)."""

TEACHER = "teacher f32"
"""The baseline every variant is compared with."""

VARIANTS = (
    Variant(TEACHER, "teacher", "float32", "chain"),
    Variant("KD f32", "distilled", "float32", "chain", ("distillation",)),
    Variant("KD+channels f32", "distilled, structured", "float32", "chain", ("distillation", "pruning")),
    Variant(CHAIN_END, "distilled, structured, QAT", "int8 QAT", "chain", STEPS),
    Variant("KD+sparse75 f32", "distilled, unstructured", "float32", "chain", ("distillation", "pruning")),
    Variant(CHAIN_END_UNSTRUCTURED, "distilled, unstructured", "int8 PTQ", "chain", STEPS),
    Variant("channels+QAT int8", "student, structured, QAT", "int8 QAT", "ablation", ("pruning", "quantization")),
    Variant("KD+QAT int8", "distilled, QAT", "int8 QAT", "ablation", ("distillation", "quantization")),
    Variant("KD+channels+PTQ int8", "distilled, structured", "int8 PTQ", "ablation", STEPS),
    Variant("sparse75+PTQ int8", "student, unstructured", "int8 PTQ", "ablation", ("pruning", "quantization")),
    Variant("KD+PTQ int8", "distilled", "int8 PTQ", "ablation", ("distillation", "quantization")),
    Variant("teacher PTQ int8", "teacher", "int8 PTQ", "chapters", ("quantization",)),
    Variant("student f32", "student", "float32", "chapters"),
    Variant("student PTQ int8", "student", "int8 PTQ", "chapters", ("quantization",)),
    Variant("student QAT int8", "student, QAT", "int8 QAT", "chapters", ("quantization",)),
    Variant("student sparse75 f32", "student, unstructured", "float32", "chapters", ("pruning",)),
    Variant("student sparse90 f32", "student, magnitude90", "float32", "chapters", ("pruning",)),
    Variant("student 2:4 f32", "student, 2:4", "float32", "chapters", ("pruning",)),
    Variant("student channels f32", "student, structured", "float32", "chapters", ("pruning",)),
    Variant("logit-matching KD f32", "student, logits", "float32", "chapters", ("distillation",)),
)
"""Every variant of the case study in table order.

The chain, structured and unstructured; the ablation's variants, each a chain with one
step removed or replaced; and the other chapters' variants (the student trained alone,
quantized, pruned; the article's logit-matching distillation)."""

ABLATIONS = {
    "structured": {"full chain": CHAIN_END, "distillation": "channels+QAT int8", "pruning": "KD+QAT int8",
                   "quantization": "KD+channels f32", "QAT (PTQ instead)": "KD+channels+PTQ int8"},
    "unstructured": {"full chain": CHAIN_END_UNSTRUCTURED, "distillation": "sparse75+PTQ int8",
                     "pruning": "KD+PTQ int8", "quantization": "KD+sparse75 f32"},
}
"""For each chain its full variant, and for each step the variant without that step.

For ``"QAT (PTQ instead)"`` the variant has post-training quantization in place of QAT."""

QUICK = (TEACHER, "KD f32", "KD+channels f32", CHAIN_END, "KD+channels+PTQ int8")
"""The cheapest useful subset, the structured chain step by step (and its end converted
after training, which is what is rebuilt at 224 px)."""

AT_224 = (TEACHER, "KD+channels+PTQ int8", CHAIN_END_UNSTRUCTURED)
"""The variants rebuilt at 224 px, the teacher and the two ends of the chain (the QAT file's
operators and sizes are those of the PTQ file, which is what is converted at 224 px). The
chain's intermediate steps are measured at 32 px only: at 224 px each variant costs a
network rebuilt and converted, a fresh process and slow timed runs, and the claims and the
thermal model need only the two ends."""


def variant(name: str) -> Variant:
    """The :class:`Variant` called ``name``.

    Raises:
        ValueError: for a name not in :data:`VARIANTS` (the error lists them).
    """
    for v in VARIANTS:
        if v.name == name:
            return v
    raise ValueError(f"unknown variant {name!r}; choose from: {', '.join(v.name for v in VARIANTS)}")


def load_source(source: str, cache_dir=None, *, loaded: dict | None = None):
    """The trained Keras model of one of :data:`SOURCES` (from the model cache).

    Args:
        source: a key of :data:`SOURCES`.
        cache_dir: model cache folder.
        loaded: ``{source: model}`` of models already loaded: a model found there is
            returned as it is, one loaded here is added (the QAT models' bases too, so a
            base is loaded once).

    Raises:
        ValueError: for an unknown source.
    """
    if loaded is not None and source in loaded:
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; choose from: {', '.join(SOURCES)}")
        return loaded[source]
    recipes = pruning.STUDENT_RECIPES
    loaders = {
        "teacher": lambda: models.load_or_train(models.TEACHER, cache_dir, verbose=False)[0],
        "student": lambda: models.load_or_train(models.STUDENT, cache_dir, verbose=False)[0],
        "distilled": lambda: load_distilled(cache_dir)[0],
        "distilled, unstructured": lambda: load_or_prune_distilled("unstructured", cache_dir)[0],
        "distilled, structured": lambda: load_or_prune_distilled("structured", cache_dir)[0],
        "distilled, structured, QAT": lambda: load_or_qat("distilled, structured", cache_dir, loaded=loaded)[0],
        "distilled, QAT": lambda: load_or_qat("distilled", cache_dir, loaded=loaded)[0],
        "student, structured, QAT": lambda: load_or_qat("student, structured", cache_dir, loaded=loaded)[0],
        "student, unstructured": lambda: pruning.load_or_prune(models.STUDENT, recipes["global75"], cache_dir,
                                                               verbose=False)[0],
        "student, structured": lambda: pruning.load_or_prune(models.STUDENT, recipes["channels50"], cache_dir,
                                                             verbose=False)[0],
        "student, magnitude90": lambda: pruning.load_or_prune(models.STUDENT, recipes["magnitude90"], cache_dir,
                                                              verbose=False)[0],
        "student, 2:4": lambda: pruning.load_or_prune(models.STUDENT, recipes["2:4"], cache_dir, verbose=False)[0],
        "student, QAT": lambda: quantization.load_or_qat(models.STUDENT, quantization.STUDENT_QAT_RECIPES["qat8"],
                                                         cache_dir, verbose=False)[0],
        "student, logits": lambda: distillation.load_or_distill(models.STUDENT, models.TEACHER,
                                                                distillation.STUDENT_RECIPES["logits"], cache_dir,
                                                                verbose=False)[0],
    }
    if source not in loaders:
        raise ValueError(f"unknown source {source!r}; choose from: {', '.join(loaders)}")
    model = loaders[source]()
    if loaded is not None:
        loaded[source] = model
    return model


def test_split(n: int = 2_000, resolution: int | None = None):
    """The book's test images (the student's config; 2,000 by default), a :class:`mobileopt_ref.data.Split`."""
    config = models.STUDENT
    return data.Split(*data.generate_patterns(n, resolution or config.resolution, config.data_seed, split="test",
                                              mix_max=config.mix_max, noise_max=config.noise_max))


def calibration_images(n: int = 200, resolution: int | None = None) -> np.ndarray:
    """Training images for post-training calibration (the chapters' 200, epoch 0)."""
    config = models.STUDENT
    return data.generate_patterns(n, resolution or config.resolution, config.data_seed, split="train", epoch=0,
                                  mix_max=config.mix_max, noise_max=config.noise_max)[0]


def _at_resolution(model, alpha: float, resolution: int):
    """The same trained network rebuilt for ``resolution``-pixel inputs (weights copied).

    MobileNetV2's weights do not depend on the input size (convolutions, then global
    pooling), so the 32 px model's weights run unchanged at 224 px; only the shapes of
    the activations change.
    """
    wide = models.build_mobilenet_v2(alpha, resolution)
    if len(wide.get_weights()) == len(model.get_weights()) and all(
            a.shape == b.shape for a, b in zip(wide.get_weights(), model.get_weights())):
        wide.set_weights(model.get_weights())
        return wide
    thin, _ = pruning.prune_hidden_channels(wide, CHAIN_PRUNING["structured"].amount)
    if [w.shape for w in thin.get_weights()] != [w.shape for w in model.get_weights()]:
        raise ValueError("the model is neither a MobileNetV2 of the book nor one with half its hidden channels removed")
    thin.set_weights(model.get_weights())
    return thin


def build_variants(names=None, *, resolution: int = 32, calibration=None, cache_dir=None, progress=None) -> tuple:
    """Converts the named variants to ``.tflite`` (from the model cache; nothing is trained).

    Args:
        names: variant names (default: all of :data:`VARIANTS`), in the order wanted.
        resolution: 32 (the book's) or another input size: the trained weights are copied
            into the same network built for that size (the same network built for that size, the weights copied); QAT
            variants are then converted after training instead (PTQ; same operators and
            sizes), and their names say so.
        calibration: ``uint8`` images at ``resolution`` for full-integer conversion
            (default: :func:`calibration_images`, 200 at 32 px, 16 otherwise).
        cache_dir: model cache folder.
        progress: called as ``progress(name)`` after each variant.

    Returns:
        ``({name: .tflite bytes}, {name: parameter count})``.

    Raises:
        ValueError: for an unknown variant name, a repeated one, or a bad resolution.
    """
    names = [v.name for v in VARIANTS] if names is None else list(names)
    specs = [variant(n) for n in names]
    if len(set(names)) != len(names):
        raise ValueError(f"each variant once, got {names}")
    resolution = data.check_resolution(resolution)
    qat = [s.name for s in specs if s.precision == "int8 QAT"]
    if resolution != models.STUDENT.resolution and qat:
        raise ValueError(f"{qat[0]!r} is a QAT variant: at {resolution} px convert its float model after "
                         "training instead (see AT_224)")
    if calibration is None:
        calibration = calibration_images(200 if resolution == 32 else 16, resolution)
    trained, at_px, files, params = {}, {}, {}, {}
    state = _alias_state(cache_dir)
    for spec in specs:
        mode = "float32" if spec.precision == "float32" else "full_int8"
        images = None if mode == "float32" else calibration
        alias = _alias_key(state, spec.source, mode, images, resolution)
        found = _read_alias(alias)
        if found is not None:
            files[spec.name], params[spec.name] = found
        else:
            if spec.source not in at_px:
                model = load_source(spec.source, cache_dir, loaded=trained)
                if resolution != models.STUDENT.resolution:
                    alpha = models.TEACHER.alpha if spec.source == "teacher" else models.STUDENT.alpha
                    model = _at_resolution(model, alpha, resolution)
                at_px[spec.source] = model
            model = at_px[spec.source]
            files[spec.name] = litert.to_tflite(model, mode, representative_images=images)
            params[spec.name] = models.count_params(model)
            _write_alias(alias, litert.conversion_key(model, mode, representative_images=images), params[spec.name])
        if progress is not None:
            progress(spec.name)
    return files, params


_ALIAS_MODULES = ("casestudy", "models", "pruning", "quantization", "distillation", "litert", "data")
"""The library modules whose code decides which network a source is and how it converts."""


def _alias_state(cache_dir) -> str:
    """A digest of everything a source's conversion depends on besides its own settings.

    The code of :data:`_ALIAS_MODULES`, every model cache entry's record (each holds its
    key and the SHA-256 of its weights) and the TensorFlow version: retraining a model,
    changing how one is built, or another converter, changes it, and every alias made
    before is ignored.
    """
    import hashlib  # noqa: PLC0415
    import importlib  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from mobileopt_ref._keras import tf  # noqa: PLC0415

    h = hashlib.sha256(b"casestudy-alias-1\0" + tf.__version__.encode())
    for name in _ALIAS_MODULES:
        module = importlib.import_module(f"mobileopt_ref.{name}")
        h.update(Path(module.__file__).read_bytes())
    root = Path(cache_dir) if cache_dir is not None else models.default_cache_dir()
    for record in sorted(root.glob("*/record.json")):
        h.update(record.parent.name.encode() + b"\0" + record.read_bytes())
    return h.hexdigest()


def _alias_key(state: str, source: str, mode: str, images, resolution: int) -> str:
    import hashlib  # noqa: PLC0415

    h = hashlib.sha256(f"{state}\0{source}\0{mode}\0{resolution}\0".encode())
    if images is not None:
        images = np.ascontiguousarray(images)
        h.update(f"{images.dtype.str}{images.shape}".encode())
        h.update(images.tobytes())
    return h.hexdigest()


def _alias_folder(alias: str):
    return models.default_cache_dir() / "tflite" / f"alias-{alias[:32]}"


def _read_alias(alias: str):
    """``(.tflite bytes, parameter count)`` of a source converted before, or ``None``.

    An alias names the conversion cache entry (:func:`mobileopt_ref.litert.to_tflite`) that
    a source converted to with the same settings, so a case study run again loads no Keras
    model for it (loading the QAT models means rebuilding tfmot's wrappers, the slowest
    step of a run). A missing or unreadable alias, or one whose conversion entry is gone or
    fails its check, is ignored. ``MOBILEOPT_TFLITE_CACHE=0`` turns aliases off too.
    """
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415

    if os.environ.get(litert.TFLITE_CACHE_ENV, "1") == "0":
        return None
    try:
        meta = json.loads((_alias_folder(alias) / "alias.json").read_text(encoding="utf-8"))
        if meta.get("alias") != alias:
            return None
        content = litert._read_conversion(meta["conversion_key"])  # noqa: SLF001 - verified read
        params = int(meta["params"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return None if content is None else (content, params)


def _write_alias(alias: str, conversion_key, params: int) -> None:
    """Stores an alias atomically (a failure to write is not fatal)."""
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415

    if conversion_key is None or os.environ.get(litert.TFLITE_CACHE_ENV, "1") == "0":
        return
    text = json.dumps({"alias": alias, "conversion_key": conversion_key, "params": int(params)}, sort_keys=True)
    try:
        models._replace_folder(_alias_folder(alias),  # noqa: SLF001 - the cache's one writer
                               lambda tmp: (tmp / "alias.json").write_text(text, encoding="utf-8"))
    except OSError:
        pass


# ---------------------------------------------------------------------------------------
# Measuring: one record per variant, every figure
# ---------------------------------------------------------------------------------------


def arena_figures(model) -> dict:
    """The activation memory of one model, planned and real.

    Returns:
        ``{"lower_bound_bytes", "planned_arena_bytes", "arena_bytes"}``: the largest sum of
        activations alive at one operator (no plan can do better), the greedy-by-size plan
        (:func:`mobileopt_ref.memory.plan_greedy_by_size`), and the span LiteRT's own
        arena gave the activations (:func:`mobileopt_ref.memory.runtime_offsets`, built-in
        kernels).
    """
    lives = memory.tensor_lifetimes(model)
    plan = memory.plan_greedy_by_size(lives)
    offsets = memory.runtime_offsets(model)
    sizes = {life.tensor: life.size for life in lives}
    return {"lower_bound_bytes": int(memory.lower_bound(lives)), "planned_arena_bytes": int(plan.size),
            "arena_bytes": int(max(offsets[t] + sizes[t] for t in offsets))}


def peak_rss(model, *, num_threads: int = 2) -> dict:
    """Peak resident memory of a fresh process that loads and runs the model.

    :func:`mobileopt_ref.memory.measure_rss` (the file memory-mapped, XNNPACK): the largest
    of its stages, and how much of it the model added over the bare process.

    Returns:
        ``{"rss_bytes": peak, "model_rss_bytes": peak - start}``.
    """
    stages = memory.measure_rss(model, num_threads=num_threads)
    peak = max(v for k, v in stages.items() if k != "growth")
    return {"rss_bytes": int(peak), "model_rss_bytes": int(peak - stages["start"])}


def measure_all(variants: dict, split=None, *, baseline: str = TEACHER, params: dict | None = None,
                num_runs: int = 200, warmup: int = 20, rounds: int = 10, num_threads: int = 2, rss: bool = True,
                accuracy_from: dict | None = None, progress=None) -> list:
    """Measures every variant with one harness: the case study's table.

    Accuracy and latency come from :func:`mobileopt_ref.report.measure_variants` (every
    latency measured side by side, interleaved in rounds, in one run); then for each
    variant the planned and the LiteRT-real arena (:func:`arena_figures`), the peak
    resident memory of a fresh process (:func:`peak_rss`), the modelled energy of one
    inference with everything in DRAM (:func:`mobileopt_ref.energy.inference_energy`,
    Horowitz's 45 nm table) and the MACs it counts, the
    stored-zero share (:func:`mobileopt_ref.pruning.tflite_pruning_rate`), and the exact
    McNemar test of its per-image results against ``baseline``.

    Args:
        variants: ``{name: .tflite bytes}`` with ``baseline`` among them.
        split: the images to measure accuracy on, or ``None`` when the models take another
            resolution: then ``accuracy_from`` gives each variant's record measured at the
            book's resolution, and its accuracy and per-image results are copied (the
            record's ``extra["accuracy_at_px"]`` says at which resolution).
        baseline: the name of the record every McNemar test compares with.
        params: ``{name: parameter count}``.
        num_runs, warmup, rounds, num_threads: latency settings
            (:func:`mobileopt_ref.compute.compare_latency`).
        rss: measure the fresh process's memory (a subprocess per variant).
        accuracy_from: ``{name: VariantRecord}``, required when ``split`` is ``None``.
        progress: called as ``progress(step)`` after each step (``"accuracy and latency"``,
            then ``"memory: <name>"`` for each variant).

    Returns:
        A list of :class:`mobileopt_ref.report.VariantRecord`, in the order of ``variants``.

    Raises:
        ValueError: for a baseline not among the variants; ``split=None`` without a record
            in ``accuracy_from`` for every variant; and whatever
            :func:`mobileopt_ref.report.measure_variants` refuses (bad counts, invalid models).
    """
    if baseline not in variants:
        raise ValueError(f"baseline {baseline!r} is not one of the variants {sorted(variants)}")
    if split is not None:
        records = report.measure_variants(variants, split, params=params, num_runs=num_runs, warmup=warmup,
                                          rounds=rounds, num_threads=num_threads)
        at_px = int(split.images.shape[1])
    else:
        missing = [n for n in variants if n not in (accuracy_from or {})]
        if missing:
            raise ValueError(f"without a split every variant needs a record in accuracy_from; missing {missing}")
        contents = {n: litert.check_one_graph(m, "measure_all") for n, m in variants.items()}
        timings = compute.compare_latency(contents, num_runs=num_runs, warmup=warmup, rounds=rounds,
                                          num_threads=num_threads)
        records = [report.VariantRecord(name=n, tflite=c, size_bytes=len(c), gzip_bytes=litert.gzip_size(c),
                                        accuracy=accuracy_from[n].accuracy, latency=timings[n],
                                        params=(params or {}).get(n), correct=accuracy_from[n].correct)
                   for n, c in contents.items()]
        at_px = int((accuracy_from[baseline].extra or {}).get("accuracy_at_px", models.STUDENT.resolution))
    if progress is not None:
        progress("accuracy and latency")
    base = next(r for r in records if r.name == baseline)
    for r in records:
        r.extra.update(arena_figures(r.tflite))
        r.arena_bytes = r.extra["arena_bytes"]
        if rss:
            r.extra.update(peak_rss(r.tflite, num_threads=num_threads))
        e = energy.inference_energy(r.tflite)
        r.energy_mj = 1e3 * e["total_j"]
        r.extra["macs"] = int(e["macs"])
        r.extra["zero_weights"] = float(pruning.tflite_pruning_rate(r.tflite))
        r.extra["accuracy_at_px"] = at_px
        graph = litert.read_graph(r.tflite)
        r.extra["input_px"] = int(graph.tensors[graph.inputs[0]].shape[1])
        if r is not base and r.correct is not None and base.correct is not None:
            m = stats.mcnemar(base.correct, r.correct)
            r.extra.update(mcnemar_p=float(m.p_value), mcnemar_verdict=m.verdict, mcnemar_note=m.note)
        if progress is not None:
            progress(f"memory: {r.name}")
    return records


# ---------------------------------------------------------------------------------------
# The article's claims, row by row, judged
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Claim:
    """One figure of the source article's case study (section 4.3 and its results, 5.4).

    Attributes:
        key: a short identifier.
        article: the article's words, verbatim (Chinese).
        english: the same in English.
        claimed: the claimed figure: a ratio (``10.0`` for 100 MB -> 10 MB) for rule
            ``"at least"``; a percentage for ``"at most"``; unused for ``"kept"``.
        rule: ``"at least"`` (ours must reach ``claimed`` or more), ``"at most"`` (ours must
            stay at or below it), or ``"kept"`` (accuracy not significantly lower).
        unit: how ``claimed`` and the achieved figure read: ``"x"`` (a ratio), ``"%"`` or
            ``"points"``.
    """

    key: str
    article: str
    english: str
    claimed: float
    rule: str
    unit: str


CLAIMS = (
    Claim("size", "原始模型大小为100MB……模型大小减少到10MB", "model size from 100 MB to 10 MB", 10.0, "at least", "x"),
    Claim("time", "计算时间为10秒……计算时间减少到1秒", "computation time from 10 s to 1 s", 10.0, "at least", "x"),
    Claim("memory", "内存占用为500MB……内存占用减少到100MB", "memory from 500 MB to 100 MB (activation arena)",
          5.0, "at least", "x"),
    Claim("memory_rss", "内存占用为500MB……内存占用减少到100MB", "memory from 500 MB to 100 MB (whole process)",
          5.0, "at least", "x"),
    Claim("energy", "能耗为50J……能耗减少到5J", "energy from 50 J to 5 J", 10.0, "at least", "x"),
    Claim("quantization", "量化：量化误差为0.1%，模型大小减少到10MB", "quantization: quantization error 0.1 %",
          0.1, "at most", "points"),
    Claim("pruning", "剪枝：剪枝率为90%，模型大小进一步减少", "pruning: pruning rate 90 %, the model smaller still",
          10.0, "at least", "x"),
    Claim("distillation", "知识蒸馏：损失函数为0.01%，模型性能保持", "distillation: loss 0.01 %, performance kept",
          0.0, "kept", "points"),
    Claim("algorithm", "算法优化：计算时间减少到1秒，效率提高10倍", "algorithm optimization: 10 times more efficient",
          10.0, "at least", "x"),
    Claim("gpu", "硬件加速：使用GPU，计算时间进一步减少到0.1秒", "hardware acceleration: a GPU takes it to 0.1 s",
          10.0, "at least", "x"),
    Claim("memory_use", "内存分配：内存使用率降低到20%", "memory allocation: memory use down to 20 %", 20.0, "at most", "%"),
    Claim("fragmentation", "内存回收：内存碎片率降低到10%", "memory reclamation: fragmentation down to 10 %",
          10.0, "at most", "%"),
    Claim("energy_ratio", "能效优化：能耗比降低到0.1，能耗减少到5J", "energy efficiency: energy ratio down to 0.1",
          10.0, "at most", "%"),
    Claim("temperature", "散热管理：温度升高率降低到0.5%", "thermal management: temperature rise rate down to 0.5 %",
          0.5, "at most", "%"),
)
"""The article's case-study figures, in its order (the results of its section 5.4 repeat the
first four). The pruning row's 10x is what 90 % pruning would give if zeros cost nothing;
the energy ratio's 0.1 is written as 10 %."""

CLAIM_VERDICTS = ("met", "not met", "not distinguishable from the claim", "not measurable here")
"""The verdicts that claim_verdict gives.

See :func:`claim_verdict`."""


def claim_verdict(achieved, claimed: float, rule: str, *, low=None, high=None, significant_loss: bool = False) -> str:
    """Judges one achieved figure against the article's claim.

    - ``"at least"``: ``"met"`` if ``achieved >= claimed``, else ``"not met"``; with a
      confidence interval ``(low, high)``, ``"met"`` only if ``low >= claimed``, ``"not
      met"`` if ``high < claimed``, otherwise ``"not distinguishable from the claim"``.
    - ``"at most"``: the same with the inequalities reversed.
    - ``"kept"``: ``"met"`` unless ``significant_loss`` (an exact McNemar test found the
      accuracy significantly lower).

    Args:
        achieved: our figure, or ``None`` when nothing here measures or models it.
        claimed: the article's figure.
        rule: ``"at least"``, ``"at most"`` or ``"kept"``.
        low, high: an optional confidence interval of ``achieved`` (both or neither).
        significant_loss: for ``"kept"``.

    Returns:
        One of :data:`CLAIM_VERDICTS`.

    Raises:
        ValueError: for an unknown rule, or only one end of an interval.
    """
    if rule not in ("at least", "at most", "kept"):
        raise ValueError(f"rule must be 'at least', 'at most' or 'kept', got {rule!r}")
    if (low is None) != (high is None):
        raise ValueError("give both ends of the interval, or neither")
    if achieved is None:
        return "not measurable here"
    if rule == "kept":
        return "not met" if significant_loss else "met"
    if low is None:
        low = high = achieved
    if rule == "at least":
        return "met" if low >= claimed else "not met" if high < claimed else "not distinguishable from the claim"
    return "met" if high <= claimed else "not met" if low > claimed else "not distinguishable from the claim"


@dataclasses.dataclass(frozen=True)
class ClaimCheck:
    """One row of the article's table beside ours.

    Attributes:
        claim: the article's :class:`Claim`.
        ours: what the book compares (which variants, which figure).
        before, after: our figures, as text with units (``""`` where not applicable).
        achieved: our figure in the claim's unit, or ``None``.
        low, high: its 95 % interval, when it is timed.
        kind: ``"measured"``, ``"modelled"``, ``"counted"`` (exact, from the file) or
            ``"published"``.
        verdict: :func:`claim_verdict`'s verdict.
        note: what else the row should say.
    """

    claim: Claim
    ours: str
    before: str
    after: str
    achieved: float | None
    low: float | None
    high: float | None
    kind: str
    verdict: str
    note: str = ""

    def achieved_text(self) -> str:
        """The achieved figure with its interval and unit (``"n/a"`` without one)."""
        if self.achieved is None:
            return "n/a"
        unit = {"x": "x", "%": " %", "points": " points"}[self.claim.unit]
        digits = 2 if self.claim.unit != "x" or self.achieved < 100 else 0
        text = f"{self.achieved:.{digits}f}{unit}"
        if self.low is not None:
            sep = " to " if self.low < 0 else "-"
            text += f" (95 % CI {self.low:.{digits}f}{sep}{self.high:.{digits}f})"
        return text

    def claimed_text(self) -> str:
        """The claimed figure in the same unit."""
        if self.claim.rule == "kept":
            return "not significantly lower"
        unit = {"x": "x", "%": " %", "points": " points"}[self.claim.unit]
        return f"{'≥' if self.claim.rule == 'at least' else '≤'} {self.claim.claimed:g}{unit}"

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        return dict(dataclasses.asdict(self), claim=dataclasses.asdict(self.claim))

    @classmethod
    def from_dict(cls, d: dict) -> "ClaimCheck":
        """The inverse of :meth:`to_dict`."""
        return cls(**dict(d, claim=Claim(**d["claim"])))


QUANTIZATION_STEP = {CHAIN_END: "KD+channels f32", CHAIN_END_UNSTRUCTURED: "KD+sparse75 f32"}
"""The float model each chain end was quantized from."""

THERMAL_FPS = 30.0
"""Frame rate of the modelled sustained run (a camera feed; assumed)."""

THERMAL_SECONDS = 600.0
"""Length of the modelled sustained run, seconds (ten minutes; assumed)."""


def _mib(n) -> str:
    return f"{n / 2**20:.2f} MiB"


def _kib(n) -> str:
    return f"{n / 1024:.1f} KiB"


def thermal_theta(latency_ms: float, phone=energy.PHONE) -> tuple:
    """The article's temperature-rise rate for sustained inference on the modelled phone.

    :func:`mobileopt_ref.energy.sustained_inference` at :data:`THERMAL_FPS` for
    :data:`THERMAL_SECONDS` with the phone's busy power, counting only the heat inference
    adds (no idle power: the screen warms the phone whatever the model), the phone's
    processor assumed as fast as the one that measured ``latency_ms``; then
    ``theta = rise / (T_max + 273.15 K)`` (:func:`mobileopt_ref.energy.temperature_rise_rate`).

    Returns:
        ``(theta, final temperature in °C)`` (modelled).
    """
    run = energy.sustained_inference(latency_ms / 1e3, phone.busy_power_w, duration_s=THERMAL_SECONDS,
                                     fps=THERMAL_FPS, idle_power_w=0.0, dt_s=0.5, **phone.thermal())
    final = float(run.thermal.temperature_c[-1])
    return energy.temperature_rise_rate(phone.ambient_c, final, phone.throttle_c), final


def published_gpu_speedup() -> tuple:
    """The published GPU-over-CPU speed-up of MobileNetV2 on one phone.

    From :data:`mobileopt_ref.compute.PUBLISHED_LATENCIES`: Pixel 3, float32, the four-thread
    CPU against the GPU delegate (TFLite hosted models page).

    Returns:
        ``(cpu_ms, gpu_ms, source)``.
    """
    rows = [r for r in compute.PUBLISHED_LATENCIES if r["device"].startswith("Google Pixel 3")
            and r["precision"] == "float32"]
    cpu = next(r for r in rows if r["accelerator"].startswith("CPU"))
    gpu = next(r for r in rows if r["accelerator"].startswith("GPU"))
    return cpu["ms"], gpu["ms"], gpu["source"]


def judge_claims(records: list, records_224: list | None = None, *, chain: str = CHAIN_END,
                 teacher: str = TEACHER, gpu_status: str | None = None) -> list:
    """The article's case study, row by row, beside the book's figure and a computed verdict.

    Every ratio compares the float ``teacher`` with the ``chain``'s end as the article
    compares its original and optimized model (sizes, latency with its 95 % bootstrap
    interval, arena, whole-process memory, modelled energy, counted MACs); the other rows
    use the step they talk about (the quantization step's accuracy change, the 90 %
    pruned student, the distilled student against the teacher), the published GPU
    speed-up, the chain's planned arena, and the thermal model at 224 px where
    ``records_224`` is given (:func:`thermal_theta`). A row whose variants were not
    measured gets ``"not measurable here"`` and says which are missing.

    Args:
        records: the 32 px records (:func:`measure_all`).
        records_224: the 224 px records, or ``None``.
        chain, teacher: the names of the optimized and the original model.
        gpu_status: :func:`mobileopt_ref.litert.accelerator_status` of the chain here, if tried.

    Returns:
        One :class:`ClaimCheck` per :data:`CLAIMS` entry, in order.

    Raises:
        ValueError: for duplicate record names.
    """
    by = _by_name(records)
    by224 = _by_name(records_224 or [])
    claims = {c.key: c for c in CLAIMS}
    rows = []

    def add(key, ours, before, after, achieved, kind, *, low=None, high=None, note="", significant_loss=False):
        c = claims[key]
        rows.append(ClaimCheck(c, ours, before, after, achieved, low, high, kind,
                               claim_verdict(achieved, c.claimed, c.rule, low=low, high=high,
                                             significant_loss=significant_loss), note))

    def missing(key, ours, *names, kind="measured"):
        absent = [n for n in names if n not in by]
        if absent:
            add(key, ours, "", "", None, kind, note=f"not measured in this run: {', '.join(absent)}")
        return bool(absent)

    pair = f"{teacher} → {chain}"
    if not missing("size", f"file size, {pair}", teacher, chain, kind="counted"):
        t, c = by[teacher], by[chain]
        add("size", f"file size, {pair}", _mib(t.size_bytes), _mib(c.size_bytes), t.size_bytes / c.size_bytes,
            "counted", note=f"gzip: {t.gzip_bytes / c.gzip_bytes:.1f}x")
    if not missing("time", f"p50 latency, {pair}", teacher, chain):
        t, c = by[teacher], by[chain]
        if t.latency is None or c.latency is None:
            add("time", f"p50 latency, {pair}", "", "", None, "measured", note="latency not measured")
        else:
            r = stats.latency_ratio(t.latency, c.latency)
            add("time", f"p50 latency, {pair} (side by side)", f"{t.latency.p50_ms:.3f} ms",
                f"{c.latency.p50_ms:.3f} ms", r.estimate, "measured", low=r.low, high=r.high,
                note=f"p99 {t.latency.p99_ms:.3f} → {c.latency.p99_ms:.3f} ms")
    if not missing("memory", f"LiteRT arena, {pair}", teacher, chain):
        t, c = by[teacher], by[chain]
        add("memory", f"LiteRT's activation arena, {pair}", _kib(t.arena_bytes), _kib(c.arena_bytes),
            t.arena_bytes / c.arena_bytes, "measured",
            note=f"planned: {t.extra['planned_arena_bytes'] / c.extra['planned_arena_bytes']:.1f}x")
    if not missing("memory_rss", f"peak RSS of a fresh process, {pair}", teacher, chain):
        t, c = by[teacher], by[chain]
        if "rss_bytes" not in t.extra or "rss_bytes" not in c.extra:
            add("memory_rss", f"peak RSS of a fresh process, {pair}", "", "", None, "measured",
                note="process memory not measured in this run")
        else:
            add("memory_rss", f"peak RSS of a fresh process, {pair}", _mib(t.extra["rss_bytes"]),
                _mib(c.extra["rss_bytes"]), t.extra["rss_bytes"] / c.extra["rss_bytes"], "measured",
                note=f"the models' own share: {_mib(t.extra['model_rss_bytes'])} → {_mib(c.extra['model_rss_bytes'])}")
    if not missing("energy", f"energy per inference, {pair}", teacher, chain, kind="modelled"):
        t, c = by[teacher], by[chain]
        add("energy", f"energy per inference, {pair}, everything in DRAM", f"{1e3 * t.energy_mj:.1f} µJ",
            f"{1e3 * c.energy_mj:.1f} µJ", t.energy_mj / c.energy_mj, "modelled")
    fp = QUANTIZATION_STEP.get(chain)
    if fp is None or missing("quantization", "accuracy lost by the quantization step", fp, chain):
        if fp is None:
            add("quantization", "accuracy lost by the quantization step", "", "", None, "measured",
                note=f"no float model known for {chain!r}")
    else:
        f, c = by[fp], by[chain]
        note, interval = "", {}
        if f.correct is not None and c.correct is not None:
            note = f"{fp} → {chain}: {stats.mcnemar(f.correct, c.correct).note}"
            # Judged with the loss's interval (same images), as every measured figure is.
            _, low, high = stats.accuracy_difference_interval(f.correct, c.correct)
            interval = {"low": 100 * low, "high": 100 * high}
        add("quantization", f"top-1 accuracy lost, {fp} → {chain}", f"{100 * f.accuracy:.2f} %",
            f"{100 * c.accuracy:.2f} %", 100 * (f.accuracy - c.accuracy), "measured", note=note, **interval)
    if not missing("pruning", "gzip size, student f32 → student sparse90 f32", "student f32", "student sparse90 f32",
                   kind="counted"):
        d, p = by["student f32"], by["student sparse90 f32"]
        m = stats.mcnemar(d.correct, p.correct) if d.correct is not None and p.correct is not None else None
        add("pruning", "gzip size, student f32 → student sparse90 f32 (90 % of its prunable weights zero)",
            _kib(d.gzip_bytes), _kib(p.gzip_bytes), d.gzip_bytes / p.gzip_bytes, "counted",
            note=(f"file: {d.size_bytes / p.size_bytes:.2f}x; accuracy {100 * d.accuracy:.1f} → "
                  f"{100 * p.accuracy:.1f} %" + (f" ({m.note})" if m else "")))
    if not missing("distillation", f"accuracy, {teacher} → KD f32", teacher, "KD f32"):
        t, k = by[teacher], by["KD f32"]
        m = stats.mcnemar(t.correct, k.correct) if t.correct is not None and k.correct is not None else None
        add("distillation", f"top-1 accuracy, {teacher} → KD f32", f"{100 * t.accuracy:.2f} %",
            f"{100 * k.accuracy:.2f} %", 100 * (k.accuracy - t.accuracy), "measured",
            significant_loss=bool(m and m.verdict == "A better"), note=m.note if m else "no per-image results")
    if not missing("algorithm", f"MACs, {pair}", teacher, chain, kind="counted"):
        t, c = by[teacher], by[chain]
        add("algorithm", f"multiply-accumulates per inference, {pair}", f"{t.extra['macs'] / 1e6:.2f} M",
            f"{c.extra['macs'] / 1e6:.2f} M", t.extra["macs"] / c.extra["macs"], "counted")
    cpu_ms, gpu_ms, source = published_gpu_speedup()
    add("gpu", "published: MobileNetV2 on a Pixel 3, float32, 4-thread CPU → GPU delegate", f"{cpu_ms:g} ms",
        f"{gpu_ms:g} ms", cpu_ms / gpu_ms, "published",
        note=f"{source}; GPU here: {gpu_status or 'not tried'}")
    if not missing("memory_use", f"LiteRT arena as a share of the teacher's, {pair}", teacher, chain):
        t, c = by[teacher], by[chain]
        add("memory_use", f"LiteRT arena as a share of the teacher's, {pair}", _kib(t.arena_bytes),
            _kib(c.arena_bytes), 100 * c.arena_bytes / t.arena_bytes, "measured")
    if not missing("fragmentation", f"planned arena above the lower bound, {chain}", chain, kind="counted"):
        c = by[chain]
        planned, lower = c.extra["planned_arena_bytes"], c.extra["lower_bound_bytes"]
        add("fragmentation", f"share of {chain}'s planned arena no tensor needs at the peak", _kib(lower),
            _kib(planned), 100 * (planned - lower) / planned, "counted",
            note=f"LiteRT's own arena: {100 * (c.arena_bytes - lower) / c.arena_bytes:.1f} % above the lower bound")
    source224 = by224 if teacher in by224 and _chain_224(chain) in by224 else None
    if source224 is not None:
        t, c = source224[teacher], source224[_chain_224(chain)]
        add("energy_ratio", f"E_opt / E_orig at 224 px, {teacher} → {c.name}, everything in DRAM",
            f"{t.energy_mj:.2f} mJ", f"{c.energy_mj:.2f} mJ", 100 * c.energy_mj / t.energy_mj, "modelled")
    elif not missing("energy_ratio", f"E_opt / E_orig, {pair}", teacher, chain, kind="modelled"):
        t, c = by[teacher], by[chain]
        add("energy_ratio", f"E_opt / E_orig at 32 px, {pair}, everything in DRAM", f"{1e3 * t.energy_mj:.1f} µJ",
            f"{1e3 * c.energy_mj:.1f} µJ", 100 * c.energy_mj / t.energy_mj, "modelled")
    group, name = (source224, _chain_224(chain)) if source224 is not None else (by, chain)
    if name in group and teacher in group and group[name].latency is not None and group[teacher].latency is not None:
        theta, final = thermal_theta(group[name].latency.p50_ms)
        theta_t, final_t = thermal_theta(group[teacher].latency.p50_ms)
        px = group[name].extra.get("input_px", "?")
        add("temperature", f"θ after {THERMAL_SECONDS / 60:.0f} min at {THERMAL_FPS:g} fps, {name} at {px} px "
            "on the assumed phone", f"{final_t:.1f} °C ({teacher})", f"{final:.1f} °C", 100 * theta, "modelled",
            note=f"the teacher: θ = {100 * theta_t:.2f} %; only the heat inference adds; the phone assumed as "
                 "fast as this CPU")
    else:
        add("temperature", "θ of sustained inference", "", "", None, "modelled", note="latency not measured")
    return rows


def _chain_224(chain: str) -> str:
    """The name the chain's end has at 224 px (its QAT file converted after training there)."""
    return "KD+channels+PTQ int8" if chain == CHAIN_END else chain


def _by_name(records) -> dict:
    by = {}
    for r in records:
        if r.name in by:
            raise ValueError(f"two records are called {r.name!r}")
        by[r.name] = r
    return by


def verdict_counts(checks: list) -> dict:
    """``{verdict: number of rows}`` over :data:`CLAIM_VERDICTS`."""
    return {v: sum(c.verdict == v for c in checks) for v in CLAIM_VERDICTS}


# ---------------------------------------------------------------------------------------
# The ablation and the Pareto front
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AblationRow:
    """What one step of a chain buys: the chain without it, against the full chain.

    Ratios are ``without / with`` (> 1: the step makes the model that much smaller,
    faster, lighter); the accuracy change is ``with - without`` in points (> 0: the step
    adds accuracy), tested by exact McNemar on the same images.

    Attributes:
        chain: ``"structured"`` or ``"unstructured"``.
        step: the step removed (or replaced).
        variant: the variant without it.
        size, gzip, arena, energy: the ratios.
        speed: :class:`mobileopt_ref.stats.Ratio` of the p50 latencies (``None`` if not timed).
        accuracy_points: the accuracy change.
        mcnemar_note: the test's verdict and p-value (``""`` without per-image results).
    """

    chain: str
    step: str
    variant: str
    size: float
    gzip: float
    arena: float
    energy: float
    speed: object
    accuracy_points: float
    mcnemar_note: str

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        d = dataclasses.asdict(self)
        d["speed"] = None if self.speed is None else self.speed.to_dict()
        return d


def ablation(records: list) -> list:
    """Each step of each chain removed in turn (:data:`ABLATIONS`), where the variants were measured.

    Returns:
        A list of :class:`AblationRow`, chains and steps in :data:`ABLATIONS` order; a
        chain whose full variant is missing, and a step whose variant is missing, are left out.
    """
    by = _by_name(records)
    rows = []
    for chain, steps in ABLATIONS.items():
        full = by.get(steps["full chain"])
        if full is None:
            continue
        for step, name in steps.items():
            if step == "full chain" or name not in by:
                continue
            w = by[name]
            speed = stats.latency_ratio(full.latency, w.latency) if full.latency and w.latency else None
            note = ""
            if full.correct is not None and w.correct is not None:
                note = stats.mcnemar(w.correct, full.correct).note
            rows.append(AblationRow(chain, step, name, w.size_bytes / full.size_bytes, w.gzip_bytes / full.gzip_bytes,
                                    w.arena_bytes / full.arena_bytes, w.energy_mj / full.energy_mj,
                                    None if speed is None else speed.inverted().worded("slower", "faster"),
                                    100 * (full.accuracy - w.accuracy), note))
    return rows


def pareto_front(records: list) -> list:
    """The variants no other beats on accuracy, file size and p50 latency at once.

    Record ``a`` dominates ``b`` when it is at least as accurate, at most as large and at
    most as slow (median), and strictly better in one of them. Records without a latency
    are compared on accuracy and size only.

    Returns:
        The names of the non-dominated records, in their order.
    """
    def point(r):
        return (-r.accuracy, r.size_bytes, r.latency.p50_ms if r.latency is not None else 0.0)

    front = []
    for r in records:
        p = point(r)
        if not any(all(a <= b for a, b in zip(point(o), p)) and point(o) != p for o in records if o is not r):
            front.append(r.name)
    return front


def pareto_figure(records: list, front: list | None = None, *, title: str | None = None):
    """Accuracy against file size and against p50 latency, the Pareto front marked.

    Args:
        records: measured records (with latencies).
        front: names on the front (default :func:`pareto_front`).
        title: an optional figure title.

    Returns:
        A matplotlib figure (show it with :func:`mobileopt_ref.plotting.show`).
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415

    front = pareto_front(records) if front is None else front
    groups = {v.name: v.group for v in VARIANTS}
    colors = {"chain": "C0", "ablation": "C1", "chapters": "C2"}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    for ax, (label, value) in zip(axes, (("file size (KiB, log scale)", lambda r: r.size_bytes / 1024),
                                         ("p50 latency (ms, log scale)", lambda r: r.latency.p50_ms))):
        shown = [r for r in records if r.latency is not None or "size" in label]
        for group, color in colors.items():
            pts = [r for r in shown if groups.get(r.name, "chapters") == group]
            ax.scatter([value(r) for r in pts], [100 * r.accuracy for r in pts], s=28, color=color, label=group,
                       zorder=3)
        on = sorted((r for r in shown if r.name in front), key=value)
        ax.plot([value(r) for r in on], [100 * r.accuracy for r in on], color="0.3", lw=1, ls="--", zorder=2,
                label="Pareto front (all three criteria)")
        for r in on:
            ax.annotate(r.name, (value(r), 100 * r.accuracy), fontsize=7, xytext=(4, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(label)
    axes[0].set_ylabel("top-1 accuracy (%)")
    axes[0].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------


def table_rows(records: list, baseline: str = TEACHER) -> tuple:
    """The case-study table as ``(header, rows)`` of strings, for markdown or a terminal.

    Columns: variant, file and gzip size, accuracy (with the change against ``baseline``
    and its exact McNemar verdict), p50 with its 95 % interval, p99, the speed-up against
    ``baseline`` with its 95 % bootstrap interval, planned and LiteRT arena, peak RSS of a
    fresh process, modelled energy per inference.

    Raises:
        ValueError: if ``baseline`` is not the name of a record.
    """
    by = _by_name(records)
    if baseline not in by:
        raise ValueError(f"baseline {baseline!r} is not one of {sorted(by)}")
    base = by[baseline]
    header = ["variant", "size", "gzip", "accuracy", "Δ vs baseline (McNemar)", "p50 ms (95 % CI)", "p99 ms",
              "speed-up (95 % CI)", "arena planned / LiteRT", "peak RSS", "energy (modelled)"]
    rows = []
    for r in records:
        acc = f"{100 * r.accuracy:.1f} %"
        if r.extra.get("accuracy_at_px", r.extra.get("input_px")) != r.extra.get("input_px"):
            acc += f" (at {r.extra['accuracy_at_px']} px)"
        if r is base:
            delta = "baseline"
        else:
            delta = f"{100 * (r.accuracy - base.accuracy):+.1f}"
            if r.correct is not None and base.correct is not None and len(r.correct) == len(base.correct):
                delta += f" ({stats.mcnemar(base.correct, r.correct).note.replace('exact McNemar ', '')})"
        if r.latency is not None:
            lo, hi = r.latency.ci95_ms
            p50, p99 = f"{r.latency.p50_ms:.3f} ({lo:.3f}-{hi:.3f})", f"{r.latency.p99_ms:.3f}"
            speed = "1x" if r is base else (stats.latency_ratio(base.latency, r.latency).text()
                                             if base.latency is not None else "n/a")
        else:
            p50 = p99 = speed = "n/a"
        arena = (f"{_kib(r.extra['planned_arena_bytes'])} / {_kib(r.arena_bytes)}"
                 if "planned_arena_bytes" in r.extra and r.arena_bytes is not None else "n/a")
        rss = _mib(r.extra["rss_bytes"]) if "rss_bytes" in r.extra else "n/a"
        e = "n/a" if r.energy_mj is None else (f"{r.energy_mj:.2f} mJ" if r.energy_mj >= 1 else f"{1e3 * r.energy_mj:.1f} µJ")
        rows.append([r.name, _kib(r.size_bytes) if r.size_bytes < 2**20 else _mib(r.size_bytes),
                     _kib(r.gzip_bytes) if r.gzip_bytes < 2**20 else _mib(r.gzip_bytes), acc, delta, p50, p99, speed,
                     arena, rss, e])
    return header, rows


def claim_rows(checks: list) -> tuple:
    """The article's table beside ours as ``(header, rows)`` of strings."""
    header = ["article (verbatim)", "claim", "ours", "before → after", "achieved", "claimed", "kind", "verdict",
              "note"]
    rows = [[c.claim.article, c.claim.english, c.ours, f"{c.before} → {c.after}" if c.before else "",
             c.achieved_text(), c.claimed_text(), c.kind, c.verdict, c.note] for c in checks]
    return header, rows


def ablation_rows(rows: list) -> tuple:
    """The ablation as ``(header, rows)`` of strings."""
    header = ["chain", "step removed", "variant without it", "size", "gzip", "arena", "energy",
              "latency without / with (95 % CI)", "accuracy the step adds (points)"]
    out = []
    for a in rows:
        speed = "n/a" if a.speed is None else f"{a.speed.text()}, {a.speed.word}"
        out.append([a.chain, a.step, a.variant, f"{a.size:.2f}x", f"{a.gzip:.2f}x", f"{a.arena:.2f}x",
                    f"{a.energy:.2f}x", speed, f"{a.accuracy_points:+.1f} ({a.mcnemar_note})" if a.mcnemar_note
                    else f"{a.accuracy_points:+.1f}"])
    return header, out


def markdown(header: list, rows: list) -> str:
    """A markdown table (``|`` in cells escaped)."""
    def cell(s):
        return str(s).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def rich_table(header: list, rows: list, title: str | None = None):
    """A ``rich.table.Table`` of the same rows, for the terminal."""
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=title, show_lines=False)
    for i, h in enumerate(header):
        table.add_column(h, overflow="fold", no_wrap=i == 0)
    for row in rows:
        table.add_row(*map(str, row))
    return table


# ---------------------------------------------------------------------------------------
# The whole case study in one call (the ``mobileopt case-study`` command)
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class CaseStudy:
    """Everything one run of :func:`run` produced.

    Attributes:
        records: the 32 px records (:func:`measure_all`), :data:`TEACHER` first.
        records_224: the same chain rebuilt at 224 px (accuracy copied from 32 px), or ``[]``.
        claims: :func:`judge_claims`'s rows.
        ablation: :func:`ablation`'s rows.
        front: :func:`pareto_front` of ``records``.
        gpu_status: :func:`mobileopt_ref.litert.accelerator_status` of the chain's end for the GPU.
        settings: the run's settings (threads, runs, rounds, test images, variants).
    """

    records: list
    records_224: list
    claims: list
    ablation: list
    front: list
    gpu_status: str
    settings: dict

    def meta(self) -> dict:
        """What :func:`mobileopt_ref.report.records_to_json` stores beside the 32 px records."""
        return {"kind": "case study", "baseline": TEACHER, "chain": _chain_name(self.records),
                "claims": [c.to_dict() for c in self.claims], "pareto_front": list(self.front),
                "gpu_status": self.gpu_status, "settings": dict(self.settings)}

    def write(self, folder, card=None) -> list:
        """Writes ``records.json``, ``records-224.json`` (if any), ``pareto.png`` (and
        ``pareto-224.png``) into ``folder`` (created); returns the paths written."""
        import matplotlib.pyplot as plt  # noqa: PLC0415
        from pathlib import Path  # noqa: PLC0415

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = self.meta()
        if card is not None:
            meta["machine"] = {"cpu": card.cpu, "cores": card.cores, "threads": card.threads,
                               "versions": dict(card.versions)}
        written = [folder / "records.json"]
        written[0].write_text(report.records_to_json(self.records, meta) + "\n", encoding="utf-8")
        fig = pareto_figure(self.records, self.front, title="Every variant at 32 px: accuracy, size, latency")
        fig.savefig(folder / "pareto.png", dpi=120)
        plt.close(fig)
        written.append(folder / "pareto.png")
        if self.records_224:
            meta224 = {"kind": "case study at 224 px", "baseline": TEACHER,
                       "note": "accuracy measured at 32 px, the book's resolution; sizes, latency and memory at 224 px",
                       "settings": dict(self.settings)}
            path = folder / "records-224.json"
            path.write_text(report.records_to_json(self.records_224, meta224) + "\n", encoding="utf-8")
            written.append(path)
        return written


def _chain_name(records) -> str:
    names = {r.name for r in records}
    return CHAIN_END if CHAIN_END in names else CHAIN_END_UNSTRUCTURED if CHAIN_END_UNSTRUCTURED in names else ""


def run_steps(names, at_224: bool) -> int:
    """How many times :func:`run` calls its ``progress`` for these variants (for a progress bar)."""
    names = list(names)
    n224 = len([n for n in AT_224 if n in names])
    return 2 * len(names) + 1 + (2 * n224 + 1 if at_224 and n224 else 0) + 1


def run(names=None, *, num_threads: int = 2, num_runs: int = 200, rounds: int = 10, warmup: int = 20,
        n_test: int = 2_000, at_224: bool = True, runs_224: int = 30, rss: bool = True, cache_dir=None,
        progress=None) -> CaseStudy:
    """The whole case study: convert, measure, judge, ablate.

    Args:
        names: the variants (default all of :data:`VARIANTS`); must include :data:`TEACHER`.
        num_threads, num_runs, rounds, warmup: latency settings at 32 px.
        n_test: test images for accuracy (at least 1).
        at_224: also rebuild the chain at 224 px (:data:`AT_224`, those whose 32 px
            variant is measured) for size, latency and memory.
        runs_224: timed invokes per variant at 224 px.
        rss: measure each variant's fresh-process memory.
        cache_dir: model cache folder.
        progress: called as ``progress(step)`` :func:`run_steps` times.

    Returns:
        A :class:`CaseStudy`.

    Raises:
        ValueError: for an unknown variant, no teacher among them, or bad counts (all
            before anything is converted or measured).
    """
    names = [v.name for v in VARIANTS] if names is None else list(dict.fromkeys(names))
    for n in names:
        variant(n)
    if TEACHER not in names:
        raise ValueError(f"the variants must include the baseline {TEACHER!r}")
    for label, value, low in (("num_runs", num_runs, 1), ("rounds", rounds, 1), ("warmup", warmup, 0),
                              ("n_test", n_test, 1), ("runs_224", runs_224, 1), ("num_threads", num_threads, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")
    if rounds > num_runs:
        raise ValueError(f"rounds ({rounds}) cannot exceed num_runs ({num_runs})")
    tick = progress or (lambda step: None)
    split = test_split(n_test)
    files, params = build_variants(names, cache_dir=cache_dir, progress=lambda n: tick(f"convert: {n}"))
    records = measure_all(files, split, params=params, num_runs=num_runs, warmup=warmup, rounds=rounds,
                          num_threads=num_threads, rss=rss, progress=tick)
    by = _by_name(records)
    records_224 = []
    if at_224:
        names224 = [n for n in AT_224 if n in by]
        if names224:
            files224, params224 = build_variants(names224, resolution=224, cache_dir=cache_dir,
                                                 progress=lambda n: tick(f"convert at 224 px: {n}"))
            records_224 = measure_all(files224, None, params=params224, num_runs=runs_224, warmup=3,
                                      rounds=min(rounds, runs_224), num_threads=num_threads, rss=rss,
                                      accuracy_from=by, progress=lambda s: tick(f"224 px {s}"))
    chain = _chain_name(records)
    gpu = litert.accelerator_status(by[chain].tflite, "gpu") if chain else "not tried"
    claims = judge_claims(records, records_224, chain=chain or CHAIN_END, gpu_status=gpu)
    tick("claims, ablation, Pareto front")
    settings = {"threads": num_threads, "runs": num_runs, "rounds": rounds, "warmup": warmup, "test_images": n_test,
                "runs_224": runs_224 if records_224 else 0, "variants": names}
    return CaseStudy(records, records_224, claims, ablation(records), pareto_front(records), gpu, settings)
