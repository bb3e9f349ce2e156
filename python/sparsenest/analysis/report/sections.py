"""The report's measured sections, each from the collected measurements (`collect.Ctx`): per level, the
cost model's validation, per layer, switches, storage, harvesting, and the seed report's Table 2 beside ours."""
from __future__ import annotations

from typing import Mapping, Sequence

from ...seed import seed_rows
from ..cost import ROW_MODEL_FORMATS, far_dma, predict_inference, predict_switch, time_energy
from ..switch_model import predict_staged_switch
from .breakeven import breakeven
from .measure import Ctx, level_storage, measure_switches
from .provenance import M
from .training import training_budget

SWITCH_METHOD = "cpu"       # the FR5994 board copies staged bytes with memcpy (boards/msp430fr5994/mem.c)


def far_dma_cost(c: Ctx) -> dict | None:
    mm = c.mcu_meta
    if not mm or not mm.get("far"):
        return None
    far = {v["layer"]: {"bytes_per_call": v["bytes_per_call"], "calls": v["calls_per_inference"],
                        "tiles": v["tiles"], "arrays": len(v["arrays"])} for v in mm["far"].values()}
    return far_dma(far, c.plat)


def pred_source(pred: Mapping) -> str:
    unc = pred["uncalibrated_layers"]
    return ("cost_model_uncalibrated" if len(unc) == len(pred["layers"]) else
            "cost_model_partly_calibrated" if unc else "cost_model_calibrated")


def level_rows(c: Ctx) -> list[dict]:
    """Per level: sparsity, accuracy, predicted / simulated CPU cost per back-end, headline CPU cost, LEA
    estimate, storage by part."""
    dma = far_dma_cost(c)
    rows = []
    for lv in range(1, c.L + 1):
        layers, ev = c.host_layers[lv], c.levels_in[lv - 1]
        n_eval = ev.get("n_eval")
        nkw = {"n": int(n_eval)} if n_eval else {}
        row = {"level": lv, "target_sparsity": M(ev.get("target_sparsity"), "fraction", "bundle"),
               "sparsity": M(ev.get("sparsity", c.b.levels[lv - 1].get("sparsity")), "fraction", "bundle"),
               "nnz": M(int(c.meta_in["level_nnz"][lv - 1]), "weights", "compiler"),
               "float_accuracy": M(ev.get("float_accuracy"), "fraction", "float_eval" if n_eval else "bundle", **nkw),
               "q15_accuracy": M(ev.get("q15_accuracy"), "fraction", "golden_q15", **nkw),
               "c_equals_golden": M(c.c_eq_golden[lv], "bool", "host_board", n=c.chk_n),
               "macs": M(int(sum(ly["counts"].get("macs", 0) for ly in layers)), "MACs per inference", "host_board"),
               "predicted": {}, "simulated": {}}
        for k in c.kernels:
            cm = c.layer_models.get(k)
            pred = c.predictions[(k, lv)] = predict_inference(layers, c.plat, cm, lea=True)
            if cm is None and k != "mpy32":
                continue   # the fallback table describes the MPY32 kernels: no prediction for the reference ones
            src, unc = pred_source(pred), pred["uncalibrated_layers"]
            tot = pred["total"]
            cyc, t_us, e_uj = tot["cycles"], tot["time_us"], tot["energy_uj"]
            if dma:
                cyc += dma["cycles"]
                t_us += dma["cycles"] / c.plat.mclk_hz * 1e6
                e_uj += dma["energy_uj"]
            row["predicted"][k] = {"cycles": M(cyc, "cycles", src, **({"uncalibrated_layers": unc} if unc else {})),
                                   "cycles_core": M(tot["cycles_core"], "cycles", src),
                                   "latency_ms": M(t_us / 1e3, "ms", src), "energy_uj": M(e_uj, "µJ", src),
                                   "far_dma": M(dma, "cycles / bytes / µJ", "cost_model_platform") if dma else None}
            s = (c.sim["runs"].get(k) or {}).get("per_level", {}).get(lv)
            if s:
                # our simulator counts FRAM waits, DMA and LEA time (cycles_total) and charges energy itself
                row["simulated"][k] = {"cycles_core": M(s["cycles"], "cycles", "fr5994_sim", n=s["n"]),
                                       "instructions": M(s["instructions"], "instructions", "fr5994_sim", n=s["n"]),
                                       "cycles": M(s["cycles_total"], "cycles", "fr5994_sim", n=s["n"]),
                                       "latency_ms": M(s["cycles_total"] / c.plat.mclk_hz * 1e3, "ms", "fr5994_sim",
                                                       n=s["n"]),
                                       "energy_uj": M(s["energy_uj"], "µJ", "fr5994_sim", n=s["n"])}
        head = row["simulated"].get("mpy32") or row["predicted"].get("mpy32")
        row["cpu"] = {"kernels": "mpy32", **{kk: head[kk] for kk in ("cycles", "latency_ms", "energy_uj")}}
        pm = c.predictions[(c.head_kernels, lv)]
        lea = {kk: sum(r["lea"][kk] if "lea" in r else r[kk] for r in pm["layers"])
               for kk in ("cycles", "time_us", "energy_uj")}
        row["lea_estimate"] = {"cycles": M(lea["cycles"], "cycles", "lea_model"),
                               "latency_ms": M(lea["time_us"] / 1e3, "ms", "lea_model"),
                               "energy_uj": M(lea["energy_uj"], "µJ", "lea_model"),
                               "matrix_part_energy_uj": M(pm.get("lea_total", {}).get("energy_uj"), "µJ", "lea_model")}
        row["storage"] = {k: M(v, "bytes", "compiler") for k, v in level_storage(c.stg["meta"], lv).items()}
        row["fram_bytes_read"] = M(pm["total"]["fram_bytes_read"], "bytes per inference", "host_board")
        rows.append(row)
    return rows


