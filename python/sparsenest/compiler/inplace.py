"""Convolutions that write over their own input: one activation map less where it matters.

A depthwise-separable network (the MLPerf DS-CNN) alternates depthwise 3x3 and pointwise 1x1
convolutions on maps of one size (64x25x5 int16: 16,000 bytes). With a fresh output buffer per step two
such maps are live at every step, 32,000 bytes that spill to FRAM on the FR5994; in place, one is.
Two kinds of convolution are safe in place with the CPU kernels of runtime_c/src/sn_op_conv.c:

* pointwise (every kernel extent 1, stride 1, no padding, one group): output position p reads only
  input position p, and both paths (im2col: one position; direct: a chunk of positions) finish reading
  a position's channels before they write its outputs, and later positions never read earlier ones;
* depthwise (groups = input = output channels, stride 1) run direct with a padded copy: the group's
  input channel is copied into the padded buffer before any of its outputs is written, and no other
  group reads that channel. (Without the copy, or through im2col, a window would read outputs already
  written, so those stay out of place.)

The step's input must die there (no later step reads it) and have the output's shape. Intermittent
builds lower with in_place=False and never call this: a re-run unit must read unchanged inputs. A
back-end whose convolution writes a whole output channel before it reads the next input channel must
not run these steps in place either (pass conv_in_place=False to codegen_lower.lower_layers).
"""
from __future__ import annotations

from .planner import Lowered


def _all(v, value: int) -> bool:
    return all(int(x) == value for x in (v or [value]))


def in_place_kind(node: dict, in_shape: list[int], out_shape: list[int], direct: dict | None) -> str | None:
    """'pointwise' / 'depthwise' when this conv step may write over its input, else None."""
    if not node["op"].startswith("conv") or list(in_shape) != list(out_shape):
        return None
    groups = int(node.get("groups", 1) or 1)
    if not _all(node.get("stride"), 1) or not _all(node.get("dilation"), 1):
        return None
    if groups == 1 and _all(node.get("kernel"), 1) and _all(node.get("padding"), 0):
        return "pointwise"
    if groups == in_shape[0] == out_shape[0] and direct is not None and \
            (direct["pad_bytes"] or (_all(node.get("kernel"), 1) and _all(node.get("padding"), 0))):
        return "depthwise"
    return None


def conv_in_place(low: Lowered, directs: dict) -> dict[str, str]:
    """Rewrite `low` so that safe convolutions write over their dying input; returns step -> kind."""
    done = {}
    for i, st in enumerate(low.steps):
        if st.op != "conv":
            continue
        src, old = st.inputs[0], st.output
        later = {t for s in low.steps[i + 1:] for t in s.inputs}
        if src == low.input or src in later or src == low.output or old == src:
            continue
        kind = in_place_kind(st.node, low.shapes[src], low.shapes[old], directs.get(st.name))
        if kind is None:
            continue
        del low.tensors[old]
        st.output = src
        for s in low.steps[i + 1:]:  # readers, and in-place steps (ReLU) that write it again
            s.inputs = [src if t == old else t for t in s.inputs]
            s.output = src if s.output == old else s.output
        for k, v in low.alias.items():
            if v == old:
                low.alias[k] = src
        if low.output == old:
            low.output = src
        done[st.name] = kind
    return done
