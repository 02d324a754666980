"""One result record per model variant, and the tables built from them.

Every chapter measures its model variants with :func:`measure_variants` and gets back a
list of :class:`VariantRecord`, the same kind of record everywhere, so the case study can
line all of them up without special cases. Fields that a later chapter fills in (arena
bytes from the memory chapter, energy from the energy chapter) start as ``None``.

Explained in notebooks/00_baseline.ipynb.

Example:
    >>> from mobileopt_ref import report
    >>> records = report.measure_variants({"float32": tflite}, dataset.test)  # doctest: +SKIP
    >>> print(report.to_markdown(records, baseline="float32"))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from mobileopt_ref import compute, litert, stats


@dataclasses.dataclass
class VariantRecord:
    """What the book knows about one model variant.

    Attributes:
        name: short label, unique within a table (``"student float32"``).
        tflite: the ``.tflite`` content (not shown in reprs).
        size_bytes: file size.
        gzip_bytes: size after gzip -9, the download cost.
        accuracy: top-1 accuracy on the evaluation split, in [0, 1].
        latency: single-image latency statistics, or ``None`` if not measured.
        params: parameter count of the source model, if known.
        arena_bytes: activation arena size (memory chapter), if known.
        energy_mj: modelled energy per inference in millijoules (energy chapter).
        extra: chapter-specific values (sparsity, bit width, ...).
        correct: ``bool`` array ``(n,)``, whether each evaluation image was classified
            right (for paired tests, :func:`mobileopt_ref.stats.mcnemar`), or ``None``.
    """

    name: str
    tflite: bytes = dataclasses.field(repr=False)
    size_bytes: int
    gzip_bytes: int
    accuracy: float
    latency: compute.LatencyStats | None = dataclasses.field(default=None, repr=False)
    params: int | None = None
    arena_bytes: int | None = None
    energy_mj: float | None = None
    extra: dict = dataclasses.field(default_factory=dict)
    correct: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    def row(self) -> dict:
        """Returns the record as a flat dict of plain numbers (no bytes, no samples)."""
        row = {
            "name": self.name,
            "size_bytes": self.size_bytes,
            "gzip_bytes": self.gzip_bytes,
            "accuracy": self.accuracy,
            "params": self.params,
            "arena_bytes": self.arena_bytes,
            "energy_mj": self.energy_mj,
        }
        if self.latency is not None:
            row.update(self.latency.summary())
        row.update(self.extra)
        return row


def measure_variants(
    variants: dict,
    split,
    *,
    params: dict | None = None,
    latency: bool = True,
    num_runs: int = 200,
    warmup: int = 20,
    rounds: int = 10,
    num_threads: int = 2,
) -> list:
    """Measures model variants with one harness: size, gzip size, accuracy, latency.

    Latencies are measured side by side (see :func:`mobileopt_ref.compute.compare_latency`), so the
    ratios between the variants of one call are comparable.

    Args:
        variants: ``{name: .tflite bytes or path}``.
        split: a :class:`mobileopt_ref.data.Split` to evaluate accuracy on.
        params: optional ``{name: parameter count}``.
        latency: measure latency too.
        num_runs, warmup, rounds, num_threads: latency settings.

    Returns:
        A list of :class:`VariantRecord`, in the order of ``variants``.

    Raises:
        ValueError: for no variants; an invalid model, or one that is not an image
            classifier for the split's images and labels (as :func:`mobileopt_ref.litert.predict_tflite`
            refuses them); labels that are not one integer per image; bad latency counts.
            All before any latency is measured.
    """
    if not variants:
        raise ValueError("measure_variants needs at least one variant")
    contents = {name: litert.check_one_graph(model, "measure_variants") for name, model in variants.items()}
    if latency:  # bad counts are refused before anything runs
        compute.round_plan(contents, num_runs, warmup, rounds)
    labels = np.asarray(split.labels)
    if labels.ndim != 1 or len(labels) != len(split.images) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"split.labels must be integers, one per image: got {labels.dtype} {labels.shape} "
            f"for {len(split.images)} images"
        )
    correct = {}
    for name, content in contents.items():  # accuracy first: a model that cannot take the images is refused untimed
        outputs = litert.predict_tflite(content, split.images, num_threads=num_threads)
        if outputs.ndim != 2 or len(labels) and labels.max() >= outputs.shape[1] or len(labels) and labels.min() < 0:
            raise ValueError(
                f"variant {name!r} gives outputs of shape {outputs.shape}; the labels need a classifier "
                f"with more than {int(labels.max())} classes, one score each"
            )
        correct[name] = np.argmax(outputs, axis=1) == labels
    timings = (
        compute.compare_latency(
            contents, num_runs=num_runs, warmup=warmup, rounds=rounds, num_threads=num_threads
        )
        if latency
        else {}
    )
    records = []
    for name, content in contents.items():
        records.append(
            VariantRecord(
                name=name,
                tflite=content,
                size_bytes=len(content),
                gzip_bytes=litert.gzip_size(content),
                accuracy=float(np.mean(correct[name])),
                latency=timings.get(name),
                params=(params or {}).get(name),
                correct=correct[name],
            )
        )
    return records


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    return f"{n / 1024:.1f} KiB"


def _paired(a: VariantRecord, b: VariantRecord) -> bool:
    return a.correct is not None and b.correct is not None and len(a.correct) == len(b.correct)


def to_markdown(records: list, baseline=None, extra_columns: dict | None = None) -> str:
    """Formats records as a markdown table.

    Columns: size, gzip size, accuracy, p50 and p99 latency with the 95 % interval of the
    median, any ``extra_columns``, and, when a baseline is given, the accuracy change in
    percentage points and the size ratio, gzip-size ratio and speed-up relative to it
    (all ``baseline / variant``, so larger is better). The accuracy change carries the
    exact McNemar p-value when both records hold per-image results on the same images
    (:func:`mobileopt_ref.stats.mcnemar`); the speed-up carries its 95 % bootstrap interval
    (:func:`mobileopt_ref.stats.latency_ratio`; measure the rows side by side, in one
    :func:`measure_variants` call, for the interval to mean what it says).

    Args:
        records: :class:`VariantRecord` list.
        baseline: ``None``; the name of one record that every row is compared with; or a
            dict ``{record name: baseline name}`` when rows have different baselines
            (each model against its own float32 file). Rows missing from the dict get
            blank comparison cells.
        extra_columns: ``{column header: (key, format)}`` for values of each record's
            ``extra`` dict, for instance ``{"sparsity": ("alpha", "{:.1%}")}``; a record
            without the key gets a blank cell.

    Raises:
        ValueError: if a baseline is not the name of a record.
    """
    by_name = {r.name: r for r in records}
    if baseline is None:
        bases = {}
    elif isinstance(baseline, dict):
        bases = dict(baseline)
    else:
        bases = {r.name: baseline for r in records}
    unknown = sorted({b for b in bases.values() if b not in by_name})
    if unknown:
        raise ValueError(f"baseline {unknown[0]!r} is not one of {sorted(by_name)}")
    extra_columns = dict(extra_columns or {})
    header = ["variant", "size", "gzip", "accuracy", "p50 ms (95 % CI)", "p99 ms", *extra_columns]
    if bases:
        header += ["Δ accuracy (points)", "smaller", "gzip smaller", "faster (95 % CI)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in records:
        if r.latency is not None:
            lo, hi = r.latency.ci95_ms
            p50 = f"{r.latency.p50_ms:.2f} ({lo:.2f}-{hi:.2f})"
            p99 = f"{r.latency.p99_ms:.2f}"
        else:
            p50 = p99 = "n/a"
        cells = [r.name, _fmt_bytes(r.size_bytes), _fmt_bytes(r.gzip_bytes), f"{100 * r.accuracy:.1f} %", p50, p99]
        for key, fmt in extra_columns.values():
            cells.append(fmt.format(r.extra[key]) if key in r.extra else "")
        if bases:
            base = by_name.get(bases.get(r.name))
            if base is None:
                cells += ["", "", "", ""]
            else:
                delta = f"{100 * (r.accuracy - base.accuracy):+.1f}"
                if r is not base and _paired(base, r):
                    delta += f" (p = {stats.mcnemar(base.correct, r.correct).p_value:.2g})"
                cells.append(delta)
                cells.append(f"{base.size_bytes / r.size_bytes:.2f}x")
                cells.append(f"{base.gzip_bytes / r.gzip_bytes:.2f}x")
                if r is base:
                    cells.append("1x")
                elif base.latency is not None and r.latency is not None:
                    ratio = stats.latency_ratio(base.latency, r.latency)
                    cells.append(f"{ratio.estimate:.2f}x ({ratio.low:.2f}-{ratio.high:.2f})")
                else:
                    cells.append("n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Records as JSON: what ``mobileopt case-study`` writes and ``mobileopt report`` reads
# ---------------------------------------------------------------------------------------

RECORDS_SCHEMA = "mobileopt-records"
"""The ``schema`` field of a records file."""

RECORDS_VERSION = 1
"""The ``version`` field of the records files this library writes and reads."""


class RecordsFileError(ValueError):
    """A records file that is not JSON, or not in the records schema (the message says where)."""


def _plain(value):
    """``value`` with numpy scalars and arrays turned into JSON types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def record_to_dict(record: VariantRecord) -> dict:
    """One record as plain JSON data: every field but the ``.tflite`` bytes.

    The latency keeps its raw samples and round sizes (so speed-up intervals can be
    recomputed), the per-image results a string of ``0`` and ``1`` (so McNemar tests can).
    """
    latency = None
    if record.latency is not None:
        latency = {"samples_ms": [float(x) for x in record.latency.samples_ms],
                   "round_sizes": None if record.latency.round_sizes is None else
                   [int(n) for n in record.latency.round_sizes]}
    correct = None if record.correct is None else "".join("1" if c else "0" for c in np.asarray(record.correct))
    return {"name": record.name, "size_bytes": int(record.size_bytes), "gzip_bytes": int(record.gzip_bytes),
            "accuracy": float(record.accuracy), "params": None if record.params is None else int(record.params),
            "arena_bytes": None if record.arena_bytes is None else int(record.arena_bytes),
            "energy_mj": None if record.energy_mj is None else float(record.energy_mj),
            "extra": _plain(record.extra), "latency": latency, "correct": correct}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def record_from_dict(d, where: str = "record") -> VariantRecord:
    """The inverse of :func:`record_to_dict` (``tflite`` is empty: files do not hold models).

    Raises:
        RecordsFileError: for a field missing, of the wrong type or out of range, named
            with ``where``.
    """
    def bad(field, wanted):
        got = d.get(field, "<missing>") if isinstance(d, dict) else d
        raise RecordsFileError(f"{where}: {field} must be {wanted}, got {str(got)[:80]!r}")

    if not isinstance(d, dict):
        raise RecordsFileError(f"{where} must be an object, got {type(d).__name__}")
    unknown = sorted(set(d) - {"name", "size_bytes", "gzip_bytes", "accuracy", "params", "arena_bytes",
                               "energy_mj", "extra", "latency", "correct"})
    if unknown:
        raise RecordsFileError(f"{where}: unknown field {unknown[0]!r}")
    if not isinstance(d.get("name"), str) or not d["name"].strip():
        bad("name", "a non-empty string")
    for field in ("size_bytes", "gzip_bytes"):
        if not _count(d.get(field)):
            bad(field, "a non-negative integer")
    if not _number(d.get("accuracy")) or not 0 <= d["accuracy"] <= 1:
        bad("accuracy", "a number in [0, 1]")
    for field in ("params", "arena_bytes"):
        if d.get(field) is not None and not _count(d[field]):
            bad(field, "a non-negative integer or null")
    if d.get("energy_mj") is not None and (not _number(d["energy_mj"]) or d["energy_mj"] < 0):
        bad("energy_mj", "a non-negative number or null")
    if not isinstance(d.get("extra", {}), dict):
        bad("extra", "an object")
    latency = d.get("latency")
    stats_ = None
    if latency is not None:
        if not isinstance(latency, dict) or not isinstance(latency.get("samples_ms"), list) \
                or not latency["samples_ms"] or not all(_number(x) and x >= 0 for x in latency["samples_ms"]):
            bad("latency", "null or {samples_ms: non-empty list of times in ms, round_sizes}")
        sizes = latency.get("round_sizes")
        if sizes is not None and (not isinstance(sizes, list) or not all(_count(n) and n > 0 for n in sizes)
                                  or sum(sizes) != len(latency["samples_ms"])):
            bad("latency", "round_sizes of positive integers summing to the number of samples")
        stats_ = compute.latency_stats(latency["samples_ms"], sizes)
    correct = d.get("correct")
    if correct is not None:
        if not isinstance(correct, str) or set(correct) - {"0", "1"}:
            bad("correct", "null or a string of 0 and 1, one per image")
        correct = np.frombuffer(correct.encode(), dtype=np.uint8) == ord("1")
    return VariantRecord(name=d["name"], tflite=b"", size_bytes=d["size_bytes"], gzip_bytes=d["gzip_bytes"],
                         accuracy=float(d["accuracy"]), latency=stats_, params=d.get("params"),
                         arena_bytes=d.get("arena_bytes"), energy_mj=d.get("energy_mj"),
                         extra=dict(d.get("extra") or {}), correct=correct)


