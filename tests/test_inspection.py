"""`mobileopt inspect` and inspection.inspect_model: the chapters' figures on any .tflite."""

import json

import numpy as np
import pytest

from mobileopt_ref import cli, compute, inspection, litert, memory, models
from test_corpus import BROKEN, KINDS, build_corpus
from test_site import browser, check_site  # noqa: F401  (browser is a fixture)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("saved_model"))


@pytest.fixture(scope="module")
def student_tflite():
    model, _ = models.load_or_train(models.STUDENT, verbose=False)
    return litert.to_tflite(model)


def test_on_the_books_student_the_figures_are_the_chapters(student_tflite):
    report = inspection.inspect_model(student_tflite, num_runs=20, rounds=4)
    s = report.sections
    macs = compute.tflite_macs(student_tflite)
    assert s["operators"]["macs"] == macs["total"]
    assert sum(e["count"] for e in s["operators"]["by_type"].values()) == len(litert.read_graph(student_tflite).ops)
    assert sum(e["share"] for e in s["operators"]["by_type"].values()) == pytest.approx(1.0)
    lives = memory.tensor_lifetimes(student_tflite)
    assert s["memory"]["greedy_plan_bytes"] == memory.plan_greedy_by_size(lives).size
    assert s["memory"]["lower_bound_bytes"] == memory.lower_bound(lives)
    assert s["memory"]["litert_arena_bytes"] >= s["memory"]["lower_bound_bytes"]
    assert s["file"]["size_bytes"] == len(student_tflite) and s["file"]["parameters"] > 0
    assert s["operators"]["ops_off_xnnpack"] == {} and s["operators"]["xnnpack_partitions"] == 1
    # Timed figures: structure only (CONTRIBUTING.md).
    assert set(s["speed"]) == {"1 thread", "2 threads", "thread_speedup", "litert_benchmark"}
    assert s["speed"]["litert_benchmark"]["median_ms"] > 0 and s["speed"]["litert_benchmark"]["threads"] == 2
    assert s["process_memory"]["steady_rss_bytes"] > s["process_memory"]["start_rss_bytes"] > 0
    # Roofline: the intensity is counted (the chapter's function), the rate follows from the p50.
    r = s["roofline"]
    assert r["intensity_flops_per_byte"] == compute.arithmetic_intensity(macs)
    assert r["attained_gflops"] == pytest.approx(2 * macs["total"] / (s["speed"]["2 threads"]["p50_ms"] * 1e-3) / 1e9)
    assert r["attainable_gflops"] == pytest.approx(min(r["peak_gflops"], r["bandwidth_gbs"] * r["intensity_flops_per_byte"]))
    assert r["fraction_of_roof"] == pytest.approx(r["attained_gflops"] / r["attainable_gflops"])
    assert r["bound"] == ("memory" if r["intensity_flops_per_byte"] < r["ridge_flops_per_byte"] else "compute")
    assert r["float_arithmetic"] and r["source"].startswith("measured now") and r["threads"] == 2
    assert any(v.startswith("Roofline (2 threads)") for v in report.verdicts)
    assert "| share of the roof attained |" in inspection.to_markdown(report)
    q = s["quantization"]
    assert q["inputs"] == "32 random inputs" and set(q["variants"]) == {"float32 (as given)", *inspection.QUANTIZER_RECIPES}
    assert all(r["size_bytes"] < len(student_tflite) for n, r in q["variants"].items() if not n.startswith("float32"))
    assert report.verdicts and json.loads(inspection.to_json(report))["sections"]["file"]["size_bytes"] == len(student_tflite)
    assert "| CONV_2D |" in inspection.to_markdown(report)


@pytest.mark.parametrize("kind", KINDS)
def test_every_corpus_file_is_reported_or_refused_by_name(corpus, kind):
    content = corpus[kind]
    if kind == "prefill_decode":
        with pytest.raises(ValueError, match="choose one with litert.select_signature"):
            inspection.inspect_model(content, measure=False)
        return
    report = inspection.inspect_model(content, measure=False)
    assert report.sections["file"]["size_bytes"] == len(content)
    assert set(report.skipped) >= {"speed"}
    inspection.to_markdown(report)
    json.loads(inspection.to_json(report))


def test_a_measured_quantization_on_a_vector_model_and_given_labels(corpus):
    content = corpus["float32_keras_24x16"]
    images = np.random.default_rng(0).integers(0, 256, (8, 24, 16, 3), dtype=np.uint8)
    report = inspection.inspect_model(content, inputs=images, labels=np.arange(8) % 5, num_runs=6, rounds=2)
    q = report.sections["quantization"]
    assert q["inputs"] == "8 given inputs"
    assert all(0.0 <= r["top1"] <= 1.0 for r in q["variants"].values())


def test_bad_inputs_are_refused_before_anything_runs(corpus):
    content = corpus["float32_keras_24x16"]
    with pytest.raises(ValueError, match=r"inputs must have shape \(n>0, 24, 16, 3\) for this model, got \(2, 16, 16, 3\)"):
        inspection.inspect_model(content, inputs=np.zeros((2, 16, 16, 3), np.uint8), measure=False)
    with pytest.raises(ValueError, match="already preprocessed"):
        inspection.inspect_model(content, inputs=np.full((2, 24, 16, 3), 0.5), measure=False)
    with pytest.raises(ValueError, match="labels must be integers, one per input"):
        inspection.inspect_model(content, inputs=np.zeros((2, 24, 16, 3), np.uint8), labels=[0], measure=False)
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        inspection.inspect_model(content, threads=0)
    for make in BROKEN.values():
        with pytest.raises(ValueError, match=r"not a (complete )?\.tflite model"):
            inspection.inspect_model(make(corpus))


