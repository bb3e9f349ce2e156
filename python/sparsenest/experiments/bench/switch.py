"""`make bench-switch`: staged level switches in our MSP430FR5994 simulator against the switch time model.

For LeNet-5-small and full LeNet-5 (90/75/50 %, seeded weights with magnitude-nested masks: a switch's
cost depends on the masks' sizes, not the values), compiled for the chip with staged switching (masters
that do not fit lower FRAM in upper FRAM, filled into the working copy by DMA; where the working copies
still do not fit, full LeNet-5's fc1, the matrix streams from upper FRAM with its working copy there,
filled by DMA to a far address; a model that fits neither is reported with the compiler's reason):
  - every switch pair a -> b from a copy that holds exactly a (the image reloaded, switched up to a):
    our simulator's cycles of sn_set_level (with the app's marker call), the bytes it wrote to FRAM
    (the simulator's FRAM write counter, and the host board's write log of the same build), and the
    model's cycles (analysis/switch_model.py with the platform's staged.* constants), with their ratio;
  - the walk 3 -> 1 -> 3 -> 2 -> 1 -> 3 after the first climb: selector-only switches;
  - `--fit`: the platform's staged.* constants fitted on five-level LeNet-5-small builds (two with
    masters in upper FRAM, one with fc1's working copy there too).
Every simulated inference is compared with the golden model bit for bit.

    sparsenest bench switch [-o build/bench/switch] [--no-lenet5]

Writes switch.json in -o.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ...analysis import switch_model
from .mcu import seeded_bundle

SPARSITIES = (0.9, 0.75, 0.5)
#: After the first climb to the densest level every switch writes the selector only.
WALK = (3, 1, 3, 2, 1, 3)


def _log(msg: str) -> None:
    print(msg, flush=True)


def simulate_run(fb, qm, levels, platform=None) -> list[dict]:
    """One run (a level per step) from a freshly loaded image, one inference per step, every output
    compared with the golden model: per switch {"from", "held", "to", "cycles", "instructions",
    "fram_writes", "energy_j"} measured in our simulator (sn_set_level with the app's marker call;
    fram_writes: the simulator's FRAM write accesses; energy: Device.energy_j's rule, every cycle at
    the platform's active power plus the FRAM write energy per write)."""
    from ...analysis.cost import load_platform
    p = platform or load_platform()
    from ...targets import firmware
    from ...targets.fr5994fw import simulate
    sched = [firmware.Step(0, lv) for lv in levels]
    run = simulate(fb, schedule=sched)
    firmware.compare_golden(fb, run, qm).raise_on_mismatch()
    out = []
    cur = held = int(fb.model.meta["initial_level"])
    for rec, step, sw in zip(run.records, sched, run.switch_counters):
        if rec.level != step.level:
            raise RuntimeError(f"{fb.elf}: a step to level {step.level} ran at level {rec.level}")
        if step.level != cur:
            out.append({"from": cur, "held": held, "to": step.level, "cycles": rec.switch.cycles,
                        "instructions": rec.switch.instructions, "fram_writes": sw["fram_writes"],
                        "energy_j": sw["cycles"] * p.energy_per_cycle_j + sw["fram_writes"] * p.fram_write_energy_j})
        held, cur = switch_model.held_after(held, step.level), step.level
    return out


def host_run(sim, levels) -> list[int]:
    """The same run on the host board from a reloaded image: bytes each switch writes (write log)."""
    sim.reset_device()
    out = []
    for lv in levels:
        if lv != sim.get_level():
            sim.clear_write_log()
            sim.set_level(lv)
            out.append(int(sum(r.written for r in sim.write_log())))
    return out


def measure_model(name: str, bundle, out: Path, calib, platform, log=_log, fmt="auto", fram_bytes=None,
                  far=None) -> dict:
    """Compile for the chip (staged; `far` as codegen.generate's); simulate every pair a -> b (run [a, b]
    from a reloaded image, so the copy holds a) and the walk; model each switch; replay the runs on the
    host board."""
    from ...compiler.build import compile_bundle
    from ...targets import firmware
    from ...targets.host import HostSim
    t0 = time.perf_counter()
    mdir = out / name
    # the planner's lower-FRAM budget (room left for code): what does not fit goes to upper FRAM
    info = compile_bundle(bundle, mdir / "chip", target="msp430fr5994", switching="staged", build=False,
                          calib=calib, force=True, fmt=fmt, far=far,
                          target_overrides={"fram_bytes": fram_bytes} if fram_bytes else None)
    host = compile_bundle(bundle, mdir / "host", target="host", switching="staged", calib=calib, force=True,
                          fmt=fmt, far=far)
    meta, qm = info["meta"], info["qmodel"]
    runs = [[a, b] for a, b in switch_model.switch_pairs(qm.n_levels)] + [list(WALK)]
    fb = firmware.build(mdir / "chip", mdir / "fw", image="fr5994", n_inputs=1, max_steps=len(WALK))
    sim = HostSim(host["out_dir"])
    switches = []
    for k, levels in enumerate(runs):
        got = simulate_run(fb, qm, levels, platform)
        for sw, nbytes in zip(got, host_run(sim, levels)):
            sw["host_bytes"] = nbytes
        switches += got[-1:] if k < len(runs) - 1 else got   # a pair run: its last switch is the pair
    for sw in switches:
        pred = switch_model.predict_staged_switch(meta["staged_arrays"], sw["held"], sw["to"], platform)
        sw.update(model_bytes=pred["bytes"] + 2, model_cycles=pred["cycles"], ratio=pred["cycles"] / sw["cycles"],
                  work=pred["work"])
    log(f"{name}: {len(runs)} runs simulated, every inference == golden ({time.perf_counter() - t0:.0f} s)")
    far_work = sum(a["bytes"] for a in meta["arrays"].values() if a["kind"] == "work" and a["section"] == "SN_FRAM_FAR")
    return {"model": name, "n_levels": qm.n_levels, "work_bytes": meta["memory"].get("work_bytes"),
            "far_work_bytes": far_work, "switches": switches}


def format_table(res: dict) -> str:
    lines = [f"{res['model']}: staged switches, our simulator vs the time model (working copy "
             f"{res['work_bytes']:,} bytes, {res.get('far_work_bytes', 0):,} of them in upper FRAM)",
             f"{'switch':>8}{'held':>5}{'bytes':>8}{'sim cycles':>12}{'µJ':>8}{'model':>12}{'model/sim':>10}"
             f"{'rows':>6}{'copies':>7}{'words':>7}{'odd B':>6}{'DMA rows':>9}{'far work':>9}"]
    for sw in res["switches"]:
        w = sw["work"]
        uj = f"{1e6 * sw['energy_j']:>8.2f}" if sw.get("energy_j") is not None else f"{'':>8}"
        lines.append(f"{sw['from']:>3} -> {sw['to']:<2}{sw['held']:>5}{sw['host_bytes']:>8,}{sw['cycles']:>12,}{uj}"
                     f"{sw['model_cycles']:>12,.0f}{sw['ratio']:>10.3f}{w['rows']:>6}{w['copies']:>7}"
                     f"{w['words']:>7,}{w['odd_bytes']:>6}{w['far_copies']:>9}{w['far_work_copies']:>9}")
    worst = max(abs(sw["ratio"] - 1) for sw in res["switches"])
    lines.append(f"worst model error {100 * worst:.1f} % over {len(res['switches'])} switches")
    return "\n".join(lines)


FIT_SPARSITIES = (0.95, 0.9, 0.8, 0.65, 0.5)


def run_fit(out: Path, calib, platform) -> int:
    """The constants board.toml's staged.* hold: fitted on LeNet-5-small with five levels (every pair
    of 10 copying switches per build; two lower-FRAM budgets, so different masters sit in upper FRAM),
    then the fit's worst error."""
    b = seeded_bundle("lenet5-small", (1, 28, 28), "mnist", FIT_SPARSITIES)
    switches = []
    for budget, far in ((30000, None), (34000, None), (None, ["fc1"])):
        # tighter lower-FRAM budgets than the planner's: five levels' tables need it, and two budgets
        # put different masters in upper FRAM; far fc1: its working copy in upper FRAM too
        tag = f"fit-{budget}" if far is None else "fit-far-" + "-".join(far)
        switches += measure_model(tag, b, out, calib, platform, fram_bytes=budget, far=far)["switches"]
    consts = switch_model.fit(switches)
    fitted = platform.with_values(**consts)
    for sw in switches:
        sw["fitted_ratio"] = sum(sw["work"][t] * fitted[switch_model.CONSTANTS[t]]
                                 for t in switch_model.TERMS) / sw["cycles"]
    print("fitted (board.toml staged.*): " + ", ".join(f"{k} = {v}" for k, v in consts.items()))
    print(f"worst error of the fit over its {len(switches)} switches: "
          f"{100 * max(abs(sw['fitted_ratio'] - 1) for sw in switches):.1f} %")
    (out / "switch_fit.json").write_text(json.dumps({"constants": consts, "switches": switches}, indent=1))
    return 0


def add_arguments(p) -> None:
    p.add_argument("-o", "--output", default="build/bench/switch", help="output folder (switch.json)")
    p.add_argument("--no-lenet5", action="store_true", help="LeNet-5-small only (skip full LeNet-5)")
    p.add_argument("--fit", action="store_true",
                   help="instead: fit the platform's staged.* constants on LeNet-5-small builds with five "
                        "levels (two lower-FRAM budgets) and print them for board.toml")


def run(args) -> int:
    from ...analysis.cost import load_platform
    from ...data.calibration import calibration_inputs
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    platform = load_platform()
    calib = calibration_inputs("mnist", 256)
    models = [("lenet5-small", seeded_bundle("lenet5-small", (1, 28, 28), "mnist", SPARSITIES))]
    if not args.no_lenet5:
        models.append(("lenet5", seeded_bundle("lenet5", (1, 28, 28), "mnist", SPARSITIES)))
    if args.fit:
        return run_fit(out, calib, platform)
    from ...compiler.codegen_lower import CodegenError
    from ...compiler.planner import PlanError
    results = []
    for name, b in models:
        try:
            res = measure_model(name, b, out, calib, platform)
        except (PlanError, CodegenError) as e:   # the compiler's reason, e.g. working copies too big
            print(f"{name}: no staged build for the chip: {e}", flush=True)
            results.append({"model": name, "error": str(e)})
            continue
        print(format_table(res), flush=True)
        results.append(res)
    (out / "switch.json").write_text(json.dumps({"platform": platform.name, "results": results}, indent=1))
    print(f"wrote {out / 'switch.json'}")
    return 0
