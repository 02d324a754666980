"""The figure rule: every axis that shows a quantity is labelled with its unit."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mobileopt_ref import plotting  # noqa: E402


def _line(xlabel="", ylabel=""):
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [4, 5, 6])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig


def test_a_labelled_figure_passes_and_each_missing_label_or_unit_is_named():
    assert plotting.axis_problems(_line("threads (count)", "latency (ms)")) == []
    assert plotting.axis_problems(_line("epoch", "size [MiB]")) == []
    problems = plotting.axis_problems(_line("", "latency"))
    assert len(problems) == 2
    assert "the x axis shows numbers but has no label" in problems[0]
    assert "the y label 'latency' names no unit" in problems[1]


def test_category_axes_empty_axes_and_images_without_ticks_are_exempt():
    fig, (bars, blank, image) = plt.subplots(1, 3)
    bars.barh(["float32", "int8"], [3.0, 1.0])
    bars.set_xlabel("energy (mJ)")        # the y axis names variants: no unit needed
    blank.axis("off")
    image.imshow(np.zeros((4, 4)))
    image.set_xticks([])
    image.set_yticks([])
    assert plotting.axis_problems(fig) == []


def test_a_colorbar_needs_a_label():
    fig, ax = plt.subplots()
    mesh = ax.imshow(np.arange(16).reshape(4, 4))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    bar = fig.colorbar(mesh)
    assert ["colorbar without a label" in p for p in plotting.axis_problems(fig)] == [True]
    bar.set_label("images (count)")
    assert plotting.axis_problems(fig) == []


def test_show_refuses_an_unlabelled_figure_and_closes_it():
    fig = _line("time (s)", "")
    with pytest.raises(ValueError, match="the y axis shows numbers but has no label"):
        plotting.show(fig)
    assert not plt.fignum_exists(fig.number)
    plotting.show(_line("time (s)", "temperature (°C)"))
    plt.close("all")


def test_log_axes_show_numbers_too():
    # A log axis writes its ticks as TeX powers ($\mathdefault{10^{-2}}$, $2^{4}$): they are
    # numbers, so the axis needs a label with a unit like any other.
    fig, ax = plt.subplots()
    ax.loglog([1, 10, 1000], [0.01, 1, 5])
    ax.set_xscale("log", base=2)
    assert [p.split(": ")[1] for p in plotting.axis_problems(fig)] == [
        "the x axis shows numbers but has no label", "the y axis shows numbers but has no label"]
    ax.set_xlabel("batch (count)")
    ax.set_ylabel("latency (ms, log scale)")
    assert plotting.axis_problems(fig) == []
    plt.close("all")


def test_a_shared_label_of_a_grid_of_panels_labels_the_axes_without_their_own():
    fig, axes = plt.subplots(2, 2)
    for ax in axes.ravel():
        ax.hist([1.0, 2.0, 2.5, 4.0])
    assert len(plotting.axis_problems(fig)) == 8
    fig.supxlabel("latency per invoke (ms)")
    assert [p.split(": ")[1] for p in plotting.axis_problems(fig)] == ["the y axis shows numbers but has no label"] * 4
    fig.supylabel("invokes")                  # a shared label is checked for its unit like any other
    assert all("the y label 'invokes' names no unit" in p for p in plotting.axis_problems(fig))
    fig.supylabel("number of invokes")
    assert plotting.axis_problems(fig) == []
    axes[0, 0].set_ylabel("latency")          # a panel's own label is the one checked
    assert [p.split(": ")[1][:27] for p in plotting.axis_problems(fig)] == ["the y label 'latency' names"]
    plt.close("all")
