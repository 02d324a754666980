"""The machine card: CPU caches and SIMD extensions as the OS reports them."""

from mobileopt_ref import env


def test_cpu_caches_read_from_a_sysfs_tree(tmp_path):
    for index, (level, kind, size) in enumerate([(1, "Data", "32K"), (1, "Instruction", "32K"),
                                                  (2, "Unified", "512K"), (3, "Unified", "32768K")]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        (folder / "level").write_text(f"{level}\n")
        (folder / "type").write_text(f"{kind}\n")
        (folder / "size").write_text(f"{size}\n")
    (tmp_path / "index9").mkdir()  # an unreadable entry is skipped
    assert env.cpu_caches(str(tmp_path)) == {1: 32 * 2**10, 2: 512 * 2**10, 3: 32 * 2**20}
    assert env.cpu_caches(str(tmp_path / "missing")) == {}


def test_simd_extensions_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse2 avx avx2 avx512f avx512_vnni\n")
    assert env.simd_extensions(str(info)) == {"SSE2": 128, "AVX2": 256, "AVX-512": 512, "AVX-512 VNNI": 512}
    info.write_text("Features : fp asimd evtstrm\n")
    assert env.simd_extensions(str(info)) == {"NEON": 128}
    assert env.simd_extensions(str(tmp_path / "none")) == {}


def test_machine_card_lists_caches_and_simd():
    card = env.MachineCard(cpu="X", cores=2, threads=2, python="3.11", versions={},
                           caches={2: 2**21}, simd={"AVX2": 256})
    text = card.to_markdown()
    assert "| data caches | L2 2 MiB |" in text and "| SIMD | AVX2 (256-bit) |" in text
