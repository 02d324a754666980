"""Tests of the case study: verdicts on planted records, the records file, the commands' errors,
and one cheap real measurement."""

import dataclasses
import json

import numpy as np
import pytest

from mobileopt_ref import casestudy, cli, compute, report, stats


def _latency(p50_ms: float, n: int = 60, rounds: int = 6, spread: float = 0.02, seed: int = 0):
    rng = np.random.default_rng(seed)
    samples = p50_ms * (1 + spread * rng.standard_normal(n))
    return compute.latency_stats(samples, [n // rounds] * rounds)


def _record(name, *, size, gzip=None, acc=0.9, p50=1.0, arena=1000, planned=None, lower=None, energy_mj=1.0,
            macs=1_000_000, rss=50 << 20, model_rss=5 << 20, correct=None, seed=0):
    extra = {"planned_arena_bytes": planned or arena, "lower_bound_bytes": lower or arena, "macs": macs,
             "rss_bytes": rss, "model_rss_bytes": model_rss, "input_px": 32, "accuracy_at_px": 32}
    acc = float(np.mean(correct)) if correct is not None else acc
    return report.VariantRecord(name=name, tflite=b"", size_bytes=size, gzip_bytes=gzip or size, accuracy=acc,
                                latency=_latency(p50, seed=seed), arena_bytes=arena, energy_mj=energy_mj,
                                extra=extra, correct=correct)


def _correct(n, acc, seed):
    rng = np.random.default_rng(seed)
    c = np.zeros(n, bool)
    c[rng.choice(n, int(round(acc * n)), replace=False)] = True
    return c


@pytest.fixture
def planted():
    """A teacher and a chain with known ratios: size 20x, p50 5x, arena 8x, energy 12.5x, MACs 25x."""
    n = 1000
    teacher_ok = _correct(n, 0.92, 1)
    kd_ok = teacher_ok.copy()
    kd_ok[np.flatnonzero(teacher_ok)[:60]] = False         # 60 images lost, none gained: significantly lower
    chain_f32_ok = kd_ok.copy()
    chain_ok = chain_f32_ok.copy()
    chain_ok[np.flatnonzero(chain_ok)[:3]] = False          # the quantization step loses 0.3 points
    return [
        _record(casestudy.TEACHER, size=10_000_000, gzip=9_000_000, p50=10.0, arena=800_000, energy_mj=5.0,
                macs=50_000_000, rss=120 << 20, correct=teacher_ok, seed=1),
        _record("KD f32", size=2_000_000, p50=4.0, arena=300_000, correct=kd_ok, seed=2),
        _record("KD+channels f32", size=2_000_000, p50=3.0, arena=200_000, correct=chain_f32_ok, seed=3),
        _record(casestudy.CHAIN_END, size=500_000, gzip=400_000, p50=2.0, arena=100_000, planned=110_000,
                lower=99_000, energy_mj=0.4, macs=2_000_000, rss=60 << 20, correct=chain_ok, seed=4),
    ]


# --- verdicts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("achieved, claimed, rule, interval, expected", [
    (12.0, 10.0, "at least", None, "met"),
    (9.99, 10.0, "at least", None, "not met"),
    (10.0, 10.0, "at least", None, "met"),
    (11.0, 10.0, "at least", (9.0, 13.0), "not distinguishable from the claim"),
    (11.0, 10.0, "at least", (10.5, 13.0), "met"),
    (8.0, 10.0, "at least", (7.0, 9.5), "not met"),
    (5.0, 20.0, "at most", None, "met"),
    (25.0, 20.0, "at most", None, "not met"),
    (0.4, 0.5, "at most", (0.3, 0.6), "not distinguishable from the claim"),
    (None, 10.0, "at least", None, "not measurable here"),
])
def test_claim_verdict(achieved, claimed, rule, interval, expected):
    low, high = interval or (None, None)
    assert casestudy.claim_verdict(achieved, claimed, rule, low=low, high=high) == expected
    assert expected in casestudy.CLAIM_VERDICTS


