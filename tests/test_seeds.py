"""Seeds: keys that find the book's own models, packed correctness, seed-level verdicts."""

import base64
import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mobileopt_ref import distillation, models, pruning, quantization, seeds, stats


def test_seed_zero_of_the_patterns_is_the_books_student_and_its_shipped_entries():
    assert seeds.student_config("patterns", 0) is models.STUDENT
    config = seeds.student_config("patterns", 0)
    assert seeds.model_key("patterns", "alone", 0) == models.STUDENT.key()
    assert seeds.model_key("patterns", "kd", 0) == distillation.STUDENT_RECIPES["kd"].key(
        config.key(), models.TEACHER.key())
    assert seeds.model_key("patterns", "magnitude75", 0) == pruning.STUDENT_RECIPES["magnitude75"].key(config.key())
    assert seeds.model_key("patterns", "qat8", 0) == quantization.STUDENT_QAT_RECIPES["qat8"].key(config.key())
    # the shipped cache holds exactly these entries (their folder names carry the keys)
    root = models.checkout_root()
    if root is not None:
        assert (root / "cache" / config.entry_name()).is_dir()
        key = seeds.model_key("patterns", "magnitude75", 0)
        assert (root / "cache" / f"student-magnitude75-{key[:16]}").is_dir()


def test_other_seeds_change_only_the_seed_and_the_name():
    one = seeds.student_config("patterns", 1)
    assert one.seed == 1 and one.name == "student-seed1"
    assert one.key() != models.STUDENT.key()
    assert models.TrainConfig(**{**one.__dict__, "name": "x", "seed": 0}).key() == models.STUDENT.key()
    assert len({seeds.record_key("patterns", "kd", s) for s in seeds.SEEDS}) == len(seeds.SEEDS)
    assert seeds.entry_name("patterns", "2:4", 2).startswith("seeds-patterns-2by4-s2-")


def test_digits_pruning_updates_masks_at_the_end_of_the_ramp():
    setup = seeds.SETUPS["digits"]
    steps = setup.student.images_per_epoch // setup.student.batch_size
    for name in ("magnitude75",):
        recipe = setup.pruning[name]
        assert (recipe.ramp_epochs * steps) % recipe.frequency == 0
    # the patterns' frequency would not divide the digits' ramp: the reason for the change
    patterns_recipe = pruning.STUDENT_RECIPES["magnitude75"]
    assert (patterns_recipe.ramp_epochs * steps) % patterns_recipe.frequency != 0


def test_bad_setup_variant_and_seed_are_refused():
    with pytest.raises(ValueError, match="setup must be one of patterns, digits"):
        seeds.student_config("flowers", 0)
    with pytest.raises(ValueError, match="variant must be one of"):
        seeds.model_key("digits", "logits", 0)  # the digits do not train logit matching
    with pytest.raises(ValueError, match="non-negative integer"):
        seeds.student_config("patterns", -1)
    with pytest.raises(ValueError, match="non-negative integer"):
        seeds.student_config("patterns", True)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 2000, 360])
def test_correctness_packs_and_unpacks_exactly(n):
    rng = np.random.default_rng(n)
    correct = rng.random(n) < 0.7
    packed = seeds.pack_correct(correct)
    assert packed["n"] == n
    np.testing.assert_array_equal(seeds.unpack_correct(packed), correct)


def test_a_damaged_packed_correctness_is_refused():
    packed = seeds.pack_correct(np.ones(20, bool))
    with pytest.raises(ValueError, match="20 images need 3"):
        seeds.unpack_correct({"n": 20, "bits": base64.b64encode(b"\xff\xff").decode()})
    with pytest.raises(ValueError, match="not a packed correctness"):
        seeds.unpack_correct({"bits": packed["bits"]})
    with pytest.raises(ValueError, match="not a packed correctness"):
        seeds.unpack_correct({"n": 20, "bits": "not base64!"})


