"""Direct convolutions of the formats that reconstruct their columns (bitmap, rel8, rel4, block, pattern,
hbitmap: offset table per layer, sn_conv_direct.h): C == golden at every level on the host board (random
conv graphs: stride, dilation, groups, padding, chunks shorter than a row; block/pattern on masks they can
represent) and on the MPY32 kernels in our simulator (the harness: accumulators, and requantised outputs
from a sink with sums near +-2^31, every shift regime, ReLU and ReLU6 clamps; LeNet's and the random
graph's convolutions), with the same weight bytes as im2col."""
import numpy as np
import pytest

from sn_compile_helpers import RANDOM_NETS, bundle_from, calib_images, lenet_bundle, random_bundle
from sparsenest.bundle import Bundle
from sparsenest.compiler import codegen_lower, formats, golden
from sparsenest.compiler.build import compile_bundle
from sparsenest.targets import firmware, fr5994fw
from sparsenest.targets.host import HostSim

RECONSTRUCTING = ("bitmap", "rel8", "rel4", "block", "pattern", "hbitmap")
STRUCTURED = ("block", "pattern")   # need masks of their shape: kernel_rows_bundle
KERNEL_ROW_SETS = ((0,), (1, 2), (0, 2), (0, 1, 2))   # kept kernel rows of a 3x3 kernel


def _kernel_row_intro(shape, rng) -> np.ndarray:
    """Per (filter, channel) kernel one level 0..3 and one of KERNEL_ROW_SETS: both a pattern and, with
    block_shape (1, k_w), whole blocks."""
    o, c, kh, kw = shape
    intro = np.zeros(shape, np.uint8)
    for i in range(o):
        for j in range(c):
            intro[i, j, list(KERNEL_ROW_SETS[rng.integers(len(KERNEL_ROW_SETS))]), :] = rng.choice(4, p=(.2, .3, .3, .2))
    return intro


def kernel_rows_bundle(seed: int = 0):
    """random_bundle('conv2d') with its 3x3 convolutions' masks made of whole kernel rows."""
    import torch
    b, x = random_bundle("conv2d", seed)
    torch.manual_seed(seed)
    net = RANDOM_NETS["conv2d"][0]().eval()
    ref = bundle_from(net, RANDOM_NETS["conv2d"][1], dataset="random", name="conv2d")
    rng = np.random.default_rng(seed)
    intro = {k: (_kernel_row_intro(v.shape, rng) if v.ndim == 4 else v) for k, v in ref.intro.items()}
    return Bundle.from_model(net, intro, graph=ref.graph, levels=ref.levels, prune={"method": "structured"},
                             dataset={"name": "random"}, train_config={}, model_spec={"name": "conv2d", "kwargs": {}}), x


def test_capability_table():
    assert all(formats.supports_direct(f) for f in ("csr16",) + RECONSTRUCTING)
    assert not any(formats.supports_direct(f) for f in ("dense", "rows", "cols"))
    assert not formats.direct_needs_offset_table("csr16")
    assert all(formats.direct_needs_offset_table(f) for f in RECONSTRUCTING)


@pytest.mark.parametrize("fmt", RECONSTRUCTING)
def test_random_conv_graph_direct_equals_golden_on_host(fmt, tmp_path, monkeypatch):
    b, x = kernel_rows_bundle() if fmt in STRUCTURED else random_bundle("conv2d")
    monkeypatch.setattr(codegen_lower, "DIRECT_ACC_BYTES", 96)  # 3-4 positions per call: partial chunks
    convs_fmt = {"c1": fmt, "dw": fmt, "*": "csr16"} if fmt in STRUCTURED else fmt
    opts = {n: {"block_shape": (1, 3)} for n in ("c1", "dw")} if fmt == "block" else None
    info = compile_bundle(b, tmp_path / fmt, calib=x[:200], fmt=convs_fmt, format_opts=opts)
    convs = {n: lm for n, lm in info["meta"]["layers"].items() if lm["op"] == "conv"}
    assert convs and all(lm["conv"] == "direct" and lm["format"] == fmt for lm in convs.values())
    offs = [a for a in info["meta"]["arrays"].values() if a["kind"] == "conv_offsets"]
    assert len(offs) == sum(lm["groups"] for lm in convs.values())
    sim = HostSim(info["out_dir"])
    for level in range(1, info["qmodel"].n_levels + 1):
        sim.set_level(level)
        c, g = sim.infer(x[:40]), golden.predict(info["qmodel"], x[:40], level)
        assert np.array_equal(c, g), f"{fmt} level {level}: {int((c != g).sum())} values differ"


