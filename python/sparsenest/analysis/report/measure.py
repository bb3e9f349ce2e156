"""Measuring a model for its report: finding the build and bundle, compiling the builds measured (resident
and staged host builds, MSP430 builds, the dense twin), the host board's counters and switch writes, the
simulator runs and the cycle-model calibration. Everything lands in one `Ctx` the sections read."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from ...bundle import Bundle
from ...safe_output import check_output_dir, is_tool_dir
from ..cost import layers_from_build
from .. import calibration as sim_calibration
from .calibration_samples import (DEFAULT_SAMPLES, RUNTIME_TO_GRAPH_OP, SAMPLES_SCHEMA, fit_models, fit_samples,
                                  kernel_fit_samples, load_samples)
from .provenance import FORMAT, ReportError, jsonable

#: Model family and data set (bundle names) the seed report's Table 2 rows describe: a report plots its
#: numbers beside the seed's only for these (and the LeNet-5 threshold analysis only for the first).
SEED_COMPARABLE = {"lenet5": ("lenet5", "mnist")}


# ============================================================================================ inputs

def resolve_input(path: str | Path, bundle=None) -> tuple[Path | None, dict | None, object]:
    """(build dir or None, its meta or None, Bundle) for a build dir, a directory with host/, or a bundle."""
    p = Path(path)
    build = None
    if (p / "model_meta.json").exists():
        build = p
    elif (p / "host" / "model_meta.json").exists():
        build = p / "host"
    elif (p / "manifest.json").exists():
        return None, None, (bundle if bundle is not None else Bundle.load(p))
    else:
        raise ReportError(f"{p} is neither a build directory (model_meta.json), a directory with host/"
                          f"model_meta.json, nor a bundle (manifest.json). Compile a bundle first "
                          f"(`sparsenest compile BUNDLE -o {p}`) or pass the bundle itself.")
    meta = json.loads((build / "model_meta.json").read_text())
    if bundle is None:
        bpath = (meta.get("bundle") or {}).get("path") or ""
        cands = [Path(bpath), build / bpath, build.parent / bpath, build.parent / Path(bpath).name] if bpath else []
        cands += sorted(build.parent.glob("*.nest"))
        found = next((c for c in cands if str(c) and (c / "manifest.json").exists()), None)
        if found is None:
            raise ReportError(f"{build}: its bundle ({bpath or 'not recorded'}) was not found; pass it with "
                              f"--bundle PATH.nest")
        bundle = Bundle.load(found)
    elif isinstance(bundle, (str, Path)):
        bundle = Bundle.load(bundle)
    return build, meta, bundle


def layer_formats(meta: Mapping) -> dict[str, str]:
    """{layer: format} of a build (model_meta.json), to compile other builds of the same model with the same
    kernels."""
    out = {}
    for name, lm in meta["layers"].items():
        if "format" in lm:
            f = lm["format"]
            out[name] = f if isinstance(f, str) else f[0]
    return out


def check_report_dir(out: Path, force: bool = False, inputs=()) -> None:
    """A new or empty folder, or (with force) an earlier report, whose builds/ and figures/ are then removed.
    The report may lie inside its build (the default) but may not be the build or contain it."""
    check_output_dir(out, marker="report.json", fmt=FORMAT, inputs=inputs, force=force, what="report folder",
                     kind="sparsenest report", allow_inside=True)
    if is_tool_dir(out, "report.json", FORMAT):
        for sub in ("builds", "figures"):
            shutil.rmtree(out / sub, ignore_errors=True)

# ======================================================================================== host side

def host_layers(sim, meta: Mapping, mcu_meta: Mapping | None, x1: np.ndarray, level: int) -> list[dict]:
    """Cost-model layers (kernel keys "<graph op>/<format>") from one inference's host-board counters."""
    sim.set_level(level)
    sim.reset_counters()
    sim.infer(x1)
    layers = layers_from_build(meta, sim.layer_counters(), level)
    tiers = ((mcu_meta or meta).get("memory") or {}).get("tensors", {})
    for ly in layers:
        lm = meta["layers"][ly["name"]]
        ly["act_in_fram"] = any(tiers.get(t, {}).get("tier") == "fram"
                                for t in list(lm.get("inputs", [])) + [lm.get("output")])
    return layers