def test_seed_verdict_is_the_student_t_interval():
    deltas = [0.6, 0.8, 0.7]
    mean, sd, low, high, word = seeds.seed_verdict(deltas)
    t_low, t_high = scipy_stats.t.interval(0.95, 2, loc=np.mean(deltas), scale=scipy_stats.sem(deltas))
    assert (mean, sd) == pytest.approx((np.mean(deltas), np.std(deltas, ddof=1)))
    assert (low, high) == pytest.approx((t_low, t_high))
    assert word == "higher across seeds"  # 0.7 +- 4.30 * 0.1 / sqrt(3) stays above 0
    # the same mean with the spread of seeds that disagree more is not enough
    assert seeds.seed_verdict([0.4, 1.1, 0.7])[4] == "inconclusive over seeds"
    assert seeds.seed_verdict([0.7, -0.2, 1.5])[4] == "inconclusive over seeds"
    assert seeds.seed_verdict([-2.0, -2.5, -1.8])[4] == "lower across seeds"
    # equal differences estimate no seed-to-seed variation: a zero-width interval decides nothing
    assert seeds.seed_verdict([0.5, 0.5, 0.5])[2:] == (0.5, 0.5, "inconclusive over seeds")
    one = seeds.seed_verdict([0.7])
    assert one[4] == "one seed only" and math.isnan(one[2])
    with pytest.raises(ValueError, match="finite"):
        seeds.seed_verdict([])
    with pytest.raises(ValueError, match="finite"):
        seeds.seed_verdict([0.1, float("nan")])


def _record(correct):
    return {"correct": seeds.pack_correct(correct), "accuracy": float(np.mean(correct))}


def test_compare_pairs_each_seed_and_judges_across_seeds():
    rng = np.random.default_rng(1)
    records, expected, fixed_images = {}, [], set()
    for seed, fixed in zip(seeds.SEEDS, (30, 40, 35)):
        a = rng.random(2000) < 0.85
        b = a.copy()
        b[np.flatnonzero(~a)[:fixed]] = True  # B fixes `fixed` of A's errors, breaks none
        records["alone", seed], records["kd", seed] = _record(a), _record(b)
        expected.append(100 * fixed / 2000)
        fixed_images |= set(np.flatnonzero(b & ~a).tolist())
    comparison = seeds.COMPARISONS[0]
    result = seeds.compare(records, comparison, "patterns")
    assert result.deltas == pytest.approx(tuple(expected))
    assert [t.only_b for t in result.tests] == [30, 40, 35]
    assert result.significant_seeds == 3
    assert result.verdict == "higher across seeds"
    assert "over 3 seeds" in result.text() and result.text().endswith("higher across seeds")
    assert "method minus baseline" in result.text()
    # every image some seed fixed is one B gets right more often over the seeds
    assert (result.images_b, result.images_a) == (len(fixed_images), 0) and result.image_p < 1e-9
    with pytest.raises(ValueError, match="each seed may appear once"):
        seeds.compare(records, comparison, "patterns", seeds=(0, 0, 1))
    del records["kd", 2]
    with pytest.raises(KeyError, match="no record of 'kd' with seed 2"):
        seeds.compare(records, comparison, "patterns")


def test_a_consistent_edge_of_a_few_images_is_not_enough():
    # Three seeds that each move the same few images the same way agree closely (a narrow
    # interval over seeds), but five images are no evidence about the method: the sign test
    # over images keeps the verdict inconclusive.
    rng = np.random.default_rng(3)
    records = {}
    for seed, fixed in zip(seeds.SEEDS, (2, 1, 2)):
        a = rng.random(360) < 0.96
        a[:5] = False
        b = a.copy()
        b[:fixed] = True  # the same first images, fixed by B
        records["ptq8", seed], records["alone", seed] = _record(b), _record(a)
    comparison = next(c for c in seeds.COMPARISONS if c.variant == "ptq8")
    result = seeds.compare(records, comparison, "digits")
    assert result.low > 0  # the seeds alone would call it higher
    assert (result.images_b, result.images_a) == (2, 0) and result.image_p == pytest.approx(0.5)
    assert result.verdict == "inconclusive over seeds"


