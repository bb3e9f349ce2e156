"""Q15 quantization of a bundle: power-of-two exponents for weights, biases and activations.

The arithmetic contract is in docs/architecture.md ("Q15 arithmetic"); golden.py is its executable
form. This module only chooses the exponents and produces the integer tensors.

Rules (one place, referenced from golden.py and the generated model.h):

* Float -> integer conversion (weights, biases, inputs) is round half away from zero, then saturation:
  `q = sat(sign(v) * floor(|v| * 2^e + 0.5))`; int16 for weights/activations, int32 for biases.
* Weight exponent (per tensor): the largest e with `max|w| * 2^e <= 32767` over the weights kept at any
  level, then lowered until `32768 * max_row sum|w_q| + max|bias_q| < 2^31` (the densest level has the
  largest row sums, and every level reads a subset of them): no int32 accumulator can overflow, in any
  summation order, at any level, for any int16 input.
* Activation exponent: calibrated per node on real training images. For each level, the float
  network (weights * mask_level) runs over the calibration slice; the node's range is the 99.99th
  percentile of |activation| (of max(activation, 0) when every consumer of the node is a ReLU, since
  negative values are zeroed anyway), maximised over levels. e = the largest e with range * 2^e <= 32767.
  One exponent serves every level, so the generated code is the same for all levels. A node whose
  consumers are all ReLU6 is ranged on min(max(activation, 0), 6): the clamp makes larger values moot.
* ReLU6 clamps at 0 and at `relu6_bound(e)` = sat16(round_half_away(6 * 2^e)), 6 in the Q format of its
  input's exponent e (24,576 at e = 12; 32,767 when 6 is not representable, where saturation is the clamp).
  ReLU, ReLU6, max-pool, avg-pool, global avg-pool and flatten keep their input's exponent; conv, linear and
  add outputs (and the graph input) are calibrated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..levels import level_mask

INT16_MIN, INT16_MAX = -32768, 32767
ACC_LIMIT = 1 << 31
PERCENTILE = 99.99
MATMUL_OPS = ("conv1d", "conv2d", "linear")
SAME_EXP_OPS = ("relu", "relu6", "maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d", "global_avgpool", "flatten")
SUPPORTED_OPS = MATMUL_OPS + SAME_EXP_OPS + ("add",)
AVG_RECIP_SHIFT = 15    # avg pools divide by a Q15 reciprocal when the window is not a power of two


def avg_params(n: int) -> tuple[int, int]:
    """(mul, sh) for dividing a window sum of n values: the golden model and the generated C use these."""
    if n & (n - 1) == 0:
        return 1, n.bit_length() - 1
    return int(np.floor(2.0 ** AVG_RECIP_SHIFT / n + 0.5)), AVG_RECIP_SHIFT


def relu6_bound(e: int) -> int:
    """ReLU6's upper clamp in the Q format of exponent e: the golden model and the generated C use it."""
    return int(to_q(np.array([6.0]), e)[0])


def add_shift(e_in: int, e_out: int) -> int:
    """Alignment shift of an add input, clamped to [-15, 17]: a left shift of at most 15 keeps the int32
    sum of two aligned int16 values exact, and any right shift >= 17 of an int16 value rounds to 0."""
    return max(min(e_in - e_out, 17), -15)


class QuantizationError(ValueError):
    """A tensor cannot be represented under the Q15 contract (e.g. a bias that overflows int32)."""


