"""`make bench-harvest`: inferences that span power cycles, with costs measured in our FR5994 simulator.

1. LeNet-5-small (build/lenet5-small.nest, trained first when missing) compiled twice for the
   MSP430FR5994, continuous and intermittent (--checkpoint auto); each build's per-level costs measured
   in our simulator (analysis.harvest_measure: chip image, golden-checked; for the intermittent build
   the energy at every unit commit), written as costs files `sparsenest harvest --costs` reads.
2. The harvest model on the shipped traces for capacitors 47 uF .. 1 mF, fixed-densest, fixed-sparsest
   and energy-aware, each continuous and intermittent: table + plot (analysis.harvest_intermittent).
3. Closed loop: the simulator itself, powered by a window of the solar trace through a capacitor,
   runs each build at one level; its count of completed inferences against the event model's.

    python -m sparsenest.experiments.bench.harvest [--bundle B] [--out build/bench/harvest]
        [--loop-seconds 60] [--hours H]
"""
from __future__ import annotations

import json
import time
from pathlib import Path

#: The closed-loop runs: (build, level, capacitor uF); the trace window starts at --loop-start.
LOOPS = (("intermittent", 1, 47), ("intermittent", 3, 100), ("continuous", 1, 470))


def _log(msg: str) -> None:
    print(msg, flush=True)


def add_arguments(p) -> None:
    from ... import cli_args as arg
    from .mcu import DEFAULT_BUNDLE
    p.add_argument("--bundle", default=DEFAULT_BUNDLE, help="LeNet-5-small bundle (trained when missing)")
    arg.add_output(p, default="build/bench/harvest", help="output folder")
    p.add_argument("--hours", type=arg.positive_float, default=None, help="cut the traces to this many hours")
    p.add_argument("--loop-seconds", type=float, default=60.0, help="closed-loop trace window (0: skip)")
    p.add_argument("--loop-start", type=float, default=7 * 3600.0,
                   help="closed loop: start of the solar-trace window, seconds (default 7:00, ~2 mW)")


def run(a) -> int:
    from ...analysis import harvest_closedloop, harvest_intermittent, harvest_measure
    from ...compiler.build import compile_bundle
    from ...data.calibration import calibration_inputs
    from ...energy_store import Capacitor, shipped_trace
    from .mcu import ensure_bundle
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    bundle = ensure_bundle(Path(a.bundle))
    accuracy = [lv.get("float_accuracy") or 0.0 for lv in bundle.levels]
    calib = calibration_inputs(bundle)   # the CLI's default calibration images (compile_bundle loads no data)
    costs, builds, details = {}, {}, {}
    for mode, opts in (("continuous", {}), ("intermittent", {"intermittent": True, "checkpoint": "auto"})):
        t0 = time.perf_counter()
        mdir = out / f"{mode}-model"
        info = compile_bundle(bundle, mdir, target="msp430fr5994", build=False, force=True, calib=calib,
                              target_overrides={"fram_bytes": 49024}, **opts)
        costs[mode], details[mode] = harvest_measure.measure(mdir, out / f"{mode}-fw", accuracy=accuracy,
                                                            qmodel=info["qmodel"], label="LeNet-5-small")
        builds[mode] = mdir
        costs[mode].save(out / f"costs_{mode}.json")
        _log(f"{mode}: measured in {time.perf_counter() - t0:.0f} s: " + ", ".join(
            f"L{lv.level} {lv.energy_uj:.0f} uJ {lv.time_us / 1e3:.0f} ms" for lv in costs[mode].levels)
            + f"; boot {costs[mode].boot_uj:.2f} uJ; wrote {out / f'costs_{mode}.json'}")
    t0 = time.perf_counter()
    rows = harvest_intermittent.compare(costs["continuous"], costs["intermittent"],
                                        t_end=None if a.hours is None else a.hours * 3600)
    _log(harvest_intermittent.format_rows(rows))
    paths = harvest_intermittent.write(rows, costs["continuous"], costs["intermittent"], out)
    _log(f"harvest model: {len(rows)} runs in {time.perf_counter() - t0:.0f} s; wrote "
         + ", ".join(map(str, paths.values())))
    loops = []
    if a.loop_seconds > 0:
        trace = shipped_trace("solar").window(a.loop_start, a.loop_start + a.loop_seconds)
        _log(f"closed loop: our simulator on {trace.name} ({trace.energy() * 1e3:.1f} mJ harvested) vs the event model")
        for mode, level, uf in LOOPS:
            t0 = time.perf_counter()
            fb = harvest_closedloop.device_firmware(builds[mode], out / f"loop-{mode}-L{level}", level)
            r = harvest_closedloop.compare(fb, costs[mode], level, trace, Capacitor(uf * 1e-6), a.loop_seconds)
            r.update(mode=mode, level=level, capacitor_uf=uf, seconds=time.perf_counter() - t0,
                     difference=(r["device"] - r["model"]) / max(r["device"], 1))
            loops.append(r)
            _log(f"  {mode} L{level} {uf} uF: device {r['device']} inferences ({r['device_failures']} power "
                 f"failures), model {r['model']} ({r['model_brownouts']} brown-outs): "
                 f"{100 * r['difference']:+.1f} % ({r['seconds']:.0f} s)")
    (out / "bench_harvest.json").write_text(json.dumps(
        {"costs": {m: c.to_dict() for m, c in costs.items()}, "details": details, "closed_loop": loops},
        indent=1, default=float) + "\n")
    _log(f"wrote {out / 'bench_harvest.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from ...cli import run_command
    return run_command("bench harvest", argv)


if __name__ == "__main__":
    raise SystemExit(main())