def test_image_sign_test_with_one_seed_is_mcnemar():
    rng = np.random.default_rng(4)
    a, b = rng.random(500) < 0.8, rng.random(500) < 0.85
    images_b, images_a, p = seeds.image_sign_test([a], [b])
    m = stats.mcnemar(a, b)
    assert (images_b, images_a) == (m.only_b, m.only_a) and p == pytest.approx(m.p_value)
    with pytest.raises(ValueError, match="same number of seeds"):
        seeds.image_sign_test([a, a], [b])
    with pytest.raises(ValueError, match="same images"):
        seeds.image_sign_test([a], [b[:10]])


def test_comparisons_of_the_digits_are_those_it_trains():
    names = {c.variant for c in seeds.comparisons_for("digits")}
    assert names == {"kd", "qat8", "ptq8", "magnitude75", "channels50"}
    assert len(seeds.comparisons_for("patterns")) == len(seeds.COMPARISONS)


def test_a_record_is_measured_once_then_read_back(tmp_path, monkeypatch):
    # A stand-in model (no training): the record machinery around it is what is tested.
    calls = []

    def fake_model(setup, variant, seed, cache_dir, verbose):
        calls.append(variant)

        return "tflite", b"a .tflite file", {"weights_sha256": "ab" * 32, "train_seconds": 1.0,
                                             "machine": {"cpu": "x"}}

    monkeypatch.setattr(seeds, "_model", fake_model)
    labels = models.evaluation_images(seeds.DIGITS_STUDENT, "test")[1]
    monkeypatch.setattr(seeds.litert, "predict_tflite", lambda model, images: np.eye(10)[labels])
    first = seeds.load_or_measure("digits", "alone", 0, tmp_path)
    assert first["source"] == "trained" and first["accuracy"] == 1.0
    again = seeds.load_or_measure("digits", "alone", 0, tmp_path)
    assert again["source"] == "cache" and calls == ["alone"]
    assert seeds.unpack_correct(again["correct"]).all()
    loaded = seeds.load_records("digits", seeds=(0, 1), variants=("alone",), cache_dir=tmp_path)
    assert list(loaded) == [("alone", 0)]


def test_check_labels_name_a_dataset_and_a_seed():
    assert seeds.parse_check_label("seeds-digits-s1") == ("digits", 1)
    assert seeds.parse_check_label("seeds-patterns-s0") == ("patterns", 0)
    with pytest.raises(ValueError, match="unknown seed label 'seeds-digits-s7'"):
        seeds.parse_check_label("seeds-digits-s7")


def test_the_table_has_one_column_per_seed_and_a_computed_verdict():
    rng = np.random.default_rng(2)
    records = {}
    for seed in seeds.SEEDS:
        a = rng.random(360) < 0.9
        for variant in seeds.SETUPS["digits"].variants:
            records[variant, seed] = _record(a)  # every variant the same: no difference
    results = seeds.judge_all("digits", records)
    header, rows = seeds.table_rows(results)
    assert len(header) == 5 and "0, 1, 2" in header[1]
    assert all(len(row) == len(header) for row in rows)
    # one difference per seed, in seed order, each with its McNemar verdict
    assert all(row[1] == "; ".join(["+0.00 n.s."] * len(seeds.SEEDS)) for row in rows)
    assert {row[-1] for row in rows} == {"inconclusive over seeds"}
    assert all(r.deltas == (0.0, 0.0, 0.0) for r in results)


