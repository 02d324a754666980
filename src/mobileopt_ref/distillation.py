"""Knowledge distillation: a small student learns from a large teacher's outputs.

Hinton, Vinyals and Dean (2015) train the student on the teacher's *softened* class
probabilities. With logits ``z`` and a temperature ``T > 0``::

    p_i(T) = exp(z_i / T) / sum_j exp(z_j / T),

``T = 1`` is the ordinary softmax and a larger ``T`` spreads the probability over the
classes the teacher finds similar ("dark knowledge"). The distillation loss mixes the
Kullback-Leibler divergence between the teacher's and the student's softened
distributions with the ordinary cross-entropy on the true labels ``y``::

    L_KD = (1 - alpha) * CE(y, p_s(1)) + alpha * T^2 * KL(p_t(T) || p_s(T)).

The factor ``T^2`` keeps the soft term's gradients on the scale of the hard term's as
``T`` changes: ``dKL/dz_s,i = (p_s,i(T) - p_t,i(T)) / T``. (The Keras distillation
example weights the *hard* term by its ``alpha``; here ``alpha`` weights the teacher:
``alpha = 0`` is training alone, ``alpha = 1`` pure distillation.)

The source article's distillation loss matches the logits directly::

    L_D = (1 / N) sum_i (l_teacher,i - l_student,i)^2 .

Hinton et al. show the two are related: for large ``T`` and logits of zero mean,
``T^2 * KL`` has the gradient ``(z_s - z_t) / N``, half the gradient of ``L_D``, so logit
matching is the high-temperature limit of distillation (tested numerically).

The numpy functions state the math and are what the tests check; the ``tf_`` functions
compute the same losses inside a training step, and :func:`make_distiller` trains a student
with either.

Explained in notebooks/03_distillation.ipynb.

Example:
    >>> import numpy as np
    >>> from mobileopt_ref import distillation
    >>> t = np.array([[2.0, 0.0, -1.0]]); s = np.array([[1.0, 0.5, -0.5]])
    >>> round(float(distillation.logit_matching_loss(t, s)), 4)
    0.5
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

LOSSES = ("kd", "logits")
"""What :func:`make_distiller` can train with: Hinton's KD loss or the article's logit matching."""


# ---------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------


def check_temperature(temperature) -> float:
    """Validates a softmax temperature: a finite number ``T > 0``.

    Raises:
        ValueError: for ``T <= 0``, NaN, infinity or a non-number.
    """
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return float(temperature)


def check_alpha(alpha) -> float:
    """Validates the mixing weight of the distillation term: ``alpha`` in ``[0, 1]``.

    Raises:
        ValueError: for a value outside ``[0, 1]``, NaN or a non-number.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (0: labels only, 1: teacher only), got {alpha!r}")
    return float(alpha)


