"""`make bench-sweep`: the same trial budget, random search vs Optuna TPE (both with ASHA), on LeNet-5 levels
for the shipped solar trace; prints the best trial and the Pareto front of each, and the hypervolume of
each front against one reference point (the worst energy and accuracy seen by either, so the two are
comparable).

    sparsenest bench sweep [--trials 10] [-o build/bench/sweep] [--force]

Small training limits keep a trial near a minute on one core, so both searches finish in about 15 minutes
on 2 cores. Outputs: <out>/{random,tpe}/ (each a complete sweep) and <out>/bench.md, bench.json, fronts.png.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from . import pareto
from .space import parse_space
from .sweep import SweepSettings, run_sweep

# LeNet-5 on MNIST: three levels spread between a sparsest and a densest sparsity, three methods, short training.
SPACE = {"sparsest": {"min": 0.80, "max": 0.98}, "densest": {"min": 0.20, "max": 0.70}, "n_levels": 3,
         "method": ["irregular", "row", "column"], "mode": "joint", "epochs_dense": [1, 2],
         "epochs_retrain": [1, 2, 3], "batch_size": 32, "lr": {"min": 0.01, "max": 0.2, "log": True},
         "lr_retrain": {"min": 0.002, "max": 0.05, "log": True}, "format": ["auto", "csr16"]}
SEARCHES = ("random", "tpe")


def add_arguments(p) -> None:
    from .. import cli_args as arg
    p.add_argument("--trials", type=int, default=10, help="trial budget of each search")
    p.add_argument("--train-limit", type=int, default=4000, help="training images per trial")
    p.add_argument("--test-limit", type=int, default=500, help="test images for the accuracies")
    p.add_argument("--cpus", type=int, default=None, help="local Ray CPUs (default: this machine's)")
    p.add_argument("--seed", type=int, default=0, help="seed of both searches")
    arg.add_output(p, default="build/bench/sweep", help="output path")
    p.add_argument("--force", action="store_true", help="replace earlier results in --out")


def run(a) -> int:
    out = Path(a.out)
    space = parse_space(SPACE, "sweep_bench.SPACE")
    runs, t0 = {}, time.time()
    for search in SEARCHES:
        s = SweepSettings(task="lenet5", trials=a.trials, search=search, trace="solar", train_limit=a.train_limit,
                          test_limit=a.test_limit, cpus=a.cpus, seed=a.seed)
        print(f"== {search}: {a.trials} trials")
        runs[search] = run_sweep(out / search, space, s, force=a.force)
    points = [p for r in runs.values() for p in r["points"]]
    if not points:
        print("no trial finished", file=sys.stderr)
        return 1
    ref_e = 1.05 * max(p["energy_uj"] for p in points)
    ref_a = min(p["accuracy"] for p in points) - 0.01
    lines = [f"# bench-sweep: random vs TPE, {a.trials} trials each (ASHA on both), LeNet-5 / MNIST "
             f"({a.train_limit} training images, accuracy on {a.test_limit} test images), solar trace, "
             f"0.047 F, energy-aware policy", "",
             f"Hypervolume reference: {ref_e:,.0f} µJ, {100 * ref_a:.2f} % (µJ x accuracy dominated; larger "
             "is better)", "",
             "| search | finished trials | best score (expected correct) | best trial | front levels | "
             "hypervolume | wall s |", "|---|---|---|---|---|---|---|"]
    summary = {"reference": {"energy_uj": ref_e, "accuracy": ref_a}, "searches": {}}
    for search, r in runs.items():
        hv = pareto.hypervolume(r["front"], ref_e, ref_a)
        b = r["best"] or {}
        lines.append(f"| {search} | {len(r['results'])} | {b.get('score', 0):,.1f} | {b.get('trial', '-')} | "
                     f"{len(r['front'])} | {hv:,.1f} | {r['wall_s']:.0f} |")
        summary["searches"][search] = {"hypervolume": hv, "best_score": b.get("score"), "best_trial": b.get("trial"),
                                       "finished": len(r["results"]), "front": r["front"], "wall_s": r["wall_s"]}
    for search, r in runs.items():
        lines += ["", pareto.format_table(r["front"], title=f"## {search}: front")]
    text = "\n".join(lines) + f"\n\ntotal wall {time.time() - t0:.0f} s\n"
    print(text)
    (out / "bench.md").write_text(text)
    (out / "bench.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    pareto.plot(points, [], out / "fronts.png", title="LeNet-5 on solar: random vs TPE",
                others={s: r["front"] for s, r in runs.items()})
    print(f"written {out / 'bench.md'}, bench.json, fronts.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    from ..cli import run_command
    return run_command("bench sweep", argv)

if __name__ == "__main__":
    sys.exit(main())
