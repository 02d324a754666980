"""The stored notebook outputs come from the current code, and follow the book's rules."""

from pathlib import Path

import nbformat
import pytest

from mobileopt_ref import execution

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.ipynb"))


def test_there_are_notebooks():
    assert any(p.name == "00_baseline.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_come_from_the_current_code(path):
    nb = nbformat.read(path, as_version=4)
    stored = execution.stored_fingerprint(nb)
    assert stored is not None, f"{path.name} was never executed by `make execute`"
    assert stored == execution.code_fingerprint(nb), (
        f"{path.name}: code cells changed after the outputs were stored; run "
        f"`make execute` (or `.venv/bin/mobileopt execute {path.relative_to(ROOT)}`)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_fully_executed_without_errors(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is not None, f"{path.name}: a cell was not executed"
        assert not any(o.output_type == "error" for o in cell.outputs), f"{path.name}: error output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_absolute_paths_of_this_machine_in_outputs(path):
    text = path.read_text(encoding="utf-8")
    for marker in (str(ROOT), "/root/", "/home/", "/tmp/"):
        assert marker not in text, f"{path.name} contains the path {marker!r}"


def test_fingerprint_ignores_markdown_and_tracks_code():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# a"), nbformat.v4.new_code_cell("x = 1")]
    before = execution.code_fingerprint(nb)
    nb.cells[0].source = "# b"
    assert execution.code_fingerprint(nb) == before
    nb.cells[1].source = "x = 2"
    assert execution.code_fingerprint(nb) != before


def test_failed_execution_leaves_the_notebook_unchanged(tmp_path):
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("print('ok')"), nbformat.v4.new_code_cell("1 / 0")]
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()
    with pytest.raises(CellExecutionError):
        execution.execute_notebook(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["broken.ipynb"]


def test_successful_execution_stores_outputs_and_fingerprint(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
    path = tmp_path / "ok.ipynb"
    nbformat.write(nb, path)
    execution.execute_notebook(path)
    done = nbformat.read(path, as_version=4)
    assert done.cells[0].outputs[0]["text"] == "42\n"
    assert execution.stored_fingerprint(done) == execution.code_fingerprint(done)


def test_execution_records_its_time_and_machine(tmp_path):
    from mobileopt_ref import env

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(0.2)")]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "timed.ipynb"
    nbformat.write(nb, path)
    assert execution.recorded_time(path) is None
    seconds = execution.execute_notebook(path)
    recorded = execution.recorded_time(path)
    assert recorded["cpu"] == env.cpu_model() and recorded["cores"] >= 1
    assert 0.2 <= recorded["seconds"] <= seconds + 0.1
    with pytest.raises(FileNotFoundError):
        execution.recorded_time(tmp_path / "absent.ipynb")
