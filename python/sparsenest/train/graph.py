"""Model -> layer graph: the compiler's view of a network, written into every bundle.

torch.fx traces the model; each node becomes one JSON-able record (see docs/architecture.md, "Layer
graph"). The compiler never needs the model's Python class, only this graph and the state_dict.
"""
from __future__ import annotations

import operator

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp


class UnsupportedLayerError(ValueError):
    """The model uses an operation the compiler cannot lower."""


def _pair(v, n):
    if isinstance(v, (tuple, list)):
        return [int(i) for i in v]
    return [int(v)] * n


def _module_record(mod: nn.Module, target: str) -> dict:
    if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
        n = 1 if isinstance(mod, nn.Conv1d) else 2
        if isinstance(mod.padding, str) or mod.padding_mode != "zeros":
            raise UnsupportedLayerError(
                f"layer '{target}': padding={mod.padding!r}, padding_mode={mod.padding_mode!r}; only "
                "explicit zero padding is supported (write padding as integers)")
        return {"op": f"conv{n}d", "weight": f"{target}.weight",
                "bias": f"{target}.bias" if mod.bias is not None else None,
                "stride": _pair(mod.stride, n), "padding": _pair(mod.padding, n),
                "dilation": _pair(mod.dilation, n), "groups": int(mod.groups),
                "kernel": _pair(mod.kernel_size, n)}
    if isinstance(mod, nn.Linear):
        return {"op": "linear", "weight": f"{target}.weight",
                "bias": f"{target}.bias" if mod.bias is not None else None}
    if isinstance(mod, nn.ReLU):
        return {"op": "relu"}
    if isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
        n = 1 if isinstance(mod, (nn.MaxPool1d, nn.AvgPool1d)) else 2
        kind = "maxpool" if isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d)) else "avgpool"
        if getattr(mod, "ceil_mode", False) or (kind == "maxpool" and _pair(mod.dilation, n) != [1] * n):
            raise UnsupportedLayerError(f"layer '{target}': ceil_mode/dilation pooling is not supported")
        if kind == "avgpool" and _pair(mod.padding, n) != [0] * n:
            raise UnsupportedLayerError(f"layer '{target}': padded average pooling is not supported")
        stride = mod.stride if mod.stride is not None else mod.kernel_size
        return {"op": f"{kind}{n}d", "kernel": _pair(mod.kernel_size, n), "stride": _pair(stride, n),
                "padding": _pair(mod.padding, n)}
    if isinstance(mod, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        if _pair(mod.output_size, 1 if isinstance(mod, nn.AdaptiveAvgPool1d) else 2) not in ([1], [1, 1]):
            raise UnsupportedLayerError(f"layer '{target}': only adaptive pooling to size 1 is supported")
        return {"op": "global_avgpool"}
    if isinstance(mod, nn.Flatten):
        return {"op": "flatten"}
    if isinstance(mod, (nn.Dropout, nn.Identity)):
        return {"op": "identity"}
    raise UnsupportedLayerError(
        f"layer '{target}' ({type(mod).__name__}) is not supported by the compiler. Supported: Conv1d, "
        "Conv2d, Linear, ReLU, MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool(1), Flatten, Dropout, +. "
        "Fold BatchNorm into the preceding convolution before compiling.")


_FUNCTIONS = {torch.relu: "relu", F.relu: "relu", torch.flatten: "flatten",
              operator.add: "add", torch.add: "add"}
_METHODS = {"relu": "relu", "flatten": "flatten", "view": "flatten", "reshape": "flatten", "add": "add"}


def extract_graph(model: nn.Module, input_shape: tuple[int, ...]) -> dict:
    """Trace `model` on one sample of `input_shape` (no batch dim) and return its layer graph."""
    model = model.eval()
    try:
        gm = fx.symbolic_trace(model)
    except Exception as e:  # fx raises many kinds; the user needs to know tracing is the problem
        raise UnsupportedLayerError(f"cannot trace {type(model).__name__} with torch.fx: {e}") from e
    ShapeProp(gm).propagate(torch.zeros(1, *input_shape))
    modules = dict(gm.named_modules())
    nodes, alias = [], {}
    input_name = "x"
    shapes = {}

    def src(n: fx.Node) -> str:
        return alias.get(n.name, n.name)

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            input_name = node.name
            shapes[input_name] = list(input_shape)
            continue
        if node.op == "output":
            out = node.args[0]
            if not isinstance(out, fx.Node):
                raise UnsupportedLayerError("the model must return a single tensor")
            output = src(out)
            continue
        if node.op == "call_module":
            rec = _module_record(modules[node.target], node.target)
            name = node.target.replace(".", "_")
            if name[:1].isdigit():  # nn.Sequential children are "0", "1": node names are C-safe
                name = "_" + name
        elif node.op == "call_function" and node.target in _FUNCTIONS:
            rec, name = {"op": _FUNCTIONS[node.target]}, node.name
        elif node.op == "call_method" and node.target in _METHODS:
            rec, name = {"op": _METHODS[node.target]}, node.name
        else:
            raise UnsupportedLayerError(
                f"operation '{node.name}' ({node.op} {getattr(node.target, '__name__', node.target)}) is "
                "not supported by the compiler")
        tensor_args = [a for a in node.args if isinstance(a, fx.Node)]
        shape = list(node.meta["tensor_meta"].shape[1:])
        if rec["op"] == "global_avgpool":
            shape = shape[:1]  # [C]: the trailing 1s carry no data
        if rec["op"] == "flatten":
            in_shape = tensor_args[0].meta["tensor_meta"].shape
            if len(shape) != 1 or node.meta["tensor_meta"].shape[0] != in_shape[0]:
                raise UnsupportedLayerError(f"'{node.name}': only flattening to [batch, N] is supported")
        if rec["op"] == "add" and len(tensor_args) != 2:
            raise UnsupportedLayerError(f"'{node.name}': add needs two tensors (adding a constant is "
                                        "not supported)")
        if rec["op"] == "identity" or (rec["op"] == "flatten" and shapes[src(tensor_args[0])] == shape):
            alias[node.name] = src(tensor_args[0])  # no data movement: skip the node
            continue
        alias[node.name] = name
        shapes[name] = shape
        nodes.append({"name": name, **rec, "inputs": [src(a) for a in tensor_args], "shape": shape})
    return {"input": {"name": input_name, "shape": list(input_shape)}, "nodes": nodes, "output": output}


def prunable_weight_keys(graph: dict) -> list[str]:
    """State-dict keys of the weights the compiler stores sparsely (every conv and linear weight)."""
    return [n["weight"] for n in graph["nodes"] if n["op"] in ("conv1d", "conv2d", "linear")]


# Ops through which a layer's output channels reach the next node unchanged as channels (each output
# channel depends on the same input channel only); flatten too when nothing spatial is left to merge.
_CHANNEL_WISE = ("relu", "add", "maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d", "global_avgpool")


def output_row_weights(graph: dict) -> list[str]:
    """Weights whose rows are the model's outputs (one row per class): the output node's weight, and any
    conv/linear that reaches the output only through channel-wise ops (relu, add, pooling, a flatten of a
    [C] or [C, 1, ...] tensor). Row or block pruning would delete a class with such a row."""
    nodes = {n["name"]: n for n in graph["nodes"]}
    shapes = {graph["input"]["name"]: graph["input"]["shape"], **{n["name"]: n["shape"] for n in graph["nodes"]}}
    out, seen, todo = [], set(), [graph["output"]]
    while todo:
        name = todo.pop()
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        n = nodes[name]
        if n.get("weight"):
            out.append(n["weight"])
        elif n["op"] in _CHANNEL_WISE or (n["op"] == "flatten" and all(
                int(d) == 1 for d in (shapes.get(n["inputs"][0]) or [0])[1:])):
            todo += list(n["inputs"])
    return sorted(out)
