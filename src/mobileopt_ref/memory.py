"""Memory: tensor lifetimes, arena planning, fragmentation and what a process really uses.

An interpreter does not allocate each activation on its own. Before the first inference it
knows every tensor's size and the first and last operator that touch it (its *lifetime*),
and it plans one block of memory, the *arena*, in which tensors whose lifetimes do not
overlap share bytes. This module computes the lifetimes of a ``.tflite`` graph, plans the
arena three ways, checks plans, and measures them against the lower bound. It also
simulates a general-purpose allocator over an alloc/free trace, where the source article's
usage ratio and fragmentation become visible.

Definitions used throughout (sizes in bytes):

- a tensor ``i`` of size ``s_i`` is *live* at step ``t`` when ``first_i <= t <= last_i``;
- the *lower bound* of any plan is ``max_t sum_{i live at t} s_i``: the live tensors of one
  step must all be in memory at once, in disjoint bytes;
- a plan gives each tensor an offset; it is *valid* when two tensors live at a common step
  never share a byte; its arena size is ``max_i (offset_i + s_i)``;
- the usage ratio ``rho = M_used / M_total``: memory holding live data over the memory
  reserved (the arena, or an allocator's heap);
- the fragmentation ``beta = M_fragmented / M_total``: free bytes that a request for one
  block cannot use, ``(M_free - largest free block) / M_total``.

Explained in notebooks/05_memory.ipynb.

Example:
    >>> from mobileopt_ref import memory
    >>> lives = memory.tensor_lifetimes(tflite)  # doctest: +SKIP
    >>> plan = memory.plan_greedy_by_size(lives)  # doctest: +SKIP
    >>> plan.size, memory.lower_bound(lives)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from mobileopt_ref import litert

ALIGNMENT = 64
"""Byte alignment of every tensor in an arena (LiteRT's ``kDefaultTensorAlignment``)."""


@dataclasses.dataclass(frozen=True)
class Lifetime:
    """One tensor to place: its size and the steps (operator indices) it is live.

    Attributes:
        tensor: the tensor's index in the graph (any hashable id for synthetic tensors).
        size: bytes (positive).
        first: the step that writes it first (0 for a model input).
        last: the last step that reads it (the last step for a model output).
        name: a label for tables and error messages.
    """

    tensor: object
    size: int
    first: int
    last: int
    name: str = ""

    def overlaps(self, other: "Lifetime") -> bool:
        """Whether the two are live at a common step."""
        return self.first <= other.last and other.first <= self.last


def _check_lifetimes(lives) -> list:
    lives = list(lives)
    if not lives:
        raise ValueError("no tensors to plan: give at least one Lifetime")
    seen = set()
    for life in lives:
        if isinstance(life.size, bool) or not isinstance(life.size, (int, np.integer)) or life.size <= 0:
            raise ValueError(f"tensor {life.tensor!r} has size {life.size!r}; sizes must be positive integers")
        if life.first > life.last:
            raise ValueError(f"tensor {life.tensor!r} is first used at step {life.first} after its last use {life.last}")
        if life.tensor in seen:
            raise ValueError(f"tensor {life.tensor!r} appears twice")
        seen.add(life.tensor)
    return lives


def tensor_lifetimes(model, *, batch: int = 1, keep_inputs: bool = True) -> list:
    """The lifetimes of a model's activations, from its operators in execution order.

    Every tensor computed at run time, plus the model's inputs, gets one
    :class:`Lifetime`: written by operator ``first`` (0 for an input), last read by
    operator ``last``. The model's outputs live to the last operator, and so, by default,
    do its inputs: LiteRT's ``ArenaPlanner`` never hands a graph input's bytes to another
    tensor (the caller may read or refill it between invokes). Weights are
    not in the arena and are left out, and so are weights prepared once at load
    (``DEQUANTIZE`` or ``DENSIFY`` of a constant).

    Args:
        model: ``.tflite`` bytes or path.
        batch: images per inference (a positive integer). For a batch other than 1,
            LiteRT resizes the model's input to it and each activation's size is read from
            the shapes LiteRT propagates (an activation whose batch is fixed in the file
            keeps its size; a model that cannot be resized is refused).
        keep_inputs: ``True`` (LiteRT's rule) keeps each input live to the last operator;
            ``False`` ends it at its last reader, as a runtime that may reuse the input's
            bytes would (MCUNet's analysis does).

    Returns:
        Lifetimes in tensor-index order.

    Raises:
        ValueError: for a model that is not a ``.tflite`` or has several subgraphs, a bad
            batch size or a ``keep_inputs`` that is not a bool; for a batch other than 1,
            a model with several inputs or one LiteRT cannot resize (a RESHAPE to a fixed
            batch, say).
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    if not isinstance(keep_inputs, bool):
        raise ValueError(f"keep_inputs must be True or False, got {keep_inputs!r}")
    graph = litert.read_graph(model)
    shapes = _resized(model, batch)[1] if batch != 1 else {}
    last_step = len(graph.ops) - 1
    prepared = {
        op.outputs[0]
        for op in graph.ops
        if op.op in ("DEQUANTIZE", "DENSIFY") and graph.tensors[op.inputs[0]].data is not None
    }
    first, last = {}, {}
    for index in graph.inputs:
        first[index] = 0
        last[index] = 0
    for op in graph.ops:
        for index in op.inputs:
            if index >= 0 and graph.tensors[index].data is None and index not in prepared:
                first.setdefault(index, op.index)
                last[index] = max(last.get(index, op.index), op.index)
        for index in op.outputs:
            if index in prepared:
                continue
            first.setdefault(index, op.index)
            last[index] = max(last.get(index, op.index), op.index)
    for index in (*graph.inputs, *graph.outputs) if keep_inputs else graph.outputs:
        last[index] = last_step
    lives = []
    for index in sorted(first):
        tensor = graph.tensors[index]
        if index in shapes:
            tensor = dataclasses.replace(tensor, shape=shapes[index])
        size = tensor.nbytes
        lives.append(Lifetime(index, size, first[index], last[index], tensor.name))
    return lives


IN_PLACE_OPS = ("ADD", "SUB", "MUL", "RELU", "RELU6", "LOGISTIC", "RESHAPE", "SQUEEZE")
"""Element-wise and reshaping operators whose output may take over an input's bytes."""


def share_in_place(model, lives, *, depthwise: bool = False) -> list:
    """Merges each in-place output with the input whose bytes it takes over.

    An element-wise operator (``out[i] = f(a[i], b[i])``) can write its output over an
    input of the same size when that input is read for the last time by this operator:
    each element is read before it is overwritten. LiteRT does this for MobileNetV2's
    residual additions (seen in its real arena, :func:`runtime_offsets`). Here the pair
    becomes one :class:`Lifetime` (the union of the two lifetimes, labelled with both
    tensors), so any planner and :func:`lower_bound` account for the sharing. Among
    eligible inputs the most recently produced one is taken; model inputs and outputs
    are never shared.

    With ``depthwise=True``, depthwise convolutions are run in place too, as MCUNet does
    (Lin et al. 2020): channels are independent, so channel ``c`` of the output is computed
    into a one-channel buffer and copied over channel ``c`` of the input, which no later
    channel needs. The merged tensor is ``max(input, output) + one output channel``
    bytes. LiteRT does not do this; it shows what a runtime could save.

    Args:
        model: the ``.tflite`` the lifetimes come from.
        lives: its :func:`tensor_lifetimes` (any batch size).
        depthwise: also run depthwise convolutions in place.

    Returns:
        Lifetimes with merged tensors labelled ``(input, output)``.
    """
    graph = litert.read_graph(model)
    lives = _check_lifetimes(lives)
    by_tensor = {life.tensor: life for life in lives}
    owner = {life.tensor: life.tensor for life in lives}  # tensor -> merged key
    merged = dict(by_tensor)
    protected = set(graph.inputs) | set(graph.outputs)
    for op in graph.ops:
        channelwise = depthwise and op.op == "DEPTHWISE_CONV_2D"
        if (op.op not in IN_PLACE_OPS and not channelwise) or len(op.outputs) != 1 or op.outputs[0] in protected:
            continue
        out = by_tensor.get(op.outputs[0])
        if out is None:
            continue
        inputs = op.inputs[:1] if channelwise else op.inputs
        candidates = [
            by_tensor[i] for i in inputs
            if i in by_tensor and i not in protected and (channelwise or by_tensor[i].size == out.size)
            and merged[owner[i]].last == op.index
        ]
        if not candidates:
            continue
        source = max(candidates, key=lambda life: life.first)
        key = owner[source.tensor]
        base = merged.pop(key)
        size = base.size
        if channelwise:
            channel = out.size // graph.tensors[out.tensor].shape[-1]
            size = max(base.size, out.size) + channel
        flat_key = key if isinstance(key, tuple) else (key,)
        new_key = (*flat_key, out.tensor)
        merged.pop(out.tensor)
        merged[new_key] = Lifetime(new_key, size, base.first, out.last, f"{base.name} -> {out.name}")
        for tensor in new_key:
            owner[tensor] = new_key
    return list(merged.values())


def lower_bound(lives) -> int:
    """``max_t sum_{i live at t} s_i``: no valid plan can be smaller."""
    return int(live_bytes(lives).max())


def live_bytes(lives) -> np.ndarray:
    """Bytes live at each step ``0 .. max last``."""
    lives = _check_lifetimes(lives)
    steps = max(life.last for life in lives) + 1
    live = np.zeros(steps, dtype=np.int64)
    for life in lives:
        live[life.first : life.last + 1] += life.size
    return live


@dataclasses.dataclass(frozen=True)
class Plan:
    """Offsets for every tensor in one arena.

    Attributes:
        name: the planner.
        offsets: ``{tensor: byte offset}``.
        size: arena bytes, ``max(offset + size)``.
    """

    name: str
    offsets: dict
    size: int


def _align(offset: int, alignment: int) -> int:
    return -(-offset // alignment) * alignment


def _make_plan(name, lives, offsets) -> Plan:
    return Plan(name=name, offsets=offsets, size=max(offsets[l.tensor] + l.size for l in lives))


def plan_naive(lives, alignment: int = ALIGNMENT) -> Plan:
    """No reuse: every tensor gets bytes of its own, one after the other.

    The arena is the sum of all (aligned) sizes; what an interpreter that allocates each
    tensor once and never frees would use.
    """
    lives = _check_lifetimes(lives)
    offsets, top = {}, 0
    for life in sorted(lives, key=lambda l: (l.first, str(l.tensor))):
        offsets[life.tensor] = _align(top, alignment)
        top = offsets[life.tensor] + life.size
    return _make_plan("naive", lives, offsets)


def _place(life, placed, alignment, best_fit: bool) -> int:
    """Lowest offset (first fit) or the tightest gap (best fit) among overlapping tensors."""
    blockers = sorted((offset, other.size) for other, offset in placed if other.overlaps(life))
    current, best, best_gap = 0, None, None
    for offset, size in blockers:
        start = _align(current, alignment)
        if start + life.size <= offset:
            gap = offset - start
            if not best_fit:
                return start
            if best_gap is None or gap < best_gap:
                best, best_gap = start, gap
        current = max(current, offset + size)
    return best if best is not None else _align(current, alignment)


def plan_greedy_by_size(lives, alignment: int = ALIGNMENT) -> Plan:
    """LiteRT's arena planner: largest tensors first, each in the tightest gap.

    Tensors live for the whole inference go first; the others in non-increasing size
    (ties: earlier first use first). Each is placed in the smallest gap, between tensors
    already placed whose lifetimes overlap its own, that it fits; if none, above them.
    This is ``ArenaPlanner::CreateTensorAllocationVector`` and
    ``SimpleMemoryArena::Allocate`` of LiteRT (``tensorflow/lite/arena_planner.cc``,
    ``simple_memory_arena.cc``).
    """
    lives = _check_lifetimes(lives)
    start, end = min(l.first for l in lives), max(l.last for l in lives)
    whole = [l for l in lives if l.first == start and l.last == end]
    rest = sorted((l for l in lives if not (l.first == start and l.last == end)), key=lambda l: (-l.size, l.first))
    placed, offsets = [], {}
    for life in whole + rest:
        offsets[life.tensor] = _place(life, placed, alignment, best_fit=True)
        placed.append((life, offsets[life.tensor]))
    return _make_plan("greedy by size", lives, offsets)


def plan_first_fit(lives, alignment: int = ALIGNMENT) -> Plan:
    """Tensors in execution order (first use), each at the lowest offset where it fits.

    What a simple allocator does when it allocates tensors as the operators produce
    them, knowing when each will be freed.
    """
    lives = _check_lifetimes(lives)
    placed, offsets = [], {}
    for life in sorted(lives, key=lambda l: (l.first, -l.size)):
        offsets[life.tensor] = _place(life, placed, alignment, best_fit=False)
        placed.append((life, offsets[life.tensor]))
    return _make_plan("first fit", lives, offsets)


PLANNERS = {"naive": plan_naive, "greedy by size": plan_greedy_by_size, "first fit": plan_first_fit}
"""The three planners by name."""


def check_plan(lives, plan: Plan) -> None:
    """Checks that no two tensors live at a common step share a byte.

    Raises:
        ValueError: naming the first two tensors that collide, or a tensor without an
            offset or with a negative one.
    """
    lives = _check_lifetimes(lives)
    for life in lives:
        if life.tensor not in plan.offsets or plan.offsets[life.tensor] < 0:
            raise ValueError(f"the plan has no valid offset for tensor {life.tensor!r}")
    ordered = sorted(lives, key=lambda l: plan.offsets[l.tensor])
    for i, a in enumerate(ordered):
        a_end = plan.offsets[a.tensor] + a.size
        for b in ordered[i + 1 :]:
            if plan.offsets[b.tensor] >= a_end:
                break
            if a.overlaps(b):
                raise ValueError(
                    f"tensors {a.tensor!r} (bytes {plan.offsets[a.tensor]}..{a_end}, steps {a.first}..{a.last}) "
                    f"and {b.tensor!r} (bytes {plan.offsets[b.tensor]}..{plan.offsets[b.tensor] + b.size}, "
                    f"steps {b.first}..{b.last}) are live together and overlap"
                )
    if plan.size < max(plan.offsets[l.tensor] + l.size for l in lives):
        raise ValueError(f"the plan's size {plan.size} is smaller than its highest tensor end")


def plan_is_valid(lives, plan: Plan) -> bool:
    """Whether :func:`check_plan` accepts ``plan`` for ``lives`` (``False`` instead of raising).

    For tables that report, plan by plan, whether the no-overlap check passed.
    """
    try:
        check_plan(lives, plan)
    except ValueError:
        return False
    return True


def plan_usage(lives, plan: Plan) -> dict:
    """The source article's ``rho`` and ``beta`` for an arena plan, step by step.

    At step ``t``, ``rho(t) = live(t) / arena`` and ``beta(t) = (free(t) -
    largest_free_block(t)) / arena``, where the free bytes are the arena's bytes not held
    by a live tensor and a free block is a maximal run of them.

    Returns:
        A dict with the arrays ``"rho"`` and ``"beta"`` (one value per step),
        ``"rho_peak"`` (the lower bound over the arena) and ``"rho_mean"``.
    """
    lives = _check_lifetimes(lives)
    check_plan(lives, plan)
    live = live_bytes(lives)
    betas = []
    for t in range(len(live)):
        spans = sorted(
            (plan.offsets[l.tensor], plan.offsets[l.tensor] + l.size) for l in lives if l.first <= t <= l.last
        )
        gaps, top = [], 0
        for start, end in spans:
            if start > top:
                gaps.append(start - top)
            top = max(top, end)
        gaps.append(plan.size - top)
        betas.append((sum(gaps) - max(gaps)) / plan.size)
    rho = live / plan.size
    return {"rho": rho, "beta": np.asarray(betas), "rho_peak": float(rho.max()), "rho_mean": float(rho.mean())}


# ---------------------------------------------------------------------------------------
# A general-purpose allocator over an alloc/free trace
# ---------------------------------------------------------------------------------------


class FirstFitHeap:
    """A first-fit allocator over one growing heap, with compaction.

    ``alloc`` places a block at the lowest offset where it fits among the live blocks,
    growing the heap's top if no gap is large enough; ``free`` releases a block; and
    ``compact`` slides every live block down to close the gaps (what a moving garbage
    collector or a defragmenting allocator does; the bytes it moves are its cost).

    The heap's size ``M_total`` is its top (the highest byte ever in use since the last
    compaction), ``M_used`` the bytes of live blocks, and the source article's ratios are
    ``rho = M_used / M_total`` and ``beta = (M_free - largest free block) / M_total``.
    """

    def __init__(self, alignment: int = 16):
        self.alignment = alignment
        self.blocks: dict = {}
        self.freed: set = set()
        self.top = 0

    def alloc(self, name, size: int) -> int:
        """Allocates ``size`` bytes for ``name`` and returns the offset.

        Raises:
            ValueError: for a non-positive size or a name that is still allocated.
        """
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"cannot allocate {size!r} bytes for {name!r}: sizes must be positive integers")
        if name in self.blocks:
            raise ValueError(f"{name!r} is already allocated; free it first")
        current = 0
        offset = None
        for start, length in sorted(self.blocks.values()):
            aligned = _align(current, self.alignment)
            if aligned + size <= start:
                offset = aligned
                break
            current = max(current, start + length)
        if offset is None:
            offset = _align(current, self.alignment)
        self.blocks[name] = (offset, int(size))
        self.freed.discard(name)
        self.top = max(self.top, offset + int(size))
        return offset

    def free(self, name) -> None:
        """Frees the block of ``name``.

        Raises:
            ValueError: for a double free or a name never allocated.
        """
        if name not in self.blocks:
            if name in self.freed:
                raise ValueError(f"double free: {name!r} was already freed")
            raise ValueError(f"free of unknown block {name!r}: it was never allocated")
        del self.blocks[name]
        self.freed.add(name)

    def compact(self) -> int:
        """Slides all live blocks down in address order; returns the bytes moved."""
        moved, current = 0, 0
        for name, (start, length) in sorted(self.blocks.items(), key=lambda item: item[1][0]):
            new = _align(current, self.alignment)
            if new != start:
                moved += length
            self.blocks[name] = (new, length)
            current = new + length
        self.top = current
        return moved

    def stats(self) -> dict:
        """``{"used", "total", "free", "largest_free", "rho", "beta"}`` now."""
        used = sum(length for _, length in self.blocks.values())
        gaps, current = [], 0
        for start, length in sorted(self.blocks.values()):
            if start > current:
                gaps.append(start - current)
            current = max(current, start + length)
        if self.top > current:
            gaps.append(self.top - current)
        free = self.top - used
        largest = max(gaps, default=0)
        total = self.top
        return {
            "used": used,
            "total": total,
            "free": free,
            "largest_free": largest,
            "rho": used / total if total else 1.0,
            "beta": (free - largest) / total if total else 0.0,
        }


def simulate(trace, *, alignment: int = 16) -> list:
    """Runs an alloc/free trace through a :class:`FirstFitHeap`.

    Args:
        trace: events ``("alloc", name, size)``, ``("free", name)`` or ``("compact",)``.
        alignment: the heap's alignment.

    Returns:
        list: one dict per event, holding the event, the heap's
        :meth:`FirstFitHeap.stats` after it, and ``"moved"``, the bytes a ``"compact"``
        moved (0 for other events).

    Raises:
        ValueError: for an empty trace, an unknown event, a double free, a free of an
            unknown block or a non-positive size (naming the event's position).
    """
    trace = list(trace)
    if not trace:
        raise ValueError("the trace is empty: give at least one ('alloc', name, size) event")
    heap = FirstFitHeap(alignment)
    out = []
    for position, event in enumerate(trace):
        kind = event[0] if event else None
        try:
            if kind == "alloc" and len(event) == 3:
                heap.alloc(event[1], event[2])
                moved = 0
            elif kind == "free" and len(event) == 2:
                heap.free(event[1])
                moved = 0
            elif kind == "compact" and len(event) == 1:
                moved = heap.compact()
            else:
                raise ValueError(
                    f"unknown event {event!r}; allowed: ('alloc', name, size), ('free', name), ('compact',)"
                )
        except ValueError as err:
            raise ValueError(f"event {position}: {err}") from None
        out.append({"event": event, "moved": moved, **heap.stats()})
    return out


def churn_trace(steps: int = 400, *, seed: int = 0, max_live: int = 40, sizes=(64, 4096)) -> list:
    """A random alloc/free trace of mixed sizes, like a long-running app's heap.

    At each step a block is allocated (size log-uniform in ``sizes``) or, when more than
    ``max_live`` are live or by a coin flip, a random live block is freed: small and large
    blocks interleave, and the holes left by freed blocks fit later requests only in part.

    Raises:
        ValueError: for a non-positive step count or live limit, or bad sizes.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(max_live, int) or max_live < 1:
        raise ValueError(f"max_live must be a positive integer, got {max_live!r}")
    low, high = sizes
    if not 0 < low <= high:
        raise ValueError(f"sizes must be (low, high) with 0 < low <= high, got {sizes!r}")
    rng = np.random.default_rng(seed)
    live, trace, counter = [], [], 0
    for _ in range(steps):
        if live and (len(live) >= max_live or rng.random() < 0.45):
            name = live.pop(int(rng.integers(len(live))))
            trace.append(("free", name))
        else:
            size = int(np.exp(rng.uniform(np.log(low), np.log(high))))
            name = f"b{counter}"
            counter += 1
            live.append(name)
            trace.append(("alloc", name, size))
    return trace


# ---------------------------------------------------------------------------------------
# What the runtime really does: its arena, and the process's memory
# ---------------------------------------------------------------------------------------


def _resized(model, batch: int, kernels: str = "builtin"):
    """An allocated interpreter whose one input has batch ``batch``, and every tensor's shape.

    Raises:
        ValueError: for a model with several inputs, or one LiteRT cannot resize.
    """
    interpreter = litert.make_interpreter(model, kernels=kernels)
    details = interpreter.get_input_details()
    if len(details) != 1:
        raise ValueError(f"batch={batch} needs a model with one input; this one has {len(details)}")
    try:
        interpreter.resize_tensor_input(details[0]["index"], [batch, *details[0]["shape"][1:]])
        interpreter.allocate_tensors()
    except RuntimeError as err:
        raise ValueError(f"LiteRT cannot run this model with batch={batch}: {err}") from err
    return interpreter, {d["index"]: tuple(int(n) for n in d["shape"]) for d in interpreter.get_tensor_details()}


def runtime_offsets(model, *, kernels: str = "builtin", batch: int = 1) -> dict:
    """The offsets LiteRT actually gave each activation, read from the tensors' addresses.

    With the built-in or reference kernels every activation lives in the interpreter's
    arena; its address minus the lowest activation address is its offset in LiteRT's own
    plan. (With XNNPACK the delegate keeps its own buffers, and the arena holds little.)

    Args:
        model: ``.tflite`` bytes or path with one input.
        kernels: ``"builtin"`` or ``"reference"`` (see :data:`mobileopt_ref.litert.KERNELS`).
        batch: images per inference; the input is resized to it before allocation.

    Returns:
        ``{tensor index: offset}`` (bytes) for the tensors of :func:`tensor_lifetimes`.

    Raises:
        ValueError: for a bad batch size or a model LiteRT cannot load; for a batch other
            than 1, a model with several inputs or one LiteRT cannot resize (a batch fixed in
            the file).
    """
    lives = tensor_lifetimes(model, batch=batch)
    interpreter = _resized(model, batch, kernels)[0] if batch != 1 else litert.make_interpreter(model, kernels=kernels)
    addresses = {life.tensor: interpreter.tensor(life.tensor)().ctypes.data for life in lives}
    base = min(addresses.values())
    return {tensor: int(address - base) for tensor, address in addresses.items()}


_RSS_SCRIPT = r"""
import json, os, sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

path, how, kernels, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
resolver = {"xnnpack": OpResolverType.AUTO, "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            "reference": OpResolverType.BUILTIN_REF}[kernels]
out = {"start": rss()}
content = None
if how == "copy":
    with open(path, "rb") as f:
        content = f.read()
    out["read"] = rss()
    interpreter = Interpreter(model_content=content, num_threads=threads, experimental_op_resolver_type=resolver)
else:
    out["read"] = rss()
    interpreter = Interpreter(model_path=path, num_threads=threads, experimental_op_resolver_type=resolver)
out["created"] = rss()
interpreter.allocate_tensors()
out["allocated"] = rss()
inp = interpreter.get_input_details()[0]
interpreter.set_tensor(inp["index"], np.zeros(inp["shape"], inp["dtype"]))
interpreter.invoke()
out["invoked"] = rss()
for _ in range(3):
    interpreter.invoke()
out["steady"] = rss()
print(json.dumps(out))
"""


def measure_rss(model, *, how: str = "mmap", kernels: str = "xnnpack", num_threads: int = 2) -> dict:
    """The resident memory of a fresh process as it loads and runs a model.

    A new Python process (only LiteRT and numpy imported) reads its resident set size
    from ``/proc/self/statm`` at each stage: ``start``; ``read`` (after reading the
    file into memory, for ``how="copy"``); ``created`` (interpreter built: the model is
    parsed, and with ``how="mmap"`` the file is mapped, not read); ``allocated`` (after
    ``allocate_tensors``: the arena and the delegate's packed weights); ``invoked`` (after
    one inference: pages touched for the first time); ``steady`` (after three more).

    Args:
        model: ``.tflite`` bytes or path.
        how: ``"mmap"`` (``Interpreter(model_path=...)``, LiteRT maps the file) or
            ``"copy"`` (the bytes are read into the process, ``model_content=...``).
        kernels: one of :data:`mobileopt_ref.litert.KERNELS`.
        num_threads: interpreter threads.

    Returns:
        ``{stage: bytes}`` and ``"growth"``: ``{stage: bytes over the previous stage}``.

    Raises:
        ValueError: for a bad ``how``, kernel set or thread count, a model that is not a
            ``.tflite`` or that LiteRT cannot load, or a model with more than one input (the
            process sets one); all before the process starts.
        RuntimeError: if the measuring process fails (with its error output).
    """
    if how not in ("mmap", "copy"):
        raise ValueError(f"how must be 'mmap' or 'copy', got {how!r}")
    if kernels not in litert.KERNELS:
        raise ValueError(f"kernels must be one of {sorted(litert.KERNELS)}, got {kernels!r}")
    content = litert.check_one_graph(model, "measure_rss")
    # Loaded here first (builtin kernels, no weight packing), so that a file LiteRT refuses, a
    # bad thread count or a second input the process would leave unset is a ValueError.
    litert._single_input(  # noqa: SLF001
        litert.make_interpreter(content, num_threads=num_threads, kernels="builtin"), "measure_rss")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.tflite")
        with open(path, "wb") as f:
            f.write(content)
        result = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, path, how, kernels, str(num_threads)],
            capture_output=True, text=True, timeout=300,
        )
    if result.returncode != 0:
        raise RuntimeError(f"the measuring process failed: {result.stderr[-2000:]}")
    stages = json.loads(result.stdout.strip().splitlines()[-1])
    names = list(stages)
    stages["growth"] = {b: stages[b] - stages[a] for a, b in zip(names, names[1:])}
    return stages