def test_the_command_says_what_is_missing_and_how_to_make_it(tmp_path, monkeypatch, capsys):
    from mobileopt_ref import cli

    monkeypatch.setenv("MOBILEOPT_CACHE_DIR", str(tmp_path))
    assert cli.main(["seeds", "--dataset", "digits"]) == 2
    err = capsys.readouterr().err
    assert "no record of" in err and "--train" in err
    # every dataset is tried: a missing record of one does not hide the other's table
    assert cli.main(["seeds", "--dataset", "all"]) == 2
    err = capsys.readouterr().err
    assert "for patterns" in err and "for digits" in err
    assert cli.main(["seeds", "--dataset", "digits", "--seeds", "0", "0"]) == 2
    assert "each seed may appear once" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["seeds", "--seeds", "-1"])
    assert "non-negative integer" in capsys.readouterr().err


def test_a_missing_teacher_record_is_none_when_nothing_may_be_trained(tmp_path):
    assert seeds.teacher_record("digits", tmp_path, shipped_only=True) is None
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


def _shipped_dir():
    root = models.checkout_root()
    if root is None:
        pytest.skip("runs inside the book's checkout, where the records ship")
    return root / "cache"


@pytest.mark.parametrize("name, seeds_shipped", [("digits", seeds.SEEDS), ("patterns", seeds.SEEDS)])
def test_the_shipped_records_are_complete_and_consistent(name, seeds_shipped):
    setup = seeds.SETUPS[name]
    records = seeds.load_records(name, seeds_shipped, cache_dir=_shipped_dir())
    assert set(records) == {(v, s) for v in setup.variants for s in seeds_shipped}
    n = len(models.evaluation_images(setup.student, "test", setup.n_test)[1])
    for (variant, seed), r in records.items():
        correct = seeds.unpack_correct(r["correct"])
        assert correct.size == n and r["accuracy"] == pytest.approx(correct.mean())
        assert (r["variant"], r["seed"], r["setup"]) == (variant, seed, name)
        assert r["model_key"] == seeds.model_key(name, variant, seed)
        # what was trained, spelled out, and the same as the library's configs
        assert r["config"] == seeds.model_config(name, variant, seed)
        assert r["config"]["student"]["seed"] == seed
    # each seed's student starts from other weights, so it ends with other weights
    assert len({records["alone", s]["weights_sha256"] for s in seeds_shipped}) == len(seeds_shipped)
    # post-training int8 is measured on the float model's weights
    for seed in seeds_shipped:
        assert records["ptq8", seed]["weights_sha256"] == records["alone", seed]["weights_sha256"]
    teacher = seeds.teacher_record(name, _shipped_dir(), shipped_only=True)
    assert teacher["config"]["teacher"]["name"] == setup.teacher.name


def test_the_table_of_the_shipped_patterns_marks_each_seeds_mcnemar_verdict():
    records = seeds.load_records("patterns", seeds.SEEDS, cache_dir=_shipped_dir())
    results = {r.comparison.variant: r for r in seeds.judge_all("patterns", records)}
    header, rows = seeds.table_rows(list(results.values()))
    row = dict(zip(results, rows))
    for variant, r in results.items():
        marks = row[variant][1].split("; ")
        assert len(marks) == len(seeds.SEEDS)
        for mark, d, t in zip(marks, r.deltas, r.tests):
            shown, verdict = mark.split(" ", 1)
            assert float(shown) == pytest.approx(d, abs=0.005)
            assert (verdict == "n.s.") == (t.verdict == "not distinguishable")
    # 90 % magnitude pruning costs points on every seed, each significant on its own
    assert all(m.endswith("p < 0.0001") for m in row["magnitude90"][1].split("; "))


def test_seed_zero_of_the_patterns_measures_the_shipped_models():
    records = seeds.load_records("patterns", (0,), cache_dir=_shipped_dir())
    for variant in ("alone", "kd", "magnitude75", "qat8"):
        config = seeds.student_config("patterns", 0)
        key = seeds.model_key("patterns", variant, 0)
        entry = config.entry_name() if variant == "alone" else None
        if entry is None:
            name = {"kd": "kd", "magnitude75": "magnitude75", "qat8": "qat8"}[variant]
            entry = f"student-{name}-{key[:16]}"
        meta = json.loads((_shipped_dir() / entry / "meta.json").read_text())
        assert records[variant, 0]["weights_sha256"] == meta["weights_sha256"]