def measure_switches(build_dir: Path, n_levels: int) -> dict:
    """Bytes and write calls of every from->to switch on the host board: reload the image, go to `from`,
    clear the write log, go to `to`, sum the log."""
    from ...targets.host import HostSim
    sim = HostSim(build_dir)
    L = n_levels
    nbytes = [[0] * L for _ in range(L)]
    writes = [[0] * L for _ in range(L)]
    regions: dict[str, dict[str, int]] = {}
    for a in range(1, L + 1):
        for b in range(1, L + 1):
            if a == b:
                continue
            sim.reset_device()
            sim.set_level(a)
            sim.clear_write_log()
            sim.set_level(b)
            log = sim.write_log()
            if sim.get_level() != b:
                raise ReportError(f"{build_dir}: switch {a}->{b} left level {sim.get_level()}")
            nbytes[a - 1][b - 1] = int(sum(r.written for r in log))
            writes[a - 1][b - 1] = len(log)
            for r in log:
                d = regions.setdefault(f"{a}->{b}", {})
                d[r.region] = d.get(r.region, 0) + r.written
    return {"bytes": nbytes, "writes": writes, "regions": regions}


def level_storage(staged_meta: Mapping, level: int) -> dict[str, int]:
    """Weight bytes by part that level `level` reads (the prefix of every segmented array, whole
    unsegmented arrays): what storing levels 1..k nested takes, from the staged build's segments."""
    seg_of = {s["master"]: np.asarray(s["segments"]) for s in staged_meta.get("staged_arrays", [])}
    parts = {"values": 0, "indices": 0, "metadata": 0}
    for name, a in staged_meta["arrays"].items():
        if a.get("kind") != "format":
            continue
        seg = seg_of.get(name)
        b = int(a["bytes"]) if seg is None else int((seg[:, level] - seg[:, 0]).sum())
        parts[a["part"]] += b
    parts["total"] = sum(parts.values())
    return parts


# =========================================================================================== builds

@dataclass
class Ctx:
    """What the report's sections share: the bundle, the builds measured, the platform, the measurements."""
    b: object
    build: Path
    meta_in: dict
    out: Path
    work: Path
    plat: object
    kernels: list
    calib: object
    log: object
    notes: list = field(default_factory=list)
    formats: dict = field(default_factory=dict)
    levels_in: list = field(default_factory=list)
    res: dict | None = None               # resident host build (counters, switch bytes)
    stg: dict | None = None               # staged host build (switch bytes, level storage)
    mcu: dict | None = None               # resident MSP430 build (simulator, far placement)
    mcu_staged: dict | None = None        # staged MSP430 build (simulated switch cycles)
    mcu_err: str | None = None
    test: object = None
    chk_n: int = 0
    host_layers: dict = field(default_factory=dict)    # level -> cost-model layers from host counters
    c_eq_golden: dict = field(default_factory=dict)
    sim: dict = field(default_factory=lambda: {"runs": {}, "switch": None, "samples": [], "errors": []})
    ext: list = field(default_factory=list)            # samples of other runs (files)
    files: list = field(default_factory=list)
    layer_models: dict = field(default_factory=dict)   # kernels -> CycleModel (all samples) or None
    held_out: dict = field(default_factory=dict)       # kernels -> CycleModel (other runs only) or None
    kernel_models: dict = field(default_factory=dict)  # kernels -> CycleModel (kernel harness) or None
    predictions: dict = field(default_factory=dict)    # (kernels, level) -> predict_inference result
    dense: dict | None = None                          # dense twin's host build (compile_bundle's result)
    dense_layers: list = field(default_factory=list)   # its cost-model layers from host counters
    dense_eval_n: int | None = None

    @property
    def L(self) -> int:
        return int(self.b.n_levels)

    @property
    def model_name(self) -> str:
        return (self.b.manifest.get("model") or {}).get("name", "model")

    @property
    def mcu_meta(self) -> dict | None:
        return self.mcu["meta"] if self.mcu else None

    @property
    def dataset(self) -> str:
        return str(self.b.dataset.get("name") or "")

    @property
    def seed_key(self) -> str | None:
        """The seed report's Table 2 row this model and data set compare with (SEED_COMPARABLE), or None."""
        return next((k for k, (fam, ds) in SEED_COMPARABLE.items()
                     if self.model_name.startswith(fam) and self.dataset == ds), None)

    @property
    def lenet5_comparable(self) -> bool:
        return self.seed_key == "lenet5"

    @property
    def head_kernels(self) -> str:
        return "mpy32" if "mpy32" in self.kernels else self.kernels[0]


