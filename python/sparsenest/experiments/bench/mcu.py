"""`make bench-mcu`: the nested model's chip image (MPY32 at 0x04C0, weights beyond lower FRAM streamed
from upper FRAM by DMA tiles) measured in our MSP430FR5994 simulator (boards/msp430fr5994/sim).

Per level: cycles (CPUXv2 table + FRAM wait states + DMA/LEA hold), instructions, time and energy at the
board's clock (board.toml), FRAM reads/writes, read-cache hit rate, and where the time goes per layer
(layer hook) and per function (the simulator's profile over the ELF's symbols); with the MPY32 and the
reference C kernels, against a dense Q15 build of the same network measured in the same run; full
LeNet-5 at the same sparsities from upper FRAM. Beside them, mspdebug 0.22's instruction and cycle counts
of the simulator image (a plain 64 KB MSP430 with the multiplier at 0x0130) for the builds that fit it:
the cross-check. Every simulated inference is compared with the golden model bit for bit. Writes the
cycle samples the cost model is calibrated on (analysis.calibration; per layer and per kernel-harness
call, core cycles) and a plot.

    sparsenest bench mcu [--bundle build/lenet5-small.nest] [-o build/bench/mcu]

Without --bundle, build/lenet5-small.nest is used, trained first (about a minute, 90/75/50 % like the
README's LeNet-5) when missing. Everything is simulated; nothing here was measured on a board.

Outputs in -o: mcu.json (everything), cycle_samples.json, mcu.png, firmware builds under models/.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ...analysis import calibration
from ...board import mclk_hz, memory_map
from ...seed import seed_rows

# the seed report's LeNet-5 on the MSP430FR5994, per level (experiments/seed_table2.toml)
SEED_LATENCY_S = dict(enumerate(seed_rows()["lenet5"].latency_s, 1))
MCLK_HZ = mclk_hz()
DEFAULT_BUNDLE = "build/lenet5-small.nest"
FORMATS = ("auto", "rel8", "rel4", "csr16")
TOP_FUNCTIONS = 8          # functions listed in the per-function profile


def _log(msg: str) -> None:
    print(msg, flush=True)


def ensure_bundle(path: Path):
    """The LeNet-5-small bundle at `path`, trained by the shared recipe (experiments/recipes.py) if missing."""
    from ..recipes import ensure_bundle as ensure
    return ensure(path, "lenet5-small", log=_log)


def measure_chip(fb, qmodel, *, profile: bool = True) -> tuple[dict[int, dict], dict[str, int]]:
    """A chip-image build in our simulator: level figures (analysis.calibration.level_figures) and the
    cycles per function of the whole run (top TOP_FUNCTIONS)."""
    from ...targets.fr5994sim import Device
    dev = Device()
    dev.enable_profile(profile)
    _, per = calibration.simulate_firmware(fb, qmodel, device=dev)
    prof = dict(list(dev.profile().items())[:TOP_FUNCTIONS]) if profile else {}
    return per, prof


def cross_check(model, out: Path, qmodel, *, kernels: str, x, y, schedule) -> dict:
    """mspdebug's figures of the simulator image, when it fits 64 KB and mspdebug is installed."""
    from ...targets import firmware, msp430
    try:
        msp430.find_mspdebug()
        fb = firmware.build(model, out, image="sim", kernels=kernels, inputs=x, labels=y, schedule=schedule)
    except msp430.RegionOverflowError as e:
        return {"error": f"does not fit mspdebug's 64 KB: {e.region} over by {e.bytes_over} bytes"}
    except msp430.ToolchainError as e:
        return {"error": f"mspdebug missing: {e}"}
    return {"per_level": calibration.mspdebug_levels(fb, qmodel), "simulator": "mspdebug 0.22 sim"}


def kernel_samples(out: Path, log=_log) -> list[dict]:
    """Every format kernel on small matrices of a few shapes and densities, both back-ends, in our
    simulator on the chip image (core cycles)."""
    from ...targets import firmware, fr5994fw
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
            fb = firmware.build_kernel_harness(cases, out / "harness" / f"{fmt}-{kernels}", kernels=kernels,
                                               image="fr5994")
            runs = fr5994fw.run_kernel_harness(fb, cases)
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
                    "cycles": r.counts.cycles,
                    "sim": {k: r.counters_full[k] for k in calibration.SIM_KEYS}})
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


