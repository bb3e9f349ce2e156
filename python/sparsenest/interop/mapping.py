"""Shared by the TFLite and ONNX importers: build a layer graph + float weights, write it as a bundle.

Importers translate their ops into calls on `GraphBuilder` (all tensors already in torch layout:
NCHW activations, OIHW weights). The builder names nodes itself (`conv0`, `dw1`, `fc9`, ...): text from
a model file never becomes a graph name, so it never reaches generated C; the source's tensor names are
kept only as data in the manifest (`source.tensor_names`).

Asymmetric padding (TFLite/ONNX "SAME" with a stride, e.g. 4 rows above and 5 below) has no graph
form: the graph's convolutions pad both sides equally. It is mapped exactly by padding the kernel
instead: `d` zero taps in front of the kernel and `pad_before + d` on both sides give the same window
positions and the same output size (`d` = pad_after - pad_before). The added taps are zero and the
imported bundle records them as never kept (intro 0), so they cost nothing in the sparse formats.
`train --from` derives fresh masks: a dense enough level may keep and train them (the network then has
a taller kernel, which the compiler and the TFLite export, through an explicit PAD, handle as any other).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..bundle import Bundle

ACTIVATIONS = ("relu", "relu6")


class UnsupportedOpError(ValueError):
    """The source model uses something the layer graph cannot express (message names op and tensor)."""


def same_pads(size: int, k: int, s: int, d: int, upper: bool = True) -> tuple[int, int]:
    """(before, after) padding of TensorFlow/ONNX "SAME" (SAME_UPPER puts the odd pixel after)."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    small, big = total // 2, total - total // 2
    return (small, big) if upper else (big, small)