def compile_builds(c: Ctx, fmt, eval_images, simulate: bool) -> None:
    """The builds measured, all with the input build's formats: resident + staged host builds, resident (+
    staged, for the simulator) MSP430 builds; the input build itself when the target is a bundle."""
    from ...compiler.build import compile_bundle
    from ...compiler.codegen import CodegenError
    from ...compiler.planner import PlanError
    from ...data.calibration import calibration_inputs, evaluation_set
    c.calib = calibration_inputs(c.b) if c.calib is None else c.calib
    if c.meta_in is None:
        info = compile_bundle(c.b, c.work / "host", fmt=fmt, calib=c.calib,
                              evaluate=evaluation_set(c.b, eval_images))
        c.build, c.meta_in = info["out_dir"], info["meta"]
    c.formats = layer_formats(c.meta_in)
    c.levels_in = c.meta_in["levels"]
    need_eval = any(lv.get("q15_accuracy") is None for lv in c.levels_in)
    c.res = compile_bundle(c.b, c.work / "resident", fmt=c.formats, calib=c.calib, switching="resident",
                           evaluate=evaluation_set(c.b, eval_images) if need_eval else None)
    if need_eval:
        c.levels_in = c.res["meta"]["levels"]
        c.notes.append(f"{c.build} records no Q15 accuracy: evaluated here on {c.levels_in[0].get('n_eval')} "
                       f"test images")
    c.stg = compile_bundle(c.b, c.work / "staged", fmt=c.formats, calib=c.calib, switching="staged")
    try:
        c.mcu = compile_bundle(c.b, c.work / "mcu", target="msp430fr5994", fmt=c.formats, calib=c.calib,
                               build=False)
    except (PlanError, CodegenError) as e:
        c.mcu_err = str(e)
        c.notes.append(f"the model (resident) does not fit the MSP430FR5994: {c.mcu_err}")
    if c.mcu is not None and simulate:   # the staged MSP430 build only serves the simulated switches
        try:
            c.mcu_staged = compile_bundle(c.b, c.work / "mcu-staged", target="msp430fr5994", fmt=c.formats,
                                          calib=c.calib, switching="staged", build=False)
        except (PlanError, CodegenError) as e:
            c.notes.append(f"the staged build does not fit the MSP430FR5994, so its switch cycles are not "
                           f"simulated: {str(e).split(' Breakdown')[0]}")


def host_measurements(c: Ctx) -> None:
    """Per level: the host board's per-layer counters of one test image, and C == golden on 16 images."""
    from ... import data
    from ...compiler import golden
    from ...targets.host import HostSim
    c.test = data.load(c.b.dataset["name"], "test")
    sim = HostSim(c.res["out_dir"])
    chk = c.test.subset(min(16, len(c.test.y)), seed=3)
    c.chk_n = int(len(chk.y))
    for lv in range(1, c.L + 1):
        sim.set_level(lv)
        c.c_eq_golden[lv] = bool(np.array_equal(sim.infer(chk.x), golden.predict(c.res["qmodel"], chk.x, lv)))
        c.host_layers[lv] = host_layers(sim, c.res["meta"], c.mcu_meta, c.test.x[:1], lv)


def dense_twin(bundle):
    """The same network with every prunable weight kept (one level): the dense Q15 baseline. Weights that
    every level prunes keep the values the bundle stores for them."""
    intro = {k: np.ones_like(v) for k, v in bundle.intro.items()}
    arrays = dict(bundle.arrays) | {f"intro/{k}": v for k, v in intro.items()}
    manifest = dict(bundle.manifest)
    manifest["levels"] = [{"level": 1, "target_sparsity": 0.0, "sparsity": 0.0, "float_accuracy": None}]
    b = Bundle(manifest, arrays)
    b.manifest["arrays"] = b._array_index()
    return b


def dense_build(c: Ctx, eval_images) -> None:
    """The dense twin compiled in the dense format (resident, host board): its Q15 accuracy on as many test
    images as the levels' accuracies used, and one inference's counters for the cost model."""
    from ...compiler.build import compile_bundle
    from ...data.calibration import evaluation_set
    from ...targets.host import HostSim
    n = c.levels_in[0].get("n_eval") or eval_images
    c.dense = compile_bundle(dense_twin(c.b), c.work / "dense", fmt="dense", calib=c.calib, switching="resident",
                             evaluate=evaluation_set(c.b, n))
    c.dense_eval_n = c.dense["meta"]["levels"][0].get("n_eval")
    sim = HostSim(c.dense["out_dir"])
    c.dense_layers = host_layers(sim, c.dense["meta"], None, c.test.x[:1], 1)

