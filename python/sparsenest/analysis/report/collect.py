"""Gathering a report: measure the model (measure.py), assemble every section into one plain dict (the one
report.json holds), and keep the harvest runs the time-series figures need beside it."""
from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ...compiler.analyze import analyze_bundle
from ..cost import load_platform
from . import sections as sec
from .breakeven import breakeven_section, cycle_tables
from .measure import (Ctx, calibration, check_report_dir, compile_builds, dense_build, host_measurements,
                      simulation, resolve_input)
from .overview import dense_baseline, memory_map_section, summary
from .provenance import FORMAT, SOURCES, VERSION, M, jsonable, log_line
from .training import training_budget


@dataclass
class Collected:
    """report.json's dict, and what only the figures need: the harvest runs and their trace."""
    report: dict
    out: Path
    harvest_runs: dict
    trace: object


def collect(target: str | Path, out_dir: str | Path | None = None, *, bundle=None,
            samples: Sequence[str | Path] | None = None, simulate: bool = True,
            kernels: Sequence[str] = ("mpy32", "ref"), sim_inputs: int = 2, eval_images: int | str = "test",
            platform=None, trace: str = "solar", capacitor_f: float = 0.047, harvest_hours: float | None = None,
            calib=None, fmt: str = "auto", force: bool = False, log=log_line) -> Collected:
    """Measure `target` and assemble the report (build_report's arguments; see there). Writes only into the
    output folder: builds/, cycle_samples.json and the calibrated cycle models."""
    t_start = time.time()
    build, meta_in, b = resolve_input(target, bundle)
    out = Path(out_dir) if out_dir is not None else (Path(target) / "report" if build else
                                                     Path(target).with_suffix("") / "report")
    check_report_dir(out, force, inputs=[target, bundle if isinstance(bundle, (str, Path)) else None])
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "builds").mkdir(exist_ok=True)
    plat = platform if platform is not None and not isinstance(platform, (str, Path)) else load_platform(platform)
    c = Ctx(b=b, build=build, meta_in=meta_in, out=out, work=out / "builds", plat=plat, kernels=list(kernels),
            calib=calib, log=log)
    log(f"report: {c.model_name} ({c.L} levels) -> {out}")
    compile_builds(c, fmt, eval_images, simulate)
    host_measurements(c)
    dense_build(c, eval_images)
    own_file = simulation(c, simulate, sim_inputs)
    cal = calibration(c, samples, own_file)
    levels = sec.level_rows(c)
    cal["validation"] = sec.validation(c)
    ana = analyze_bundle(b)
    tables = cycle_tables(plat, c.kernel_models)
    layers = sec.layer_rows(c, tables, ana)
    switching = sec.switching_section(c)
    harvest, results, tr = sec.harvest_section(c, levels, switching, trace, capacitor_f, harvest_hours)
    rep = jsonable({
        "format": FORMAT, "version": VERSION,
        "generated": {"by": "sparsenest.analysis.report", "at": _dt.datetime.now().isoformat(timespec="seconds"),
                      "wall_s": 0.0, "args": {"target": str(target), "samples": c.files, "simulate": simulate,
                                              "kernels": c.kernels, "sim_inputs": sim_inputs, "trace": trace,
                                              "capacitor_f": capacitor_f, "harvest_hours": harvest_hours}},
        "model": {"name": c.model_name, "build_dir": str(c.build), "bundle": str(getattr(b, "path", "") or ""),
                  "dataset": b.dataset.get("name"), "dataset_note": c.test.note or "", "n_levels": c.L,
                  "switching": c.meta_in.get("switching"), "formats": c.formats, "kernels_measured": c.kernels,
                  "seed_row": c.seed_key, "lenet5_comparable": c.lenet5_comparable,
                  "builds": {"resident": c.res["out_dir"], "staged": c.stg["out_dir"],
                             "mcu": c.mcu["out_dir"] if c.mcu else None,
                             "mcu_staged": c.mcu_staged["out_dir"] if c.mcu_staged else None,
                             "dense": c.dense["out_dir"]}},
        "sources": SOURCES,
        "platform": {"name": plat.name, "files": plat.files, "mclk_hz": M(plat.mclk_hz, "Hz", "platform_constant"),
                     "constants": {k: M(v.value, v.unit, "platform_constant", reference=v.source)
                                   for k, v in plat.constants.items()},
                     "derived": plat.derived()},
        "calibration": cal,
        "simulator": {"ran": bool(c.sim["runs"]), "errors": c.sim["errors"],
                      "runs": {k: {kk: v[kk] for kk in ("compared_with_golden", "golden_ok", "stack_used", "regions")}
                               for k, v in c.sim["runs"].items()}},
        "training": training_budget(b), "dense_baseline": dense_baseline(c, levels),
        "levels": levels, "layers": layers, "storage": sec.storage_section(c, layers, ana),
        "memory_map": memory_map_section(c), "switching": switching,
        "breakeven": breakeven_section(plat, c.formats, tables, layers, c.lenet5_comparable), "harvest": harvest,
        "seed_comparison": sec.seed_section(c, levels), "figures": {}, "notes": c.notes})
    rep["summary"] = jsonable(summary(rep))
    rep["generated"]["wall_s"] = round(time.time() - t_start, 1)
    return Collected(rep, out, results, tr)
