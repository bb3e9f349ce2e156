"""Per layer, the sparsity at which a sparse layout beats the dense one on the same engine, from the
calibrated cost models the chooser uses (`analyze`'s LEA column; issue #16's "20 % for LEA, 4 % for the
CPU" question).

For one conv/linear layer of a model, with its shapes and (for the CPU) its weight values:

* CPU: a single-level mask pruning a fraction s of the weights at random (seeded); sparse-on-CPU = the
  cheapest unstructured CPU layout (`CPU_SPARSE` formats, direct or im2col) of choose.layer_options,
  dense-on-CPU = the `dense` format. Both costed by the cycle model (compiler/cycle_model_cpu.json).
* LEA: the LEA engine keeps sparsity in its own structure, so the mask prunes a fraction s of whole
  LEA units at random: kernel rows (1 x k_w) of a convolution, 1 x bw segments of a linear layer's rows
  (bw = the largest divisor of the row length up to 16); sparse-on-LEA = lea_plan's layout of that mask,
  dense-on-LEA = its layout of the full mask, both costed by the LEA model (lea_plan.lea_layer_cost).

Cost = predicted cycles (core + FRAM wait states) of one inference, or µJ (`metric="energy"`). The
break-even is the smallest s on a grid (step 1/GRID) where sparse < dense, refined by linear
interpolation between the grid points around it; None: sparse never wins up to the grid's end (0.95).
What it depends on: fixed per-call / per-row costs against per-MAC savings (a LEA call costs about as
much as hundreds of its MACs, a CPU MAC ~14 cycles against its index decoding), the row length, and
for convolutions the positions a decoded row is reused over.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from . import choose

#: unstructured CPU formats the sparse-on-CPU side may use
CPU_SPARSE = ("csr16", "rel8", "rel4", "bitmap", "hbitmap")
GRID = 20
MAX_SPARSITY = 0.95


def _single_level(layer: choose.LayerInfo, keep: np.ndarray) -> choose.LayerInfo:
    """The layer with one level whose mask is `keep` (no quantized model: the engines plan from the mask)."""
    return replace(layer, intro=keep.astype(np.uint8), n_levels=1, qm=None, cache={})


def _lea_unit_mask(layer: choose.LayerInfo, s: float, rng) -> np.ndarray:
    rows, cols = layer.w.shape
    if layer.is_conv:
        kw = choose._window(layer.node)["k_w"]
    else:
        kw = max(d for d in range(1, 17) if cols % d == 0)
    units = rng.random((rows, cols // kw)) >= s
    return np.repeat(units, kw, axis=1)


def _score(o: choose.Option, metric: str) -> float:
    return o.cycles[0] if metric == "time" else o.energy_uj[0]


def _costs(layer, cm, platform, metric: str, seed: int) -> dict[str, np.ndarray]:
    grid = np.linspace(0.0, MAX_SPARSITY, GRID)
    out = {"grid": grid, "cpu": np.full(GRID, np.nan), "lea": np.full(GRID, np.nan)}
    for i, s in enumerate(grid):
        rng = np.random.default_rng(seed)
        ly = _single_level(layer, rng.random(layer.w.shape) >= s)
        opts = [o for o in choose.layer_options(ly, cm, platform, ("cpu",)) if o.format in CPU_SPARSE]
        if opts:
            out["cpu"][i] = min(_score(o, metric) for o in opts)
        lea = choose.layer_options(_single_level(layer, _lea_unit_mask(layer, s, rng)), cm, platform, ("lea",))
        if lea:
            out["lea"][i] = _score(lea[0], metric)
    full = _single_level(layer, np.ones(layer.w.shape, bool))
    dense_cpu = [o for o in choose.layer_options(full, cm, platform, ("cpu",)) if o.format == "dense"]
    dense_lea = choose.layer_options(full, cm, platform, ("lea",))
    out["dense_cpu"] = _score(dense_cpu[0], metric) if dense_cpu else None
    out["dense_cpu_calibrated"] = bool(dense_cpu and dense_cpu[0].calibrated)
    out["dense_lea"] = _score(dense_lea[0], metric) if dense_lea else None
    return out


def _crossing(grid: np.ndarray, sparse: np.ndarray, dense: float | None) -> float | None:
    if dense is None or np.all(np.isnan(sparse)):
        return None
    wins = np.flatnonzero(sparse < dense)
    if not len(wins):
        return None
    i = int(wins[0])
    if i == 0:
        return 0.0
    a, b = sparse[i - 1], sparse[i]   # a >= dense > b: interpolate
    return float(grid[i - 1] + (grid[i] - grid[i - 1]) * (a - dense) / (a - b)) if a > b else float(grid[i])


def engine_breakeven(layers: Sequence[choose.LayerInfo], *, cycle_model=None, platform=None, metric: str = "time",
                     seed: int = 0) -> dict:
    """{layer: {"cpu": s | None, "lea": s | None, "dense_cpu", "dense_lea" (cycles or µJ), "lea_why"}}."""
    from ..board import load_platform
    if metric not in ("time", "energy"):
        raise choose.ChooseError(f"metric must be time or energy, not {metric!r}")
    cm = cycle_model or choose.default_cycle_model()
    platform = platform or load_platform()
    out = {}
    for ly in layers:
        c = _costs(ly, cm, platform, metric, seed)
        full = _single_level(ly, np.ones(ly.w.shape, bool))
        choose._lea_layout(full)
        out[ly.name] = {"cpu": _crossing(c["grid"], c["cpu"], c["dense_cpu"]),
                        "lea": _crossing(c["grid"], c["lea"], c["dense_lea"]),
                        "dense_cpu": c["dense_cpu"], "dense_lea": c["dense_lea"],
                        "dense_cpu_calibrated": c["dense_cpu_calibrated"], "lea_why": full.cache.get("lea_why", ""),
                        "shape": list(ly.w.shape), "positions": ly.positions * ly.groups}
    return {"metric": metric, "grid_step": MAX_SPARSITY / (GRID - 1), "layers": out}


def format_breakeven(res: dict) -> str:
    """The analyzer's LEA column: per layer the break-even sparsity on each engine."""
    unit = "cycles" if res["metric"] == "time" else "µJ"
    pct = lambda s: "never" if s is None else f"{100 * s:.0f} %"  # noqa: E731
    num = lambda v: "-" if v is None else (f"{v / 1e3:.1f}k" if unit == "cycles" else f"{v:.2f}")  # noqa: E731
    lines = [f"break-even sparsity by {res['metric']} (sparse beats dense on the same engine; single-level "
             f"masks, random: CPU irregular, LEA whole kernel rows / row segments)",
             f"{'layer':<14} {'matrix':>10} {'positions':>9} {'CPU':>7} {'LEA':>7} "
             f"{'dense CPU ' + unit:>17} {'dense LEA ' + unit:>17}"]
    flag = False
    for name, r in res["layers"].items():
        mark = "" if r["dense_cpu_calibrated"] else " *"
        flag |= bool(mark)
        lea = pct(r["lea"]) if r["dense_lea"] is not None else "n/a"
        lines.append(f"{name:<14} {r['shape'][0]:>4}x{r['shape'][1]:<5} {r['positions']:>9} {pct(r['cpu']):>7} "
                     f"{lea:>7} {num(r['dense_cpu']) + mark:>17} {num(r['dense_lea']):>17}"
                     + (f"   (LEA: {r['lea_why']})" if r["dense_lea"] is None and r["lea_why"] else ""))
    if flag:
        lines.append("* dense CPU costed by the fallback table (14.5 cycles/MAC, MACS/OP2): the shipped cycle model "
                     "has no dense samples (dense cannot nest)")
    return "\n".join(lines)
