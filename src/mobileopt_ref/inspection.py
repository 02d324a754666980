"""The book's measurements applied to any ``.tflite``: what ``mobileopt inspect`` reports.

One call, :func:`inspect_model`, reads a model and measures it the way the chapters do:

- **file**: size and gzip size, parameters, the dtype mix of weights and activations,
  signatures;
- **operators**: counts, multiply-accumulates and their share per operator type
  (:func:`mobileopt_ref.compute.tflite_macs`), and how XNNPACK takes the graph: its
  partitions and the operators left on LiteRT's built-in kernels
  (:func:`mobileopt_ref.litert.delegated_ops`);
- **memory**: the activation arena as planned (greedy by size, and the lower bound) and as
  LiteRT really lays it out (:mod:`mobileopt_ref.memory`), and the resident memory of a
  fresh process that loads and runs the model (:func:`mobileopt_ref.memory.measure_rss`);
- **speed**: the median and p99 latency with 95 % intervals at one thread and at ``threads``,
  measured side by side (:func:`mobileopt_ref.compute.compare_latency`), and the
  thread speed-up judged by its interval;
- **roofline**: this machine's peak rate and memory bandwidth (measured now, or as the
  computation chapter recorded them for this CPU), the model's arithmetic intensity, the
  rate it attained at its median latency, and which roof bounds it;
- **energy**: the modelled energy of one inference (:func:`mobileopt_ref.energy.inference_energy`,
  Horowitz's 45 nm table, everything in DRAM: an upper bound on memory energy);
- **quantization**, for a float32 model: LiteRT Quantizer recipes applied and each result
  measured for size, median latency and output error against the float model (SQNR on the
  given inputs, or on random ones; the report says which);
- **verdicts**: short advice computed from the figures.

What is deterministic (sizes, counts, MACs, plans, modelled energy) comes out the same on
every machine; what is timed is a measurement of this machine, reported with its interval.

Example:
    >>> from mobileopt_ref import inspection
    >>> report = inspection.inspect_model("model.tflite", threads=2)  # doctest: +SKIP
    >>> print(inspection.to_markdown(report))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from mobileopt_ref import compute, energy, litert, memory, stats
from mobileopt_ref import quantization as qz

STEPS = {
    "file": "reading the file",
    "operators": "counting operators and MACs, XNNPACK partitions",
    "memory": "planning the activation arena",
    "energy": "modelling energy",
    "speed": "timing 1 and N threads side by side, LiteRT's benchmark tool, a fresh process's memory",
    "roofline": "placing the model on this machine's roofline",
    "quantization": "quantizing with LiteRT Quantizer recipes and timing the results",
}
"""The steps :func:`inspect_model` reports to its ``progress`` callback, in order, with what each does."""

QUANTIZER_RECIPES = ("dynamic_wi8_afp32", "weight_only_wi4_afp32")
"""LiteRT Quantizer recipes :func:`inspect_model` tries on a float32 model."""


@dataclasses.dataclass
class Inspection:
    """Everything :func:`inspect_model` found, as plain values (``to_dict`` gives JSON).

    Sizes are in bytes, times in milliseconds, energy in millijoules. ``sections`` maps a
    section name to its figures; ``skipped`` says why a section is missing (a model the
    measurement does not support); ``verdicts`` are sentences computed from the figures.
    """

    model: str
    sections: dict
    skipped: dict
    verdicts: list

    def to_dict(self) -> dict:
        return {"model": self.model, "sections": self.sections, "skipped": self.skipped, "verdicts": self.verdicts}


def _dtype_mix(graph) -> tuple:
    """``({dtype: weight parameters}, {dtype: activation tensors})``."""
    weights, activations = {}, {}
    for tensor in graph.tensors:
        name = tensor.dtype_name
        if tensor.data is not None:
            count = int(np.prod(tensor.shape, dtype=np.int64)) if len(tensor.shape) else 1
            weights[name] = weights.get(name, 0) + count
        else:
            activations[name] = activations.get(name, 0) + 1
    return weights, activations


def _file_section(content: bytes, graph) -> dict:
    weights, activations = _dtype_mix(graph)
    return {
        "size_bytes": litert.model_size(content),
        "gzip_bytes": litert.gzip_size(content),
        "parameters": int(sum(weights.values())),
        "weight_dtypes": weights,
        "activation_dtypes": activations,
        "signatures": list(litert.signatures(content)),
        "inputs": [{"name": graph.tensors[i].name, "shape": list(graph.tensors[i].shape),
                    "dtype": graph.tensors[i].dtype_name} for i in graph.inputs],
        "outputs": [{"name": graph.tensors[i].name, "shape": list(graph.tensors[i].shape),
                     "dtype": graph.tensors[i].dtype_name} for i in graph.outputs],
    }


def _operators_section(content: bytes, graph) -> dict:
    counts = graph.op_counts()
    try:
        macs = compute.tflite_macs(content)
    except ValueError as err:
        macs, mac_error = None, str(err)
    else:
        mac_error = None
    by_type = {op: {"count": n, "macs": None, "share": None} for op, n in counts.items()}
    if macs is not None:
        total = macs["total"]
        for row in macs["ops"]:
            entry = by_type[row["op"]]
            entry["macs"] = (entry["macs"] or 0) + int(row["macs"])
        for entry in by_type.values():
            entry["share"] = (entry["macs"] or 0) / total if total else 0.0
    delegation = litert.delegated_ops(content)
    off_xnnpack: dict = {}
    for index in delegation["not_delegated"]:
        off_xnnpack[graph.ops[index].op] = off_xnnpack.get(graph.ops[index].op, 0) + 1
    return {
        "by_type": by_type,
        "total_ops": len(graph.ops),
        "macs": None if macs is None else int(macs["total"]),
        "weight_bytes": None if macs is None else int(macs["weight_bytes"]),
        "activation_bytes": None if macs is None else int(macs["activation_bytes"]),
        "macs_unavailable": mac_error,
        "xnnpack_partitions": int(delegation["partitions"]),
        "ops_off_xnnpack": off_xnnpack,
    }


def _memory_section(content: bytes) -> dict:
    lives = memory.tensor_lifetimes(content)
    plan = memory.plan_greedy_by_size(lives)
    offsets = memory.runtime_offsets(content)
    sizes = {life.tensor: life.size for life in lives}
    real = max(offsets[t] + sizes[t] for t in offsets)
    return {
        "activations": len(lives),
        "sum_of_activations_bytes": int(sum(sizes.values())),
        "lower_bound_bytes": int(memory.lower_bound(lives)),
        "greedy_plan_bytes": int(plan.size),
        "litert_arena_bytes": int(real),
    }


def _latency_summary(s) -> dict:
    return {"p50_ms": s.p50_ms, "p99_ms": s.p99_ms, "ci95_ms": list(s.ci95_ms), "runs": s.runs}


def _speed_section(content: bytes, threads: int, num_runs: int, rounds: int) -> dict:
    settings = {"1 thread": 1} if threads == 1 else {"1 thread": 1, f"{threads} threads": threads}
    runs = compute.compare_latency({name: content for name in settings}, num_runs=num_runs, warmup=max(5, num_runs // 20),
                                   rounds=rounds, num_threads=settings)
    section = {name: _latency_summary(runs[name]) for name in settings}
    # Cross-check: LiteRT's own benchmark tool (CompiledModel API) at the same thread count.
    try:
        tool = compute.litert_benchmark(content, num_threads=threads, num_runs=max(50, num_runs // 2))
    except (ValueError, RuntimeError) as err:
        section["litert_benchmark"] = {"skipped": str(err)}
    else:
        ours = runs[list(settings)[-1]]
        section["litert_benchmark"] = {
            "median_ms": tool["median_ms"], "p95_ms": tool["p95_ms"], "threads": threads,
            "inside_our_interval": bool(ours.ci95_ms[0] - 0.005 <= tool["median_ms"] <= ours.ci95_ms[1] + 0.005),
        }
    if threads > 1:
        ratio = stats.latency_ratio(runs["1 thread"], runs[f"{threads} threads"])
        section["thread_speedup"] = {"text": ratio.text(), "verdict": ratio.speed_word,
                                     "estimate": ratio.estimate, "ci95": [ratio.low, ratio.high]}
    return section


ROOFLINE_SOURCES = ("measure", "recorded")
"""How :func:`inspect_model` obtains this machine's roofline: ``"measure"`` it now
(:func:`mobileopt_ref.compute.measure_roofline`, a few seconds), or reuse the one the
computation chapter ``recorded`` for this CPU at the same thread count (measuring it now
when there is none)."""


def recorded_roofline(threads: int, *, folder=None) -> dict | None:
    """This CPU's roofline as the computation chapter recorded it at ``threads`` threads.

    Reads the ``peak_gflops`` and ``bandwidth_gbs`` values of ``04_computation`` in the
    results record of this CPU model (:mod:`mobileopt_ref.results`: the book's checkout
    and :func:`mobileopt_ref.results.default_results_dir`, or ``folder``).

    Returns:
        ``{"peak_gflops", "bandwidth_gbs", "recorded"}`` (the record's UTC time), or
        ``None`` when no record of this CPU at this thread count holds both.
    """
    from mobileopt_ref import env, results  # noqa: PLC0415

    if folder is not None:
        machines = results.load_all(folder)
    else:
        checkout = results._checkout_results_dir()
        machines = {**(results.load_all(checkout) if checkout is not None else {}), **results.load_all()}
    entry = machines.get(results.machine_slug(env.cpu_model()), {}).get("chapters", {}).get("04_computation")
    if not entry or entry.get("threads") != threads:
        return None
    values = entry.get("values", {})
    try:
        peak, bandwidth = float(values["peak_gflops"]["data"]), float(values["bandwidth_gbs"]["data"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (peak > 0 and bandwidth > 0):
        return None
    return {"peak_gflops": peak, "bandwidth_gbs": bandwidth, "recorded": entry.get("recorded", "")}


def _float_arithmetic(graph) -> bool:
    """Whether every multiply-accumulating operator computes in floating point (its input
    activation and the weights it reads are float: float16 weights are expanded first)."""
    for op in graph.ops:
        if op.op in compute.TFLITE_MAC_OPS:
            for index in op.inputs[:2]:
                if index >= 0 and not graph.tensors[index].dtype_name.startswith("float"):
                    return False
    return True


def _roofline_section(graph, ops: dict, speed: dict, threads: int, source: str) -> dict:
    """Where the model sits on this machine's roofline, at ``threads`` threads."""
    import time  # noqa: PLC0415

    roof, start = None, time.perf_counter()
    if source == "recorded":
        roof = recorded_roofline(threads)
        if roof is not None:
            how = (f"recorded by the computation chapter on this CPU model at {threads} threads "
                   f"({roof['recorded'][:10]}), not measured now")
    if roof is None:
        measured = compute.measure_roofline(num_threads=threads)
        roof = {"peak_gflops": measured["peak_gflops"], "bandwidth_gbs": measured["bandwidth_gbs"]}
        how = (f"measured now ({time.perf_counter() - start:.1f} s): best median of {len(compute.PEAK_SHAPES)} "
               f"float32 matrix products and a float32 vector addition much larger than the caches, XNNPACK, "
               f"{threads} thread{'s' if threads > 1 else ''}")
    peak, bandwidth = roof["peak_gflops"], roof["bandwidth_gbs"]
    counts = {"total": ops["macs"], "weight_bytes": ops["weight_bytes"], "activation_bytes": ops["activation_bytes"]}
    intensity = compute.arithmetic_intensity(counts)
    run = speed["1 thread" if threads == 1 else f"{threads} threads"]
    attained = 2.0 * ops["macs"] / (run["p50_ms"] * 1e-3) / 1e9
    attainable = float(compute.attainable_gflops(intensity, peak, bandwidth))
    ridge = peak / bandwidth
    return {
        "source": how, "threads": threads, "peak_gflops": peak, "bandwidth_gbs": bandwidth,
        "ridge_flops_per_byte": ridge, "intensity_flops_per_byte": intensity, "attained_gflops": attained,
        "attainable_gflops": attainable, "fraction_of_roof": attained / attainable,
        "bound": "memory" if intensity < ridge else "compute", "float_arithmetic": _float_arithmetic(graph),
    }


def roofline_verdict(r: dict) -> str:
    """One sentence from a roofline section of :func:`inspect_model`: which roof bounds the
    model, and how much of it the model attained (reads true whichever way it came out)."""
    side = "left of" if r["bound"] == "memory" else "right of"
    text = (f"Roofline ({r['threads']} thread{'s' if r['threads'] > 1 else ''}): arithmetic intensity "
            f"{r['intensity_flops_per_byte']:.1f} FLOP/byte (no-cache count), {side} this machine's ridge at "
            f"{r['ridge_flops_per_byte']:.1f}")
    if not r["float_arithmetic"]:
        return (text + f"; the model multiplies in integers, so the float32 roof does not bound it (its integer roof "
                f"is not measured): it did {r['attained_gflops']:.1f} G operations/s, "
                f"{r['fraction_of_roof']:.2f}x the float32 roof at its intensity.")
    bound = ("memory-bound: fewer bytes moved (smaller weights and maps) should help it more than fewer MACs"
             if r["bound"] == "memory" else "compute-bound: fewer or faster multiply-accumulates help it most")
    text += f", so {bound}. It attained {r['attained_gflops']:.1f} GFLOP/s, {100 * r['fraction_of_roof']:.0f} % of its roof"
    if r["fraction_of_roof"] > 1:
        return text + " (above it: its data stayed in cache, so it moved fewer bytes than the no-cache count says)."
    if r["fraction_of_roof"] < 0.25:
        return text + (" (far below it: per-operator overheads, small maps or kernels that keep the SIMD units "
                       "idle take the time; a per-operator profile shows where).")
    return text + "."


def random_inputs(detail: dict, n: int, seed: int = 0) -> np.ndarray:
    """``n`` random inputs for one input tensor, as :func:`inspect_model` uses without given inputs.

    Args:
        detail: the tensor's entry of ``Interpreter.get_input_details()``.
        n: how many (the batch dimension of the result).
        seed: seed of the generator.

    Returns:
        ``(n, *shape[1:])``: uint8 pixels 0-255 for an image input (rank 4, 1 or 3 channels),
        uniform floats in [-1, 1] for another float input, 0 for integer ids (unquantized),
        uniform integers of the type for a quantized integer input.
    """
    rng = np.random.default_rng(seed)
    shape, dtype = (n, *detail["shape"][1:]), np.dtype(detail["dtype"])
    if len(shape) == 4 and shape[-1] in (1, 3):
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if np.issubdtype(dtype, np.floating):
        return rng.uniform(-1, 1, shape).astype(dtype)
    if detail["quantization"][0] == 0:
        return np.zeros(shape, dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def _outputs(content: bytes, x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8 and x.ndim == 4:
        return litert.predict_tflite(content, x, batch_size=len(x), kernels="builtin")
    return litert.run_batches(content, x, batch_size=len(x), kernels="builtin")


def _quantization_section(content: bytes, graph, x: np.ndarray, source: str, labels, num_runs: int,
                          rounds: int, threads: int) -> dict:
    reference = _outputs(content, x)
    files = {"float32 (as given)": content}
    errors = {}
    for recipe in QUANTIZER_RECIPES:
        try:
            files[recipe] = litert.quantize_with_recipe(content, recipe)
        except ValueError as err:
            errors[recipe] = str(err)
    runs = compute.compare_latency(files, num_runs=num_runs, warmup=max(5, num_runs // 20), rounds=rounds,
                                   num_threads=threads)
    rows = {}
    for name, quantized in files.items():
        out = _outputs(quantized, x)
        row = {"size_bytes": len(quantized), "gzip_bytes": litert.gzip_size(quantized),
               "p50_ms": runs[name].p50_ms, "p99_ms": runs[name].p99_ms,
               "sqnr_db": None if name.startswith("float32") else qz.sqnr_db(reference, out)}
        if labels is not None:
            row["top1"] = float(np.mean(np.argmax(out, axis=-1) == labels))
        if name != "float32 (as given)":
            ratio = stats.latency_ratio(runs["float32 (as given)"], runs[name])
            row["speedup"] = {"text": ratio.text(), "verdict": ratio.speed_word}
            row["top1_agreement"] = float(np.mean(np.argmax(out, axis=-1) == np.argmax(reference, axis=-1))) \
                if reference.ndim == 2 else None
        rows[name] = row
    return {"inputs": source, "variants": rows, "refused": errors}


def _verdicts(sections: dict) -> list:
    """Short advice computed from the figures (each sentence names the figure it rests on)."""
    out = []
    file, ops = sections.get("file"), sections.get("operators")
    mem = sections.get("memory")
    if file and mem:
        weights = ops["weight_bytes"] if ops and ops["weight_bytes"] is not None else file["size_bytes"]
        if weights > mem["litert_arena_bytes"]:
            float_share = file["weight_dtypes"].get("float32", 0) / max(1, file["parameters"])
            advice = " try int8 or int4 weights" if float_share > 0.5 else ""
            out.append(f"Weights ({weights / 2**20:.2f} MiB) take more memory than the activation arena "
                       f"({mem['litert_arena_bytes'] / 2**20:.2f} MiB):{advice or ' they are already quantized'}.")
        else:
            out.append(f"The activation arena ({mem['litert_arena_bytes'] / 2**20:.2f} MiB) outweighs the weights "
                       f"({weights / 2**20:.2f} MiB): a smaller input or narrower early layers save the most memory.")
        if mem["litert_arena_bytes"] > mem["greedy_plan_bytes"]:
            out.append(f"LiteRT's arena is {mem['litert_arena_bytes'] / mem['greedy_plan_bytes']:.2f}x the greedy plan.")
    if ops:
        n_off = sum(n for n in ops["ops_off_xnnpack"].values())
        if ops["xnnpack_partitions"] == 0:
            out.append("XNNPACK takes no operator of this model: every operator runs on LiteRT's built-in kernels.")
        elif n_off:
            names = ", ".join(f"{op} x{n}" for op, n in ops["ops_off_xnnpack"].items())
            out.append(f"{n_off} of {ops['total_ops']} operators run off XNNPACK ({names}), in "
                       f"{ops['xnnpack_partitions']} XNNPACK partition(s) between them.")
        else:
            out.append(f"XNNPACK takes all {ops['total_ops']} operators in {ops['xnnpack_partitions']} partition(s).")
    if "roofline" in sections:
        out.append(roofline_verdict(sections["roofline"]))
    speed = sections.get("speed", {})
    if "thread_speedup" in speed:
        t = speed["thread_speedup"]
        out.append(f"More threads: {t['text']}, {t['verdict']} (measured here).")
    quant = sections.get("quantization")
    if quant:
        for name, row in quant["variants"].items():
            if name.startswith("float32"):
                continue
            out.append(f"{name}: {row['size_bytes'] / file['size_bytes']:.2f} of the file size, SQNR "
                       f"{row['sqnr_db']:.1f} dB on {quant['inputs']}, speed {row['speedup']['text']}, "
                       f"{row['speedup']['verdict']}.")
    return out


def _check_inputs(x: np.ndarray, detail: dict) -> np.ndarray:
    """Inputs as the model takes them: pixels for an image input, else its dtype; its shape."""
    expected = tuple(int(d) for d in detail["shape"][1:])
    if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected or len(x) == 0:
        raise ValueError(f"inputs must have shape (n>0, {', '.join(map(str, expected))}) for this model, got {x.shape}")
    if len(expected) == 3 and expected[-1] in (1, 3):
        from mobileopt_ref import data  # noqa: PLC0415

        return data.check_pixels(x)
    if x.dtype != np.dtype(detail["dtype"]):
        raise ValueError(f"inputs must be {np.dtype(detail['dtype']).name} for this model, got {x.dtype}")
    return x


def _labels_for(labels, n: int):
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, one per input: got {labels.dtype} {labels.shape} for {n} inputs")
    return labels


def inspect_model(model, *, inputs=None, labels=None, threads: int = 2, num_runs: int = 200, rounds: int = 10,
                  measure: bool = True, quantize: bool = True, roofline: str | None = "measure",
                  progress=None) -> Inspection:
    """Reads and measures one ``.tflite`` model as the book's chapters do.

    Args:
        model: ``.tflite`` bytes or path, one subgraph (a file with several signatures:
            :func:`mobileopt_ref.litert.select_signature` first).
        inputs: ``(n, ...)`` inputs for the output-error figures: uint8 pixels for an image
            model, else values in the input's dtype. ``None``: 32 random inputs (the report
            says so).
        labels: optional integer labels, one per input (top-1 accuracy of each variant).
        threads: the thread count timed beside one thread (positive).
        num_runs, rounds: timed invokes per variant and interleaved rounds.
        measure: time the model (``False`` skips every timed figure).
        quantize: try LiteRT Quantizer recipes on a float32 model.
        roofline: how to get this machine's roofline for the model's position on it, one of
            :data:`ROOFLINE_SOURCES` (``"measure"``: about 3 s on the book's machine), or
            ``None`` for no roofline. Needs ``measure`` and a model whose MACs are counted.
        progress: optional callable ``progress(step_name)`` called before each step.

    Returns:
        An :class:`Inspection`.

    Raises:
        ValueError: for content that is not a complete ``.tflite``, a model with several
            subgraphs, bad counts, or inputs and labels that do not fit the model.
    """
    content = litert.check_one_graph(model, "inspect_model")
    for name, value in (("threads", threads), ("num_runs", num_runs), ("rounds", rounds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if rounds > num_runs:
        raise ValueError(f"rounds must be at most num_runs={num_runs}, got {rounds}")
    if roofline is not None and roofline not in ROOFLINE_SOURCES:
        raise ValueError(f"roofline must be one of {', '.join(ROOFLINE_SOURCES)} or None, got {roofline!r}")
    step = progress or (lambda name: None)
    graph = litert.read_graph(content)
    interpreter = litert.make_interpreter(content, kernels="builtin")
    details = interpreter.get_input_details()
    if inputs is None:
        x = random_inputs(details[0], 32, seed=0) if len(details) == 1 else None
        source = "32 random inputs"
    else:
        if len(details) != 1:
            raise ValueError(f"inputs can be given for models with one input; this one has {len(details)}")
        x = _check_inputs(np.asarray(inputs), details[0])
        source = f"{len(x)} given inputs"
    labels = _labels_for(labels, len(x)) if x is not None else None
    sections, skipped = {}, {}
    step("file")
    sections["file"] = _file_section(content, graph)
    step("operators")
    sections["operators"] = _operators_section(content, graph)
    step("memory")
    try:
        sections["memory"] = _memory_section(content)
    except ValueError as err:
        skipped["memory"] = str(err)
    step("energy")
    try:
        e = energy.inference_energy(content)
        sections["energy"] = {"modelled_mj": 1e3 * e["total_j"], "compute_mj": 1e3 * e["compute_j"],
                              "memory_mj": 1e3 * e["memory_j"],
                              "assumptions": "Horowitz 2014 45 nm energies per operation and per 32-bit access; "
                                             "every weight and activation read once from DRAM (an upper bound on "
                                             "memory energy); arithmetic charged at the input activation's dtype"}
    except ValueError as err:
        skipped["energy"] = str(err)
    if measure:
        step("speed")
        sections["speed"] = _speed_section(content, threads, num_runs, rounds)
        try:  # a fresh process: LiteRT and numpy only, the file mapped as an app maps it
            rss = memory.measure_rss(content, num_threads=threads)
            sections["process_memory"] = {"steady_rss_bytes": rss["steady"], "start_rss_bytes": rss["start"],
                                          "model_rss_bytes": rss["steady"] - rss["start"]}
        except ValueError as err:
            skipped["process_memory"] = str(err)
        if roofline is None:
            skipped["roofline"] = "not asked for (--no-roofline)"
        elif sections["operators"]["macs"] is None:
            skipped["roofline"] = f"needs the MAC count: {sections['operators']['macs_unavailable']}"
        elif not sections["operators"]["macs"]:
            skipped["roofline"] = "the model multiply-accumulates nothing"
        else:
            step("roofline")
            sections["roofline"] = _roofline_section(graph, sections["operators"], sections["speed"],
                                                     threads, roofline)
    else:
        skipped["speed"] = "not measured (measure=False)"
        if roofline is not None:
            skipped["roofline"] = "needs the measured latency (measure=False)"
    is_float = not any(t.quantized or t.dtype_name in ("float16", "INT4", "INT2") for t in graph.tensors)
    if quantize and measure and x is not None and is_float:
        step("quantization")
        sections["quantization"] = _quantization_section(content, graph, x, source, labels,
                                                         max(rounds, num_runs // 2), rounds, threads)
    elif quantize:
        skipped["quantization"] = ("the model is quantized already" if not is_float else
                                   "needs timing (measure=True)" if not measure else "needs a model with one input")
    return Inspection(model=str(model) if not isinstance(model, (bytes, bytearray)) else f"{len(content)} bytes",
                      sections=sections, skipped=skipped, verdicts=_verdicts(sections))


def _mib(n) -> str:
    return "n/a" if n is None else f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def to_markdown(report: Inspection) -> str:
    """The report as markdown: one table a section, then the verdicts."""
    s = report.sections
    lines = [f"# {report.model}", ""]
    f = s["file"]
    lines += ["| file | |", "|---|---|", f"| size | {_mib(f['size_bytes'])} |", f"| gzip | {_mib(f['gzip_bytes'])} |",
              f"| parameters | {f['parameters']:,} |",
              f"| weights by dtype | {', '.join(f'{k} {v:,}' for k, v in f['weight_dtypes'].items())} |",
              f"| signatures | {', '.join(f['signatures']) or 'none'} |", ""]
    o = s["operators"]
    lines += ["| operator | count | MACs | share of MACs |", "|---|---:|---:|---:|"]
    for op, e in sorted(o["by_type"].items(), key=lambda kv: -(kv[1]["macs"] or 0)):
        macs = "n/a" if e["macs"] is None else f"{e['macs']:,}"
        share = "n/a" if e["share"] is None else f"{100 * e['share']:.1f} %"
        lines.append(f"| {op} | {e['count']} | {macs} | {share} |")
    lines += ["", f"XNNPACK partitions: {o['xnnpack_partitions']}; operators off XNNPACK: "
              f"{', '.join(f'{k} x{v}' for k, v in o['ops_off_xnnpack'].items()) or 'none'}", ""]
    if "memory" in s:
        m = s["memory"]
        lines += ["| activation memory | bytes |", "|---|---:|", f"| lower bound | {_mib(m['lower_bound_bytes'])} |",
                  f"| greedy plan | {_mib(m['greedy_plan_bytes'])} |",
                  f"| LiteRT's arena | {_mib(m['litert_arena_bytes'])} |", ""]
    if "process_memory" in s:
        pm = s["process_memory"]
        lines += [f"A fresh process (LiteRT and numpy only) held {_mib(pm['steady_rss_bytes'])} resident after a few "
                  f"inferences, {_mib(pm['model_rss_bytes'])} more than before it loaded the model (measured here).", ""]
    if "speed" in s:
        lines += ["| threads | p50 (95 % CI) | p99 |", "|---|---:|---:|"]
        for name, v in s["speed"].items():
            if name not in ("thread_speedup", "litert_benchmark"):
                lines.append(f"| {name} | {v['p50_ms']:.3f} ms ({v['ci95_ms'][0]:.3f}-{v['ci95_ms'][1]:.3f}) | "
                             f"{v['p99_ms']:.3f} ms |")
        b = s["speed"]["litert_benchmark"]
        if "skipped" in b:
            lines += ["", f"LiteRT's own benchmark tool was not run: {b['skipped']}", ""]
        else:
            lines += ["", f"LiteRT's own benchmark tool (CompiledModel API, {b['threads']} threads, times rounded to "
                      f"0.01 ms): median {b['median_ms']:.2f} ms, p95 {b['p95_ms']:.2f} ms; "
                      f"{'inside' if b['inside_our_interval'] else 'outside'} the 95 % interval of this harness's "
                      f"median at the same thread count (two measurements, not one truth).", ""]
    if "roofline" in s:
        r = s["roofline"]
        unit = "GFLOP/s" if r["float_arithmetic"] else "G operations/s"
        lines += [f"| roofline, {r['threads']} thread{'s' if r['threads'] > 1 else ''} | |", "|---|---:|",
                  f"| peak (best matrix product) | {r['peak_gflops']:.1f} GFLOP/s |",
                  f"| memory bandwidth (vector addition) | {r['bandwidth_gbs']:.1f} GB/s |",
                  f"| ridge point | {r['ridge_flops_per_byte']:.1f} FLOP/byte |",
                  f"| model's arithmetic intensity (no-cache count) | {r['intensity_flops_per_byte']:.1f} FLOP/byte |",
                  f"| attained (2 MACs / p50) | {r['attained_gflops']:.1f} {unit} |",
                  f"| roof at this intensity | {r['attainable_gflops']:.1f} GFLOP/s |",
                  f"| share of the roof attained | {100 * r['fraction_of_roof']:.0f} % |",
                  f"| bound by | {r['bound'] if r['float_arithmetic'] else 'no float32 roof (integer arithmetic)'} |",
                  "", f"Roofline source: {r['source']}.", ""]
    if "energy" in s:
        lines += [f"Modelled energy per inference: {s['energy']['modelled_mj']:.3f} mJ ({s['energy']['assumptions']}).", ""]
    if "quantization" in s:
        q = s["quantization"]
        lines += [f"| variant | size | p50 | speed-up | SQNR on {q['inputs']} |", "|---|---:|---:|---|---:|"]
        for name, r in q["variants"].items():
            sqnr = "" if r["sqnr_db"] is None else f"{r['sqnr_db']:.1f} dB"
            speed = "" if "speedup" not in r else f"{r['speedup']['text']}, {r['speedup']['verdict']}"
            lines.append(f"| {name} | {_mib(r['size_bytes'])} | {r['p50_ms']:.3f} ms | {speed} | {sqnr} |")
        lines.append("")
    for name, why in report.skipped.items():
        lines.append(f"- {name}: not reported ({why})")
    lines += ["", "Verdicts:", *[f"- {v}" for v in report.verdicts]]
    return "\n".join(lines)


def to_json(report: Inspection) -> str:
    """The report as JSON (infinite SQNR written as ``null``)."""
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            return clean(value.item())
        return value
    return json.dumps(clean(report.to_dict()), indent=1)


def _figures(report: Inspection) -> list:
    """``[(caption, figure)]`` for the HTML page: MACs by operator, activation memory, latency, roofline."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from mobileopt_ref import plotting  # noqa: PLC0415

    plotting.use_book_style()
    s, figures = report.sections, []
    ops = {op: e for op, e in s["operators"]["by_type"].items() if e["macs"]}
    if ops:
        fig, ax = plt.subplots(figsize=(6.4, 0.4 * len(ops) + 1.2))
        names = sorted(ops, key=lambda op: ops[op]["macs"])
        ax.barh(names, [100 * ops[op]["share"] for op in names], color="C0")
        ax.set_xlabel("share of the multiply-accumulates (%)")
        figures.append(("Where the arithmetic is: multiply-accumulates by operator type (counted in the file).", fig))
    if "memory" in s:
        m = s["memory"]
        fig, ax = plt.subplots(figsize=(6.4, 2.0))
        labels = ["lower bound", "greedy plan", "LiteRT's arena"]
        ax.barh(labels, [m["lower_bound_bytes"] / 1024, m["greedy_plan_bytes"] / 1024, m["litert_arena_bytes"] / 1024],
                color=["0.6", "C0", "C1"])
        ax.set_xlabel("activation memory (KiB)")
        figures.append(("Activation memory: the lower bound, the book's greedy plan and LiteRT's real arena.", fig))
    if "speed" in s:
        runs = {k: v for k, v in s["speed"].items() if k not in ("thread_speedup", "litert_benchmark")}
        fig, ax = plt.subplots(figsize=(6.4, 0.5 * len(runs) + 1.2))
        names = list(runs)
        p50 = [runs[n]["p50_ms"] for n in names]
        err = [[p - runs[n]["ci95_ms"][0] for p, n in zip(p50, names)], [runs[n]["ci95_ms"][1] - p for p, n in zip(p50, names)]]
        ax.barh(names, p50, xerr=err, color="C2", capsize=3)
        ax.set_xlabel("median latency (ms), 95 % interval; measured on this machine")
        figures.append(("Median latency of one inference at each thread count, measured side by side.", fig))
    if "roofline" in s:
        r = s["roofline"]
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        low = min(r["intensity_flops_per_byte"], r["ridge_flops_per_byte"]) / 10
        high = max(r["intensity_flops_per_byte"], r["ridge_flops_per_byte"]) * 10
        xs = np.logspace(np.log10(low), np.log10(high), 200)
        ax.loglog(xs, compute.attainable_gflops(xs, r["peak_gflops"], r["bandwidth_gbs"]), color="black",
                  label="this machine's roofline (float32)")
        ax.scatter([r["intensity_flops_per_byte"]], [r["attained_gflops"]], marker="*", s=150, color="C3", zorder=5,
                   label="this model, p50")
        ax.set_xlabel("arithmetic intensity (FLOP per byte, no-cache traffic)")
        ax.set_ylabel("attained rate (GFLOP/s)")
        ax.legend(loc="lower right", fontsize=8)
        figures.append(("The model on this machine's roofline: the roof is min(peak, bandwidth x intensity), the "
                        "star the model's rate at its median latency.", fig))
    for _, fig in figures:
        problems = plotting.axis_problems(fig)
        if problems:
            raise RuntimeError("an inspection figure lacks axis labels: " + "; ".join(problems))
    return figures


def _blocks(markdown: str) -> list:
    """The report's markdown as ``[(kind, content)]``: ``("table", (rows, right_aligned))``,
    ``("title", text)``, ``("item", text)`` or ``("text", text)`` (what :func:`to_markdown` writes)."""
    out, block = [], []

    def flush():
        if block:
            rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block]
            right = [cell.endswith(":") for cell in rows[1]] if len(rows) > 1 else []
            out.append(("table", ([rows[0], *rows[2:]], right)))
            block.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            block.append(line)
            continue
        flush()
        if line.startswith("# "):
            out.append(("title", line[2:]))
        elif line.startswith("- "):
            out.append(("item", line[2:]))
        elif line.strip():
            out.append(("text", line))
    flush()
    return out


def to_rich(report: Inspection) -> list:
    """The report for a terminal: ``rich`` renderables (tables, paragraphs, the verdicts),
    the content of :func:`to_markdown`. Print each with a ``rich.console.Console``."""
    from rich.padding import Padding  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    out = []
    for kind, content in _blocks(to_markdown(report)):
        if kind == "table":
            rows, right = content
            table = Table(show_header=any(rows[0]), header_style="bold")
            for i, head in enumerate(rows[0]):
                table.add_column(Text(head), justify="right" if i < len(right) and right[i] else "left")
            for row in rows[1:]:
                table.add_row(*(Text(cell) for cell in row))
            out += [table, Text("")]
        elif kind == "title":
            out += [Text(content, style="bold underline"), Text("")]
        elif kind == "item":
            out.append(Padding(Text("- " + content), (0, 0, 0, 2)))
        else:
            out.append(Text(content, style="bold" if content == "Verdicts:" else ""))
    return out


def to_html(report: Inspection) -> str:
    """The report as one self-contained HTML page: tables, the figures as inline PNG, no
    external script, style, font or image (it opens offline)."""
    import base64  # noqa: PLC0415
    import html  # noqa: PLC0415
    import io  # noqa: PLC0415

    import matplotlib.pyplot as plt  # noqa: PLC0415

    parts = []
    for kind, content in _blocks(to_markdown(report)):
        if kind == "table":
            rows = content[0]
            table = ["<table>", "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in rows[0]) + "</tr>"]
            table += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:]]
            parts.append("\n".join(table + ["</table>"]))
        elif kind == "title":
            parts.append(f"<h1>{html.escape(content)}</h1>")
        elif kind == "item":
            parts.append(f"<li>{html.escape(content)}</li>")
        else:
            parts.append(f"<p>{html.escape(content)}</p>")
    for number, (caption, fig) in enumerate(_figures(report), start=1):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        plt.close(fig)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        parts.append(f'<figure><img alt="figure {number}" src="data:image/png;base64,{data}">'
                     f"<figcaption>Figure {number}. {html.escape(caption)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em}"
             "td{text-align:right}td:first-child{text-align:left}img{max-width:100%}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(report.model)}</title><style>{style}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
