"""`make bench-bound`: nested index bytes against the level-map entropy bound, and what each level's
kernel costs, for csr16, rel4, bitmap and hbitmap on real nested bundles.

Per model and format: bytes by part (values, indices, metadata), the entropy bound of the level map
(compiler/analyze.py), the gap (index + metadata over the bound), and per level the MPY32 kernel
cycles of one inference measured in our MSP430FR5994 simulator (chip image, FRAM wait states) plus
the host-board counters (MACs, weight bytes read; `EncodedLayer.kernel_counts`, which the host kernels
are tested to equal). Cycles are those of the format kernels only (sn_spmv_<format> on each layer's
matrix, times the layer's calls per inference: one for a linear layer, one per output position for an
im2col convolution); im2col copies, requantisation and pooling are the same for every format and
left out. A layer too large for one harness image is cut into blocks of rows (each block its own
matrix); the cycles of the blocks are added. Every call's accumulators are checked against numpy.

    python -m sparsenest.experiments.bench.bound [BUNDLE.nest ...] [--tasks lenet5,harnet,okgnet]
                                                 [--out build/bench/bound]

Without bundles, each task's 90/75/50 % nested model is trained quickly (experiments/tasks.py
`--quick` budget: 768 training samples, one dense and one joint epoch) into OUT/bundles/ when missing
there; the masks' per-layer level proportions come from that short training.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...compiler import analyze, formats

FORMATS = ("csr16", "rel4", "bitmap", "hbitmap")
#: bytes of encoded arrays per harness case and per harness image (the chip image's lower FRAM)
CASE_BYTES, IMAGE_BYTES = 6000, 30000


def model_matrices(bundle) -> list[dict]:
    """Per pruned weight in graph order: name, Q15 matrix, intro matrix, kernel calls per inference
    (output positions of a convolution, 1 for a linear layer), groups (one matrix per group)."""
    out = []
    for node in bundle.graph["nodes"]:
        key = node.get("weight")
        if key not in bundle.intro:
            continue
        w = np.asarray(bundle.weights[key])
        groups = int(node.get("groups", 1))
        calls = int(np.prod(node["shape"][1:])) if node["op"].startswith("conv") else 1
        w_q = formats.as_matrix(analyze._as_q15(w))
        it = formats.as_matrix(np.asarray(bundle.intro[key])).astype(np.uint8)
        out.append({"name": node["name"], "w_q": w_q, "intro": it, "calls": calls, "groups": groups})
    return out


def _blocks(w_q, it, groups, fmt, L):
    """Row blocks of a layer's matrix (per group) small enough for one harness case."""
    rows = w_q.shape[0]
    per = rows // groups
    out = []
    for g in range(groups):
        r0, r1 = g * per, (g + 1) * per
        step = per
        while True:
            enc = formats.encode(fmt, w_q[r0:r0 + step], it[r0:r0 + step], L)
            if enc.total_bytes <= CASE_BYTES or step == 1:
                break
            step = max(1, step // 2)
        for a in range(r0, r1, step):
            out.append(formats.encode(fmt, w_q[a:min(a + step, r1)], it[a:min(a + step, r1)], L))
    return out


def _run_harness(cases, out_dir: Path) -> dict[tuple[str, int], int]:
    """Build the chip-image kernel harness (MPY32 kernels) and run it in our simulator: (case, level)
    -> cycles of the kernel call; checks every call's accumulators against numpy."""
    from ...targets import firmware
    from ...targets.fr5994sim import Device, FrSimError
    fb = firmware.build_kernel_harness(cases, out_dir, kernels="mpy32", image="fr5994")
    dev = Device()
    dev.load(fb.elf)
    halt, mark = dev.elf.symbols["__halt"].value, dev.elf.symbols["kh_mark"].value
    dev.clear_counters()
    marks = []
    while True:
        stop = dev.run([halt, mark], max_cycles=4 * 10 ** 10)
        if stop.reason in ("error", "budget"):
            raise FrSimError(f"kernel harness {out_dir}: {stop.reason} {getattr(stop, 'message', '')}")
        if stop.reason == "halt" or stop.pc == halt:
            break
        marks.append(dev.counters.cycles)
    out_sym = dev.elf.symbols["kh_out"]
    accs = np.frombuffer(dev.read(out_sym.value, out_sym.size), "<i4")
    cycles, k, off = {}, 0, 0
    for c in cases:
        for lv in range(c.enc.n_levels + 1):
            if not np.array_equal(accs[off:off + c.enc.rows], c.expected(lv)):
                raise AssertionError(f"{c.name} level {lv}: MPY32 kernel differs from numpy in the simulator")
            cycles[(c.name, lv)] = marks[2 * k + 1] - marks[2 * k]
            k += 1
            off += c.enc.rows
    return cycles


def measure_model(bundle, out_dir: Path, fmts=FORMATS, log=print) -> dict:
    from ...targets import firmware
    L = bundle.n_levels
    layers = model_matrices(bundle)
    rep = analyze.analyze_layers({m["name"]: (m["w_q"], m["intro"]) for m in layers}, L,
                                 formats=tuple(f for f in fmts))
    rng = np.random.default_rng(0)
    result = {"model": bundle.path.name if getattr(bundle, "path", None) else "bundle", "n_levels": L,
              "bound_bytes": rep["totals"]["bound_bytes"], "formats": {}, "layers": {}}
    for fmt in fmts:
        cases, owner = [], {}
        for m in layers:
            for i, enc in enumerate(_blocks(m["w_q"], m["intro"], m["groups"], fmt, L)):
                name = f"{m['name']}_{i}"
                x = rng.integers(-9000, 9000, enc.cols).astype(np.int16)
                acc0 = rng.integers(-2 ** 20, 2 ** 20, enc.rows).astype(np.int32)
                cases.append(firmware.KernelCase(name, enc, x, acc0))
                owner[name] = m
        images, cur, size = [], [], 0
        for c in cases:
            if cur and size + c.enc.total_bytes > IMAGE_BYTES:
                images.append(cur)
                cur, size = [], 0
            cur.append(c)
            size += c.enc.total_bytes
        images.append(cur)
        cyc = {}
        for j, img in enumerate(images):
            cyc.update(_run_harness(img, out_dir / f"{fmt}-{j}"))
        per_level = []
        for lv in range(1, L + 1):
            per_level.append({
                "level": lv,
                "cycles": int(sum(cyc[(c.name, lv)] * owner[c.name]["calls"] for c in cases)),
                "macs": int(sum(c.enc.kernel_counts(lv)["macs"] * owner[c.name]["calls"] for c in cases)),
                "weight_bytes_read": int(sum(c.enc.kernel_counts(lv)["weight_bytes_read"] * owner[c.name]["calls"]
                                             for c in cases))})
        for m in layers:
            mine = [c for c in cases if owner[c.name] is m]
            result["layers"].setdefault(m["name"], {}).setdefault("cycles", {})[fmt] = [
                int(sum(cyc[(c.name, lv)] for c in mine) * m["calls"]) for lv in range(1, L + 1)]
        t = rep["totals"]["formats"][fmt]
        parts = {p: int(sum(r["formats"][fmt]["bytes"][p] for r in rep["layers"].values()))
                 for p in ("values", "indices", "metadata")}
        result["formats"][fmt] = {"bytes": parts, "total": t["total"], "index_meta_bytes": t["index_meta_bytes"],
                                  "vs_bound": t["vs_bound"], "levels": per_level,
                                  "harness_images": len(images), "cases": len(cases)}
        log(f"  {fmt}: {len(cases)} matrices in {len(images)} images, cycles per level "
            + " / ".join(f"{p['cycles']:,}" for p in per_level))
    for name, r in rep["layers"].items():
        result["layers"].setdefault(name, {}).update({"shape": r["shape"], "density": r["density"], "bound_bytes": r["bound"]["bytes"],
                                  "vs_bound": {f: r["formats"][f]["vs_bound"] for f in fmts}})
    return result


def format_result(res: dict) -> str:
    lines = [f"{res['model']}: {res['n_levels']} levels, level-map entropy bound {res['bound_bytes']:.0f} B",
             f"  {'format':<8} {'values':>7} {'indices':>7} {'meta':>6} {'idx+meta':>8} {'/bound':>7}  "
             + "  ".join(f"{'L%d cycles' % (k + 1):>11} {'MACs':>7}" for k in range(res["n_levels"]))]
    for fmt, f in res["formats"].items():
        b = f["bytes"]
        lines.append(f"  {fmt:<8} {b['values']:>7} {b['indices']:>7} {b['metadata']:>6} {f['index_meta_bytes']:>8} "
                     f"{f['vs_bound']:>6.2f}x  " + "  ".join(f"{p['cycles']:>11,} {p['macs']:>7,}" for p in f["levels"]))
    base = res["formats"].get("bitmap")
    if base and "hbitmap" in res["formats"]:
        ratio = [h["cycles"] / b["cycles"] if b["cycles"] else float("nan")
                 for h, b in zip(res["formats"]["hbitmap"]["levels"], base["levels"])]
        lines.append("  hbitmap cycles / bitmap cycles per level: " + " / ".join(f"{r:.2f}" for r in ratio))
    lines.append("  per layer idx+meta / bound: " + "; ".join(
        f"{n} " + " ".join(f"{f} {v:.2f}" for f, v in l["vs_bound"].items() if v is not None)
        for n, l in res["layers"].items()))
    lines.append("  kernel cycles per layer (levels " + "/".join(str(k + 1) for k in range(res["n_levels"])) + "): " + "; ".join(
        f"{n} " + " ".join(f"{f} " + "/".join(f"{c:,}" for c in cs) for f, cs in l["cycles"].items())
        for n, l in res["layers"].items()))
    return "\n".join(lines)


def add_arguments(ap) -> None:
    from ... import cli_args as arg
    ap.add_argument("bundles", nargs="*", help="nested bundles (.nest); default: --tasks, trained quickly")
    ap.add_argument("--tasks", default="lenet5,harnet,okgnet", help="tasks trained quickly when no bundle is given")
    arg.add_output(ap, default="build/bench/bound", help="output folder")
    ap.add_argument("--formats", default=",".join(FORMATS), help="formats to compare")


def run(a) -> int:
    from ...bundle import Bundle
    out = Path(a.out)
    paths = list(a.bundles)
    if not paths:
        from .. import tasks
        for t in tasks.parse(a.tasks):
            path = out / "bundles" / f"{t.key}.nest"
            if not path.exists():
                print(f"training {t.key} (quick, levels {t.levels('sparse')}) into {path}", flush=True)
                path.parent.mkdir(parents=True, exist_ok=True)
                t.train(path, "sparse", quick=True)
            paths.append(str(path))
    results = []
    for path in paths:
        b = Bundle.load(path)
        print(f"{path}: measuring {a.formats}", flush=True)
        res = measure_model(b, out / Path(path).stem, tuple(a.formats.split(",")))
        res["model"] = Path(path).name
        print(format_result(res), flush=True)
        results.append(res)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bound.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out / 'bound.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from ...cli import run_command
    return run_command("bench bound", argv)


if __name__ == "__main__":
    raise SystemExit(main())
