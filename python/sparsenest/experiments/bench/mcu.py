"""`make bench-mcu`: the nested model on the MSP430FR5994 firmware in mspdebug's simulator.

Per level: instructions and cycles per inference with the MPY32 kernels and with the reference C
kernels, against a dense Q15 build of the same network measured in the same run (ratios); bytes per
memory region of the chip image; latency at 16 MHz next to the seed report's LeNet-5 latencies
(1.1 / 1.3 / 1.5 s); per-layer counts. Every simulated inference is checked bit for bit against the
golden model. Also writes cycle samples for the cost model (schema: SAMPLES_SCHEMA below).

    python -m sparsenest.experiments.bench.mcu [--bundle build/lenet5-small.nest] [--out build/bench/mcu]

The bundle must fit the simulator's 64 KB (LeNet-5-small does; full LeNet-5 needs upper FRAM, which
the simulator lacks). Without --bundle, build/lenet5-small.nest is used, trained first (about a
minute, 90/75/50 % like the README's LeNet-5) when missing.

Cycle counts are mspdebug 0.22's, which over-count constant-generator operands (about 18 % on a
typical loop) and have no FRAM wait states; instruction counts are exact.

Outputs in --out: mcu.json (everything below), cycle_samples.json, firmware builds under models/.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ...analysis.cost import kernel_c_name, kernel_format
from ...board import mclk_hz, memory_map
from ...seed import seed_rows

# the seed report's LeNet-5 on the MSP430FR5994, per level (experiments/seed_table2.toml)
SEED_LATENCY_S = dict(enumerate(seed_rows()["lenet5"].latency_s, 1))
MCLK_HZ = mclk_hz()
DEFAULT_BUNDLE = "build/lenet5-small.nest"
FORMATS = ("auto", "rel8", "rel4", "csr16")

SAMPLES_SCHEMA = """\
cycle_samples.json = {
  "schema": "sparsenest-cycle-samples/1",
  "simulator": str, "mclk_hz": 16000000, "cycle_note": str,
  "samples": [ one object per measurement:
    "source":       "layer"  (one layer of a whole-model inference in the firmware)
                  | "kernel" (one sn_spmv_<format> call in the kernel harness),
    "model", "build": model name / build variant ("nested-auto", "nested-rel8", "dense", "harness"),
    "kernels":      "mpy32" | "ref"   (runtime_c/kernels_mpy32 or runtime_c/kernels),
    "layer", "op":  layer name and runtime op (conv, linear, maxpool, avgpool, ...); kernel: null / "spmv",
    "kernel", "format": "sn_spmv_<format>" and the format (null for ops without weights),
    "level":        1..L (0 in a kernel sample: the kernel returns at once),
    "rows", "cols": the weight matrix (per group), "calls": kernel calls per inference (conv: output
                    positions x groups; kernel samples: 1),
    "nnz":          weights in the level's mask (per call),
    "far":          null, or {"tiles", "bytes_per_call"} when the weights stream from upper FRAM,
    "counters":     host-board counters for exactly this work (boards/host, sn_counters.h): macs,
                    weight_bytes_read, and for layer samples act_bytes_read, act_bytes_written,
                    fram_bytes_written,
    "instructions": exact, "cycles": mspdebug's MCLK count (over-counted, see cycle_note)
  ]
}"""


def _log(msg: str) -> None:
    print(msg, flush=True)


def ensure_bundle(path: Path):
    from ...bundle import Bundle
    if path.exists():
        return Bundle.load(path)
    from ...train.nested import TrainConfig
    from ...train.loop import train_to_bundle
    _log(f"{path} not found: training LeNet-5-small (90/75/50 % nested, 2+2 epochs on 20,000 images)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return train_to_bundle(path, model="lenet5-small", levels=(0.9, 0.75, 0.5),
                           cfg=TrainConfig(epochs_dense=2, epochs_retrain=2), train_limit=20000,
                           log=lambda *a, **k: None)


def _host_layer_counters(model_dir: Path, x: np.ndarray, levels) -> dict[int, dict]:
    """Host-board counters per layer for one inference at each level (the same generated C)."""
    from ...compiler.build import build_host
    from ...targets.host import HostSim
    build_host(model_dir)
    sim = HostSim(model_dir)
    out = {}
    for lv in levels:
        sim.set_level(lv)
        sim.reset_counters()
        sim.infer(x[:1])
        out[lv] = sim.layer_counters()
    return out


def _run(fb, schedule, qm, layers=True):
    from ...targets import firmware
    run = firmware.simulate(fb, schedule=schedule, layers=layers, timeout_s=600)
    firmware.compare_golden(fb, run, qm).raise_on_mismatch()
    return run


def kernel_samples(out: Path, log=_log) -> list[dict]:
    """Every format kernel on small matrices of a few shapes and densities, both back-ends."""
    from ...targets import firmware
    from ...compiler import formats
    rng = np.random.default_rng(11)
    L = 3
    samples = []
    shapes = [(8, 25), (8, 64), (8, 150), (16, 96)]
    densities = [(0.1, 0.25, 0.5), (0.3, 0.5, 0.7)]
    for fmt in formats.FORMATS:
        cases = []
        for rows, cols in shapes:
            for dens in densities:
                opts = {}
                if fmt == "dense":
                    it = (rng.random((rows, cols)) < dens[-1]).astype(np.uint8)
                elif fmt == "rows":
                    it = np.repeat(_levels(rng.random((rows, 1)), dens), cols, 1)
                elif fmt == "cols":
                    it = np.repeat(_levels(rng.random((1, cols)), dens), rows, 0)
                elif fmt == "block":
                    opts["block_shape"] = (2, 4)
                    it = np.kron(_levels(rng.random((-(-rows // 2), -(-cols // 4))), dens),
                                 np.ones((2, 4), np.uint8))[:rows, :cols]
                elif fmt == "pattern":
                    if cols % 9:
                        continue
                    opts["kernel_size"] = (3, 3)
                    pats = np.array([[1, 1, 0, 1, 1, 0, 0, 0, 0], [0, 1, 0, 1, 1, 1, 0, 1, 0],
                                     [1, 0, 1, 0, 1, 0, 1, 0, 1], [0, 0, 0, 1, 1, 1, 0, 0, 0]])
                    ch = cols // 9
                    lv = _levels(rng.random((rows, ch, 1)), dens)
                    it = (pats[rng.integers(0, 4, (rows, ch))] * lv).reshape(rows, cols)
                else:
                    it = _levels(rng.random((rows, cols)), dens)
                it = np.ascontiguousarray(it).astype(np.uint8)
                w = np.where(it > 0, rng.integers(-4000, 4000, (rows, cols)), 0).astype(np.int16)
                enc = formats.encode(fmt, w, it, L, **opts)
                x = rng.integers(-9000, 9000, cols).astype(np.int16)
                acc0 = rng.integers(-2 ** 20, 2 ** 20, rows).astype(np.int32)
                cases.append(firmware.KernelCase(f"{fmt}-{rows}x{cols}-{dens[-1]}", enc, x, acc0))
        if fmt == "pattern":
            cases.append(_pattern_case(rng, L))
        for kernels in ("mpy32", "ref"):
            fb = firmware.build_kernel_harness(cases, out / "harness" / f"{fmt}-{kernels}", kernels=kernels)
            runs = firmware.run_kernel_harness(fb, cases)
            by = {c.name: c for c in cases}
            for r in runs:
                c = by[r.case]
                if not np.array_equal(r.acc, c.expected(r.level)):
                    raise AssertionError(f"{kernels} kernel {r.case} level {r.level} differs from numpy")
                kc = c.enc.kernel_counts(r.level)
                samples.append({
                    "source": "kernel", "model": None, "build": "harness", "kernels": kernels,
                    "layer": None, "op": "spmv", "kernel": c.enc.c_kernel, "format": fmt, "level": r.level,
                    "rows": c.enc.rows, "cols": c.enc.cols, "calls": 1, "nnz": c.enc.nnz(r.level),
                    "far": None, "counters": kc, "instructions": r.counts.instructions,
                    "cycles": r.counts.cycles})
        log(f"  kernel harness {fmt}: {len(cases)} matrices x {L + 1} levels x 2 back-ends, bit-exact")
    return samples


def _levels(u: np.ndarray, dens) -> np.ndarray:
    it = np.zeros(u.shape, np.uint8)
    for k in reversed(range(len(dens))):
        it[u < dens[k]] = k + 1
    return it


def _pattern_case(rng, L):
    from ...targets import firmware
    from ...compiler import formats
    rows, ch = 8, 16
    pats = np.array([[1, 1, 0, 1, 1, 0, 0, 0, 0], [0, 1, 0, 1, 1, 1, 0, 1, 0]])
    it = (pats[rng.integers(0, 2, (rows, ch))] * _levels(rng.random((rows, ch, 1)), (0.3, 0.5, 0.7)))
    it = it.reshape(rows, ch * 9).astype(np.uint8)
    w = np.where(it > 0, rng.integers(-4000, 4000, it.shape), 0).astype(np.int16)
    enc = formats.encode("pattern", w, it, L, kernel_size=(3, 3))
    return firmware.KernelCase("pattern-8x144-0.7", enc, rng.integers(-9000, 9000, ch * 9).astype(np.int16),
                               rng.integers(-2 ** 20, 2 ** 20, rows).astype(np.int32))


def _magnitude_intro(w: np.ndarray, sparsities) -> np.ndarray:
    order = np.argsort(-np.abs(w).ravel(), kind="stable")
    intro = np.zeros(w.size, np.uint8)
    for lv, sp in reversed(list(enumerate(sparsities, 1))):
        intro[order[: int(round((1 - sp) * w.size))]] = lv
    return intro.reshape(w.shape)


def lenet5_estimate(out: Path, sparsities, lenet5_bundle: str | None, fc_rates: dict, fmt: str = "auto",
                    log=_log) -> dict:
    """Full LeNet-5 does not fit the simulator (its fc1 alone is 48,000 weights), so: its convolution
    front (conv1, pool1, conv2, pool2: 95 % of its MACs at every level) is compiled and simulated as a
    network of its own, and the fully connected layers are estimated from their nonzeros times the
    MPY32 cycles per nonzero measured on LeNet-5-small's fc1 at the same level, plus the DMA copy of
    their weights from upper FRAM (2 cycles per word)."""
    import torch
    import torch.nn as nn

    from ...targets import firmware
    from ... import models
    from ...bundle import Bundle
    from ...compiler.build import compile_bundle
    from ...data.calibration import calibration_inputs
    from ...train.graph import extract_graph

    torch.manual_seed(0)
    net = models.create("lenet5").eval()
    intro_full = None
    if lenet5_bundle and Path(lenet5_bundle).exists():
        src = Bundle.load(lenet5_bundle)
        net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in src.weights.items()}, strict=False)
        intro_full = {k: np.asarray(v) for k, v in src.intro.items()}
        sparsities = [lv["sparsity"] for lv in src.levels]

    class Front(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.conv1, self.pool1, self.conv2, self.pool2 = n.conv1, n.pool1, n.conv2, n.pool2

        def forward(self, x):
            x = self.pool1(torch.relu(self.conv1(x)))
            return torch.flatten(self.pool2(torch.relu(self.conv2(x))), 1)

    front = Front(net).eval()
    graph = extract_graph(front, (1, 28, 28))
    sd = front.state_dict()
    intro = {k: (intro_full[k] if intro_full and k in intro_full else _magnitude_intro(sd[k].numpy(), sparsities))
             for k in ("conv1.weight", "conv2.weight")}
    levels = [{"level": i + 1, "target_sparsity": sp, "sparsity": sp, "float_accuracy": None}
              for i, sp in enumerate(sparsities)]
    b = Bundle.from_model(front, intro, graph=graph, levels=levels, prune={"method": "magnitude"},
                          dataset={"name": "mnist"}, train_config={},
                          model_spec={"name": "lenet5-front", "kwargs": {}})
    mdir = out / "models" / f"lenet5-front-{fmt}"
    info = compile_bundle(b, mdir, target="msp430fr5994", fmt=fmt, build=False, force=True,
                          calib=calibration_inputs)  # the bench's own folder
    model = firmware.load_model_dir(mdir)
    L = len(levels)
    fb = firmware.build(model, mdir / "sim-mpy32", image="sim", n_inputs=1,
                        schedule=[firmware.Step(0, lv) for lv in range(1, L + 1)])
    run = _run(fb, fb.schedule, info["qmodel"])
    front_pl = _per_level(run)
    # fully connected part of LeNet-5
    full = {"fc1": (120, 400), "fc2": (84, 120), "fc3": (10, 84)}
    res = {"method": " ".join(lenet5_estimate.__doc__.split()), "format": fmt,
           "sparsities": list(sparsities), "front_formats": model.kernels, "levels": {}}
    for lv in range(1, L + 1):
        sp = sparsities[lv - 1]
        nnz = {k: int(round((1 - sp) * r * c)) for k, (r, c) in full.items()}
        rate = fc_rates.get(lv)
        fc_instr = sum(nnz.values()) * rate["instructions_per_nnz"] if rate else None
        fc_cyc = sum(nnz.values()) * rate["cycles_per_nnz"] if rate else None
        # upper FRAM: every level streams whole rows (all levels' bytes) of fc1/fc2 once per inference
        far_bytes = sum(v.get("bytes_per_call", 0) for v in info["meta"].get("far", {}).values())
        dma_cycles = 0
        d = front_pl[lv]
        total_cyc = d["cycles"] + (fc_cyc or 0) + dma_cycles
        res["levels"][lv] = {"front_instructions": d["instructions"], "front_cycles": d["cycles"],
                             "fc_nnz": nnz, "fc_instructions_est": fc_instr, "fc_cycles_est": fc_cyc,
                             "dma_cycles_est": dma_cycles, "far_front_bytes": far_bytes,
                             "total_cycles_est": total_cyc,
                             "latency_ms_est": 1000 * total_cyc / MCLK_HZ,
                             "seed_latency_s": SEED_LATENCY_S.get(lv),
                             "seed_over_ours": (1000 * SEED_LATENCY_S[lv]) / (1000 * total_cyc / MCLK_HZ)
                             if lv in SEED_LATENCY_S else None}
    # the chip image of the whole network: fc weights in upper FRAM, streamed by DMA
    whole = Bundle.from_model(net, {**intro, **{k: (intro_full[k] if intro_full and k in intro_full else
                                                    _magnitude_intro(net.state_dict()[k].numpy(), sparsities))
                                                for k in ("fc1.weight", "fc2.weight", "fc3.weight")}},
                              graph=extract_graph(net, (1, 28, 28)), levels=levels, prune={"method": "magnitude"},
                              dataset={"name": "mnist"}, train_config={},
                              model_spec={"name": "lenet5", "kwargs": {}})
    wdir = out / "models" / f"lenet5-{fmt}"
    winfo = compile_bundle(whole, wdir, target="msp430fr5994", fmt=fmt, build=False, force=True,
                          calib=calibration_inputs)
    chip = firmware.build(wdir, wdir / "chip", image="fr5994", n_inputs=1,
                          schedule=[firmware.Step(0, lv) for lv in range(1, L + 1)])
    far = winfo["meta"].get("far", {})
    words = sum(v["bytes_per_call"] * v["calls_per_inference"] for v in far.values()) / 2
    res["chip_regions"] = chip.regions
    res["far"] = far
    for lv, e in res["levels"].items():
        e["dma_cycles_est"] = 2 * words
        e["total_cycles_est"] += e["dma_cycles_est"]
        e["latency_ms_est"] = 1000 * e["total_cycles_est"] / MCLK_HZ
        if e["seed_latency_s"]:
            e["seed_over_ours"] = e["seed_latency_s"] / (e["latency_ms_est"] / 1000)
    log(f"  lenet5 (full, {fmt}): front " + ", ".join(f"L{lv} {e['front_cycles'] / 1e6:.2f} M cycles"
                                              for lv, e in res["levels"].items())
        + f" (simulated, bit-identical to golden); chip image upper FRAM {chip.regions.get('UPPER_FRAM', 0)} bytes")
    return res


def _per_level(run) -> dict[int, dict]:
    return {lv: {"instructions": d["instructions"], "cycles": d["cycles"], "n": d["n"]}
            for lv, d in run.per_level().items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=DEFAULT_BUNDLE)
    ap.add_argument("--out", default="build/bench/mcu")
    ap.add_argument("--inputs", type=int, default=2, help="test images per level")
    ap.add_argument("--formats", default=",".join(FORMATS), help="nested builds to measure (first: the main one)")
    ap.add_argument("--no-kernel-samples", action="store_true", help="skip the kernel harness sweep")
    ap.add_argument("--lenet5", default="build/lenet5.nest",
                    help="a trained full LeNet-5 bundle for the full-size estimate (default: its masks are "
                         "derived by magnitude from a seeded initialisation when the file is missing)")
    ap.add_argument("--no-lenet5", action="store_true", help="skip the full LeNet-5 estimate")
    a = ap.parse_args(argv)
    from ...targets import firmware, msp430
    from ...bundle import Bundle
    from ...compiler.build import compile_bundle
    from ...compiler.golden import accuracy
    from ...data.calibration import calibration_inputs
    from .host import dense_twin

    t0 = time.time()
    out = Path(a.out)
    (out / "models").mkdir(parents=True, exist_ok=True)
    bundle = ensure_bundle(Path(a.bundle))
    if isinstance(bundle, (str, Path)):
        bundle = Bundle.load(bundle)
    model_name = (bundle.manifest.get("model") or {}).get("name", "model")
    L = int(bundle.n_levels)
    fmts = [f for f in a.formats.split(",") if f]
    report = {"bundle": str(a.bundle), "model": model_name, "levels": [dict(lv) for lv in bundle.levels],
              "mclk_hz": MCLK_HZ, "seed_latency_s": SEED_LATENCY_S, "cycle_note": msp430.CYCLE_NOTE,
              "builds": {}}
    samples: list[dict] = []
    x_all, y_all = None, None

    def measure(name: str, b, fmt: str, levels: list[int], kernels_list=("mpy32", "ref"), n_inputs=a.inputs):
        nonlocal x_all, y_all
        mdir = out / "models" / name
        info = compile_bundle(b, mdir, target="msp430fr5994", fmt=fmt, switching="resident", build=False,
                              calib=calibration_inputs,
                              target_overrides={"fram_bytes": memory_map().lower_fram_bytes}, force=True)
        meta = info["meta"]
        model = firmware.load_model_dir(mdir)
        x, y = firmware.default_inputs(model, n_inputs)
        if x_all is None:
            x_all, y_all = x, y
        sched = [firmware.Step(i, lv) for lv in levels for i in range(n_inputs)]
        entry = {"format": fmt, "kernels_used": meta["kernels"], "level_nnz": meta["level_nnz"],
                 "labels": [int(v) for v in y], "runs": {}}
        shapes = {n["name"]: n["shape"] for n in info["qmodel"].graph["nodes"]}
        meta["_shapes"] = shapes
        counters = _host_layer_counters(mdir, x, levels)
        for kernels in kernels_list:
            try:
                fb = firmware.build(model, out / "models" / name / f"sim-{kernels}", image="sim",
                                    kernels=kernels, inputs=x, labels=y, schedule=sched)
            except msp430.RegionOverflowError as e:
                entry["runs"][kernels] = {"error": str(e).split("\nlinker said:")[0]}
                _log(f"  {name} ({kernels}): does not fit the simulator: {e.region} over by {e.bytes_over} bytes")
                continue
            run = _run(fb, sched, info["qmodel"])
            entry["runs"][kernels] = {"per_level": _per_level(run), "sim_regions": fb.regions,
                                      "layers": {lv: [{"layer": s, "instructions": c.instructions,
                                                       "cycles": c.cycles}
                                                      for s, c in zip(model.steps, r.layers)]
                                                 for lv, r in {r.level: r for r in run.records}.items()},
                                      "stack_used": run.stack_used}
            for s in _layer_samples(run, meta, name, kernels, counters, model_name):
                samples.append(s)
            pl = entry["runs"][kernels]["per_level"]
            _log(f"  {name} ({kernels}): " + ", ".join(f"L{lv} {d['instructions'] / 1e6:.2f} M instr "
                                                    f"{d['cycles'] / 1e6:.2f} M cycles" for lv, d in pl.items())
                 + " -- bit-identical to golden")
        try:
            chip = firmware.build(model, out / "models" / name / "chip", image="fr5994", inputs=x, labels=y,
                                  schedule=sched)
            entry["chip_regions"] = chip.regions
            entry["chip_size_report"] = chip.size_text
        except msp430.RegionOverflowError as e:
            entry["chip_error"] = str(e).split("\nlinker said:")[0]
        entry["memory"] = meta["memory"]
        entry["q15_accuracy_1000"] = {lv: accuracy(info["qmodel"], *_test_subset(bundle, 1000), lv) for lv in levels}
        report["builds"][name] = entry
        return entry

    _log(f"bench-mcu: {model_name}, {L} levels, {a.inputs} test images per level, MPY32 and reference kernels")
    main_name = f"nested-{fmts[0]}"
    measure(main_name, bundle, fmts[0], list(range(1, L + 1)))
    measure("dense", dense_twin(bundle), "dense", [1])
    for f in fmts[1:]:
        measure(f"nested-{f}", bundle, f, list(range(1, L + 1)), n_inputs=1)
    if not a.no_lenet5:
        _log("full LeNet-5 (convolutions simulated, fully connected layers estimated)")
        report["lenet5_estimate"] = {}
        for f in fmts:
            name = f"nested-{f}"
            lay = report["builds"].get(name, {}).get("runs", {}).get("mpy32", {}).get("layers", {})
            if not lay:
                continue
            nnz_fc1 = json.loads((out / "models" / name / "model_meta.json").read_text())["layers"]["fc1"]["nnz"]
            fc_rates = {}
            for lv, layer_list in lay.items():
                e = next((x for x in layer_list if x["layer"] == "fc1"), None)
                if e:   # fc cost per nonzero of this format's fc1 (MPY32)
                    fc_rates[lv] = {"instructions_per_nnz": e["instructions"] / nnz_fc1[lv - 1],
                                    "cycles_per_nnz": e["cycles"] / nnz_fc1[lv - 1]}
            report["lenet5_estimate"][f] = lenet5_estimate(out, [lv["sparsity"] for lv in bundle.levels],
                                                           a.lenet5, fc_rates, f)
    if not a.no_kernel_samples:
        _log("kernel harness (cycle samples per format)")
        samples += kernel_samples(out)

    # summary
    nested, dense = report["builds"][main_name], report["builds"]["dense"]
    summary = []
    for lv in range(1, L + 1):
        row = {"level": lv, "sparsity": bundle.levels[lv - 1].get("sparsity")}
        for k in ("mpy32", "ref"):
            n = nested["runs"].get(k, {}).get("per_level", {}).get(lv)
            d = dense["runs"].get(k, {}).get("per_level", {}).get(1)
            if n:
                row[f"{k}_instructions"] = n["instructions"]
                row[f"{k}_cycles"] = n["cycles"]
                row[f"{k}_latency_ms"] = 1000 * n["cycles"] / MCLK_HZ
                if d:
                    row[f"{k}_vs_dense_instructions"] = n["instructions"] / d["instructions"]
                    row[f"{k}_vs_dense_cycles"] = n["cycles"] / d["cycles"]
        if "mpy32_cycles" in row and "ref_cycles" in row:
            row["ref_over_mpy32_cycles"] = row["ref_cycles"] / row["mpy32_cycles"]
        if lv in SEED_LATENCY_S and "mpy32_latency_ms" in row:
            row["seed_latency_s"] = SEED_LATENCY_S[lv]
            row["seed_over_mpy32"] = 1000 * SEED_LATENCY_S[lv] / row["mpy32_latency_ms"]
        summary.append(row)
    report["summary"] = summary
    for k in ("mpy32", "ref"):
        d = dense["runs"].get(k, {}).get("per_level", {}).get(1)
        if d:
            report[f"dense_{k}"] = d
    report["elapsed_s"] = time.time() - t0
    (out / "mcu.json").write_text(json.dumps(report, indent=1, default=_json) + "\n")
    (out / "cycle_samples.json").write_text(json.dumps({
        "schema": "sparsenest-cycle-samples/1", "simulator": "mspdebug 0.22 sim (16-bit hwmult at 0x0130)",
        "mclk_hz": MCLK_HZ, "cycle_note": msp430.CYCLE_NOTE, "description": SAMPLES_SCHEMA,
        "samples": samples}, indent=1, default=_json) + "\n")
    print(format_report(report))
    print(f"\nwrote {out / 'mcu.json'} and {out / 'cycle_samples.json'} ({len(samples)} samples) "
          f"in {report['elapsed_s']:.0f} s")
    return 0


def _layer_samples(run, meta, build, kernels, counters, model_name):
    out = []
    seen = set()
    far = meta.get("far", {})
    for r in run.records:
        if not r.layers or r.level in seen:
            continue
        seen.add(r.level)
        for name, c in zip(meta["steps"], r.layers):
            lm = meta["layers"][name]
            fmt = kernel_format(lm) if isinstance(lm.get("format"), str) else None
            calls = 1
            if lm["op"] == "conv":
                shp = meta["_shapes"][name]
                calls = int(np.prod(shp[1:])) * int(lm.get("groups", 1))
            fm = next((v for v in far.values() if v["layer"] == name), None)
            out.append({
                "source": "layer", "model": model_name, "build": build, "kernels": kernels,
                "layer": name, "op": lm["op"], "graph_op": lm.get("graph_op"),
                "kernel": kernel_c_name(fmt), "format": fmt,
                "level": r.level, "rows": lm.get("rows"), "cols": lm.get("cols"),
                "calls": calls if fmt else None,
                "nnz": (lm["nnz"][r.level - 1] // max(1, int(lm.get("groups", 1)))) if "nnz" in lm else None,
                "far": {"tiles": fm["tiles"], "bytes_per_call": fm["bytes_per_call"]} if fm else None,
                "counters": counters.get(r.level, {}).get(name),
                "instructions": c.instructions, "cycles": c.cycles})
    return out


def _test_subset(bundle, n):
    from ... import data
    ds = data.load(bundle.dataset["name"], "test").subset(n, seed=0)
    return ds.x, ds.y


def _json(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def format_report(r: dict) -> str:
    lines = [f"\n{r['model']} on the MSP430FR5994 firmware (mspdebug simulator; cycles over-count, see note)", ""]
    lines.append(f"{'level':>5} {'sparsity':>8} | {'MPY32 instr':>12} {'cycles':>11} {'ms@16MHz':>9} "
                 f"{'vs dense':>8} | {'ref instr':>12} {'cycles':>11} {'vs dense':>8} | {'ref/MPY32':>9} | "
                 f"{'seed LeNet-5':>12} {'seed/ours':>9}")
    for s in r["summary"]:
        sp = s.get("sparsity")
        lines.append(
            f"{s['level']:>5} {(f'{100 * sp:.0f} %' if sp is not None else '-'):>8} | "
            f"{s.get('mpy32_instructions', 0):>12,.0f} {s.get('mpy32_cycles', 0):>11,.0f} "
            f"{s.get('mpy32_latency_ms', 0):>9.1f} {s.get('mpy32_vs_dense_cycles', 0):>8.2f} | "
            f"{s.get('ref_instructions', 0):>12,.0f} {s.get('ref_cycles', 0):>11,.0f} "
            f"{s.get('ref_vs_dense_cycles', 0):>8.2f} | {s.get('ref_over_mpy32_cycles', 0):>9.2f} | "
            f"{s.get('seed_latency_s', 0):>10.1f} s {s.get('seed_over_mpy32', 0):>8.1f}x")
    for k in ("mpy32", "ref"):
        d = r.get(f"dense_{k}")
        if d:
            lines.append(f"dense Q15 ({k}): {d['instructions']:,.0f} instructions, {d['cycles']:,.0f} cycles, "
                         f"{1000 * d['cycles'] / r['mclk_hz']:.1f} ms at 16 MHz")
    lines.append("")
    lines.append("bytes per region of the chip image (lower FRAM / upper FRAM / SRAM / LEA RAM):")
    for name, b in r["builds"].items():
        reg = b.get("chip_regions", {})
        lines.append(f"  {name:<14} {reg.get('LOWER_FRAM', 0):>7} / {reg.get('UPPER_FRAM', 0):>7} / "
                     f"{reg.get('SRAM', 0):>5} / {reg.get('LEA_RAM', 0):>5}")
    others = [n for n in r["builds"] if n.startswith("nested-")]
    if len(others) > 1:
        lines.append("")
        lines.append("formats (MPY32 cycles per inference per level, 1 test image):")
        for name in others:
            pl = r["builds"][name]["runs"].get("mpy32", {}).get("per_level")
            if pl:
                lines.append(f"  {name:<14} " + "  ".join(f"L{lv} {d['cycles'] / 1e6:.2f} M" for lv, d in pl.items()))
            else:
                lines.append(f"  {name:<14} " + r["builds"][name]["runs"].get("mpy32", {}).get("error", "-")[:90])
    main = next(iter(r["builds"].values()))
    lay = main["runs"].get("mpy32", {}).get("layers")
    if lay:
        lines.append("")
        lines.append("per layer, MPY32 (instructions / cycles per inference):")
        levels = sorted(lay)
        names = [e["layer"] for e in lay[levels[0]]]
        for i, n in enumerate(names):
            lines.append(f"  {n:<8} " + "  ".join(f"L{lv} {lay[lv][i]['instructions']:>9,} / {lay[lv][i]['cycles']:>9,}"
                                                  for lv in levels))
    for fmt, est in (r.get("lenet5_estimate") or {}).items():
        lines.append("")
        lines.append(f"full LeNet-5 at the same sparsities, format {fmt} (convolutions simulated; fc layers "
                     f"estimated from LeNet-5-small's fc1 cycles per nonzero + DMA from upper FRAM):")
        for lv, e in est["levels"].items():
            lines.append(f"  L{lv}: front {e['front_cycles'] / 1e6:.2f} M + fc {(e['fc_cycles_est'] or 0) / 1e6:.2f} M"
                         f" + DMA {e['dma_cycles_est'] / 1e6:.2f} M cycles = {e['latency_ms_est']:.0f} ms at 16 MHz"
                         + (f"; seed {e['seed_latency_s']} s -> {e['seed_over_ours']:.1f}x" if e["seed_latency_s"] else ""))
    lines.append("")
    lines.append("note: " + r["cycle_note"])
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
