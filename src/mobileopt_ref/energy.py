"""Energy: a per-inference energy model, the article's ratios, heat and battery life.

A laptop cannot measure a phone's battery, so this module *models* energy, from numbers
that can be checked: the operations and bytes of a ``.tflite`` graph
(:func:`mobileopt_ref.compute.tflite_macs`) and a table of energy per operation and per
memory access. Every figure it returns is a model output, not a measurement.

The energy of one inference is

    E = sum over operators of MACs x e_mac(dtype) + (bytes moved / 4) x e_mem(level),

with ``e_mac = e_mult + e_add`` of the operator's arithmetic and ``e_mem`` the energy of one
32-bit access at the memory level the bytes come from (on-chip SRAM or off-chip DRAM).

Example:
    >>> from mobileopt_ref import energy
    >>> e = energy.inference_energy(tflite)  # doctest: +SKIP
    >>> e["compute_j"], e["memory_j"]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mobileopt_ref import compute, litert


@dataclasses.dataclass(frozen=True)
class EnergyTable:
    """Energy per operation and per memory access, in picojoules, with its source.

    Attributes:
        name: a short label.
        source: where the numbers come from.
        mac_pj: ``{dtype name: (multiply pJ, accumulate pJ)}``; a MAC costs their sum.
        access_pj: ``{memory level: pJ per 32-bit access}``.
    """

    name: str
    source: str
    mac_pj: dict
    access_pj: dict

    def mac(self, dtype: str) -> float:
        """Energy of one multiply-accumulate in ``dtype``, in pJ.

        Raises:
            ValueError: for a dtype the table does not have (naming the ones it has).
        """
        if dtype not in self.mac_pj:
            raise ValueError(
                f"the energy table {self.name!r} has no arithmetic for dtype {dtype!r}; "
                f"it has {sorted(self.mac_pj)}"
            )
        multiply, accumulate = self.mac_pj[dtype]
        return float(multiply + accumulate)

    def access(self, level: str) -> float:
        """Energy of one 32-bit access at a memory level, in pJ.

        Raises:
            ValueError: for a level the table does not have.
        """
        if level not in self.access_pj:
            raise ValueError(f"the energy table {self.name!r} has no memory level {level!r}; it has {sorted(self.access_pj)}")
        return float(self.access_pj[level])

    def scaled(self, *, arithmetic: float = 1.0, memory: float = 1.0) -> "EnergyTable":
        """The table with every arithmetic and every memory figure multiplied.

        For sensitivity studies: which conclusions survive if the table is off by 2x?

        Raises:
            ValueError: for a non-positive factor.
        """
        if not arithmetic > 0 or not memory > 0:
            raise ValueError(f"scale factors must be positive, got {arithmetic} and {memory}")
        return EnergyTable(
            name=f"{self.name} (arithmetic x{arithmetic:g}, memory x{memory:g})",
            source=self.source,
            mac_pj={k: (m * arithmetic, a * arithmetic) for k, (m, a) in self.mac_pj.items()},
            access_pj={k: v * memory for k, v in self.access_pj.items()},
        )


HOROWITZ_45NM = EnergyTable(
    name="Horowitz 45 nm",
    source=(
        "M. Horowitz, Computing's energy problem (and what we can do about it), ISSCC 2014, "
        "as reprinted by Han, Pool, Tran and Dally, Learning both weights and connections for "
        "efficient neural networks, NeurIPS 2015, Table 1"
    ),
    # float32: 3.7 pJ multiply + 0.9 pJ add. int8 kernels multiply 8-bit values (0.2 pJ) and
    # accumulate in 32-bit integers (0.1 pJ). int32: 3.1 + 0.1.
    mac_pj={"float32": (3.7, 0.9), "int8": (0.2, 0.1), "int32": (3.1, 0.1)},
    access_pj={"sram": 5.0, "dram": 640.0},
)
"""The 45 nm energy table of Horowitz (ISSCC 2014) as Han et al. (2015) reprint it.