def _logit_pair(teacher_logits, student_logits):
    t = np.asarray(teacher_logits, dtype=np.float64)
    s = np.asarray(student_logits, dtype=np.float64)
    if t.shape != s.shape:
        raise ValueError(
            f"teacher and student logits must have the same shape (batch, classes), got "
            f"{t.shape} and {s.shape}"
        )
    if t.ndim != 2 or t.shape[1] < 2:
        raise ValueError(f"logits must have shape (batch, classes) with at least 2 classes, got {t.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(s))):
        raise ValueError("logits must be finite (no NaN or infinity)")
    return t, s


# ---------------------------------------------------------------------------------------
# The losses, in numpy (the math)
# ---------------------------------------------------------------------------------------


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Softened class probabilities ``p_i = exp(z_i / T) / sum_j exp(z_j / T)``, per row.

    Computed stably (the row maximum is subtracted first, which leaves ``p`` unchanged).
    """
    temperature = check_temperature(temperature)
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(logits, temperature: float) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def soft_kl(teacher_logits, student_logits, temperature: float) -> float:
    """``T^2 * KL(p_t(T) || p_s(T))``, averaged over the batch.

    ``KL(p || q) = sum_i p_i (log p_i - log q_i) >= 0``, zero exactly when the softened
    distributions are equal.
    """
    temperature = check_temperature(temperature)
    t, s = _logit_pair(teacher_logits, student_logits)
    log_p = _log_softmax(t, temperature)
    log_q = _log_softmax(s, temperature)
    kl = np.sum(np.exp(log_p) * (log_p - log_q), axis=-1)
    return float(temperature**2 * kl.mean())


def cross_entropy(labels, student_logits) -> float:
    """Mean cross-entropy ``-log p_s,y(1)`` of integer labels under the student's softmax.

    Raises:
        ValueError: for labels that are not integers in ``[0, classes)`` or a batch size
            that differs from the logits'.
    """
    s = np.asarray(student_logits, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 2:
        raise ValueError(f"student_logits must have shape (batch, classes), got {s.shape}")
    if y.shape != (s.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be {s.shape[0]} integers (one per row of logits), got shape {y.shape}, dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= s.shape[1]):
        raise ValueError(f"labels must be in [0, {s.shape[1]}), got values from {y.min()} to {y.max()}")
    log_q = _log_softmax(s, 1.0)
    return float(-log_q[np.arange(len(y)), y].mean())


def kd_loss(teacher_logits, student_logits, labels, temperature: float, alpha: float) -> float:
    """Hinton's distillation loss ``(1 - alpha) CE(y, p_s) + alpha T^2 KL(p_t(T) || p_s(T))``.

    Args:
        teacher_logits: ``(batch, classes)`` logits of the teacher.
        student_logits: the student's, same shape.
        labels: ``(batch,)`` integer class labels.
        temperature: ``T > 0``.
        alpha: weight of the teacher's term, in ``[0, 1]``.

    Returns:
        The batch-mean loss.

    Raises:
        ValueError: for ``T <= 0``, ``alpha`` outside ``[0, 1]``, logits of different
            shapes or bad labels.
    """
    temperature = check_temperature(temperature)
    alpha = check_alpha(alpha)
    _logit_pair(teacher_logits, student_logits)
    return (1.0 - alpha) * cross_entropy(labels, student_logits) + alpha * soft_kl(
        teacher_logits, student_logits, temperature
    )


def logit_matching_loss(teacher_logits, student_logits) -> float:
    """The source article's ``L_D = mean over batch and classes of (l_t - l_s)^2``.

    Raises:
        ValueError: for logits of different shapes.
    """
    t, s = _logit_pair(teacher_logits, student_logits)
    return float(np.mean((t - s) ** 2))


def soft_kl_gradient(teacher_logits, student_logits, temperature: float) -> np.ndarray:
    """Gradient of ``T^2 KL(p_t(T) || p_s(T))`` with respect to the student logits.

    Per example, ``d/dz_s,i = T (p_s,i(T) - p_t,i(T))`` (the softmax's Jacobian times
    ``-p_t / p_s``, summed); returned per example (not divided by the batch size).
    """
    temperature = check_temperature(temperature)
    t, s = _logit_pair(teacher_logits, student_logits)
    return temperature * (softmax(s, temperature) - softmax(t, temperature))


def logit_matching_gradient(teacher_logits, student_logits) -> np.ndarray:
    """Gradient of ``(1/N) sum_i (l_t,i - l_s,i)^2`` per example: ``(2 / N) (l_s - l_t)``."""
    t, s = _logit_pair(teacher_logits, student_logits)
    return 2.0 * (s - t) / t.shape[1]


# ---------------------------------------------------------------------------------------
# The same losses in TensorFlow, and a Keras model that trains with them
# ---------------------------------------------------------------------------------------


def tf_kd_loss(teacher_logits, student_logits, labels, temperature: float, alpha: float):
    """:func:`kd_loss` as a TensorFlow expression (batch mean), for training steps."""
    from mobileopt_ref._keras import tf  # noqa: PLC0415

    temperature = check_temperature(temperature)
    alpha = check_alpha(alpha)
    hard = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=student_logits)
    )
    log_p = tf.nn.log_softmax(teacher_logits / temperature, axis=-1)
    log_q = tf.nn.log_softmax(student_logits / temperature, axis=-1)
    soft = temperature**2 * tf.reduce_mean(tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1))
    return (1.0 - alpha) * hard + alpha * soft


def tf_logit_matching_loss(teacher_logits, student_logits):
    """:func:`logit_matching_loss` as a TensorFlow expression."""
    from mobileopt_ref._keras import tf  # noqa: PLC0415

    return tf.reduce_mean(tf.square(teacher_logits - student_logits))


def make_distiller(student, teacher, *, loss: str = "kd", temperature: float = 4.0, alpha: float = 0.5):
    """Wraps a student and a frozen teacher in a Keras model that trains the student.

    The returned model's ``train_step`` runs the teacher in inference mode, the student in
    training mode, and minimises :func:`tf_kd_loss` (``loss="kd"``) or
    :func:`tf_logit_matching_loss` (``loss="logits"``) over the student's weights only. Its
    ``test_step`` and ``call`` use the student alone, so ``evaluate`` reports the
    student's accuracy. Compile it with an optimizer and ``metrics=["accuracy"]``; the
    trained student is ``distiller.student``.

    Args:
        student: a ``tf_keras`` model returning logits.
        teacher: a trained ``tf_keras`` model returning logits of the same shape.
        loss: one of :data:`LOSSES`.
        temperature: ``T > 0`` (``"kd"`` only).
        alpha: weight of the teacher's term in ``[0, 1]`` (``"kd"`` only).

    Raises:
        ValueError: for an unknown loss, a bad temperature or alpha, or teacher and
            student outputs of different shapes.
    """
    from mobileopt_ref._keras import keras, tf  # noqa: PLC0415

    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    temperature = check_temperature(temperature)
    alpha = check_alpha(alpha)
    if tuple(teacher.output_shape) != tuple(student.output_shape):
        raise ValueError(
            f"teacher and student outputs must have the same shape, got {teacher.output_shape} "
            f"and {student.output_shape}"
        )
    if tuple(teacher.input_shape) != tuple(student.input_shape):
        raise ValueError(
            f"teacher and student must take the same input, got {teacher.input_shape} and {student.input_shape}"
        )

    class Distiller(keras.Model):
        """A student trained on a frozen teacher's outputs (see :func:`make_distiller`)."""

        def __init__(self):
            super().__init__()
            self.student, self.teacher = student, teacher
            self.loss_name, self.temperature, self.alpha = loss, temperature, alpha
            self.loss_tracker = keras.metrics.Mean(name="loss")

        def call(self, x, training=False):
            return self.student(x, training=training)

        def distillation_loss(self, teacher_logits, student_logits, y):
            if self.loss_name == "kd":
                return tf_kd_loss(teacher_logits, student_logits, y, self.temperature, self.alpha)
            return tf_logit_matching_loss(teacher_logits, student_logits)

        def train_step(self, batch):
            x, y = batch
            teacher_logits = self.teacher(x, training=False)
            with tf.GradientTape() as tape:
                student_logits = self.student(x, training=True)
                value = self.distillation_loss(teacher_logits, student_logits, y)
            variables = self.student.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(value, variables), variables))
            self.loss_tracker.update_state(value)
            self.compiled_metrics.update_state(y, student_logits)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, batch):
            x, y = batch
            student_logits = self.student(x, training=False)
            value = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(y, tf.int32), logits=student_logits)
            )
            self.loss_tracker.update_state(value)
            self.compiled_metrics.update_state(y, student_logits)
            return {m.name: m.result() for m in self.metrics}

    return Distiller()


