"""`make table2`: the seed report's Table 2 (three nested levels per task: sparsity, accuracy, latency)
reproduced with our training, compiler and MCU runtime, with the seed's numbers beside ours.

Per task (sparsenest.experiments.tasks) and level set ("seed" = the seed's sparsities, "sparse" = ours, higher):

  1. train the nested model (cached: <out>/<task>/<variant>.nest is reused unless --force);
  2. compile for the host board (one format per layer for all levels; --format auto with --objective
     time (default): each layer's format and conv method chosen by the cost model within the FR5994's
     lower FRAM, compiler/choose.py, see choose_format): float and Q15
     accuracy on the whole test split (--quick: a slice), weight bytes by part, host-board counters per
     level, C == golden on real test inputs at every level (checked);
  3. compile levels 1..k for the MSP430FR5994 for every k: which levels fit (lower FRAM, plus upper FRAM
     for weights streamed in tiles); the first that does not fit keeps the compiler's PlanError message;
  4. simulate the largest build that fits the FR5994 (weights beyond lower FRAM streamed from upper FRAM
     in DMA tiles) as the chip image in our simulator (boards/msp430fr5994/sim): instructions, cycles
     (CPUXv2 table + FRAM wait states + DMA), FRAM traffic and energy per inference at every level it
     holds, outputs compared with golden bit for bit;
  5. latency and energy per level: simulated where it ran ("S"), otherwise predicted by the cost model
     from the host-board counters, with a cycle model calibrated on the per-layer core cycles of every
     model simulated (this run and earlier runs in the same -o folder); predicted levels whose weights stream
     from upper FRAM add the DMA cost of the tiles;
  6. switch bytes: FRAM bytes written when the staged build moves up to the level (measured on the host
     board's write log); a resident build writes the 2-byte level selector only.

    sparsenest bench table2 [--tasks lenet5,harnet,okgnet,squeezenext] [--variants seed,sparse]
                                      [--quick] [-o build/table2] [--force] [--objective time] [--threads 1]
                                      [--ray]    # variants as Ray tasks (also when RAY_ADDRESS is set)

Writes <out>/<task>/<variant>/result.json per run, and <out>/table2.md + <out>/table2.json with every task
that has a result in <out> (so tasks can be run one at a time; --quick: build/table2-quick unless -o).
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ... import data
from ...analysis import calibration
from ...analysis.cost import CycleModel, far_dma, layers_from_build, load_platform, predict_inference
from ...analysis.report import layer_formats
from ...bundle import Bundle, INTRO_PREFIX
from ...compiler import golden
from ...compiler.build import compile_bundle
from ...compiler.codegen import CodegenError
from ...compiler.planner import PlanError, get_target
from ...data.calibration import calibration_inputs, evaluation_set
from ...targets import firmware, msp430
from ...targets.fr5994sim import CYCLE_NOTE
from ...targets.host import HostSim
from .. import tasks as task_mod
from ..fanout import run_jobs, wanted as fanout_wanted

SIM_INPUTS = {"full": 2, "quick": 1}          # test inputs run per level in the simulator
CHECK_INPUTS = {"full": 200, "quick": 24}     # test inputs per level compared C vs golden on the host
SELECTOR_BYTES = 2                            # a resident switch writes the 16-bit level selector only
LATENCY_FLAGS = {"sim": "S", "cal": "P", "uncal": "P*"}


def _log(msg: str) -> None:
    from tqdm.auto import tqdm
    tqdm.write(msg)


# ---------------------------------------------------------------------------------------------- helpers

def truncated(bundle, k: int):
    """The nested bundle holding levels 1..k only (denser levels' extra weights dropped)."""
    arrays = dict(bundle.arrays)
    for key, intro in bundle.intro.items():
        it = np.where(intro > k, 0, intro).astype(np.uint8)
        arrays[INTRO_PREFIX + key] = it
        arrays[key] = np.where(it == 0, np.float32(0), bundle.arrays[key]).astype(np.float32)
    manifest = json.loads(json.dumps(bundle.manifest))
    manifest["levels"] = manifest["levels"][:k]
    b = Bundle(manifest, arrays)
    b.manifest["arrays"] = b._array_index()
    b.validate()
    return b


def weight_parts(meta: dict) -> dict:
    parts = {"values": 0, "indices": 0, "metadata": 0}
    for lm in meta["layers"].values():
        for k, v in lm.get("bytes_by_part", {}).items():
            parts[k] += int(v)
    total = sum(parts.values())
    return parts | {"total": total, "index_overhead": (parts["indices"] + parts["metadata"]) / total if total else 0.0}


def _fresh(d: Path) -> Path:
    if d.exists():
        shutil.rmtree(d)
    return d


def _act_in_fram(meta: dict, name: str) -> bool:
    tensors = meta["memory"].get("tensors", {})
    lm = meta["layers"][name]
    return any(tensors.get(t, {}).get("tier") == "fram" for t in list(lm.get("inputs", [])) + [lm.get("output")])


def host_layers(sim, meta: dict, x1: np.ndarray, level: int) -> list[dict]:
    """Cost-model layer list (sparsenest.analysis.cost.layers_from_build) from one inference's host counters."""
    sim.set_level(level)
    sim.reset_counters()
    sim.infer(x1)
    layers = layers_from_build(meta, sim.layer_counters(), level)
    for ly in layers:
        ly["act_in_fram"] = _act_in_fram(meta, ly["name"])
    return layers


# --------------------------------------------------------------------------------------- device fitting

def choose_format(bundle, calib, out: Path, policy: str, objective: str | None) -> tuple[object, object, dict]:
    """(format spec, conv spec, the choice as a dict) for every build of a variant. With policy "auto" and an
    objective, the cost-driven chooser (compiler/choose.py) picks each layer's format and conv method for
    the FR5994's budget (lower FRAM, so the simulator can run every level when some layout fits), and the
    host and device builds all use that choice. Any other policy is passed to the compiler as it is."""
    if policy != "auto" or objective is None:
        return policy, "auto", {}
    d = _fresh(out)
    try:
        ch = compile_bundle(bundle, d, target="msp430fr5994", fmt="auto", objective=objective, calib=calib,
                            build=False)["choice"]
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return ch.formats(), {**ch.conv_methods(), "*": "auto"}, ch.to_dict()


def device_fit(bundle, fmt, out: Path, calib, conv="auto") -> dict:
    """Compile levels 1..k for the MSP430FR5994 for k = L..1 (codegen only). Returns per k whether it fits,
    the bytes in lower/upper FRAM and the far (streamed) layers, the compiler's message where it does not,
    the largest k that fits (`k_device`) and the largest that needs no upper FRAM (`k_lower`)."""
    tgt = get_target("msp430fr5994")
    rows = []
    for k in range(bundle.n_levels, 0, -1):
        b = truncated(bundle, k) if k < bundle.n_levels else bundle
        d = _fresh(out / f"L{k}")
        row = {"k": k, "lower_budget": tgt.fram_bytes, "upper_budget": tgt.upper_fram_bytes}
        try:
            info = compile_bundle(b, d, target="msp430fr5994", fmt=fmt, calib=calib, build=False, conv=conv)
            mem = info["meta"]["memory"]
            row |= {"fits": True, "lower_bytes": mem["fram_total_estimate"],
                    "upper_bytes": mem.get("upper_fram_bytes", 0), "sram_arena_bytes": mem["sram_arena_bytes"],
                    "far": {v["layer"]: {"bytes_per_call": v["bytes_per_call"], "calls": v["calls_per_inference"],
                                         "tiles": v["tiles"], "arrays": len(v["arrays"])}
                            for v in info["meta"].get("far", {}).values()},
                    "dir": str(d)}
        except (PlanError, CodegenError) as e:
            row |= {"fits": False, "error": str(e)}
            shutil.rmtree(d, ignore_errors=True)
        rows.append(row)
    rows.reverse()
    fit = [r["k"] for r in rows if r["fits"]]
    lower = [r["k"] for r in rows if r["fits"] and not r["upper_bytes"]]
    return {"levels": rows, "k_device": max(fit, default=0), "k_lower": max(lower, default=0),
            "target": {"lower_fram_bytes": tgt.fram_bytes, "upper_fram_bytes": tgt.upper_fram_bytes,
                       "sram_bytes": tgt.sram_bytes}}


def refit_lower_fram(bundle, fmt, calib, out: Path, bytes_over: int, conv="auto") -> tuple[Path, dict]:
    """Compile for the MSP430FR5994 again with `bytes_over` (+1 KB) less lower FRAM for model data, so
    the planner moves more weights to upper FRAM (a many-layer model's code can exceed the planner's
    code reserve). Where that is less than the compiler can do with every weight it can stream, it compiles
    with the least it needs (PlanError.bytes_needed; SqueezeNext-CIFAR: its activation arena and tables).
    Returns the model folder and its far layers."""
    budget = get_target("msp430fr5994").fram_bytes - int(bytes_over) - 1024
    for attempt in range(3):
        try:
            info = compile_bundle(bundle, _fresh(out), target="msp430fr5994", fmt=fmt, calib=calib, build=False,
                                  target_overrides={"fram_bytes": budget}, conv=conv)
            break
        except PlanError as e:
            if attempt == 2 or not e.bytes_needed or e.bytes_needed <= budget:
                raise
            budget = e.bytes_needed
    return Path(info["out_dir"]), {v["layer"]: {"bytes_per_call": v["bytes_per_call"], "tiles": v["tiles"]}
                                   for v in info["meta"].get("far", {}).values()}


# ------------------------------------------------------------------------------------------- simulation

def simulate_levels(model_dir: Path, qmodel, x: np.ndarray, y: np.ndarray, levels: int) -> dict:
    """Run levels 1..`levels` of a compiled model's chip image in our simulator on the inputs x (every
    input at every level), per-layer counters included; outputs checked against golden bit for bit
    (analysis.calibration.simulate_firmware)."""
    sched = [firmware.Step(i, lv) for lv in range(1, levels + 1) for i in range(len(x))]
    # no UART report: it runs outside the measured inference, and its code would take lower FRAM
    fb = firmware.build(model_dir, image="fr5994", inputs=x, labels=y, schedule=sched, uart=False)
    run, per_level = calibration.simulate_firmware(fb, qmodel)
    return {"per_level": per_level, "golden_ok": True, "mismatches": [], "compared": len(run.records),
            "stack_used": run.stack_used, "regions": fb.regions, "simulator": calibration.SIMULATOR,
            "cycle_note": CYCLE_NOTE}


def simulate_fitted(bundle_k, row: dict, fmt, calib, refit_dir: Path, x, y, k: int, conv="auto") -> tuple[dict, Path, dict]:
    """simulate_levels on the model device_fit compiled for levels 1..k (`row`); where the linked image
    overflows lower FRAM, refit_lower_fram first. Returns the result, the model folder and its far layers."""
    mdir, far = Path(row["dir"]), row.get("far") or {}
    try:
        return simulate_levels(mdir, firmware.load_qmodel(mdir, bundle=bundle_k), x, y, k), mdir, far
    except msp430.RegionOverflowError as e:
        if e.region != "LOWER_FRAM":
            raise
        mdir, far = refit_lower_fram(bundle_k, fmt, calib, refit_dir, e.bytes_over, conv)
        r = simulate_levels(mdir, firmware.load_qmodel(mdir, bundle=bundle_k), x, y, k)
        r["refit"] = (f"the linked image overflowed lower FRAM by {e.bytes_over} bytes (the model's code is larger "
                      f"than the planner's reserve): compiled again with that much less lower FRAM for model data, "
                      f"so more weights stream from upper FRAM")
        return r, mdir, far


# ------------------------------------------------------------------------------------------ calibration

def calibration_samples(variant_result: dict) -> list[dict]:
    """(kernel_key, host counts, simulated core cycles) per layer and simulated level; layers whose
    weights stream from upper FRAM are left out (their DMA part is costed apart, cost.far_dma)."""
    out = []
    sim = variant_result.get("sim") or {}
    if sim and "cycles_total" not in next(iter((sim.get("per_level") or {None: {}}).values()), {}):
        return out        # an earlier run measured in mspdebug: other cycles, not mixed in
    far = set(sim.get("far") or {})
    if "far" not in sim and sim.get("k"):     # a result.json written before "far" was recorded
        far = set(variant_result["device"]["levels"][int(sim["k"]) - 1].get("far") or {})
    for lv, d in (sim.get("per_level") or {}).items():
        layers = variant_result["host_layers"].get(str(lv)) or variant_result["host_layers"].get(int(lv))
        for ly in layers or []:
            cyc = d["layers"].get(ly["name"])
            if cyc and ly["name"] not in far:
                out.append({"kernel_key": ly["kernel_key"], "counts": ly["counts"], "cycles": cyc,
                            "source": f"{variant_result['task']}/{variant_result['variant']} L{lv}"})
    return out


# ------------------------------------------------------------------------------------------ one variant

def run_variant(task, variant: str, root: Path, *, quick: bool, force: bool, fmt: str, sim: bool,
                objective: str | None = "time") -> dict:
    mode = "quick" if quick else "full"
    vdir = root / task.key / variant
    bpath = root / task.key / f"{variant}.nest"
    res = {"task": task.key, "variant": variant, "levels_target": list(task.levels(variant)), "mode": mode,
           "timings_s": {}}
    t0 = time.time()
    if bpath.exists() and not force:
        bundle = Bundle.load(bpath)
        res["bundle_cached"] = True
    else:
        bundle = task.train(bpath, variant, quick=quick, force=force, log=_log)
        bundle = Bundle.load(bpath)
        res["bundle_cached"] = False
    tc = bundle.manifest.get("train_config", {})
    res["train"] = {"wall_s": tc.get("wall_seconds"), "samples": tc.get("train_samples"),
                    "epochs_dense": tc.get("epochs_dense"), "epochs_retrain": tc.get("epochs_retrain"),
                    "dense_val_accuracy": tc.get("dense_val_accuracy"), "bundle": str(bpath)}
    res["timings_s"]["train_or_load"] = round(time.time() - t0, 1)
    L = bundle.n_levels
    test = data.load(bundle.dataset["name"], "test")
    res["data_note"] = task.data_note(test.note)
    n_eval = task.quick_test if quick else None
    calib = calibration_inputs(bundle)

    # 2. host build, all levels
    t0 = time.time()
    res["format_policy"] = fmt if fmt != "auto" or objective is None else f"auto, objective {objective}"
    fmt, conv, res["choice"] = choose_format(bundle, calib, vdir / "format", fmt, objective)
    host = compile_bundle(bundle, _fresh(vdir / "host"), target="host", fmt=fmt, conv=conv, calib=calib,
                          evaluate=evaluation_set(bundle, n_eval if quick else None))
    meta = host["meta"]
    formats = layer_formats(meta)
    res["formats"] = formats
    res["direct_convs"] = [n for n, lm in meta["layers"].items() if lm.get("conv") == "direct"]
    res["im2col_convs"] = [n for n, lm in meta["layers"].items() if lm.get("conv") == "im2col"]
    res["timings_s"]["host_compile_eval"] = round(time.time() - t0, 1)
    hs = HostSim(host["out_dir"])
    check = test.subset(CHECK_INPUTS[mode], seed=3)
    levels = []
    res["host_layers"] = {}
    for lv in range(1, L + 1):
        ev = meta["levels"][lv - 1]
        hs.set_level(lv)
        c = hs.infer(check.x)
        g = golden.predict(host["qmodel"], check.x, lv)
        layers = host_layers(hs, meta, test.x[:1], lv)
        res["host_layers"][str(lv)] = layers
        levels.append({"level": lv, "target_sparsity": ev["target_sparsity"], "sparsity": ev["sparsity"],
                       "float_accuracy": ev.get("float_accuracy"), "q15_accuracy": ev.get("q15_accuracy"),
                       "n_eval": ev.get("n_eval"), "c_equals_golden": bool(np.array_equal(c, g)),
                       "n_checked": int(len(check)), "nnz": int(meta["level_nnz"][lv - 1]),
                       "macs": int(sum(ly["counts"]["macs"] for ly in layers))})
    res["host_storage_all_levels"] = weight_parts(meta)

    # storage per level: what levels 1..k take stored once (nested), same formats
    t0 = time.time()
    for lv in levels:
        k = lv["level"]
        if k == L:
            parts = res["host_storage_all_levels"]
        else:
            m = compile_bundle(truncated(bundle, k), _fresh(vdir / "storage" / f"L{k}"), target="host",
                               fmt=formats, calib=calib, build=False)["meta"]
            parts = weight_parts(m)
        lv["storage"] = parts
    shutil.rmtree(vdir / "storage", ignore_errors=True)

    # 6. switch bytes, measured on a staged host build (FRAM budget lifted: the bytes a switch writes do
    # not depend on it, and whether the staged build fits the device is step 3's question)
    st = compile_bundle(bundle, _fresh(vdir / "staged"), target="host", fmt=formats, calib=calib,
                        switching="staged", target_overrides={"fram_bytes": 1 << 20})
    ss = HostSim(st["out_dir"])
    ss.set_level(1)
    for lv in levels:
        k = lv["level"]
        ss.clear_write_log()
        if k > 1:
            ss.set_level(k)
            lv["switch_up_bytes"] = int(sum(r.written for r in ss.write_log()))
    ss.clear_write_log()
    ss.set_level(1)
    res["switch_down_bytes"] = int(sum(r.written for r in ss.write_log()))
    ss.set_level(1)
    ss.clear_write_log()
    ss.set_level(L)
    res["switch_1_to_L_bytes"] = int(sum(r.written for r in ss.write_log()))
    res["timings_s"]["storage_switch"] = round(time.time() - t0, 1)

    # 3. device fit per level
    t0 = time.time()
    fit = device_fit(bundle, formats, vdir / "mcu", calib, conv)
    res["device"] = {k: v for k, v in fit.items()}
    res["timings_s"]["device_fit"] = round(time.time() - t0, 1)

    # 4. simulator
    res["sim"] = None
    if sim and fit["k_device"] >= 1:
        t0 = time.time()
        xs = test.subset(SIM_INPUTS[mode], seed=11)
        for k in range(fit["k_device"], 0, -1):
            row = fit["levels"][k - 1]
            if not row["fits"]:
                continue
            bk = truncated(bundle, k) if k < L else bundle
            try:
                r, mdir, far = simulate_fitted(bk, row, formats, calib, vdir / "mcu" / f"L{k}-refit", xs.x, xs.y, k,
                                               conv)
                res["sim"] = r | {"k": k, "dir": str(mdir), "far": far}
                break
            except msp430.RegionOverflowError as e:
                res.setdefault("sim_skipped", []).append(f"levels 1..{k}: {str(e).splitlines()[0]}")
            except (PlanError, CodegenError) as e:   # refit: the data that must stay in lower FRAM does not fit
                res.setdefault("sim_skipped", []).append(
                    f"levels 1..{k}: the chip image's code overflows the planner's lower-FRAM code reserve, and with "
                    f"that space taken from model data the compiler says: {str(e).split(' Breakdown')[0]}")
            except (msp430.ToolchainError, msp430.BuildError, msp430.SimError, firmware.FirmwareError,
                    calibration.CalibrationError) as e:
                res.setdefault("sim_skipped", []).append(f"levels 1..{k}: {type(e).__name__}: {e}")
                break
        res["timings_s"]["simulator"] = round(time.time() - t0, 1)
    elif not sim:
        res["sim_skipped"] = ["--no-sim"]
    else:
        res["sim_skipped"] = ["no level set fits the FR5994"]
    res["levels"] = levels
    return res


# -------------------------------------------------------------------------------------- latency, energy

def add_latency(res: dict, cm, platform) -> None:
    """Per level: latency/energy measured (simulator) or predicted (cost model), flagged."""
    sim = res.get("sim") or {}
    per_level = sim.get("per_level") or {}
    fit = res["device"]
    for lv in res["levels"]:
        k = lv["level"]
        layers = res["host_layers"][str(k)]
        pred = predict_inference(layers, platform, cm, lea=False)
        tot = pred["total"]
        n_layers = len(pred["layers"])
        n_unc = len(pred["uncalibrated_layers"])
        far = {}
        if k <= fit["k_device"]:
            far = fit["levels"][fit["k_device"] - 1].get("far") or {}
        dma = far_dma(far, platform) if far else None
        predicted = {"cycles": tot["cycles"], "time_s": tot["time_us"] * 1e-6, "energy_uj": tot["energy_uj"],
                     "calibrated_layers": n_layers - n_unc, "layers": n_layers,
                     "how": "cal" if n_unc == 0 else "uncal"}
        if dma:
            predicted["cycles"] += dma["cycles"]
            predicted["time_s"] += dma["cycles"] / platform.mclk_hz
            predicted["energy_uj"] += dma["energy_uj"]
            predicted["far_dma"] = dma
        lv["predicted"] = predicted
        s = per_level.get(k) or per_level.get(str(k))
        if s and "cycles_total" in s:      # our simulator: wait states, DMA and energy simulated too
            lv["simulated"] = {"cycles": s["cycles_total"], "cycles_core": s["cycles"], "instructions": s["instructions"],
                               "cycles_wait": s["wait_cycles"], "cycles_dma": s["dma_cycles"],
                               "fram_reads": s["fram_reads"], "fram_writes": s["fram_writes"],
                               "cache_hit_rate": s["cache_hit_rate"], "time_s": s["cycles_total"] / platform.mclk_hz,
                               "energy_uj": s["energy_uj"]}
            lv["latency_s"], lv["energy_uj"], lv["latency_how"] = lv["simulated"]["time_s"], s["energy_uj"], "sim"
            lv["prediction_error"] = predicted["cycles"] / s["cycles_total"] - 1.0
            lv["core_prediction_error"] = tot["cycles_core"] / s["cycles"] - 1.0
        else:
            lv["latency_s"], lv["energy_uj"], lv["latency_how"] = (predicted["time_s"], predicted["energy_uj"],
                                                                   predicted["how"])
        if k <= fit["k_lower"]:
            lv["device"] = "lower FRAM"
        elif k <= fit["k_device"]:
            lv["device"] = "upper FRAM (tiles)"
        else:
            lv["device"] = "does not fit"


# ------------------------------------------------------------------------------------------------ report

def _pct(v, digits=2):
    return "–" if v is None else f"{100 * v:.{digits}f}"


def _bytes(v):
    return "–" if v is None else f"{int(v):,}"


def render_markdown(report: dict) -> str:
    lines = [f"# Table 2: nested levels per task ({'QUICK: plumbing check, not results' if report['quick'] else 'full'})",
             ""]
    lines += [
        "Seed = the seed report's Table 2. Ours: accuracy on the task's test split (float / Q15 C model, "
        "bit-identical to golden), latency of one inference on the MSP430FR5994 at 16 MHz: "
        "**S** = simulated: the chip image in our MSP430FR5994 simulator (CPUXv2 cycle table, FRAM wait states "
        "and read cache, MPY32, DMA tiles from upper FRAM), **P** = predicted by the cost model from host-board "
        "counters with the cycle model calibrated on the simulator runs, **P\\*** = predicted with "
        "uncalibrated fallback cycles for some layers. Nothing is measured on a board. Energy: active power x "
        "time + FRAM writes (board.toml's model, on the simulated counts where simulated). Storage: bytes of weights, indices and metadata to hold levels 1..k (nested, stored "
        "once); idx = indices + metadata share. Switch: FRAM bytes a staged switch writes going up to the level "
        "from the one below (a resident build writes the 2-byte selector only). Device: where the build of "
        "levels 1..k lives on the FR5994 (lower FRAM, or weights streamed from upper FRAM in tiles).", ""]
    cal = report.get("calibration") or {}
    lines.append(f"Cycle model: {cal.get('summary', 'uncalibrated')}")
    lines.append("")
    for t in report["tasks"]:
        lines.append(f"## {t['title']}")
        lines.append("")
        lines.append(f"- data: {t['comparable']}")
        lines.append(f"- note: {t['data_note']}")
        tt = ", ".join(f"{v['variant']} {v['train']['wall_s']:.0f} s" + (" (cached bundle)" if v["bundle_cached"] else "")
                       for v in t["variants"] if v["train"].get("wall_s") is not None)
        lines.append(f"- training (1 thread): {tt}; total {t['train_total_s']:.0f} s")
        lines.append("")
        lines.append("| levels | L | sparsity | acc float | acc Q15 | latency s | speed-up | energy uJ | "
                     "storage B | idx % | switch B | device | seed sparsity | seed acc | seed latency s |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        seed = t["seed"]
        for v in t["variants"]:
            for lv in v["levels"]:
                i = lv["level"] - 1
                lat = lv.get("latency_s")
                flag = LATENCY_FLAGS.get(lv.get("latency_how"), "?")
                sl = seed["latency_s"][i]
                lines.append(
                    f"| {v['variant']} | {lv['level']} | {_pct(lv['sparsity'])} | {_pct(lv['float_accuracy'])} | "
                    f"{_pct(lv['q15_accuracy'])}{'' if lv['c_equals_golden'] else ' (C≠golden!)'} | "
                    f"{lat:.3f} {flag} | {sl / lat:.1f}x | {lv['energy_uj']:.0f} | {_bytes(lv['storage']['total'])} | "
                    f"{_pct(lv['storage']['index_overhead'], 0)} | "
                    f"{_bytes(lv.get('switch_up_bytes')) if lv['level'] > 1 else '–'} | {lv['device']} | "
                    f"{_pct(seed['sparsity'][i])} | {_pct(seed['accuracy'][i])} | {sl} |")
        lines.append("")
        for v in t["variants"]:
            dev = v["device"]
            bad = next((r for r in dev["levels"] if not r["fits"]), None)
            simtxt = (f"simulated levels 1..{v['sim']['k']} ({v['sim']['compared']} inferences, outputs "
                      f"{'== golden' if v['sim']['golden_ok'] else '!= GOLDEN'}"
                      + (f"; {v['sim']['refit']}" if v["sim"].get("refit") else "") + ")" if v.get("sim") else
                      "not simulated: " + "; ".join(v.get("sim_skipped", [])))
            fits = (f"levels 1..{dev['k_device']} fit the FR5994" if dev["k_device"] else "no level fits the FR5994")
            lower = (f"levels 1..{dev['k_lower']} in lower FRAM alone" if dev["k_lower"] else
                     "none in lower FRAM alone")
            when = f" [from an earlier run, {v.get('finished_at', '?')}]" if v.get("from_earlier_run") else ""
            convs, slow = v.get("direct_convs"), v.get("im2col_convs") or []
            direct = ("" if convs is None else ", convolutions by im2col" if not convs else
                      f", all {len(convs)} convolutions direct" if not slow else
                      f", direct convolutions: {', '.join(convs)}; im2col: {', '.join(slow)}")
            lines.append(f"- {v['variant']}{when}: formats {sorted(set(v['formats'].values()))} (--format "
                         f"{v.get('format_policy', '?')}{direct}); {fits} ({lower}); {simtxt}.")
            if bad:
                lines.append(f"  - compiler, levels 1..{bad['k']}: {bad['error']}")
        lines.append("")
    return "\n".join(lines) + "\n"


def print_summary(report: dict) -> str:
    rows = [f"{'task':<12} {'lv':<7} {'L':>1} {'sparsity':>8} {'acc':>7} {'Q15':>7} {'latency':>10} "
            f"{'seed sp':>7} {'seed acc':>8} {'seed lat':>8}"]
    for t in report["tasks"]:
        for v in t["variants"]:
            for lv in v["levels"]:
                i = lv["level"] - 1
                rows.append(f"{t['key']:<12} {v['variant']:<7} {lv['level']:>1} {_pct(lv['sparsity']):>8} "
                            f"{_pct(lv['float_accuracy']):>7} {_pct(lv['q15_accuracy']):>7} "
                            f"{lv['latency_s']:>7.3f} {LATENCY_FLAGS.get(lv['latency_how'], '?'):<2} "
                            f"{_pct(t['seed']['sparsity'][i]):>7} {_pct(t['seed']['accuracy'][i]):>8} "
                            f"{t['seed']['latency_s'][i]:>8}")
    return "\n".join(rows)


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    return o


def run_job(t, v: str, out: Path, quick: bool, force: bool, fmt: str, sim: bool, threads: int,
            objective: str | None = "time") -> dict:
    """One task's variant, its result.json written: a Ray task with --ray / RAY_ADDRESS."""
    import torch
    torch.set_num_threads(threads)
    _log(f"== {t.title}: {v} levels {list(t.levels(v))}{' (quick)' if quick else ''}")
    t0 = time.time()
    r = run_variant(t, v, out, quick=quick, force=force, fmt=fmt, sim=sim, objective=objective)
    r["wall_s"] = round(time.time() - t0, 1)
    r["finished_at"] = time.strftime("%Y-%m-%d %H:%M")
    (out / t.key / v / "result.json").write_text(json.dumps(_jsonable(r), indent=1) + "\n")
    return r


def add_arguments(p) -> None:
    from ... import cli_args as arg
    p.add_argument("--tasks", default="all", help="comma-separated: " + ",".join(task_mod.ORDER))
    p.add_argument("--variants", default="seed,sparse", help="level sets: seed (the seed's sparsities), sparse")
    p.add_argument("--quick", action="store_true", help="a small slice and 1+1 epochs: checks the plumbing")
    arg.add_output(p, default=None, help="default build/table2 (build/table2-quick with --quick)")
    p.add_argument("--force", action="store_true", help="retrain even if a bundle exists")
    p.add_argument("--format", default="auto", help="auto (default: chosen per layer by --objective) or a format name")
    p.add_argument("--objective", default="time", choices=["time", "energy", "bytes", "smallest"],
                   help="with --format auto: what the per-layer choice minimises within the FR5994's lower FRAM "
                        "(compiler/choose.py); smallest: the smallest format per layer (the old auto)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: see tasks.py)")
    p.add_argument("--no-sim", action="store_true", help="skip the MSP430 simulator")
    p.add_argument("--ray", action="store_true", help="run the variants as Ray tasks (also when RAY_ADDRESS is set)")


def run(a) -> int:
    import torch
    from tqdm.auto import tqdm

    torch.set_num_threads(a.threads)
    out = Path(a.out or ("build/table2-quick" if a.quick else "build/table2"))
    out.mkdir(parents=True, exist_ok=True)
    chosen = task_mod.parse(a.tasks)
    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    for v in variants:
        if v not in task_mod.VARIANTS:
            raise ValueError(f"unknown variant {v!r}; known: {', '.join(task_mod.VARIANTS)}")
    results: list[dict] = []
    t_all = time.time()
    on_ray = fanout_wanted(a.ray)
    job_out = out.resolve() if on_ray else out   # Ray workers need not share this working directory
    objective = None if a.objective == "smallest" else a.objective
    jobs = [(t, v, job_out, a.quick, a.force, a.format, not a.no_sim, a.threads, objective)
            for t in chosen for v in variants]
    results += run_jobs(run_job, jobs, use_ray=on_ray, progress=lambda js: tqdm(js, desc="table2", unit="variant"))
    # earlier results in the same --out (tasks run one at a time) join the table and the calibration
    mode = "quick" if a.quick else "full"
    ran = {(r["task"], r["variant"]) for r in results}
    earlier = []
    for key in task_mod.ORDER:
        for v in task_mod.VARIANTS:
            f = out / key / v / "result.json"
            if (key, v) in ran or not f.exists():
                continue
            try:
                r = json.loads(f.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if r.get("mode") == mode and "host_layers" in r and "levels" in r:
                r["from_earlier_run"] = True
                earlier.append(r)
    results += earlier
    samples = [s for r in results for s in calibration_samples(r)]
    cm = CycleModel.calibrate(samples, cycle_note=CYCLE_NOTE)
    platform = load_platform()
    for r in list(results):
        try:
            add_latency(r, cm, platform)
        except (KeyError, TypeError) as e:  # a result.json written by an older version of this driver
            _log(f"skipping the earlier result of {r['task']}/{r['variant']} ({type(e).__name__}: {e}); rerun it")
            results.remove(r)
    errs = [lv["prediction_error"] for r in results for lv in r["levels"] if "prediction_error" in lv]
    cal = {"keys": sorted(cm.kernels), "meta": cm.meta,
           "kernels": {k: {kk: v[kk] for kk in ("coefficients", "n_samples", "max_rel_error", "r2")}
                       for k, v in cm.kernels.items()},
           "prediction_error_on_simulated": {"max_abs": max(map(abs, errs), default=None), "n": len(errs)}}
    core = [lv["core_prediction_error"] for r in results for lv in r["levels"] if "core_prediction_error" in lv]
    cal["core_prediction_error_on_simulated"] = {"max_abs": max(map(abs, core), default=None), "n": len(core)}
    cal["summary"] = (f"calibrated kernel keys {', '.join(cal['keys']) or 'none'} on {cm.meta['n_samples']} "
                      f"per-layer simulator samples ({', '.join(cm.meta['sources']) or 'no simulated model'}); "
                      + (f"predicted vs simulated cycles within {100 * cal['prediction_error_on_simulated']['max_abs']:.1f} % "
                         f"(core cycles: {100 * cal['core_prediction_error_on_simulated']['max_abs']:.1f} %) "
                         f"on the {len(errs)} simulated levels (in sample); " if errs else "")
                      + "other keys: uncalibrated fallback table")
    report = {"quick": a.quick, "out": str(out), "threads": a.threads, "format": a.format,
              "platform": {"name": platform.name, "mclk_hz": platform.mclk_hz, "wait_states": platform.wait_states,
                           "active_power_mw": platform.active_power_w * 1e3},
              "calibration": cal, "wall_s": round(time.time() - t_all, 1), "tasks": []}
    for t in [task_mod.TASKS[k] for k in task_mod.ORDER]:
        vs = [r for v in task_mod.VARIANTS for r in results if r["task"] == t.key and r["variant"] == v]
        if not vs:
            continue
        report["tasks"].append({
            "key": t.key, "title": t.title, "model": t.model, "dataset": t.dataset, "comparable": t.comparable,
            "data_note": vs[0]["data_note"],
            "seed": {"model": t.seed.model, "dataset": t.seed.dataset, "sparsity": list(t.seed.sparsity),
                     "accuracy": list(t.seed.accuracy), "latency_s": list(t.seed.latency_s)},
            "train_total_s": sum(v["train"]["wall_s"] or 0 for v in vs),
            "variants": [{k: v[k] for k in v if k != "host_layers"} for v in vs]})
    (out / "table2.json").write_text(json.dumps(_jsonable(report), indent=1) + "\n")
    (out / "table2.md").write_text(render_markdown(report))
    print(print_summary(report))
    print(f"\nwritten {out / 'table2.md'} and {out / 'table2.json'} ({report['wall_s']:.0f} s)")
    bad = [f"{r['task']}/{r['variant']} L{lv['level']}" for r in results for lv in r["levels"]
           if not lv["c_equals_golden"]]
    bad += [f"{r['task']}/{r['variant']} simulator" for r in results if r.get("sim") and not r["sim"]["golden_ok"]]
    if bad:
        print("C differs from golden: " + ", ".join(bad), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    from ...cli import run_command
    return run_command("bench table2", argv)

if __name__ == "__main__":
    sys.exit(main())
