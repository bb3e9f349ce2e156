"""`make bench`: the compiled nested model on the host board against a dense Q15 build of the same
network, measured in the same run.

Per level: weight bytes by part, index overhead, MACs per inference (host-board counters), host-simulated
inferences per second, and the C model's accuracy on the full test set, which must equal the golden
model's (checked, not assumed). Writes build/bench/host.json.

    sparsenest bench host [BUNDLE]      # default: build/demo/lenet5.nest (make demo makes it)
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ...analysis.report import dense_twin   # the dense Q15 baseline, stated once


def measure(build_dir: Path, x: np.ndarray, y: np.ndarray, qmodel, levels: list[int]) -> list[dict]:
    from ...compiler import golden
    from ...targets.host import HostSim
    sim = HostSim(build_dir)
    meta = json.loads((build_dir / "model_meta.json").read_text())
    out = []
    for lv in levels:
        sim.set_level(lv)
        sim.reset_counters()
        sim.infer(x[:1])
        counts = sim.counters()
        t0 = time.perf_counter()
        logits = sim.infer(x)
        dt = time.perf_counter() - t0
        ref = golden.predict(qmodel, x, lv)
        parts = {"values": 0, "indices": 0, "metadata": 0}
        for layer in meta["layers"].values():
            for k, v in layer.get("bytes_by_part", {}).items():
                parts[k] += v
        total = sum(parts.values())
        out.append({"level": lv, "accuracy_c": float((logits.argmax(1) == y).mean()),
                    "accuracy_golden": float((ref.argmax(1) == y).mean()),
                    "bit_exact": bool(np.array_equal(logits, ref)),
                    "macs": counts["macs"], "weight_bytes_read": counts["weight_bytes_read"],
                    "inferences_per_s": len(x) / dt, "bytes_by_part": parts, "weight_bytes": total,
                    "index_overhead": (parts["indices"] + parts["metadata"]) / total if total else 0.0})
    return out


def add_arguments(p) -> None:
    from ... import cli_args as arg
    p.add_argument("bundle", nargs="?", default="build/demo/lenet5.nest",
                   help="the bundle to measure (default: the demo's)")
    p.add_argument("--format", default="auto", help="compiler format of the nested build")
    p.add_argument("--objective", default="time", choices=["time", "energy", "bytes"],
                   help="with --format auto: what the per-layer layout choice minimises (compile's default)")
    p.add_argument("--no-objectives", action="store_true",
                   help="skip the per-objective builds simulated in our FR5994 simulator (bench objectives)")
    arg.add_output(p, default="build/bench/host.json", help="output path")


def run(a) -> int:
    from ... import data
    from ...bundle import Bundle
    from ...compiler.build import compile_bundle
    from ...data.calibration import calibration_inputs
    if not Path(a.bundle).exists():
        print(f"{a.bundle} not found: run `make demo` first (it trains the default LeNet-5 bundle), or "
              "pass a bundle path", file=sys.stderr)
        return 2
    bundle = Bundle.load(a.bundle)
    test = data.load(bundle.dataset["name"], "test")
    with tempfile.TemporaryDirectory() as tmp:
        nested = compile_bundle(bundle, Path(tmp) / "nested", fmt=a.format, switching="resident",
                                calib=calibration_inputs, objective=a.objective)
        dense = compile_bundle(dense_twin(bundle), Path(tmp) / "dense", fmt="dense", switching="resident",
                               calib=calibration_inputs)
        rows = measure(Path(tmp) / "nested", test.x, test.y, nested["qmodel"], list(range(1, bundle.n_levels + 1)))
        base = measure(Path(tmp) / "dense", test.x, test.y, dense["qmodel"], [1])[0]
    print(f"{bundle.manifest['model']['name']} on {bundle.dataset['name']} ({len(test)} test images), "
          f"format={a.format}" + (f", objective {a.objective}" if a.format == "auto" else "")
          + "; dense = the same network stored and computed densely in Q15")
    hdr = (f"{'build':<10} {'values':>7} {'indices':>7} {'meta':>6} {'bytes':>7} {'x dense':>7} {'idx %':>6} "
           f"{'MACs':>7} {'x dense':>7} {'inf/s':>7} {'x dense':>7} {'acc C':>7} {'=golden':>7}")
    print(hdr)
    for r in [dict(base, level="dense")] + rows:
        b = r["bytes_by_part"]
        print(f"{('L' + str(r['level'])) if r['level'] != 'dense' else 'dense':<10} {b['values']:>7} "
              f"{b['indices']:>7} {b['metadata']:>6} {r['weight_bytes']:>7} "
              f"{r['weight_bytes'] / base['weight_bytes']:>7.2f} {r['index_overhead']:>6.1%} {r['macs']:>7} "
              f"{r['macs'] / base['macs']:>7.2f} {r['inferences_per_s']:>7.0f} "
              f"{r['inferences_per_s'] / base['inferences_per_s']:>7.2f} {r['accuracy_c']:>7.2%} "
              f"{'yes' if r['bit_exact'] else 'NO':>7}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"bundle": str(a.bundle), "dense": base, "levels": rows}, indent=1))
    print(f"(nested bytes are all levels stored once) written {a.out}")
    if not a.no_objectives:
        from .objectives import report_objectives
        report_objectives(bundle, Path(a.out).parent / "objectives-host", title=str(a.bundle))
    return 0 if all(r["bit_exact"] for r in rows + [base]) else 1


def main(argv: list[str] | None = None) -> int:
    from ...cli import run_command
    return run_command("bench host", argv)

if __name__ == "__main__":
    sys.exit(main())