def test_claim_verdict_kept_follows_the_mcnemar_test():
    assert casestudy.claim_verdict(-2.0, 0.0, "kept", significant_loss=True) == "not met"
    assert casestudy.claim_verdict(-2.0, 0.0, "kept", significant_loss=False) == "met"


def test_claim_verdict_refuses_a_bad_rule_or_half_an_interval():
    with pytest.raises(ValueError, match="rule must be"):
        casestudy.claim_verdict(1.0, 1.0, "about")
    with pytest.raises(ValueError, match="both ends"):
        casestudy.claim_verdict(1.0, 1.0, "at least", low=0.5)


def test_every_claim_of_the_article_gets_a_row_with_a_computed_verdict(planted):
    checks = casestudy.judge_claims(planted, gpu_status="not available: planted")
    assert [c.claim.key for c in checks] == [c.key for c in casestudy.CLAIMS]
    by = {c.claim.key: c for c in checks}
    assert by["size"].achieved == pytest.approx(20.0) and by["size"].verdict == "met"
    # 10 ms against 2 ms: 5x, its interval far below the claimed 10x
    assert by["time"].achieved == pytest.approx(5.0, rel=0.05) and by["time"].high < 10
    assert by["time"].verdict == "not met"
    assert by["memory"].achieved == pytest.approx(8.0) and by["memory"].verdict == "met"
    assert by["memory_rss"].achieved == pytest.approx(2.0) and by["memory_rss"].verdict == "not met"
    assert by["energy"].achieved == pytest.approx(12.5) and by["energy"].verdict == "met"
    assert by["algorithm"].achieved == pytest.approx(25.0) and by["algorithm"].verdict == "met"
    assert by["memory_use"].achieved == pytest.approx(12.5) and by["memory_use"].verdict == "met"
    assert by["fragmentation"].achieved == pytest.approx(100 * 11_000 / 110_000)
    assert by["fragmentation"].verdict == "met"           # 10.0 % is at most 10 %
    assert by["energy_ratio"].achieved == pytest.approx(8.0) and by["energy_ratio"].verdict == "met"
    # 3 images lost of 1,000: the loss's interval (-0.13 to 0.30 points) holds the claimed 0.1.
    assert by["quantization"].achieved == pytest.approx(0.3)
    assert by["quantization"].low < 0.1 < by["quantization"].high
    assert by["quantization"].verdict == "not distinguishable from the claim"
    assert by["distillation"].verdict == "not met"        # 60 images lost, none gained
    assert by["gpu"].kind == "published" and by["gpu"].achieved < 10 and by["gpu"].verdict == "not met"
    assert "planted" in by["gpu"].note
    # the pruning row needs the student variants, which these records lack
    assert by["pruning"].verdict == "not measurable here" and "student f32" in by["pruning"].note
    assert by["temperature"].kind == "modelled" and by["temperature"].achieved > 0
    assert sum(casestudy.verdict_counts(checks).values()) == len(casestudy.CLAIMS)


def test_the_thermal_row_grows_with_latency():
    slow, _ = casestudy.thermal_theta(30.0)
    fast, _ = casestudy.thermal_theta(3.0)
    assert 0 < fast < slow


def test_a_quantization_loss_the_interval_puts_above_the_claim_is_not_met(planted):
    chain = planted[-1]
    lost = chain.correct.copy()
    lost[np.flatnonzero(lost)[:30]] = False                  # 33 images lost in all, none gained
    worse = dataclasses.replace(chain, correct=lost, accuracy=float(lost.mean()))
    by = {c.claim.key: c for c in casestudy.judge_claims(planted[:-1] + [worse])}
    assert by["quantization"].achieved == pytest.approx(3.3) and by["quantization"].low > 0.1
    assert by["quantization"].verdict == "not met"


def test_claim_checks_round_trip_through_dicts(planted):
    checks = casestudy.judge_claims(planted)
    again = [casestudy.ClaimCheck.from_dict(json.loads(json.dumps(c.to_dict()))) for c in checks]
    assert again == checks


