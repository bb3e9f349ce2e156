"""Fold BatchNorm into the convolution / linear layer that feeds it, so the compiler never sees BN.

    folded = fold_batchnorm(model)          # a copy; BN modules become nn.Identity (skipped by the graph)
    extract_graph(folded, input_shape)      # now only conv/linear/relu/pool/add

For eval-mode BN  y = gamma * (z - mean) / sqrt(var + eps) + beta  after  z = W x + b:
    W' = W * s  (per output channel),  b' = (b - mean) * s + beta,  s = gamma / sqrt(var + eps).
Zeros of W stay zeros, so pruning masks / introducing levels survive folding unchanged. The folded model
computes the same function as the original in eval mode (running statistics), up to float rounding.

Fold before pruning/nested training: the levels of a nested model share one weight tensor, and BN
statistics differ per level, so a BN kept through nested training could only be folded for one level.
"""
from __future__ import annotations

import copy

import torch
import torch.fx as fx
import torch.nn as nn

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
_FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Linear)


class FoldError(ValueError):
    """A BatchNorm cannot be folded (not directly after a conv/linear used only by it, or no stats)."""


def _set_module(root: nn.Module, target: str, new: nn.Module) -> None:
    parent_name, _, name = target.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, name, new)


@torch.no_grad()
def fold_into(layer: nn.Module, bn: nn.Module) -> None:
    """Fold eval-mode `bn` into `layer` (Conv1d/Conv2d/Linear) in place, adding a bias if it had none."""
    if bn.running_mean is None or bn.running_var is None:
        raise FoldError(f"{bn}: no running statistics (track_running_stats=False); cannot fold")
    out = layer.weight.shape[0]
    if bn.num_features != out:
        raise FoldError(f"{bn} has {bn.num_features} features but {layer} has {out} outputs")
    w = layer.weight
    dtype = w.dtype
    mean, var = bn.running_mean.double(), bn.running_var.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(mean)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + bn.eps)
    bias = layer.bias.double() if layer.bias is not None else torch.zeros_like(mean)
    new_w = (w.double() * scale.reshape(-1, *([1] * (w.dim() - 1)))).to(dtype)
    new_b = ((bias - mean) * scale + beta).to(dtype)
    layer.weight.copy_(new_w)
    if layer.bias is None:
        layer.bias = nn.Parameter(new_b)
    else:
        layer.bias.copy_(new_b)


def fold_batchnorm(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Return `model` (a copy unless `inplace`) in eval mode with every BatchNorm1d/2d folded into the
    Conv1d/Conv2d/Linear that directly precedes it; the BN modules are replaced by nn.Identity.

    Raises FoldError naming the BN when its input is not such a layer, or that layer's output is also
    used elsewhere (folding would change the other use)."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    if not any(isinstance(m, _BN) for m in model.modules()):
        return model
    try:
        gm = fx.symbolic_trace(model)
    except Exception as e:
        raise FoldError(f"cannot trace {type(model).__name__} with torch.fx to find BatchNorm inputs: {e}") \
            from e
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for n in gm.graph.nodes:
        if n.op == "call_module":
            calls[n.target] = calls.get(n.target, 0) + 1
    seen_bn: dict[str, str] = {}
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), _BN):
            continue
        bn_name = node.target
        if calls[bn_name] > 1:
            raise FoldError(f"BatchNorm '{bn_name}' is called more than once; cannot fold")
        prev = node.args[0] if node.args else None
        if not (isinstance(prev, fx.Node) and prev.op == "call_module"
                and isinstance(modules.get(prev.target), _FOLDABLE)):
            raise FoldError(f"BatchNorm '{bn_name}' does not directly follow a Conv1d/Conv2d/Linear; "
                            "put it right after one or remove it")
        if len(prev.users) != 1:
            raise FoldError(f"the output of '{prev.target}' feeds BatchNorm '{bn_name}' and other "
                            "operations; folding would change them")
        if calls[prev.target] > 1:
            raise FoldError(f"layer '{prev.target}' is called more than once; cannot fold '{bn_name}'")
        fold_into(modules[prev.target], modules[bn_name])
        seen_bn[bn_name] = prev.target
    for bn_name in seen_bn:
        _set_module(model, bn_name, nn.Identity())
    return model
