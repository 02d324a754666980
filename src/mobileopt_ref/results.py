"""Measured results across machines: one small JSON file per CPU model.

Timings differ from one CPU to the next, and they are no less valid for it. Each time a
chapter is executed it records its measured verdicts and key ratios, with the machine card,
in ``results/<cpu>.json`` of the book's checkout (:func:`record`); every chapter then shows
this machine's figures beside every machine recorded so far (:func:`table`).

A file holds::

    {"machine": {"cpu": ..., "cores": ..., "python": ..., "versions": {...}},
     "chapters": {"04_computation": {"recorded": "2026-11-30T00:12:00Z", "threads": 2,
                                      "values": {"xnn_vs_ref": {"label": ..., "text": ...,
                                                                "data": {...}}}}}}

Writes are atomic (a temporary file, then ``os.replace``) and serialised by a lock file,
so an interrupted run never leaves a half-written file and two chapters run at once keep
both entries; a file that is not valid JSON of this form is an error that
names it, never silently replaced.

Explained in book/reproducibility.md.

Example:
    >>> from mobileopt_ref import results
    >>> results.record("04_computation", {"xnn": ("XNNPACK vs reference", ratio)}, card)  # doctest: +SKIP
    >>> print(results.table("04_computation"))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import re
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; records are still atomic
    fcntl = None

RESULTS_ENV = "MOBILEOPT_RESULTS_DIR"


class ResultsError(ValueError):
    """A results file is unreadable or not of the expected form."""


def default_results_dir() -> Path:
    """Returns the results folder.

    In order: the environment variable ``MOBILEOPT_RESULTS_DIR``; the ``results/`` folder
    of the book's checkout when the current directory lies inside one (found by its
    ``_toc.yml``); ``~/.cache/mobileopt_ref/results``.
    """
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    from mobileopt_ref import models  # noqa: PLC0415 - models loads TensorFlow

    root = models.checkout_root()
    return root / "results" if root is not None else Path.home() / ".cache" / "mobileopt_ref" / "results"


def machine_slug(cpu: str) -> str:
    """A file name for a CPU model: ``"Intel(R) Xeon(R) CPU @ 2.50GHz"`` -> ``"intel-xeon-cpu-2-50ghz"``.

    Raises:
        ValueError: if the name has no letter or digit.
    """
    text = re.sub(r"\((r|tm)\)", "", str(cpu).lower())
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    if not slug:
        raise ValueError(f"cannot make a file name from the CPU name {cpu!r}")
    return slug


def _clean(value):
    """Plain JSON values; non-finite floats become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value


def describe(value) -> tuple:
    """``(text, data)`` of a measured value for a results file.

    A :class:`mobileopt_ref.stats.Ratio` becomes ``"1.93x (95 % CI 1.85-2.01), faster"``;
    a :class:`mobileopt_ref.stats.McNemar` ``"89.4 % vs 88.7 %, not distinguishable (p = 0.21)"``
    (or ``"first better"``, ``"second better"``: label it "A vs B");
    a number its value with four significant digits; a string itself.

    Raises:
        TypeError: for any other kind of value.
    """
    from mobileopt_ref import stats  # noqa: PLC0415

    if isinstance(value, stats.Ratio):
        return f"{value.text()}, {value.word}", value.to_dict()
    if isinstance(value, stats.McNemar):
        data = dataclasses.asdict(value)
        word = {"A better": "first better", "B better": "second better"}.get(value.verdict, value.verdict)
        text = (f"{100 * value.accuracy_a:.1f} % vs {100 * value.accuracy_b:.1f} %, "
                f"{word} ({stats.p_text(value.p_value)})")
        return text, data
    if isinstance(value, bool):
        return ("yes" if value else "no"), value
    if isinstance(value, (int, float)) or (hasattr(value, "item") and callable(value.item)):
        number = float(value)
        return f"{number:.4g}", _clean(number)
    if isinstance(value, str):
        return value, value
    raise TypeError(f"cannot record a {type(value).__name__}; give a stats.Ratio, stats.McNemar, number or string")


def _read(path: Path) -> dict:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ResultsError(f"results file {path} is unreadable ({err}); fix or delete it") from err
    if not isinstance(content, dict) or not isinstance(content.get("chapters"), dict) or "machine" not in content:
        raise ResultsError(f"results file {path} is not a results record (needs 'machine' and 'chapters')")
    return content


