"""Direct convolutions of the formats that reconstruct their columns (bitmap, rel8, rel4: offset table
per layer, sn_conv_direct.h): C == golden at every level on the host board (random conv graphs:
stride, dilation, groups, padding, chunks shorter than a row) and on the MPY32 kernels in our
simulator (LeNet's convolutions), with the same weight bytes as im2col."""
import numpy as np
import pytest

from sn_compile_helpers import calib_images, lenet_bundle, random_bundle
from sparsenest.compiler import codegen_lower, formats, golden
from sparsenest.compiler.build import compile_bundle
from sparsenest.targets import firmware
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


def test_direct_conv_formats_mpy32_in_simulator(tmp_path):
    """conv1 bitmap, conv2 rel4 (rel8 on the host above): the MPY32 run (byte offsets, computed loop
    entry) equals golden at every level in the simulator image (mspdebug); the bytes equal the im2col build's."""
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
    fb = firmware.build(info["out_dir"], tmp_path / "sim", image="sim", n_inputs=2,
                        schedule=[firmware.Step(0, 1), firmware.Step(1, 3), firmware.Step(0, 2)])
    firmware.compare_golden(fb, firmware.simulate(fb), info["qmodel"]).raise_on_mismatch()
