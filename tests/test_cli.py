"""Tests of the mobileopt command's argument handling (the runs themselves are tested elsewhere)."""

import pytest

from mobileopt_ref import cli


def test_execute_reports_a_missing_notebook(tmp_path, capsys):
    assert cli.main(["execute", str(tmp_path / "absent.ipynb")]) == 2
    assert "no notebook at" in capsys.readouterr().err


def test_unknown_model_names_are_refused():
    with pytest.raises(SystemExit, match="unknown model 'giant'; choose from teacher, student"):
        cli.main(["train", "giant"])


def test_a_command_is_required():
    with pytest.raises(SystemExit):
        cli.main([])


def test_retrain_check_without_shipped_entries_fails_without_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOBILEOPT_CACHE_DIR", str(tmp_path))
    assert cli.main(["retrain-check", "student"]) == 1
    assert "no valid shipped entry" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_retrain_check_of_a_pruned_entry_without_shipped_entries_fails_without_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOBILEOPT_CACHE_DIR", str(tmp_path))
    assert cli.main(["retrain-check", "student-global75"]) == 1
    assert "student-global75: no valid shipped entry" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_retrain_check_of_a_distilled_entry_without_shipped_entries_fails_without_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOBILEOPT_CACHE_DIR", str(tmp_path))
    assert cli.main(["retrain-check", "student-kd"]) == 1
    assert "student-kd: no valid shipped entry" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_retrain_check_of_a_qat_entry_without_shipped_entries_fails_without_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOBILEOPT_CACHE_DIR", str(tmp_path))
    assert cli.main(["retrain-check", "student-qat8"]) == 1
    assert "student-qat8: no valid shipped entry" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("label", ["student-kd-global75", "student-kd-channels50-qat8"])
def test_retrain_check_of_a_case_study_entry_without_shipped_entries_fails_without_training(
    label, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MOBILEOPT_CACHE_DIR", str(tmp_path))
    assert cli.main(["retrain-check", label]) == 1
    assert f"{label}: no valid shipped entry" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_retrain_check_of_a_seed_without_shipped_records_fails_without_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOBILEOPT_CACHE_DIR", str(tmp_path))
    assert cli.main(["retrain-check", "seeds-digits-s1"]) == 1
    err = capsys.readouterr().err
    assert "seeds-digits-s1: no valid shipped record of alone, ptq8" in err
    assert list(tmp_path.iterdir()) == []


def test_the_case_study_entries_are_shipped_and_loaded_without_training():
    from mobileopt_ref import casestudy, models

    for label in ("student-kd-global75", "student-kd-channels50"):
        cached = casestudy.load_chain_entry(label, models.default_cache_dir(), shipped_only=True)
        assert cached is not None, f"{label} is not shipped (valid) in cache/"
        assert cached[1]["source"] == "cache"
    with pytest.raises(ValueError, match="unknown case-study entry 'student-kd'; choose from student-kd-global75"):
        casestudy.load_chain_entry("student-kd")


def test_retrain_check_refuses_an_unknown_entry_and_lists_the_shipped_ones():
    with pytest.raises(SystemExit, match=r"unknown entry 'student-qat3'; choose from teacher, student, .*student-qat-w2a8"):
        cli.main(["retrain-check", "student-qat3"])
    with pytest.raises(SystemExit, match=r"unknown entry 'seeds-digits-s7'; .*seeds-digits-s2"):
        cli.main(["retrain-check", "seeds-digits-s7"])


def test_retrain_check_names_the_machine_an_entry_was_made_on_when_weights_differ(monkeypatch, capsys):
    card = {"cpu": "CPU A", "threads": 2}
    shipped = {"weights_sha256": "a" * 64, "history": {"val_accuracy": [0.5]}, "machine": card}
    fresh = {"weights_sha256": "b" * 64, "history": {"val_accuracy": [0.5]}, "train_seconds": 1.0,
             "machine": {"cpu": "CPU B", "threads": 2}}
    monkeypatch.setattr(cli, "_load_shipped", lambda config, recipe: (None, shipped))
    monkeypatch.setattr(cli, "_remake", lambda config, recipe: fresh)
    assert cli.main(["retrain-check", "student"]) == 1
    captured = capsys.readouterr()
    assert "weights DIFFER" in captured.out
    assert "student was made on CPU A with 2 threads; this run: CPU B with 2 threads" in captured.err
    # The same weights on another machine pass, and say nothing about machines.
    monkeypatch.setattr(cli, "_remake", lambda config, recipe: dict(fresh, weights_sha256="a" * 64))
    assert cli.main(["retrain-check", "student"]) == 0
    assert "made on" not in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# mobileopt inspect: the terminal report (rich tables), progress, the roofline options
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    from mobileopt_ref import compute  # noqa: PLC0415

    path = tmp_path_factory.mktemp("inspect") / "matmul.tflite"
    path.write_bytes(compute.matmul_model(8, 16, 16))
    return path


def _recorded_roof(folder, peak, bandwidth, threads=2):
    """A computation-chapter record of this CPU with the given roofs, in ``folder``."""
    from mobileopt_ref import env, results  # noqa: PLC0415

    card = env.machine_card(threads=threads)
    results.record("04_computation", {"peak_gflops": ("roofline peak (GFLOP/s)", peak),
                                      "bandwidth_gbs": ("roofline bandwidth (GB/s)", bandwidth)}, card, folder=folder)


def test_inspect_prints_rich_tables_and_no_progress_off_a_terminal(small_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOBILEOPT_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    _recorded_roof(tmp_path, 123.0, 4.5)
    assert cli.main(["inspect", str(small_model), "--runs", "6", "--no-quantize", "--roofline", "recorded"]) == 0
    captured = capsys.readouterr()
    # Tables drawn by rich (box characters), not markdown pipes; a heading row per table.
    assert "┃ operator" in captured.out and "| operator |" not in captured.out
    assert "FULLY_CONNECTED" in captured.out and "Verdicts:" in captured.out
    # The recorded roofs, not measured ones: the record written above, ridge = 123 / 4.5.
    assert "123.0 GFLOP/s" in captured.out and "4.5 GB/s" in captured.out and "27.3 FLOP/byte" in captured.out
    assert "recorded by the computation chapter" in captured.out
    assert "Roofline (2 threads)" in captured.out
    # Standard error is not a terminal here: no progress display at all.
    assert captured.err == ""


def test_inspect_shows_progress_on_a_terminal_and_skips_the_roofline_when_asked(small_model, monkeypatch, capsys):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert cli.main(["inspect", str(small_model), "--runs", "6", "--no-quantize", "--no-roofline"]) == 0
    captured = capsys.readouterr()
    assert "roofline: not reported (not asked for (--no-roofline))" in captured.out
    assert "GFLOP/s" not in captured.out
    # The progress display (a bar and the step count out of 7 steps) went to standard error.
    assert "/7" in captured.err and "━" in captured.err