def record(chapter: str, values: dict, card, *, folder=None) -> Path:
    """Records a chapter's measured values for this machine, replacing its earlier entry.

    Args:
        chapter: the notebook's name, e.g. ``"04_computation"``.
        values: ``{key: (label, value)}``; ``value`` as :func:`describe` accepts.
        card: the :class:`mobileopt_ref.env.MachineCard` of this run.
        folder: the results folder (default :func:`default_results_dir`).

    Returns:
        The path written.

    Raises:
        ValueError: for an empty chapter name or no values.
        ResultsError: if an existing file for this CPU is not a valid results record.
        TypeError: for a value :func:`describe` does not accept.
    """
    if not isinstance(chapter, str) or not chapter.strip():
        raise ValueError(f"chapter must be a non-empty name, got {chapter!r}")
    if not values:
        raise ValueError("record needs at least one value")
    entries = {}
    for key, item in values.items():
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise ValueError(f"value {key!r} must be a (label, value) pair, got {item!r}")
        text, data = describe(item[1])
        entries[str(key)] = {"label": item[0], "text": text, "data": _clean(data)}
    folder = Path(folder) if folder is not None else default_results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{machine_slug(card.cpu)}.json"
    # Two chapters executing at once on one machine read, change and write the same file:
    # an exclusive lock around the read-modify-write keeps both entries.
    with open(folder / ".lock", "w", encoding="utf-8") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        content = _read(path) if path.exists() else {"chapters": {}}
        content["machine"] = {"cpu": card.cpu, "cores": card.cores, "python": card.python,
                              "caches": {str(k): v for k, v in getattr(card, "caches", {}).items()},
                              "simd": dict(getattr(card, "simd", {})), "versions": dict(card.versions)}
        content["chapters"][chapter] = {
            "recorded": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "threads": card.threads,
            "values": entries,
        }
        content["chapters"] = dict(sorted(content["chapters"].items()))
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(content, f, indent=1)  # values keep the order they were recorded in
                f.write("\n")
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a results file is ordinary data
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def load_all(folder=None) -> dict:
    """Every recorded machine: ``{slug: content}``, sorted by slug.

    Raises:
        ResultsError: if a file in the folder is not a valid results record.
    """
    folder = Path(folder) if folder is not None else default_results_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: _read(p) for p in sorted(folder.glob("*.json"))}


