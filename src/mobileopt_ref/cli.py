"""The ``mobileopt`` command.

Usage::

    mobileopt execute notebooks/00_baseline.ipynb ...   # run notebooks, store outputs
    mobileopt train [teacher|student ...]               # train (or load) the book's models
    mobileopt retrain-check [name ...]                  # retrain, compare with shipped weights
    mobileopt inspect MODEL.tflite [--inputs X.npy] ... # the book's measurements on any model
    mobileopt set-repository https://github.com/O/R     # the book's URL: launch buttons, Colab
    mobileopt case-study [--out DIR] [--threads N] ...  # the whole chain measured, the article judged
    mobileopt report RECORDS.json [--format terminal]   # render a saved case-study table
    mobileopt seeds [--dataset digits] [--train]        # the comparisons over seeds, and on the digits
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time


def _execute(args) -> int:
    from nbclient.exceptions import CellExecutionError  # noqa: PLC0415

    from mobileopt_ref import execution  # noqa: PLC0415

    total = time.perf_counter()
    for i, path in enumerate(args.notebooks, 1):
        print(f"==> executing {path} ({i}/{len(args.notebooks)})", flush=True)
        try:
            seconds = execution.execute_notebook(path, timeout=args.timeout)
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except CellExecutionError as err:
            print(f"error: {path} failed; the stored notebook is unchanged.\n{err}", file=sys.stderr)
            return 1
        print(f"==> {path} done in {seconds:.0f} s", flush=True)
    print(f"==> executed {len(args.notebooks)} notebooks in {time.perf_counter() - total:.0f} s")
    return 0


def _configs(names):
    from mobileopt_ref import models  # noqa: PLC0415

    shipped = {"teacher": models.TEACHER, "student": models.STUDENT}
    unknown = [n for n in names if n not in shipped]
    if unknown:
        raise SystemExit(f"unknown model {unknown[0]!r}; choose from {', '.join(shipped)}")
    return [shipped[n] for n in (names or list(shipped))]


def _train(args) -> int:
    from mobileopt_ref import env, models  # noqa: PLC0415

    env.setup(figures=False)
    for config in _configs(args.models):
        _, meta = models.load_or_train(config, retrain=args.retrain)
        print(
            f"{config.name}: {meta['source']}, trained in {meta['train_seconds']:.0f} s, "
            f"final validation accuracy {meta['history']['val_accuracy'][-1]:.4f}"
        )
    return 0


def _shipped_derived(names):
    """The pruned, distilled and quantization-aware entries to check: ``[(label, recipe)]``,
    labelled ``student-<recipe name>``."""
    from mobileopt_ref import distillation, pruning, quantization  # noqa: PLC0415

    entries = {f"student-{r.name}": r for r in pruning.STUDENT_RECIPES.values()}
    entries.update({f"student-{r.name}": r for r in distillation.STUDENT_RECIPES.values()})
    entries.update({f"student-{r.name}": r for r in quantization.STUDENT_QAT_RECIPES.values()})
    return [(label, r) for label, r in entries.items() if not names or label in names]


def _load_shipped(config, recipe):
    """The shipped entry of ``config`` (made by ``recipe``, if any), or ``None``."""
    from mobileopt_ref import distillation, models, pruning, quantization  # noqa: PLC0415

    if recipe is None:
        return models.load_cached(config)
    if isinstance(recipe, distillation.DistillRecipe):
        key = recipe.key(config.key(), models.TEACHER.key())
        return models.load_entry(f"{config.name}-{recipe.name}-{key[:16]}", key,
                                 lambda: models.build_mobilenet_v2(config.alpha, config.resolution,
                                                                   bn_momentum=config.bn_momentum))
    if isinstance(recipe, quantization.QATRecipe):
        return quantization.load_cached_qat(config, recipe)
    return pruning.load_cached_pruned(config, recipe)


def _remake(config, recipe) -> dict:
    """Makes the entry of ``config`` (and ``recipe``) anew; returns its record with the digest."""
    from mobileopt_ref import distillation, models, pruning, quantization  # noqa: PLC0415

    if recipe is None:
        with tempfile.TemporaryDirectory() as tmp:
            return models.load_or_train(config, tmp, retrain=True)[1]
    if isinstance(recipe, distillation.DistillRecipe):
        teacher, _ = models.load_or_train(models.TEACHER, verbose=False)
        model, fresh = distillation.distill(config, teacher, recipe, teacher_key=models.TEACHER.key())
    else:
        base, _ = models.load_or_train(config, verbose=False)
        make = quantization.quantization_aware_train if isinstance(recipe, quantization.QATRecipe) \
            else pruning.prune_and_fine_tune
        model, fresh = make(base, config, recipe)
    fresh["weights_sha256"] = models.weights_digest(model.get_weights())
    return fresh


def _retrain_check_gpt() -> int:
    """Retrains the small GPT (in a one-thread subprocess) and compares it with its shipped entry."""
    from mobileopt_ref import llm, models  # noqa: PLC0415

    config = llm.GPT_SMALL
    cached = llm.load_cached(config)
    if cached is None:
        print(f"{config.name}: no valid shipped entry in {models.default_cache_dir()}", file=sys.stderr)
        return 1
    _, shipped = cached
    with tempfile.TemporaryDirectory() as tmp:
        fresh = llm.load_or_train(config, tmp, retrain=True)[1]
    same = fresh["weights_sha256"] == shipped["weights_sha256"]
    print(
        f"{config.name}: retrained in {fresh['train_seconds']:.0f} s; weights "
        f"{'MATCH' if same else 'DIFFER'} (shipped {shipped['weights_sha256'][:16]}, "
        f"retrained {fresh['weights_sha256'][:16]}); held-out bits per byte "
        f"{fresh['held_out_bits_per_byte']:.4f} vs {shipped['held_out_bits_per_byte']:.4f}"
    )
    made_on, here = shipped.get("machine", {}), fresh.get("machine", {})
    if not same and (made_on.get("cpu"), made_on.get("threads")) != (here.get("cpu"), here.get("threads")):
        print(f"  {config.name} was made on {made_on.get('cpu')} with {made_on.get('threads')} threads; this run: "
              f"{here.get('cpu')} with {here.get('threads')} threads", file=sys.stderr)
    if not same and shipped.get("corpus_sha256") != fresh.get("corpus_sha256"):
        print(f"  {config.name}: the training text (pydoc_data.topics) differs from the shipped entry's: "
              "another Python version", file=sys.stderr)
    return 0 if same else 1


def _retrain_check_vit() -> int:
    """Retrains the chapter 08 ViT and compares it with its shipped entry."""
    from mobileopt_ref import models, vit  # noqa: PLC0415

    config = vit.VIT_SMALL
    cached = vit.load_cached(config)
    if cached is None:
        print(f"{config.name}: no valid shipped entry in {models.default_cache_dir()}", file=sys.stderr)
        return 1
    _, shipped = cached
    with tempfile.TemporaryDirectory() as tmp:
        fresh = vit.load_or_train(config, tmp, retrain=True)[1]
    return _compare_weights(config.name, shipped, fresh)


def _retrain_check_case_study(labels) -> int:
    """Re-makes the case study's own entries (:data:`mobileopt_ref.casestudy.CHAIN_ENTRIES`)
    from the shipped entries they start from, in a copy of the cache, and compares weights."""
    import shutil  # noqa: PLC0415

    from mobileopt_ref import casestudy, models  # noqa: PLC0415

    failures = 0
    shipped_dir = models.default_cache_dir()
    for label in labels:
        cached = casestudy.load_chain_entry(label, shipped_dir, shipped_only=True)
        if cached is None:
            print(f"{label}: no valid shipped entry in {shipped_dir}", file=sys.stderr)
            failures += 1
            continue
        shipped = cached[1]
        with tempfile.TemporaryDirectory() as tmp:
            # The entries it starts from come from the shipped cache; only this one is re-made.
            shutil.copytree(shipped_dir, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("tflite"))
            fresh = casestudy.load_chain_entry(label, tmp, retrain=True)[1]
        failures += _compare_weights(label, shipped, fresh)
    return failures


def _retrain_check_seeds(labels) -> int:
    """Re-makes every record of each ``seeds-<dataset>-s<seed>`` label in a copy of the
    shipped cache (without the models of the seeds and the digits, which do not ship) and
    compares weights and per-image results with the shipped records."""
    import shutil  # noqa: PLC0415

    from mobileopt_ref import models, seeds  # noqa: PLC0415

    failures = 0
    shipped_dir = models.default_cache_dir()
    for label in labels:
        name, seed = seeds.parse_check_label(label)
        shipped = seeds.load_records(name, (seed,), cache_dir=shipped_dir)
        missing = [v for v in seeds.SETUPS[name].variants if (v, seed) not in shipped]
        if missing:
            print(f"{label}: no valid shipped record of {', '.join(missing)} in {shipped_dir}", file=sys.stderr)
            failures += 1
            continue
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(shipped_dir, tmp, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("tflite", "seeds-*", "*-seed[0-9]*", "digits-*"))
            fresh = seeds.run(name, (seed,), cache_dir=tmp, retrain=False)
        for variant in seeds.SETUPS[name].variants:
            a, b = shipped[variant, seed], fresh[variant, seed]
            same = seeds.same_measurement(a, b)
            print(f"{label} {variant}: {'MATCH' if same else 'DIFFER'} (weights shipped {a['weights_sha256'][:16]}, "
                  f"re-made {b['weights_sha256'][:16]}; accuracy {100 * b['accuracy']:.2f} % vs "
                  f"{100 * a['accuracy']:.2f} %)")
            failures += not same
    return failures


def _seeds(args) -> int:
    from mobileopt_ref import env, seeds  # noqa: PLC0415

    env.setup(figures=False)
    names = list(seeds.SETUPS) if args.dataset == "all" else [args.dataset]
    if len(set(args.seeds)) != len(args.seeds):
        print(f"error: each seed may appear once, got {' '.join(map(str, args.seeds))}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        if args.train:
            records = seeds.run(name, args.seeds, verbose=False)
        else:
            records = seeds.load_records(name, args.seeds)
        try:
            results = seeds.judge_all(name, records, args.seeds)
        except KeyError as err:
            print(f"error: {err.args[0]} (about 76 min of training a seed on the patterns, 15 on the digits, "
                  "on two cores)", file=sys.stderr)
            status = 2
            continue
        header, rows = seeds.table_rows(results)
        title = f"{name}: every comparison over seeds {', '.join(map(str, args.seeds))}"
        if args.format == "markdown":
            from mobileopt_ref import casestudy  # noqa: PLC0415

            print(f"## {title}\n\n{casestudy.markdown(header, rows)}\n")
        else:
            from rich.console import Console  # noqa: PLC0415

            from mobileopt_ref import casestudy  # noqa: PLC0415

            Console().print(casestudy.rich_table(header, rows, title=title))
    return status


def _compare_weights(label: str, shipped: dict, fresh: dict) -> int:
    """Prints whether a re-made entry's weights equal the shipped ones; 1 if they differ."""
    same = fresh["weights_sha256"] == shipped["weights_sha256"]
    print(
        f"{label}: retrained in {fresh['train_seconds']:.0f} s; weights "
        f"{'MATCH' if same else 'DIFFER'} (shipped {shipped['weights_sha256'][:16]}, "
        f"retrained {fresh['weights_sha256'][:16]}); final validation accuracy "
        f"{fresh['history']['val_accuracy'][-1]:.4f} vs {shipped['history']['val_accuracy'][-1]:.4f}"
    )
    made_on, here = shipped.get("machine", {}), fresh.get("machine", {})
    if not same and (made_on.get("cpu"), made_on.get("threads")) != (here.get("cpu"), here.get("threads")):
        print(f"  {label} was made on {made_on.get('cpu')} with {made_on.get('threads')} threads; this run: "
              f"{here.get('cpu')} with {here.get('threads')} threads", file=sys.stderr)
    return 0 if same else 1