def validation(c: Ctx) -> list[dict]:
    """Predicted vs simulated core cycles per inference (no wait states on either side), in sample and held
    out (a cycle model fitted without this run's samples)."""
    out = []
    same = any(s.get("model") == c.model_name for s in c.ext)
    for k in c.kernels:
        run = c.sim["runs"].get(k)
        for lv, s in sorted((run or {}).get("per_level", {}).items()):
            layers = c.host_layers[lv]
            pin = predict_inference(layers, c.plat, c.layer_models[k], lea=False)
            v = {"kernels": k, "level": lv, "simulated_cycles": M(s["cycles"], "cycles", "fr5994_sim"),
                 "predicted_in_sample": M(pin["total"]["cycles_core"], "cycles", pred_source(pin)),
                 "error_in_sample": pin["total"]["cycles_core"] / s["cycles"] - 1.0,
                 "predicted_held_out": None, "error_held_out": None}
            hm = c.held_out.get(k)
            if hm is not None:
                ph = predict_inference(layers, c.plat, hm, lea=False)
                v["predicted_held_out"] = M(ph["total"]["cycles_core"], "cycles", pred_source(ph),
                                            uncalibrated_layers=ph["uncalibrated_layers"])
                v["error_held_out"] = ph["total"]["cycles_core"] / s["cycles"] - 1.0
            v["held_out_note"] = (f"the other samples include model '{c.model_name}' (possibly this very network, "
                                  f"e.g. from make bench-mcu): 'held out' means without this run's samples"
                                  if same else "the other samples are of other networks")
            v["cycle_table"] = (f"{k} kernels: one linear cycle model per kernel key '<graph op>/<format>' and per "
                                f"format, fitted by sparsenest.analysis.cost.CycleModel.calibrate (non-negative least "
                                f"squares on the host board's counters, or the fallback table scaled) on per-layer "
                                f"our simulator's core cycles; in sample = with this run's samples, held out = only "
                                f"{', '.join(c.files) or 'none'}")
            out.append(v)
    return out


