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
