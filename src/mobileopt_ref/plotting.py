"""The book's figure style and the figures every chapter shares.

Notebooks never set rcParams themselves: :func:`use_book_style` does it once (called by
:func:`mobileopt_ref.env.setup`), so every figure looks alike.
"""

from __future__ import annotations

import re

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

BOOK_STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": "medium",
    "axes.labelsize": "medium",
    "legend.frameon": False,
    "savefig.bbox": "tight",
    # Stable SVG ids and no timestamps, so re-rendering a figure gives the same file.
    "svg.hashsalt": "mobileopt",
}


def use_book_style() -> None:
    """Applies ``BOOK_STYLE``, the book's rcParams, to matplotlib."""
    mpl.rcParams.update(BOOK_STYLE)


def show_samples(images, labels, class_names, per_class: int = 6, title: str | None = None):
    """Draws a grid with ``per_class`` sample images of every class, one row a class.

    Args:
        images: ``uint8`` array ``(n, h, w, 3)``.
        labels: integer labels ``(n,)``.
        class_names: names indexed by label.
        per_class: images per row.
        title: optional figure title.

    Returns:
        The matplotlib figure.

    Raises:
        ValueError: if some class has fewer than ``per_class`` images.
    """
    labels = np.asarray(labels)
    n_classes = len(class_names)
    fig, axes = plt.subplots(
        n_classes, per_class, figsize=(1.0 * per_class + 1.2, 1.0 * n_classes), squeeze=False
    )
    for c, name in enumerate(class_names):
        idx = np.nonzero(labels == c)[0][:per_class]
        if len(idx) < per_class:
            raise ValueError(f"class {name!r} has {len(idx)} images, need {per_class}")
        for j, i in enumerate(idx):
            ax = axes[c, j]
            ax.imshow(images[i], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[c, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(histories: dict, metric: str = "accuracy"):
    """Plots training and validation curves of several runs side by side.

    Args:
        histories: ``{run name: {"accuracy": [...], "val_accuracy": [...], ...}}``,
            as Keras ``History.history`` records them.
        metric: the metric to draw (``"accuracy"`` or ``"loss"``).

    Returns:
        The matplotlib figure.
    """
    fig, ax = plt.subplots()
    for i, (name, hist) in enumerate(histories.items()):
        color = f"C{i}"
        epochs = np.arange(1, len(hist[metric]) + 1)
        ax.plot(epochs, hist[metric], color=color, linestyle="--", label=f"{name} train")
        ax.plot(epochs, hist[f"val_{metric}"], color=color, label=f"{name} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel({"accuracy": "accuracy (fraction correct)", "loss": "loss (cross-entropy, nats)"}.get(metric, metric))
    ax.legend()
    return fig


def draw_flowchart(edges, labels: dict, positions: dict, ax=None, colors: dict | None = None):
    """Draws a top-down directed graph as boxes joined by arrows (the concept diagrams).

    Each edge runs from the bottom centre of its source box to the top centre of its
    target box, so sources should sit above their targets.

    Args:
        edges: ``[(source, target), ...]`` node ids.
        labels: node id -> text in the box.
        positions: node id -> ``(x, y)`` centre in data coordinates.
        ax: axes to draw on; a new figure is made if omitted.
        colors: optional node id -> face colour.

    Returns:
        The axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    colors = colors or {}
    xs = [p[0] for p in positions.values()]
    ys = [p[1] for p in positions.values()]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 0.5, max(ys) + 0.5)
    ax.axis("off")
    boxes = {}
    for node, (x, y) in positions.items():
        boxes[node] = ax.text(
            x,
            y,
            labels[node],
            ha="center",
            va="center",
            fontsize=9,
            bbox=dict(boxstyle="round,pad=0.45", fc=colors.get(node, "#e8eef7"), ec="0.4"),
        )
    for src, dst in edges:
        ax.annotate(
            "",
            xy=(0.5, 1.0),
            xycoords=boxes[dst],
            xytext=(0.5, 0.0),
            textcoords=boxes[src],
            arrowprops=dict(arrowstyle="-|>", color="0.35", shrinkA=2, shrinkB=2, lw=1.2),
        )
    return ax


def draw_timeline(timeline, ax=None, until_s: float | None = None, title: str | None = None):
    """Draws a :class:`mobileopt_ref.ux.Timeline`: refreshes, inferences, UI frames, drops.

    Two lanes, time across: the worker thread (its inferences) and the UI thread (its
    drawing, and its inferences when it runs them itself); grey lines at the camera frames
    and display refreshes, and a red mark at each refresh that showed no new UI frame.

    Args:
        timeline: the run to draw.
        ax: axes to draw on; a new figure is made if omitted.
        until_s: draw the first ``until_s`` seconds only (default: all).
        title: the axes title.

    Returns:
        The axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 2.4))
    end = until_s if until_s is not None else timeline.ticks / timeline.fps
    ms = 1e3
    for t in timeline.arrivals:
        if t <= end:
            ax.axvline(t * ms, color="0.8", lw=0.6, zorder=0)
    lanes = {"worker thread": 1.0, "UI thread": 0.0}
    bar = dict(edgecolor="white", linewidth=0.8)
    infer_lane = lanes["UI thread"] if timeline.design == "ui" else lanes["worker thread"]
    for _, start, stop in timeline.inferences:
        if start <= end:
            ax.broken_barh([(start * ms, (stop - start) * ms)], (infer_lane - 0.35, 0.7), color="C1", **bar)
    inferred = {start: stop for _, start, stop in timeline.inferences}
    for _, start, stop, _ in timeline.ui_frames:
        if start <= end:
            draw_from = inferred.get(start, start) if timeline.design == "ui" else start
            ax.broken_barh([(draw_from * ms, (stop - draw_from) * ms)], (lanes["UI thread"] - 0.35, 0.7), color="C0", **bar)
    drops = [j / timeline.fps for j in timeline.dropped_refreshes if j / timeline.fps <= end]
    ax.scatter([d * ms for d in drops], [lanes["UI thread"] + 0.55] * len(drops), marker="v", color="C3", s=18,
               zorder=5, label="dropped refresh")
    ax.broken_barh([], (0, 0), color="C1", label="inference")
    ax.broken_barh([], (0, 0), color="C0", label="drawing")
    ax.set_yticks(list(lanes.values()), list(lanes))
    ax.set_ylim(-0.6, 1.9)
    ax.set_xlim(0, end * ms)
    ax.set_xlabel("time (ms); grey lines: camera frames and display refreshes")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right", ncol=3)
    return ax


UNITLESS = ("count", "number of", "epoch", "layer", "step", "rank", "index", "fraction", "share",
            "ratio", "threads", "sparsity", "bits", "class", "variant", "refresh", "frame", "probability")
"""Words that make an axis label complete without a unit in parentheses (a count, an index,
a dimensionless ratio or fraction)."""

_NUMBER = re.compile(r"^[\u2212\-+]?[\d.,]+(e[\u2212\-+]?\d+)?%?$"
                     r"|^([\d.]+\\times)?\d+\^[\u2212\-+]?\d+$|^$")
"""A tick label that is a number: ``"0.5"``, ``"\u22122"``, ``"1e-3"``, ``"40%"``, or a power as
a log axis writes it (``"10^-3"``, ``"2^4"``, ``"5\\times10^-1"`` once its TeX braces are gone)."""


def _shows_numbers(axis) -> bool:
    """Whether an axis shows numeric tick labels (a quantity), not category names or nothing."""
    texts = [t.get_text() for t in axis.get_ticklabels() if t.get_visible()]
    texts = [t.replace("$", "").replace("\\mathdefault", "").replace("{", "").replace("}", "").strip()
             for t in texts]
    return any(texts) and all(_NUMBER.match(t) for t in texts)


def _has_unit(label: str) -> bool:
    return bool(re.search(r"\([^)]+\)|\[[^\]]+\]", label)) or any(w in label.lower() for w in UNITLESS)


def axis_problems(fig) -> list:
    """What a figure's axes lack: a label, or a unit in it, on every axis that shows a quantity.

    An axis shows a quantity when it is visible and its tick labels are numbers (category
    names, as on a bar chart of variants, and axes without tick labels are exempt). Its
    label must name a unit in parentheses or brackets (``"latency (ms)"``, ``"size [MiB]"``)
    or a unit-less quantity (:data:`UNITLESS`: ``"count"``, ``"epoch"``, ``"ratio"``, ...).
    In a grid of panels, the figure's shared label (``fig.supxlabel``, ``fig.supylabel``)
    stands for the label of every panel's axis that has none. A colorbar needs a label too.

    Args:
        fig: a matplotlib figure (it is drawn to lay out its tick labels).

    Returns:
        One sentence per problem (empty when the figure is complete).
    """
    fig.canvas.draw()
    problems = []
    # A label shared by a grid of panels (fig.supxlabel / fig.supylabel) labels every panel's
    # axis that has none of its own.
    shared = {"x": fig.get_supxlabel(), "y": fig.get_supylabel()}
    for number, ax in enumerate(fig.axes, start=1):
        name = f"axes {number}" + (f" ({ax.get_title()!r})" if ax.get_title() else "")
        colorbar = getattr(ax, "_colorbar", None)
        if colorbar is not None:
            if not (ax.get_ylabel() or ax.get_xlabel()):
                problems.append(f"{name}: a colorbar without a label (colorbar.set_label('... (unit)'))")
            continue
        if not ax.axison or not ax.has_data():
            continue
        for which, axis, label in (("x", ax.xaxis, ax.get_xlabel()), ("y", ax.yaxis, ax.get_ylabel())):
            if not axis.get_visible() or not _shows_numbers(axis):
                continue
            label = label if label.strip() else shared[which]
            if not label.strip():
                problems.append(f"{name}: the {which} axis shows numbers but has no label")
            elif not _has_unit(label):
                problems.append(f"{name}: the {which} label {label!r} names no unit; add one in parentheses, "
                                f"e.g. '{label} (ms)', or name a unit-less quantity ({', '.join(UNITLESS[:6])}, ...)")
    return problems


def show(fig=None) -> None:
    """Shows a figure after checking that its axes are labelled with units (:func:`axis_problems`).

    The book's chapters show every figure through this function; its caption and label come
    from the cell's ``mystnb.figure`` metadata.

    Args:
        fig: the figure (default: the current one).

    Raises:
        ValueError: listing what the figure's axes lack; the figure is closed, not shown.
    """
    fig = fig if fig is not None else plt.gcf()
    problems = axis_problems(fig)
    if problems:
        plt.close(fig)
        raise ValueError("a figure's axes need labels with units: " + "; ".join(problems))
    plt.show()
