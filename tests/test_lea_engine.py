"""The LEA engine (compile --engine lea): its C kernels on the host board (our functional DSPLib model)
equal the golden model's LEA arithmetic bit for bit at every level, for dense, nested block-sparse and
irregular linear layers and for convolutions (1-D, 2-D, padded) on FIR; the LEA RAM budget names the
layer; the kernels and shims compile for the chip with -Werror against the declaration-only DSPLib.h."""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest
import torch
import torch.nn as nn

from sparsenest.bundle import Bundle
from sparsenest.compiler import golden, lea_golden, lea_plan, lea_ref
from sparsenest.compiler.build import compile_bundle
from sparsenest.compiler.planner import PlanError
from sparsenest.paths import RUNTIME_DIR
from sparsenest.targets.host import HostSim
from sparsenest.train.graph import extract_graph, prunable_weight_keys

L = 3


class LeaNet(nn.Module):
    """conv2d 3x3 padded -> relu -> maxpool -> conv2d 3x3 -> relu -> flatten -> linear (block) -> relu
    -> linear (irregular) -> linear (dense)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 6, 3)
        self.mp = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(6 * 3 * 3, 16)
        self.fc2 = nn.Linear(16, 10)
        self.fc3 = nn.Linear(10, 4)

    def forward(self, x):
        h = self.mp(torch.relu(self.c1(x)))
        h = torch.relu(self.c2(h))
        h = torch.relu(self.fc1(torch.flatten(h, 1)))
        return self.fc3(self.fc2(h))


class Lea1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(3, 4, 5, padding=2)
        self.fc = nn.Linear(4 * 16, 5)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.c1(x)), 1))


def _block_intro(shape, block, rng) -> np.ndarray:
    """Nested intro levels, one per (block rows x block cols) tile of the matrix view; some never kept."""
    rows, cols = shape[0], int(np.prod(shape[1:]))
    bh, bw = block
    tiles = rng.integers(0, L + 1, size=(-(-rows // bh), cols // bw)).astype(np.uint8)
    return np.repeat(np.repeat(tiles, bh, axis=0)[:rows], bw, axis=1).reshape(shape)


def _bundle(net_cls, shape, blocks, seed=0):
    """A bundle of net_cls with the given intro structure per weight: (bh, bw) blocks, "irregular",
    "dense"; random nested levels, 0 = never kept."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = net_cls().eval()
    graph = extract_graph(net, tuple(shape))
    rng = np.random.default_rng(seed)
    intro = {}
    for key in prunable_weight_keys(graph):
        w, blk = net.state_dict()[key].numpy(), blocks[key]
        intro[key] = (np.ones(w.shape, np.uint8) if blk == "dense" else
                      rng.integers(0, L + 1, size=w.shape).astype(np.uint8) if blk == "irregular" else
                      _block_intro(w.shape, blk, rng))
    levels = [{"level": i + 1, "target_sparsity": s, "sparsity": s, "float_accuracy": None}
              for i, s in enumerate((0.7, 0.5, 0.25))]
    b = Bundle.from_model(net, intro, graph=graph, levels=levels, prune={"method": "test"},
                          dataset={"name": "random"}, train_config={},
                          model_spec={"name": net_cls.__name__, "kwargs": {}})
    x = np.random.default_rng(seed).normal(0, 1, (24, *shape)).astype(np.float32)
    return b, x


def _check_every_level(info, x):
    qm, sim = info["qmodel"], HostSim(info["out_dir"])
    for level in range(1, L + 1):
        sim.set_level(level)
        c, g = sim.infer(x), golden.predict(qm, x, level)
        assert np.array_equal(c, g), f"level {level}: {int((c != g).sum())} values differ"
    if "lea" in info["meta"]["engine"]:
        assert ctypes.c_uint16.in_dll(sim.lib, "sn_lea_errors").value == 0   # no DSPLib call refused


