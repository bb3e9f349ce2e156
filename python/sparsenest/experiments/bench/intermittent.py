"""`make bench-intermittent`: what intermittent execution (compile --intermittent) costs, and the
exhaustive power-cut proof on the host board.

For LeNet-5-small and HAR-Net, the continuous build and intermittent builds at each checkpoint
granularity (layer, row, auto) are measured in the same run:
  - cycles and instructions per inference at every level: the firmware (MPY32 kernels) in
    mspdebug's simulator, every inference checked bit for bit against the golden model;
  - FRAM bytes written per inference: host-board counters (every runtime FRAM write goes through the
    board's write hook), and the image's lower-FRAM / SRAM bytes (linker map of the simulator image);
  - ratios against the continuous build.
Then, for the auto granularity, at every level: a power cut after every possible number of FRAM
bytes written during one inference (every even count: the board writes 16-bit words), reboot,
resume; the logits must equal the uninterrupted run every time (`--cuts N`: N sampled cut points
per level instead). And in our FR5994 simulator, the chip image with the supply cut at `--device-cuts`
random cycles per level inside the level switch and the inference: the start-up code resumes, and the
resumed and recorded logits must equal the golden model.

    sparsenest bench intermittent [--bundle build/lenet5-small.nest] [--cuts N]

LeNet-5-small is build/lenet5-small.nest (trained first, about a minute, when missing). HAR-Net is
the zoo model with its initial weights and magnitude-nested masks at the same sparsities: cycles and
bytes depend on the masks' sizes, not on what the weights learned. Writes build/bench/intermittent.json.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

VARIANTS = {"continuous": {}, "layer": {"intermittent": True, "checkpoint": "layer"},
            "row": {"intermittent": True, "checkpoint": "row"},
            "auto": {"intermittent": True, "checkpoint": "auto"}}


def _log(msg: str) -> None:
    print(msg, flush=True)


def harnet_bundle(sparsities):
    import torch

    from ...bundle import Bundle
    from ...models.harnet import HARNet
    from ...train.graph import extract_graph, prunable_weight_keys
    from .mcu import _magnitude_intro
    torch.manual_seed(0)
    net = HARNet().eval()
    graph = extract_graph(net, (9, 128))
    sd = net.state_dict()
    intro = {k: _magnitude_intro(sd[k].numpy(), sparsities) for k in prunable_weight_keys(graph)}
    levels = [{"level": i + 1, "target_sparsity": s, "sparsity": s, "float_accuracy": None}
              for i, s in enumerate(sparsities)]
    return Bundle.from_model(net, intro, graph=graph, levels=levels, prune={"method": "magnitude"},
                             dataset={"name": "har"}, train_config={},
                             model_spec={"name": "harnet", "kwargs": {}})


def measure_variant(b, out: Path, name: str, opts: dict, x: np.ndarray, calib) -> dict:
    """MSP430 simulator cycles per level (golden-checked) and host FRAM bytes written per level."""
    from ...compiler.build import compile_bundle
    from ...targets import firmware
    from ...targets.host import HostSim
    from ...targets.powercut import bytes_per_inference
    mdir = out / "mcu"
    info = compile_bundle(b, mdir, target="msp430fr5994", build=False, calib=calib,
                          target_overrides={"fram_bytes": 49024}, **opts)
    L = info["qmodel"].n_levels
    model = firmware.load_model_dir(mdir)
    sched = [firmware.Step(0, lv) for lv in range(1, L + 1)]
    fb = firmware.build(model, mdir / "sim-mpy32", image="sim", inputs=x[:1], schedule=sched)
    run = firmware.simulate(fb, schedule=sched, layers=False, timeout_s=600)
    firmware.compare_golden(fb, run, info["qmodel"]).raise_on_mismatch()
    host = compile_bundle(b, out / "host", calib=calib, **opts)
    sim = HostSim(host["out_dir"])
    fram_written = {}
    for lv in range(1, L + 1):
        sim.set_level(lv)
        if opts.get("intermittent"):
            _, fram_written[lv] = bytes_per_inference(sim, x[0])
        else:
            sim.reset_counters()
            sim.infer(x[:1])
            fram_written[lv] = sim.counters()["fram_bytes_written"]
    meta = host["meta"]
    return {"variant": name, "per_level": {lv: {**d, "fram_bytes_written": fram_written[lv]}
                                           for lv, d in run.per_level().items()},
            "regions": fb.regions, "intermittent": meta.get("intermittent"),
            "host_dir": str(host["out_dir"]), "qmodel": host["qmodel"]}


def power_cut_proof(entry: dict, x: np.ndarray, cuts: int | None, seed: int = 0) -> dict:
    from ...compiler import golden
    from ...targets import powercut
    from ...targets.host import HostSim
    sim = HostSim(entry["host_dir"])
    rng = np.random.default_rng(seed)
    out = {}
    for lv in sorted(entry["per_level"]):
        ref = golden.predict(entry["qmodel"], x[None], lv)[0]
        sim.set_level(lv)
        _, total = powercut.bytes_per_inference(sim, x)
        points = powercut.all_cut_points(total)
        if cuts is not None and cuts < len(points):
            points = sorted(rng.choice(points, cuts, replace=False))
        t0 = time.perf_counter()
        rep = powercut.sweep(sim, x, lv, points, ref)
        out[lv] = {"bytes_per_inference": total, "cuts": rep.cuts, "exhaustive": len(points) * 2 >= total,
                   "mismatches": rep.mismatches[:20], "ok": rep.ok, "seconds": time.perf_counter() - t0}
        _log(f"    L{lv}: {rep.cuts} power cuts ({'every possible one' if out[lv]['exhaustive'] else 'sampled'}"
             f" of {total} bytes written), reboot + resume: "
             + ("all bit-identical to the uninterrupted run" if rep.ok else f"{len(rep.mismatches)} MISMATCHES"))
    return out


def device_proof(b, out: Path, opts: dict, x: np.ndarray, calib, n_cuts: int, seed: int = 0) -> dict:
    """Random supply cuts in our FR5994 simulator (chip image, one step per level: switch + infer)."""
    from ...compiler import golden
    from ...compiler.build import compile_bundle
    from ...targets import firmware, powercut
    from ...targets.fr5994power import random_cuts
    mdir = out / "fr5994"
    info = compile_bundle(b, mdir, target="msp430fr5994", build=False, calib=calib,
                          target_overrides={"fram_bytes": 49024}, **opts)
    model = firmware.load_model_dir(mdir)
    res = {}
    for lv in range(1, info["qmodel"].n_levels + 1):
        fb = firmware.build(model, mdir / f"fw-L{lv}", image="fr5994", inputs=x[:1], schedule=[firmware.Step(0, lv)])
        ref = golden.predict(info["qmodel"], x[:1], lv)[0]
        marks = powercut.device_marks(fb)
        start, end = marks[0][1], marks[-1][1]
        bad, resumed = [], 0
        for k, c in enumerate(random_cuts(n_cuts, end - start, seed=seed + lv)):
            r = powercut.device_cut(fb, info["meta"], start + c, seed=k + 1)
            ok = np.array_equal(r["recorded"], ref)
            if r["resumed"] is not None:
                resumed += 1
                ok = ok and r["resumed_level"] == lv and np.array_equal(r["resumed"], ref)
            if not ok:
                bad.append(start + c)
        res[lv] = {"cuts": n_cuts, "cycles": end - start, "resumed": resumed, "mismatches": bad[:20], "ok": not bad}
        _log(f"    L{lv}: {n_cuts} supply cuts at random cycles of {end - start:,} (switch + inference), "
             f"{resumed} resumed by the start-up code: " + ("all equal golden" if not bad else f"{len(bad)} MISMATCHES"))
    return res


def format_table(model: str, rows: list[dict]) -> str:
    base = next(r for r in rows if r["variant"] == "continuous")
    lines = [f"{model}: per inference (mspdebug cycles*, MPY32 kernels; FRAM bytes written: host board)",
             f"{'variant':<11}{'lvl':>4}{'units':>6}{'cycles':>12}{'x cont':>8}{'FRAM written':>14}"
             f"{'+ bytes':>9}{'lower FRAM':>12}{'+ bytes':>9}{'LEA SRAM':>10}"]
    for r in rows:
        units = (r["intermittent"] or {}).get("units", 0)
        for lv, d in r["per_level"].items():
            b = base["per_level"][lv]
            lines.append(f"{r['variant']:<11}{lv:>4}{units:>6}{d['cycles']:>12,.0f}{d['cycles'] / b['cycles']:>8.3f}"
                         f"{d['fram_bytes_written']:>14,}{d['fram_bytes_written'] - b['fram_bytes_written']:>9,}"
                         f"{r['regions'].get('LOWER_FRAM', 0):>12,}"
                         f"{r['regions'].get('LOWER_FRAM', 0) - base['regions'].get('LOWER_FRAM', 0):>9,}"
                         f"{r['regions'].get('LEA_RAM', 0):>10,}")
    return "\n".join(lines)


def add_arguments(p) -> None:
    from ... import cli_args as arg
    from .mcu import DEFAULT_BUNDLE
    p.add_argument("--bundle", default=DEFAULT_BUNDLE, help="LeNet-5-small bundle (trained when missing)")
    p.add_argument("--cuts", type=int, default=None,
                   help="sampled power cuts per level (default: every possible cut point)")
    p.add_argument("--device-cuts", type=int, default=100,
                   help="random supply cuts per level in our FR5994 simulator (0: skip)")
    arg.add_output(p, default="build/bench/intermittent", help="output path")


def run(a) -> int:
    from ... import data
    from .mcu import ensure_bundle
    out = Path(a.out)
    lenet = ensure_bundle(Path(a.bundle))
    sparsities = [lv["sparsity"] for lv in lenet.levels]
    mnist = data.load("mnist", "test").subset(1, seed=0).x
    har = data.load("har", "test").subset(1, seed=0).x
    models = {"lenet5-small": (lenet, mnist, None),
              "harnet": (harnet_bundle(sparsities), har, data.load("har", "train").subset(256, seed=0).x)}
    report: dict = {"models": {}, "cycle_note": "mspdebug 0.22 MCLK counts: no FRAM wait states, "
                                                "constant-generator operands over-counted"}
    for mname, (b, x, calib) in models.items():
        _log(f"{mname}:")
        rows = []
        for vname, opts in VARIANTS.items():
            t0 = time.perf_counter()
            rows.append(measure_variant(b, out / mname / vname, vname, opts, x, calib))
            _log(f"  {vname}: measured in {time.perf_counter() - t0:.0f} s")
        _log(format_table(mname, rows))
        auto = next(r for r in rows if r["variant"] == "auto")
        _log(f"  power cuts on the host board ({mname}, auto granularity):")
        proof = power_cut_proof(auto, x[0], a.cuts)
        device = {}
        if a.device_cuts:
            _log(f"  supply cuts in our FR5994 simulator ({mname}, auto granularity):")
            device = device_proof(b, out / mname / "auto", VARIANTS["auto"], x, calib, a.device_cuts)
        report["models"][mname] = {"variants": [{k: v for k, v in r.items() if k not in ("qmodel", "host_dir")}
                                                for r in rows], "power_cuts": proof, "device_cuts": device}
        if not all(v["ok"] for v in [*proof.values(), *device.values()]):
            raise SystemExit(f"{mname}: outputs after a power cut differ from the uninterrupted run")
    out.mkdir(parents=True, exist_ok=True)
    (out.parent / "intermittent.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    _log(f"wrote {out.parent / 'intermittent.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from ...cli import run_command
    return run_command("bench intermittent", argv)

if __name__ == "__main__":
    raise SystemExit(main())
