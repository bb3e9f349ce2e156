"""Your own model: `sparsenest train --model path/to/file.py:ClassName`.

The file is the user's own code, run with importlib from the path they gave (as `python file.py` would).
The class is built with the keyword arguments its constructor accepts out of `num_classes` and
`in_channels` (taken from the data set), so `class Net(nn.Module): def __init__(self, num_classes=10)` works
as is. Bundles of such models rebuild their network from the stored layer graph (interop/torch_net.py):
export, compile, simulate and report never import the file again.
"""
from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from pathlib import Path

import torch.nn as nn

SPEC = re.compile(r"(?P<path>.+\.py):(?P<cls>[A-Za-z_][A-Za-z0-9_]*)")


def is_user_model(spec: str) -> bool:
    """A `file.py:ClassName` spec (anything else is a zoo name)."""
    return bool(SPEC.fullmatch(spec))


def load_class(spec: str) -> type:
    """The nn.Module subclass `ClassName` of `path/to/file.py:ClassName`; ValueError (one line) otherwise."""
    m = SPEC.fullmatch(spec)
    if not m:
        raise ValueError(f"--model {spec!r}: give a zoo name or path/to/file.py:ClassName")
    path = Path(m["path"])
    if not path.is_file():
        raise FileNotFoundError(f"--model {spec!r}: {path} is not a file; give path/to/file.py:ClassName")
    module_name = "sparsenest_user_" + re.sub(r"\W", "_", path.stem)
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module   # dataclasses and pickling look classes up by module name
    try:
        loader_spec.loader.exec_module(module)
    except Exception as e:  # the user's code: say where it failed, in one line
        sys.modules.pop(module_name, None)
        raise ValueError(f"--model {spec!r}: importing {path} failed: {type(e).__name__}: {e}") from e
    modules = sorted(k for k, v in vars(module).items() if isinstance(v, type) and issubclass(v, nn.Module)
                     and v.__module__ == module_name)
    cls = getattr(module, m["cls"], None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        from ..suggest import did_you_mean
        raise ValueError(f"--model {spec!r}: {path} defines no nn.Module class {m['cls']!r}"
                         f"{did_you_mean(m['cls'], modules)} (its nn.Module classes: {', '.join(modules) or 'none'})")
    return cls


def create(spec: str, **available) -> nn.Module:
    """An instance of the user's class, given the constructor arguments it accepts out of `available`."""
    cls = load_class(spec)
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in available.items() if takes_any or k in params}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ValueError(f"--model {spec!r}: {cls.__name__}({', '.join(f'{k}={v}' for k, v in kwargs.items())}) "
                         f"failed: {e}; give its other arguments defaults") from None
