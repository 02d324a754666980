"""Energy: a per-inference energy model, the article's ratios, heat and battery life.

A laptop cannot measure a phone's battery, so this module *models* energy, from numbers
that can be checked: the operations and bytes of a ``.tflite`` graph
(:func:`mobileopt_ref.compute.tflite_macs`) and a table of energy per operation and per
memory access. Every figure it returns is a model output, not a measurement.

The energy of one inference is

    E = sum over operators of MACs x e_mac(dtype) + (bytes moved / 4) x e_mem(level),

with ``e_mac = e_mult + e_add`` of the operator's arithmetic and ``e_mem`` the energy of one
32-bit access at the memory level the bytes come from (on-chip SRAM or off-chip DRAM).

Beside the model: an RC thermal model of a phone with a throttling clock, sustained
inference under it, battery life, and what a machine can measure (RAPL energy counters
where Linux exposes them, process CPU time everywhere).

Explained in notebooks/06_energy.ipynb.

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


MEMORY_PARTS = ("weights", "activations")
"""The two kinds of bytes an inference moves, each at its own memory level (:func:`inference_energy`)."""


def _levels(level) -> dict:
    """``{"weights": level, "activations": level}`` from one level or a dict of both."""
    if isinstance(level, str):
        return {part: level for part in MEMORY_PARTS}
    if isinstance(level, dict) and set(level) == set(MEMORY_PARTS):
        return dict(level)
    raise ValueError(
        f"level must be a memory level name or a dict with exactly the keys {list(MEMORY_PARTS)}, "
        f"got {level!r}"
    )


def _dtype_name(dtype) -> str:
    return dtype if isinstance(dtype, str) else np.dtype(dtype).name


def inference_energy(model, table: EnergyTable = HOROWITZ_45NM, *, level="dram", skip_zeros: bool = False) -> dict:
    """Modelled energy of one inference of a ``.tflite`` model, split into compute and memory.

    Each operator's MACs are charged at the arithmetic of its input activation's dtype
    (float32 or int8 here), and the bytes it moves (its weights and activations, read and
    written once, :func:`mobileopt_ref.compute.tflite_macs`) at a memory level, one access
    per 4 bytes:

        E = sum_ops MACs x e_mac(dtype) + (weight bytes / 4) x e_w + (activation bytes / 4) x e_a.

    With ``level="dram"`` everything comes from off-chip memory (the no-cache upper bound
    on memory energy); with ``"sram"`` everything is on chip; ``{"weights": "dram",
    "activations": "sram"}`` streams the weights from DRAM and keeps activations on chip.

    ``skip_zeros=True`` models hardware that skips pruned weights (as the EIE accelerator
    of Han et al. 2016 does): each operator's MACs and the bytes of its weight tensor are
    multiplied by the fraction of non-zero weights
    (:func:`mobileopt_ref.pruning.tflite_op_densities`); the indices such hardware stores
    are not charged, so this is a lower bound. LiteRT's CPU kernels skip nothing.

    Args:
        model: ``.tflite`` bytes or path.
        table: the energy table.
        level: a memory level of the table, or ``{"weights": level, "activations": level}``.
        skip_zeros: charge only the non-zero weights and their MACs.

    Returns:
        A dict with ``compute_j``, ``weights_j``, ``activations_j``, ``memory_j`` (their
        sum) and ``total_j`` in joules, and ``macs`` and ``bytes`` as charged.

    Raises:
        ValueError: for an unreadable model, or a dtype or level missing from the table.
    """
    from mobileopt_ref import pruning  # noqa: PLC0415  (pruning imports the Keras stack)

    levels = _levels(level)
    access = {part: table.access(levels[part]) for part in MEMORY_PARTS}
    counts = compute.tflite_macs(model)
    graph = litert.read_graph(model)
    densities = pruning.tflite_op_densities(model) if skip_zeros else {}
    compute_pj = 0.0
    macs = 0.0
    weight_bytes = float(counts["weight_bytes"])
    for row in counts["ops"]:
        op = graph.ops[row["index"]]
        density = densities.get(row["index"], 1.0)
        if density < 1.0:
            kernel = graph.tensors[op.inputs[1]]
            weight_bytes -= (1.0 - density) * kernel.nbytes  # as tflite_macs counts it
        if row["macs"]:
            name = _dtype_name(graph.tensors[op.inputs[0]].dtype)
            compute_pj += row["macs"] * density * table.mac(name)
            macs += row["macs"] * density
    activation_bytes = float(counts["activation_bytes"])
    weights_pj = weight_bytes / 4.0 * access["weights"]
    activations_pj = activation_bytes / 4.0 * access["activations"]
    return {
        "compute_j": compute_pj * 1e-12,
        "weights_j": weights_pj * 1e-12,
        "activations_j": activations_pj * 1e-12,
        "memory_j": (weights_pj + activations_pj) * 1e-12,
        "total_j": (compute_pj + weights_pj + activations_pj) * 1e-12,
        "macs": int(round(macs)),
        "bytes": int(round(weight_bytes + activation_bytes)),
    }


def scaled_total(energy: dict, *, arithmetic: float = 1.0, memory: float = 1.0) -> float:
    """Total energy of an :func:`inference_energy` result under a scaled table.

    The model is linear in every entry of the table, so scaling all arithmetic figures by
    ``a`` and all memory figures by ``m`` (:meth:`EnergyTable.scaled`) gives exactly
    ``E' = a x compute_j + m x memory_j``, without reading the model again.

    Raises:
        ValueError: for a non-positive factor.
    """
    if not arithmetic > 0 or not memory > 0:
        raise ValueError(f"scale factors must be positive, got {arithmetic} and {memory}")
    return arithmetic * energy["compute_j"] + memory * energy["memory_j"]


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


@dataclasses.dataclass(frozen=True)
class Phone:
    """Stated assumptions about a phone, for the models of heat and battery life.

    None of these is measured in this book; each is an order of magnitude for a 2018-2020
    flagship phone, to be replaced by figures for the phone at hand.

    Attributes:
        name: a short label.
        busy_power_w: extra power while its big CPU cores run inference at full clock.
        idle_power_w: power drawn regardless of inference (screen, camera, radios).
        battery_wh: battery capacity in watt-hours.
        resistance_k_per_w, capacity_j_per_k: the lumped thermal model (time constant R C).
        ambient_c, throttle_c, min_frequency: air temperature, throttling threshold and
            the lowest clock fraction of the governor.
        notes: where the figures come from.
    """

    name: str
    busy_power_w: float
    idle_power_w: float
    battery_wh: float
    resistance_k_per_w: float
    capacity_j_per_k: float
    ambient_c: float
    throttle_c: float
    min_frequency: float
    notes: str

    def thermal(self) -> dict:
        """The keyword arguments of :func:`simulate_thermal` for this phone."""
        return dict(
            resistance_k_per_w=self.resistance_k_per_w,
            capacity_j_per_k=self.capacity_j_per_k,
            ambient_c=self.ambient_c,
            throttle_c=self.throttle_c,
            min_frequency=self.min_frequency,
        )


PHONE = Phone(
    name="assumed 2018-2020 flagship phone",
    busy_power_w=4.0,
    idle_power_w=1.0,
    battery_wh=3.0 * 3.85,
    resistance_k_per_w=10.0,
    capacity_j_per_k=20.0,
    ambient_c=25.0,
    throttle_c=45.0,
    min_frequency=0.5,
    notes=(
        "busy power: four big cores at full clock, about 1 W each; idle power: screen and "
        "camera on; for scale, a Snapdragon 845 phone averaged 3.3 W in total playing a game "
        "at 40 fps (Qualcomm's demonstration reported by AnandTech, December 2018). Battery: "
        "3,000 mAh at 3.85 V (the Pixel 3 has 2,915 mAh). Thermal: R = 10 K/W and C = 20 J/K "
        "give a time constant of 200 s and 10 K of warming per watt; throttling from 45 C, "
        "down to half clock at 50 C."
    ),
)
"""The phone the energy and user-experience chapters assume (every figure an assumption)."""


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
    steps: int | None = None,
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
        power_w: power at full clock, a constant or one value per step (non-negative);
            or a function ``power_w(f)`` giving the power drawn at clock fraction ``f``
            (then the function, not the ``f^2`` rule, decides how power follows the clock,
            and ``steps`` says how long to run).
        steps: number of steps, needed when ``power_w`` is a function (positive).
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
            an empty power profile, a missing or bad step count, or a minimum frequency
            outside ``(0, 1]``.
    """
    if callable(power_w):
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer when power_w is a function, got {steps!r}")
        power, n = None, steps
    else:
        power = np.atleast_1d(np.asarray(power_w, dtype=np.float64))
        if power.size == 0:
            raise ValueError("power_w is empty: give a constant or one value per step")
        if np.any(~np.isfinite(power)) or np.any(power < 0):
            raise ValueError("power must be finite and non-negative (watts)")
        if steps is not None and power.size not in (1, steps):
            raise ValueError(f"power_w has {power.size} values but steps is {steps}")
        if steps is not None and power.size == 1:
            power = np.full(steps, power[0])
        n = power.size
    for name, value in (("dt_s", dt_s), ("resistance_k_per_w", resistance_k_per_w), ("capacity_j_per_k", capacity_j_per_k)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be positive, got {value!r}")
    if not 0 < min_frequency <= 1:
        raise ValueError(f"min_frequency must be in (0, 1], got {min_frequency!r}")
    temperature = ambient_c if start_c is None else float(start_c)
    start = temperature
    temps, freqs, powers = [], [], []
    heat_in = heat_out = 0.0
    for i in range(n):
        excess = (temperature - throttle_c) / 5.0
        f = float(np.clip(1.0 - (1.0 - min_frequency) * excess, min_frequency, 1.0))
        p = float(power_w(f)) if power is None else float(power[i] * f * f)
        if not (math.isfinite(p) and p >= 0):
            raise ValueError(f"power must be finite and non-negative (watts), got {p!r} at clock {f:.3f}")
        out = (temperature - ambient_c) / resistance_k_per_w
        heat_in += p * dt_s
        heat_out += out * dt_s
        temperature += (p - out) * dt_s / capacity_j_per_k
        temps.append(temperature)
        freqs.append(f)
        powers.append(p)
    return ThermalRun(
        t_s=dt_s * np.arange(1, n + 1),
        temperature_c=np.asarray(temps),
        frequency=np.asarray(freqs),
        power_w=np.asarray(powers),
        heat_in_j=heat_in,
        heat_out_j=heat_out,
        heat_stored_j=capacity_j_per_k * (temperature - start),
    )


ZERO_CELSIUS_K = 273.15
"""0 °C in kelvin (the definition of the Celsius scale)."""


def temperature_rise_rate(t_initial_c: float, t_final_c: float, t_max_c: float) -> float:
    """The source article's temperature-rise rate ``theta = (T_final - T_initial) / T_max``.

    A difference of temperatures divided by a temperature is a ratio only on an absolute
    scale: in degrees Celsius the same phone warming from 25 to 47 °C below a 45 °C limit
    would give 0.49, in Fahrenheit 0.35, in kelvin 0.069. The article gives no scale; the
    book takes kelvin, so ``theta`` is the rise as a fraction of the absolute limit:

        theta = (T_final - T_initial) / (T_max + 273.15 K),   temperatures given in °C.

    The article's example, theta = 0.5 %, is then a rise of 1.6 K below a 45 °C limit.

    Args:
        t_initial_c, t_final_c: temperatures at the start and the end (°C).
        t_max_c: the highest allowed temperature (°C), above absolute zero.

    Returns:
        ``theta``, a fraction (0.005 is the article's 0.5 %).

    Raises:
        ValueError: for a temperature that is not finite, or at or below absolute zero.
    """
    for name, value in (("t_initial_c", t_initial_c), ("t_final_c", t_final_c), ("t_max_c", t_max_c)):
        if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value) and value > -ZERO_CELSIUS_K):
            raise ValueError(f"{name} must be a finite temperature in °C above absolute zero (-273.15), got {value!r}")
    return (t_final_c - t_initial_c) / (t_max_c + ZERO_CELSIUS_K)


