"""Cycle-model calibration samples for the report: reading make bench-mcu's cycle_samples.json and turning
samples into CycleModel.calibrate input. The samples themselves are measured by analysis/calibration.py
(our FR5994 simulator on the chip image)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ...paths import PROJECT_ROOT
from ..cost import count_features
from .provenance import ReportError

#: make bench-mcu's output, used when present (absolute: the checkout's build/, or the working directory of
#: an installed copy, as paths.PROJECT_ROOT says).
DEFAULT_SAMPLES = (str(PROJECT_ROOT / "build" / "bench" / "mcu" / "cycle_samples.json"),)
SAMPLES_SCHEMA = "sparsenest-cycle-samples/1"


def load_samples(paths: Iterable[str | Path]) -> tuple[list[dict], list[str]]:
    """Samples of every cycle_samples.json given (make bench-mcu's schema); returns (samples, files read)."""
    out, files = [], []
    for p in paths:
        p = Path(p)
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ReportError(f"cannot read cycle samples {p}: {e}") from None
        if d.get("schema") != SAMPLES_SCHEMA:
            raise ReportError(f"{p}: schema {d.get('schema')!r}, expected {SAMPLES_SCHEMA!r} (written by "
                              f"`make bench-mcu` or by a previous report)")
        for s in d.get("samples", []):
            out.append(dict(s, file=str(p)))
        files.append(str(p))
    return out, files


#: Graph op assumed for a sample that names only the runtime op (make bench-mcu's samples: LeNet-family
#: networks, whose convolutions and pools are 2-D). This model's own samples carry "graph_op".
RUNTIME_TO_GRAPH_OP = {"conv": "conv2d", "maxpool": "maxpool2d", "avgpool": "avgpool2d", "gavgpool": "global_avgpool"}


def sample_key(s: Mapping) -> str:
    """Kernel key of a layer sample, "<graph op>/<format>" or "<graph op>" like cost.layers_from_build."""
    op = s.get("graph_op") or RUNTIME_TO_GRAPH_OP.get(s["op"], s["op"])
    return f"{op}/{s['format']}" if s.get("format") else op


def fit_samples(samples: Sequence[Mapping], kernels: str) -> list[dict]:
    """Layer samples of one kernel back-end as CycleModel.fit input."""
    out = []
    for s in samples:
        if s.get("source") != "layer" or s.get("kernels") != kernels or s.get("far"):
            continue
        c = s.get("counters")
        if not c or not s.get("cycles"):
            continue
        counts = count_features(c, s.get("calls") or 1, s.get("kernel_calls"))
        out.append({"kernel_key": sample_key(s), "counts": counts,
                    "cycles": float(s["cycles"]),
                    "source": f"{s.get('model')}/{s.get('build')} L{s.get('level')}"})
    return out


def kernel_fit_samples(samples: Sequence[Mapping], kernels: str) -> list[dict]:
    """Kernel-harness samples (one sn_spmv_<format> call) as fit input with key "spmv/<format>": counts
    as cost.row_counts gives them (2 activation bytes per MAC, 2 output bytes per row processed)."""
    out = []
    for s in samples:
        if s.get("source") != "kernel" or s.get("kernels") != kernels or not s.get("cycles"):
            continue
        c = s["counters"]
        macs = float(c["macs"])
        rows = float(s["rows"]) if s.get("level") else 0.0   # level 0: the kernel returns at once
        out.append({"kernel_key": f"spmv/{s['format']}", "cycles": float(s["cycles"]),
                    "counts": {"macs": macs, "weight_bytes_read": float(c["weight_bytes_read"]),
                               "act_bytes_read": 2 * macs, "act_bytes_written": 2 * rows, "calls": 1.0},
                    "source": f"harness {s['format']} {s['rows']}x{s['cols']} L{s.get('level')}"})
    return out


def fit_models(samples: Sequence[dict], kernels: str):
    """A CycleModel from fit_samples(...) (CycleModel.calibrate: non-negative least squares per kernel key
    and per format, or the fallback table scaled by one factor), or None."""
    from ...targets.fr5994sim import CYCLE_NOTE
    from ..cost import CycleModel
    if not samples:
        return None
    cm = CycleModel.calibrate(list(samples), cycle_note=CYCLE_NOTE)
    cm.meta["kernels"] = kernels
    return cm if cm.kernels else None
