"""Results across machines: atomic per-CPU records and the table every chapter shows."""

import json

import pytest

from mobileopt_ref import compute, env, results, stats


def _card(cpu="Intel(R) Xeon(R) CPU @ 2.50GHz", threads=2):
    return env.MachineCard(cpu=cpu, cores=2, threads=threads, python="3.11.7", versions={"tensorflow": "2.21.0"})


def _ratio():
    a = compute.latency_stats([6.0, 6.1, 5.9, 6.2, 6.0, 6.1], [2, 2, 2])
    b = compute.latency_stats([3.0, 3.1, 2.9, 3.2, 3.0, 3.1], [2, 2, 2])
    return stats.latency_ratio(a, b)


def test_machine_slug():
    assert results.machine_slug("Intel(R) Xeon(R) CPU @ 2.50GHz") == "intel-xeon-cpu-2-50ghz"
    assert results.machine_slug("AMD EPYC") == "amd-epyc"
    with pytest.raises(ValueError, match="file name"):
        results.machine_slug("@@")


def test_record_and_table_across_machines(tmp_path):
    r = _ratio()
    results.record("04_computation", {"xnn": ("XNNPACK vs reference", r), "n": ("delegated nodes", 1)},
                   _card(), folder=tmp_path)
    results.record("04_computation", {"xnn": ("XNNPACK vs reference", r)}, _card("AMD EPYC"), folder=tmp_path)
    results.record("05_memory", {"rss": ("RSS", 12.5)}, _card("AMD EPYC"), folder=tmp_path)
    saved = json.loads((tmp_path / "amd-epyc.json").read_text())
    assert (tmp_path / "amd-epyc.json").stat().st_mode & 0o777 == 0o644
    assert list(saved["chapters"]["04_computation"]["values"]) == ["xnn"]
    assert set(saved["chapters"]) == {"04_computation", "05_memory"}  # recording one chapter keeps the others
    assert saved["chapters"]["04_computation"]["values"]["xnn"]["data"]["verdict"] == "above"
    table = results.table("04_computation", _card("AMD EPYC"), folder=tmp_path).splitlines()
    assert "AMD EPYC, 2 threads" in table[0] and "(this machine)" in table[0]
    assert table[0].index("AMD EPYC") < table[0].index("Xeon")  # this machine first
    assert table[2].startswith(f"| XNNPACK vs reference | {r.text()}, faster | {r.text()}, faster |")
    assert table[3] == "| delegated nodes |  | 1 |"  # not recorded on AMD: blank
    with pytest.raises(ValueError, match="no machine"):
        results.table("99_nothing", folder=tmp_path)


def test_record_refuses_bad_values_and_keeps_a_corrupt_file(tmp_path):
    with pytest.raises(ValueError, match="label, value"):
        results.record("c", {"x": 1.0}, _card(), folder=tmp_path)
    with pytest.raises(TypeError, match="cannot record"):
        results.record("c", {"x": ("label", object())}, _card(), folder=tmp_path)
    with pytest.raises(ValueError, match="at least one"):
        results.record("c", {}, _card(), folder=tmp_path)
    path = tmp_path / "amd-epyc.json"
    path.write_text("{not json")
    with pytest.raises(results.ResultsError, match="unreadable"):
        results.record("c", {"x": ("label", 1.0)}, _card("AMD EPYC"), folder=tmp_path)
    assert path.read_text() == "{not json"  # never silently replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "amd-epyc.json"]  # no temporary file left


def test_values_keep_their_recorded_order(tmp_path):
    values = {key: (f"label {key}", i) for i, key in enumerate(["z", "a", "m"])}
    results.record("c", values, _card(), folder=tmp_path)
    rows = results.table("c", folder=tmp_path).splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == ["| label z", "| label a", "| label m"]


