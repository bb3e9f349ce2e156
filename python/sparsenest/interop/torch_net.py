"""Layer graph -> torch nn.Module: a bundle's network rebuilt from its stored graph, with no model zoo.

Imported models (TFLite, ONNX) have no Python class; `GraphNet` runs the graph with one nn.Conv1d /
nn.Conv2d / nn.Linear per weighted node, so `prune`/`nested` train it like any zoo model, and its
state_dict keys are the graph's weight/bias keys. Weight keys are `<module>.weight`; the module path
(dots kept) is recovered from the key, so a graph extracted from a zoo model rebuilds too.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..train.graph import UnsupportedLayerError

WEIGHTED = ("conv1d", "conv2d", "linear")


def _module_path(node: dict) -> str:
    key = node["weight"]
    if not key.endswith(".weight"):
        raise UnsupportedLayerError(f"node '{node['name']}': weight key {key!r} does not end in '.weight'")
    bias = node.get("bias")
    if bias and bias != key[:-len("weight")] + "bias":
        raise UnsupportedLayerError(f"node '{node['name']}': bias key {bias!r} does not match {key!r}")
    return key[:-len(".weight")]


def _make_layer(node: dict, w: np.ndarray, has_bias: bool) -> nn.Module:
    op = node["op"]
    if op == "linear":
        return nn.Linear(w.shape[1], w.shape[0], bias=has_bias)
    cls = nn.Conv1d if op == "conv1d" else nn.Conv2d
    g = int(node.get("groups", 1))
    return cls(w.shape[1] * g, w.shape[0], tuple(w.shape[2:]), stride=tuple(node["stride"]),
               padding=tuple(node["padding"]), dilation=tuple(node["dilation"]), groups=g, bias=has_bias)


class GraphNet(nn.Module):
    """The float network of a layer graph (docs/architecture.md, "Layer graph")."""

    def __init__(self, graph: dict, weights: dict[str, np.ndarray]):
        super().__init__()
        self.graph = graph
        self._paths: dict[str, str] = {}
        root = nn.Module()
        for n in graph["nodes"]:
            if n["op"] not in WEIGHTED:
                continue
            path = _module_path(n)
            layer = _make_layer(n, np.asarray(weights[n["weight"]]), bool(n.get("bias")))
            parent = root
            *heads, leaf = path.split(".")
            for h in heads:  # nested names (a zoo graph's "features.0") become nested containers
                if not hasattr(parent, h):
                    parent.add_module(h, nn.Module())
                parent = getattr(parent, h)
            parent.add_module(leaf, layer)
            self._paths[n["name"]] = path
        for name, child in root.named_children():
            self.add_module(name, child)
        sd = {k: torch.from_numpy(np.array(v, np.float32)) for k, v in weights.items()
              if k in self.state_dict()}
        self.load_state_dict(sd, strict=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[self.graph["output"]]

    def run(self, x: torch.Tensor, fake_quant: dict | None = None) -> dict[str, torch.Tensor]:
        """Every node's output (name -> tensor) for batch x. fake_quant: node -> (scale, zero_point, lo, hi)
        rounds that node's output as an int8 interpreter would (to check an imported int8 model)."""
        g = self.graph
        fq = fake_quant or {}

        def q(name, t):
            if name not in fq:
                return t
            s, z, lo, hi = fq[name]
            return (torch.clamp(torch.round(t / s) + z, lo, hi) - z) * s
        vals = {g["input"]["name"]: q(g["input"]["name"], x)}
        for n in g["nodes"]:
            op, ins = n["op"], [vals[s] for s in n["inputs"]]
            if op in WEIGHTED:
                y = self.get_submodule(self._paths[n["name"]])(ins[0])
            elif op == "relu":
                y = F.relu(ins[0])
            elif op == "relu6":  # imported models only; the Q15 compiler has no relu6 (it says so)
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
                raise UnsupportedLayerError(f"node '{n['name']}': op '{op}' has no torch equivalent here")
            vals[n["name"]] = q(n["name"], y)
        return vals


def node_shapes(graph: dict, weights: dict[str, np.ndarray]) -> dict[str, list[int]]:
    """Output shape (no batch) of every node, by running the graph on one zero sample."""
    net = GraphNet(graph, weights).eval()
    with torch.no_grad():
        vals = net.run(torch.zeros(1, *graph["input"]["shape"]))
    return {k: list(v.shape[1:]) for k, v in vals.items()}


def bundle_network(bundle, level: int | None = None) -> nn.Module:
    """A bundle's float network at `level` (None: the union of all levels), rebuilt from its graph."""
    w = bundle.weights if level is None else bundle.level_weights(level)
    return GraphNet(bundle.graph, w).eval()