def _retrain_check(args) -> int:
    from mobileopt_ref import env, models  # noqa: PLC0415

    env.setup(figures=False)
    from mobileopt_ref import casestudy, seeds  # noqa: PLC0415

    derived_labels = {label for label, _ in _shipped_derived([])}
    chain_labels = [n for n in casestudy.CHAIN_ENTRIES if not args.models or n in args.models]
    seed_labels = [n for n in seeds.CHECK_LABELS if not args.models or n in args.models]
    model_names = [n for n in args.models
                   if n not in derived_labels and n not in ("gpt", "vit") and n not in casestudy.CHAIN_ENTRIES
                   and n not in seeds.CHECK_LABELS]
    unknown = [n for n in model_names if n not in ("teacher", "student")]
    if unknown:
        raise SystemExit(f"unknown entry {unknown[0]!r}; choose from teacher, student, gpt, vit, "
                         f"{', '.join(sorted(derived_labels | set(casestudy.CHAIN_ENTRIES)))}, "
                         f"{', '.join(seeds.CHECK_LABELS)}")
    derived_names = [n for n in args.models if n in derived_labels]
    failures = 0
    checks = []
    if model_names or not args.models:
        checks += [(config.name, config, None) for config in _configs(model_names)]
    if derived_names or not args.models:
        checks += [(label, models.STUDENT, recipe) for label, recipe in _shipped_derived(derived_names)]
    if "gpt" in args.models or not args.models:
        failures += _retrain_check_gpt()
    if "vit" in args.models or not args.models:
        failures += _retrain_check_vit()
    failures += _retrain_check_case_study(chain_labels)
    failures += _retrain_check_seeds(seed_labels)
    for label, config, recipe in checks:
        cached = _load_shipped(config, recipe)
        if cached is None:
            # Nothing to compare with; `mobileopt train` (or the notebook) makes the entry.
            print(f"{label}: no valid shipped entry in {models.default_cache_dir()}", file=sys.stderr)
            failures += 1
            continue
        _, shipped = cached
        failures += _compare_weights(label, shipped, _remake(config, recipe))
    if failures:
        print(
            "Weights differ. Bit-identical retraining needs the same CPU kind, thread count "
            "and library versions (constraints.txt) as the shipped entries' machine card.",
            file=sys.stderr,
        )
    return 1 if failures else 0