# ---------------------------------------------------------------------------------------
# Training a student with a teacher, reproducibly, and caching it
# ---------------------------------------------------------------------------------------

DISTILL_VERSION = 1
"""Bumped whenever :func:`distill` changes what a recipe produces."""


@dataclasses.dataclass(frozen=True)
class DistillRecipe:
    """How a student is trained on a teacher; with both configs, its cache key.

    Attributes:
        loss: one of :data:`LOSSES`.
        temperature: ``T > 0`` (``"kd"`` only; must stay 1 for ``"logits"``).
        alpha: weight of the teacher's term in ``[0, 1]`` (``"kd"`` only; must stay 1
            for ``"logits"``, which has no label term).
        name: a label for people, used in the cache folder name; not part of the key.
    """

    loss: str
    temperature: float = 1.0
    alpha: float = 1.0
    name: str = "distilled"

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        check_temperature(self.temperature)
        check_alpha(self.alpha)
        if self.loss == "logits" and (self.temperature != 1 or self.alpha != 1):
            raise ValueError("the logit-matching loss has no temperature and no label term: leave temperature=1, alpha=1")

    def key(self, student_key: str, teacher_key: str) -> str:
        """SHA-256 of the recipe (without its name) and the student's and teacher's keys."""
        fields = dataclasses.asdict(self)
        fields.pop("name")
        fields.update(student=student_key, teacher=teacher_key, distill_version=DISTILL_VERSION)
        blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def distill(config, teacher, recipe: DistillRecipe, *, teacher_key: str, verbose: bool = True):
    """Trains the student of ``config`` from scratch on a frozen teacher.

    Exactly :func:`mobileopt_ref.models.train` (same seeds, initial weights, fresh data
    per epoch, curriculum and cosine schedule), except that the fitted model is a
    :func:`make_distiller` around the student, so the student trained alone and the
    distilled one differ only in the loss.

    Args:
        config: the student's :class:`mobileopt_ref.models.TrainConfig`.
        teacher: the trained teacher (a ``tf_keras`` model; left unchanged).
        recipe: the loss and its settings.
        teacher_key: the teacher's config key, recorded with the result.
        verbose: print one line per epoch.

    Returns:
        ``(student, record)``.
    """
    from mobileopt_ref import models  # noqa: PLC0415

    def wrap(student):
        return make_distiller(student, teacher, loss=recipe.loss, temperature=recipe.temperature, alpha=recipe.alpha)

    student, record = models.train(config, verbose=verbose, wrap=wrap)
    record.update(recipe=dataclasses.asdict(recipe), key=recipe.key(config.key(), teacher_key), teacher_key=teacher_key)
    return student, record


