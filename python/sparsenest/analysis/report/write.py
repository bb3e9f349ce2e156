"""`build_report`: collect (measure and assemble report.json's dict), draw the figures, render report.md /
report.html from the templates, and write them with report.json into the report folder."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

from ..harvest import plot as harvest_plot
from . import figures as fg
from .collect import collect
from .provenance import log_line, validate_report
from .render import render_html, render_markdown

#: Figure key -> (file name, drawing function); the harvest time series come from the runs themselves.
FIGURES = {"accuracy_vs_sparsity": ("accuracy_vs_sparsity.png", fg.fig_accuracy),
           "accuracy_vs_energy": ("accuracy_vs_energy.png", fg.fig_accuracy_energy),
           "latency_energy": ("latency_energy.png", fg.fig_latency_energy),
           "latency_per_layer": ("latency_per_layer.png", fg.fig_layer_latency),
           "storage_per_layer": ("storage_per_layer.png", fg.fig_storage),
           "memory_map": ("memory_map.png", fg.fig_memory_map),
           "switch_cost": ("switch_cost.png", fg.fig_switch),
           "breakeven": ("breakeven.png", fg.fig_breakeven),
           "harvest_policies": ("harvest_policies.png", fg.fig_policies)}


def build_report(target: str | Path, out_dir: str | Path | None = None, *, bundle=None,
                 samples: Sequence[str | Path] | None = None, simulate: bool = True,
                 kernels: Sequence[str] = ("mpy32", "ref"), sim_inputs: int = 2, eval_images: int | str = "test",
                 platform=None, trace: str = "solar", capacitor_f: float = 0.047,
                 harvest_hours: float | None = None, calib=None, fmt: str = "auto", html: bool = True,
                 force: bool = False, log=log_line) -> dict:
    """Write the report of `target` (build dir, directory with host/, or bundle) into `out_dir` (default:
    <build>/report) and return report.json's dict. `samples`: cycle_samples.json files to calibrate on
    (default: DEFAULT_SAMPLES that exist; [] for none). `simulate`: run the chip image in our FR5994 simulator when it links.
    `kernels`: back-ends simulated and predicted ("mpy32" first: the chip's). `eval_images`: test images for
    accuracies the build does not record ("test" = all). `calib`: calibration inputs of the compilations.
    An earlier report in the output folder is replaced only with force=True."""
    t_start = time.time()
    got = collect(target, out_dir, bundle=bundle, samples=samples, simulate=simulate, kernels=kernels,
                  sim_inputs=sim_inputs, eval_images=eval_images, platform=platform, trace=trace,
                  capacitor_f=capacitor_f, harvest_hours=harvest_hours, calib=calib, fmt=fmt, force=force, log=log)
    rep, out = got.report, got.out
    figs = out / "figures"
    rep["figures"] = {k: f"figures/{name}" for k, (name, draw) in FIGURES.items()
                      if k != "memory_map" or rep["memory_map"]}
    for k, rel in rep["figures"].items():
        FIGURES[k][1](rep, out / rel)
    cmp = rep["harvest"]["comparison"]
    for key, policy in (("harvest_energy_aware", cmp["energy_aware"]), ("harvest_fixed_densest", cmp["fixed_densest"])):
        harvest_plot(got.harvest_runs[policy], figs / f"{key}.png", got.trace)
        rep["figures"][key] = f"figures/{key}.png"
    rep["generated"]["wall_s"] = round(time.time() - t_start, 1)
    validate_report(rep)
    (out / "report.json").write_text(json.dumps(rep, indent=1, ensure_ascii=False) + "\n")
    md = render_markdown(rep)
    (out / "report.md").write_text(md)
    if html:
        (out / "report.html").write_text(render_html(md, f"sparsenest report: {rep['model']['name']}"))
    log(f"  wrote {out / 'report.md'}, report.html, report.json, {len(rep['figures'])} figures "
        f"({rep['generated']['wall_s']:.0f} s)")
    return rep
