"""The sections a reader needs before the measurements: the dense baseline (the dense Q15 twin of the same
network), the device's memory map (planner + board.toml) and the summary box that opens the report."""
from __future__ import annotations

from typing import Mapping, Sequence

from ...board import memory_map
from ..cost import predict_inference
from .measure import Ctx
from .provenance import M
from .sections import pred_source


def dense_baseline(c: Ctx, levels: Sequence[Mapping]) -> dict:
    """The dense Q15 twin of the same network on the host board: accuracy, MACs, bytes, predicted cost (the
    same cycle model as the levels' predictions), and each level's cost against it."""
    d = c.dense
    cm = c.layer_models.get("mpy32")
    pred = predict_inference(c.dense_layers, c.plat, cm, lea=False)
    src = pred_source(pred)
    tot = pred["total"]
    parts = {"values": 0, "indices": 0, "metadata": 0}
    for lm in d["meta"]["layers"].values():
        for k, v in (lm.get("bytes_by_part") or {}).items():
            parts[k] += int(v)
    e_dense = tot["energy_uj"]
    n = c.dense_eval_n
    return {"how": "the bundle's network with every prunable weight kept (sparsenest.analysis.report.dense_twin: "
                   "weights that every level prunes keep the values the bundle stores), quantised and compiled in "
                   "the dense format (resident) for the host board; no retraining",
            "q15_accuracy": M(d["meta"]["levels"][0].get("q15_accuracy"), "fraction", "golden_q15",
                              **({"n": int(n)} if n else {})),
            "macs": M(int(sum(ly["counts"].get("macs", 0) for ly in c.dense_layers)), "MACs per inference",
                      "host_board"),
            "weight_bytes": M(sum(parts.values()), "bytes", "compiler"),
            "cycles": M(tot["cycles"], "cycles", src), "latency_ms": M(tot["time_us"] / 1e3, "ms", src),
            "energy_uj": M(e_dense, "µJ", src),
            "energy_ratio": [None if not e_dense else lv["cpu"]["energy_uj"]["value"] / e_dense for lv in levels],
            "ratio_note": "each level's CPU energy (level table, its own source) over the dense twin's predicted "
                          "energy; a simulated level against a predicted baseline mixes sources (tags say which)"}


def memory_map_section(c: Ctx) -> dict | None:
    """Where the MSP430FR5994 build puts the model: regions of board.toml's memory map and the bytes the
    planner places in each (the firmware's own code, data and stack are not the planner's and not counted)."""
    mm = c.mcu_meta
    if mm is None:
        return None
    mem, bm = mm["memory"], memory_map()
    arena, work = int(mem.get("fram_arena_bytes") or 0), int(mem.get("work_bytes") or 0)
    weights = int(mem["fram_total_estimate"]) - arena - work
    regions = [
        {"name": "SRAM (CPU half)", "base": bm.sram_base, "bytes": bm.cpu_sram_bytes,
         "used": {"far-weight tile": int(mem.get("far_tile_bytes") or 0)}},
        {"name": "SRAM (LEA RAM half)", "base": bm.lea_base, "bytes": bm.lea_bytes,
         "used": {"activation arena": int(mem["sram_arena_bytes"])}},
        {"name": "lower FRAM", "base": bm.lower_fram_base, "bytes": bm.lower_fram_bytes,
         "used": {"weights, indices, tables": weights, "staged working copy": work, "activations in FRAM": arena}},
        {"name": "upper FRAM", "base": bm.upper_fram_base, "bytes": bm.upper_fram_bytes,
         "used": {"streamed weights": int(mem.get("upper_fram_bytes") or 0)}},
    ]
    for r in regions:
        r["used_total"] = sum(r["used"].values())
    return {"regions": regions, "fram_budget": M(mem.get("fram_budget"), "bytes", "compiler"),
            "sram_arena_budget": M(mem.get("sram_arena_budget"), "bytes", "compiler"),
            "source": "compiler", "capacity_source": "platform_constant",
            "note": "bytes the compiler's planner places (model_meta.json of the MSP430FR5994 build); region sizes "
                    "from boards/msp430fr5994/board.toml; the firmware's code, .data/.bss and stack are not "
                    "counted here (`make firmware` prints the linker's size report)"}


def summary(rep: Mapping) -> dict:
    """The box that opens the report: one row per level and the dense baseline, storage, switch costs, with
    the sources of each number (the measures are the sections' own)."""
    sw_mode = rep["model"]["switching"] if rep["model"]["switching"] in ("staged", "resident") else "resident"
    sw = rep["switching"][sw_mode]
    L = rep["model"]["n_levels"]
    pairs = [(i, j) for i in range(L) for j in range(L) if i < j]   # going denser: the costly direction
    worst = max(pairs, key=lambda p: sw["bytes"]["value"][p[0]][p[1]], default=None)
    sw_sum = None
    if worst:
        i, j = worst
        sw_sum = {"mode": sw_mode, "from": i + 1, "to": j + 1,
                  "bytes": M(sw["bytes"]["value"][i][j], "bytes written to FRAM", "host_board"),
                  "energy_uj": M(sw["energy_uj"]["value"][i][j], "µJ", "cost_model_platform"),
                  "time_us": M(sw["time_us"]["value"][i][j], "µs", "cost_model_platform")}
    st = rep["storage"]
    return {"model": rep["model"]["name"], "dataset": rep["model"]["dataset"], "n_levels": L,
            "calibration": rep["calibration"]["label"],
            "levels": [{"level": lv["level"], "sparsity": lv["sparsity"], "float_accuracy": lv["float_accuracy"],
                        "q15_accuracy": lv["q15_accuracy"], "latency_ms": lv["cpu"]["latency_ms"],
                        "energy_uj": lv["cpu"]["energy_uj"], "lea_energy_uj": lv["lea_estimate"]["energy_uj"]}
                       for lv in rep["levels"]],
            "dense": {k: rep["dense_baseline"][k] for k in ("q15_accuracy", "latency_ms", "energy_uj", "weight_bytes")},
            "storage": {"weights_total": st["weights_total"], "dense_q15_bytes": st["dense_q15_bytes"],
                        "fits": st["fr5994"]["fits"]},
            "switch": sw_sum, "training": rep["training"]["caveat"]}