@dataclasses.dataclass(frozen=True)
class SustainedRun:
    """The result of :func:`sustained_inference`: the thermal run and what it did to inference.

    Attributes:
        thermal: the :class:`ThermalRun` (temperature, clock, power, heat balance).
        latency_s: single-inference latency during each step, ``latency_s / f``.
        throughput_hz: inferences per second during each step.
        busy: fraction of each step the processor spends on inference, in ``[0, 1]``.
        inferences: inferences completed over the run.
        dropped_fraction: share of the frames that arrived and were not processed
            (``None`` for back-to-back inference, where nothing arrives).
    """

    thermal: ThermalRun
    latency_s: np.ndarray
    throughput_hz: np.ndarray
    busy: np.ndarray
    inferences: float
    dropped_fraction: float | None


def sustained_inference(
    latency_s: float,
    busy_power_w: float,
    *,
    duration_s: float,
    fps: float | None = None,
    idle_power_w: float = 0.0,
    dt_s: float = 0.5,
    **thermal,
) -> SustainedRun:
    """Inference sustained for minutes under the RC thermal model of :func:`simulate_thermal`.

    At clock fraction ``f`` one inference takes ``latency_s / f``. Back-to-back
    (``fps=None``) the processor is always busy; at a frame rate it runs
    ``min(fps, f / latency_s)`` inferences a second (frames arriving while it is busy are
    dropped) and is busy ``throughput x latency_s / f`` of the time. Power is

        P(f) = idle_power_w + busy_power_w x f^2 x busy(f),

    so the energy of one inference is ``busy_power_w x latency_s x f``, falling as the
    clock throttles while each inference gets slower.

    Args:
        latency_s: latency of one inference at full clock (positive).
        busy_power_w: power while inferring at full clock (non-negative).
        duration_s: how long to run (positive).
        fps: frame rate (positive), or ``None`` for back-to-back inference.
        idle_power_w: power drawn regardless of inference (screen, radios; non-negative).
        dt_s: time step (positive).
        **thermal: ``resistance_k_per_w``, ``capacity_j_per_k``, ``ambient_c``, ``start_c``,
            ``throttle_c``, ``min_frequency`` of :func:`simulate_thermal`.

    Returns:
        A :class:`SustainedRun`.

    Raises:
        ValueError: for a non-positive latency, duration or frame rate, a negative power,
            or a bad thermal parameter.
    """
    for name, value in (("latency_s", latency_s), ("duration_s", duration_s), ("dt_s", dt_s)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be positive, got {value!r}")
    if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive frame rate or None (back-to-back), got {fps!r}")
    for name, value in (("busy_power_w", busy_power_w), ("idle_power_w", idle_power_w)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a non-negative power in watts, got {value!r}")

    def throughput(f):
        rate = f / latency_s
        return rate if fps is None else min(fps, rate)

    def power(f):
        return idle_power_w + busy_power_w * f * f * throughput(f) * latency_s / f

    steps = max(1, int(round(duration_s / dt_s)))
    run = simulate_thermal(power, steps=steps, dt_s=dt_s, **thermal)
    rates = np.array([throughput(f) for f in run.frequency])
    done = float(rates.sum() * dt_s)
    dropped = None if fps is None else 1.0 - done / (fps * steps * dt_s)
    return SustainedRun(
        thermal=run,
        latency_s=latency_s / run.frequency,
        throughput_hz=rates,
        busy=rates * latency_s / run.frequency,
        inferences=done,
        dropped_fraction=dropped,
    )


# ---------------------------------------------------------------------------------------
# Measuring: RAPL where the machine exposes it, CPU time everywhere
# ---------------------------------------------------------------------------------------

RAPL_ROOT = "/sys/class/powercap"
"""Where Linux exposes Intel's (and AMD's) RAPL energy counters."""


class RaplUnavailable(RuntimeError):
    """RAPL energy counters cannot be read on this machine; the message says why."""


def rapl_zones(root=RAPL_ROOT) -> dict:
    """The readable RAPL zones under ``root``: ``{name: folder}``.

    Package zones are named as the kernel names them (``"package-0"``); their sub-zones
    get the package's name in front (``"package-0/core"``, ``"package-0/dram"``).

    Raises:
        RaplUnavailable: when ``root`` does not exist (no powercap driver: virtual
            machines and containers usually have none), has no RAPL zone, or its counters
            are readable only by root (Linux 5.10 and later, after CVE-2020-8694).
    """
    from pathlib import Path  # noqa: PLC0415

    root = Path(root)
    if not root.is_dir():
        raise RaplUnavailable(
            f"{root} does not exist: this machine exposes no powercap (RAPL) interface, "
            f"as is usual in virtual machines and containers"
        )
    folders = sorted(p for p in root.iterdir() if p.name.startswith("intel-rapl:") and (p / "energy_uj").exists())
    if not folders:
        raise RaplUnavailable(f"{root} has no RAPL zone with an energy_uj counter")
    names = {}
    for folder in folders:
        names[folder.name] = (folder / "name").read_text().strip() if (folder / "name").exists() else folder.name
    zones = {}
    for folder in folders:
        parent = folder.name.rsplit(":", 1)[0]
        name = names[folder.name] if parent == "intel-rapl" or parent not in names else f"{names[parent]}/{names[folder.name]}"
        try:
            int((folder / "energy_uj").read_text())
        except PermissionError:
            raise RaplUnavailable(
                f"{folder / 'energy_uj'} is readable by root only (Linux 5.10 and later, since "
                f"CVE-2020-8694); run as root or make it readable"
            ) from None
        zones[name] = folder
    return zones


def _read_counter(folder) -> tuple:
    energy = int((folder / "energy_uj").read_text())
    limit_file = folder / "max_energy_range_uj"
    limit = int(limit_file.read_text()) if limit_file.exists() else None
    return energy, limit


def measure_rapl(fn, *, root=RAPL_ROOT) -> dict:
    """Package (and sub-zone) energy used while ``fn()`` runs, from the RAPL counters.

    Each counter is read before and after; a counter that wrapped around during the run
    (it counts up to ``max_energy_range_uj`` and restarts at 0) is corrected once. The
    counters measure the whole package, everything the machine did meanwhile included.

    Returns:
        A dict with ``"joules"`` (``{zone: J}``), ``"seconds"`` (wall time) and
        ``"result"`` (what ``fn`` returned).

    Raises:
        RaplUnavailable: when the counters cannot be read (see :func:`rapl_zones`).
    """
    import time  # noqa: PLC0415

    zones = rapl_zones(root)
    before = {name: _read_counter(folder) for name, folder in zones.items()}
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    joules = {}
    for name, folder in zones.items():
        (first, limit), (last, _) = before[name], _read_counter(folder)
        delta = last - first
        if delta < 0 and limit is not None:
            delta += limit + 1
        joules[name] = delta * 1e-6
    return {"joules": joules, "seconds": seconds, "result": result}


@dataclasses.dataclass(frozen=True)
class CpuTime:
    """CPU time of sustained back-to-back inference (see :func:`measure_cpu_time`).

    Attributes:
        inferences: invokes timed in all.
        wall_s, cpu_s: wall-clock and process CPU time per round (all threads' CPU time).
        runs: invokes per round.
    """

    inferences: int
    wall_s: np.ndarray
    cpu_s: np.ndarray
    runs: np.ndarray

    @property
    def cpu_per_inference_s(self) -> float:
        """Median over rounds of CPU seconds per inference."""
        return float(np.median(self.cpu_s / self.runs))

    @property
    def wall_per_inference_s(self) -> float:
        """Median over rounds of wall seconds per inference."""
        return float(np.median(self.wall_s / self.runs))

    @property
    def busy_cores(self) -> float:
        """How many cores were busy on average, the median over rounds of CPU time over wall time."""
        return float(np.median(self.cpu_s / self.wall_s))


def measure_cpu_time(models: dict, *, num_runs: int | dict = 100, rounds: int = 5, warmup: int = 5,
                     num_threads: int = 2, kernels: str = "xnnpack") -> dict:
    """Process CPU time per inference of each model, measured side by side in rounds.

    Each round runs every model's share of ``num_runs`` back to back and reads the
    process's CPU time (``time.process_time``: the sum over all its threads, XNNPACK's
    workers included, spinning included) and the wall clock around it.

    Args:
        models: ``{name: .tflite bytes or path}``.
        num_runs: invokes per model, or ``{name: invokes}``.
        rounds: interleaved rounds, in ``[1, smallest num_runs]``.
        warmup: untimed invokes per model first.
        num_threads: interpreter threads.
        kernels: one of :data:`mobileopt_ref.litert.KERNELS`.

    Returns:
        ``{name: CpuTime}``.

    Raises:
        ValueError: for no models, bad counts or an invalid model (before any model is
            invoked).
    """
    import time  # noqa: PLC0415

    if not models:
        raise ValueError("measure_cpu_time needs at least one model")
    plan = compute.round_plan(models, num_runs, warmup, rounds)
    interpreters = {name: compute.prepared_interpreter(m, num_threads, kernels) for name, m in models.items()}
    for interpreter in interpreters.values():
        for _ in range(warmup):
            interpreter.invoke()
    wall = {name: [] for name in models}
    cpu = {name: [] for name in models}
    count = {name: [] for name in models}
    for r in range(rounds):
        for name, interpreter in interpreters.items():
            n = plan[name][r]
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(n):
                interpreter.invoke()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
            count[name].append(n)
    return {
        name: CpuTime(inferences=sum(count[name]), wall_s=np.asarray(wall[name]), cpu_s=np.asarray(cpu[name]),
                      runs=np.asarray(count[name], dtype=np.float64))
        for name in models
    }


def cpu_time_energy(cpu_seconds: float, watts_per_core: float) -> float:
    """The CPU-time estimate of energy: ``E = t_cpu x P_core``.

    Assumes every busy core draws ``P_core`` and idle cores nothing; memory, uncore and
    the rest of the device are not counted. An estimate with a stated assumption, not a
    measurement.

    Raises:
        ValueError: for a negative CPU time or a non-positive power.
    """
    if not (math.isfinite(cpu_seconds) and cpu_seconds >= 0):
        raise ValueError(f"cpu_seconds must be non-negative, got {cpu_seconds!r}")
    if not (math.isfinite(watts_per_core) and watts_per_core > 0):
        raise ValueError(f"watts_per_core must be positive, got {watts_per_core!r}")
    return cpu_seconds * watts_per_core
