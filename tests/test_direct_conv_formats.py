"""Direct convolutions of the formats that reconstruct their columns (bitmap, rel8, rel4: offset table
per layer, sn_conv_direct.h): C == golden at every level on the host board (random conv graphs:
stride, dilation, groups, padding, chunks shorter than a row) and on the MPY32 kernels in our
simulator (LeNet's convolutions), with the same weight bytes as im2col."""
import numpy as np
import pytest

from sn_compile_helpers import calib_images, lenet_bundle, random_bundle
from sparsenest.compiler import codegen_lower, formats, golden
from sparsenest.compiler.build import compile_bundle
from sparsenest.targets import firmware, fr5994fw
from sparsenest.targets.host import HostSim

RECONSTRUCTING = ("bitmap", "rel8", "rel4")


def test_capability_table():
    assert all(formats.supports_direct(f) for f in ("csr16",) + RECONSTRUCTING)
    assert not any(formats.supports_direct(f) for f in ("dense", "block", "rows", "cols", "pattern", "hbitmap"))
    assert not formats.direct_needs_offset_table("csr16")
    assert all(formats.direct_needs_offset_table(f) for f in RECONSTRUCTING)


@pytest.mark.parametrize("fmt", RECONSTRUCTING)
def test_random_conv_graph_direct_equals_golden_on_host(fmt, tmp_path, monkeypatch):
    b, x = random_bundle("conv2d")
    monkeypatch.setattr(codegen_lower, "DIRECT_ACC_BYTES", 96)  # 3-4 positions per call: partial chunks
    info = compile_bundle(b, tmp_path / fmt, calib=x[:200], fmt=fmt)
    convs = {n: lm for n, lm in info["meta"]["layers"].items() if lm["op"] == "conv"}
    assert convs and all(lm["conv"] == "direct" and lm["format"] == fmt for lm in convs.values())
    offs = [a for a in info["meta"]["arrays"].values() if a["kind"] == "conv_offsets"]
    assert len(offs) == sum(lm["groups"] for lm in convs.values())
    sim = HostSim(info["out_dir"])
    for level in range(1, info["qmodel"].n_levels + 1):
        sim.set_level(level)
        c, g = sim.infer(x[:40]), golden.predict(info["qmodel"], x[:40], level)
        assert np.array_equal(c, g), f"{fmt} level {level}: {int((c != g).sum())} values differ"


def _conv_cases(rng):
    """Random nested 3-level matrices over a 2 x 3 x 3 window of a 2 x 5 x 9 input (offset table in
    bytes), 5 windows one column apart; a sparse and a dense-ish case per format, 33+ entries per row
    in the dense one (more than one decoded piece)."""
    from sparsenest.experiments.bench.mcu import _levels
    c, ky, kx = np.unravel_index(np.arange(18), (2, 3, 3))
    off = (2 * (c * 45 + ky * 9 + kx)).astype(np.uint16)
    wide = (np.arange(36) // 18 * 90 + 2 * (np.arange(36) % 18 // 9 * 9 + np.arange(36) % 9)).astype(np.uint16)
    cases = []
    for fmt in RECONSTRUCTING:
        for rows, o, dens in ((5, off, (0.2, 0.4, 0.7)), (3, wide, (0.6, 0.9, 1.0))):
            cols = len(o)
            w = rng.integers(-3000, 3000, (rows, cols)).astype(np.int16)
            intro = _levels(rng.random((rows, cols)), dens)
            x = rng.integers(-9000, 9000, 2 * 45 + 10).astype(np.int16)
            cases.append(firmware.KernelCase(f"{fmt}-{rows}x{cols}", formats.encode(fmt, w, intro, 3), x,
                                             rng.integers(-10 ** 6, 10 ** 6, rows * 5).astype(np.int32),
                                             conv=(o, 5, 1)))
    return cases


def test_conv_kernels_bit_exact_in_harness_on_our_simulator(tmp_path):
    """sn_conv_<format> of the MPY32 back-end on random nested matrices, every level 0..3, chip image in
    our simulator: accumulators equal numpy's (window gather through the offset table)."""
    cases = _conv_cases(np.random.default_rng(7))
    fb = firmware.build_kernel_harness(cases, tmp_path / "chip", image="fr5994")
    runs = fr5994fw.run_kernel_harness(fb, cases)
    by = {c.name: c for c in cases}
    assert len(runs) == 4 * len(cases)
    for r in runs:
        assert np.array_equal(r.acc, by[r.case].expected(r.level)), (r.case, r.level)


def test_direct_conv_formats_mpy32_in_simulator(tmp_path):
    """conv1 bitmap, conv2 rel4 (rel8 on the host above): the MPY32 run (byte offsets, computed loop
    entry) equals golden at every level on the chip image in our simulator; the bytes equal the im2col build's."""
    fmt = {"conv1": "bitmap", "conv2": "rel4", "*": "auto"}
    info = compile_bundle(lenet_bundle(), tmp_path / "m", target="msp430fr5994", fmt=fmt, calib=calib_images(),
                          build=False)
    convs = {n: lm for n, lm in info["meta"]["layers"].items() if lm["op"] == "conv"}
    assert [lm["format"] for lm in convs.values()] == ["bitmap", "rel4"]
    assert all(lm["conv"] == "direct" for lm in convs.values())
    ref = compile_bundle(lenet_bundle(), tmp_path / "i", target="msp430fr5994", fmt=fmt, calib=calib_images(),
                         build=False, conv="im2col")
    for n, lm in convs.items():
        assert ref["meta"]["layers"][n]["conv"] == "im2col"
        assert ref["meta"]["layers"][n]["bytes_by_part"] == lm["bytes_by_part"]
    fb = firmware.build(info["out_dir"], tmp_path / "chip", image="fr5994", n_inputs=2,
                        schedule=[firmware.Step(0, 1), firmware.Step(1, 3), firmware.Step(0, 2)])
    firmware.compare_golden(fb, fr5994fw.simulate(fb), info["qmodel"]).raise_on_mismatch()
