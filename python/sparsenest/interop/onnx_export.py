"""Export each level of a bundle to ONNX (dense tensors with the level's zeros)."""
from __future__ import annotations

from pathlib import Path

import torch

from .. import models
from ..bundle import Bundle


def rebuild_model(bundle: Bundle, level: int | None = None) -> torch.nn.Module:
    spec = bundle.manifest["model"]
    if spec["name"] == "graph":  # imported/no zoo class: the network is rebuilt from the stored graph
        from .torch_net import bundle_network
        return bundle_network(bundle, level)
    net = models.create(spec["name"], **spec.get("kwargs", {}))
    return bundle.load_into(net, level).eval()


def export_level(bundle: Bundle, level: int, path: str | Path, model: torch.nn.Module | None = None) -> Path:
    """Write level `level` as ONNX. `model`: an instance of the bundle's architecture when it is not
    in the model registry (a user's own nn.Module)."""
    net = bundle.load_into(model, level).eval() if model is not None else rebuild_model(bundle, level)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, *bundle.graph["input"]["shape"])
    torch.onnx.export(net, (example,), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, verbose=False)
    return path