def test_duplicate_record_names_are_refused(planted):
    with pytest.raises(ValueError, match="two records are called"):
        casestudy.judge_claims(planted + [planted[0]])


# --- ablation and Pareto front ----------------------------------------------------------------


def test_ablation_divides_the_variant_without_the_step_by_the_full_chain(planted):
    rows = casestudy.ablation(planted)
    assert [(r.chain, r.step) for r in rows] == [("structured", "quantization")]   # the others are not planted
    row = rows[0]
    assert row.variant == "KD+channels f32"
    assert row.size == pytest.approx(4.0) and row.arena == pytest.approx(2.0) and row.energy == pytest.approx(2.5)
    assert row.speed.estimate == pytest.approx(1.5, rel=0.05) and row.speed.word == "slower"
    assert row.accuracy_points == pytest.approx(-0.3)


def test_pareto_front_drops_dominated_variants(planted):
    front = casestudy.pareto_front(planted)
    # KD f32: as accurate as KD+channels f32, the same size, slower: dominated
    assert "KD f32" not in front
    assert casestudy.TEACHER in front and casestudy.CHAIN_END in front


def test_pareto_figure_has_labelled_axes(planted):
    from mobileopt_ref import plotting

    fig = casestudy.pareto_figure(planted)
    assert plotting.axis_problems(fig) == []


# --- records as JSON ---------------------------------------------------------------------------


def test_records_round_trip_through_json(planted):
    text = report.records_to_json(planted, {"baseline": casestudy.TEACHER, "claims": []})
    back, meta = report.records_from_json(text)
    assert meta == {"baseline": casestudy.TEACHER, "claims": []}
    for a, b in zip(planted, back):
        assert a.row() == b.row()
        assert a.latency == b.latency
        assert np.array_equal(a.correct, b.correct)
    # the recomputed tests give the same figures
    assert stats.latency_ratio(planted[0].latency, planted[3].latency) == \
        stats.latency_ratio(back[0].latency, back[3].latency)
    assert casestudy.table_rows(planted) == casestudy.table_rows(back)


def _doc(planted, **changes):
    doc = json.loads(report.records_to_json(planted))
    doc.update(changes)
    return doc


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(schema="other"), "not a records file"),
    (lambda d: d.update(version=2), "version 2 is not supported"),
    (lambda d: d.update(records=[]), "non-empty list"),
    (lambda d: d.update(meta=[1]), "meta must be an object"),
    (lambda d: d["records"][0].update(accuracy=1.5), r"record 1: accuracy must be a number in \[0, 1\]"),
    (lambda d: d["records"][1].update(size_bytes=-1), "record 2: size_bytes must be a non-negative integer"),
    (lambda d: d["records"][1].update(size_bytes=True), "record 2: size_bytes"),
    (lambda d: d["records"][0].pop("name"), "record 1: name must be a non-empty string"),
    (lambda d: d["records"][0].update(colour="red"), "unknown field 'colour'"),
    (lambda d: d["records"][0].update(correct="01x"), "correct must be null or a string of 0 and 1"),
    (lambda d: d["records"][0]["latency"].update(samples_ms=[]), "latency must be null or"),
    (lambda d: d["records"][0]["latency"].update(round_sizes=[1, 2]), "round_sizes"),
    (lambda d: d["records"][0].update(energy_mj="lots"), "energy_mj"),
    (lambda d: d["records"].append(dict(d["records"][0])), "two records are called"),
])
def test_malformed_records_are_refused_with_the_reason(planted, mutate, message):
    doc = _doc(planted)
    mutate(doc)
    with pytest.raises(report.RecordsFileError, match=message):
        report.records_from_json(json.dumps(doc))


def test_text_that_is_not_json_is_refused():
    with pytest.raises(report.RecordsFileError, match="not JSON"):
        report.records_from_json("{records: ")


