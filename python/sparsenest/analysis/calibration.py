"""Cycle samples for the cost model, measured in our MSP430FR5994 simulator on the chip image.

One place builds them for `make bench-mcu`, `make table2` and the report: a compiled model's firmware
(the chip image: MPY32 at 0x04C0, weights beyond lower FRAM read from upper FRAM by DMA tiles) runs in
`boards/msp430fr5994/sim` with a layer hook, every output is compared with the golden model, and each
layer of each level becomes one sample of `cycle_samples.json` (SAMPLES_DESCRIPTION) next to the host
board's counters for the same work (what `CycleModel.calibrate` fits on).

A sample's ``cycles`` are the simulator's *core* cycles (`cpu_cycles`: the CPUXv2 table with zero FRAM
wait states), which is what `CycleModel` predicts; the FRAM wait states, DMA- and LEA-held cycles the
simulator counts on top are in ``sim`` (the platform model adds its own wait-state estimate to a
prediction, `Platform.wait_cycles`). mspdebug's counts are kept only as a cross-check (`mspdebug_levels`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .cost import count_features, kernel_c_name, kernel_format

SCHEMA = "sparsenest-cycle-samples/1"
SIMULATOR = "sparsenest MSP430FR5994 simulator (boards/msp430fr5994/sim), chip image"
#: per-inference counters of our simulator that bench-mcu, table2 and the report show per level
SIM_KEYS = ("cycles", "cpu_cycles", "wait_cycles", "dma_cycles", "lea_cycles", "instructions", "fram_reads",
            "fram_writes", "cache_hits", "cache_misses", "sram_reads", "sram_writes", "dma_transfers", "mpy_ops")

SAMPLES_DESCRIPTION = """\
cycle_samples.json = {
  "schema": "sparsenest-cycle-samples/1",
  "simulator": str, "mclk_hz": 16000000, "cycle_note": str,
  "samples": [ one object per measurement:
    "source":       "layer"  (one layer of a whole-model inference in the firmware)
                  | "kernel" (one sn_spmv_<format> call in the kernel harness),
    "model", "build": model name / build variant ("nested-auto", "dense", "report", "harness", ...),
    "kernels":      "mpy32" | "ref"   (runtime_c/kernels_mpy32 or runtime_c/kernels),
    "layer", "op", "graph_op": layer name, runtime op (conv, linear, maxpool, ...) and graph op
                    (conv2d, linear, ...); kernel samples: null / "spmv",
    "kernel", "format": "sn_spmv_<format>" and the format (null for ops without weights),
    "level":        1..L (0 in a kernel sample: the kernel returns at once),
    "rows", "cols": the weight matrix (per group), "calls": kernel calls per inference (conv: output
                    positions x groups; kernel samples: 1), "kernel_calls": the C kernel's invocations
                    (a direct conv: groups x output rows x chunks per row; else calls; null without weights),
    "nnz":          weights in the level's mask (per group),
    "far":          null, or {"tiles", "bytes_per_call"} when the weights stream from upper FRAM,
    "counters":     host-board counters for exactly this work (boards/host, sn_counters.h): macs,
                    weight_bytes_read, and for layer samples act_bytes_read, act_bytes_written,
                    fram_bytes_written,
    "instructions": exact, "cycles": core cycles (our simulator's cpu_cycles: CPUXv2 table, no FRAM
                    wait states; mspdebug's MCLK count in files whose "simulator" names mspdebug),
    "sim":          our simulator's counters of the same work (cycles with wait states, DMA and LEA
                    time, FRAM reads/writes, cache hits/misses, ...); absent in mspdebug files
  ]
}"""


class CalibrationError(RuntimeError):
    """The simulated firmware disagreed with the golden model, or a run could not be measured."""


# ------------------------------------------------------------------------------------ host counters

def host_layer_counters(model_dir: Path, x1: np.ndarray, levels: Sequence[int]) -> dict[int, dict]:
    """Host-board counters per layer of one inference at each level, from the same generated C (the host
    library is built into `model_dir` when missing)."""
    from ..compiler.build import build_host
    from ..targets.host import HostSim
    build_host(model_dir)
    sim = HostSim(model_dir)
    out = {}
    for lv in levels:
        sim.set_level(lv)
        sim.reset_counters()
        sim.infer(x1[:1])
        out[lv] = sim.layer_counters()
    return out


# --------------------------------------------------------------------------------------- simulation

def level_figures(run, steps: Sequence[str]) -> dict[int, dict]:
    """Mean per inference at each level of a fr5994fw run: SIM_KEYS, energy_uj, and per layer the core
    cycles ("layers") and all counters ("layer_counters"). "cycles" is the core count (cpu_cycles);
    "cycles_total" adds FRAM wait states, DMA and LEA."""
    acc: dict[int, dict] = {}
    for i, r in enumerate(run.records):
        c = run.infer_counters[i]
        d = acc.setdefault(r.level, {"n": 0, **{k: 0.0 for k in SIM_KEYS}, "energy_uj": 0.0, "layer_counters": {}})
        d["n"] += 1
        for k in SIM_KEYS:
            d[k] += c[k]
        d["energy_uj"] += run.infer_energy_j[i] * 1e6
        per = run.layer_counters[i] if i < len(run.layer_counters) else []
        for name, lc in zip(steps, per):
            t = d["layer_counters"].setdefault(name, {k: 0.0 for k in lc})
            for k, v in lc.items():
                t[k] += v
    out = {}
    for lv, d in sorted(acc.items()):
        n = d["n"]
        e = {k: d[k] / n for k in SIM_KEYS}
        e["cycles_total"] = e.pop("cycles")
        e["cycles"] = e["cpu_cycles"]
        e["cache_hit_rate"] = e["cache_hits"] / e["fram_reads"] if e["fram_reads"] else None
        lcs = {name: {k: v / n for k, v in t.items()} for name, t in d["layer_counters"].items()}
        out[lv] = {"n": n, **e, "energy_uj": d["energy_uj"] / n, "layer_counters": lcs,
                   "layers": {name: t["cpu_cycles"] for name, t in lcs.items()}}
    return out


def simulate_firmware(fb, qmodel=None, *, device=None) -> tuple[object, dict[int, dict]]:
    """Run a firmware build in our simulator with the layer hook, outputs checked against the golden
    model (CalibrationError on a mismatch). Returns (fr5994fw run, level_figures)."""
    from ..targets import firmware, fr5994fw
    run = fr5994fw.simulate(fb, layers=True, device=device)
    rep = firmware.compare_golden(fb, run, qmodel)
    if not rep.ok:
        raise CalibrationError(f"{fb.elf}: our simulator's outputs differ from the golden model "
                               f"({len(rep.mismatches)} of {rep.compared} inferences)")
    return run, level_figures(run, fb.model.steps)


def mspdebug_levels(fb, qmodel=None) -> dict[int, dict]:
    """mspdebug's per-level instructions and cycles of a simulator-image build (the cross-check), outputs
    compared with golden."""
    from ..targets import firmware
    run = firmware.simulate(fb, timeout_s=600)
    firmware.compare_golden(fb, run, qmodel).raise_on_mismatch()
    return {lv: {"n": d["n"], "instructions": d["instructions"], "cycles": d["cycles"]}
            for lv, d in run.per_level().items()}


# ------------------------------------------------------------------------------------------ samples

def layer_samples(levels: Mapping[int, Mapping], meta: Mapping, shapes: Mapping[str, Sequence[int]],
                  host_counters: Mapping[int, Mapping], *, model: str, build: str, kernels: str) -> list[dict]:
    """One sample per layer and simulated level (SAMPLES_DESCRIPTION) from level_figures and the host
    board's counters of the same build (`host_counters[level][layer]`)."""
    far = {v["layer"]: v for v in (meta.get("far") or {}).values()}
    out = []
    for lv, d in sorted(levels.items()):
        for name in meta["steps"]:
            lc = d["layer_counters"].get(name)
            if lc is None:
                continue
            lm = meta["layers"][name]
            fmt = kernel_format(lm) if isinstance(lm.get("format"), str) else None
            groups = max(1, int(lm.get("groups", 1)))
            calls = None
            if fmt:
                calls = int(np.prod(shapes[name][1:])) * groups if lm["op"] == "conv" else 1
            fm = far.get(name)
            out.append({
                "source": "layer", "model": model, "build": build, "kernels": kernels, "layer": name,
                "op": lm["op"], "graph_op": lm.get("graph_op"), "kernel": kernel_c_name(fmt), "format": fmt,
                "level": int(lv), "rows": lm.get("rows"), "cols": lm.get("cols"), "calls": calls,
                "kernel_calls": lm.get("kernel_calls") if fmt else None,
                "nnz": lm["nnz"][lv - 1] // groups if "nnz" in lm else None,
                "far": {"tiles": fm["tiles"], "bytes_per_call": fm["bytes_per_call"]} if fm else None,
                "counters": (host_counters.get(lv) or {}).get(name),
                "instructions": lc["instructions"], "cycles": lc["cpu_cycles"],
                "sim": {k: lc[k] for k in SIM_KEYS if k in lc}})
    return out


