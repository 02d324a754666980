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
    assert page.count("<img") == 3 and "http://" not in page and "https://" not in page
    assert "<table>" in page and "Figure 3." in page
    (tmp_path / "report.html").write_text(page, encoding="utf-8")
    # Every image decodes, no request leaves localhost, no console error, no raw table.
    problems, _ = check_site(browser, tmp_path, pages=["report.html"])
    assert problems == {"report.html": []}, problems