def test_lea_linear_and_conv2d_bit_exact_every_level(tmp_path):
    b, x = _bundle(LeaNet, (2, 10, 10), {"c1.weight": (1, 3), "c2.weight": (1, 3), "fc1.weight": (4, 2),
                                       "fc2.weight": "irregular", "fc3.weight": "dense"})
    info = compile_bundle(b, tmp_path / "lea", calib=x, engine="lea")
    layers = info["meta"]["layers"]
    assert {n: layers[n]["engine"] for n in ("c1", "c2", "fc1", "fc2", "fc3")} == dict.fromkeys(
        ("c1", "c2", "fc1", "fc2", "fc3"), "lea")
    assert layers["fc3"]["lea"]["block"] == [10, 4] or layers["fc3"]["lea"]["block"][0] >= 1
    assert info["qmodel"].lea_layouts["fc2"].bw == 1       # irregular: gathered element by element
    _check_every_level(info, x)


def test_lea_conv1d_padded_bit_exact(tmp_path):
    b, x = _bundle(Lea1d, (3, 16), {"c1.weight": (1, 5), "fc.weight": (1, 4)}, seed=1)
    info = compile_bundle(b, tmp_path / "lea1d", calib=x, engine="lea")
    assert info["meta"]["layers"]["c1"]["engine"] == "lea"
    _check_every_level(info, x)


class Lea1dPositive(Lea1d):
    """Non-negative weights on non-negative inputs add up coherently: the conv's shift is >= 15, the LEA
    conv's second requantisation branch (+ r, msp_mpy_q15, + q; shift < 15 doubles, as in the other nets)."""

    def __init__(self):
        super().__init__()
        with torch.no_grad():
            self.c1.weight.abs_()
            self.c1.bias.zero_()


class Lea1dBiasDominated(Lea1d):
    """Tiny weights, large biases: the output's range is the bias's, bits above what the weights reach, so
    the conv's shift is above 15 (quantize keeps 2^15 * row sum of |w_q| within int32) and the LEA conv
    requantises with + r, msp_mpy_q15 by 2^(15 - d), + q (d >= 1)."""

    def __init__(self):
        super().__init__()
        with torch.no_grad():
            self.c1.weight.uniform_(-0.001, 0.001)
            self.c1.bias.uniform_(-0.5, 0.5)


def test_lea_conv_with_shift_of_15_or_more_bit_exact(tmp_path):
    b, x = _bundle(Lea1dPositive, (3, 16), {"c1.weight": (1, 5), "fc.weight": (1, 4)}, seed=1)
    x = np.abs(x)
    info = compile_bundle(b, tmp_path / "pos", calib=x, engine="lea")
    assert info["qmodel"].layers["c1"].shift >= 15 and info["meta"]["layers"]["c1"]["engine"] == "lea"
    _check_every_level(info, x)
    _check_host_mpy_and_fill(HostSim(info["out_dir"]).lib)


def _check_host_mpy_and_fill(lib):
    """The host board's functional msp_mpy_q15 / msp_fill_q15 (dsplib_host.c, which the shift > 15
    requantisation calls) equal lea_ref, and refuse odd lengths and misaligned operands as DSPLib does."""
    class Len(ctypes.Structure):
        _fields_ = [("length", ctypes.c_uint16)]

    class Fill(ctypes.Structure):
        _fields_ = [("length", ctypes.c_uint16), ("value", ctypes.c_int16)]

    rng = np.random.default_rng(5)
    a = rng.integers(-32768, 32768, 64).astype(np.int16)
    b = rng.integers(-32768, 32768, 64).astype(np.int16)
    a[:2], b[:2] = -32768, -32768                       # -1 * -1 wraps, as lea_ref documents
    out = np.zeros(64, np.int16)
    ptr = lambda v, off=0: ctypes.c_void_p(v.ctypes.data + off)   # noqa: E731
    assert lib.msp_mpy_q15(ctypes.byref(Len(64)), ptr(a), ptr(b), ptr(out)) == 0
    assert np.array_equal(out, lea_ref.mpy_q15(a, b))
    assert lib.msp_fill_q15(ctypes.byref(Fill(62, -1234)), ptr(out)) == 0
    assert np.all(out[:62] == -1234) and np.array_equal(out[62:], lea_ref.mpy_q15(a, b)[62:])
    assert lib.msp_mpy_q15(ctypes.byref(Len(3)), ptr(a), ptr(b), ptr(out)) == lea_ref.SIZE_ERROR
    assert lib.msp_fill_q15(ctypes.byref(Fill(4, 0)), ptr(out, 2)) == lea_ref.INVALID_ADDRESS


