"""Golden model of a layer on the LEA engine: exactly the integer arithmetic runtime_c/kernels_lea/
sn_lea_ops.c performs with DSPLib's rules (lea_ref.py), from the layer's LEA layout (lea_plan.py).

* linear: per row one msp_mac_q15 over the kept weights, r = sat32(2 * sum); the CPU takes
  acc = sat32((r >> 1) + bias) and requantises it as the CPU path does (golden.requantize). Equal to the
  CPU path unless |sum| >= 2^30 (the CPU path's int32 accumulator allows 2^31).
* conv: per output channel and kept kernel row e (in layout order) p_e = sat16(floor(sum_kx x * w / 2^15))
  at every output position (msp_fir_q15), acc = p_0, acc = sat16(acc + p_e) (msp_add_q15, in order);
  no kept row: acc = 0. Requantisation, with k = lea_plan.conv_requant(bias, shift) per channel:
  shift >= 15 with d = shift - 15, k = q * 2^d + r (0 <= r < 2^d) and |q| < 2^15 (lea_plan.rq_on_lea), on
  LEA: t = sat16(acc + r) (msp_offset_q15), u = floor(t / 2^d) (msp_mpy_q15 by a vector of 2^(15 - d),
  d >= 1), y = sat16(u + q) (msp_offset_q15). This equals requantize(acc * 2^15 + bias, shift) unless
  acc + r > 32767 (acc already at the top of int16; then y is at most one lower). Otherwise (no kept row,
  |q| >= 2^15; on the CPU): y = requantize(acc * 2^15 + bias, shift). shift < 15 (on LEA): 15 - shift
  saturating doublings of acc (msp_add_q15 acc + acc), then y = sat16(acc + k) (msp_offset_q15) with
  k = round(bias / 2^shift) (lea_plan.conv_requant; |k| < 2^15).
  This equals requantize(acc * 2^15 + bias, shift) unless acc * 2^(15 - shift) leaves int16 before k
  brings it back. The floor to Q15 per kernel row is the precision LEA gives up against the CPU path's
  single rounding: with shift < 15 the low 15 - shift bits of the output are zero.
"""
from __future__ import annotations

import numpy as np

from .golden import requantize
from .lea_plan import conv_requant, rq_on_lea

_I32 = (-(2 ** 31), 2 ** 31 - 1)


def _sat32(v):
    return np.clip(v, *_I32)


def _sat16(v):
    return np.clip(v, -32768, 32767)


def linear(lay, x: np.ndarray, level: int, bias: np.ndarray, shift: int) -> np.ndarray:
    x = np.asarray(x, np.int64).reshape(len(x), -1)
    acc = np.zeros((len(x), lay.rows), np.int64)
    off = 0
    for r0, nr, segs, counts in lay.groups:
        total = len(segs) * lay.bw
        kept = counts[level - 1] * lay.bw
        cols = (np.asarray(segs, np.int64)[:, None] + np.arange(lay.bw)[None, :]).reshape(-1)[:kept]
        w = lay.weights[off:off + nr * total].reshape(nr, total)[:, :kept].astype(np.int64)
        s = x[:, cols] @ w.T                                # exact: |products| < 2^30, n < 2^12
        r = _sat32(2 * s)                                  # msp_mac_q15
        acc[:, r0:r0 + nr] = r >> 1
        off += nr * total
    acc = _sat32(acc + np.asarray(bias, np.int64)[None, :])
    return requantize(acc, shift)


def conv(lay, x: np.ndarray, level: int, bias: np.ndarray, shift: int) -> np.ndarray:
    n = len(x)
    x = np.asarray(x, np.int64).reshape(n, lay.cin, lay.in_h, lay.in_w)
    xp = np.zeros((n, lay.cin, lay.hp, lay.wp), np.int64)
    xp[:, :, lay.ph:lay.ph + lay.in_h, lay.pw:lay.pw + lay.in_w] = x
    y = np.zeros((n, lay.out_c, lay.out_h, lay.out_w), np.int64)
    k = conv_requant(bias, shift)
    e0 = 0
    for oc in range(lay.out_c):
        kept = lay.counts[oc][level - 1]
        acc = np.zeros((n, lay.out_h, lay.out_w), np.int64)
        for j in range(kept):
            ic, ky = divmod(lay.entries[oc][j], lay.kh)
            h = lay.coeffs[e0 + j][::-1].astype(np.int64)[:lay.kw]     # back to kernel-row order
            rows = xp[:, ic, ky:ky + lay.out_h, :]
            s = sum(rows[:, :, kx:kx + lay.out_w] * h[kx] for kx in range(lay.kw))
            p = _sat16(s >> 15)                                        # msp_fir_q15
            acc = p if j == 0 else _sat16(acc + p)                     # msp_add_q15
        e0 += len(lay.entries[oc])
        kc = int(k[oc])
        if shift < 15:      # on LEA: 15 - shift saturating doublings (msp_add_q15), then + k (msp_offset_q15)
            for _ in range(15 - shift):
                acc = _sat16(2 * acc)
            y[:, oc] = _sat16(acc + kc)
        elif kept and rq_on_lea(kc, shift):   # on LEA: + r, floor(/ 2^d) (msp_mpy_q15 by 2^(15-d)), + q
            d = shift - 15
            q, r = kc >> d, kc & ((1 << d) - 1)
            y[:, oc] = _sat16((_sat16(acc + r) >> d) + q)
        else:               # on the CPU
            y[:, oc] = requantize(_sat32(acc * 32768 + int(bias[oc])), shift)
    out = y.astype(np.int16)
    return out.reshape(n, lay.out_c, lay.out_w) if lay.conv1d else out


def layer(lay, x: np.ndarray, level: int, bias: np.ndarray, shift: int) -> np.ndarray:
    """The int16 output of a LEA layer (before a fused ReLU, as golden._matmul_layer returns it)."""
    if lay.kind == "linear":
        return linear(lay, x, level, bias, shift)
    return conv(lay, x, level, bias, shift)
