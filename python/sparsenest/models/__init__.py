"""Model zoo: ordinary nn.Modules registered by name so bundles can record how to rebuild them.

A user's own nn.Module works everywhere a zoo model does (training, pruning, compiling); the registry
only lets `sparsenest train --model NAME` and bundles refer to a model by name.
"""
from __future__ import annotations

import importlib
from typing import Callable

import torch.nn as nn

_REGISTRY: dict[str, tuple[Callable[..., nn.Module], dict]] = {}


def register_model(name: str, **defaults):
    """Register a constructor; `defaults` (e.g. input_shape=(1, 28, 28)) document what it expects."""
    def deco(fn):
        _REGISTRY[name] = (fn, defaults)
        return fn
    return deco


def _import_zoo() -> None:
    for mod in ("lenet", "harnet", "okgnet", "squeezenext"):
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{mod}":
                raise


def available() -> list[str]:
    _import_zoo()
    return sorted(_REGISTRY)


def create(name: str, **kwargs) -> nn.Module:
    _import_zoo()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model '{name}'; known: {', '.join(available())}")
    fn, _ = _REGISTRY[name]
    return fn(**kwargs)


def defaults(name: str) -> dict:
    _import_zoo()
    return dict(_REGISTRY[name][1])