def _load_array(path: str, what: str):
    import numpy as np  # noqa: PLC0415

    try:
        if path.endswith(".txt"):
            return np.loadtxt(path, dtype=np.int64, ndmin=1)
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise SystemExit(f"error: no {what} file at {path}") from None
    except (ValueError, OSError) as err:
        raise SystemExit(f"error: {path} is not a {what} file (.npy, or .txt with one integer a line): {err}") from None


def _inspect_progress(console):
    """A ``rich`` progress display of :data:`mobileopt_ref.inspection.STEPS` on ``console``
    (standard error), shown only when it is a terminal: piped output, notebooks and tests
    see nothing. Returns ``(progress, callback)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    from mobileopt_ref import inspection  # noqa: PLC0415

    steps = list(inspection.STEPS)
    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal)
    task = bar.add_task("starting", total=len(steps))

    def progress(step):
        bar.update(task, completed=steps.index(step), description=f"{step}: {inspection.STEPS[step]}")

    return bar, progress


def _inspect(args) -> int:
    from rich.console import Console  # noqa: PLC0415

    from mobileopt_ref import env, inspection, litert  # noqa: PLC0415

    env.setup(threads=args.threads, figures=False)
    inputs = _load_array(args.inputs, "inputs") if args.inputs else None
    labels = _load_array(args.labels, "labels") if args.labels else None
    if labels is not None and inputs is None:
        raise SystemExit("error: --labels needs --inputs (the images or inputs the labels belong to)")
    errors = Console(stderr=True, highlight=False)
    bar, progress = _inspect_progress(errors)
    try:
        model = litert.select_signature(args.model, args.signature) if args.signature else args.model
        with bar:
            report = inspection.inspect_model(model, inputs=inputs, labels=labels, threads=args.threads,
                                              num_runs=args.runs, rounds=min(10, args.runs),
                                              measure=not args.no_measure, quantize=not args.no_quantize,
                                              roofline=None if args.no_roofline else args.roofline,
                                              progress=progress)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report.model = args.model + (f" (signature {args.signature})" if args.signature else "")
    out = Console(highlight=False)
    for part in inspection.to_rich(report):
        out.print(part)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(inspection.to_json(report) + "\n")
        print(f"\nwritten: {args.json}", file=sys.stderr)
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(inspection.to_html(report))
        print(f"written: {args.html}", file=sys.stderr)
    return 0


def _set_repository(args) -> int:
    from mobileopt_ref import models, publishing  # noqa: PLC0415

    root = models.checkout_root()
    if root is None:
        print("error: run this inside the book's checkout (the folder with _toc.yml and src/mobileopt_ref)",
              file=sys.stderr)
        return 2
    try:
        changed = publishing.set_repository(root, args.url)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"updated {path.relative_to(root)}")
    print(f"repository: {publishing.configured_repository(root)} ({len(changed)} files changed; commit them)")
    return 0


def _variant_names(args):
    from mobileopt_ref import casestudy  # noqa: PLC0415

    if args.quick and args.variants:
        raise SystemExit("error: give --quick or --variants, not both")
    if args.quick:
        return list(casestudy.QUICK)
    if args.variants is None:
        return None
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    known = [v.name for v in casestudy.VARIANTS]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise SystemExit(f"error: unknown variant {unknown[0] if unknown else args.variants!r}; "
                         f"choose from: {', '.join(known)}")
    if casestudy.TEACHER not in names:
        names.insert(0, casestudy.TEACHER)  # every comparison is against the teacher
    return names


def _print_tables(records, meta, fmt: str, records_224=None) -> None:
    from mobileopt_ref import casestudy  # noqa: PLC0415

    baseline = meta.get("baseline") if meta.get("baseline") in {r.name for r in records} else records[0].name
    tables = [(f"Every variant against {baseline}" + (f" ({meta['note']})" if meta.get("note") else ""),
               casestudy.table_rows(records, baseline))]
    if records_224:
        tables.append(("The chain at 224 px (accuracy measured at 32 px, the book's resolution)",
                       casestudy.table_rows(records_224, baseline)))
    if meta.get("claims"):
        checks = [casestudy.ClaimCheck.from_dict(c) for c in meta["claims"]]
        tables.append(("The article's case study beside ours", casestudy.claim_rows(checks)))
    rows = casestudy.ablation(records)
    if rows:
        tables.append(("Ablation: each step removed in turn (ratios without / with the step)",
                       casestudy.ablation_rows(rows)))
    if fmt == "markdown":
        for title, (header, body) in tables:
            print(f"## {title}\n\n{casestudy.markdown(header, body)}\n")
        return
    from rich.console import Console  # noqa: PLC0415

    console = Console(width=max(160, Console().width))
    for title, (header, body) in tables:
        console.print(casestudy.rich_table(header, body, title=title))


def _case_study(args) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    from mobileopt_ref import casestudy, env  # noqa: PLC0415

    names = _variant_names(args)
    if args.rounds > args.runs:
        raise SystemExit(f"error: --rounds ({args.rounds}) cannot exceed --runs ({args.runs})")
    card = env.setup(threads=args.threads, figures=False)
    total = casestudy.run_steps(names or [v.name for v in casestudy.VARIANTS], not args.no_224)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=False) as bar:
        task = bar.add_task("case study", total=total)

        def progress(step):
            bar.update(task, advance=1, description=step[:60])

        try:
            study = casestudy.run(names, num_threads=args.threads, num_runs=args.runs, rounds=args.rounds,
                                  n_test=args.test_images, at_224=not args.no_224, runs_224=args.runs_224,
                                  rss=not args.no_rss, progress=progress)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    written = study.write(args.out, card)
    _print_tables(study.records, study.meta(), args.format, study.records_224)
    for path in written:
        print(f"written: {path}", file=sys.stderr)
    return 0


def _report(args) -> int:
    from mobileopt_ref import report  # noqa: PLC0415

    try:
        records, meta = report.load_records(args.records)
    except FileNotFoundError:
        print(f"error: no records file at {args.records} (write one with mobileopt case-study --out DIR)",
              file=sys.stderr)
        return 2
    except report.RecordsFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        _print_tables(records, meta, args.format)
    except (KeyError, TypeError, ValueError) as err:
        print(f"error: {args.records}: its meta data do not fit the case study's tables: {err!r}", file=sys.stderr)
        return 2
    return 0


def _integer_at_least(minimum: int, what: str):
    """An argparse type: an integer ``>= minimum``, refused with ``what`` in the message."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
        return value

    return parse