def test_conv_with_mixed_kernel_rows_stays_on_cpu_and_auto_follows_the_model(tmp_path):
    b, x = _bundle(LeaNet, (2, 10, 10), {"c1.weight": "irregular", "c2.weight": (1, 3), "fc1.weight": (4, 2),
                                         "fc2.weight": (2, 2), "fc3.weight": "dense"}, seed=2)
    info = compile_bundle(b, tmp_path / "mixed", calib=x, engine="lea")
    layers = info["meta"]["layers"]
    assert layers["c1"]["engine"] == "cpu" and "kernel rows" in layers["c1"]["lea_unsupported"]
    assert layers["c2"]["engine"] == "lea"
    _check_every_level(info, x)   # CPU and LEA layers mixed in one build
    from sparsenest.compiler import codegen, quantize
    from sparsenest.compiler.planner import get_target
    qm = quantize.quantize(b, x)
    meta = codegen.generate(qm, tmp_path / "auto", target=get_target("host"), engine="auto")
    for m in meta["layers"].values():
        if "lea" in m.get("predicted_cycles", {}):
            pc = m["predicted_cycles"]
            assert m["engine"] == ("lea" if pc["lea"][-1] < pc["cpu"][-1] else "cpu")
    assert set(qm.lea_layouts) == {n for n, m in meta["layers"].items() if m.get("engine") == "lea"}


@pytest.mark.parametrize("shift", [1, 7, 14, 15, 16, 22])
def test_conv_requant_constants_equal_golden_requantize(shift):
    """The C kernel's per-channel constant path equals golden's requantize(acc16 * 2^15 + bias, shift)."""
    rng = np.random.default_rng(shift)
    acc = rng.integers(-32768, 32768, size=4000).astype(np.int64)
    bias = rng.integers(-(2 ** 29), 2 ** 29, size=4000).astype(np.int64)
    bias[:8] = [0, 1, -1, 2 ** 15 - 1, -(2 ** 15), 2 ** 30 - 1, -(2 ** 30) + 1, 12345]
    k = lea_plan.conv_requant(bias, shift).astype(np.int64)
    if shift >= 15:
        c = np.clip((acc + k) >> (shift - 15), -32768, 32767)
    else:
        c = np.clip(acc * 2 ** (15 - shift) + k, -32768, 32767)
    assert np.array_equal(c, golden.requantize(acc * 2 ** 15 + bias, shift))


