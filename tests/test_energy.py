"""Tests of the energy model, the article's ratios, the thermal model and battery life."""

import math

import numpy as np
import pytest

from mobileopt_ref import energy, litert


def test_the_horowitz_table_as_han_et_al_reprint_it():
    table = energy.HOROWITZ_45NM
    assert table.mac("float32") == pytest.approx(3.7 + 0.9)
    assert table.mac("int8") == pytest.approx(0.2 + 0.1)   # 8-bit multiply, 32-bit accumulate
    assert table.access("sram") == 5.0 and table.access("dram") == 640.0
    assert "ISSCC 2014" in table.source and "Han" in table.source
    doubled = table.scaled(arithmetic=2.0, memory=0.5)
    assert doubled.mac("float32") == pytest.approx(2 * 4.6) and doubled.access("dram") == 320.0


def test_missing_dtype_or_level_is_a_clear_error():
    with pytest.raises(ValueError, match=r"no arithmetic for dtype 'float16'; it has \['float32', 'int32', 'int8'\]"):
        energy.HOROWITZ_45NM.mac("float16")
    with pytest.raises(ValueError, match="no memory level 'l2'"):
        energy.HOROWITZ_45NM.access("l2")
    with pytest.raises(ValueError, match="scale factors must be positive"):
        energy.HOROWITZ_45NM.scaled(arithmetic=0)


def test_inference_energy_by_hand_and_int8_against_float32(small_cnn, small_cnn_int8):
    from mobileopt_ref import compute

    f32 = litert.to_tflite(small_cnn)
    counts = compute.tflite_macs(f32)
    e = energy.inference_energy(f32)
    assert e["compute_j"] == pytest.approx(counts["total"] * 4.6e-12)
    assert e["memory_j"] == pytest.approx((counts["weight_bytes"] + counts["activation_bytes"]) / 4 * 640e-12)
    assert e["total_j"] == pytest.approx(e["compute_j"] + e["memory_j"])
    q = energy.inference_energy(small_cnn_int8)
    assert q["macs"] == e["macs"]
    assert q["compute_j"] == pytest.approx(counts["total"] * 0.3e-12)
    assert energy.energy_ratio(e["total_j"], q["total_j"]) > 3.5
    on_chip = energy.inference_energy(f32, level="sram")
    assert on_chip["memory_j"] == pytest.approx(e["memory_j"] * 5 / 640)
    half = energy.inference_energy(f32, energy.HOROWITZ_45NM.scaled(memory=0.5))
    assert half["memory_j"] == pytest.approx(e["memory_j"] / 2)
    with pytest.raises(ValueError, match="not a .tflite model"):
        energy.inference_energy(b"nothing")


def test_energy_ratio_and_battery_life():
    assert energy.energy_ratio(50.0, 5.0) == pytest.approx(10.0)  # the article's case study
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="must be a positive energy"):
            energy.energy_ratio(1.0, bad)
    # 15 Wh = 54,000 J; at 1 mJ an inference, half the battery pays for 27 million.
    assert energy.inferences_per_charge(1e-3, 15.0, share=0.5) == pytest.approx(27e6)
    with pytest.raises(ValueError, match="energy_j must be positive"):
        energy.inferences_per_charge(0.0, 15.0)
    with pytest.raises(ValueError, match="battery_wh must be positive"):
        energy.inferences_per_charge(1e-3, -1.0)
    with pytest.raises(ValueError, match=r"share must be in \(0, 1\]"):
        energy.inferences_per_charge(1e-3, 15.0, share=1.5)


