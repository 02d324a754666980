"""Verdicts: exact McNemar, bootstrap intervals of latency ratios, interval verdicts."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mobileopt_ref import compute, stats


def test_verdict_of_an_interval():
    assert stats.verdict(1.1, 1.3) == "above"
    assert stats.verdict(0.7, 0.9) == "below"
    assert stats.verdict(0.9, 1.1) == "not distinguishable"
    assert stats.verdict(-0.5, -0.1, null=0.0) == "below"
    with pytest.raises(ValueError, match="above its high"):
        stats.verdict(2.0, 1.0)
    with pytest.raises(ValueError, match="finite"):
        stats.verdict(float("nan"), 1.0)


def test_mcnemar_counts_discordant_pairs_and_matches_the_binomial_test():
    a = np.array([1, 1, 1, 0, 0, 1, 1, 0], dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 1, 0, 0], dtype=bool)
    r = stats.mcnemar(a, b)
    assert (r.n, r.only_a, r.only_b) == (8, 3, 1)
    assert r.accuracy_a == 5 / 8 and r.accuracy_b == 3 / 8 and r.difference == -2 / 8
    # exact two-sided binomial: P(X <= 1 or X >= 3 | n=4, 1/2) = 10/16
    assert r.p_value == pytest.approx(10 / 16)
    assert r.verdict == "not distinguishable"


def test_mcnemar_finds_a_real_difference_and_its_direction():
    rng = np.random.default_rng(0)
    a = rng.random(2000) < 0.85
    b = a.copy()
    b[np.flatnonzero(~a)[:60]] = True   # B fixes 60 of A's errors
    b[np.flatnonzero(a)[:10]] = False   # and breaks 10 of A's right answers
    r = stats.mcnemar(a, b)
    assert (r.only_a, r.only_b) == (10, 60)
    assert r.p_value == pytest.approx(scipy_stats.binomtest(10, 70, 0.5).pvalue)
    assert r.p_value < 1e-6 and r.verdict == "B better"
    assert stats.mcnemar(b, a).verdict == "A better"
    assert "higher" in r.phrase


def test_mcnemar_identical_models_and_bad_input():
    a = np.array([True, False, True])
    r = stats.mcnemar(a, a)
    assert r.p_value == 1.0 and r.verdict == "not distinguishable"
    with pytest.raises(ValueError, match="same images"):
        stats.mcnemar([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="0/1"):
        stats.mcnemar([0.2, 1], [1, 1])
    with pytest.raises(ValueError, match="non-empty"):
        stats.mcnemar([], [])
    with pytest.raises(ValueError, match="level"):
        stats.mcnemar(a, a, level=1.5)


def _rounds(rng, center, rounds=10, per=20, drift=None):
    drift = np.ones(rounds) if drift is None else drift
    return compute.latency_stats(
        np.concatenate([center * d * rng.gamma(50, 1 / 50, per) for d in drift]), [per] * rounds)


def test_latency_ratio_covers_the_true_ratio_with_paired_rounds():
    rng = np.random.default_rng(1)
    drift = 1 + rng.random(10)  # the machine slows down and speeds up between rounds
    base = _rounds(rng, 6.0, drift=drift)
    fast = _rounds(rng, 3.0, drift=drift)
    r = stats.latency_ratio(base, fast)
    assert r.method == "rounds" and r.low <= r.estimate <= r.high
    assert r.low < 2.0 < r.high or abs(r.estimate - 2.0) < 0.2
    assert r.verdict == "above" and r.speed_word == "faster"
    assert r.estimate == pytest.approx(np.median(base.samples_ms) / np.median(fast.samples_ms))
    assert stats.latency_ratio(fast, base).verdict == "below"
    assert stats.latency_ratio(base, fast) == r  # the seed makes the interval reproducible


def test_latency_ratio_of_the_same_distribution_is_not_distinguishable():
    rng = np.random.default_rng(2)
    a, b = _rounds(rng, 4.0), _rounds(rng, 4.0)
    r = stats.latency_ratio(a, b)
    assert r.verdict == "not distinguishable" and r.low < 1 < r.high


def test_latency_ratio_without_rounds_bootstraps_samples():
    rng = np.random.default_rng(3)
    a = compute.latency_stats(rng.gamma(50, 6 / 50, 300))
    b = compute.latency_stats(rng.gamma(50, 2 / 50, 300))
    r = stats.latency_ratio(a, b)
    assert r.method == "samples" and r.verdict == "above" and 2.7 < r.estimate < 3.3
    assert r.text().startswith(f"{r.estimate:.2f}x (95 % CI ")
    with pytest.raises(ValueError, match="n_resamples"):
        stats.latency_ratio(a, b, n_resamples=10)


def test_latency_stats_checks_round_sizes():
    with pytest.raises(ValueError, match="sum to the 3 samples"):
        compute.latency_stats([1.0, 2.0, 3.0], [1, 1])


def test_compare_latency_records_its_rounds(tiny_tflite):
    runs = compute.compare_latency({"a": tiny_tflite, "b": tiny_tflite}, num_runs={"a": 12, "b": 8},
                                   warmup=1, rounds=6)
    assert runs["a"].round_sizes == (2,) * 6 and runs["b"].round_sizes == (2, 2, 1, 1, 1, 1)
    assert stats.latency_ratio(runs["a"], runs["b"]).method == "rounds"


def test_min_rounds_is_where_all_rounds_on_one_side_becomes_rarer_than_the_level():
    assert stats.min_rounds() == 6 and stats.min_rounds(0.01) == 8 and stats.min_rounds(0.5) == 2
    for level in (0.2, 0.05, 0.01, 0.001):
        k = stats.min_rounds(level)
        assert 2 * 0.5**k <= level < 2 * 0.5 ** (k - 1)
    with pytest.raises(ValueError, match="level"):
        stats.min_rounds(1.5)


def test_too_few_rounds_fall_back_to_the_runs_or_are_refused():
    rng = np.random.default_rng(5)
    a, b = _rounds(rng, 4.0, rounds=5), _rounds(rng, 2.0, rounds=5)
    # five rounds: all five on one side of the true ratio has probability 1/16 > 5 %
    assert stats.latency_ratio(a, b).method == "samples"
    assert stats.latency_ratio(a, b, level=0.1).method == "rounds"
    with pytest.raises(ValueError, match="at least 6 for a 95 % interval"):
        stats.rounds_ratio(lambda m: m["a"] / m["b"], {"a": a, "b": b})
    assert stats.rounds_ratio(lambda m: m["a"] / m["b"], {"a": a, "b": b}, level=0.1).method == "rounds"


def test_proportion_interval_is_exact():
    low, high = stats.proportion_interval(10, 100)
    ci = scipy_stats.binomtest(10, 100).proportion_ci(0.95, method="exact")
    assert (low, high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert stats.proportion_interval(0, 20)[0] == 0.0
    with pytest.raises(ValueError, match="successes <= trials"):
        stats.proportion_interval(5, 3)


def test_rounds_ratio_of_several_medians_and_its_agreement_with_latency_ratio():
    rng = np.random.default_rng(4)
    drift = 1 + rng.random(10)
    runs = {"a": _rounds(rng, 6.0, drift=drift), "b": _rounds(rng, 2.0, drift=drift), "c": _rounds(rng, 1.0, drift=drift)}
    share = stats.rounds_ratio(lambda m: m["b"] / (m["a"] + m["b"] + m["c"]) / (1 / 3), runs)
    assert share.method == "rounds" and share.low <= share.estimate <= share.high
    assert share.estimate == pytest.approx(np.median(runs["b"].samples_ms) / sum(np.median(r.samples_ms) for r in runs.values()) * 3)
    assert share.verdict == "below"  # b takes 2/9 of the time, less than a third
    direct = stats.latency_ratio(runs["a"], runs["b"])
    via = stats.rounds_ratio(lambda m: m["a"] / m["b"], {"a": runs["a"], "b": runs["b"]})
    assert via.estimate == pytest.approx(direct.estimate) and via.verdict == direct.verdict
    uneven = {"a": compute.latency_stats(runs["a"].samples_ms, [21] + [19] + [20] * 8), "b": runs["b"]}
    assert stats.rounds_ratio(lambda m: m["a"] / m["b"], uneven).verdict == "above"
    with pytest.raises(ValueError, match="same number of rounds"):
        stats.rounds_ratio(lambda m: m["a"], {"a": compute.latency_stats([1.0, 2.0, 3.0])})


def test_ratio_phrases_inversion_and_scaling():
    r = stats.Ratio(2.0, 1.6, 2.5, 0.95, "rounds", "above")
    assert r.than("one thread") == "faster than one thread"
    inv = r.inverted()
    assert (inv.estimate, inv.low, inv.high, inv.verdict) == (0.5, 0.4, 0.625, "below")
    assert inv.than("X") == "slower than X"
    per = inv.scaled(3.0)
    assert (per.estimate, per.low, per.high, per.verdict) == (1.5, pytest.approx(1.2), 1.875, "above")
    assert stats.Ratio(1.0, 0.9, 1.1, 0.95, "rounds", "not distinguishable").than("X") == "not distinguishable from X"
    with pytest.raises(ValueError, match="positive"):
        r.scaled(0)


def test_p_text_and_mcnemar_notes():
    assert stats.p_text(0.0362) == "p = 0.036" and stats.p_text(3e-9) == "p < 0.0001"
    with pytest.raises(ValueError, match="p-value"):
        stats.p_text(1.5)
    rng = np.random.default_rng(5)
    a = rng.random(500) < 0.5
    b = a | (rng.random(500) < 0.3)
    m = stats.mcnemar(a, b)
    assert m.note == "significantly higher, exact McNemar p < 0.0001" and "p < 0.0001" in m.phrase
    assert stats.mcnemar(a, a).note == "not distinguishable, exact McNemar p = 1"
    r = stats.Ratio(1.0, 0.9, 1.1, 0.95, "rounds", "not distinguishable")
    assert r.than("float32", quantity="speed") == "not distinguishable in speed from float32"


def test_worded_ratios_and_clauses():
    r = stats.Ratio(2.1, 1.9, 2.3, 0.95, "rounds", "above").worded("longer", "shorter")
    assert r.word == "longer" and r.than("a warm inference") == "longer than a warm inference"
    assert r.clause("X") == "longer than X (2.10x, 95 % CI 1.90-2.30)"
    assert r.inverted().word == "shorter" and r.inverted().words == r.words  # below 1 now, same words
    assert r.scaled(2.0).words == ("longer", "shorter")
    assert stats.Ratio(1.0, 0.9, 1.1, 0.95, "rounds", "not distinguishable").word == "not distinguishable"


def test_over_median_uses_the_order_statistic_interval():
    sample = compute.latency_stats(np.linspace(1.0, 3.0, 201))
    r = stats.over_median(6.0, sample)
    lo, hi = compute.median_confidence_interval(sample.samples_ms, 0.95)
    assert r.estimate == pytest.approx(3.0) and (r.low, r.high) == (pytest.approx(6 / hi), pytest.approx(6 / lo))
    assert r.method == "median interval" and r.verdict == "above"
    with pytest.raises(ValueError, match="positive number"):
        stats.over_median(0, sample)


def test_accuracy_difference_interval_brackets_the_difference_and_agrees_with_mcnemar():
    rng = np.random.default_rng(0)
    a = rng.random(2000) < 0.88
    b = a.copy()
    flip = rng.choice(2000, 40, replace=False)
    b[flip] = ~b[flip]
    est, low, high = stats.accuracy_difference_interval(a, b)
    assert est == pytest.approx(a.mean() - b.mean())
    assert low < est < high
    # Where the interval excludes 0 the exact McNemar test finds a difference, and back.
    for shift in (0, 10, 25, 40):
        c = b.copy()
        wrong = np.flatnonzero(c)[:shift]
        c[wrong] = False
        _, lo, hi = stats.accuracy_difference_interval(a, c)
        test = stats.mcnemar(a, c)
        assert (lo > 0 or hi < 0) == (test.verdict != "not distinguishable") or min(abs(lo), abs(hi)) < 2e-3
    # Identical models: a zero-width interval at 0; a sure loss: the whole interval above 0.
    assert stats.accuracy_difference_interval(a, a) == (0.0, 0.0, 0.0)
    _, lo, _ = stats.accuracy_difference_interval(np.ones(100, bool), np.zeros(100, bool))
    assert lo > 0.9
    with pytest.raises(ValueError, match="same images"):
        stats.accuracy_difference_interval(a, a[:10])