@pytest.mark.parametrize("shift", [15, 16, 19, 30])
def test_conv_requant_on_lea_equals_golden_requantize_below_the_int16_top(shift):
    """shift >= 15 requantised on LEA as lea_golden.conv documents it, by the DSPLib calls the C kernel
    makes (lea_ref: msp_offset_q15 + r, msp_mpy_q15 by 2^(15 - d), msp_offset_q15 + q), equals golden's
    requantize(acc16 * 2^15 + bias, shift) exactly unless acc + r leaves int16, and there is one lower
    at most; a q beyond int16 stays on the CPU (rq_on_lea)."""
    rng = np.random.default_rng(shift)
    d = shift - 15
    acc = rng.integers(-32768, 32768, size=3000).astype(np.int64)
    acc[:6] = [-32768, -1, 0, 1, 32766, 32767]
    bias = rng.integers(-(2 ** 29), 2 ** 29, size=16).astype(np.int64)
    bias[:4] = [0, -1, 2 ** 30 - 1, -(2 ** 30) + 1]
    for b in bias:
        k = int(lea_plan.conv_requant(np.array([b]), shift)[0])
        want = golden.requantize(acc * 2 ** 15 + b, shift).astype(np.int64)
        if not lea_plan.rq_on_lea(k, shift):
            assert d < 15 and abs(k >> d) > 32767
            continue
        q, r = k >> d, k & ((1 << d) - 1)
        t = lea_ref.offset_q15(acc, r)
        u = lea_ref.mpy_q15(t, np.full(t.shape, 1 << (15 - d))) if d else t
        got = lea_ref.offset_q15(u, q).astype(np.int64)
        inside = acc + r <= 32767
        assert np.array_equal(got[inside], want[inside])
        assert np.all((want[~inside] - got[~inside] >= 0) & (want[~inside] - got[~inside] <= 1))
        lay = lea_plan.LeaConv("c", 1, 1, acc.size, 1, 1, 0, 0, 1, 1, acc.size, band=1, entries=[[0]],
                               counts=[[1]], coeffs=np.array([[0, 32767]], np.int16), conv1d=True, shift=shift)
        x = acc.reshape(1, 1, -1)      # one 1-tap row of weight 32767: the FIR gives x - 1 (x > 0) or x
        fir = (acc * 32767) >> 15
        ref = lea_ref.offset_q15(lea_ref.mpy_q15(lea_ref.offset_q15(fir, r), np.full(acc.shape, 1 << (15 - d)))
                                 if d else lea_ref.offset_q15(fir, r), q)
        assert np.array_equal(lea_golden.conv(lay, x, 1, np.array([b]), shift).reshape(-1), ref)


def test_golden_lea_linear_saturates_like_mac_q15():
    """|sum| >= 2^30: msp_mac_q15 saturates 2*sum, the golden model follows (lea_ref is DSPLib's rule)."""
    w = np.full((1, 4), -32768, np.int16)
    lay = lea_plan.linear_layout("fc", w, np.ones((1, 4), np.uint8), 1)
    x = np.full((1, 4), -32768, np.int16)
    y = lea_golden.linear(lay, x, 1, np.zeros(1, np.int32), 16)
    assert lea_ref.mac_q15(x[0], w[0]) == 2 ** 31 - 1
    assert int(y[0, 0]) == (((2 ** 30 - 1) >> 15) + 1) >> 1     # the saturated sum, rounded


def test_lea_ram_overflow_names_the_layer(tmp_path, monkeypatch):
    b, x = _bundle(LeaNet, (2, 10, 10), {"c1.weight": (1, 3), "c2.weight": (1, 3), "fc1.weight": "dense",
                                       "fc2.weight": "dense", "fc3.weight": "dense"})
    from sparsenest.compiler import planner
    tgt = planner.get_target("host", lea_bytes=128)
    with pytest.raises(PlanError, match=r"layer '(c1|c2|fc1)'.*LEA RAM"):
        compile_bundle(b, tmp_path / "small", calib=x, engine="lea", target=tgt, build=False)


CLANG = shutil.which("clang-19") or shutil.which("clang")


@pytest.mark.skipif(CLANG is None, reason="clang-19 is an apt package of make setup")
def test_kernels_and_shims_compile_for_the_chip_with_werror(tmp_path):
    """sn_lea_ops.c (against a model.h with LEA layers) and the simulator's DSPLib shims compile for the
    MSP430FR5994 with -Werror against the declaration-only DSPLib.h: a board build is one link away."""
    (tmp_path / "model.h").write_text("#define SN_MODEL_LEA_LAYERS 1\n")
    board = RUNTIME_DIR.parent / "boards" / "msp430fr5994"
    flags = [CLANG, "--target=msp430", "-mmcu=msp430fr5994", "-Os", "-std=c11", "-Wall", "-Wextra", "-Werror",
             "-ffreestanding", "-I", str(tmp_path), "-I", str(RUNTIME_DIR / "include"), "-I", str(board),
             "-I", str(RUNTIME_DIR / "kernels_lea" / "dsplib"), "-I", str(board / "sim"), "-c"]
    for src in (RUNTIME_DIR / "kernels_lea" / "sn_lea_ops.c", board / "sim" / "dsplib_shim.c"):
        r = subprocess.run([*flags, str(src), "-o", str(tmp_path / (src.stem + ".o"))], capture_output=True,
                           text=True)
        assert r.returncode == 0, f"{src.name}: {r.stderr}"