class GraphBuilder:
    def __init__(self, source: str):
        self.source = source
        self.nodes: list[dict] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.never_kept: dict[str, np.ndarray] = {}   # weight key -> bool mask of structural zeros
        self.tensor_names: dict[str, str] = {}        # graph value -> source tensor name
        self.input_name = "x"
        self.input_shape: list[int] = []
        self._count = 0

    # -- values -----------------------------------------------------------------------------
    def set_input(self, shape: list[int], source_name: str = "") -> str:
        self.input_shape = [int(s) for s in shape]
        self.tensor_names[self.input_name] = source_name
        return self.input_name

    def _add(self, prefix: str, rec: dict, source_name: str) -> str:
        name = f"{prefix}{self._count}"
        self._count += 1
        self.nodes.append({"name": name, **rec})
        self.tensor_names[name] = source_name
        return name

    # -- ops --------------------------------------------------------------------------------
    def conv(self, x: str, w: np.ndarray, b: np.ndarray | None, *, stride, pad_before, pad_after,
             dilation, groups: int = 1, source_name: str = "", prefix: str = "conv") -> str:
        """w: [O, I/groups, *k] float; pads per spatial dim (may differ before/after)."""
        w = np.asarray(w, np.float32)
        n = w.ndim - 2
        if n not in (1, 2):
            raise UnsupportedOpError(f"{self.source}: tensor '{source_name}': only 1-D and 2-D convolutions are "
                               f"supported (weight has {n} spatial dims)")
        structural = np.zeros(w.shape, bool)
        pads = []
        for d in range(n):
            pb, pa = int(pad_before[d]), int(pad_after[d])
            if pa < pb:
                raise UnsupportedOpError(f"{self.source}: tensor '{source_name}': padding {pb} before / {pa} after "
                                   "(more before than after) is not supported")
            extra = pa - pb
            if extra:
                if int(dilation[d]) != 1:
                    raise UnsupportedOpError(f"{self.source}: tensor '{source_name}': asymmetric padding with "
                                       "dilation is not supported")
                widths = [(0, 0)] * w.ndim
                widths[2 + d] = (extra, 0)
                w = np.pad(w, widths)
                structural = np.pad(structural, widths, constant_values=True)
            pads.append(pa)
        key = f"layer{self._count}"
        self.arrays[f"{key}.weight"] = w
        if b is not None:
            self.arrays[f"{key}.bias"] = np.asarray(b, np.float32)
        if structural.any():
            self.never_kept[f"{key}.weight"] = structural
        rec = {"op": f"conv{n}d", "inputs": [x], "weight": f"{key}.weight",
               "bias": f"{key}.bias" if b is not None else None, "stride": [int(s) for s in stride],
               "padding": pads, "dilation": [int(d) for d in dilation], "groups": int(groups),
               "kernel": list(w.shape[2:])}
        return self._add(prefix, rec, source_name)

    def linear(self, x: str, w: np.ndarray, b: np.ndarray | None, source_name: str = "") -> str:
        key = f"layer{self._count}"
        self.arrays[f"{key}.weight"] = np.asarray(w, np.float32)
        if b is not None:
            self.arrays[f"{key}.bias"] = np.asarray(b, np.float32)
        rec = {"op": "linear", "inputs": [x], "weight": f"{key}.weight",
               "bias": f"{key}.bias" if b is not None else None}
        return self._add("fc", rec, source_name)

    def activation(self, x: str, kind: str | None, source_name: str = "") -> str:
        if kind is None:
            return x
        if kind not in ACTIVATIONS:
            raise UnsupportedOpError(f"{self.source}: tensor '{source_name}': activation {kind} is not supported")
        return self._add(kind, {"op": kind, "inputs": [x]}, source_name)

    def pool(self, x: str, kind: str, kernel, stride, padding, source_name: str = "") -> str:
        n = len(kernel)
        rec = {"op": f"{kind}pool{n}d", "inputs": [x], "kernel": [int(k) for k in kernel],
               "stride": [int(s) for s in stride], "padding": [int(p) for p in padding]}
        return self._add(f"{kind}pool", rec, source_name)

    def global_avgpool(self, x: str, source_name: str = "") -> str:
        return self._add("gap", {"op": "global_avgpool", "inputs": [x]}, source_name)

    def flatten(self, x: str, source_name: str = "") -> str:
        return self._add("flatten", {"op": "flatten", "inputs": [x]}, source_name)

    def add(self, a: str, b: str, source_name: str = "") -> str:
        return self._add("add", {"op": "add", "inputs": [a, b]}, source_name)

    def is_flat(self, value: str) -> bool:
        """Whether a graph value is [N, features] (no spatial dims), following element-wise ops back."""
        if value == self.input_name:
            return len(self.input_shape) == 1
        rec = next(n for n in self.nodes if n["name"] == value)
        if rec["op"] in ("linear", "global_avgpool", "flatten"):
            return True
        return rec["op"] in ("relu", "relu6", "add") and self.is_flat(rec["inputs"][0])

    # -- result -----------------------------------------------------------------------------
    def graph(self, output: str) -> dict:
        from .torch_net import node_shapes
        g = {"input": {"name": self.input_name, "shape": list(self.input_shape)},
             "nodes": [dict(n) for n in self.nodes], "output": output}
        shapes = node_shapes(g, self.arrays)
        for n in g["nodes"]:
            n["shape"] = shapes[n["name"]]
        return g

    def bundle(self, output: str, *, source: dict, dataset: dict | None = None) -> Bundle:
        """One level, sparsity = the model's own zeros (intro 1 for every weight but structural zeros)."""
        from .torch_net import GraphNet
        g = self.graph(output)
        net = GraphNet(g, self.arrays)
        intro = {}
        for n in g["nodes"]:
            if n["op"] in ("conv1d", "conv2d", "linear"):
                k = n["weight"]
                intro[k] = np.where(self.never_kept.get(k, np.zeros(self.arrays[k].shape, bool)), 0, 1
                                    ).astype(np.uint8)
        total = sum(a.size for a in intro.values())
        zeros = sum(int((self.arrays[k][intro[k] == 1] == 0).sum()) + int((intro[k] == 0).sum())
                    for k in intro)
        out_shape = g["nodes"][-1]["shape"] if g["nodes"] else self.input_shape
        ds = dataset or {}
        ds = {"name": ds.get("name"), "split": ds.get("split"), "sha256": ds.get("sha256"),
              "num_classes": int(np.prod(out_shape)), "input_shape": list(self.input_shape),
              "note": ds.get("note", "imported model: no training data recorded")}
        source = dict(source, tensor_names=self.tensor_names)
        b = Bundle.from_model(
            net, intro, graph=g,
            levels=[{"level": 1, "target_sparsity": 0.0, "sparsity": round(zeros / max(total, 1), 6),
                     "float_accuracy": None}],
            prune={"method": "none", "mode": "imported", "scope": None},
            dataset=ds, train_config={}, model_spec={"name": "graph", "kwargs": {}})
        b.manifest["source"] = source
        return b


def file_identity(path: Path) -> dict:
    data = Path(path).read_bytes()
    return {"file": Path(path).name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
