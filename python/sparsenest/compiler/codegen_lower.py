"""Codegen step 1, lower: a quantized model + options -> one plain LayerPlan per executed step.

A LayerPlan says what a step computes, free of memory addresses: op, shapes, window, fused ReLU, the
Q15 shifts and avg-pool reciprocal (quantize.add_shift / avg_params, which the golden model uses too),
the weights encoded in the layer's nested sparse format (one EncodedLayer per group), the bias, and
whether a convolution runs direct (column indices as input offsets) or through im2col. Placement
(codegen_place.py) gives these buffers and arrays their places; emission (codegen.py) writes the C.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import formats, inplace
from .c_text import c_ident
from .planner import Lowered, Step, lower
from .quantize import QModel, add_shift, avg_params

DIRECT_ACC_BYTES = 1024   # a direct conv's accumulator: rows x chunk int32 (chunk >= 1 position)
DIRECT_FORMATS = tuple(f for f in formats.FORMATS if formats.supports_direct(f))  # sn_conv_<format> exists
CONV_MODES = ("auto", "im2col")  # or per layer {name: "auto"|"direct"|"im2col", "*": default} (direct = auto)


class CodegenError(ValueError):
    """Options the code generator cannot honour (e.g. a format that cannot represent a layer)."""


@dataclass
class LayerPlan:
    """One executed step, before placement."""
    index: int                       # step number, 1-based (the planner's scratch keys)
    step: Step
    ident: str                       # the layer's C identifier (c_ident; never a runtime sn_* name)
    in_chw: tuple[int, int, int]     # input as (C, H, W); 1-D tensors have H = 1
    out_chw: tuple[int, int, int]
    window: dict                     # k_h k_w s_h s_w p_h p_w d_h d_w (1/0 for ops without a window)
    shift0: int = 0                  # conv/linear: requantize shift; pools: divide shift; add: in0's
    shift1: int = 0                  # add: in1's shift
    mul: int = 1                     # avg pools: Q15 reciprocal of the window
    groups: int = 1
    encs: list = field(default_factory=list)   # conv/linear: EncodedLayer per group
    direct: dict | None = None       # direct conv: offsets, chunk, pad_bytes (direct_conv)
    summary: str = ""                # what the step does, for the C comment ("; " parts: one line each)
    meta: dict = field(default_factory=dict)   # model_meta.json's layers[name]
    lea: object = None               # LEA engine: the layer's layout (compiler/lea_codegen.choose), else None
    in_place: str | None = None      # conv written over its input: 'pointwise' / 'depthwise' (inplace.py)

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def op(self) -> str:
        return self.step.op

    @property
    def positions(self) -> int:
        """Kernel calls per matrix and inference: conv output positions (direct: chunks of a row)."""
        _, out_h, out_w = self.out_chw
        if self.op != "conv":
            return 1
        return out_h * -(-out_w // self.direct["chunk"]) if self.direct else out_h * out_w


def layer_format(fmt, name: str) -> str:
    if isinstance(fmt, str):
        return fmt
    return fmt.get(name, fmt.get("*", "auto"))


def encode_layer(qm: QModel, name: str, fmt, format_opts: dict | None = None) -> list[formats.EncodedLayer]:
    """The layer's weight as one EncodedLayer per group (rows of a group form one matrix)."""
    node, q = qm.node(name), qm.layers[name]
    groups = int(node.get("groups", 1) or 1)
    f = layer_format(fmt, name)
    opts = dict((format_opts or {}).get(name, {}))
    if node["op"] in ("conv1d", "conv2d") and (f in ("auto", "pattern")) and "kernel_size" not in opts:
        k = node["kernel"]
        opts["kernel_size"] = (1, k[0]) if len(k) == 1 else tuple(k)
    w, it = q.matrix()
    rows_g = q.rows // groups
    out = []
    for g in range(groups):
        sl = slice(g * rows_g, (g + 1) * rows_g)
        try:
            out.append(formats.encode(f, w[sl], it[sl], qm.n_levels, **opts))
        except formats.FormatError as e:
            raise formats.FormatError(f"layer '{name}'" + (f" group {g}" if groups > 1 else "") +
                                      f": {e}") from e
    return out