def table(chapter: str, card=None, *, folder=None) -> str:
    """A markdown table of a chapter's recorded values on every machine.

    One row per value, one column per machine (this machine's first, marked "this
    machine"), each cell the recorded text; a value a machine did not record is blank.

    Args:
        chapter: the notebook's name.
        card: this run's machine card (its column comes first), or ``None``.
        folder: the results folder (default :func:`default_results_dir`).

    Raises:
        ValueError: if no machine has recorded the chapter.
    """
    machines = {slug: c for slug, c in load_all(folder).items() if chapter in c["chapters"]}
    if not machines:
        raise ValueError(f"no machine has recorded results for {chapter!r}; execute the chapter first")
    here = machine_slug(card.cpu) if card is not None else None
    order = sorted(machines, key=lambda s: (s != here, s))
    labels = {}
    for slug in order:
        for key, entry in machines[slug]["chapters"][chapter]["values"].items():
            labels.setdefault(key, entry["label"])
    header = ["measured"]
    for slug in order:
        chap = machines[slug]["chapters"][chapter]
        name = machines[slug]["machine"]["cpu"]
        mark = " (this machine)" if slug == here else ""
        header.append(f"{name}, {chap['threads']} threads, {chap['recorded'][:10]}{mark}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, label in labels.items():
        cells = [label]
        for slug in order:
            entry = machines[slug]["chapters"][chapter]["values"].get(key)
            cells.append(entry["text"] if entry else "")
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def _checkout_results_dir() -> Path | None:
    """The ``results/`` folder of the book's checkout (what ``make execute`` committed), if any."""
    from mobileopt_ref import models  # noqa: PLC0415 - models loads TensorFlow

    root = models.checkout_root()
    return root / "results" if root is not None else None


def across_machines(chapter: str, key: str, *, folder=None) -> str:
    """One recorded value of a chapter on every machine that recorded it, as a phrase.

    For prose that compares CPUs without typing their figures: ``"on the 2 CPUs recorded in
    results/: AMD EPYC, 0.96x (95 % CI 0.91-0.99), slower; Intel Xeon, 1.49x (...)"``.
    Without ``folder``, the records are those of the book's checkout (``results/``, as
    committed) together with those of :func:`default_results_dir` (where this run records,
    which may be elsewhere, as under the test suite); a machine recorded in both is taken
    from the latter.

    Args:
        chapter: the notebook's name (``"04_computation"``).
        key: the value's key in that chapter's record.
        folder: read only this results folder.

    Returns:
        The phrase, machines in slug order; "on the one CPU recorded ..." for one machine,
        and a phrase saying so when no machine has recorded the chapter yet.

    Raises:
        ValueError: if machines recorded the chapter but none recorded ``key`` (the message
            names the keys that were recorded).
    """
    if folder is not None:
        machines = load_all(folder)
    else:
        checkout = _checkout_results_dir()
        machines = {**(load_all(checkout) if checkout is not None else {}), **load_all()}
    recorded = [m for m in machines.values() if chapter in m["chapters"]]
    if not recorded:
        return f"on no CPU recorded in results/ yet (execute {chapter} to record one)"
    found = [(m["machine"]["cpu"], m["chapters"][chapter]["values"][key]["text"])
             for m in recorded if key in m["chapters"][chapter]["values"]]
    if not found:
        known = sorted({k for m in recorded for k in m["chapters"][chapter]["values"]})
        raise ValueError(f"no machine recorded {key!r} for {chapter!r}; recorded keys: {known}")
    listed = "; ".join(f"{cpu}, {text}" for cpu, text in found)
    count = "the one CPU" if len(found) == 1 else f"the {len(found)} CPUs"
    return f"on {count} recorded in results/: {listed}"


@dataclasses.dataclass(frozen=True)
class Recorded:
    """One value a chapter recorded, with the machine and run it comes from.

    Attributes:
        chapter: the notebook's name (``"04_computation"``).
        key: the value's key in that chapter's record.
        label: what was measured, as the chapter labelled it.
        text: the recorded text (``"1.93x (95 % CI 1.85-2.01), faster"``).
        data: the recorded data: a dict for a ratio (``estimate``, ``low``, ``high``,
            ``verdict``, ...) or a McNemar test (``accuracy_a``, ``accuracy_b``,
            ``p_value``, ``verdict``, ...), a float for a number, a string for a text.
        cpu: the CPU model of the machine that recorded it.
        threads: the thread count of that run.
        date: the UTC date of that run, ``YYYY-MM-DD``.
        this_machine: whether that machine is the one of the card passed to :func:`recorded`.
    """

    chapter: str
    key: str
    label: str
    text: str
    data: object
    cpu: str
    threads: int
    date: str
    this_machine: bool

    def machine(self) -> str:
        """Where the value comes from: ``"AMD EPYC, 2 threads, 2026-11-30 (this machine)"``."""
        mark = " (this machine)" if self.this_machine else ""
        return f"{self.cpu}, {self.threads} threads, {self.date}{mark}"


def recorded(chapter: str, key: str, card=None, *, folder=None) -> Recorded:
    """One value a chapter recorded, for a chapter that reads another chapter's results.

    The value is this machine's (``card``) when this machine recorded the chapter (the book
    executes its chapters in order, so a chapter read later in the same run finds it);
    otherwise the most recent record of the chapter on any machine, and
    :attr:`Recorded.this_machine` is false so that the reader can say which machine it
    comes from. Without ``folder`` the records are those :func:`across_machines` reads (the
    checkout's ``results/`` together with :func:`default_results_dir`, the latter winning).

    Args:
        chapter: the notebook's name (``"02_pruning"``).
        key: the value's key in that chapter's record.
        card: this run's :class:`mobileopt_ref.env.MachineCard`, or ``None`` to take the
            most recent record.
        folder: read only this results folder.

    Returns:
        The :class:`Recorded` value.

    Raises:
        ResultsError: if no machine recorded the chapter (execute it first), or the chapter's
            record has no value ``key`` (the message names the keys it has).
    """
    if folder is not None:
        machines = load_all(folder)
    else:
        checkout = _checkout_results_dir()
        machines = {**(load_all(checkout) if checkout is not None else {}), **load_all()}
    having = {slug: m for slug, m in machines.items() if chapter in m["chapters"]}
    if not having:
        raise ResultsError(f"no machine has recorded results for {chapter!r}: execute notebooks/{chapter}.ipynb "
                           f"first (the book executes its chapters in order)")
    here = machine_slug(card.cpu) if card is not None else None
    slug = here if here in having else max(having, key=lambda s: having[s]["chapters"][chapter]["recorded"])
    chap = having[slug]["chapters"][chapter]
    if key not in chap["values"]:
        raise ResultsError(f"{having[slug]['machine']['cpu']}'s record of {chapter!r} has no value {key!r}; "
                           f"it has {sorted(chap['values'])}")
    entry = chap["values"][key]
    return Recorded(chapter=chapter, key=key, label=entry["label"], text=entry["text"], data=entry["data"],
                    cpu=having[slug]["machine"]["cpu"], threads=chap["threads"], date=chap["recorded"][:10],
                    this_machine=slug == here)
