"""Golden model: numpy/torch execution of exactly the integer arithmetic the C runtime performs.

It computes every level from `w_q * mask_level` directly (never through the sparse formats), so
comparing it with the C build checks the encoders and kernels independently.

Arithmetic (the contract of docs/architecture.md; the generated model.h repeats it):

* conv / linear: `acc = bias_q + sum(w_q * x_q)` in int32; the weight exponent is capped (quantize.py)
  so `|acc| < 2^31` for every partial sum in any order. Here the sum runs in float64 on integer values:
  every partial sum is an integer below 2^31 < 2^53, so float64 represents it exactly and the result
  equals the C int32 result bit for bit (it is checked to be integral).
* requantize with shift s: s > 0: `y = sat16(((acc >> (s-1)) + 1) >> 1)`, which equals
  `(acc + 2^(s-1)) >> s` (round half up, arithmetic shift) without the int32 overflow of the addition;
  s == 0: `sat16(acc)`; s < 0: `sat16(acc << -s)` (computed on the int16-clamped acc, shift capped at 16,
  which gives the same saturated value without overflow). A fused ReLU clamps the result at 0, a fused
  ReLU6 at 0 and at `relu6_bound(e_y)` (6 in the output's Q format, quantize.py).
* ReLU, ReLU6 and max-pool keep the exponent (max-pool padding never wins: out-of-range taps are skipped).
* avg-pool / global avg-pool over a window of n values: `sum` in int32, then
  `y = rshift_round(sum * mul, sh)` with (mul, sh) = (1, log2 n) when n is a power of two, else
  (round(2^15 / n), 15): a Q15 reciprocal. The exponent is kept.
* conv / linear compiled for the LEA engine (qm.lea_layouts, compile --engine): compiler/lea_golden.py.
* add: each input is aligned to the output exponent, `a' = rshift_round(a, clamp(e_a - e_y, -15, 17))`
  (a left shift when negative, on int32), then `y = sat16(a' + b')`.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# avg_params and add_shift are the Q15 scheme's (quantize.py): this model and the generated C share them.
from .quantize import MATMUL_OPS, QModel, _last_use, add_shift, avg_params, relu6_bound  # noqa: F401


def rshift_round(v: np.ndarray, s: int) -> np.ndarray:
    """Rounding arithmetic shift of int64 values (s > 0: right, round half up; s <= 0: left)."""
    v = np.asarray(v, np.int64)
    if s > 0:
        return ((v >> (s - 1)) + 1) >> 1
    return v << (-s)


def sat16(v: np.ndarray) -> np.ndarray:
    return np.clip(v, -32768, 32767).astype(np.int16)


def requantize(acc: np.ndarray, s: int, relu: bool = False) -> np.ndarray:
    acc = np.asarray(acc, np.int64)
    if s > 0:
        y = rshift_round(acc, s)
    elif s == 0:
        y = acc
    else:
        y = np.clip(acc, -32768, 32767) << min(-s, 16)
    y = sat16(y)
    return np.maximum(y, 0).astype(np.int16) if relu else y


def _exact(t: torch.Tensor) -> np.ndarray:
    a = t.numpy()
    r = np.rint(a)
    if a.size and np.abs(a - r).max() > 1e-6:  # never expected: float64 sums of integers < 2^53
        raise AssertionError("golden: float64 accumulation was not exact")
    return r.astype(np.int64)


def _matmul_layer(qm: QModel, n: dict, x: np.ndarray, level: int) -> np.ndarray:
    q = qm.layers[n["name"]]
    lea = getattr(qm, "lea_layouts", {}).get(n["name"])   # the layer runs on LEA: its arithmetic
    if lea is not None:
        from . import lea_golden
        return lea_golden.layer(lea, x, level, q.bias_q, q.shift)
    w = torch.as_tensor(np.where(q.mask(level), q.w_q, 0).astype(np.float64))
    xt = torch.as_tensor(x.astype(np.float64))
    if n["op"] == "linear":
        acc = F.linear(xt, w)
    elif n["op"] == "conv1d":
        acc = F.conv1d(xt, w, stride=n["stride"], padding=n["padding"], dilation=n["dilation"],
                       groups=n["groups"])
    else:
        acc = F.conv2d(xt, w, stride=n["stride"], padding=n["padding"], dilation=n["dilation"],
                       groups=n["groups"])
    acc = _exact(acc)
    bshape = (1, -1) + (1,) * (acc.ndim - 2)
    acc = acc + q.bias_q.astype(np.int64).reshape(bshape)
    return requantize(acc, q.shift)


def _forward(qm: QModel, xq: np.ndarray, level: int, keep_all: bool = False) -> dict:
    g = qm.graph
    vals = {g["input"]["name"]: np.asarray(xq, np.int16)}
    last = _last_use(g)
    for i, n in enumerate(g["nodes"]):
        op, ins = n["op"], [vals[s] for s in n["inputs"]]
        if op in MATMUL_OPS:
            y = _matmul_layer(qm, n, ins[0], level)
        elif op == "relu":
            y = np.maximum(ins[0], 0).astype(np.int16)
        elif op == "relu6":
            y = np.clip(ins[0], 0, relu6_bound(qm.exps[n["name"]])).astype(np.int16)
        elif op in ("maxpool1d", "maxpool2d"):
            f = F.max_pool1d if op == "maxpool1d" else F.max_pool2d
            y = f(torch.as_tensor(ins[0].astype(np.float64)), n["kernel"], n["stride"],
                  n["padding"]).numpy().astype(np.int16)
        elif op in ("avgpool1d", "avgpool2d"):
            f = F.avg_pool1d if op == "avgpool1d" else F.avg_pool2d
            t = torch.as_tensor(ins[0].astype(np.float64))
            if op == "avgpool1d":
                s = f(t, n["kernel"], n["stride"], n["padding"]) * n["kernel"][0]
            else:
                s = f(t, n["kernel"], n["stride"], n["padding"], divisor_override=1)
            mul, sh = avg_params(int(np.prod(n["kernel"])))
            y = sat16(rshift_round(_exact(s) * mul, sh))
        elif op == "global_avgpool":
            x = ins[0].astype(np.int64)
            cnt = int(np.prod(x.shape[2:]))
            mul, sh = avg_params(cnt)
            y = sat16(rshift_round(x.reshape(x.shape[0], x.shape[1], -1).sum(2) * mul, sh))
        elif op == "flatten":
            y = ins[0].reshape(ins[0].shape[0], -1)
        elif op == "add":
            e_y = qm.exps[n["name"]]
            a = rshift_round(ins[0], add_shift(qm.exps[n["inputs"][0]], e_y))
            b = rshift_round(ins[1], add_shift(qm.exps[n["inputs"][1]], e_y))
            y = sat16(a + b)
        else:
            raise ValueError(f"golden: unsupported op {op}")
        vals[n["name"]] = y
        if not keep_all:
            for s in set(n["inputs"]):
                if last[s] == i and s != g["output"]:
                    vals.pop(s, None)
    return vals


def forward(qm: QModel, xq: np.ndarray, level: int) -> dict:
    """All intermediate int16 tensors for a quantized batch (debugging a mismatch layer by layer)."""
    return _forward(qm, xq, level, keep_all=True)


def predict(qm: QModel, x: np.ndarray, level: int, *, batch: int = 1000,
            quantized_input: bool | None = None) -> np.ndarray:
    """int16 logits [N, classes] for a batch. x: float32 (quantized here with the input exponent) or
    int16 already quantized."""
    if quantized_input is None:
        quantized_input = np.asarray(x).dtype == np.int16
    if not 1 <= level <= qm.n_levels:
        raise ValueError(f"level must be in 1..{qm.n_levels}, not {level}")
    outs = []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        xq = xb if quantized_input else qm.quantize_input(xb)
        outs.append(_forward(qm, xq, level)[qm.graph["output"]])
    return np.concatenate(outs).reshape(len(x), -1).astype(np.int16)


def accuracy(qm: QModel, x: np.ndarray, y: np.ndarray, level: int) -> float:
    return float((predict(qm, x, level).argmax(1) == np.asarray(y)).mean())