def fit_input(samples: Sequence[Mapping], kernels: str | None = None) -> list[dict]:
    """Layer samples as CycleModel.calibrate input (kernel_key "<graph op>/<format>", host counts plus
    calls, core cycles); samples without host counters or streamed from upper FRAM (the DMA part is
    costed apart, cost.far_dma) are left out."""
    out = []
    for s in samples:
        if s.get("source") != "layer" or (kernels and s.get("kernels") != kernels) or s.get("far"):
            continue
        c = s.get("counters")
        if not c or not s.get("cycles"):
            continue
        op = s.get("graph_op") or s["op"]
        counts = count_features(c, s.get("calls") or 1, s.get("kernel_calls"))
        out.append({"kernel_key": f"{op}/{s['format']}" if s.get("format") else op, "counts": counts,
                    "cycles": float(s["cycles"]), "source": f"{s.get('model')}/{s.get('build')} L{s.get('level')}"})
    return out


def write_samples(path: Path, samples: Sequence[Mapping], *, mclk_hz: float, description: str = "") -> Path:
    from ..targets.fr5994sim import CYCLE_NOTE
    path.write_text(json.dumps({
        "schema": SCHEMA, "simulator": SIMULATOR, "mclk_hz": int(mclk_hz), "cycle_note": CYCLE_NOTE,
        "description": description or SAMPLES_DESCRIPTION, "samples": list(samples)}, indent=1, default=json_default) + "\n")
    return path