def test_load_records_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        report.load_records(tmp_path / "absent.json")
    with pytest.raises(report.RecordsFileError, match="is a folder"):
        report.load_records(tmp_path)
    binary = tmp_path / "model.tflite"
    binary.write_bytes(b"\x00\xff\xfe TFL3")
    with pytest.raises(report.RecordsFileError, match="not UTF-8"):
        report.load_records(binary)


def test_records_to_json_refuses_no_records_and_duplicates(planted):
    with pytest.raises(ValueError, match="at least one record"):
        report.records_to_json([])
    with pytest.raises(ValueError, match="unique"):
        report.records_to_json([planted[0], planted[0]])


# --- the commands ------------------------------------------------------------------------------


def test_report_renders_a_saved_file_in_both_formats(planted, tmp_path, capsys):
    checks = casestudy.judge_claims(planted)
    path = tmp_path / "records.json"
    path.write_text(report.records_to_json(planted, {"baseline": casestudy.TEACHER,
                                                     "claims": [c.to_dict() for c in checks]}))
    assert cli.main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"| {casestudy.CHAIN_END} |" in out and "模型大小减少到10MB" in out and "Ablation" in out
    assert cli.main(["report", str(path), "--format", "terminal"]) == 0
    assert casestudy.CHAIN_END in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    (None, "no records file at"),
    ("not json at all", "not JSON"),
    ('{"schema": "something-else"}', "not a records file"),
    ('{"schema": "mobileopt-records", "version": 1, "records": [{"name": "x"}]}', "record 1: size_bytes"),
])
def test_report_refuses_bad_files_with_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "records.json"
    if content is not None:
        path.write_text(content)
    assert cli.main(["report", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_report_refuses_an_unknown_format(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(["report", str(tmp_path / "r.json"), "--format", "html"])
    assert err.value.code == 2
    assert "invalid choice: 'html'" in capsys.readouterr().err


def test_case_study_help(capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(["case-study", "--help"])
    assert err.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--out", "--threads", "--runs", "--variants", "--quick", "--no-224", "--format"):
        assert flag in out


@pytest.mark.parametrize("argv, message", [
    (["--runs", "0"], "must be a positive integer, got 0"),
    (["--threads", "two"], "must be a positive integer, got 'two'"),
    (["--format", "pdf"], "invalid choice: 'pdf'"),
    (["--colour"], "unrecognized arguments: --colour"),
])
def test_case_study_refuses_bad_flags(capsys, argv, message):
    with pytest.raises(SystemExit) as err:
        cli.main(["case-study", *argv])
    assert err.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--variants", "teacher f32,giant"], "unknown variant 'giant'; choose from: teacher f32"),
    (["--quick", "--variants", "KD f32"], "give --quick or --variants, not both"),
    (["--runs", "5", "--rounds", "10"], r"--rounds \(10\) cannot exceed --runs \(5\)"),
])
def test_case_study_refuses_bad_choices_before_measuring(argv, message, tmp_path):
    with pytest.raises(SystemExit, match=message):
        cli.main(["case-study", "--out", str(tmp_path / "out"), *argv])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(names=["nope"]), "unknown variant 'nope'"),
    (dict(names=["KD f32"]), "must include the baseline"),
    (dict(num_runs=0), "num_runs must be an integer >= 1"),
    (dict(num_runs=5, rounds=6), "cannot exceed"),
])
def test_run_refuses_bad_arguments_before_converting(kwargs, message):
    with pytest.raises(ValueError, match=message):
        casestudy.run(**kwargs)


def test_variant_specs_are_consistent():
    names = [v.name for v in casestudy.VARIANTS]
    assert len(set(names)) == len(names)
    for v in casestudy.VARIANTS:
        assert v.source in casestudy.SOURCES and v.precision in casestudy.PRECISIONS
        assert list(v.steps) == [s for s in casestudy.STEPS if s in v.steps]
    for chain in casestudy.ABLATIONS.values():
        assert set(chain.values()) <= set(names)
    assert set(casestudy.QUICK) <= set(names) and set(casestudy.AT_224) <= set(names)
    n224 = len(set(casestudy.QUICK) & set(casestudy.AT_224))
    assert casestudy.run_steps(casestudy.QUICK, True) == 2 * 5 + 1 + 2 * n224 + 1 + 1
    with pytest.raises(ValueError, match="QAT variant"):
        casestudy.build_variants([casestudy.CHAIN_END], resolution=224)