def records_to_json(records: list, meta: dict | None = None) -> str:
    """Records (and any plain ``meta`` data beside them) as a JSON document.

    ``{"schema": "mobileopt-records", "version": 1, "meta": {...}, "records": [...]}``,
    each record as :func:`record_to_dict` gives it.

    Raises:
        ValueError: for no records, or two with one name.
    """
    if not records:
        raise ValueError("records_to_json needs at least one record")
    names = [r.name for r in records]
    if len(set(names)) != len(names):
        raise ValueError(f"record names must be unique, got {names}")
    return json.dumps({"schema": RECORDS_SCHEMA, "version": RECORDS_VERSION, "meta": _plain(meta or {}),
                       "records": [record_to_dict(r) for r in records]}, indent=1, ensure_ascii=False)


def records_from_json(text: str) -> tuple:
    """The inverse of :func:`records_to_json`: ``(records, meta)``.

    Raises:
        RecordsFileError: for text that is not JSON, another schema or version, no
            records, a malformed record (which one, which field) or duplicate names.
    """
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, TypeError) as err:
        raise RecordsFileError(f"not JSON: {err}") from None
    if not isinstance(doc, dict) or doc.get("schema") != RECORDS_SCHEMA:
        raise RecordsFileError(f"not a records file: expected an object with \"schema\": \"{RECORDS_SCHEMA}\" "
                               "(as mobileopt case-study writes)")
    if doc.get("version") != RECORDS_VERSION:
        raise RecordsFileError(f"records version {doc.get('version')!r} is not supported (this library reads "
                               f"version {RECORDS_VERSION})")
    if not isinstance(doc.get("meta", {}), dict):
        raise RecordsFileError("meta must be an object")
    items = doc.get("records")
    if not isinstance(items, list) or not items:
        raise RecordsFileError("records must be a non-empty list")
    records = [record_from_dict(d, f"record {i + 1}") for i, d in enumerate(items)]
    names = [r.name for r in records]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise RecordsFileError(f"two records are called {dup[0]!r}")
    return records, dict(doc.get("meta") or {})


def load_records(path) -> tuple:
    """Reads a records file: ``(records, meta)``.

    Raises:
        FileNotFoundError: if there is no such file.
        RecordsFileError: if it is not UTF-8 text or not a records file (see :func:`records_from_json`).
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except IsADirectoryError:
        raise RecordsFileError(f"{path} is a folder, not a records file") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RecordsFileError(f"{path} is not a text file (not UTF-8), so not JSON") from None
    try:
        return records_from_json(text)
    except RecordsFileError as err:
        raise RecordsFileError(f"{path}: {err}") from None
