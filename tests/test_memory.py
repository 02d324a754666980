"""Tests of tensor lifetimes, arena planners, fragmentation and the allocator simulation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobileopt_ref import litert, memory
from mobileopt_ref.memory import Lifetime


def _chain():
    # a -> b -> c, with a skip from a to c: a lives 0..2, b 1..2, c 2..3, d 3..3.
    return [Lifetime("a", 100, 0, 2), Lifetime("b", 50, 1, 2), Lifetime("c", 100, 2, 3), Lifetime("d", 10, 3, 3)]


def test_lower_bound_and_live_bytes_by_hand():
    lives = _chain()
    np.testing.assert_array_equal(memory.live_bytes(lives), [100, 150, 250, 110])
    assert memory.lower_bound(lives) == 250


def test_planners_by_hand():
    lives = _chain()
    naive = memory.plan_naive(lives, alignment=1)
    assert naive.size == 260
    greedy = memory.plan_greedy_by_size(lives, alignment=1)
    # Largest first: a at 0, c must avoid a (both live at 2): 100; b avoids both: 200;
    # d only meets c: the gap 0..100 is free at step 3.
    assert greedy.offsets == {"a": 0, "c": 100, "b": 200, "d": 0}
    assert greedy.size == 250 == memory.lower_bound(lives)
    first = memory.plan_first_fit(lives, alignment=1)
    assert first.offsets == {"a": 0, "b": 100, "c": 150, "d": 0}
    for plan in (naive, greedy, first):
        memory.check_plan(lives, plan)
    aligned = memory.plan_greedy_by_size(lives, alignment=64)
    assert all(offset % 64 == 0 for offset in aligned.offsets.values())


def test_best_fit_takes_the_tightest_gap_first_fit_the_lowest():
    # Tensors live throughout go first (in index order); the rest largest first.
    # Long-lived A, B, C with two short-lived holes H1 (100 bytes) and H2 (40) between them.
    # At step 1 the holes are free: S (35 bytes) fits both; best fit takes the 40-byte one.
    lives = [Lifetime("A", 100, 0, 2), Lifetime("H1", 100, 0, 0), Lifetime("B", 60, 0, 2),
             Lifetime("H2", 40, 0, 0), Lifetime("C", 36, 0, 2), Lifetime("S", 35, 1, 1),
             Lifetime("Z", 8, 3, 3)]  # a last step, so that A, B, C are not live throughout
    greedy = memory.plan_greedy_by_size(lives, alignment=1)
    first = memory.plan_first_fit(lives, alignment=1)
    assert [greedy.offsets[k] for k in ("A", "H1", "B", "H2", "C")] == [0, 100, 200, 260, 300]
    assert greedy.offsets["S"] == 260
    assert first.offsets["S"] == 100
    for plan in (greedy, first):
        memory.check_plan(lives, plan)
    # Without Z, A, B and C are live from the first step to the last: LiteRT places them
    # first, side by side in tensor order, before any larger short-lived tensor.
    whole = memory.plan_greedy_by_size(lives[:-1], alignment=1)
    assert [whole.offsets[k] for k in ("A", "B", "C")] == [0, 100, 160]


def test_check_plan_names_the_colliding_tensors():
    lives = _chain()
    bad = memory.Plan("bad", {"a": 0, "b": 50, "c": 200, "d": 0}, 300)
    with pytest.raises(ValueError, match="tensors 'a' .* and 'b' .* are live together and overlap"):
        memory.check_plan(lives, bad)
    with pytest.raises(ValueError, match="no valid offset for tensor 'd'"):
        memory.check_plan(lives, memory.Plan("partial", {"a": 0, "b": 100, "c": 150}, 250))


@pytest.mark.parametrize(
    ("lives", "message"),
    [
        ([], "no tensors to plan"),
        ([Lifetime("a", 0, 0, 1)], "sizes must be positive integers"),
        ([Lifetime("a", -5, 0, 1)], "sizes must be positive integers"),
        ([Lifetime("a", 5, 2, 1)], "first used at step 2 after its last use 1"),
        ([Lifetime("a", 5, 0, 1), Lifetime("a", 6, 0, 1)], "appears twice"),
    ],
)
def test_bad_lifetimes(lives, message):
    with pytest.raises(ValueError, match=message):
        memory.plan_greedy_by_size(lives)


@st.composite
def _lifetimes(draw):
    n = draw(st.integers(1, 25))
    out = []
    for i in range(n):
        first = draw(st.integers(0, 30))
        out.append(Lifetime(i, draw(st.integers(1, 5000)), first, first + draw(st.integers(0, 10))))
    return out


@settings(max_examples=150, deadline=None)
@given(_lifetimes())
def test_every_planner_is_valid_and_none_beats_the_lower_bound(lives):
    bound = memory.lower_bound(lives)
    for planner in memory.PLANNERS.values():
        plan = planner(lives)
        memory.check_plan(lives, plan)
        assert plan.size >= bound
    assert memory.plan_naive(lives, alignment=1).size == sum(l.size for l in lives)


def test_usage_ratio_and_fragmentation_of_a_plan():
    lives = _chain()
    plan = memory.plan_greedy_by_size(lives, alignment=1)
    usage = memory.plan_usage(lives, plan)
    np.testing.assert_allclose(usage["rho"], np.array([100, 150, 250, 110]) / 250)
    assert usage["rho_peak"] == 1.0
    # Step 3: c at 100..200 and d at 0..10 live; free 10..100 and 200..250: 140 free,
    # the largest block 90, so 50 bytes are fragmented.
    assert usage["beta"][3] == pytest.approx(50 / 250)


def test_the_heap_fragments_and_compaction_repairs_it():
    trace = [("alloc", "a", 100), ("alloc", "b", 100), ("alloc", "c", 100), ("alloc", "d", 100),
             ("free", "a"), ("free", "c"), ("alloc", "e", 150)]
    steps = memory.simulate(trace, alignment=1)
    last = steps[-1]
    # a and c left two 100-byte holes; 150 bytes fit in neither, so e goes on top.
    assert last["total"] == 550 and last["used"] == 350
    assert last["free"] == 200 and last["largest_free"] == 100
    assert last["beta"] == pytest.approx(100 / 550)
    assert last["rho"] == pytest.approx(350 / 550)
    compacted = memory.simulate([*trace, ("compact",)], alignment=1)[-1]
    assert compacted["beta"] == 0 and compacted["rho"] == 1.0 and compacted["total"] == 350
    assert compacted["moved"] == 100 + 100 + 150  # b, d and e slide down


def test_churn_grows_fragmentation_and_compaction_removes_it():
    trace = memory.churn_trace(400, seed=0)
    steps = memory.simulate(trace, alignment=1)
    early = np.mean([s["beta"] for s in steps[20:60]])
    late = np.mean([s["beta"] for s in steps[-60:]])
    assert late > early
    after = memory.simulate([*trace, ("compact",)], alignment=1)[-1]
    assert after["beta"] == 0 and after["rho"] == 1.0
    assert after["moved"] > 0


@pytest.mark.parametrize(
    ("trace", "message"),
    [
        ([], "the trace is empty"),
        ([("free", "x")], r"event 0: free of unknown block 'x': it was never allocated"),
        ([("alloc", "x", 8), ("free", "x"), ("free", "x")], r"event 2: double free: 'x' was already freed"),
        ([("alloc", "x", 0)], r"event 0: cannot allocate 0 bytes for 'x'"),
        ([("alloc", "x", -3)], r"event 0: cannot allocate -3 bytes"),
        ([("alloc", "x", 8), ("alloc", "x", 8)], "'x' is already allocated"),
        ([("resize", "x")], r"unknown event \('resize', 'x'\)"),
    ],
)
def test_bad_traces(trace, message):
    with pytest.raises(ValueError, match=message):
        memory.simulate(trace)


def test_lifetimes_of_a_real_graph(small_cnn, small_cnn_int8):
    model = litert.to_tflite(small_cnn)
    graph = litert.read_graph(model)
    lives = memory.tensor_lifetimes(model)
    assert {l.tensor for l in lives} == {i for op in graph.ops for i in op.outputs} | set(graph.inputs)
    by_tensor = {l.tensor: l for l in lives}
    assert by_tensor[graph.inputs[0]].first == 0 and by_tensor[graph.inputs[0]].size == 32 * 32 * 3 * 4
    assert by_tensor[graph.outputs[0]].last == len(graph.ops) - 1
    int8 = memory.tensor_lifetimes(small_cnn_int8)
    assert sum(l.size for l in int8) * 4 == sum(l.size for l in lives)
    doubled = memory.tensor_lifetimes(model, batch=2)
    assert [l.size for l in doubled] == [2 * l.size for l in lives]
    with pytest.raises(ValueError, match="batch must be a positive integer"):
        memory.tensor_lifetimes(model, batch=0)
    with pytest.raises(ValueError, match="not a .tflite model"):
        memory.tensor_lifetimes(b"garbage")


def test_litert_arena_is_a_valid_plan_once_in_place_outputs_are_merged(tiny_tflite):
    lives = memory.tensor_lifetimes(tiny_tflite)
    merged = memory.share_in_place(tiny_tflite, lives)
    graph = litert.read_graph(tiny_tflite)
    assert len(lives) - len(merged) == graph.op_counts()["ADD"]  # every residual addition in place
    offsets = memory.runtime_offsets(tiny_tflite)
    for life in merged:
        if isinstance(life.tensor, tuple):
            assert len({offsets[t] for t in life.tensor}) == 1  # LiteRT really shares the bytes
    merged_offsets = {l.tensor: offsets[l.tensor[0] if isinstance(l.tensor, tuple) else l.tensor] for l in merged}
    plan = memory.Plan("litert", merged_offsets, max(merged_offsets[l.tensor] + l.size for l in merged))
    memory.check_plan(merged, plan)
    assert plan.size >= memory.lower_bound(merged)
    with pytest.raises(ValueError, match="live together and overlap"):
        memory.check_plan(lives, memory.Plan("litert", offsets, plan.size))


def test_rss_of_a_fresh_process(tiny_tflite):
    stages = memory.measure_rss(tiny_tflite, how="copy", kernels="builtin")
    assert set(stages["growth"]) == {"read", "created", "allocated", "invoked", "steady"}
    assert all(stages[k] > 0 for k in ("start", "steady"))
    with pytest.raises(ValueError, match="how must be 'mmap' or 'copy'"):
        memory.measure_rss(tiny_tflite, how="stream")
