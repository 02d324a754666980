"""The book's repository URL, configured in one place, and the notebooks' Colab set-up.

The published site's Colab and Binder launch buttons, and the Colab set-up cell at the
top of every chapter, need the git URL of the book's repository. It is stored once, as
``repository.url`` in ``_config.yml`` (Jupyter Book 1 reads it for the launch buttons),
and :func:`set_repository` copies it into the ``BOOK_REPOSITORY = "..."`` line of every
set-up cell, which Colab runs before the library exists there. A test keeps the two equal.

In Colab the set-up cell clones the repository (so the shipped, verified model cache comes
along: no model is retrained there), installs the library from the clone with the book's
pinned versions, and works inside the clone, where :func:`mobileopt_ref.models.default_cache_dir`
finds the cache. Outside Colab the line does nothing, so
:func:`mobileopt_ref.execution.code_fingerprint` ignores its value: setting the URL does not
make the stored outputs stale.

Typical use::

    mobileopt set-repository https://github.com/OWNER/REPO   # then commit _config.yml and the notebooks
"""

from __future__ import annotations

import json
import re
from pathlib import Path

#: The line of a set-up cell that carries the repository URL, ``BOOK_REPOSITORY = "..."``
#: (its value is ignored by the code fingerprint).
#:
#: :meta hide-value:
REPOSITORY_LINE = re.compile(r'^BOOK_REPOSITORY = "([^"\\]*)"(.*)$', re.MULTILINE)

#: The services the launch buttons open (Jupyter Book 1's ``launch_buttons`` keys).
LAUNCH_SERVICES = {"colab_url": "https://colab.research.google.com", "binderhub_url": "https://mybinder.org"}

_URL = re.compile(r"^https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?(\.git)?$")
_CONFIG_URL = re.compile(r"^(repository:\n(?:[ \t]+.*\n|[ \t]*\n)*?[ \t]+url:[ \t]*)(\"[^\"]*\"|'[^']*'|[^\s#]*)(.*)$",
                         re.MULTILINE)


def check_url(url: str) -> str:
    """Returns ``url`` if it names a GitHub repository; raises otherwise.

    Colab opens notebooks only from GitHub (the book theme refuses a Colab button for other
    hosts), so the URL must be ``https://github.com/OWNER/REPO``.

    Args:
        url: ``https://github.com/OWNER/REPO``, optionally ending in ``.git``.

    Raises:
        ValueError: anything else, with what is allowed.
    """
    if not isinstance(url, str) or not _URL.match(url):
        raise ValueError(f"not a GitHub repository URL: {url!r}; give https://github.com/OWNER/REPO "
                         "(Colab opens notebooks only from GitHub)")
    return url.removesuffix(".git")


def configured_repository(root) -> str:
    """Returns ``repository.url`` from ``root/_config.yml`` ("" when not configured).

    Raises:
        FileNotFoundError: ``root`` holds no ``_config.yml``.
        ValueError: ``_config.yml`` has no ``repository:`` block with a ``url:`` key.
    """
    text = (Path(root) / "_config.yml").read_text(encoding="utf-8")
    m = _CONFIG_URL.search(text)
    if m is None:
        raise ValueError(f"{Path(root) / '_config.yml'} has no 'repository:' block with a 'url:' key")
    return m.group(2).strip("\"'")


def setup_cells(root) -> dict:
    """Returns ``{notebook path: URL in its set-up cell}`` for every notebook listed in ``_toc.yml``
    whose code carries a ``BOOK_REPOSITORY`` line (the chapters; pages without Colab set-up are
    left out)."""
    found = {}
    for path in _toc_notebooks(root):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                m = REPOSITORY_LINE.search("".join(cell["source"]))
                if m:
                    found[path] = m.group(1)
                    break
    return found


def _toc_notebooks(root) -> list:
    root = Path(root)
    files = re.findall(r"file:\s*(\S+)", (root / "_toc.yml").read_text(encoding="utf-8"))
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").is_file()]


def set_repository(root, url: str) -> list:
    """Stores ``url`` in ``_config.yml`` and in every chapter's set-up cell.

    ``_config.yml`` also gets the launch services (:data:`LAUNCH_SERVICES`) filled in, so the
    site shows "Colab" and "Binder" buttons on every chapter.

    Only the URL changes: ``_config.yml`` keeps its comments and layout, each notebook keeps
    its outputs (the fingerprint ignores the URL's value), and each file is written
    atomically.

    Args:
        root: the book's checkout (holds ``_config.yml`` and ``_toc.yml``).
        url: see :func:`check_url`.

    Returns:
        The files changed (``_config.yml`` first).

    Raises:
        ValueError: a bad URL, or a ``_config.yml`` without ``repository.url``.
    """
    root = Path(root)
    url = check_url(url)
    changed = []
    config = root / "_config.yml"
    text = config.read_text(encoding="utf-8")
    configured_repository(root)  # raises if the key is missing
    new = _CONFIG_URL.sub(lambda m: f"{m.group(1)}{url}{m.group(3)}", text, count=1)
    for key, service in LAUNCH_SERVICES.items():
        new, n = re.subn(rf"^([ \t]+{key}:[ \t]*).*$", rf"\g<1>{service}", new, count=1, flags=re.MULTILINE)
        if n != 1:
            raise ValueError(f"{config} has no 'launch_buttons: {key}:' line to fill in")
    if new != text:
        _write(config, new)
        changed.append(config)
    for path in setup_cells(root):
        raw = path.read_text(encoding="utf-8")
        nb = json.loads(raw)
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            if REPOSITORY_LINE.search(source):
                source = REPOSITORY_LINE.sub(lambda m: f'BOOK_REPOSITORY = "{url}"{m.group(2)}', source, count=1)
                cell["source"] = source.splitlines(keepends=True)
                break
        out = json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"  # as nbformat writes
        if out != raw:
            _write(path, out)
            changed.append(path)
    return changed


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
