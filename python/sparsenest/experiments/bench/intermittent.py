"""`make bench-intermittent`: what intermittent execution (compile --intermittent) costs, and the
exhaustive power-cut proof on the host board.

For LeNet-5-small and HAR-Net, the continuous build and intermittent builds at each checkpoint
granularity (layer, row, auto) are measured in the same run:
  - cycles, energy and FRAM word writes per inference at every level: the chip image (MPY32
    kernels) in our FR5994 simulator, every inference checked bit for bit against the golden model;
  - FRAM bytes written per inference: host-board counters (every runtime FRAM write goes through the
    board's write hook), and the image's lower-FRAM / SRAM bytes (linker map of the chip image);
  - ratios against the continuous build.
Then, for the auto granularity, at every level: a power cut after every possible number of FRAM
bytes written during one inference (every even count: the board writes 16-bit words), reboot,
resume; the logits must equal the uninterrupted run every time (`--cuts N`: N sampled cut points
per level instead). And in our FR5994 simulator, the chip image with the supply cut at `--device-cuts`
random cycles per level inside the level switch and the inference, plus `--commit-cuts` around every
progress commit (powercut.device_cut_sweep), on LeNet-5-small, HAR-Net and full LeNet-5 (whose chip
image streams the fully connected weights from upper FRAM by DMA): the start-up code resumes, and the
resumed and recorded logits must equal the golden model. The simulator moves a DMA block one
transfer per step, so cuts land inside blocks too: 2 x commit_cuts in each of the first 8 x
commit_cuts DMA blocks of the run (powercut.dma_blocks), counted as "inside a DMA block"; those
counted as "between DMA transfers" fall while the inference is streaming. `--lea` adds LEA-engine builds
(compile --engine lea; seeded weights with nested LEA block masks, so every layer runs on LEA) of each
model, supply cuts only:
our simulator holds the CPU for a LEA call's modelled cycles, so 2 x commit_cuts cuts fall inside each
of 8 x commit_cuts LEA calls (powercut.lea_calls). `--models` picks models by name.

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

from .mcu import seeded_bundle

VARIANTS = {"continuous": {}, "layer": {"intermittent": True, "checkpoint": "layer"},
            "row": {"intermittent": True, "checkpoint": "row"},
            "auto": {"intermittent": True, "checkpoint": "auto"}}


def _log(msg: str) -> None:
    print(msg, flush=True)


def harnet_bundle(sparsities):
    return seeded_bundle("harnet", (9, 128), "har", sparsities)


def measure_variant(b, out: Path, name: str, opts: dict, x: np.ndarray, calib) -> dict:
    """Per level, one inference of the chip image in our FR5994 simulator (golden-checked): cycles,
    energy and FRAM word writes; and FRAM bytes written on the host board."""
    from ...compiler.build import compile_bundle
    from ...targets import firmware, fr5994fw
    from ...targets.host import HostSim
    from ...targets.powercut import bytes_per_inference
    mdir = out / "mcu"
    info = compile_bundle(b, mdir, target="msp430fr5994", build=False, calib=calib,
                          target_overrides={"fram_bytes": 49024}, **opts)
    L = info["qmodel"].n_levels
    model = firmware.load_model_dir(mdir)
    sched = [firmware.Step(0, lv) for lv in range(1, L + 1)]
    fb = firmware.build(model, mdir / "fr5994", image="fr5994", inputs=x[:1], schedule=sched)
    run = fr5994fw.simulate(fb, schedule=sched)
    firmware.compare_golden(fb, run, info["qmodel"]).raise_on_mismatch()
    sim_levels = {}
    for step, c, e in zip(sched, run.infer_counters, run.infer_energy_j):
        sim_levels[step.level] = {"cycles": c["cycles"], "energy_uj": e * 1e6,
                                  "fram_words_written": c["fram_writes"], "wait_cycles": c["wait_cycles"]}
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
                                           for lv, d in sim_levels.items()},
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


def device_proof(b, out: Path, opts: dict, x: np.ndarray, calib, n_cuts: int, seed: int = 0,
                 commit_cuts: int = 4, name: str = "", fram_bytes: int | None = 49024) -> dict:
    """Supply cuts in our FR5994 simulator (chip image, one step per level: switch + infer): n_cuts at
    random cycles, plus commit_cuts spread over the poll window (64 cycles) of every progress-record
    change (sn_infer_start's zero and each unit commit), 4 x commit_cuts over the level switch and
    8 x commit_cuts inside every unit that streams weights from upper FRAM by DMA, and 2 x commit_cuts
    inside each of the first 8 x commit_cuts DMA blocks and of 8 x commit_cuts LEA calls spread over the
    inference. powercut.device_cut_sweep: the start-up code resumes, and the resumed and recorded logits
    must equal the golden model. fram_bytes: the lower-FRAM budget (None: the chip target's, which
    keeps a code reserve: full LeNet-5's code no longer fits beside a 49,024-byte budget)."""
    from ...compiler import golden
    from ...compiler.build import compile_bundle
    from ...targets import firmware, powercut
    from ...targets.fr5994power import random_cuts
    mdir = out / "fr5994"
    info = compile_bundle(b, mdir, target="msp430fr5994", build=False, calib=calib, force=True,
                          target_overrides={"fram_bytes": fram_bytes} if fram_bytes else None, **opts)
    model = firmware.load_model_dir(mdir)
    res = {}
    for lv in range(1, info["qmodel"].n_levels + 1):
        t0 = time.perf_counter()
        fb = firmware.build(model, mdir / f"fw-L{lv}", image="fr5994", inputs=x[:1], schedule=[firmware.Step(0, lv)])
        ref = golden.predict(info["qmodel"], x[:1], lv)[0]
        marks = powercut.device_marks(fb)
        (_, start, _), (_, infer, dma0), (_, end, dma1) = marks[0], marks[1], marks[-1]
        poll = 64
        changes = powercut.progress_changes(fb, 0, poll)
        commits = [c["cycle"] for c in changes[:-1]]
        targeted = [c - poll + 1 + (poll * i) // commit_cuts for c in commits for i in range(commit_cuts)]
        for a_, b_ in zip(changes, changes[1:]):   # units that stream weights by DMA: 8 x commit_cuts inside
            if b_["dma_transfers"] > a_["dma_transfers"]:
                span = b_["cycle"] - a_["cycle"]
                targeted += [a_["cycle"] + (span * (2 * i + 1)) // (16 * commit_cuts) for i in range(8 * commit_cuts)]
        targeted += [start + 1 + ((infer - start - 1) * i) // (4 * commit_cuts) for i in range(4 * commit_cuts)]
        lea = powercut.lea_calls(fb, limit=1 << 20)       # inside LEA calls, spread over the inference
        for lo, hi in [*powercut.dma_blocks(fb, limit=8 * commit_cuts),     # inside DMA blocks
                       *lea[:: max(1, len(lea) // (8 * commit_cuts))][: 8 * commit_cuts]]:
            targeted += [lo + 1 + ((hi - lo - 1) * i) // (2 * commit_cuts) for i in range(2 * commit_cuts)]
        cuts = sorted(set([start + c for c in random_cuts(n_cuts, end - start, seed=seed + lv)] + targeted))
        bad, resumed = [], 0
        rs = powercut.device_cut_sweep(fb, info["meta"], cuts, seed=1)
        for r in rs:
            ok = np.array_equal(r["recorded"], ref)
            if r["resumed"] is not None:
                resumed += 1
                ok = ok and r["resumed_level"] == lv and np.array_equal(r["resumed"], ref)
            if not ok:
                bad.append(r["cycle"])
        in_dma = sum(dma0 < r["dma_transfers"] < dma1 for r in rs)
        in_block = sum(r["in_dma_block"] for r in rs)
        in_lea = sum(r["in_lea_call"] for r in rs)
        res[lv] = {"cuts": len(rs), "random": n_cuts, "targeted": len(rs) - n_cuts, "commits": len(commits),
                   "in_switch": sum(r["in_switch"] for r in rs), "between_dma_transfers": in_dma,
                   "inside_dma_blocks": in_block, "inside_lea_calls": in_lea, "lea_calls": len(lea),
                   "dma_transfers": dma1 - dma0, "cycles": end - start, "resumed": resumed,
                   "mismatches": bad[:20], "ok": not bad, "seconds": time.perf_counter() - t0}
        _log(f"    {name} L{lv}: {len(rs)} supply cuts ({n_cuts} at random cycles of {end - start:,}, "
             f"{len(rs) - n_cuts} at {len(commits)} progress commits and the switch; {res[lv]['in_switch']} in the "
             f"level switch, "
             f"{in_dma} between the inference's first and last of {dma1 - dma0} DMA transfers, {in_block} inside a "
             f"DMA block, {in_lea} inside one of {len(lea)} LEA calls), {resumed} resumed "
             f"by the start-up code: " + ("all equal golden" if not bad else f"{len(bad)} MISMATCHES")
             + f" ({res[lv]['seconds']:.0f} s)")
    return res


#: linear-layer blocks of the seeded LEA bundles, largest first: the first that tiles the weight is used
LEA_LINEAR_BLOCKS = ((4, 8), (2, 4), (1, 4), (1, 2), (1, 1))


def seeded_lea_bundle(name: str, input_shape, dataset: str, sparsities):
    """A zoo model with seeded weights and nested block masks the LEA engine runs (kernel rows 1 x k_w
    for convolutions, blocks for linear layers, ranked by L2 norm: bench/lea.py's block_intro), so
    that with --engine lea every layer is on LEA."""
    import torch

    from ... import models
    from ...bundle import Bundle
    from ...train.graph import extract_graph, prunable_weight_keys
    from .lea import block_intro
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = models.create(name).eval()
    graph = extract_graph(net, tuple(input_shape))
    intro = {}
    for k in prunable_weight_keys(graph):
        w = net.state_dict()[k].numpy()
        rows, cols = w.shape[0], int(np.prod(w.shape[1:]))
        blk = (1, w.shape[-1]) if w.ndim >= 3 else next(b for b in LEA_LINEAR_BLOCKS
                                                         if rows % b[0] == 0 and cols % b[1] == 0)
        intro[k] = block_intro(w, blk, sparsities)
    levels = [{"level": i + 1, "target_sparsity": sp, "sparsity": sp, "float_accuracy": None}
              for i, sp in enumerate(sparsities)]     # from_model records the measured sparsity
    return Bundle.from_model(net, intro, graph=graph, levels=levels, prune={"method": "block-seeded"},
                             dataset={"name": dataset}, train_config={}, model_spec={"name": name, "kwargs": {}})


def lenet5_bundle(sparsities):
    """Full LeNet-5 (fc1 alone is 48,000 weights: the chip image streams the fully connected weights
    from upper FRAM by DMA) with seeded initial weights and magnitude-nested masks."""
    return seeded_bundle("lenet5", (1, 28, 28), "mnist", sparsities)


def format_table(model: str, rows: list[dict]) -> str:
    base = next(r for r in rows if r["variant"] == "continuous")
    lines = [f"{model}: per inference (our FR5994 simulator, chip image at 16 MHz, MPY32 kernels: cycles, energy; "
             f"FRAM bytes written: host board)",
             f"{'variant':<11}{'lvl':>4}{'units':>6}{'cycles':>12}{'x cont':>8}{'energy uJ':>10}{'x cont':>8}"
             f"{'FRAM written':>14}{'+ bytes':>9}{'lower FRAM':>12}{'+ bytes':>9}{'LEA SRAM':>10}"]
    for r in rows:
        units = (r["intermittent"] or {}).get("units", 0)
        for lv, d in r["per_level"].items():
            b = base["per_level"][lv]
            lines.append(f"{r['variant']:<11}{lv:>4}{units:>6}{d['cycles']:>12,.0f}{d['cycles'] / b['cycles']:>8.3f}"
                         f"{d['energy_uj']:>10,.1f}{d['energy_uj'] / b['energy_uj']:>8.3f}"
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
    p.add_argument("--device-cuts", type=int, default=300,
                   help="random supply cuts per level in our FR5994 simulator (0: skip)")
    p.add_argument("--commit-cuts", type=int, default=4,
                   help="supply cuts around every progress commit, per level (our simulator)")
    p.add_argument("--device-only", action="store_true",
                   help="only the supply cuts in our simulator (no mspdebug cycles, no host-board cuts)")
    p.add_argument("--no-lenet5", action="store_true",
                   help="skip full LeNet-5 (supply cuts only: its chip image streams fc weights by DMA)")
    p.add_argument("--lea", action="store_true",
                   help="also LEA-engine builds (seeded weights, LEA block masks) of each model (supply cuts only)")
    p.add_argument("--models", default=None,
                   help="comma-separated subset of lenet5-small, harnet, lenet5 (with --lea: NAME-lea too)")
    arg.add_output(p, default="build/bench/intermittent", help="output path")


def run(a) -> int:
    from ... import data
    from ...data.calibration import calibration_inputs
    from .mcu import ensure_bundle
    out = Path(a.out)
    lenet = ensure_bundle(Path(a.bundle))
    sparsities = [lv["sparsity"] for lv in lenet.levels]
    mnist = data.load("mnist", "test").subset(1, seed=0).x
    har = data.load("har", "test").subset(1, seed=0).x
    models = {"lenet5-small": (lenet, mnist, calibration_inputs),
              "harnet": (harnet_bundle(sparsities), har, data.load("har", "train").subset(256, seed=0).x)}
    report: dict = {"models": {}, "cycle_note": "our FR5994 simulator, chip image: CPUXv2 cycles, FRAM wait "
                                                "states and cache, DMA"}
    if not a.no_lenet5 and a.device_cuts:
        models["lenet5"] = (lenet5_bundle(sparsities), mnist, data.load("mnist", "train").subset(256, seed=0).x)
    if a.lea and a.device_cuts:
        for m, (shape, ds) in {"lenet5-small": ((1, 28, 28), "mnist"), "harnet": ((9, 128), "har"),
                               "lenet5": ((1, 28, 28), "mnist")}.items():
            if m in models:
                models[f"{m}-lea"] = (seeded_lea_bundle(m, shape, ds, sparsities), *models[m][1:])
    if a.models:
        wanted = a.models.split(",")
        if unknown := sorted(set(wanted) - set(models)):
            raise SystemExit(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(models)}")
        models = {m: v for m, v in models.items() if m in wanted}
    for mname, (b, x, calib) in models.items():
        _log(f"{mname}:")
        rows, proof = [], {}
        device_opts = {**VARIANTS["auto"], **({"engine": "lea"} if mname.endswith("-lea") else {})}
        for vname, opts in VARIANTS.items():
            if a.device_only or mname == "lenet5" or mname.endswith("-lea"):
                break
            t0 = time.perf_counter()
            rows.append(measure_variant(b, out / mname / vname, vname, opts, x, calib))
            _log(f"  {vname}: measured in {time.perf_counter() - t0:.0f} s")
        if rows:
            _log(format_table(mname, rows))
            auto = next(r for r in rows if r["variant"] == "auto")
            _log(f"  power cuts on the host board ({mname}, auto granularity):")
            proof = power_cut_proof(auto, x[0], a.cuts)
        device = {}
        if a.device_cuts:
            _log(f"  supply cuts in our FR5994 simulator ({mname}, auto granularity):")
            device = device_proof(b, out / mname / "auto", device_opts, x, calib, a.device_cuts,
                                  commit_cuts=a.commit_cuts, name=mname,
                                  fram_bytes=None if mname in ("lenet5", "lenet5-lea") else 49024)
        report["models"][mname] = {"variants": [{k: v for k, v in r.items() if k not in ("qmodel", "host_dir")}
                                                for r in rows], "power_cuts": proof, "device_cuts": device}
        if not all(v["ok"] for v in [*proof.values(), *device.values()]):
            raise SystemExit(f"{mname}: outputs after a power cut differ from the uninterrupted run")
    out.mkdir(parents=True, exist_ok=True)
    n = sum(d["cuts"] for m in report["models"].values() for d in m["device_cuts"].values())
    _log(f"{n} supply cuts in our FR5994 simulator in all, every one bit-identical to the golden model")
    (out.parent / ("intermittent_device.json" if a.device_only else "intermittent.json")).write_text(json.dumps(report, indent=1, default=float) + "\n")
    _log(f"wrote {out.parent / ('intermittent_device.json' if a.device_only else 'intermittent.json')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from ...cli import run_command
    return run_command("bench intermittent", argv)

if __name__ == "__main__":
    raise SystemExit(main())
