"""The cost-driven layout choice (compiler/choose.py) measured: each objective against the old `auto`
(the smallest format per layer, conv direct where the format has a direct kernel), in our
MSP430FR5994 simulator on the chip image, and the calibration of the cycle model the chooser ships.

Per build (old auto = `compile --format auto` before the chooser; default = `--objective time`; each of
time, energy, bytes): weight bytes by part, the level-map entropy bound (compiler/analyze.py) and the
index + metadata bytes over it, per level the simulated core cycles and cycles with FRAM wait states
(every output compared with golden bit for bit) beside the chooser's prediction, and the ratios to the
old auto build measured in the same run. `make bench` and `make bench-mcu` print this table for
their model (`report_objectives`).

    sparsenest bench objectives [--bundle B.nest] [-o build/bench/objectives]
    sparsenest bench objectives --calibrate [--write-model]   # refit compiler/cycle_model_cpu.json
    sparsenest bench objectives --calibrate-lea [--write-model]   # refit compiler/cycle_model_lea.json

--calibrate measures every CPU format with direct and im2col convolutions on LeNet-5-small (seeded
weights, magnitude-nested masks at 90/75/50 %: costs depend on the masks' sizes, not on the values)
and HAR-Net (seeded, same sparsities), plus one-level dense builds of both, one input per level, and
fits CycleModel.calibrate on the per-layer core cycles; --calibrate-lea scales the LEA model per layer
kind to the simulator (calibrate_lea); --write-model replaces the shipped file with the result.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from ...analysis import calibration
from ...compiler import choose
from ...compiler.codegen_lower import DIRECT_FORMATS

#: the builds compared: name -> (fmt, objective); "auto-smallest" is the pre-chooser default
BUILDS = {"auto-smallest": ("auto", None), "time": ("auto", "time"), "energy": ("auto", "energy"),
          "bytes": ("auto", "bytes")}
CALIBRATION_FORMATS = ("csr16", "rel8", "rel4", "bitmap", "hbitmap", "pattern")  # dense cannot nest


def _log(msg: str) -> None:
    print(msg, flush=True)


def measure_build(bundle, out: Path, fmt, objective, *, conv="auto", n_inputs: int = 1, kernels: str = "mpy32",
                  cycle_model=None) -> dict:
    """Compile for the MSP430FR5994 (chip target: lower FRAM less the code reserve), run every level in our
    simulator (outputs == golden), and return bytes, cycles per level, the choice and the cycle samples."""
    from ...compiler.build import compile_bundle
    from ...data.calibration import calibration_inputs
    from ...targets import firmware
    info = compile_bundle(bundle, out, target="msp430fr5994", fmt=fmt, conv=conv, build=False,
                          calib=calibration_inputs, objective=objective, cycle_model=cycle_model, force=True)
    meta, qm = info["meta"], info["qmodel"]
    L = int(meta["n_levels"])
    model = firmware.load_model_dir(out)
    x, y = firmware.default_inputs(model, n_inputs)
    sched = [firmware.Step(i, lv) for lv in range(1, L + 1) for i in range(n_inputs)]
    counters = calibration.host_layer_counters(out, x, list(range(1, L + 1)))
    fb = firmware.build(model, out / f"chip-{kernels}", image="fr5994", kernels=kernels, inputs=x, labels=y,
                        schedule=sched)
    _, per = calibration.simulate_firmware(fb, qm)
    shapes = {n["name"]: n["shape"] for n in qm.graph["nodes"]}
    parts = {"values": 0, "indices": 0, "metadata": 0}
    for lm in meta["layers"].values():
        for k, v in (lm.get("bytes_by_part") or {}).items():
            parts[k] += v
    matmul = [n for n, lm in meta["layers"].items() if lm.get("op") in ("conv", "linear")]
    return {"formats": {n: meta["layers"][n]["format"] for n in matmul},
            "conv": {n: meta["layers"][n]["conv"] for n in matmul if "conv" in meta["layers"][n]},
            "bytes_by_part": parts, "weight_bytes": sum(parts.values()),
            "upper_fram_bytes": meta["memory"].get("upper_fram_bytes", 0),
            "lower_fram_bytes": meta["memory"]["fram_total_estimate"],
            "cycles": {lv: d["cycles"] for lv, d in per.items()},
            "cycles_total": {lv: d["cycles_total"] for lv, d in per.items()},
            "matmul_cycles": {lv: sum(d["layer_counters"][n]["cycles"] for n in matmul) for lv, d in per.items()},
            "choice": info["choice"].to_dict() if info["choice"] else None,
            "golden_ok": True,
            "samples": calibration.layer_samples(per, meta, shapes, counters, model=str(meta.get("name")),
                                                 build=out.name, kernels=kernels)}


def compare(bundle, out: Path, log=_log) -> dict:
    """Every build of BUILDS on `bundle`, the entropy bound, ratios to auto-smallest."""
    from ...compiler import analyze
    bound = analyze.analyze_bundle(bundle, formats=("csr16",))["totals"]["bound_bytes"]
    res = {"bound_bytes": bound, "builds": {}}
    for name, (fmt, objective) in BUILDS.items():
        t0 = time.time()
        r = measure_build(bundle, out / name, fmt, objective)
        r.pop("samples")
        r["index_meta_vs_bound"] = (r["bytes_by_part"]["indices"] + r["bytes_by_part"]["metadata"]) / bound \
            if bound else None
        if r["choice"]:   # the chooser's prediction of its conv/linear layers against the simulator
            pred = r["choice"]["totals"]["cycles"]
            r["prediction_error"] = {lv: pred[lv - 1] / r["matmul_cycles"][lv] - 1 for lv in r["matmul_cycles"]}
        res["builds"][name] = r
        log(f"  {name}: {r['weight_bytes']} B, " + ", ".join(f"L{lv} {c / 1e3:.0f}k" for lv, c in r["cycles_total"].items())
            + f" cycles ({time.time() - t0:.0f} s, == golden)")
    base = res["builds"]["auto-smallest"]
    for r in res["builds"].values():
        r["bytes_ratio"] = r["weight_bytes"] / base["weight_bytes"]
        r["cycles_ratio"] = {lv: r["cycles_total"][lv] / base["cycles_total"][lv] for lv in r["cycles_total"]}
    return res


def format_compare(res: dict, title: str = "") -> str:
    b = res["builds"]
    L = len(next(iter(b.values()))["cycles_total"])
    lines = [f"layout choice by objective{(' -- ' + title) if title else ''}: chip image in our FR5994 simulator, "
             f"cycles with FRAM wait states per inference; level-map entropy bound {res['bound_bytes']:.0f} B",
             f"{'build':<24} {'values':>7} {'indices':>7} {'meta':>6} {'total':>7} {'idx+meta/bound':>14} "
             + " ".join(f"{'L' + str(lv) + ' cycles':>12}" for lv in range(1, L + 1))
             + "  " + " ".join(f"{'L' + str(lv) + ' x old':>8}" for lv in range(1, L + 1)) + f" {'bytes x old':>11}"]
    for name, r in b.items():
        p = r["bytes_by_part"]
        label = name + (" (default)" if name == "time" else " (old auto)" if name == "auto-smallest" else "")
        lines.append(f"{label:<24} {p['values']:>7} {p['indices']:>7} {p['metadata']:>6} {r['weight_bytes']:>7} "
                     f"{r['index_meta_vs_bound'] or 0:>13.2f}x "
                     + " ".join(f"{r['cycles_total'][lv]:>12.0f}" for lv in sorted(r["cycles_total"]))
                     + "  " + " ".join(f"{r['cycles_ratio'][lv]:>8.2f}" for lv in sorted(r["cycles_ratio"]))
                     + f" {r['bytes_ratio']:>11.2f}")
        if r["upper_fram_bytes"]:
            lines[-1] += f"  ({r['upper_fram_bytes']} B streamed from upper FRAM)"
    for name, r in b.items():
        if "prediction_error" in r:
            lines.append(f"  {name}: predicted vs simulated cycles of the conv/linear layers (with FRAM wait states): "
                         + ", ".join(f"L{lv} {100 * e:+.1f} %" for lv, e in sorted(r["prediction_error"].items())))
    for name, r in b.items():
        fm = ", ".join(f"{n} {f}" + (f"/{r['conv'][n]}" if n in r["conv"] else "") for n, f in r["formats"].items())
        lines.append(f"  {name}: {fm}")
    return "\n".join(lines)


def report_objectives(bundle, out: Path, title: str = "", log=_log) -> dict | None:
    """For `make bench` / `make bench-mcu`: compare() printed; None (with the reason) without the toolchain."""
    from ...targets import msp430
    try:
        msp430.find_toolchain()
    except msp430.ToolchainError as e:
        log(f"layout choice by objective skipped: MSP430 toolchain missing ({e})")
        return None
    res = compare(bundle, out, log=log)
    print(format_compare(res, title))
    (out / "objectives.json").write_text(json.dumps(res, indent=1, default=calibration.json_default) + "\n")
    return res


# ------------------------------------------------------------------------------------- calibration

def calibration_bundles(sparsities=(0.9, 0.75, 0.5)):
    from .mcu import seeded_bundle
    return {"lenet5-small": seeded_bundle("lenet5-small", (1, 28, 28), "mnist", sparsities),
            "harnet": seeded_bundle("harnet", (9, 128), "har", sparsities)}


def dense_samples(out: Path, log=_log) -> list[dict]:
    """Samples of the dense format (one level, every weight kept: dense cannot nest), so the dense CPU kernel
    is calibrated too (the analyzer's break-even compares sparse layouts with it)."""
    samples = []
    for mname, b in calibration_bundles((0.0,)).items():
        t0 = time.time()
        r = measure_build(b, out / mname / "dense", "dense", None)
        samples += r["samples"]
        log(f"  {mname} dense (one level): {len(r['samples'])} samples ({time.time() - t0:.0f} s)")
        shutil.rmtree(out / mname / "dense", ignore_errors=True)
    return samples


def calibrate(out: Path, log=_log):
    """Cycle samples of every CALIBRATION_FORMATS x conv method on the calibration bundles, and the fit."""
    from ...analysis.cost import CycleModel
    from ...targets.fr5994sim import CYCLE_NOTE
    samples = []
    for mname, b in calibration_bundles().items():
        for fmt in CALIBRATION_FORMATS:
            for conv in ("auto", "im2col") if fmt in DIRECT_FORMATS else ("auto",):
                t0 = time.time()
                try:
                    r = measure_build(b, out / mname / f"{fmt}-{conv}", fmt, None, conv=conv)
                except Exception as e:   # a format that cannot represent this model's masks, or does not fit
                    log(f"  {mname} {fmt}/{conv}: skipped ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
                    continue
                samples += r["samples"]
                log(f"  {mname} {fmt}/{conv}: {len(r['samples'])} samples ({time.time() - t0:.0f} s)")
                shutil.rmtree(out / mname / f"{fmt}-{conv}", ignore_errors=True)
    samples += dense_samples(out, log)
    fit = calibration.fit_input(samples)
    cm = CycleModel.calibrate(fit, cycle_note=CYCLE_NOTE)
    return cm, samples


def calibrate_lea(out: Path, log=_log) -> dict:
    """The LEA model (lea_plan.lea_layer_cost) against our simulator: bench lea's seeded LeNet-5 with nested
    block masks (kernel rows, 4 x 8 blocks) at 90/75/50 %, compiled --engine lea for the chip, every level
    simulated (== golden); per layer kind the factor sum(simulated cpu + LEA + DMA cycles) / sum(model
    cycles) (wait states are the platform's, as for the CPU model), stored as choose.LEA_CALIBRATION."""
    from ...compiler.build import compile_bundle
    from ...compiler.lea_plan import lea_layer_cost
    from ...data.calibration import calibration_inputs
    from ...targets import firmware
    from .lea import seeded_block_bundle
    b = seeded_block_bundle((0.9, 0.75, 0.5))
    mdir = out / "lea-calibration"
    info = compile_bundle(b, mdir, target="msp430fr5994", build=False, force=True, calib=calibration_inputs,
                          engine="lea")
    L = int(b.n_levels)
    chip = firmware.build(mdir, mdir / "chip", image="fr5994", n_inputs=1,
                          schedule=[firmware.Step(0, lv) for lv in range(1, L + 1)])
    _, per = calibration.simulate_firmware(chip, info["qmodel"])
    samples = []
    for lv, d in sorted(per.items()):
        for name, lay in info["qmodel"].lea_layouts.items():
            c = d["layer_counters"][name]
            samples.append({"layer": name, "kind": lay.kind, "level": int(lv),
                            "model_cycles": float(lea_layer_cost(lay, lv)["cycles"]),
                            "sim_cycles": float(c["cpu_cycles"] + c.get("lea_cycles", 0) + c.get("dma_cycles", 0))})
    factors = {}
    for kind in sorted({s["kind"] for s in samples}):
        ss = [s for s in samples if s["kind"] == kind]
        factors[kind] = sum(s["sim_cycles"] for s in ss) / sum(s["model_cycles"] for s in ss)
        errs = [s["model_cycles"] * factors[kind] / s["sim_cycles"] - 1 for s in ss]
        log(f"  LEA {kind}: factor {factors[kind]:.3f} on {len(ss)} layers x levels, scaled error "
            f"{100 * min(errs):+.1f} .. {100 * max(errs):+.1f} %")
    shutil.rmtree(mdir, ignore_errors=True)
    return {"format": "sparsenest-lea-calibration", "version": 1, "factors": factors,
            "source": "bench objectives --calibrate-lea: seeded LeNet-5, nested block masks 90/75/50 %, chip image in "
                      "our FR5994 simulator (cpu + LEA + DMA cycles per layer)", "samples": samples}


def add_arguments(p) -> None:
    from ... import cli_args as arg
    p.add_argument("--bundle", default=None, help="default: build/lenet5-small.nest (trained when missing)")
    arg.add_output(p, default="build/bench/objectives")
    p.add_argument("--calibrate", action="store_true", help="measure and fit the chooser's cycle model")
    p.add_argument("--write-model", action="store_true",
                   help=f"with --calibrate: replace the shipped {choose.DEFAULT_CYCLE_MODEL.name}")
    p.add_argument("--calibrate-lea", action="store_true",
                   help=f"measure the LEA model's factor per layer kind ({choose.LEA_CALIBRATION.name}; with "
                        "--write-model: replace the shipped one)")


def run(a) -> int:
    from ...bundle import Bundle
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.calibrate_lea:
        res = calibrate_lea(out)
        path = choose.LEA_CALIBRATION if a.write_model else out / choose.LEA_CALIBRATION.name
        path.write_text(json.dumps(res, indent=1) + "\n")
        print(f"LEA factors {res['factors']}; written {path}")
        return 0
    if a.calibrate:
        cm, samples = calibrate(out)
        calibration.write_samples(out / "cycle_samples.json", samples, mclk_hz=16e6)
        path = choose.DEFAULT_CYCLE_MODEL if a.write_model else out / choose.DEFAULT_CYCLE_MODEL.name
        cm.save(path)
        errs = {k: round(v.get("max_rel_error", 0), 3) for k, v in cm.kernels.items()}
        print(f"fitted {len(cm.kernels)} kernel keys on {len(samples)} samples (max relative error per key: {errs}); "
              f"skipped: {cm.meta.get('skipped')}; written {path}")
        return 0
    from .mcu import DEFAULT_BUNDLE, ensure_bundle
    b = ensure_bundle(Path(a.bundle or DEFAULT_BUNDLE))
    b = Bundle.load(b) if isinstance(b, (str, Path)) else b
    res = report_objectives(b, out, title=str(a.bundle or DEFAULT_BUNDLE))
    return 0 if res is not None else 1


def main(argv: list[str] | None = None) -> int:
    from ...cli import run_command
    return run_command("bench objectives", argv)