def seeded_bundle(name: str, input_shape, dataset: str, sparsities):
    """A zoo model with seeded initial weights and magnitude-nested masks at `sparsities`: enough for
    cycle, byte and power-cut measurements, whose results depend on the masks' sizes, not the values."""
    import torch

    from ... import models
    from ...bundle import Bundle
    from ...train.graph import extract_graph, prunable_weight_keys
    torch.manual_seed(0)
    net = models.create(name).eval()
    graph = extract_graph(net, tuple(input_shape))
    sd = net.state_dict()
    intro = {k: _magnitude_intro(sd[k].numpy(), sparsities) for k in prunable_weight_keys(graph)}
    levels = [{"level": i + 1, "target_sparsity": sp, "sparsity": sp, "float_accuracy": None}
              for i, sp in enumerate(sparsities)]
    return Bundle.from_model(net, intro, graph=graph, levels=levels, prune={"method": "magnitude"},
                             dataset={"name": dataset}, train_config={}, model_spec={"name": name, "kwargs": {}})


def lenet5_full(out: Path, sparsities, lenet5_bundle: str | None, fmt: str = "auto", log=_log) -> dict:
    """Full LeNet-5 at the same sparsities on the chip image: its fully connected weights live in upper
    FRAM and stream through DMA tiles; every level simulated (mspdebug cannot run it: no upper FRAM).
    The weights are a trained bundle's when --lenet5 exists, else a seeded initialisation with
    magnitude-nested masks (costs depend on the masks' sizes, not on the values)."""
    from ...bundle import Bundle
    from ...compiler.build import compile_bundle
    from ...data.calibration import calibration_inputs
    from ...targets import firmware

    if lenet5_bundle and Path(lenet5_bundle).exists():
        b, how = Bundle.load(lenet5_bundle), f"trained bundle {lenet5_bundle}"
    else:
        b = seeded_bundle("lenet5", (1, 28, 28), "mnist", sparsities)
        how = "seeded initialisation, magnitude-nested masks"
    L = int(b.n_levels)
    wdir = out / "models" / f"lenet5-{fmt}"
    info = compile_bundle(b, wdir, target="msp430fr5994", fmt=fmt, build=False, force=True,
                          calib=calibration_inputs)  # the bench's own folder
    chip = firmware.build(wdir, wdir / "chip", image="fr5994", n_inputs=1,
                          schedule=[firmware.Step(0, lv) for lv in range(1, L + 1)])
    per, prof = measure_chip(chip, info["qmodel"])
    far = info["meta"].get("far", {})
    res = {"weights": how, "format": fmt, "sparsities": [lv["sparsity"] for lv in b.levels],
           "chip_regions": chip.regions, "far_layers": sorted(v["layer"] for v in far.values()),
           "per_level": per, "profile": prof}
    log(f"  lenet5 (full, {fmt}, {how}): " + ", ".join(
        f"L{lv} {d['cycles_total'] / 1e6:.2f} M cycles {1e3 * d['cycles_total'] / MCLK_HZ:.0f} ms"
        for lv, d in per.items())
        + f"; upper FRAM {chip.regions.get('UPPER_FRAM', 0)} bytes, DMA tiles for {', '.join(res['far_layers'])}; "
          f"== golden")
    return res


def add_arguments(p) -> None:
    from ... import cli_args as arg
    p.add_argument("--bundle", default=DEFAULT_BUNDLE, help="LeNet-5-small bundle (trained when missing)")
    arg.add_output(p, default="build/bench/mcu", help="output path")
    p.add_argument("--inputs", type=int, default=2, help="test images per level")
    p.add_argument("--formats", default=",".join(FORMATS), help="nested builds to measure (first: the main one)")
    p.add_argument("--no-kernel-samples", action="store_true", help="skip the kernel harness sweep")
    p.add_argument("--lenet5", default="build/lenet5.nest",
                   help="a trained full LeNet-5 bundle (default: a seeded initialisation with magnitude-nested "
                        "masks at the bundle's sparsities when the file is missing)")
    p.add_argument("--no-lenet5", action="store_true", help="skip full LeNet-5")
    p.add_argument("--no-mspdebug", action="store_true", help="skip the mspdebug cross-check")
    p.add_argument("--no-objectives", action="store_true",
                   help="skip the layout choice per objective vs the smallest-format auto (bench objectives)")