def test_thermal_model_conserves_energy_and_reaches_the_rc_steady_state():
    # No throttling (threshold out of reach): T -> T_amb + P R with time constant R C.
    run = energy.simulate_thermal(2.0, dt_s=0.01, resistance_k_per_w=10.0, capacity_j_per_k=5.0,
                                  ambient_c=25.0, throttle_c=1e9)
    steps = len(run.t_s)
    assert steps == 1
    power = np.full(20_000, 2.0)  # 200 s = 4 time constants of 50 s
    run = energy.simulate_thermal(power, dt_s=0.01, resistance_k_per_w=10.0, capacity_j_per_k=5.0,
                                  ambient_c=25.0, throttle_c=1e9)
    assert run.heat_in_j == pytest.approx(run.heat_stored_j + run.heat_out_j, rel=1e-12)
    expected = 25.0 + 2.0 * 10.0 * (1 - math.exp(-200.0 / 50.0))
    assert run.temperature_c[-1] == pytest.approx(expected, abs=0.05)
    assert np.all(run.frequency == 1.0)


def test_throttling_lowers_the_clock_and_caps_the_temperature():
    power = np.full(6000, 4.0)  # 600 s at 4 W: unthrottled steady state would be 65 C
    free = energy.simulate_thermal(power, throttle_c=1e9)
    hot = energy.simulate_thermal(power, throttle_c=45.0, min_frequency=0.5)
    assert free.temperature_c[-1] > 60
    assert hot.temperature_c[-1] < free.temperature_c[-1]
    assert hot.frequency.min() < 1.0 and hot.frequency.min() >= 0.5
    assert hot.heat_in_j == pytest.approx(hot.heat_stored_j + hot.heat_out_j, rel=1e-12)
    theta = energy.temperature_rise_rate(25.0, hot.temperature_c[-1], 50.0)
    assert theta == pytest.approx((hot.temperature_c[-1] - 25.0) / 323.15)


def test_theta_is_a_ratio_of_absolute_temperatures():
    # The same rise below the same limit, stated in °C: theta is the rise over the limit in kelvin.
    assert energy.temperature_rise_rate(25.0, 26.6, 45.0) == pytest.approx(1.6 / 318.15)
    assert energy.temperature_rise_rate(25.0, 26.6, 45.0) == pytest.approx(0.005, abs=3e-5)  # the article's 0.5 %
    # Shifting every temperature by the same amount changes theta only through the limit.
    assert energy.temperature_rise_rate(0.0, 10.0, 100.0) == pytest.approx(10 / 373.15)
    for bad in (float("nan"), -273.15, -300.0, "45"):
        with pytest.raises(ValueError, match="above absolute zero"):
            energy.temperature_rise_rate(20.0, 30.0, bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"power_w": -1.0}, "power must be finite and non-negative"),
        ({"power_w": []}, "power_w is empty"),
        ({"power_w": 1.0, "capacity_j_per_k": 0.0}, "capacity_j_per_k must be positive"),
        ({"power_w": 1.0, "resistance_k_per_w": -2.0}, "resistance_k_per_w must be positive"),
        ({"power_w": 1.0, "dt_s": 0.0}, "dt_s must be positive"),
        ({"power_w": 1.0, "min_frequency": 0.0}, r"min_frequency must be in \(0, 1\]"),
    ],
)
def test_bad_thermal_inputs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        energy.simulate_thermal(**kwargs)
    with pytest.raises(ValueError, match="t_max_c must be a finite temperature"):
        energy.temperature_rise_rate(20.0, 30.0, float("inf"))


