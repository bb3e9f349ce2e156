"""Q15 quantization rules and the golden model's integer arithmetic, against plain Python integers."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sn_compile_helpers import calib_images, lenet_bundle, random_bundle
from sparsenest.compiler import golden, quantize


def test_round_half_away_from_zero_and_saturate():
    v = np.array([0.5, -0.5, 1.5, -2.5, 2.4999, 1e9, -1e9])
    assert quantize.to_q(v, 0).tolist() == [1, -1, 2, -3, 2, 32767, -32768]
    assert quantize.to_q(np.array([3e9]), 0, bits=32).tolist() == [2 ** 31 - 1]


@given(st.floats(min_value=1e-6, max_value=1e6))
def test_exp_for_range_is_the_largest_that_fits(amax):
    e = quantize.exp_for_range(amax)
    if -16 < e < 30:
        assert amax * 2.0 ** e <= 32767 < amax * 2.0 ** (e + 1)


@settings(max_examples=300)
@given(st.integers(-2 ** 31, 2 ** 31 - 1), st.integers(1, 32))
def test_requantize_equals_round_half_up_shift(acc, s):
    """((acc >> (s-1)) + 1) >> 1 (overflow-free, what C computes) == (acc + 2^(s-1)) >> s."""
    want = max(-32768, min(32767, (acc + (1 << (s - 1))) >> s))
    assert int(golden.requantize(np.array([acc]), s)[0]) == want


@given(st.integers(-2 ** 31, 2 ** 31 - 1), st.integers(-16, 0))
def test_requantize_left_shift_saturates(acc, s):
    want = max(-32768, min(32767, acc * 2 ** (-s)))
    assert int(golden.requantize(np.array([acc]), s)[0]) == want


def test_avg_params():
    assert golden.avg_params(4) == (1, 2)
    assert golden.avg_params(1) == (1, 0)
    assert golden.avg_params(9) == (round(32768 / 9), 15)
    assert golden.avg_params(49) == (669, 15)


@given(st.integers(-32768, 32767), st.integers(-40, 40))
def test_add_alignment_is_exact_in_int32(v, s):
    s = golden.add_shift(s, 0)
    out = int(golden.rshift_round(np.array([v]), s)[0])
    assert -2 ** 30 <= out <= 2 ** 30  # two of them sum inside int32
    if s > 0:
        assert out == (v + (1 << (s - 1))) >> s


@pytest.fixture(scope="module")
def qm():
    return quantize.quantize(lenet_bundle(), calib_images())


def test_exponents_follow_the_rules(qm):
    g = qm.graph
    for n in g["nodes"]:
        if n["op"] in quantize.SAME_EXP_OPS:
            assert qm.exps[n["name"]] == qm.exps[n["inputs"][0]]
    for name, q in qm.layers.items():
        node = qm.node(name)
        assert q.shift == q.e_w + qm.exps[node["inputs"][0]] - qm.exps[name]
        assert q.w_q.dtype == np.int16 and q.bias_q.dtype == np.int32
        assert np.all(q.w_q[q.intro == 0] == 0)
        row = np.abs(q.w_q.reshape(q.rows, -1).astype(np.int64)).sum(1).max()
        assert 32768 * int(row) + int(np.abs(q.bias_q.astype(np.int64)).max()) < 2 ** 31
        # the largest weight uses the int16 range (unless the overflow cap lowered the exponent)
        assert np.abs(q.w_q).max() > 16383 or 32768 * 2 * int(row) >= 2 ** 31
    assert qm.input_exp == 13  # MNIST inputs reach 2.82 after normalisation
    assert qm.calibration["images"] == len(calib_images()) and qm.calibration["percentile"] == 99.99


def _conv_int_reference(x, w, stride, pad, dil, groups):
    """Direct int64 loops: the arithmetic of the C conv, no floats anywhere."""
    n, cin, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    oh = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    xp = np.zeros((n, cin, h + 2 * pad[0], wd + 2 * pad[1]), np.int64)
    xp[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + wd] = x
    out = np.zeros((n, cout, oh, ow), np.int64)
    og = cout // groups
    for o in range(cout):
        g = o // og
        for ky in range(kh):
            for kx in range(kw):
                ys, xs = ky * dil[0], kx * dil[1]
                patch = xp[:, g * cg:(g + 1) * cg, ys:ys + stride[0] * oh:stride[0],
                           xs:xs + stride[1] * ow:stride[1]]
                out[:, o] += np.einsum("nchw,c->nhw", patch, w[o, :, ky, kx].astype(np.int64))
    return out


def test_golden_conv_float64_is_exact():
    b, x = random_bundle("conv2d", seed=3)
    qm = quantize.quantize(b, x[:100])
    node = qm.node("c1")
    q = qm.layers["c1"]
    xq = qm.quantize_input(x[:20])
    for level in (1, 3):
        w = np.where(q.mask(level), q.w_q, 0)
        acc = _conv_int_reference(xq, w, node["stride"], node["padding"], node["dilation"], node["groups"])
        acc += q.bias_q.astype(np.int64)[None, :, None, None]
        assert np.array_equal(golden.forward(qm, xq, level)["c1"], golden.requantize(acc, q.shift))