# ===================================================================== simulator and calibration

def simulation(c: Ctx, simulate: bool, sim_inputs: int) -> Path | None:
    """The chip image in our FR5994 simulator; its samples are written to cycle_samples.json (returned)."""
    mm = c.mcu_meta
    if not simulate:
        c.sim["errors"].append("not run (--no-sim)")
    elif mm is None:
        c.sim["errors"].append("not run: the model does not fit the MSP430FR5994")
    else:
        counters = {lv: {ly["name"]: {k: v for k, v in ly["counts"].items() if k != "calls"} for ly in layers}
                    for lv, layers in c.host_layers.items()}
        xs = c.test.subset(max(1, int(sim_inputs)), seed=11)
        c.sim = sim_calibration.simulate_model(c.mcu["out_dir"], c.mcu_staged["out_dir"] if c.mcu_staged else None,
                                               c.mcu["qmodel"], xs.x, xs.y, counters, c.model_name, c.kernels, c.work, log=c.log)
    if not c.sim["samples"]:
        return None
    from ...targets.fr5994sim import CYCLE_NOTE
    path = c.out / "cycle_samples.json"
    path.write_text(json.dumps({
        "schema": SAMPLES_SCHEMA, "simulator": sim_calibration.SIMULATOR,
        "mclk_hz": int(c.plat.mclk_hz), "cycle_note": CYCLE_NOTE,
        "description": "per-layer samples of the model reported on (sparsenest.analysis.report), bench-mcu schema "
                       "plus graph_op", "samples": jsonable(c.sim["samples"])}, indent=1) + "\n")
    return path


def calibration(c: Ctx, samples, own_file: Path | None) -> dict:
    """Cycle models per kernel back-end: per-layer models (all samples; and other runs only, for the
    held-out check) and kernel-harness models (break-even curves)."""
    sample_files = [Path(p) for p in (samples if samples is not None
                                      else [p for p in DEFAULT_SAMPLES if Path(p).exists()])]
    c.ext, c.files = load_samples(sample_files)
    own = [dict(s, file=str(own_file)) for s in c.sim["samples"]]
    cal = {"files": c.files + ([str(own_file)] if own_file else []), "backends": {}, "validation": [],
           "kernel_models": {}, "notes": []}
    mapped = sorted({s["op"] for s in c.ext if s.get("source") == "layer" and not s.get("graph_op")
                     and s["op"] in RUNTIME_TO_GRAPH_OP})
    if mapped:
        cal["notes"].append("samples that name only the runtime op are taken as 2-D ("
                            + ", ".join(f"{o} -> {RUNTIME_TO_GRAPH_OP[o]}" for o in mapped)
                            + "): make bench-mcu measures LeNet-family networks")
    for k in c.kernels:
        fs_ext = fit_samples(c.ext, k)
        fs_all = fs_ext + fit_samples(own, k)
        cm = c.layer_models[k] = fit_models(fs_all, k)
        c.held_out[k] = fit_models(fs_ext, k) if fs_ext and own else None
        entry = {"file": None, "n_samples": len(fs_all), "n_own_samples": len(fs_all) - len(fs_ext), "keys": [],
                 "skipped": {}, "fits": {}}
        if cm is not None:
            cm.save(c.out / f"cycle_model_{k}.json")
            entry.update(file=f"cycle_model_{k}.json", keys=sorted(cm.kernels), skipped=cm.meta.get("skipped", {}),
                         fits={kk: {"n_samples": v["n_samples"], "max_rel_error": v["max_rel_error"],
                                    "fit": v.get("fit", "")} for kk, v in cm.kernels.items()})
        cal["backends"][k] = entry
        km = c.kernel_models[k] = fit_models(kernel_fit_samples(c.ext, k), k)
        cal["kernel_models"][k] = {"n_samples": km.meta.get("n_samples"), "keys": sorted(km.kernels)} if km else None
    any_cal = any(v["keys"] for v in cal["backends"].values())
    cal["status"] = "calibrated" if any_cal else "UNCALIBRATED"
    cal["label"] = (f"calibrated on {sim_calibration.SIMULATOR}" + (f" ({', '.join(cal['files'])})" if cal["files"] else "")
                    if any_cal else "UNCALIBRATED fallback (no simulator samples: run `make bench-mcu` or "
                                    "report a model that fits the simulator)")
    c.log(f"  cycle model: {cal['label']}")
    return cal


