"""Executing the book's notebooks, and proving their stored outputs are current.

The published book shows outputs stored in the notebooks. They must come from the code
that is in the notebooks now, so :func:`execute_notebook` records a fingerprint, the
SHA-256 of every code cell's source, in the notebook's metadata, and a test compares it
with the code: editing a cell without re-executing fails the tests.

Execution prints each cell as it starts and echoes what the cell prints, so a long
first run (training) never looks hung. The notebook file is replaced only when every
cell succeeded, and atomically, so a failed run loses nothing.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

METADATA_KEY = "mobileopt"


def code_fingerprint(nb) -> str:
    """Returns the SHA-256 of the notebook's code cells (sources, in order).

    Markdown edits do not change it: prose may be improved without re-running the
    models, while any change to what produced the outputs does. The one exception is the
    value of the repository URL in a chapter's set-up cell
    (:data:`mobileopt_ref.publishing.REPOSITORY_LINE`), which only Colab uses: configuring
    it does not make the stored outputs stale.
    """
    from mobileopt_ref.publishing import REPOSITORY_LINE  # noqa: PLC0415

    h = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            source = REPOSITORY_LINE.sub(r'BOOK_REPOSITORY = ""\2', cell.source)
            h.update(source.encode("utf-8"))
            h.update(b"\0")
    return h.hexdigest()


def stored_fingerprint(nb) -> str | None:
    """Returns the fingerprint recorded when the notebook was last executed, if any."""
    return nb.metadata.get(METADATA_KEY, {}).get("code_sha256")


class _EchoingClient(NotebookClient):
    """A notebook client that echoes cell progress and printed text to the terminal."""

    def __init__(self, nb, label: str, **kwargs):
        super().__init__(nb, **kwargs)
        self._label = label
        self._started = time.perf_counter()
        self._n_code = sum(c.cell_type == "code" for c in nb.cells)
        self._seen = 0
        self.on_cell_start = self._cell_start

    def _cell_start(self, cell, cell_index):
        if cell.cell_type != "code":
            return
        self._seen += 1
        first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
        print(
            f"[{self._label}] cell {self._seen}/{self._n_code} "
            f"({time.perf_counter() - self._started:.0f} s): {first[:70]}",
            flush=True,
        )

    def output(self, outs, msg, display_id, cell_index):
        if msg["msg_type"] == "stream":
            text = msg["content"].get("text", "")
            stream = sys.stderr if msg["content"].get("name") == "stderr" else sys.stdout
            stream.write("".join(f"    {line}\n" for line in text.splitlines()))
            stream.flush()
        return super().output(outs, msg, display_id, cell_index)


def execute_notebook(path, timeout: int | None = None, kernel_name: str = "python3") -> float:
    """Executes a notebook in place, top to bottom, in its own folder.

    Args:
        path: the ``.ipynb`` file.
        timeout: per-cell timeout in seconds (``None``: no limit).
        kernel_name: Jupyter kernel to run.

    Returns:
        Seconds taken. They are also stored in the notebook's metadata (``mobileopt``:
        ``seconds``, with the ``cpu`` model and ``cores`` of the machine), beside the code
        fingerprint.

    If a cell fails, nbclient's ``CellExecutionError`` propagates and the file on disk is
    left unchanged.

    Raises:
        FileNotFoundError: if the notebook does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    client = _EchoingClient(
        nb,
        label=path.stem,
        timeout=timeout,
        kernel_name=kernel_name,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    client.execute()
    from mobileopt_ref import env  # noqa: PLC0415

    nb.metadata[METADATA_KEY] = {
        "code_sha256": code_fingerprint(nb),
        # How long this execution took, and where: the workshop page's timetable reads it.
        "seconds": round(time.perf_counter() - started, 1),
        "cpu": env.cpu_model(),
        "cores": os.cpu_count(),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return time.perf_counter() - started


def recorded_time(path) -> dict | None:
    """The time the last ``make execute`` took on a notebook, and on which machine.

    Returns:
        ``{"seconds": float, "cpu": str, "cores": int}``, or ``None`` for a notebook whose
        stored outputs do not record it (executed before the time was recorded).

    Raises:
        FileNotFoundError: if the notebook does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    meta = nbformat.read(path, as_version=4).metadata.get(METADATA_KEY, {})
    if "seconds" not in meta:
        return None
    return {"seconds": float(meta["seconds"]), "cpu": meta.get("cpu"), "cores": meta.get("cores")}
