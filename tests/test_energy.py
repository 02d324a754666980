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
    assert theta == pytest.approx((hot.temperature_c[-1] - 25.0) / 50.0)


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
    with pytest.raises(ValueError, match="t_max_c must be positive"):
        energy.temperature_rise_rate(20.0, 30.0, 0.0)