# --- one cheap real measurement -----------------------------------------------------------------


def test_measure_all_on_two_shipped_students():
    files, params = casestudy.build_variants(["KD f32", "KD+channels f32"])
    split = casestudy.test_split(200)
    steps = []
    records = casestudy.measure_all(files, split, baseline="KD f32", params=params, num_runs=12, warmup=2,
                                    rounds=3, progress=steps.append)
    assert steps == ["accuracy and latency", "memory: KD f32", "memory: KD+channels f32"]
    kd, thin = records
    for r in records:
        assert r.size_bytes == len(files[r.name]) and r.gzip_bytes < r.size_bytes
        assert r.extra["lower_bound_bytes"] <= r.extra["planned_arena_bytes"]
        assert r.extra["lower_bound_bytes"] <= r.arena_bytes
        assert r.energy_mj > 0 and r.extra["macs"] > 0 and r.extra["input_px"] == 32
        assert r.extra["rss_bytes"] > r.extra["model_rss_bytes"] > 0
    # half the hidden channels: fewer parameters, MACs and bytes, the same images
    assert thin.params < kd.params and thin.extra["macs"] < kd.extra["macs"] and thin.size_bytes < kd.size_bytes
    assert thin.extra["mcnemar_verdict"] in stats.McNemar.__annotations__ or "mcnemar_p" in thin.extra
    assert 0 <= thin.extra["mcnemar_p"] <= 1 and "mcnemar_p" not in kd.extra
    back, _ = report.records_from_json(report.records_to_json(records))
    assert [r.row() for r in back] == [r.row() for r in records]


# --- a run again loads no model: aliases of converted sources ----------------------------------


def test_alias_keys_follow_every_setting():
    images = casestudy.calibration_images(8)
    base = casestudy._alias_key("s", "distilled", "full_int8", images, 32)
    assert base == casestudy._alias_key("s", "distilled", "full_int8", images.copy(), 32)
    for other in (casestudy._alias_key("t", "distilled", "full_int8", images, 32),
                  casestudy._alias_key("s", "student", "full_int8", images, 32),
                  casestudy._alias_key("s", "distilled", "float32", None, 32),
                  casestudy._alias_key("s", "distilled", "full_int8", images[:4], 32),
                  casestudy._alias_key("s", "distilled", "full_int8", images, 224)):
        assert other != base


def test_a_source_converted_once_is_not_loaded_again(monkeypatch):
    files, params = casestudy.build_variants(["KD f32"])
    state = casestudy._alias_state(None)
    alias = casestudy._alias_key(state, "distilled", "float32", None, 32)
    assert casestudy._read_alias(alias) == (files["KD f32"], params["KD f32"])

    def no_loading(*args, **kwargs):
        raise AssertionError("the alias should have spared loading the model")

    monkeypatch.setattr(casestudy, "load_source", no_loading)
    again, again_params = casestudy.build_variants(["KD f32"])
    assert again == files and again_params == params
    # A damaged alias is ignored: the model is loaded and converted again, the alias rewritten.
    (casestudy._alias_folder(alias) / "alias.json").write_text("{not json", encoding="utf-8")
    assert casestudy._read_alias(alias) is None
    monkeypatch.undo()
    # (Loaded again in this process, the model gets new Keras names, which the converter
    # writes into the file: the bytes may differ from the first conversion's.)
    rebuilt, rebuilt_params = casestudy.build_variants(["KD f32"])
    assert rebuilt_params == params
    assert casestudy._read_alias(alias) == (rebuilt["KD f32"], params["KD f32"])
    # The cache turned off turns the aliases off too.
    monkeypatch.setenv("MOBILEOPT_TFLITE_CACHE", "0")
    assert casestudy._read_alias(alias) is None