def run(a) -> int:
    from ...targets import firmware
    from ...targets.fr5994sim import CYCLE_NOTE
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
              "mclk_hz": MCLK_HZ, "seed_latency_s": SEED_LATENCY_S, "simulator": calibration.SIMULATOR,
              "cycle_note": CYCLE_NOTE, "builds": {}}
    samples: list[dict] = []

    def measure(name: str, b, fmt: str, levels: list[int], kernels_list=("mpy32", "ref"), n_inputs=a.inputs):
        mdir = out / "models" / name
        info = compile_bundle(b, mdir, target="msp430fr5994", fmt=fmt, switching="resident", build=False,
                              calib=calibration_inputs,
                              target_overrides={"fram_bytes": memory_map().lower_fram_bytes}, force=True)
        meta, qm = info["meta"], info["qmodel"]
        model = firmware.load_model_dir(mdir)
        x, y = firmware.default_inputs(model, n_inputs)
        sched = [firmware.Step(i, lv) for lv in levels for i in range(n_inputs)]
        entry = {"format": fmt, "kernels_used": meta["kernels"], "level_nnz": meta["level_nnz"],
                 "labels": [int(v) for v in y], "runs": {}, "mspdebug": {}}
        shapes = {n["name"]: n["shape"] for n in qm.graph["nodes"]}
        counters = calibration.host_layer_counters(mdir, x, levels)
        for kernels in kernels_list:
            fb = firmware.build(model, mdir / f"chip-{kernels}", image="fr5994", kernels=kernels, inputs=x,
                                labels=y, schedule=sched)
            per, prof = measure_chip(fb, qm)
            entry["runs"][kernels] = {"per_level": per, "profile": prof, "chip_regions": fb.regions}
            if kernels == "mpy32":
                entry["chip_regions"], entry["chip_size_report"] = fb.regions, fb.size_text
            samples.extend(calibration.layer_samples(per, meta, shapes, counters, model=model_name, build=name,
                                                     kernels=kernels))
            if not a.no_mspdebug:
                entry["mspdebug"][kernels] = cross_check(model, mdir / f"sim-{kernels}", qm, kernels=kernels, x=x,
                                                         y=y, schedule=sched)
            _log(f"  {name} ({kernels}): " + ", ".join(f"L{lv} {d['cycles_total'] / 1e6:.2f} M cycles "
                                                    f"{d['instructions'] / 1e6:.2f} M instr" for lv, d in per.items())
                 + " -- bit-identical to golden")
        entry["memory"] = meta["memory"]
        entry["q15_accuracy_1000"] = {lv: accuracy(qm, *_test_subset(bundle, 1000), lv) for lv in levels}
        report["builds"][name] = entry
        return entry

    _log(f"bench-mcu: {model_name}, {L} levels, {a.inputs} test images per level, MPY32 and reference kernels, "
         f"chip image in our simulator")
    main_name = f"nested-{fmts[0]}"
    measure(main_name, bundle, fmts[0], list(range(1, L + 1)))
    measure("dense", dense_twin(bundle), "dense", [1])
    for f in fmts[1:]:
        measure(f"nested-{f}", bundle, f, list(range(1, L + 1)), kernels_list=("mpy32",), n_inputs=1)
    if not a.no_lenet5:
        _log("full LeNet-5 (chip image, fully connected weights in upper FRAM through DMA tiles)")
        report["lenet5"] = lenet5_full(out, [lv["sparsity"] for lv in bundle.levels], a.lenet5, fmts[0])
    if not a.no_kernel_samples:
        _log("kernel harness (cycle samples per format)")
        samples += kernel_samples(out)

    report["summary"] = summarize(report, L)
    report["elapsed_s"] = time.time() - t0
    (out / "mcu.json").write_text(json.dumps(report, indent=1, default=calibration.json_default) + "\n")
    calibration.write_samples(out / "cycle_samples.json", samples, mclk_hz=MCLK_HZ)
    plot = save_plot(report, out / "mcu.png")
    print(format_report(report))
    print(f"\nwrote {out / 'mcu.json'}, {out / 'cycle_samples.json'} ({len(samples)} samples)"
          + (f", {plot}" if plot else "") + f" in {report['elapsed_s']:.0f} s")
    if not a.no_objectives:
        from .objectives import report_objectives
        print()
        report_objectives(bundle, out / "objectives", title=f"{model_name} ({a.bundle})")
    return 0