def _markdown(path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def missing_seed_statements(texts: dict) -> list:
    """The comparisons whose chapter (``texts[chapter]``, its markdown) does not glue the
    seed-level verdict ``seeds_<variant>``."""
    return [c for c in seeds.COMPARISONS
            if f"{{glue:text}}`seeds_{c.variant.replace(':', 'by')}`" not in texts.get(c.chapter, "")]


def test_every_training_based_comparison_states_its_seed_level_verdict():
    root = models.checkout_root()
    if root is None:
        pytest.skip("runs inside the book's checkout")
    texts = {}
    for c in seeds.COMPARISONS:
        (path,) = (root / "notebooks").glob(f"{c.chapter}_*.ipynb")
        texts[c.chapter] = _markdown(path)
    assert not missing_seed_statements(texts), [c.name for c in missing_seed_statements(texts)]
    # the guard catches a chapter that states a single-seed verdict only
    planted = dict(texts, **{"03": texts["03"].replace("{glue:text}`seeds_kd`", "{glue:text}`kd_vs_alone`")})
    assert [c.variant for c in missing_seed_statements(planted)] == ["kd"]


def test_the_comparisons_not_repeated_over_seeds_say_so():
    # The case study's chain and the ViT compare models trained once: the prose says so,
    # and the case study gives the seed-level verdicts of the chain's single steps.
    root = models.checkout_root()
    if root is None:
        pytest.skip("runs inside the book's checkout")
    case_study = _markdown(root / "notebooks" / "09_case_study.ipynb")
    assert "one training run of each model (one\nseed)" in case_study
    for variant in ("kd", "qat8", "channels50"):
        assert f"{{glue:text}}`seeds_{variant}`" in case_study, variant
    for chapter, phrase in (("01_quantization", "qat2_vs_ptq2`; one training seed"),
                            ("02_pruning", "for one training seed: not repeated over seeds")):
        assert phrase in _markdown(root / "notebooks" / f"{chapter}.ipynb"), chapter
    large = _markdown(root / "notebooks" / "08_large_models.ipynb")
    assert "weaker classifier here (one training run of each model, one seed)" in large


def test_model_config_names_what_each_variant_adds():
    assert set(seeds.model_config("patterns", "alone", 1)) == {"student"}
    assert set(seeds.model_config("patterns", "ptq8", 1)) == {"student", "post_training"}
    assert set(seeds.model_config("patterns", "qat8", 1)) == {"student", "qat"}
    assert set(seeds.model_config("patterns", "kd", 1)) == {"student", "teacher", "distillation"}
    assert set(seeds.model_config("digits", "magnitude75", 2)) == {"student", "pruning"}
    assert seeds.model_config("digits", "magnitude75", 2)["pruning"]["frequency"] == 40
    assert seeds.model_config("patterns", "alone", 2)["student"]["seed"] == 2
    json.dumps(seeds.model_config("patterns", "2:4", 0))  # plain JSON


@pytest.mark.parametrize("name", ["patterns", "digits"])
def test_a_seed_draws_the_initial_weights_and_leaves_the_training_images_alone(name):
    # chapter 10 says the training images and their order do not depend on the seed
    a, b = seeds.student_config(name, 0), seeds.student_config(name, 1)
    assert a.seed != b.seed and a.data_seed == b.data_seed
    for epoch in (0, 3):
        images_a, labels_a = models.training_images(a, epoch, 64)
        images_b, labels_b = models.training_images(b, epoch, 64)
        assert np.array_equal(images_a, images_b) and np.array_equal(labels_a, labels_b)