def load_or_distill(config, teacher_config, recipe: DistillRecipe, cache_dir=None, *, retrain=None,
                    verbose: bool = True):
    """Returns the student of ``config`` distilled from ``teacher_config``'s model by ``recipe``.

    From the verified model cache (entry ``<config.name>-<recipe.name>-<key>``) or trained
    with :func:`distill`, the teacher coming from
    :func:`mobileopt_ref.models.load_or_train`.

    Returns:
        ``(student, meta)``.
    """
    from mobileopt_ref import models  # noqa: PLC0415

    key = recipe.key(config.key(), teacher_config.key())

    def make():
        teacher, _ = models.load_or_train(teacher_config, cache_dir, verbose=verbose)
        return distill(config, teacher, recipe, teacher_key=teacher_config.key(), verbose=verbose)

    return models.load_or_make(
        f"{config.name}-{recipe.name}-{key[:16]}", key,
        lambda: models.build_mobilenet_v2(config.alpha, config.resolution, bn_momentum=config.bn_momentum),
        make, cache_dir, retrain=retrain, verbose=verbose,
    )


def sweep_point(config, teacher_config, recipe: DistillRecipe | None, cache_dir=None, *, n_test: int = 2_000,
                retrain=None, verbose: bool = True) -> dict:
    """Trains one student (alone, or distilled by ``recipe``) and records its accuracy.

    For sweeps over ``T`` and ``alpha``, whose many students are not worth shipping: the
    student is trained (:func:`mobileopt_ref.models.train` or :func:`distill`), evaluated
    on ``n_test`` test images of ``config``'s data, and only the record is cached
    (:func:`mobileopt_ref.models.load_or_measure`).

    Args:
        config: the student's training config (usually a short one).
        teacher_config: the teacher's config (loaded with ``load_or_train``).
        recipe: the distillation recipe, or ``None`` for the student trained alone.
        cache_dir: model cache folder.
        n_test: test images.
        retrain: force training; ``None`` reads ``MOBILEOPT_RETRAIN``.
        verbose: print progress.

    Returns:
        ``{"key", "recipe", "test_accuracy", "history", "train_seconds", "source"}``.
    """
    from mobileopt_ref import data, models  # noqa: PLC0415

    if recipe is None:
        blob = json.dumps({"alone": config.key(), "distill_version": DISTILL_VERSION}, sort_keys=True)
        key, label = hashlib.sha256(blob.encode()).hexdigest(), "alone"
    else:
        key, label = recipe.key(config.key(), teacher_config.key()), recipe.name

    def measure():
        if recipe is None:
            student, record = models.train(config, verbose=verbose)
        else:
            teacher, _ = models.load_or_train(teacher_config, cache_dir, verbose=verbose)
            student, record = distill(config, teacher, recipe, teacher_key=teacher_config.key(), verbose=verbose)
        images, labels = data.generate_patterns(n_test, config.resolution, config.data_seed, split="test",
                                                mix_max=config.mix_max, noise_max=config.noise_max)
        return {
            "key": key,
            "recipe": None if recipe is None else dataclasses.asdict(recipe),
            "config": dataclasses.asdict(config),
            "test_accuracy": models.evaluate_keras(student, images, labels),
            "history": record["history"],
            "train_seconds": record["train_seconds"],
        }

    return models.load_or_measure(f"sweep-{config.name}-{label}-{key[:16]}", key, measure, cache_dir,
                                  retrain=retrain, verbose=verbose)


