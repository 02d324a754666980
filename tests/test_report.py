"""Tests of the result record and the table built from it."""

import pytest

from mobileopt_ref import litert, report


def test_measure_variants_gives_one_complete_record_per_variant(tiny_tflite, tiny_split):
    records = report.measure_variants(
        {"a": tiny_tflite, "b": tiny_tflite}, tiny_split, params={"a": 123}, num_runs=6, warmup=1, rounds=2
    )
    assert [r.name for r in records] == ["a", "b"]
    a = records[0]
    assert a.size_bytes == len(tiny_tflite)
    assert a.gzip_bytes == litert.gzip_size(tiny_tflite)
    assert a.accuracy == litert.evaluate_tflite(tiny_tflite, tiny_split.images, tiny_split.labels)
    assert a.latency.runs == 6 and a.params == 123 and records[1].params is None
    row = a.row()
    assert row["p50_ms"] == a.latency.p50_ms and "tflite" not in row
    assert "tflite" not in repr(a)


def test_markdown_table_has_ratios_relative_to_the_baseline(tiny_tflite, tiny_split):
    records = report.measure_variants({"base": tiny_tflite}, tiny_split, latency=False)
    table = report.to_markdown(records, baseline="base")
    assert "| base |" in table and "1.00x" in table and "n/a" in table
    with pytest.raises(ValueError, match="baseline 'nope' is not one of"):
        report.to_markdown(records, baseline="nope")


def test_no_variants_is_an_error(tiny_split):
    with pytest.raises(ValueError, match="at least one variant"):
        report.measure_variants({}, tiny_split)


def test_markdown_table_with_one_baseline_per_model(tiny_tflite, tiny_split):
    import dataclasses

    (base,) = report.measure_variants({"a float": tiny_tflite}, tiny_split, latency=False)
    half = dataclasses.replace(base, name="a small", size_bytes=base.size_bytes // 2, accuracy=base.accuracy - 0.012,
                               correct=None)
    other = dataclasses.replace(base, name="b float")
    table = report.to_markdown([base, half, other], baseline={"a small": "a float", "a float": "a float"})
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert "| -1.2 | 2.00x |" in rows["a small"] and "| +0.0 | 1.00x | 1.00x |" in rows["a float"]
    assert rows["b float"].endswith("|  |  |  |")  # no baseline given for it
    with pytest.raises(ValueError, match="baseline 'c' is not one of"):
        report.to_markdown([base], baseline={"a float": "c"})


def test_markdown_table_extra_columns_and_gzip_ratio(tiny_tflite, tiny_split):
    import dataclasses

    (base,) = report.measure_variants({"dense": tiny_tflite}, tiny_split, latency=False)
    sparse = dataclasses.replace(base, name="sparse", gzip_bytes=base.gzip_bytes // 4, extra={"alpha": 0.75})
    table = report.to_markdown([base, sparse], baseline="dense", extra_columns={"sparsity": ("alpha", "{:.0%}")})
    header, _, dense_row, sparse_row = table.splitlines()
    assert "| sparsity |" in header and header.endswith(
        "| Δ accuracy (points) | smaller | gzip smaller | faster (95 % CI) |")
    assert "| 75% |" in sparse_row and "| 1.00x | 4.00x |" in sparse_row
    assert dense_row.split(" | ")[6] == ""  # no alpha in the dense record: a blank cell


def test_markdown_table_carries_mcnemar_and_speedup_intervals(tiny_tflite, tiny_split):
    import dataclasses

    import numpy as np

    from mobileopt_ref import stats

    a, b = report.measure_variants({"a": tiny_tflite, "b": tiny_tflite}, tiny_split, num_runs=9, warmup=1, rounds=3)
    assert a.correct.dtype == bool and a.correct.shape == (len(tiny_split.labels),)
    flipped = a.correct.copy()
    flipped[:5] = ~flipped[:5]
    worse = dataclasses.replace(b, name="worse", correct=flipped, accuracy=float(np.mean(flipped)))
    table = report.to_markdown([a, worse], baseline="a")
    row = table.splitlines()[3]
    p = stats.mcnemar(a.correct, flipped).p_value
    ratio = stats.latency_ratio(a.latency, b.latency)
    assert f"(p = {p:.2g})" in row
    assert row.endswith(f"| {ratio.estimate:.2f}x ({ratio.low:.2f}-{ratio.high:.2f}) |")
    assert table.splitlines()[2].endswith("| 1x |")  # the baseline against itself