Per operation: 32-bit float add 0.9 pJ, multiply 3.7 pJ; 32-bit int add 0.1 pJ, multiply
3.1 pJ; 8-bit int add 0.03 pJ, multiply 0.2 pJ. Per 32-bit access: SRAM 5 pJ, DRAM 640 pJ.
An int8 MAC is counted as an 8-bit multiply plus a 32-bit accumulate, as int8 kernels do."""


def inference_energy(model, table: EnergyTable = HOROWITZ_45NM, *, level: str = "dram") -> dict:
    """Modelled energy of one inference of a ``.tflite`` model, split into compute and memory.

    Each operator's MACs are charged at the arithmetic of its input activation's dtype
    (float32 or int8 here), and the bytes it moves (its weights and activations, read and
    written once, :func:`mobileopt_ref.compute.tflite_macs`) at ``level``, one access per
    4 bytes. With ``level="dram"`` this is the no-cache upper bound on memory energy; with
    ``"sram"`` everything is assumed on chip.

    Args:
        model: ``.tflite`` bytes or path.
        table: the energy table.
        level: a memory level of the table.

    Returns:
        ``{"compute_j", "memory_j", "total_j", "macs", "bytes"}`` (joules).

    Raises:
        ValueError: for an unreadable model, or a dtype or level missing from the table.
    """
    counts = compute.tflite_macs(model)
    graph = litert.read_graph(model)
    access = table.access(level)
    compute_pj = 0.0
    for row in counts["ops"]:
        if row["macs"]:
            dtype = graph.tensors[graph.ops[row["index"]].inputs[0]].dtype
            name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
            compute_pj += row["macs"] * table.mac(name)
    moved = counts["weight_bytes"] + counts["activation_bytes"]
    memory_pj = moved / 4.0 * access
    return {
        "compute_j": compute_pj * 1e-12,
        "memory_j": memory_pj * 1e-12,
        "total_j": (compute_pj + memory_pj) * 1e-12,
        "macs": counts["total"],
        "bytes": moved,
    }


def energy_ratio(original_j: float, optimized_j: float) -> float:
    """The source article's ``gamma = E_original / E_optimized``.

    Raises:
        ValueError: for an energy that is not positive and finite.
    """
    for name, value in (("original_j", original_j), ("optimized_j", optimized_j)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive energy in joules, got {value!r}")
    return float(original_j) / float(optimized_j)


def inferences_per_charge(energy_j: float, battery_wh: float, *, share: float = 1.0) -> float:
    """How many inferences a battery pays for: ``share x battery_wh x 3600 / energy_j``.

    Args:
        energy_j: modelled energy of one inference, in joules (positive).
        battery_wh: battery capacity in watt-hours (positive; a phone has about 15).
        share: the fraction of the battery given to inference, in ``(0, 1]``.

    Raises:
        ValueError: for a non-positive energy or capacity, or a share outside ``(0, 1]``.
    """
    if not (math.isfinite(energy_j) and energy_j > 0):
        raise ValueError(f"energy_j must be positive, got {energy_j!r}")
    if not (math.isfinite(battery_wh) and battery_wh > 0):
        raise ValueError(f"battery_wh must be positive, got {battery_wh!r}")
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    return share * battery_wh * 3600.0 / energy_j


# ---------------------------------------------------------------------------------------
# Heat: an RC thermal model with frequency throttling
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ThermalRun:
    """The result of :func:`simulate_thermal`, one value per time step.

    Attributes:
        t_s: time at the end of each step, seconds.
        temperature_c: temperature at the end of each step.
        frequency: the clock as a fraction of full speed during each step.
        power_w: power drawn during each step.
        heat_in_j, heat_out_j, heat_stored_j: totals over the run (joules).
    """

    t_s: np.ndarray
    temperature_c: np.ndarray
    frequency: np.ndarray
    power_w: np.ndarray
    heat_in_j: float
    heat_out_j: float
    heat_stored_j: float


def simulate_thermal(
    power_w,
    *,
    dt_s: float = 0.1,
    resistance_k_per_w: float = 10.0,
    capacity_j_per_k: float = 20.0,
    ambient_c: float = 25.0,
    start_c: float | None = None,
    throttle_c: float = 45.0,
    min_frequency: float = 0.5,
) -> ThermalRun:
    """A lumped RC model of a phone's heating, with a throttling clock.

    The device is one thermal mass ``C`` (J/K) connected to the air through a thermal
    resistance ``R`` (K/W):

        dT/dt = (P f^2 - (T - T_ambient) / R) / C,

    integrated with explicit Euler steps of ``dt``. ``P`` is the power at full clock;
    the governor scales the clock ``f`` linearly from 1 down to ``min_frequency`` as the
    temperature rises from ``throttle_c`` to ``throttle_c + 5``, and power follows as
    ``f^2`` (dynamic power ~ f V^2 with V lowered with f, a common first approximation).
    The heat balance ``heat in = heat stored + heat out`` holds exactly at every step.

    Args:
        power_w: power at full clock, a constant or one value per step (non-negative).
        dt_s: step (positive).
        resistance_k_per_w: thermal resistance to ambient (positive).
        capacity_j_per_k: thermal capacity (positive).
        ambient_c: air temperature.
        start_c: starting temperature (default: ambient).
        throttle_c: temperature at which the clock starts to drop.
        min_frequency: the lowest clock fraction, in ``(0, 1]``.

    Returns:
        A :class:`ThermalRun`.

    Raises:
        ValueError: for a negative power, a non-positive step, resistance or capacity,
            an empty power profile, or a minimum frequency outside ``(0, 1]``.
    """
    power = np.atleast_1d(np.asarray(power_w, dtype=np.float64))
    if power.size == 0:
        raise ValueError("power_w is empty: give a constant or one value per step")
    if np.any(~np.isfinite(power)) or np.any(power < 0):
        raise ValueError("power must be finite and non-negative (watts)")
    for name, value in (("dt_s", dt_s), ("resistance_k_per_w", resistance_k_per_w), ("capacity_j_per_k", capacity_j_per_k)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be positive, got {value!r}")
    if not 0 < min_frequency <= 1:
        raise ValueError(f"min_frequency must be in (0, 1], got {min_frequency!r}")
    temperature = ambient_c if start_c is None else float(start_c)
    start = temperature
    temps, freqs, powers = [], [], []
    heat_in = heat_out = 0.0
    for p_full in power:
        excess = (temperature - throttle_c) / 5.0
        f = float(np.clip(1.0 - (1.0 - min_frequency) * excess, min_frequency, 1.0))
        p = p_full * f * f
        out = (temperature - ambient_c) / resistance_k_per_w
        heat_in += p * dt_s
        heat_out += out * dt_s
        temperature += (p - out) * dt_s / capacity_j_per_k
        temps.append(temperature)
        freqs.append(f)
        powers.append(p)
    return ThermalRun(
        t_s=dt_s * np.arange(1, len(power) + 1),
        temperature_c=np.asarray(temps),
        frequency=np.asarray(freqs),
        power_w=np.asarray(powers),
        heat_in_j=heat_in,
        heat_out_j=heat_out,
        heat_stored_j=capacity_j_per_k * (temperature - start),
    )


def temperature_rise_rate(t_initial_c: float, t_final_c: float, t_max_c: float) -> float:
    """The source article's ``theta = (T_final - T_initial) / T_max``.

    Raises:
        ValueError: for a non-positive ``T_max``.
    """
    if not t_max_c > 0:
        raise ValueError(f"t_max_c must be positive, got {t_max_c!r}")
    return (t_final_c - t_initial_c) / t_max_c