def _conv_intro(fmt, rows, cols, dens, rng, full=False):
    """A nested level map block (2 x 3 blocks) and pattern (3 x 3 kernels of whole kernel rows) can
    represent, else a random one; full: every kernel row kept from some level (more than one piece)."""
    from sparsenest.experiments.bench.mcu import _levels
    if fmt not in STRUCTURED:
        return _levels(rng.random((rows, cols)), dens)
    k = _kernel_row_intro(((rows + 1) // 2, cols // 9, 3, 3), rng)
    if full:
        k = rng.integers(1, 4, k.shape[:2])[:, :, None, None].repeat(3, 2).repeat(3, 3).astype(np.uint8)
    return np.repeat(k, 2, axis=0)[:rows].reshape(rows, cols)


FORMAT_OPTS = {"block": {"block_shape": (2, 3)}, "pattern": {"kernel_size": (3, 3)}}


def _conv_cases(rng):
    """Random nested 3-level matrices over a 2 x 3 x 3 window of a 2 x 5 x 9 input (offset table in
    bytes), 5 windows one column apart; a sparse and a dense-ish case per format, 33+ entries per row
    in the dense one (more than one decoded piece)."""
    c, ky, kx = np.unravel_index(np.arange(18), (2, 3, 3))
    off = (2 * (c * 45 + ky * 9 + kx)).astype(np.uint16)
    wide = (np.arange(36) // 18 * 90 + 2 * (np.arange(36) % 18 // 9 * 9 + np.arange(36) % 9)).astype(np.uint16)
    cases = []
    for fmt in RECONSTRUCTING:
        for rows, o, dens in ((5, off, (0.2, 0.4, 0.7)), (3, wide, (0.6, 0.9, 1.0))):
            cols = len(o)
            w = rng.integers(-3000, 3000, (rows, cols)).astype(np.int16)
            intro = _conv_intro(fmt, rows, cols, dens, rng, full=cols == 36)
            x = rng.integers(-9000, 9000, 2 * 45 + 10).astype(np.int16)
            cases.append(firmware.KernelCase(f"{fmt}-{rows}x{cols}",
                                             formats.encode(fmt, w, intro, 3, **FORMAT_OPTS.get(fmt, {})), x,
                                             rng.integers(-10 ** 6, 10 ** 6, rows * 5).astype(np.int32),
                                             conv=(o, 5, 1)))
    return cases


def _sink_cases(rng):
    """Sinks (the kernel requantises): per shift regime (1, 7, 15) and clamp (none, ReLU, ReLU6), biases
    in the ordinary range and within a few thousand of +-2^31 (products small there, so |acc| < 2^31 as
    quantize.py guarantees, while acc + 2^(s-1) may pass 2^31), over a one-piece and a two-piece row."""
    c, ky, kx = np.unravel_index(np.arange(36), (4, 3, 3))
    off = (2 * (c * 45 + ky * 9 + kx)).astype(np.uint16)
    cases = []
    for i, (fmt, shift, floor, top) in enumerate((("bitmap", 7, 0, 32767), ("block", 15, -32768, 32767),
                                                  ("hbitmap", 1, 0, 900), ("rel4", 15, 0, 32767))):
        edge = [2 ** 31 - 1 - 2 ** 14, 2 ** 31 - 2000, -2 ** 31 + 2000, 2 ** 31 - 2 ** 16, -2 ** 31 + 2 ** 16, 3]
        bias = np.array(edge + list(rng.integers(-2 ** 20, 2 ** 20, 2)), np.int64)
        rows = len(bias)
        w = rng.integers(-3000, 3000, (rows, 36)).astype(np.int16)
        w[np.abs(bias) > 2 ** 30] = rng.integers(-1, 2, (int((np.abs(bias) > 2 ** 30).sum()), 36))  # |sum| <= 1080
        x = rng.integers(-30, 31, 4 * 45 + 10).astype(np.int16)
        intro = _conv_intro(fmt, rows, 36, (0.3, 0.6, 1.0), rng, full=True)
        cases.append(firmware.KernelCase(f"sink{i}-{fmt}-s{shift}", formats.encode(fmt, w, intro, 3,
                                                                                   **FORMAT_OPTS.get(fmt, {})),
                                         x, np.zeros(rows * 5, np.int32), conv=(off, 5, 1),
                                         sink=(bias.astype(np.int32), shift, floor, top)))
    return cases


def test_conv_kernels_bit_exact_in_harness_on_our_simulator(tmp_path):
    """sn_conv_<format> of the MPY32 back-end on random nested matrices, every level 0..3, chip image in
    our simulator: accumulators equal numpy's (window gather through the offset table); with a sink the
    outputs equal golden.requantize of bias + products, clamped."""
    cases = _conv_cases(np.random.default_rng(7)) + _sink_cases(np.random.default_rng(8))
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


def test_random_conv_graph_direct_mpy32_in_simulator(tmp_path):
    """The random graph (stride 2, dilation 2, padding, a depthwise layer without ReLU) with its two
    convolutions in these formats, direct, on the MPY32 kernels: chip image in our simulator == golden at
    every level (the kernels requantise through the sink: bias preloaded, sums read out of RESHI:RESLO).
    hbitmap's MPY32 sink runs in the harness test above."""
    fmts = ("block", "pattern")
    b, x = kernel_rows_bundle()
    fmt = {"c1": fmts[0], "dw": fmts[1], "*": "csr16"}
    opts = {n: {"block_shape": (1, 3)} for n, f in fmt.items() if f == "block"}
    info = compile_bundle(b, tmp_path / "m", target="msp430fr5994", fmt=fmt, format_opts=opts, calib=x[:200],
                          build=False)
    convs = {n: lm for n, lm in info["meta"]["layers"].items() if lm["op"] == "conv"}
    assert [(lm["format"], lm["conv"]) for lm in convs.values()] == [(f, "direct") for f in fmts]
    fb = firmware.build(info["out_dir"], tmp_path / "chip", image="fr5994", inputs=x[:2],
                        schedule=[firmware.Step(0, 1), firmware.Step(1, 3), firmware.Step(0, 2)])
    firmware.compare_golden(fb, fr5994fw.simulate(fb), info["qmodel"]).raise_on_mismatch()