def summarize(r: dict, L: int) -> list[dict]:
    """Per level of the main build: time and energy at the clock per back-end, ratios to dense and
    to the reference kernels, mspdebug's counts beside ours, the seed's latency."""
    nested, dense = next(iter(r["builds"].values())), r["builds"]["dense"]
    rows = []
    for lv in range(1, L + 1):
        row = {"level": lv, "sparsity": r["levels"][lv - 1].get("sparsity")}
        for k in ("mpy32", "ref"):
            n = nested["runs"].get(k, {}).get("per_level", {}).get(lv)
            d = dense["runs"].get(k, {}).get("per_level", {}).get(1)
            if not n:
                continue
            row[k] = {key: n[key] for key in ("cycles_total", "cycles", "instructions", "fram_reads", "fram_writes",
                                              "cache_hit_rate", "dma_transfers", "energy_uj")}
            row[k]["latency_ms"] = 1e3 * n["cycles_total"] / r["mclk_hz"]
            if d:
                row[k]["vs_dense_cycles"] = n["cycles_total"] / d["cycles_total"]
            m = (nested["mspdebug"].get(k) or {}).get("per_level", {}).get(lv)
            if m:
                row[k]["mspdebug_instructions"], row[k]["mspdebug_cycles"] = m["instructions"], m["cycles"]
        if "mpy32" in row and "ref" in row:
            row["ref_over_mpy32_cycles"] = row["ref"]["cycles_total"] / row["mpy32"]["cycles_total"]
        if lv in SEED_LATENCY_S and "mpy32" in row:
            row["seed_latency_s"] = SEED_LATENCY_S[lv]
        rows.append(row)
    return rows