def test_concurrent_records_keep_every_chapter(tmp_path):
    import threading

    threads = [threading.Thread(target=results.record, args=(f"ch{i}", {"x": ("x", i)}, _card()),
                                kwargs={"folder": tmp_path}) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    saved = json.loads((tmp_path / "intel-xeon-cpu-2-50ghz.json").read_text())
    assert sorted(saved["chapters"]) == [f"ch{i}" for i in range(8)]


def test_describe_mcnemar_and_numbers():
    m = stats.mcnemar([1, 1, 0, 1], [1, 0, 0, 1])
    text, data = results.describe(m)
    assert text == "75.0 % vs 50.0 %, not distinguishable (p = 1)" and data["only_a"] == 1
    assert results.describe(True) == ("yes", True)
    assert results.describe(3.14159)[0] == "3.142"


def test_the_committed_results_are_valid_and_name_every_chapter_they_hold():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "results"
    machines = results.load_all(folder)  # raises on a malformed file
    assert machines, "results/ holds no machine: execute the chapters (make execute) and commit results/"
    chapters = {p.stem for p in (folder.parent / "notebooks").glob("*.ipynb")}
    for slug, content in machines.items():
        assert slug == results.machine_slug(content["machine"]["cpu"])
        assert set(content["chapters"]) <= chapters, f"{slug}: results for chapters that do not exist"
        for chapter in content["chapters"]:
            assert results.table(chapter, folder=folder).count("\n") >= 2


def test_across_machines_lists_every_machine_that_recorded_the_value(tmp_path):
    from types import SimpleNamespace

    for cpu, ratio in (("CPU One", 1.25), ("CPU Two", 0.9)):
        card = SimpleNamespace(cpu=cpu, cores=2, threads=2, python="3.11", versions={})
        results.record("04_computation", {"speed": ("int8 vs float32", ratio)}, card, folder=tmp_path)
    text = results.across_machines("04_computation", "speed", folder=tmp_path)
    assert text.startswith("on the 2 CPUs recorded in results/: ")
    assert "CPU One, 1.25" in text and "CPU Two, 0.9" in text
    with pytest.raises(ValueError, match=r"no machine recorded 'other' for '04_computation'; recorded keys: \['speed'\]"):
        results.across_machines("04_computation", "other", folder=tmp_path)
    assert results.across_machines("05_memory", "speed", folder=tmp_path).startswith("on no CPU recorded in results/ yet")


def test_across_machines_reads_the_checkouts_records_when_this_run_records_elsewhere(tmp_path, monkeypatch):
    # Under the test suite MOBILEOPT_RESULTS_DIR is an empty folder; the committed records still count.
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    committed = results.load_all(results._checkout_results_dir())
    chapter = next(c for m in committed.values() for c in m["chapters"])
    key = next(iter(next(m for m in committed.values() if chapter in m["chapters"])["chapters"][chapter]["values"]))
    assert results.across_machines(chapter, key).startswith("on the")


def test_recorded_prefers_this_machine_and_names_the_machine_it_comes_from(tmp_path):
    from types import SimpleNamespace

    one = SimpleNamespace(cpu="CPU One", cores=2, threads=2, python="3.11", versions={})
    two = SimpleNamespace(cpu="CPU Two", cores=2, threads=1, python="3.11", versions={})
    results.record("02_pruning", {"gzip": ("gzip ratio", 2.5), "speed": ("speed-up", _ratio())}, one, folder=tmp_path)
    path = results.record("02_pruning", {"gzip": ("gzip ratio", 2.25)}, two, folder=tmp_path)
    content = json.loads(path.read_text())  # CPU Two's record the later one, whatever the clock said
    content["chapters"]["02_pruning"]["recorded"] = "2999-01-01T00:00:00Z"
    path.write_text(json.dumps(content))
    mine = results.recorded("02_pruning", "gzip", one, folder=tmp_path)
    assert (mine.cpu, mine.data, mine.this_machine) == ("CPU One", 2.5, True)
    assert mine.machine().startswith("CPU One, 2 threads, ") and mine.machine().endswith("(this machine)")
    ratio = results.recorded("02_pruning", "speed", one, folder=tmp_path)
    assert ratio.data["low"] <= ratio.data["estimate"] <= ratio.data["high"] and ratio.text.endswith("faster")
    # A machine that did not record the chapter reads the most recent record, and says whose.
    other = results.recorded("02_pruning", "gzip", SimpleNamespace(cpu="CPU Three"), folder=tmp_path)
    assert (other.cpu, other.data, other.this_machine) == ("CPU Two", 2.25, False)
    assert "(this machine)" not in other.machine()
    with pytest.raises(results.ResultsError, match=r"'CPU Two''s record of '02_pruning' has no value 'speed'|has no value 'speed'"):
        results.recorded("02_pruning", "speed", two, folder=tmp_path)
    with pytest.raises(results.ResultsError, match=r"no machine has recorded results for '09_case_study': execute notebooks/09_case_study.ipynb"):
        results.recorded("09_case_study", "gzip", one, folder=tmp_path)


def test_recorded_reads_the_checkouts_records_when_this_run_records_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    committed = results.load_all(results._checkout_results_dir())
    slug, content = next(iter(committed.items()))
    chapter, chap = next(iter(content["chapters"].items()))
    key = next(iter(chap["values"]))
    value = results.recorded(chapter, key)
    assert value.text == max((m for m in committed.values() if chapter in m["chapters"]),
                             key=lambda m: m["chapters"][chapter]["recorded"])["chapters"][chapter]["values"][key]["text"]
