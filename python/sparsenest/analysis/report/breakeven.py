"""Break-even sparsities: per layer and for the network, against a dense CPU kernel and against the
dense layer on the LEA, per cycle table; and the seed report's LeNet-5 thresholds (4 % on the CPU, 20 % with
LEA), analysed only for LeNet-5-comparable models."""
from __future__ import annotations

from typing import Mapping, Sequence

from ..cost import ROW_MODEL_FORMATS, CycleModel, breakeven_sparsity
from .provenance import M, jsonable

SEED_CPU_THRESHOLD, SEED_LEA_THRESHOLD = 0.04, 0.20   # the seed report's LeNet-5 sparsity thresholds
#: LeNet-5's matrix layers: rows, row length (cols), output positions per inference (conv).
LENET5_LAYERS = {"conv1": (6, 25, 784), "conv2": (16, 150, 100), "fc1": (120, 400, 1), "fc2": (84, 120, 1),
                 "fc3": (10, 84, 1)}
#: Row lengths of the break-even curves.
CURVE_ROW_LENGTHS = [8, 16, 25, 32, 50, 64, 84, 100, 120, 150, 200, 256, 300, 400, 600, 800, 1024]


def cycle_tables(platform, kernel_models: Mapping[str, object]) -> list[dict]:
    tabs = [
        {"name": "c_helper_fallback", "op": None, "source": "cost_model_uncalibrated",
         "model": CycleModel.fallback_only(mac_cycles=platform["cpu.mac_c_multiply_cycles"]),
         "label": f"every multiply through the C helper: fallback table with "
                  f"{platform['cpu.mac_c_multiply_cycles']:g} cycles/MAC (platform cpu.mac_c_multiply_cycles, "
                  f"measured in the simulator on a dense loop) [UNCALIBRATED per format]"},
        {"name": "mpy32_fallback", "op": None, "source": "cost_model_uncalibrated",
         "model": CycleModel.fallback_only(),
         "label": f"MPY32 multiply-accumulate registers: fallback table with {platform['cpu.mac_mpy32_cycles']:g} "
                  f"cycles/MAC (platform cpu.mac_mpy32_cycles) [UNCALIBRATED per format]"},
    ]
    for k in ("ref", "mpy32"):
        cm = kernel_models.get(k)
        if cm is None:
            continue
        what = "reference C kernels (multiplies through the C helper)" if k == "ref" else "MPY32 kernels"
        tabs.insert(1 if k == "ref" else len(tabs), {"name": f"{k}_calibrated", "op": "spmv", "source": "cost_model_calibrated", "model": cm,
                     "label": f"{what}: calibrated on kernel-harness samples from our FR5994 simulator (one sn_spmv call per "
                              f"sample, {cm.meta.get('n_samples', '?')} samples)"})
    return tabs


def breakeven(n, fmt, platform, tab, metric, op):
    return breakeven_sparsity(n, fmt, platform, tab["model"], op=tab["op"] or op, metric=metric)


def network_breakeven(rows: Sequence[Mapping]) -> tuple[float | None, float | None]:
    """Sparsity at which the whole network's sparse kernels cost what dense costs (CPU, LEA), from per-layer
    break-even results with weights = rows x positions (cost linear in the nonzeros, uniform sparsity)."""
    out = []
    for ref in ("dense_cpu_per_row", "dense_lea_per_row"):
        num = sum(r["w"] * (r["be"][ref] - r["be"]["sparse_per_row_at_zero"]) for r in rows)
        den = sum(r["w"] * r["be"]["sparse_per_nnz"] * r["be"]["row_len"] for r in rows)
        if num <= 0 or den <= 0:
            out.append(None)
        else:
            out.append(float(min(1.0, max(0.0, 1.0 - num / den))))
    return out[0], out[1]


def seed_threshold_analysis(platform, tables: Sequence[Mapping], layers: Mapping[str, tuple],
                            formats: Sequence[str] = ("csr16",), metric: str = "cycles") -> dict:
    """Per cycle table and format: CPU and LEA break-even per layer (`layers`: name -> (rows, cols,
    positions)) and for the network (row-count weighted)."""
    out = {}
    for tab in tables:
        per_fmt = {}
        for fmt in formats:
            rows = []
            for name, (r, c, pos) in layers.items():
                be = breakeven(c, fmt, platform, tab, metric, "linear")
                rows.append({"layer": name, "row_len": c, "w": r * pos, "be": be})
            cpu, lea = network_breakeven(rows)
            per_fmt[fmt] = {"layers": {x["layer"]: {"row_len": x["row_len"], "cpu": x["be"]["cpu"],
                                                   "lea": x["be"]["lea"], "calibrated": x["be"]["calibrated"]}
                                       for x in rows},
                            "network_cpu": cpu, "network_lea": lea}
        out[tab["name"]] = per_fmt
    return out


def breakeven_section(plat, formats: Mapping[str, str], tables: Sequence[Mapping], layer_rows: Sequence[Mapping],
                      lenet5_comparable: bool) -> dict:
    """This model's network break-even per cycle table, the curves of break-even sparsity against row length
    for the figure, and (LeNet-5-comparable models only) the seed's thresholds against our break-even for
    LeNet-5's layers."""
    model_layers = {ly["name"]: (ly["rows"], ly["cols"], ly["positions"]) for ly in layer_rows if ly.get("cols")}
    fv = list(formats.values())
    main_fmt = max(set(fv), key=fv.count) if fv else "csr16"
    fmts = [f for f in dict.fromkeys(["csr16", main_fmt]) if f in ROW_MODEL_FORMATS]
    this_model = seed_threshold_analysis(plat, tables, model_layers, fmts)
    seed_claims = None
    if lenet5_comparable:
        an = {"lenet5": seed_threshold_analysis(plat, tables, LENET5_LAYERS, fmts)}
        if model_layers != LENET5_LAYERS:
            an["this_model"] = this_model
        seed_claims = {"cpu": M(SEED_CPU_THRESHOLD, "sparsity", "seed_report"),
                       "lea": M(SEED_LEA_THRESHOLD, "sparsity", "seed_report"), "analysis": jsonable(an)}
    curves = {}
    for fm in fmts:
        curves[fm] = {}
        for tab in tables:
            r = [breakeven(n, fm, plat, tab, "cycles", "linear") for n in CURVE_ROW_LENGTHS]
            curves[fm][tab["name"]] = {"cpu": [x["cpu"] for x in r], "lea": [x["lea"] for x in r]}
    return {"metric_note": "latency break-even uses cycles (core + wait states); energy break-even uses nJ per row "
                           "(active power x time + FRAM reads' wait cycles); 'CPU' = sparse CPU kernel vs dense CPU "
                           "kernel, 'LEA' = sparse CPU kernel vs the dense row on the LEA (vector MAC call + DMA of "
                           "the weights)",
            "tables": {t["name"]: {"label": t["label"], "source": t["source"]} for t in tables},
            "formats": fmts, "network": jsonable(this_model), "seed_claims": seed_claims,
            "curves": {"row_len": CURVE_ROW_LENGTHS, "formats": jsonable(curves),
                       "source": "cost_model_calibrated or cost_model_uncalibrated per table (see tables)"}}
