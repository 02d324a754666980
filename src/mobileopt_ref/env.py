"""Environment set-up shared by every notebook: threads, seeds, logging, versions.

A notebook's first cell calls :func:`setup`, which fixes TensorFlow's thread pools (they
can only be set before TensorFlow runs its first op), turns on op determinism, seeds
every random generator, quiets TensorFlow's logging and applies the book's figure style.
:func:`machine_card` describes the machine and library versions that produced a
notebook's numbers.

Example:
    >>> from mobileopt_ref import env
    >>> card = env.setup(threads=2, seed=0)
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.metadata
import logging
import os
import platform

from mobileopt_ref._keras import keras, tf

DEFAULT_THREADS = 2
"""Thread count of the reference machine (2 cores); results depend on it."""


@dataclasses.dataclass(frozen=True)
class MachineCard:
    """What produced a set of measurements.

    Attributes:
        cpu: CPU model name, as the OS reports it.
        cores: logical CPU count visible to this process.
        threads: TensorFlow intra-op threads in use.
        python: Python version.
        versions: versions of TensorFlow, tf-keras, tfmot, LiteRT and numpy.
        caches: ``{level: bytes}`` of core 0's data caches as the OS reports them
            (:func:`cpu_caches`; empty where it does not).
        simd: the SIMD extensions the CPU lists, ``{name: vector bits}``
            (:func:`simd_extensions`).
    """

    cpu: str
    cores: int
    threads: int
    python: str
    versions: dict
    caches: dict = dataclasses.field(default_factory=dict)
    simd: dict = dataclasses.field(default_factory=dict)

    def to_markdown(self) -> str:
        """Returns the card as a two-column markdown table."""
        rows = [
            ("CPU", self.cpu),
            ("logical cores", str(self.cores)),
            ("threads used", str(self.threads)),
            ("data caches", ", ".join(f"L{level} {size_text(n)}" for level, n in sorted(self.caches.items()))
             or "not reported"),
            ("SIMD", ", ".join(f"{name} ({bits}-bit)" for name, bits in self.simd.items()) or "not reported"),
            ("Python", self.python),
        ] + [(name, version) for name, version in self.versions.items()]
        lines = ["| item | value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in rows]
        return "\n".join(lines)


def cpu_model() -> str:
    """The CPU's model name as the OS reports it (``/proc/cpuinfo``, else the ``platform`` module)."""
    return _cpu_name()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def size_text(n: int) -> str:
    """Bytes as ``"512 KiB"`` or ``"32 MiB"`` (binary units)."""
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n / 2**10:g} KiB"


def cpu_caches(root: str = "/sys/devices/system/cpu/cpu0/cache") -> dict:
    """``{level: bytes}`` of core 0's data (and unified) caches, as Linux reports them.

    Read from sysfs (``index*/level``, ``type``, ``size``). Returns ``{}`` where sysfs
    does not exist (macOS, Windows) or reports nothing. A virtual machine reports what its
    hypervisor passes through.
    """
    sizes = {}
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    for folder in sorted(glob.glob(os.path.join(root, "index*"))):
        try:
            def read(name, folder=folder):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    return f.read().strip()

            if read("type") in ("Data", "Unified"):
                size = read("size")
                sizes[int(read("level"))] = int(size[:-1]) * units[size[-1]]
        except (OSError, ValueError, KeyError, IndexError):
            continue
    return sizes


_SIMD = {"sse2": ("SSE2", 128), "avx2": ("AVX2", 256), "avx512f": ("AVX-512", 512),
         "avx512_vnni": ("AVX-512 VNNI", 512), "asimd": ("NEON", 128), "neon": ("NEON", 128)}


def simd_extensions(cpuinfo: str = "/proc/cpuinfo") -> dict:
    """``{extension: vector bits}`` of the SIMD extensions the CPU lists (SSE2, AVX2, AVX-512, NEON).

    Read from the ``flags`` (x86) or ``Features`` (ARM) line of ``/proc/cpuinfo``;
    ``{}`` where that file does not exist.
    """
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            flags = {w for line in f if line.lower().startswith(("flags", "features"))
                     for w in line.split(":", 1)[1].split()}
    except OSError:
        return {}
    return dict(_SIMD[flag] for flag in _SIMD if flag in flags)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def configure_threads(threads: int = DEFAULT_THREADS) -> int:
    """Fixes TensorFlow's intra-op and inter-op thread pools.

    Training is bit-reproducible only for a fixed thread count, so the count is part of
    every training config. TensorFlow accepts the setting only before it runs its first
    op; after that, asking for the count already in force is fine and anything else
    raises.

    Args:
        threads: intra-op threads, a positive integer.

    Returns:
        The thread count in force.

    Raises:
        ValueError: if ``threads`` is not a positive integer.
        RuntimeError: if TensorFlow already runs with a different count.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads <= 0:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    current = tf.config.threading.get_intra_op_parallelism_threads()
    if current == threads:
        return threads
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as err:
        raise RuntimeError(
            f"TensorFlow already runs with {current or 'its default'} intra-op threads; "
            f"call mobileopt_ref.env.setup(threads={threads}) before any TensorFlow op "
            "(restart the kernel)."
        ) from err
    return threads


def seed_everything(seed: int = 0) -> None:
    """Seeds Python, numpy and TensorFlow, and turns on op determinism."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def machine_card(threads: int | None = None) -> MachineCard:
    """Describes this machine and the versions of the libraries that matter here."""
    if threads is None:
        threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    versions = {
        name: _version(dist)
        for name, dist in [
            ("tensorflow", "tensorflow"),
            ("tf-keras", "tf-keras"),
            ("tensorflow-model-optimization", "tensorflow-model-optimization"),
            ("ai-edge-litert", "ai-edge-litert"),
            ("litert-quantizer", "litert-quantizer"),
            ("numpy", "numpy"),
        ]
    }
    return MachineCard(
        cpu=_cpu_name(),
        cores=os.cpu_count() or 1,
        threads=int(threads),
        python=platform.python_version(),
        versions=versions,
        caches=cpu_caches(),
        simd=simd_extensions(),
    )


def setup(threads: int = DEFAULT_THREADS, seed: int = 0, figures: bool = True) -> MachineCard:
    """Prepares a notebook or script: threads, seeds, quiet logs, figure style.

    Args:
        threads: TensorFlow thread count (fixed for the whole process).
        seed: the global seed.
        figures: also apply the book's matplotlib style.

    Returns:
        The :class:`MachineCard` of this run.
    """
    configure_threads(threads)
    seed_everything(seed)
    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    if figures:
        from mobileopt_ref import plotting  # noqa: PLC0415 - matplotlib only when asked

        plotting.use_book_style()
    return machine_card(threads)