def test_memory_levels_per_part_and_zero_skipping(small_cnn):
    from mobileopt_ref import compute, pruning

    f32 = litert.to_tflite(small_cnn)
    counts = compute.tflite_macs(f32)
    mixed = energy.inference_energy(f32, level={"weights": "dram", "activations": "sram"})
    assert mixed["weights_j"] == pytest.approx(counts["weight_bytes"] / 4 * 640e-12)
    assert mixed["activations_j"] == pytest.approx(counts["activation_bytes"] / 4 * 5e-12)
    assert mixed["memory_j"] == pytest.approx(mixed["weights_j"] + mixed["activations_j"])
    # Random weights have no zeros: skipping them changes nothing.
    assert energy.inference_energy(f32, skip_zeros=True) == energy.inference_energy(f32)
    # Zero the first half of the 1x1 convolution's kernel: its MACs and kernel bytes halve.
    conv = small_cnn.layers[2]
    kernel, bias = conv.get_weights()
    original = [w.copy() for w in conv.get_weights()]
    half = kernel.copy()
    half[..., : kernel.shape[-1] // 2] = 0.0
    conv.set_weights([half, bias])
    try:
        pruned = litert.to_tflite(small_cnn)
    finally:
        conv.set_weights(original)
    densities = pruning.tflite_op_densities(pruned)
    assert sorted(densities.values())[0] == pytest.approx(0.5)
    dense, skipped = energy.inference_energy(pruned), energy.inference_energy(pruned, skip_zeros=True)
    op = next(r for r in compute.tflite_macs(pruned)["ops"] if r["kind"] == "CONV_2D 1x1")
    assert dense["macs"] - skipped["macs"] == op["macs"] // 2
    assert dense["bytes"] - skipped["bytes"] == kernel.size // 2 * 4
    assert dense["compute_j"] - skipped["compute_j"] == pytest.approx(op["macs"] / 2 * 4.6e-12)
    with pytest.raises(ValueError, match=r"level must be a memory level name or a dict with exactly the keys"):
        energy.inference_energy(f32, level={"weights": "dram"})


def test_thermal_model_with_a_power_function():
    run = energy.simulate_thermal(lambda f: 1.0 + 3.0 * f, steps=3000, throttle_c=40.0)
    assert run.heat_in_j == pytest.approx(run.heat_stored_j + run.heat_out_j, rel=1e-12)
    assert np.allclose(run.power_w, 1.0 + 3.0 * run.frequency)
    assert run.frequency.min() < 1.0
    with pytest.raises(ValueError, match="steps must be a positive integer when power_w is a function"):
        energy.simulate_thermal(lambda f: 1.0)
    with pytest.raises(ValueError, match="power must be finite and non-negative"):
        energy.simulate_thermal(lambda f: -1.0, steps=5)
    with pytest.raises(ValueError, match="power_w has 3 values but steps is 5"):
        energy.simulate_thermal([1.0, 2.0, 3.0], steps=5)


def test_sustained_inference_back_to_back_and_at_a_frame_rate():
    cool = dict(throttle_c=1e9)
    flat_out = energy.sustained_inference(0.02, 4.0, duration_s=60, idle_power_w=1.0, **cool)
    assert np.all(flat_out.busy == 1.0) and flat_out.dropped_fraction is None
    assert flat_out.inferences == pytest.approx(60 / 0.02)
    assert np.allclose(flat_out.thermal.power_w, 5.0)
    # 30 fps with a 20 ms inference: every frame processed, busy 60 % of the time.
    camera = energy.sustained_inference(0.02, 4.0, duration_s=60, fps=30, idle_power_w=1.0, **cool)
    assert camera.dropped_fraction == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(camera.busy, 0.6) and np.allclose(camera.thermal.power_w, 1.0 + 4.0 * 0.6)
    # Hot: the clock drops, latency grows past the frame budget, frames are dropped.
    hot = energy.sustained_inference(0.03, 8.0, duration_s=600, fps=30, idle_power_w=1.0, throttle_c=40.0)
    assert hot.latency_s.max() > 1 / 30 and hot.dropped_fraction > 0
    t = hot.thermal
    assert t.heat_in_j == pytest.approx(t.heat_stored_j + t.heat_out_j, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latency_s": 0.0}, "latency_s must be positive"),
        ({"fps": 0}, "fps must be a positive frame rate or None"),
        ({"busy_power_w": -1.0}, "busy_power_w must be a non-negative power"),
        ({"duration_s": -5}, "duration_s must be positive"),
        ({"capacity_j_per_k": 0.0}, "capacity_j_per_k must be positive"),
    ],
)
def test_bad_sustained_inputs(kwargs, message):
    args = dict(latency_s=0.02, busy_power_w=4.0, duration_s=10.0) | kwargs
    with pytest.raises(ValueError, match=message):
        energy.sustained_inference(**args)


