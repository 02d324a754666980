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


def test_retrain_check_refuses_an_unknown_entry_and_lists_the_shipped_ones():
    with pytest.raises(SystemExit, match=r"unknown entry 'student-qat3'; choose from teacher, student, .*student-qat-w2a8"):
        cli.main(["retrain-check", "student-qat3"])


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