def round_half_away(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def to_q(v: np.ndarray, e: int, bits: int = 16) -> np.ndarray:
    """sat(round_half_away(v * 2^e)) as int16 (bits=16) or int32 (bits=32)."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    q = np.clip(round_half_away(np.asarray(v, np.float64) * 2.0 ** e), lo, hi)
    return q.astype(np.int16 if bits == 16 else np.int32)


def exp_for_range(amax: float) -> int:
    """Largest e with amax * 2^e <= 32767 (clamped to [-16, 30]; 0-range tensors get 15)."""
    if not np.isfinite(amax):
        raise QuantizationError(f"non-finite activation/weight range {amax}")
    if amax <= 0:
        return 15
    e = math.floor(math.log2(INT16_MAX / amax))
    while amax * 2.0 ** (e + 1) <= INT16_MAX:
        e += 1
    while amax * 2.0 ** e > INT16_MAX:
        e -= 1
    return int(min(max(e, -16), 30))


@dataclass
class QLayer:
    """A conv/linear node in integers: acc = bias_q + sum(w_q * x_q); y = requant(acc, shift)."""
    name: str
    op: str
    weight_key: str
    w_q: np.ndarray      # int16, the weight's shape; 0 where intro == 0
    intro: np.ndarray    # uint8, the weight's shape
    e_w: int
    bias_q: np.ndarray   # int32 [out]
    shift: int           # e_w + e_x - e_y

    @property
    def rows(self) -> int:
        return int(self.w_q.shape[0])

    @property
    def cols(self) -> int:
        return int(np.prod(self.w_q.shape[1:]))

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(w_q, intro) viewed as rows x cols, the formats' matrix view."""
        return self.w_q.reshape(self.rows, -1), self.intro.reshape(self.rows, -1)

    def mask(self, level: int) -> np.ndarray:
        return level_mask(self.intro, level)


@dataclass
class QModel:
    graph: dict
    n_levels: int
    exps: dict[str, int]                 # output exponent of every node, and of the graph input
    layers: dict[str, QLayer]            # conv/linear nodes
    calibration: dict = field(default_factory=dict)

    @property
    def input_exp(self) -> int:
        return self.exps[self.graph["input"]["name"]]

    @property
    def output_exp(self) -> int:
        return self.exps[self.graph["output"]]

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        return to_q(x, self.input_exp)

    def node(self, name: str) -> dict:
        for n in self.graph["nodes"]:
            if n["name"] == name:
                return n
        raise KeyError(name)

    def summary(self) -> dict:
        """JSON-able: what model_meta.json records about quantization."""
        return {"rounding": "round half away from zero (float->int); requantize: round half up "
                            "(acc + 2^(s-1)) >> s, saturate to int16",
                "input_exp": self.input_exp, "output_exp": self.output_exp,
                "activation_exps": dict(self.exps),
                "layers": {n: {"e_w": q.e_w, "shift": q.shift,
                               "e_bias": q.e_w + self.exps[self.node(n)["inputs"][0]]}
                           for n, q in self.layers.items()},
                "calibration": self.calibration}


# ---------------------------------------------------------------------------------------------------
# Float execution of the layer graph (calibration and float accuracy; torch for speed)

def _conv_args(node: dict) -> dict:
    return {"stride": tuple(node["stride"]), "padding": tuple(node["padding"]),
            "dilation": tuple(node["dilation"]), "groups": int(node["groups"])}


def run_graph_float(graph: dict, weights: dict, x: np.ndarray, masks: dict | None = None,
                    keep_all: bool = False) -> dict:
    """Run the float network on batch x; masks: weight key -> bool array (None: unmasked).
    Returns node name -> torch tensor (all nodes if keep_all, else only the output)."""
    with torch.no_grad():
        vals = {graph["input"]["name"]: torch.as_tensor(np.asarray(x, np.float32))}
        uses = _last_use(graph)
        for i, n in enumerate(graph["nodes"]):
            op, ins = n["op"], [vals[s] for s in n["inputs"]]
            if op in MATMUL_OPS:
                w = torch.as_tensor(weights[n["weight"]])
                if masks is not None and n["weight"] in masks:
                    w = w * torch.as_tensor(masks[n["weight"]], dtype=w.dtype)
                b = torch.as_tensor(weights[n["bias"]]) if n.get("bias") else None
                if op == "linear":
                    y = F.linear(ins[0], w, b)
                elif op == "conv1d":
                    y = F.conv1d(ins[0], w, b, **_conv_args(n))
                else:
                    y = F.conv2d(ins[0], w, b, **_conv_args(n))
            elif op == "relu":
                y = torch.relu(ins[0])
            elif op == "relu6":
                y = F.relu6(ins[0])
            elif op in ("maxpool1d", "maxpool2d"):
                f = F.max_pool1d if op == "maxpool1d" else F.max_pool2d
                y = f(ins[0], n["kernel"], n["stride"], n["padding"])
            elif op in ("avgpool1d", "avgpool2d"):
                f = F.avg_pool1d if op == "avgpool1d" else F.avg_pool2d
                y = f(ins[0], n["kernel"], n["stride"], n["padding"])
            elif op == "global_avgpool":
                y = ins[0].flatten(2).mean(2)
            elif op == "flatten":
                y = ins[0].flatten(1)
            elif op == "add":
                y = ins[0] + ins[1]
            else:
                raise QuantizationError(f"node '{n['name']}': op '{op}' is not supported")
            vals[n["name"]] = y
            if not keep_all:
                for s in set(n["inputs"]):
                    if uses[s] == i and s != graph["output"]:
                        del vals[s]
        return vals if keep_all else {graph["output"]: vals[graph["output"]]}


def _last_use(graph: dict) -> dict:
    last = {}
    for i, n in enumerate(graph["nodes"]):
        for s in n["inputs"]:
            last[s] = i
    return last


def consumers(graph: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {graph["input"]["name"]: []}
    for n in graph["nodes"]:
        out.setdefault(n["name"], [])
        for s in n["inputs"]:
            out.setdefault(s, []).append(n)
    return out


def level_masks(intro: dict, level: int) -> dict:
    return {k: level_mask(v, level) for k, v in intro.items()}


def float_accuracy(graph, weights, intro, level, x, y, batch=1000) -> float:
    masks = level_masks(intro, level)
    correct = 0
    for i in range(0, len(x), batch):
        out = run_graph_float(graph, weights, x[i:i + batch], masks)[graph["output"]]
        correct += int((out.argmax(1).numpy() == y[i:i + batch]).sum())
    return correct / len(x)


# ---------------------------------------------------------------------------------------------------

def _bundle_parts(bundle):
    graph = bundle.graph
    weights = {k: np.asarray(v, np.float32) for k, v in bundle.weights.items()}
    intro = {}
    for n in graph["nodes"]:
        if n["op"] in MATMUL_OPS:
            k = n["weight"]
            if k in bundle.intro:
                intro[k] = np.asarray(bundle.intro[k], np.uint8)
            else:  # an unpruned layer: every weight present from level 1
                intro[k] = np.ones(weights[k].shape, np.uint8)
    return graph, weights, intro, int(bundle.n_levels)


def check_supported(graph: dict) -> None:
    from sparsenest.train.graph import UnsupportedLayerError
    for n in graph["nodes"]:
        if n["op"] not in SUPPORTED_OPS:
            raise UnsupportedLayerError(
                f"layer '{n['name']}': op '{n['op']}' is not supported by the compiler "
                f"(supported: {', '.join(SUPPORTED_OPS)})")


def quantize(bundle, calib_x: np.ndarray, *, percentile: float = PERCENTILE) -> QModel:
    """Choose every exponent and produce the integer tensors. calib_x: float32 [N, *input_shape]
    training images (256-512 is plenty)."""
    graph, weights, intro, n_levels = _bundle_parts(bundle)
    check_supported(graph)
    cons = consumers(graph)
    in_name = graph["input"]["name"]

    def rng(t: torch.Tensor, relu_only: bool, relu6_only: bool = False) -> float:
        a = t.clamp(0, 6) if relu6_only else t.clamp(min=0) if relu_only else t.abs()
        a = a.flatten().double().numpy()
        return float(np.percentile(a, percentile)) if a.size else 0.0

    calibrated = {n["name"] for n in graph["nodes"] if n["op"] in MATMUL_OPS + ("add",)}
    amax: dict[str, float] = {in_name: rng(torch.as_tensor(calib_x), False)}
    for level in range(1, n_levels + 1):
        vals = run_graph_float(graph, weights, calib_x, level_masks(intro, level), keep_all=True)
        for name in calibrated:
            relu_only = bool(cons[name]) and all(c["op"] in ("relu", "relu6") for c in cons[name])
            relu6_only = bool(cons[name]) and all(c["op"] == "relu6" for c in cons[name])
            amax[name] = max(amax.get(name, 0.0), rng(vals[name], relu_only, relu6_only))
        del vals

    exps = {in_name: exp_for_range(amax[in_name])}
    layers: dict[str, QLayer] = {}
    for n in graph["nodes"]:
        name, op = n["name"], n["op"]
        if op in SAME_EXP_OPS:
            exps[name] = exps[n["inputs"][0]]
            continue
        exps[name] = exp_for_range(amax[name])
        if op == "add":
            continue
        e_x = exps[n["inputs"][0]]
        w = weights[n["weight"]].astype(np.float64)
        it = intro[n["weight"]]
        kept = it >= 1
        w_kept = np.where(kept, w, 0.0)
        b = weights[n["bias"]].astype(np.float64) if n.get("bias") else np.zeros(w.shape[0])
        e_w = exp_for_range(float(np.abs(w_kept).max()) if kept.any() else 0.0)
        while True:
            w_q = to_q(w_kept, e_w)
            bias_f = np.abs(b) * 2.0 ** (e_w + e_x)
            row_sum = np.abs(w_q.reshape(w_q.shape[0], -1).astype(np.int64)).sum(1).max()
            if bias_f.max(initial=0) < 2 ** 31 - 1 and \
                    32768 * int(row_sum) + float(np.floor(bias_f.max(initial=0) + 0.5)) < ACC_LIMIT:
                break
            e_w -= 1
            if e_w < -30:
                raise QuantizationError(f"layer '{name}': cannot choose a weight exponent that keeps the "
                                        "int32 accumulator from overflowing")
        bias_q = to_q(b, e_w + e_x, bits=32)
        # Shifts beyond [-16, 32] give the same saturated / zero result as the clamped shift.
        shift = int(min(max(e_w + e_x - exps[name], -16), 32))
        layers[name] = QLayer(name, op, n["weight"], w_q, it.copy(), int(e_w), bias_q, shift)
    calibration = {"images": int(len(calib_x)), "percentile": percentile,
                   "range": {k: round(v, 6) for k, v in sorted(amax.items())}}
    return QModel(graph, n_levels, exps, layers, calibration)