def save_plot(r: dict, path: Path) -> Path | None:
    """Per level of the main build (MPY32): cycles per layer, stacked, beside full LeNet-5's."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = [(f"{r['model']} ({next(iter(r['builds']))}, MPY32)",
               next(iter(r["builds"].values()))["runs"].get("mpy32", {}).get("per_level", {}))]
    if r.get("lenet5"):
        panels.append((f"full LeNet-5 ({r['lenet5']['format']}, upper FRAM + DMA)", r["lenet5"]["per_level"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (title, per) in zip(axes[0], panels):
        levels = sorted(per)
        names = list(per[levels[0]]["layer_counters"]) if levels else []
        bottom = np.zeros(len(levels))
        for name in names:
            v = np.array([per[lv]["layer_counters"][name]["cycles"] / r["mclk_hz"] * 1e3 for lv in levels])
            ax.bar([f"L{lv}" for lv in levels], v, bottom=bottom, label=name)
            bottom += v
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(f"ms per inference at {r['mclk_hz'] / 1e6:.0f} MHz (simulated)")
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _test_subset(bundle, n):
    from ... import data
    ds = data.load(bundle.dataset["name"], "test").subset(n, seed=0)
    return ds.x, ds.y


def _level_lines(per: dict, mclk: float, mspdebug: dict | None = None) -> list[str]:
    lines = [f"  {'level':>5} {'cycles':>12} {'instructions':>13} {'ms':>8} {'uJ':>8} {'FRAM rd':>11} {'FRAM wr':>8} "
             f"{'cache hit':>9} {'DMA':>8}" + (f" | {'mspdebug instr':>14} {'cycles':>11}" if mspdebug else "")]
    for lv, d in sorted(per.items()):
        m = (mspdebug or {}).get(lv)
        hit = d["cache_hit_rate"]
        lines.append(f"  {lv:>5} {d['cycles_total']:>12,.0f} {d['instructions']:>13,.0f} "
                     f"{1e3 * d['cycles_total'] / mclk:>8.2f} {d['energy_uj']:>8.1f} {d['fram_reads']:>11,.0f} "
                     f"{d['fram_writes']:>8,.0f} {(f'{hit:.1%}' if hit is not None else '-'):>9} "
                     f"{d['dma_transfers']:>8,.0f}"
                     + (f" | {m['instructions']:>14,.0f} {m['cycles']:>11,.0f}" if m else
                        (" | " + "-".rjust(14) if mspdebug is not None else "")))
    return lines


def _layer_lines(per: dict, mclk: float) -> list[str]:
    levels = sorted(per)
    names = list(per[levels[0]]["layer_counters"])
    lines = [f"  {'layer':<10} " + " ".join(f"{'L' + str(lv) + ' ms':>9} {'share':>6}" for lv in levels)]
    for n in names:
        lines.append(f"  {n:<10} " + " ".join(
            f"{1e3 * per[lv]['layer_counters'][n]['cycles'] / mclk:>9.2f} "
            f"{per[lv]['layer_counters'][n]['cycles'] / per[lv]['cycles_total']:>6.1%}" for lv in levels))
    return lines


def format_report(r: dict) -> str:
    mclk = r["mclk_hz"]
    lines = [f"\n{r['model']} on the MSP430FR5994 chip image in our simulator (all figures simulated, none measured "
             f"on a board; cycles = CPUXv2 table + FRAM wait states + DMA/LEA; {mclk / 1e6:.0f} MHz from board.toml)"]
    for name, b in r["builds"].items():
        for k, run in b["runs"].items():
            md = (b["mspdebug"].get(k) or {})
            lines += ["", f"{name}, {k} kernels" + (f" (mspdebug: {md['error']})" if md.get("error") else "")]
            lines += _level_lines(run["per_level"], mclk, md.get("per_level") if "per_level" in md else None)
    lines += ["", "ratios (main build, cycles per inference):"]
    for s in r["summary"]:
        m = s.get("mpy32", {})
        lines.append(f"  L{s['level']} ({100 * (s['sparsity'] or 0):.0f} % sparse): MPY32 {m.get('latency_ms', 0):.1f} ms, "
                     f"{m.get('vs_dense_cycles', 0):.2f}x dense; reference kernels / MPY32 "
                     f"{s.get('ref_over_mpy32_cycles', 0):.2f}x"
                     + (f"; seed LeNet-5 {s['seed_latency_s']} s" if s.get("seed_latency_s") else ""))
    main_run = next(iter(r["builds"].values()))["runs"].get("mpy32")
    if main_run:
        lines += ["", "where the time goes, main build (MPY32), per layer (ms at the clock, share of the inference):"]
        lines += _layer_lines(main_run["per_level"], mclk)
        lines += ["", "per function over the whole run (cycles; the simulator's profile):"]
        lines += [f"  {fn:<28} {c:>12,}" for fn, c in main_run["profile"].items()]
    lines += ["", "bytes per region of the chip image (lower FRAM / upper FRAM / SRAM / LEA RAM):"]
    for name, b in r["builds"].items():
        reg = b.get("chip_regions", {})
        lines.append(f"  {name:<14} {reg.get('LOWER_FRAM', 0):>7} / {reg.get('UPPER_FRAM', 0):>7} / "
                     f"{reg.get('SRAM', 0):>5} / {reg.get('LEA_RAM', 0):>5}")
    le = r.get("lenet5")
    if le:
        lines += ["", f"full LeNet-5 at the same sparsities ({le['weights']}; format {le['format']}; weights of "
                      f"{', '.join(le['far_layers'])} from upper FRAM by DMA tiles; chip image, == golden):"]
        lines += _level_lines(le["per_level"], mclk)
        lines += _layer_lines(le["per_level"], mclk)
        lines += ["  seed report's LeNet-5: " + ", ".join(f"L{lv} {t} s" for lv, t in SEED_LATENCY_S.items())]
    lines += ["", "note: " + r["cycle_note"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ...cli import run_command
    return run_command("bench mcu", argv)

if __name__ == "__main__":
    raise SystemExit(main())
