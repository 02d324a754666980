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
                  measure: bool = True, quantize: bool = True, progress=None) -> Inspection:
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
    else:
        skipped["speed"] = "not measured (measure=False)"
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
    """``[(caption, figure)]`` for the HTML page: MACs by operator, activation memory, latency."""
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
    for _, fig in figures:
        problems = plotting.axis_problems(fig)
        if problems:
            raise RuntimeError("an inspection figure lacks axis labels: " + "; ".join(problems))
    return figures


def to_html(report: Inspection) -> str:
    """The report as one self-contained HTML page: tables, the figures as inline PNG, no
    external script, style, font or image (it opens offline)."""
    import base64  # noqa: PLC0415
    import html  # noqa: PLC0415
    import io  # noqa: PLC0415

    import matplotlib.pyplot as plt  # noqa: PLC0415

    def table(md_lines):
        rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in md_lines]
        head, body = rows[0], [r for r in rows[2:]]
        out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"]
        out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body]
        return "\n".join(out + ["</table>"])

    parts, block = [], []
    for line in to_markdown(report).splitlines():
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            parts.append(table(block))
            block = []
        if line.startswith("# "):
            parts.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("- "):
            parts.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.strip():
            parts.append(f"<p>{html.escape(line)}</p>")
    if block:
        parts.append(table(block))
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