def json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


# --------------------------------------------------------------------------- the report's measurement

def euler_schedule(n_levels: int) -> list[int]:
    """Levels to visit, starting and ending at 1, so that every ordered pair a != b is one step."""
    L = n_levels
    if L < 2:
        return [1]
    adj = {a: [b for b in range(L, 0, -1) if b != a] for a in range(1, L + 1)}
    stack, path = [1], []
    while stack:   # Hierholzer
        v = stack[-1]
        if adj[v]:
            stack.append(adj[v].pop())
        else:
            path.append(stack.pop())
    return path[::-1]


def simulate_model(mcu_dir: Path, staged_dir: Path | None, qm, x, y, counters, model_name: str,
                   kernels_list: Sequence[str], work: Path, log=print) -> dict:
    """The report's simulator measurement, in our simulator on the chip image (models whose weights
    stream from upper FRAM included): per level and kernel back-end the level_figures (core "cycles",
    "cycles_total", FRAM traffic, cache, energy, per layer), the cycles of every switch pair of a staged build,
    and this model's cycle samples. Errors are recorded, not raised, except a golden mismatch."""
    from ..targets import firmware, msp430
    res = {"runs": {}, "switch": None, "samples": [], "errors": [], "simulator": SIMULATOR}
    try:
        msp430.find_toolchain()
    except msp430.ToolchainError as e:
        res["errors"].append(f"MSP430 toolchain missing: {e}")
        return res
    meta = json.loads((Path(mcu_dir) / "model_meta.json").read_text())
    L = int(meta["n_levels"])
    sched = [firmware.Step(i, lv) for lv in range(1, L + 1) for i in range(len(x))]
    shapes = {nd["name"]: nd["shape"] for nd in qm.graph["nodes"]}
    for k in kernels_list:
        try:
            fb = firmware.build(mcu_dir, work / f"chip-{k}", image="fr5994", kernels=k, inputs=x, labels=y,
                                schedule=sched)
        except (msp430.BuildError, firmware.FirmwareError) as e:
            res["errors"].append(f"{k} kernels: firmware build failed: {str(e).splitlines()[0]}")
            continue
        run, per = simulate_firmware(fb, qm)
        res["runs"][k] = {"per_level": per, "compared_with_golden": len(run.records), "golden_ok": True,
                          "stack_used": run.stack_used, "regions": fb.regions}
        res["samples"] += layer_samples(per, meta, shapes, counters, model=model_name, build="report", kernels=k)
        log(f"  simulator ({k} kernels): " + ", ".join(f"L{lv} {d['cycles_total'] / 1e6:.2f} M cycles"
                                                      for lv, d in per.items())
            + f"; {len(run.records)} inferences == golden")
    if staged_dir is not None and L > 1:
        # every pair a -> b from a freshly loaded image switched up to a, so the copy holds exactly a
        # (a copy that already holds b would switch by the selector alone; see runtime_c/src/sn_level.c)
        from ..targets import fr5994fw
        pairs = [(a, b) for a in range(1, L + 1) for b in range(1, L + 1) if a != b]
        try:
            fb = firmware.build(staged_dir, work / "chip-staged", image="fr5994", inputs=x[:1], labels=y[:1],
                                schedule=[firmware.Step(0, 1), firmware.Step(0, 1)])
            cyc = [[None] * L for _ in range(L)]
            ins = [[None] * L for _ in range(L)]
            for a, b in pairs:
                run = fr5994fw.simulate(fb, schedule=[firmware.Step(0, a), firmware.Step(0, b)])
                rep = firmware.compare_golden(fb, run, qm)
                if not rep.ok:
                    raise CalibrationError(f"{fb.elf}: our simulator's outputs differ from the golden model "
                                           f"after the switch {a} -> {b}")
                cyc[a - 1][b - 1] = run.records[1].switch.cycles
                ins[a - 1][b - 1] = run.records[1].switch.instructions
            res["switch"] = {"cycles": cyc, "instructions": ins, "pairs": pairs}
            log("  simulator (staged switches): every pair from a copy holding the from-level")
        except (msp430.BuildError, firmware.FirmwareError) as e:
            res["errors"].append(f"staged firmware build failed: {str(e).splitlines()[0]}")
    return res


__all__ = ["SCHEMA", "SIMULATOR", "SIM_KEYS", "SAMPLES_DESCRIPTION", "CalibrationError", "host_layer_counters",
           "level_figures", "simulate_firmware", "mspdebug_levels", "layer_samples", "fit_input", "write_samples",
           "json_default",
           "euler_schedule", "simulate_model"]
