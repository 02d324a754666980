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