def test_lea_chip_image_in_our_simulator_equals_golden(tmp_path):
    """The chip image (DSPLib shims -> the simulator's LEA model, lea.c) at every level equals the golden
    model bit for bit, and the simulator counted LEA calls in the LEA layers."""
    from sparsenest.analysis import calibration
    from sparsenest.targets import firmware
    b, x = _bundle(LeaNet, (2, 10, 10), {"c1.weight": (1, 3), "c2.weight": (1, 3), "fc1.weight": (4, 2),
                                         "fc2.weight": "irregular", "fc3.weight": "dense"}, seed=3)
    info = compile_bundle(b, tmp_path / "chip", calib=x, engine="lea", target="msp430fr5994", build=False)
    fb = firmware.build(tmp_path / "chip", tmp_path / "fw", image="fr5994", inputs=x[:2],
                        schedule=[firmware.Step(i, lv) for lv in range(1, L + 1) for i in range(2)])
    _, per = calibration.simulate_firmware(fb, info["qmodel"])   # raises on any golden mismatch
    assert sorted(per) == [1, 2, 3]
    for d in per.values():
        lc = d["layer_counters"]
        assert all(lc[n]["lea_calls"] > 0 for n in ("c1", "c2", "fc1", "fc3")) and d["lea_cycles"] > 0


def test_lea_conv_with_shift_of_15_or_more_in_our_simulator_equals_golden(tmp_path):
    """The shift >= 15 requantisation on LEA (msp_offset_q15, msp_fill_q15, msp_mpy_q15 through the
    simulator's LEA model) equals the golden model bit for bit at every level."""
    from sparsenest.analysis import calibration
    from sparsenest.targets import firmware
    b, x = _bundle(Lea1dBiasDominated, (3, 16), {"c1.weight": (1, 5), "fc.weight": (1, 4)}, seed=1)
    info = compile_bundle(b, tmp_path / "chip", calib=x, engine="lea", target="msp430fr5994", build=False)
    q = info["qmodel"].layers["c1"]
    assert q.shift > 15 and all(info["qmodel"].lea_layouts["c1"].rq_lea)   # the + r, mpy, + q branch
    fb = firmware.build(tmp_path / "chip", tmp_path / "fw", image="fr5994", inputs=x[:2],
                        schedule=[firmware.Step(i, lv) for lv in range(1, L + 1) for i in range(2)])
    _, per = calibration.simulate_firmware(fb, info["qmodel"])   # raises on any golden mismatch
    assert sorted(per) == [1, 2, 3] and all(d["layer_counters"]["c1"]["lea_calls"] > 0 for d in per.values())


def test_rebuilt_qmodel_follows_the_lea_layers(tmp_path):
    """load_qmodel (what `sparsenest sim` compares against) restores the LEA layouts from model_meta.json."""
    from sparsenest.targets.firmware_model import load_qmodel
    b, x = _bundle(Lea1d, (3, 16), {"c1.weight": (1, 5), "fc.weight": (1, 4)}, seed=4)
    bpath = b.save(tmp_path / "b.nest")
    info = compile_bundle(bpath, tmp_path / "m", calib=x, engine="lea", build=False)
    qm = load_qmodel(tmp_path / "m")
    assert set(qm.lea_layouts) == set(info["qmodel"].lea_layouts) == {"c1", "fc"}
    for lv in range(1, L + 1):
        assert np.array_equal(golden.predict(qm, x, lv), golden.predict(info["qmodel"], x, lv))