def _shape3(shape: list[int]) -> tuple[int, int, int]:
    if len(shape) == 1:
        return shape[0], 1, 1
    if len(shape) == 2:
        return shape[0], 1, shape[1]
    return shape[0], shape[1], shape[2]


def _spatial(node: dict, key: str, default: int) -> tuple[int, int]:
    v = node.get(key)
    if v is None:
        return default, default
    return (default if key != "kernel" else 1, v[0]) if len(v) == 1 else (v[0], v[1])


def _window(node: dict) -> dict:
    """k/s/p/d (h, w) of a conv or pool node; 1-D ops have h = 1 and no padding or dilation in h."""
    kh, kw = _spatial(node, "kernel", 1)
    sh, sw = _spatial(node, "stride", 1)
    ph, pw = _spatial(node, "padding", 0)
    dh, dw = _spatial(node, "dilation", 1) if node["op"].startswith("conv") else (1, 1)
    if node["op"].endswith("1d"):
        kh = sh = dh = 1
        ph = 0
    return dict(k_h=kh, k_w=kw, s_h=sh, s_w=sw, p_h=ph, p_w=pw, d_h=dh, d_w=dw)


def direct_conv(node: dict, encs: list, in_shape: list[int], out_shape: list[int]) -> dict | None:
    """How a conv layer runs direct, or None (im2col): `offsets` (column -> element offset of the
    input sample in the window read, uint16), `chunk` (output positions per kernel call) and
    `pad_bytes` (the zero-padded copy of one group's input; 0 when the layer does not pad)."""
    if not node["op"].startswith("conv") or not all(formats.supports_direct(e.format) for e in encs):
        return None
    w = _window(node)
    groups = int(node.get("groups", 1) or 1)
    in_c, in_h, in_w = _shape3(in_shape)
    cg = in_c // groups
    padded = bool(w["p_h"] or w["p_w"])
    xh, xw = in_h + 2 * w["p_h"], in_w + 2 * w["p_w"]
    c, ky, kx = np.unravel_index(np.arange(cg * w["k_h"] * w["k_w"]), (cg, w["k_h"], w["k_w"]))
    offsets = c * xh * xw + ky * w["d_h"] * xw + kx * w["d_w"]
    if int(offsets.max()) > 0xFFFF or cg * xh * xw > 0x7FFF:
        return None  # offsets must be uint16 and the window's input addressable with 16-bit pointers
    rows, out_w = out_shape[0] // groups, _shape3(out_shape)[2]
    chunk = max(1, min(out_w, DIRECT_ACC_BYTES // (4 * rows)))
    return {"offsets": offsets.astype(np.uint16), "chunk": chunk,
            "pad_bytes": 2 * cg * xh * xw if padded else 0}


def direct_scratch(low: Lowered, directs: dict) -> None:
    """Direct convolutions need no patch, an accumulator per chunk of positions, and maybe a padded copy."""
    for st in low.steps:
        dc = directs.get(st.name)
        if dc is not None:
            st.scratch.pop("patch", None)
            st.scratch["acc"] *= dc["chunk"]
            if dc["pad_bytes"]:
                st.scratch["pad"] = dc["pad_bytes"]


def lower_layers(qm: QModel, *, fmt="auto", format_opts: dict | None = None, conv: str = "auto",
                 in_place: bool = True, conv_in_place: bool = True) -> tuple[Lowered, list[LayerPlan]]:
    """The planner's steps (scratch sizes final: direct convolutions adjusted) and a LayerPlan each.
    conv_in_place (with in_place): pointwise/depthwise convolutions write over their input (inplace.py)."""
    low = lower(qm, in_place=in_place)
    encoded = {st.name: encode_layer(qm, st.name, fmt, format_opts) for st in low.steps
               if st.op in ("conv", "linear")}
    directs = {}
    for st in low.steps:
        mode = conv.get(st.name, conv.get("*", "auto")) if isinstance(conv, dict) else conv  # per layer: choose.py
        dc = None if st.op != "conv" or mode == "im2col" else \
            direct_conv(st.node, encoded[st.name], low.shapes[st.inputs[0]], low.shapes[st.output])
        if dc is not None:
            directs[st.name] = dc
    direct_scratch(low, directs)
    placed = inplace.conv_in_place(low, directs) if in_place and conv_in_place else {}
    taken: set[str] = set()
    layers = [_layer_plan(qm, low, i, st, taken, encoded.get(st.name, []), directs.get(st.name))
              for i, st in enumerate(low.steps, 1)]
    for lp in layers:
        lp.in_place = placed.get(lp.name)
    return low, layers


def _layer_plan(qm: QModel, low: Lowered, i: int, st: Step, taken: set[str], encs: list,
                dc: dict | None) -> LayerPlan:
    node = st.node
    ident = c_ident(st.name, taken)
    if ident.lower().startswith("sn_"):   # a layer name never becomes a runtime name
        ident = c_ident("l_" + ident, taken)
    lp = LayerPlan(i, st, ident, _shape3(low.shapes[st.inputs[0]]), _shape3(low.shapes[st.output]),
                   dict(k_h=1, k_w=1, s_h=1, s_w=1, p_h=0, p_w=0, d_h=1, d_w=1), encs=encs, direct=dc)
    text = f"{st.name}: {node['op']}"
    if st.op in ("conv", "maxpool", "avgpool"):
        w = lp.window = _window(node)
        text += (f" k{w['k_h']}x{w['k_w']} s{w['s_h']}x{w['s_w']} p{w['p_h']}x{w['p_w']}"
                 + (f" d{w['d_h']}x{w['d_w']}" if (w["d_h"], w["d_w"]) != (1, 1) else ""))
    text += f", {low.shapes[st.inputs[0]]} -> {low.shapes[st.output]}"
    if st.relu:
        text += f" + {'relu' if st.relu_max is None else f'relu6 (clamp {st.relu_max})'} (fused: " + \
            ", ".join(st.fused) + ")"
    if dc is not None:
        text += f"; direct, {dc['chunk']} positions per call"
    lm = {"step": i, "op": st.op, "graph_op": node["op"], "inputs": st.inputs, "output": st.output,
          "fused": st.fused, "output_exp": qm.exps[st.name]}
    if st.op in ("conv", "linear"):
        text += _matmul_plan(qm, lp, lm)
    elif st.op in ("avgpool", "gavgpool"):
        n = lp.window["k_h"] * lp.window["k_w"] if st.op == "avgpool" else lp.in_chw[1] * lp.in_chw[2]
        lp.mul, lp.shift0 = avg_params(int(n))
        text += f"; window {n}: (sum * {lp.mul}) >> {lp.shift0}"
    elif st.op == "add":
        e_y = qm.exps[st.name]
        lp.shift0 = add_shift(qm.exps[node["inputs"][0]], e_y)
        lp.shift1 = add_shift(qm.exps[node["inputs"][1]], e_y)
        text += f"; align shifts {lp.shift0}, {lp.shift1}"
    lp.summary = text + f"; out exponent {qm.exps[st.name]}"
    lp.meta = lm
    return lp


def _matmul_plan(qm: QModel, lp: LayerPlan, lm: dict) -> str:
    """Shift, groups and the per-level accounting of a conv/linear step; returns its comment part."""
    q, node, L = qm.layers[lp.name], lp.step.node, qm.n_levels
    lp.groups = int(node.get("groups", 1) or 1)
    lp.shift0 = q.shift
    by_part = {"values": 0, "indices": 0, "metadata": 0}
    nnz = [0] * L
    for enc in lp.encs:
        for k, b in enc.bytes_by_part.items():
            by_part[k] += b
        for lv in range(1, L + 1):
            nnz[lv - 1] += enc.nnz(lv)
    fmts = sorted({e.format for e in lp.encs})
    if lp.op == "conv":
        lm.update(conv="direct" if lp.direct else "im2col", chunk=lp.direct["chunk"] if lp.direct else 0)
    # output positions, C kernel invocations per inference (cost.count_features: a direct conv decodes per call)
    _, out_h, out_w = lp.out_chw
    lm["positions"] = out_h * out_w if lp.op == "conv" else 1
    lm["kernel_calls"] = lp.groups * (1 if lp.op != "conv" else
                                      out_h * (-(-out_w // lp.direct["chunk"]) if lp.direct else out_w))
    lm.update(format=fmts[0] if len(fmts) == 1 else fmts, groups=lp.groups, rows=q.rows, cols=q.cols,
              nnz=nnz, bytes_by_part=by_part, weight_bytes=sum(by_part.values()),
              bias_bytes=int(q.bias_q.astype(np.int32).nbytes), e_w=q.e_w, shift=q.shift,
              candidates=lp.encs[0].candidates if lp.groups == 1 else {},
              kernel_counts={str(lv): {k: sum(e.kernel_counts(lv)[k] for e in lp.encs)
                                       for k in ("macs", "weight_bytes_read")}
                             for lv in range(1, L + 1)})
    return (f"; weights {q.rows}x{q.cols}" + (f" in {lp.groups} groups" if lp.groups > 1 else "") +
            f", format {'/'.join(fmts)}, nnz per level " +
            " / ".join(f"L{k + 1} {n}" for k, n in enumerate(nnz)) +
            f" of {q.rows * q.cols}; bytes values {by_part['values']}, indices "
            f"{by_part['indices']}, metadata {by_part['metadata']}; e_w {q.e_w}, shift {q.shift}")


def maxpool_2x2(lp: LayerPlan) -> bool:
    """A max-pool sn_op_pool.c runs on its dedicated 2x2 loop (its C test, less the output-in-FRAM hook)."""
    w, (_, in_h, in_w), (_, out_h, out_w) = lp.window, lp.in_chw, lp.out_chw
    return ((w["k_h"], w["k_w"], w["s_h"], w["s_w"], w["p_h"], w["p_w"]) == (2, 2, 2, 2, 0, 0)
            and in_h >= 2 * out_h and in_w >= 2 * out_w)


def pool_paths(layers: list[LayerPlan], out_hooked) -> dict:
    """model.h's pool switches: avgpool layers, and max-pools that need the generic loop (not 2x2, or
    an output written through the FRAM hook: `out_hooked(lp)`), so an image links only the loops it runs."""
    pools = [lp for lp in layers if lp.op in ("maxpool", "avgpool", "gavgpool")]
    return {"avgpools": sum(lp.op != "maxpool" for lp in pools),
            "generic_maxpools": sum(lp.op == "maxpool" and (not maxpool_2x2(lp) or out_hooked(lp)) for lp in pools)}


def direct_paths(layers: list[LayerPlan], out_hooked) -> dict:
    """model.h's switch for the direct convolutions' accumulator path: layers the kernel cannot finish
    itself (sn_conv_sink_t: requantise shift outside 1..15, an output written through the FRAM hook, or
    a pointwise conv over its own input, whose later rows still read the channels a sink would have
    overwritten) get the bias pass and the separate requantisation; an image without them links neither."""
    return {"direct_acc_convs": sum(lp.op == "conv" and lp.direct is not None and lp.lea is None
                                    and (not 1 <= lp.shift0 <= 15 or out_hooked(lp) or acc_only(lp))
                                    for lp in layers)}


def acc_only(lp: LayerPlan) -> bool:
    """A direct conv that must finish its rows in the accumulator (SN_OUT_ACC): see direct_paths."""
    return lp.in_place == "pointwise" and lp.out_chw[0] > 1