def layer_rows(c: Ctx, tables: Sequence[Mapping], ana: Mapping) -> list[dict]:
    """Per layer: format, bytes by part, index overhead, storage break-even (analyzer), latency / energy
    break-even per cycle table, predicted and simulated cycles per level."""
    rows = []
    positions = {ly["name"]: ly.get("shape", {}).get("positions", 1) for ly in c.host_layers[c.L]}
    for name in c.meta_in["steps"]:
        lm = c.meta_in["layers"][name]
        row = {"name": name, "op": lm["op"], "graph_op": lm.get("graph_op"), "format": None}
        rows.append(row)
        row["cycles_per_level"] = []
        for lv in range(1, c.L + 1):
            p = next(r for r in c.predictions[(c.head_kernels, lv)]["layers"] if r["name"] == name)
            s = (c.sim["runs"].get("mpy32") or {}).get("per_level", {}).get(lv)
            row["cycles_per_level"].append({
                "level": lv, "predicted_cycles": M(p["cycles_core"], "cycles", "cost_model_calibrated"
                                                   if p["calibrated"] else "cost_model_uncalibrated"),
                "simulated_cycles": M(s["layers"].get(name) if s else None, "cycles", "fr5994_sim")})
        if lm["op"] not in ("conv", "linear"):
            continue
        f, cols = c.formats[name], int(lm["cols"])
        total_w = int(lm["rows"]) * cols
        bp = lm["bytes_by_part"]
        tot_b = sum(bp.values())
        a = ana["layers"].get(name, {})
        af = a.get("formats", {})
        row.update({"format": f, "rows": int(lm["rows"]), "cols": cols, "groups": int(lm.get("groups", 1)),
                    "positions": int(positions.get(name, 1)),
                    "nnz": M(lm["nnz"], "weights per level", "compiler"),
                    "sparsity": M([1 - n / total_w for n in lm["nnz"]], "fraction per level", "compiler"),
                    "bytes_by_part": M(bp, "bytes", "compiler"),
                    "bias_bytes": M(lm.get("bias_bytes"), "bytes", "compiler"),
                    "index_overhead": M((bp["indices"] + bp["metadata"]) / tot_b if tot_b else 0.0,
                                        "fraction of weight bytes", "compiler"),
                    "storage_break_even": M({k: af[k]["break_even_sparsity"] for k in af}, "sparsity", "analyzer",
                                            chosen=a.get("auto")),
                    "dense_bytes": M(2 * total_w, "bytes", "compiler")})
        be = {}
        for fm in dict.fromkeys([f, "csr16"]):
            if fm not in ROW_MODEL_FORMATS:
                be[fm] = {"note": f"no per-row cost model for {fm} (cost.row_counts)"}
                continue
            be[fm] = {}
            for tab in tables:
                rc = breakeven(cols, fm, c.plat, tab, "cycles", lm.get("graph_op", "linear"))
                re_ = breakeven(cols, fm, c.plat, tab, "energy", lm.get("graph_op", "linear"))
                src = tab["source"] if rc["calibrated"] else "cost_model_uncalibrated"
                be[fm][tab["name"]] = {"cpu_latency": M(rc["cpu"], "sparsity", src),
                                       "cpu_energy": M(re_["cpu"], "sparsity", src),
                                       "lea_latency": M(rc["lea"], "sparsity", src),
                                       "lea_energy": M(re_["lea"], "sparsity", src), "explanation": rc["explanation"]}
        row["latency_energy_break_even"] = be
    return rows


