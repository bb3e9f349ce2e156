"""sparsenest: nested shared-weight sparse models for energy-harvesting MCUs.

The Python API in one import (each name is loaded on first use, so `import sparsenest` stays light):
`train_to_bundle`, `TrainConfig`, `Bundle`, `compile_bundle` (with `calibration_inputs`,
`evaluation_set`), `HostSim`, `build_report`, `data`, `models`.
"""
__version__ = "0.1.0"

_API = {
    "train_to_bundle": "sparsenest.train.loop",
    "TrainConfig": "sparsenest.train.nested",
    "Bundle": "sparsenest.bundle",
    "compile_bundle": "sparsenest.compiler.build",
    "calibration_inputs": "sparsenest.data.calibration",
    "evaluation_set": "sparsenest.data.calibration",
    "HostSim": "sparsenest.targets.host",
    "build_report": "sparsenest.analysis.report",
}
__all__ = ["__version__", "data", "models", *_API]


def __getattr__(name: str):
    import importlib
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    if name in ("data", "models"):
        return importlib.import_module(f"sparsenest.{name}")
    raise AttributeError(f"module 'sparsenest' has no attribute {name!r}")
