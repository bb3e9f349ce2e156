"""Export each level of a bundle to ONNX (dense tensors with the level's zeros)."""
from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import torch

from .. import models
from ..bundle import Bundle


def rebuild_model(bundle: Bundle, level: int | None = None) -> torch.nn.Module:
    spec = bundle.manifest["model"]
    if spec["name"] == "graph" or spec["name"] not in models.available():
        # imported, a user's own class, or a zoo name this install lacks: rebuilt from the stored graph
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
    with _quiet_exporter():
        torch.onnx.export(net, (example,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, verbose=False,
                          external_data=False)   # one self-contained .onnx (models here are small)
    return path


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter's notes that concern neither us nor the user: a line per torchvision op it cannot
    register (torchvision is not a dependency) and a FutureWarning of torch's own pytree use."""
    log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec.*")
            yield
    finally:
        log.setLevel(level)