def _fake_rapl(root, package_uj, core_uj, limit=1000):
    for folder, name, value in (("intel-rapl:0", "package-0", package_uj), ("intel-rapl:0:0", "core", core_uj)):
        zone = root / folder
        zone.mkdir(parents=True, exist_ok=True)
        (zone / "name").write_text(name + "\n")
        (zone / "energy_uj").write_text(f"{value}\n")
        (zone / "max_energy_range_uj").write_text(f"{limit}\n")


def test_rapl_counters_are_read_and_wraparound_is_corrected(tmp_path):
    _fake_rapl(tmp_path, 900, 100)
    assert set(energy.rapl_zones(tmp_path)) == {"package-0", "package-0/core"}

    def work():  # the package counter wraps past its 1000 uJ range, the core's does not
        _fake_rapl(tmp_path, 200, 400)
        return "done"

    measured = energy.measure_rapl(work, root=tmp_path)
    assert measured["result"] == "done" and measured["seconds"] >= 0
    assert measured["joules"]["package-0"] == pytest.approx((1000 - 900 + 1 + 200) * 1e-6)
    assert measured["joules"]["package-0/core"] == pytest.approx(300e-6)


def test_rapl_unavailable_says_why(tmp_path, monkeypatch):
    with pytest.raises(energy.RaplUnavailable, match="does not exist: this machine exposes no powercap"):
        energy.rapl_zones(tmp_path / "missing")
    with pytest.raises(energy.RaplUnavailable, match="has no RAPL zone"):
        energy.rapl_zones(tmp_path)
    _fake_rapl(tmp_path, 1, 1)
    from pathlib import Path

    real = Path.read_text

    def deny(self, *args, **kwargs):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", deny)
    with pytest.raises(energy.RaplUnavailable, match="readable by root only"):
        energy.measure_rapl(lambda: None, root=tmp_path)


def test_cpu_time_of_sustained_inference(small_cnn):
    f32 = litert.to_tflite(small_cnn)
    times = energy.measure_cpu_time({"a": f32, "b": f32}, num_runs={"a": 60, "b": 30}, rounds=3, num_threads=1)
    assert times["a"].inferences == 60 and times["b"].inferences == 30
    for t in times.values():
        assert t.cpu_per_inference_s > 0 and t.wall_per_inference_s > 0
        assert 0 < t.busy_cores < 1.5   # one thread: at most about one core busy
    assert energy.cpu_time_energy(0.01, 2.0) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="watts_per_core must be positive"):
        energy.cpu_time_energy(0.01, 0.0)
    with pytest.raises(ValueError, match="num_runs given per model must name exactly the models"):
        energy.measure_cpu_time({"a": f32}, num_runs={"b": 10})
    with pytest.raises(ValueError, match="needs at least one model"):
        energy.measure_cpu_time({})


def test_scaled_total_is_the_model_under_a_scaled_table(small_cnn_int8):
    base = energy.inference_energy(small_cnn_int8)
    for a, m in ((0.5, 2.0), (2.0, 0.5), (1.0, 1.0)):
        scaled = energy.inference_energy(small_cnn_int8, energy.HOROWITZ_45NM.scaled(arithmetic=a, memory=m))
        assert energy.scaled_total(base, arithmetic=a, memory=m) == pytest.approx(scaled["total_j"], rel=1e-12)
    with pytest.raises(ValueError, match="scale factors must be positive"):
        energy.scaled_total(base, memory=0)


def test_the_assumed_phone_heats_as_its_thermal_model_says():
    phone = energy.PHONE
    assert phone.battery_wh == pytest.approx(11.55)
    run = energy.simulate_thermal(phone.busy_power_w + phone.idle_power_w, steps=20_000, **phone.thermal())
    # 5 W would warm it 50 K above the air unthrottled; the governor holds it a few K above 45 C.
    assert phone.throttle_c < run.temperature_c[-1] < phone.throttle_c + 5
    assert run.frequency[-1] < 1.0