def switching_section(c: Ctx) -> dict:
    """Bytes of every switch (host board's write log), µJ / µs (cost model), simulated cycles (staged)."""
    L = c.L
    out = {"method": SWITCH_METHOD, "build_mode": c.meta_in.get("switching"),
           "method_note": "staged: the switch time model (analysis/switch_model.py, platform staged.* fitted in "
                          "our simulator: per row, per copied row, per word and odd byte, DMA for masters in upper "
                          "FRAM), from a copy holding the from-level; resident: "
                          "cost model 'cpu' = platform cpu.copy_cycles_per_word per "
                          "16-bit word (assumption) + the FRAM write energy per word"}
    for mode, info in (("staged", c.stg), ("resident", c.res)):
        ms = measure_switches(info["out_dir"], L)
        e, t = [[0.0] * L for _ in range(L)], [[0.0] * L for _ in range(L)]
        arrays = (c.mcu_staged or info)["meta"]["staged_arrays"] if mode == "staged" else None
        for i in range(L):
            for j in range(L):
                if i != j and arrays is not None:   # the switch time model, copy holding level i + 1
                    us = predict_staged_switch(arrays, i + 1, j + 1, c.plat)["time_us"]
                    t[i][j] = us
                    e[i][j] = (c.plat.active_power_w * us * 1e-6
                               + -(-ms["bytes"][i][j] // 2) * c.plat.fram_write_energy_j) * 1e6
                elif i != j:
                    ps = predict_switch(ms["bytes"][i][j], c.plat, SWITCH_METHOD)
                    e[i][j], t[i][j] = ps["energy_uj"], ps["time_us"]
        entry = {"bytes": M(ms["bytes"], "bytes written to FRAM", "host_board"),
                 "writes": M(ms["writes"], "sn_board_fram_write calls", "host_board"),
                 "bytes_by_region": M(ms["regions"], "bytes", "host_board"),
                 "energy_uj": M(e, "µJ", "cost_model_platform"), "time_us": M(t, "µs", "cost_model_platform"),
                 "simulated_cycles": None, "simulated_time_us": None, "simulated_energy_uj": None}
        if mode == "staged" and c.sim.get("switch"):
            cyc = c.sim["switch"]["cycles"]
            tt, ee = [[None] * L for _ in range(L)], [[None] * L for _ in range(L)]
            for i in range(L):
                for j in range(L):
                    if cyc[i][j] is not None:
                        te = time_energy(c.plat, cyc[i][j], 0.0, ms["bytes"][i][j])
                        tt[i][j], ee[i][j] = te["time_us"], te["energy_uj"]
            entry["simulated_cycles"] = M(cyc, "cycles (sn_set_level incl. the marker call)", "fr5994_sim")
            entry["simulated_time_us"] = M(tt, "µs", "fr5994_sim+platform")
            entry["simulated_energy_uj"] = M(ee, "µJ", "fr5994_sim+platform")
        out[mode] = entry
    return out


def storage_section(c: Ctx, layers: Sequence[Mapping], ana: Mapping) -> dict:
    parts = {"values": 0, "indices": 0, "metadata": 0}
    for ly in layers:
        for k, v in (ly.get("bytes_by_part") or {}).get("value", {}).items():
            parts[k] += int(v)
    mm = c.mcu_meta
    return {"weights_by_part": M(parts, "bytes", "compiler"),
            "weights_total": M(sum(parts.values()), "bytes", "compiler"),
            "bias_bytes": M(sum(int(ly["bias_bytes"]["value"] or 0) for ly in layers if ly.get("bias_bytes")),
                            "bytes", "compiler"),
            "dense_q15_bytes": M(sum(int(ly["dense_bytes"]["value"]) for ly in layers if ly.get("dense_bytes")),
                                 "bytes", "compiler"),
            "sonic_total_bytes": M(ana["totals"]["sonic_total_bytes"], "bytes", "analyzer"),
            "each_level_alone_bytes": M(ana["totals"]["separate_bytes"], "bytes", "analyzer"),
            "staged_work_bytes": M(c.stg["meta"]["memory"].get("work_bytes", 0), "bytes", "compiler"),
            "fr5994": ({"fits": True,
                        "lower_fram_bytes": M(mm["memory"]["fram_total_estimate"], "bytes", "compiler"),
                        "upper_fram_bytes": M(mm["memory"].get("upper_fram_bytes", 0), "bytes", "compiler"),
                        "sram_arena_bytes": M(mm["memory"]["sram_arena_bytes"], "bytes", "compiler"),
                        "far_layers": sorted({v["layer"] for v in (mm.get("far") or {}).values()})}
                       if mm else {"fits": False, "error": c.mcu_err})}


def harvest_section(c: Ctx, levels, switching, trace, capacitor_f, harvest_hours):
    """compare_policies on the trace with the headline per-level costs and the build's switch costs."""
    from .. import harvest as hv
    acc = [lv["q15_accuracy"]["value"] if lv["q15_accuracy"]["value"] is not None else lv["float_accuracy"]["value"]
           for lv in levels]
    if any(a is None for a in acc):
        c.notes.append("no accuracy recorded for some level: the harvesting section uses 0")
        acc = [a or 0.0 for a in acc]
    sw_mode = c.meta_in.get("switching") if c.meta_in.get("switching") in ("staged", "resident") else "resident"
    sw = switching[sw_mode]
    costs = hv.make_costs(
        [{"energy_uj": lv["cpu"]["energy_uj"]["value"], "time_us": 1e3 * lv["cpu"]["latency_ms"]["value"],
          "accuracy": a, "sparsity": lv["sparsity"]["value"]} for lv, a in zip(levels, acc)],
        sw["energy_uj"]["value"], sw["time_us"]["value"],
        sleep_power_uw=c.plat.lpm3_power_w * 1e6, boot_uj=c.plat.boot_energy_j * 1e6,
        source=f"per-level CPU (MPY32) energy and latency as in the level table "
               f"({levels[0]['cpu']['energy_uj']['source']}); {sw_mode} switch costs (host-board bytes, cost "
               f"model µJ/µs); Q15 accuracy")
    tr = hv.load_trace(trace)
    cap = hv.Capacitor(capacitor_f)
    t_end = None if harvest_hours is None else float(harvest_hours) * 3600
    results = hv.compare_policies(tr, cap, costs, t_end=t_end, print_table=False)
    pol = {}
    for name, r in results.items():
        d = r.to_dict()
        pol[name] = {k: d[k] for k in ("policy_detail", "completed", "total", "expected_accuracy", "expected_correct",
                                       "lost_inferences", "n_switches", "n_brownouts", "n_boots", "on_time_s",
                                       "duration_s")}
        pol[name]["energy_mj"] = {k: v * 1e3 for k, v in d["energy_j"].items()}
    dens, sparse = f"fixed:{c.L}", "fixed:1"
    ea = next(n for n in pol if n.startswith("energy"))
    cmp = {"energy_aware": ea, "fixed_densest": dens, "fixed_sparsest": sparse,
           "extra_vs_densest": pol[ea]["total"] - pol[dens]["total"],
           "extra_vs_densest_pct": 100 * (pol[ea]["total"] / pol[dens]["total"] - 1) if pol[dens]["total"] else None,
           "accuracy_cost_vs_densest_pp": 100 * (pol[dens]["expected_accuracy"] - pol[ea]["expected_accuracy"]),
           "correct_extra_vs_densest": pol[ea]["expected_correct"] - pol[dens]["expected_correct"],
           "vs_sparsest_total": pol[ea]["total"] - pol[sparse]["total"],
           "accuracy_gain_vs_sparsest_pp": 100 * (pol[ea]["expected_accuracy"] - pol[sparse]["expected_accuracy"])}
    section = {"trace": tr.name, "trace_hours": (tr.end - tr.start) / 3600,
               "simulated_hours": (t_end or (tr.end - tr.start)) / 3600,
               "capacitor": {"capacitance_f": cap.capacitance_f, "v_on": cap.v_on, "v_off": cap.v_off,
                             "v_max": cap.v_max, "v_init": cap.v_init},
               "costs": costs.to_dict(), "source": "harvest_sim", "policies": pol, "comparison": cmp}
    return section, results, tr


def seed_section(c: Ctx, levels) -> dict | None:
    """The seed report's Table 2 row beside ours, for a model and data set it describes (Ctx.seed_key)."""
    if c.seed_key is None:
        return None
    sd = seed_rows()[c.seed_key]
    sp = [lv["sparsity"]["value"] for lv in levels]
    lat = [lv["cpu"]["latency_ms"]["value"] / 1e3 for lv in levels]
    notes = [training_budget(c.b)["caveat"]]
    if c.model_name != c.seed_key:
        notes.append(f"{c.model_name} is not the seed's {sd.model} (a variant of it); compare with care")
    if len(sp) != len(sd.sparsity) or any(abs(a - b) > 0.01 for a, b in zip(sd.sparsity, sp)):
        notes.append("our levels are at other sparsities than the seed's")
    return {"seed": {"model": sd.model, "dataset": sd.dataset,
                     "sparsity": M(list(sd.sparsity), "fraction", "seed_report"),
                     "accuracy": M(list(sd.accuracy), "fraction", "seed_report"),
                     "latency_s": M(list(sd.latency_s), "s", "seed_report")},
            "ours": {"model": c.model_name, "sparsity": M(sp, "fraction", "bundle"),
                     "accuracy": M([lv["q15_accuracy"]["value"] for lv in levels], "fraction", "golden_q15"),
                     "latency_s": M(lat, "s", levels[0]["cpu"]["latency_ms"]["source"]),
                     "speedup_vs_seed": [s / t for s, t in zip(sd.latency_s, lat)]},
            "caveat": training_budget(c.b)["caveat"], "notes": notes}
