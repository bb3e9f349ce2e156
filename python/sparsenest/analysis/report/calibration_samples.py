"""Cycle-model calibration samples: reading make bench-mcu's cycle_samples.json, turning samples into
CycleModel.calibrate input, and collecting this model's own samples in mspdebug's simulator.

Moved unchanged out of the old analysis/report.py (only DEFAULT_SAMPLES now resolves against the project
root, not the working directory); simcal14's analysis/calibration.py replaces it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from ...paths import PROJECT_ROOT
from ..cost import kernel_c_name, kernel_format
from .provenance import ReportError, log_line as _log

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
        counts = {k: float(v) for k, v in c.items()}
        counts["calls"] = float(s.get("calls") or 1)
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
    from ...targets.msp430 import CYCLE_NOTE
    from ..cost import CycleModel
    if not samples:
        return None
    cm = CycleModel.calibrate(list(samples), cycle_note=CYCLE_NOTE)
    cm.meta["kernels"] = kernels
    return cm if cm.kernels else None



# ========================================================================================= simulator

def euler_schedule(n_levels: int) -> list[int]:
    """Levels to visit, starting and ending at 1, so that every ordered pair a != b is one step."""
    L = n_levels
    if L < 2:
        return [1]
    adj = {a: [b for b in range(L, 0, -1) if b != a] for a in range(1, L + 1)}
    stack, path = [1], []
    while stack:   # Hierholzer
        v = stack[-1]
        if adj[v]:
            stack.append(adj[v].pop())
        else:
            path.append(stack.pop())
    return path[::-1]


def _shapes(qm) -> dict:
    return {n["name"]: n["shape"] for n in qm.graph["nodes"]}


def _sim_samples(run, meta, shapes, counters, model_name, build, kernels, n_per_level) -> list[dict]:
    out = []
    seen = set()
    for r in run.records[:n_per_level * int(meta["n_levels"])]:
        if not r.layers or r.level in seen:
            continue
        seen.add(r.level)
        for name, c in zip(meta["steps"], r.layers):
            lm = meta["layers"][name]
            fmt = kernel_format(lm) if isinstance(lm.get("format"), str) else None
            calls = None
            if fmt:
                calls = int(np.prod(shapes[name][1:])) * int(lm.get("groups", 1)) if lm["op"] == "conv" else 1
            out.append({"source": "layer", "model": model_name, "build": build, "kernels": kernels, "layer": name,
                        "op": lm["op"], "graph_op": lm.get("graph_op"), "kernel": kernel_c_name(fmt), "format": fmt,
                        "level": r.level, "rows": lm.get("rows"), "cols": lm.get("cols"), "calls": calls,
                        "nnz": (lm["nnz"][r.level - 1] // max(1, int(lm.get("groups", 1)))) if "nnz" in lm else None,
                        "far": None, "counters": counters[r.level][name], "instructions": c.instructions,
                        "cycles": c.cycles})
    return out


def simulate_model(mcu_dir: Path, staged_dir: Path | None, qm, x, y, counters, model_name: str,
                   kernels_list: Sequence[str], work: Path, log=_log) -> dict:
    """Per level instructions / cycles (whole inference and per layer) for each kernel back-end, the cycles
    of every switch of a staged build, and this model's cycle samples. Errors are recorded, not raised,
    except a golden mismatch."""
    from ...targets import firmware, msp430
    res = {"runs": {}, "switch": None, "samples": [], "errors": []}
    try:
        msp430.find_toolchain()
        msp430.find_mspdebug()
    except msp430.ToolchainError as e:
        res["errors"].append(f"MSP430 toolchain or mspdebug missing: {e}")
        return res
    meta = json.loads((mcu_dir / "model_meta.json").read_text())
    L = int(meta["n_levels"])
    n = len(x)
    sched = [firmware.Step(i, lv) for lv in range(1, L + 1) for i in range(n)]
    shapes = _shapes(qm)
    for k in kernels_list:
        try:
            fb = firmware.build(mcu_dir, work / f"sim-{k}", image="sim", kernels=k, inputs=x, labels=y,
                                schedule=sched)
        except msp430.RegionOverflowError as e:
            res["errors"].append(f"{k} kernels: the model does not fit the simulator image: "
                                 f"{str(e).splitlines()[0]}")
            continue
        except (msp430.BuildError, firmware.FirmwareError) as e:
            res["errors"].append(f"{k} kernels: firmware build failed: {str(e).splitlines()[0]}")
            continue
        run = firmware.simulate(fb, layers=True, timeout_s=600)
        rep = firmware.compare_golden(fb, run, qm)
        rep.raise_on_mismatch()
        per = {}
        for r in run.records:
            d = per.setdefault(r.level, {"n": 0, "instructions": 0.0, "cycles": 0.0, "layers": {}})
            d["n"] += 1
            d["instructions"] += r.infer.instructions
            d["cycles"] += r.infer.cycles
            for name, c in zip(meta["steps"], r.layers or []):
                d["layers"][name] = d["layers"].get(name, 0.0) + c.cycles
        for d in per.values():
            d["instructions"] /= d["n"]
            d["cycles"] /= d["n"]
            d["layers"] = {kk: v / d["n"] for kk, v in d["layers"].items()}
        res["runs"][k] = {"per_level": per, "compared_with_golden": rep.compared, "golden_ok": rep.ok,
                          "stack_used": run.stack_used, "regions": fb.regions}
        res["samples"] += _sim_samples(run, meta, shapes, counters, model_name, "report", k, n)
        log(f"  simulator ({k} kernels): " + ", ".join(f"L{lv} {d['cycles'] / 1e6:.2f} M cycles"
                                                      for lv, d in sorted(per.items()))
            + f"; {rep.compared} inferences == golden")
    if staged_dir is not None and L > 1:
        path = euler_schedule(L)
        sched = [firmware.Step(0, lv) for lv in path]
        try:
            fb = firmware.build(staged_dir, work / "sim-staged", image="sim", inputs=x[:1], labels=y[:1],
                                schedule=sched)
            run = firmware.simulate(fb, timeout_s=600)
            firmware.compare_golden(fb, run, qm).raise_on_mismatch()
            cyc = [[None] * L for _ in range(L)]
            ins = [[None] * L for _ in range(L)]
            for prev, r in zip(run.records, run.records[1:]):
                a, b = prev.level, r.level
                if a != b:
                    cyc[a - 1][b - 1] = r.switch.cycles
                    ins[a - 1][b - 1] = r.switch.instructions
            res["switch"] = {"cycles": cyc, "instructions": ins, "path": path}
            log(f"  simulator (staged switches): path {'->'.join(map(str, path))}")
        except msp430.RegionOverflowError as e:
            res["errors"].append(f"staged build does not fit the simulator image: {str(e).splitlines()[0]}")
        except (msp430.BuildError, firmware.FirmwareError) as e:
            res["errors"].append(f"staged firmware build failed: {str(e).splitlines()[0]}")
    return res
