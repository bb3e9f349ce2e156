"""Cost model of sparse inference on the MSP430FR5994: cycles, time, energy and FRAM traffic.

Three parts, each usable alone:

* **Platform** (`load_platform`, defined in `sparsenest.board` and re-exported here): the board's
  constants from a TOML file, each with its source; derived numbers (active power, energy per cycle,
  FRAM wait states, FRAM write energy) with their formula by `Platform.derived()`.

* **CycleModel** (`compiler/cycle_model.py`, re-exported here with `time_energy`): cycles of one kernel
  invocation as a linear function of the host board's operation counts, calibrated on simulator cycles;
  the compiler's layout choice reads it, so it lives a layer down (its docstring describes it).

* **Predictions**: `predict_inference` (per layer and per inference: cycles, µs, µJ, FRAM bytes read and
  written, optional LEA estimate), `predict_switch` (FRAM writes of a level switch by CPU or DMA),
  `lea_estimate` (a dense layer on the LEA accelerator) and `breakeven_sparsity` (the sparsity above
  which a sparse CPU kernel beats dense CPU, and dense-on-LEA, as a function of row length).

Energy model: E = P_active * t + n_fram_words_written * E_write, with P_active = I(µA/MHz) * f * V.
Time t counts core cycles plus FRAM wait cycles at MCLK. The LEA's own figures (nJ per call and per
element) are used as they are for its part.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

# Platform lives with the board's other facts (layer 0); re-exported here for the cost model's callers
from ..board import REQUIRED_KEYS, Constant, Platform, PlatformError, load_platform  # noqa: F401
# The cycle model and time_energy live a layer down (compiler/cycle_model.py: the compiler's layout choice
# reads them); re-exported here with the predictions built on them.
from ..compiler.cycle_model import (FALLBACK_TABLE, FEATURE_DEFAULTS, FEATURES, MAX_FIT_ERROR,  # noqa: F401
                                    MIN_DISTINCT, CycleModel, CycleModelError, count_features, resolve_chain,
                                    time_energy)

__all__ = [
    "Constant", "Platform", "PlatformError", "load_platform", "REQUIRED_KEYS",
    "FEATURES", "count_features", "CycleModel", "CycleModelError", "FALLBACK_TABLE", "resolve_chain",
    "time_energy", "predict_layer", "predict_inference", "predict_switch", "far_dma", "switch_matrices",
    "lea_estimate",
    "row_counts", "breakeven_sparsity", "layers_from_build", "format_inference_table",
]



# ========================================================================================= predictions

def predict_layer(layer: Mapping, platform: Platform, cycle_model: CycleModel | None = None, *,
                  lea: bool = True) -> dict:
    """One layer: ``{"name", "kernel_key", "counts", optional "act_in_fram" (activations read from FRAM),
    optional "shape": {"rows", "cols", "positions", "groups"} for the LEA estimate}``."""
    cm = cycle_model or CycleModel.fallback_only()
    counts = layer["counts"]
    det = cm.predict_detail(layer["kernel_key"], counts)
    fram_read = float(counts.get("weight_bytes_read", 0))
    if layer.get("act_in_fram"):
        fram_read += float(counts.get("act_bytes_read", 0))
    fram_written = float(counts.get("fram_bytes_written", 0))
    out = {"name": layer.get("name", layer["kernel_key"]), "kernel_key": layer["kernel_key"],
           "key_used": det["key_used"], "calibrated": det["calibrated"],
           **time_energy(platform, det["cycles"], fram_read, fram_written),
           "fram_bytes_read": fram_read, "fram_bytes_written": fram_written,
           "macs": float(counts.get("macs", 0)), "notes": det["notes"]}
    shape = layer.get("shape")
    if lea and shape and "/" in layer["kernel_key"]:
        out["lea"] = lea_estimate(shape["rows"], shape["cols"], platform,
                                  positions=shape.get("positions", 1), groups=shape.get("groups", 1))
    return out


def predict_inference(layers: Sequence[Mapping], platform: Platform, cycle_model: CycleModel | None = None,
                      *, lea: bool = True) -> dict:
    """Per-layer and total cycles, time (µs at MCLK with wait states), energy (µJ) and FRAM traffic of one
    inference. `layers`: list of {name, kernel_key, counts[, act_in_fram, shape]} (see predict_layer).
    The result says "uncalibrated": True when any layer used the fallback table."""
    cm = cycle_model or CycleModel.fallback_only()
    rows = [predict_layer(l, platform, cm, lea=lea) for l in layers]
    tot = {k: float(sum(r[k] for r in rows)) for k in
           ("cycles_core", "cycles_wait", "cycles", "time_us", "energy_uj", "fram_bytes_read",
            "fram_bytes_written", "macs")}
    unc = [r["name"] for r in rows if not r["calibrated"]]
    out = {"platform": platform.name, "mclk_hz": platform.mclk_hz, "wait_states": platform.wait_states,
           "active_power_mw": platform.active_power_w * 1e3, "layers": rows, "total": tot,
           "uncalibrated": bool(unc), "uncalibrated_layers": unc,
           "calibration": ("UNCALIBRATED: fallback table for " + ", ".join(unc)) if unc else
                          f"calibrated ({cm.meta.get('calibration', 'fit')})",
           "notes": sorted({n for r in rows for n in r["notes"]})}
    if lea and any("lea" in r for r in rows):
        out["lea_total"] = {k: float(sum(r["lea"][k] for r in rows if "lea" in r))
                            for k in ("cycles", "time_us", "energy_uj")}
    return out


def predict_switch(bytes_written: float, platform: Platform, method: str = "dma", *,
                   blocks: int = 1) -> dict:
    """Cost of writing `bytes_written` bytes to FRAM for a level switch.

    cpu: copy_cycles_per_word per word (+ a FRAM wait per word above 8 MHz).
    dma: block mode, cycles_per_transfer per word + (sync + setup) per block; the CPU is halted and we
    charge active power for the duration (assumption: MCLK and FRAM stay on).
    Both: never faster than the FRAM write time per word; plus the FRAM write energy per word."""
    words = math.ceil(bytes_written / 2) if bytes_written > 0 else 0
    if words == 0:
        return {"method": method, "words": 0, "cycles": 0.0, "time_us": 0.0, "energy_uj": 0.0}
    if method == "cpu":
        cycles = words * platform["cpu.copy_cycles_per_word"] + words * platform.wait_states
    elif method == "dma":
        cycles = (words * platform["dma.cycles_per_transfer"]
                  + blocks * (platform["dma.sync_cycles"] + platform["dma.setup_cycles"]))
    else:
        raise ValueError(f"method must be 'cpu' or 'dma', not {method!r}")
    t = max(cycles / platform.mclk_hz, words * platform["fram.write_ns_per_word"] * 1e-9)
    e = platform.active_power_w * t + words * platform.fram_write_energy_j
    return {"method": method, "words": words, "cycles": float(cycles), "time_us": t * 1e6, "energy_uj": e * 1e6}


def far_dma(far: Mapping, platform: Platform) -> dict:
    """Cycles and energy of streaming the far (upper FRAM) tiles of one inference by DMA into SRAM."""
    words = sum(math.ceil(v["bytes_per_call"] / 2) * v["calls"] for v in far.values())
    blocks = sum(v["tiles"] * v["arrays"] * v["calls"] for v in far.values())
    cycles = words * platform["dma.cycles_per_transfer"] + blocks * (platform["dma.sync_cycles"]
                                                                     + platform["dma.setup_cycles"])
    return {"bytes": 2 * words, "blocks": blocks, "cycles": float(cycles),
            "energy_uj": cycles * platform.energy_per_cycle_j * 1e6}


def switch_matrices(bytes_matrix: Sequence[Sequence[float]], platform: Platform, method: str = "dma"
                    ) -> dict:
    """{"energy_uj": LxL, "time_us": LxL} from bytes written per switch (row = from level, column = to
    level), e.g. from the host board's write log; the diagonal is zero."""
    L = len(bytes_matrix)
    e = [[0.0] * L for _ in range(L)]
    t = [[0.0] * L for _ in range(L)]
    for i in range(L):
        for j in range(L):
            if i != j:
                s = predict_switch(bytes_matrix[i][j], platform, method)
                e[i][j], t[i][j] = s["energy_uj"], s["time_us"]
    return {"energy_uj": e, "time_us": t, "method": method}