def test_the_command_reports_writes_json_and_names_each_error(corpus, tmp_path, capsys):
    path = tmp_path / "model.tflite"
    path.write_bytes(corpus["prefill_decode"])
    out = tmp_path / "report.json"
    page = tmp_path / "report.html"
    assert cli.main(["inspect", str(path), "--signature", "prefill", "--no-measure", "--json", str(out),
                     "--html", str(page)]) == 0
    assert json.loads(out.read_text())["sections"]["file"]["signatures"] == ["prefill"]
    assert page.read_text().startswith("<!DOCTYPE html>") and "<img" in page.read_text()
    assert "(signature prefill)" in capsys.readouterr().out
    assert cli.main(["inspect", str(path), "--no-measure"]) == 2
    assert "choose one with litert.select_signature" in capsys.readouterr().err
    assert cli.main(["inspect", str(tmp_path / "absent.tflite")]) == 2
    assert "no .tflite file at" in capsys.readouterr().err
    (tmp_path / "cut.tflite").write_bytes(corpus["int8_io_int8"][:-1])
    assert cli.main(["inspect", str(tmp_path / "cut.tflite")]) == 2
    assert "not a complete .tflite model" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.zeros((2, 5), np.float32))
    path.write_bytes(corpus["float32_keras_24x16"])
    assert cli.main(["inspect", str(path), "--inputs", str(tmp_path / "x.npy"), "--no-measure"]) == 2
    assert "inputs must have shape (n>0, 24, 16, 3)" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--labels needs --inputs"):
        cli.main(["inspect", str(path), "--labels", str(tmp_path / "x.npy")])
    with pytest.raises(SystemExit):
        cli.main(["inspect", str(path), "--threads", "0"])


def test_the_html_page_is_self_contained_and_opens_offline_in_chromium(student_tflite, tmp_path, browser):
    report = inspection.inspect_model(student_tflite, num_runs=20, rounds=4, quantize=False)
    page = inspection.to_html(report)
    assert page.count("<img") == 4 and "http://" not in page and "https://" not in page
    assert "<table>" in page and "Figure 4." in page and "roofline" in page
    (tmp_path / "report.html").write_text(page, encoding="utf-8")
    # Every image decodes, no request leaves localhost, no console error, no raw table.
    problems, _ = check_site(browser, tmp_path, pages=["report.html"])
    assert problems == {"report.html": []}, problems


def _roof(**changes):
    r = dict(threads=2, intensity_flops_per_byte=1.0, ridge_flops_per_byte=5.0, attained_gflops=10.0,
             fraction_of_roof=0.5, bound="memory", float_arithmetic=True)
    return {**r, **changes}


def test_the_roofline_verdict_reads_true_whichever_roof_bounds_the_model():
    memory_bound = inspection.roofline_verdict(_roof())
    assert "left of this machine's ridge at 5.0, so memory-bound" in memory_bound and "50 % of its roof." in memory_bound
    compute_bound = inspection.roofline_verdict(_roof(intensity_flops_per_byte=9.0, bound="compute"))
    assert "right of this machine's ridge" in compute_bound and "compute-bound" in compute_bound
    assert "stayed in cache" in inspection.roofline_verdict(_roof(fraction_of_roof=1.3))
    assert "far below it" in inspection.roofline_verdict(_roof(fraction_of_roof=0.1))
    integer = inspection.roofline_verdict(_roof(float_arithmetic=False, fraction_of_roof=2.5))
    assert "does not bound it" in integer and "2.50x the float32 roof" in integer and "memory-bound" not in integer


def test_a_recorded_roofline_is_used_only_for_this_cpu_at_the_same_threads(tmp_path):
    from mobileopt_ref import env, results

    assert inspection.recorded_roofline(2, folder=tmp_path) is None
    values = {"peak_gflops": ("peak", 100.0), "bandwidth_gbs": ("bandwidth", 20.0)}
    results.record("04_computation", values, env.machine_card(threads=2), folder=tmp_path)
    roof = inspection.recorded_roofline(2, folder=tmp_path)
    assert (roof["peak_gflops"], roof["bandwidth_gbs"]) == (100.0, 20.0) and roof["recorded"]
    assert inspection.recorded_roofline(1, folder=tmp_path) is None


def test_the_int8_model_is_placed_without_a_float32_bound(corpus):
    report = inspection.inspect_model(corpus["int8_io_int8"], num_runs=6, rounds=2, quantize=False)
    r = report.sections["roofline"]
    assert r["float_arithmetic"] is False
    assert "no float32 roof (integer arithmetic)" in inspection.to_markdown(report)


def test_a_bad_roofline_choice_is_refused(corpus):
    with pytest.raises(ValueError, match="roofline must be one of measure, recorded or None, got 'guess'"):
        inspection.inspect_model(corpus["float32_keras_24x16"], roofline="guess")