_positive = _integer_at_least(1, "a positive integer")
_seed = _integer_at_least(0, "a non-negative integer (a seed)")


def main(argv=None) -> int:
    """Entry point of the ``mobileopt`` command."""
    parser = argparse.ArgumentParser(prog="mobileopt", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("execute", help="execute notebooks in place, storing their outputs")
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    p.set_defaults(func=_execute)
    p = sub.add_parser("train", help="train or load the book's models")
    p.add_argument("models", nargs="*", help="teacher, student (default: both)")
    p.add_argument("--retrain", action="store_true", help="train even if cached")
    p.set_defaults(func=_train)
    p = sub.add_parser("retrain-check", help="retrain the shipped models and compare weights")
    p.add_argument("models", nargs="*",
                   help="teacher, student, gpt, vit, student-<pruning, distillation or QAT recipe>, "
                        "the case study's student-kd-global75, student-kd-channels50, "
                        "student-kd-channels50-qat8, student-kd-qat8, student-channels50-qat8, "
                        "seeds-<patterns|digits>-s<0|1|2> (every record of one seed) "
                        "(default: every shipped entry)")
    p.set_defaults(func=_retrain_check)
    p = sub.add_parser("inspect", help="size, operators, memory, speed, energy and quantization of a .tflite")
    p.add_argument("model", help="a .tflite file")
    p.add_argument("--inputs", help=".npy inputs for the output-error figures (uint8 pixels for an image model); "
                                    "default: 32 random inputs")
    p.add_argument("--labels", help="labels of the inputs (.npy, or .txt with one integer a line)")
    p.add_argument("--signature", help="the signature to inspect, for a file with several")
    p.add_argument("--threads", type=_positive, default=2, help="threads timed beside one thread (default 2)")
    p.add_argument("--runs", type=_positive, default=200, help="timed invokes per variant (default 200)")
    p.add_argument("--no-measure", action="store_true", help="skip every timed figure")
    p.add_argument("--no-quantize", action="store_true", help="do not try LiteRT Quantizer recipes")
    p.add_argument("--roofline", choices=("measure", "recorded"), default="measure",
                   help="this machine's peak and bandwidth: measure them now (default, a few seconds, under the "
                        "same load as the latency), or reuse the computation chapter's record for this CPU model "
                        "at the same thread count (measured now when there is none)")
    p.add_argument("--no-roofline", action="store_true", help="skip the roofline position")
    p.add_argument("--json", help="also write the report as JSON to this file")
    p.add_argument("--html", help="also write the report as one self-contained HTML page (figures inline)")
    p.set_defaults(func=_inspect)
    p = sub.add_parser("set-repository", help="store the book's GitHub URL (launch buttons, Colab set-up cells)")
    p.add_argument("url", help="https://github.com/OWNER/REPO")
    p.set_defaults(func=_set_repository)
    p = sub.add_parser("case-study", help="the book's whole chain measured end to end, the article's claims judged",
                       description="Converts every variant of the case study from the model cache (nothing is "
                                   "trained), measures accuracy, sizes, latency side by side, arenas, process memory "
                                   "and modelled energy, judges the article's claims, writes records.json and the "
                                   "Pareto figure into --out, and prints the tables.")
    p.add_argument("--out", default="casestudy-out", help="folder for records.json, records-224.json and the figures "
                                                          "(default casestudy-out)")
    p.add_argument("--threads", type=_positive, default=2, help="interpreter threads (default 2)")
    p.add_argument("--runs", type=_positive, default=200, help="timed invokes per variant at 32 px (default 200)")
    p.add_argument("--rounds", type=_positive, default=10, help="interleaved rounds (default 10, at most --runs)")
    p.add_argument("--runs-224", type=_positive, default=30, help="timed invokes per variant at 224 px (default 30)")
    p.add_argument("--test-images", type=_positive, default=2000, help="test images for accuracy (default 2000)")
    p.add_argument("--variants", help="comma-separated variant names (default: all; the teacher is always added)")
    p.add_argument("--quick", action="store_true", help="only the structured chain, step by step")
    p.add_argument("--no-224", action="store_true", help="skip the chain rebuilt at 224 px")
    p.add_argument("--no-rss", action="store_true", help="skip the fresh-process memory (one process per variant)")
    p.add_argument("--format", choices=("markdown", "terminal"), default="terminal", help="how to print the tables")
    p.set_defaults(func=_case_study)
    p = sub.add_parser("report", help="render a records file written by mobileopt case-study")
    p.add_argument("records", help="a records JSON file (records.json or records-224.json)")
    p.add_argument("--format", choices=("markdown", "terminal"), default="markdown",
                   help="markdown (default) or a terminal table")
    p.set_defaults(func=_report)
    p = sub.add_parser("seeds", help="the book's training-based comparisons over seeds, and on the digits")
    p.add_argument("--dataset", choices=("patterns", "digits", "all"), default="all",
                   help="the generated patterns, scikit-learn's digits, or both (default)")
    p.add_argument("--seeds", type=_seed, nargs="+", default=[0, 1, 2], help="training seeds (default: 0 1 2)")
    p.add_argument("--train", action="store_true",
                   help="train and measure what the model cache lacks (otherwise only shipped records are read)")
    p.add_argument("--format", choices=("markdown", "terminal"), default="terminal",
                   help="a terminal table (default) or markdown")
    p.set_defaults(func=_seeds)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