# ================================================================================================= LEA

def lea_estimate(rows: int, cols: int, platform: Platform, *, positions: int = 1, groups: int = 1,
                 weights_in_fram: bool = True, reserve_bytes: int = 64) -> dict:
    """A dense (or block) matrix-vector layer on the LEA: one vector MAC call per row chunk per output
    position. Chunk length: the weight chunk and the input chunk (int16 each) must fit in LEA RAM minus
    `reserve_bytes` (result, alignment). Weights live in FRAM and are DMA'd into LEA RAM: once per layer
    when the whole group matrix fits beside one input vector, else once per call. Inputs are assumed to be
    produced directly in LEA RAM (im2col writes there). Cost = calls*cycles_per_call + elements*
    cycles_per_element + DMA; energy uses the LEA's nJ figures plus active power for the DMA."""
    usable = platform["lea.ram_bytes"] - reserve_bytes
    chunk = max(1, int(usable // 4))
    per_row = math.ceil(cols / chunk)
    calls = rows * per_row * positions * groups
    elements = rows * cols * positions * groups
    resident = 2 * rows * cols + 2 * cols <= usable
    if not weights_in_fram:
        dma_words, blocks = 0, 0
    elif resident:
        dma_words, blocks = rows * cols * groups, groups
    else:
        dma_words, blocks = elements, calls
    dma_cycles = (dma_words * platform["dma.cycles_per_transfer"]
                  + blocks * (platform["dma.sync_cycles"] + platform["dma.setup_cycles"]))
    lea_cycles = calls * platform["lea.cycles_per_call"] + elements * platform["lea.cycles_per_element"]
    cycles = lea_cycles + dma_cycles
    e = (calls * platform["lea.nj_per_call"] + elements * platform["lea.nj_per_element"]) * 1e-9 \
        + dma_cycles * platform.energy_per_cycle_j
    return {"calls": calls, "elements": elements, "chunk": chunk, "weights_resident": resident,
            "dma_words": dma_words, "cycles_lea": lea_cycles, "cycles_dma": dma_cycles, "cycles": cycles,
            "time_us": cycles / platform.mclk_hz * 1e6, "energy_uj": e * 1e6}


# ========================================================================================== break-even

def _table_bytes(n: int) -> int:
    return 1 if n <= 0xFF else 2


def _rel_entries(n: int, k: int, max_delta: int) -> int:
    """Stored entries of a row of k nonzeros spread evenly over n columns (positions floor(i*n/k)) with
    a relative-index format whose largest step is max_delta (padding entries fill longer gaps)."""
    if k == 0:
        return 0
    pos = (np.arange(k, dtype=np.int64) * n) // k
    gaps = np.diff(np.concatenate([[0], pos]))
    return k + int(np.where(gaps > 0, (gaps - 1) // max_delta, 0).sum())


#: The formats row_counts has a per-row model for.
ROW_MODEL_FORMATS = ("dense", "csr16", "rel8", "rel4", "bitmap", "block")


def row_counts(fmt: str, row_len: int, nnz: int, *, level: int = 1, block_width: int = 4) -> dict:
    """Counter values (as the C kernels count them) for ONE row of `row_len` columns holding `nnz`
    nonzeros, one level, inside a single-row call: macs, weight_bytes_read, act_bytes_read (2 per MAC),
    act_bytes_written (the row's 2-byte output), calls = 1."""
    n, k = int(row_len), int(nnz)
    tb = _table_bytes(n)
    if fmt == "dense":
        macs, wb = n, 2 * n
    elif fmt == "csr16":
        macs, wb = k, 4 * k + 2 * tb
    elif fmt == "rel8":
        macs = _rel_entries(n, k, 255)
        wb = 3 * macs + 2 * tb
    elif fmt == "rel4":
        macs = _rel_entries(n, k, 15)
        macs += macs % 2
        wb = int(2.5 * macs) + 2 * tb
    elif fmt == "bitmap":
        macs, wb = k, 2 * k + level * math.ceil(n / 8) + tb
    elif fmt == "block":
        nb = math.ceil(k / block_width)
        macs, wb = nb * block_width, 2 * nb * block_width + 2 * nb + 2 * tb
    else:
        raise ValueError(f"row_counts: no per-row model for {fmt!r} ({', '.join(ROW_MODEL_FORMATS)})")
    return {"macs": macs, "weight_bytes_read": wb, "act_bytes_read": 2 * macs, "act_bytes_written": 2,
            "calls": 1}


def _row_cost(platform: Platform, cm: CycleModel, key: str, counts: dict, metric: str) -> tuple[float, bool]:
    det = cm.predict_detail(key, counts)
    te = time_energy(platform, det["cycles"], counts["weight_bytes_read"], 0.0)
    return (te["energy_uj"] * 1e3 if metric == "energy" else te["cycles"]), det["calibrated"]


def breakeven_sparsity(row_len: int, format_cost: str | Mapping, platform: Platform,
                       cycle_model: CycleModel | None = None, *, op: str = "linear", metric: str = "energy",
                       weights_in_fram: bool = True, dense_key: str | None = None) -> dict:
    """The sparsity at and above which a sparse CPU kernel costs less per row than (a) the dense CPU
    kernel and (b) the dense row on the LEA (vector MAC call + DMA of the weights from FRAM).

    `format_cost` is a format name (costed with `cycle_model`, key "<op>/<fmt>", counts from
    `row_counts`: the index bytes, padding and per-row tables the C kernels read) or an explicit
    ``{"per_nnz": cycles, "per_row": cycles}``. `metric` is "energy" (nJ per row) or "cycles".
    Returns {"cpu": s or None, "lea": s or None, ...costs per row}; None = the sparse kernel never wins
    (not even with zero nonzeros), 0.0 = it always wins. Row length matters because fixed per-row
    costs (tables, the LEA's ~616-cycle call) are amortised over the row."""
    cm = cycle_model or CycleModel.fallback_only()
    n = int(row_len)
    if n < 1:
        raise ValueError("row_len must be >= 1")
    if metric not in ("energy", "cycles"):
        raise ValueError("metric must be 'energy' or 'cycles'")
    dkey = dense_key or f"{op}/dense"
    dense_cpu, dense_cal = _row_cost(platform, cm, dkey, row_counts("dense", n, n), metric)
    le = lea_estimate(1, n, platform, weights_in_fram=weights_in_fram)
    dense_lea = le["energy_uj"] * 1e3 if metric == "energy" else le["cycles"]
    ks = np.arange(n + 1)
    calibrated = dense_cal
    if isinstance(format_cost, str):
        fmt = format_cost
        costs = np.empty(n + 1)
        for k in ks:
            costs[k], cal = _row_cost(platform, cm, f"{op}/{fmt}", row_counts(fmt, n, int(k)), metric)
            calibrated = calibrated and cal
        label = fmt
    else:
        per_nnz, per_row = float(format_cost["per_nnz"]), float(format_cost.get("per_row", 0.0))
        cyc = per_row + per_nnz * ks
        costs = cyc * platform.energy_per_cycle_j * 1e9 if metric == "energy" else cyc
        label = format_cost.get("label", "explicit")

    def solve(ref):
        ok = costs < ref
        if not ok[0]:
            return None
        k = int(np.max(np.nonzero(ok)[0]))  # costs are nondecreasing in k
        if k == n:
            return 0.0
        # interpolate the crossing between k and k+1 nonzeros, so the result is not quantised to 1/n
        step = costs[k + 1] - costs[k]
        kstar = k + ((ref - costs[k]) / step if step > 0 else 0.0)
        return float(max(0.0, 1.0 - kstar / n))

    unit = "nJ" if metric == "energy" else "cycles"
    s_cpu, s_lea = solve(dense_cpu), solve(dense_lea)
    return {"row_len": n, "format": label, "metric": metric, "unit": unit,
            "cpu": s_cpu, "lea": s_lea, "dense_cpu_per_row": float(dense_cpu),
            "dense_lea_per_row": float(dense_lea), "sparse_per_row_at_zero": float(costs[0]),
            "sparse_per_nnz": float((costs[-1] - costs[0]) / n), "calibrated": calibrated,
            "explanation": (f"row of {n}: dense CPU {dense_cpu:.1f} {unit}, dense LEA {dense_lea:.1f} {unit} "
                            f"(calls x {platform['lea.cycles_per_call']:g} + elements x "
                            f"{platform['lea.cycles_per_element']:g} cycles + DMA), sparse {label} "
                            f"{costs[0]:.1f} + {(costs[-1] - costs[0]) / n:.2f}/nnz {unit}"
                            + ("" if calibrated else "; UNCALIBRATED fallback cycle table"))}


# ====================================================================================== build adapters

def kernel_format(lm: Mapping) -> str | None:
    """The format part of a conv/linear layer's kernel key from its model_meta.json entry: "csr16", "a+b"
    for per-group formats, "csr16-direct" for a direct convolution (sn_conv_csr16, not im2col + spmv);
    None for other layers."""
    f = lm.get("format")
    if f is None:
        return None
    f = f if isinstance(f, str) else "+".join(f)
    return f + "-direct" if lm.get("conv") == "direct" else f


def kernel_c_name(fmt: str | None) -> str | None:
    """The C kernel of a kernel_format: sn_spmv_<format>, or sn_conv_<format> for "<format>-direct"."""
    if not fmt:
        return None
    return f"sn_conv_{fmt.removesuffix('-direct')}" if fmt.endswith("-direct") else f"sn_spmv_{fmt}"


def layers_from_build(meta: Mapping, layer_counters: Mapping[str, Mapping], level: int) -> list[dict]:
    """Layer list for predict_inference from a build's model_meta.json and the host board's per-step
    counters (HostSim.layer_counters() after one inference at `level`). Kernel key = "<graph op>/<format>"
    for conv/linear, "<graph op>" otherwise; calls = groups x output positions;
    decode_bytes from the build's kernel_calls (count_features)."""
    out = []
    for name in meta["steps"]:
        lm = meta["layers"][name]
        counts = dict(layer_counters[name])
        gop = lm.get("graph_op", lm.get("op"))
        if lm.get("op") in ("conv", "linear"):
            key = f"{gop}/{kernel_format(lm)}"
            nnz = lm["nnz"][level - 1]
            groups = int(lm.get("groups", 1))
            # older builds lack "positions": macs / nnz (over-counts formats with padding entries, rel4/rel8)
            positions = lm.get("positions") or (round(counts["macs"] / nnz) if nnz else 0)
            counts = count_features(counts, groups * positions if gop.startswith("conv") else groups,
                                    lm.get("kernel_calls"))
            shape = {"rows": int(lm["rows"]), "cols": int(lm["cols"]),
                     "positions": positions if gop.startswith("conv") else 1, "groups": groups}
            out.append({"name": name, "kernel_key": key, "counts": counts, "shape": shape})
        else:
            counts["calls"] = 1
            out.append({"name": name, "kernel_key": gop, "counts": counts})
    return out


def format_inference_table(pred: Mapping) -> str:
    """A plain-text table of predict_inference's result."""
    head = (f"{pred['platform']} @ {pred['mclk_hz'] / 1e6:g} MHz, {pred['wait_states']} FRAM wait state(s), "
            f"P_active {pred['active_power_mw']:.3f} mW; {pred['calibration']}")
    lines = [head, f"{'layer':<14} {'kernel':<18} {'cycles':>11} {'time us':>10} {'energy uJ':>10} "
                   f"{'FRAM rd B':>10} {'FRAM wr B':>10}  {'LEA uJ':>8}"]
    for r in pred["layers"]:
        flag = "" if r["calibrated"] else " *"
        lea = f"{r['lea']['energy_uj']:8.2f}" if "lea" in r else " " * 8
        lines.append(f"{r['name']:<14} {r['kernel_key'] + flag:<18} {r['cycles']:11.0f} {r['time_us']:10.1f} "
                     f"{r['energy_uj']:10.3f} {r['fram_bytes_read']:10.0f} {r['fram_bytes_written']:10.0f}  {lea}")
    t = pred["total"]
    lines.append(f"{'total':<14} {'':<18} {t['cycles']:11.0f} {t['time_us']:10.1f} {t['energy_uj']:10.3f} "
                 f"{t['fram_bytes_read']:10.0f} {t['fram_bytes_written']:10.0f}")
    if pred["uncalibrated"]:
        lines.append("* uncalibrated: fallback cycle table (sparsenest.analysis.cost.FALLBACK_TABLE)")
    if "lea_total" in pred:
        lines.append("LEA uJ: the layer's matrix product alone as dense vector-MAC calls on the LEA (one call per "
                     "row and output position) plus the DMA of weights from FRAM; im2col, requantisation and "
                     "pooling are not included")
    return "\n".join(lines)
