"""The repository URL in one place (_config.yml), copied into every chapter's Colab cell."""

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from mobileopt_ref import cli, execution, publishing

ROOT = Path(__file__).resolve().parents[1]


def _book_copy(tmp_path) -> Path:
    """A copy of the book's configuration and chapters (no cache, no outputs needed)."""
    dst = tmp_path / "book"
    (dst / "src" / "mobileopt_ref").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, dst / name)
    for path in publishing._toc_notebooks(ROOT):
        target = dst / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    return dst


def test_every_chapter_has_a_colab_cell_with_the_configured_url():
    cells = publishing.setup_cells(ROOT)
    chapters = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(cells) == chapters, "every chapter, and only chapters, carry the Colab set-up"
    configured = publishing.configured_repository(ROOT)
    assert {url for url in cells.values()} == {configured}


def test_set_repository_writes_config_and_cells_and_keeps_outputs_current(tmp_path, monkeypatch):
    book = _book_copy(tmp_path)
    before = {p: execution.code_fingerprint(nbformat.read(p, as_version=4)) for p in publishing.setup_cells(book)}
    changed = publishing.set_repository(book, "https://github.com/example-org/pocket-book.git")
    assert changed[0] == book / "_config.yml" and len(changed) == 1 + len(before)
    assert publishing.configured_repository(book) == "https://github.com/example-org/pocket-book"
    assert set(publishing.setup_cells(book).values()) == {"https://github.com/example-org/pocket-book"}
    config = (book / "_config.yml").read_text()
    for key, service in publishing.LAUNCH_SERVICES.items():
        assert f"{key}: {service}" in config
    assert config.count("# ") == (ROOT / "_config.yml").read_text().count("# "), "comments kept"
    for path, fingerprint in before.items():
        nb = nbformat.read(path, as_version=4)
        assert execution.code_fingerprint(nb) == fingerprint, f"{path.name}: outputs would look stale"
    # Setting it again changes nothing.
    assert publishing.set_repository(book, "https://github.com/example-org/pocket-book") == []


def test_fingerprint_still_tracks_every_other_code_change():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('BOOK_REPOSITORY = ""  # url\nx = 1')])
    base = execution.code_fingerprint(nb)
    nb.cells[0].source = 'BOOK_REPOSITORY = "https://github.com/a/b"  # url\nx = 1'
    assert execution.code_fingerprint(nb) == base
    nb.cells[0].source = 'BOOK_REPOSITORY = "https://github.com/a/b"  # url\nx = 2'
    assert execution.code_fingerprint(nb) != base
    nb.cells[0].source = 'BOOK_REPOSITORY = ""  # another comment\nx = 1'
    assert execution.code_fingerprint(nb) != base


@pytest.mark.parametrize("url", ["", "github.com/a/b", "https://gitlab.com/a/b", "git@github.com:a/b.git",
                                 'https://github.com/a/b"; import os', "https://github.com/a", None])
def test_bad_urls_are_refused_and_nothing_is_written(tmp_path, url):
    book = _book_copy(tmp_path)
    config = (book / "_config.yml").read_text()
    with pytest.raises(ValueError, match="https://github.com/OWNER/REPO"):
        publishing.set_repository(book, url)
    assert (book / "_config.yml").read_text() == config


def test_a_config_without_the_key_is_refused(tmp_path):
    book = _book_copy(tmp_path)
    (book / "_config.yml").write_text("title: x\n")
    with pytest.raises(ValueError, match="repository"):
        publishing.set_repository(book, "https://github.com/a/b")


def test_cli_set_repository(tmp_path, monkeypatch, capsys):
    book = _book_copy(tmp_path)
    monkeypatch.chdir(book)
    assert cli.main(["set-repository", "https://github.com/a/b"]) == 0
    assert "_config.yml" in capsys.readouterr().out
    assert cli.main(["set-repository", "https://example.com/a/b"]) == 2
    assert "GitHub" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert cli.main(["set-repository", "https://github.com/a/b"]) == 2
    assert "checkout" in capsys.readouterr().err


def _colab_block(path) -> str:
    nb = json.loads(Path(path).read_text())
    source = next("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    return source[: source.index("\nimport ", source.index("os.chdir"))]


def test_the_colab_cell_clones_installs_pinned_and_works_in_the_clone(tmp_path, monkeypatch):
    """Runs a chapter's set-up block as Colab would, with the commands recorded, not run."""
    block = _colab_block(ROOT / "notebooks" / "00_baseline.ipynb")
    commands = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: commands.append(cmd))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    clone = tmp_path / "book"
    (clone / "notebooks").mkdir(parents=True)
    monkeypatch.setenv("MOBILEOPT_CLONE_DIR", str(clone))
    monkeypatch.setenv("MOBILEOPT_REPO_URL", "https://github.com/a/b")
    monkeypatch.setattr(sys, "path", list(sys.path))
    cwd = Path.cwd()
    try:
        exec(compile(block, "setup-cell", "exec"), {})
        assert Path.cwd() == clone / "notebooks"
    finally:
        os_chdir = __import__("os").chdir
        os_chdir(cwd)
    assert commands[0] == ["git", "clone", "--depth", "1", "https://github.com/a/b", str(clone)]
    assert commands[1][-4:] == ["-c", str(clone / "constraints.txt"), "-e", str(clone)]
    assert sys.path[0] == str(clone / "src")
    # Without a URL, the cell stops with a message that says what to do.
    monkeypatch.delenv("MOBILEOPT_REPO_URL")
    with pytest.raises(RuntimeError, match="MOBILEOPT_REPO_URL"):
        exec(compile(block, "setup-cell", "exec"), {})


def test_binder_installs_the_pinned_library():
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "-c constraints.txt" in post and '-e ".[book]"' in post
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"


def test_launch_services_are_set_exactly_when_a_repository_is():
    """The book theme fails the build when launch services are set without a repository."""
    config = (ROOT / "_config.yml").read_text()
    configured = bool(publishing.configured_repository(ROOT))
    for key, service in publishing.LAUNCH_SERVICES.items():
        assert (f"{key}: {service}" in config) == configured, key


def test_a_configured_copy_gives_sphinx_the_launch_buttons(tmp_path):
    book = _book_copy(tmp_path)
    publishing.set_repository(book, "https://github.com/example-org/pocket-book")
    jb = Path(sys.executable).with_name("jupyter-book")
    subprocess.run([str(jb), "config", "sphinx", str(book)], check=True, capture_output=True)
    conf = (book / "conf.py").read_text()
    assert "'repository_url': 'https://github.com/example-org/pocket-book'" in conf
    for service in publishing.LAUNCH_SERVICES.values():
        assert service in conf