def _sweep():
    points = {"alone": None, "logits": DistillRecipe("logits", name="logits")}
    for temperature, alpha in ((1.0, 0.9), (2.0, 0.9), (4.0, 0.9), (8.0, 0.9), (4.0, 0.5)):
        name = f"kd-T{temperature:g}-a{alpha:g}"
        points[name] = DistillRecipe("kd", temperature=temperature, alpha=alpha, name=name)
    return points


SWEEP = _sweep()
"""The points of the distillation chapter's sweep, by name.

The student alone, logit matching, and Hinton's loss at ``T`` in {1, 2, 4, 8} with
``alpha = 0.9`` and at ``T = 4`` with ``alpha = 0.5``, each trained on the short schedule
of :func:`sweep_config` and recorded with :func:`sweep_point`."""


def sweep_config(config):
    """The short schedule of the sweep: ``config`` with 10 epochs (3 of curriculum ramp).

    A sixth of the full schedule, so that the sweep's ten students train in about half an
    hour on two cores; the full-length comparison uses the unchanged ``config``.
    """
    return dataclasses.replace(config, epochs=10, ramp_epochs=3, name=f"{config.name}-short")


STUDENT_RECIPES = {
    "kd": DistillRecipe("kd", temperature=4.0, alpha=0.9, name="kd"),
    "logits": DistillRecipe("logits", name="logits"),
}
"""The distillation chapter's full-length students (60 epochs, the student's own config).

``"kd"`` uses Hinton's loss at the sweep's best point by validation accuracy (``T = 4``,
``alpha = 0.9``; the chapter asserts that it is the best); ``"logits"`` the source
article's logit matching. Their weights ship in the model cache."""
