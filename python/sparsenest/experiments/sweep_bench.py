"""`make bench-sweep`: grid vs random search vs Optuna TPE with the same trial budget (ASHA on all three),
on LeNet-5 levels for the shipped solar trace, repeated over several seeds; prints per search the mean ±
standard deviation (and the range) of the best trial's score and of the Pareto front's hypervolume, each
front measured against one reference point shared by every run (the worst energy and accuracy seen by any),
so all of them are comparable.

    sparsenest bench sweep [--trials 12] [--seeds 3] [-o build/bench/sweep] [--force]

A trial is the whole pipeline (train, compile, cost, harvest simulation) on a small budget, about 8 s
of CPU: 2,000 training images, one dense and one or two joint epochs, Q15 accuracy on 300 test images.
The seed sets both the search's random state and the training seed. Grid search spends the budget on a
grid of exactly --trials points (the categorical choices and the sparsest level; the other ranges at their
middle, the most joint epochs), so its seeds differ only in training. Outputs: <out>/<search>/seed<k>/
(each a complete sweep; a rerun without --force reuses those that finished, so an interrupted benchmark
goes on where it stopped, and --collect only reports them), <out>/bench.md, bench.json and fronts.png (the
first seed's fronts).
"""
from __future__ import annotations

import json
import math
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

from . import pareto
from .space import parse_space
from .sweep import SweepSettings, collect, run_sweep

# LeNet-5 on MNIST: three levels spread between a sparsest and a densest sparsity, three methods, two formats.
SPACE = {"sparsest": {"min": 0.80, "max": 0.98}, "densest": {"min": 0.20, "max": 0.70}, "n_levels": 3,
         "method": ["irregular", "row", "column"], "mode": "joint", "epochs_dense": 1,
         "epochs_retrain": [1, 2], "batch_size": 32, "lr": {"min": 0.01, "max": 0.2, "log": True},
         "lr_retrain": {"min": 0.002, "max": 0.05, "log": True}, "format": ["auto", "csr16"]}
SEARCHES = ("grid", "random", "tpe")


def grid_space(space: dict, trials: int) -> dict:
    """`space` as a grid of `trials` points: every choice of method and format, the sparsest level at
    trials / (choices) evenly spaced values, every other range at its (geometric, for log) middle and every
    other list at its largest entry (for epochs: the most training)."""
    cats = len(space["method"]) * len(space["format"])
    if trials % cats:
        raise ValueError(f"grid search: --trials must be a multiple of {cats} (methods x formats), got {trials}")
    n = trials // cats
    lo, hi = space["sparsest"]["min"], space["sparsest"]["max"]
    out = {}
    for k, v in space.items():
        if isinstance(v, dict):
            out[k] = math.sqrt(v["min"] * v["max"]) if v.get("log") else (v["min"] + v["max"]) / 2
        elif isinstance(v, list) and k not in ("method", "format"):
            out[k] = max(v)
        else:
            out[k] = v
    out["sparsest"] = [round(lo + (hi - lo) * (i + 0.5) / n, 4) for i in range(n)]
    return out


def best_so_far(results: list[dict], upto: int) -> float:
    """Best score among the first `upto` trials to start (ASHA-stopped ones count as not finished)."""
    order = sorted(results, key=lambda r: r["started"])
    return max((r["score"] for r in order[:upto]), default=0.0)


def _started(out: Path, trial: str) -> float:
    return float((out / "trials" / trial / "starts.log").read_text().split()[0])


def spread(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "values": values}


def _fmt(s: dict, scale: float = 1.0) -> str:
    return (f"{s['mean'] / scale:,.1f} ± {s['std'] / scale:,.1f} "
            f"({s['min'] / scale:,.1f}..{s['max'] / scale:,.1f})")


def add_arguments(p) -> None:
    from .. import cli_args as arg
    p.add_argument("--trials", type=int, default=12, help="trial budget of each search (grid: a multiple of 6)")
    p.add_argument("--seeds", type=int, default=3, help="repetitions of each search (seeds 0..N-1)")
    p.add_argument("--searches", default=",".join(SEARCHES), help="comma-separated subset of grid,random,tpe")
    p.add_argument("--train-limit", type=int, default=2000, help="training images per trial")
    p.add_argument("--test-limit", type=int, default=300, help="test images for the accuracies")
    p.add_argument("--samples", action="append", default=None,
                   help="cycle_samples.json to calibrate on (default: make bench-mcu's, when present)")
    p.add_argument("--cpus", type=int, default=None, help="local Ray CPUs (default: this machine's)")
    arg.add_output(p, default="build/bench/sweep", help="output path")
    p.add_argument("--force", action="store_true",
                   help="run every sweep again (without it, sweeps finished in -o with the same settings "
                        "are reused, so an interrupted benchmark goes on where it stopped)")
    p.add_argument("--collect", action="store_true",
                   help="run nothing: report the sweeps already in -o (e.g. of an interrupted benchmark)")


def run(a) -> int:
    searches = [s.strip() for s in a.searches.split(",") if s.strip()]
    if not searches or set(searches) - set(SEARCHES) or a.seeds < 1 or a.trials < 2:
        raise ValueError(f"--searches takes names from {','.join(SEARCHES)}; --seeds >= 1 and --trials >= 2")
    if "grid" in searches:
        grid_space(SPACE, a.trials)
    out = Path(a.out)
    t0 = time.time()
    if a.collect:
        runs = {s: [r for seed in range(a.seeds) if (r := _finished(out / s / f"seed{seed}"))] for s in searches}
        if not all(runs.values()):
            print(f"{out}: no finished sweep of {', '.join(s for s, r in runs.items() if not r)}", file=sys.stderr)
            return 1
        return _write(out, runs, searches, a, t0)
    if (out / "bench.json").exists() and not a.force:
        raise FileExistsError(f"{out} holds a finished benchmark; pass --force to run it again")
    import logging
    import os
    import ray
    ray.init(num_cpus=a.cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)   # one runtime for every sweep: its start-up is slow on a busy machine
    runs: dict[str, list[dict]] = {s: [] for s in searches}
    try:
        for seed in range(a.seeds):
            for search in searches:
                space = parse_space(grid_space(SPACE, a.trials) if search == "grid" else SPACE, "sweep_bench")
                s = SweepSettings(task="lenet5", trials=a.trials, search=search, trace="solar", seed=seed,
                                  train_limit=a.train_limit, test_limit=a.test_limit, cpus=a.cpus,
                                  samples=a.samples or [])
                d = out / search / f"seed{seed}"
                done = None if a.force else _finished(d)
                if done and done["settings"] == asdict(s):   # an interrupted benchmark goes on from here
                    print(f"== {search}, seed {seed}: finished earlier in {d}", flush=True)
                else:
                    print(f"== {search}, seed {seed}: {a.trials} trials", flush=True)
                    run_sweep(d, space, s, force=True)   # replaces only a sweep's folder (sweep.MARKER)
                    done = _finished(d)
                runs[search].append(done)
    finally:
        ray.shutdown()
    return _write(out, runs, searches, a, t0)


def _finished(d: Path) -> dict | None:
    """A finished sweep's results (sweep.collect) with each trial's start time, or None."""
    if not (d / "front.json").exists():
        return None
    r = collect(d)
    for res in r["results"]:
        res["started"] = _started(d, res["trial"])
    r["best"] = max(r["results"], key=lambda x: x["score"], default=None)
    r["wall_s"] = json.loads((d / "front.json").read_text())["wall_s"]
    saved = json.loads((d / "sweep.json").read_text())
    r["calibration"], r["settings"] = saved["calibration"], saved["settings"]
    return r


def _write(out: Path, runs: dict[str, list[dict]], searches: list[str], a, t0: float) -> int:
    points = [p for rs in runs.values() for r in rs for p in r["points"]]
    if not points:
        print("no trial finished", file=sys.stderr)
        return 1
    ref_e = 1.05 * max(p["energy_uj"] for p in points)
    ref_a = min(p["accuracy"] for p in points) - 0.01
    half = max(1, a.trials // 2)
    first = runs[searches[0]][0]
    summary = {"trials": a.trials, "seeds": min(len(rs) for rs in runs.values()),
               "train_limit": first["settings"]["train_limit"], "test_limit": first["settings"]["test_limit"],
               "reference": {"energy_uj": ref_e, "accuracy": ref_a}, "calibration": first["calibration"],
               "searches": {}}
    for search, rs in runs.items():
        summary["searches"][search] = {
            "best_score": spread([(r["best"] or {}).get("score", 0.0) for r in rs]),
            "best_score_half_budget": spread([best_so_far(r["results"], half) for r in rs]),
            "hypervolume": spread([pareto.hypervolume(r["front"], ref_e, ref_a) for r in rs]),
            "finished": [len(r["results"]) for r in rs], "wall_s": [r["wall_s"] for r in rs],
            "best": [{k: (r["best"] or {}).get(k) for k in ("trial", "score", "levels_requested", "config")}
                     for r in rs]}
    walls = sum(w for r in summary["searches"].values() for w in r["wall_s"])
    text = report(summary, searches, half) + (f"\n\nsweeps' wall time {walls:.0f} s in all"
                                               + ("" if a.collect else f", benchmark {time.time() - t0:.0f} s") + "\n")
    print(text)
    (out / "bench.md").write_text(text)
    (out / "bench.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    pareto.plot(points, [], out / "fronts.png", title="LeNet-5 on solar, seed 0: fronts per search",
                others={s: rs[0]["front"] for s, rs in runs.items()})
    print(f"written {out / 'bench.md'}, bench.json, fronts.png")
    return 0


def report(summary: dict, searches: list[str], half: int) -> str:
    n, k = summary["trials"], summary["seeds"]
    ref = summary["reference"]
    lines = [f"# bench-sweep: {', '.join(searches)}; {n} trials each, {k} seeds (ASHA on all), LeNet-5 / MNIST "
             f"({summary['train_limit']} training images, Q15 accuracy on {summary['test_limit']} test images), "
             "solar trace, 0.047 F, energy-aware policy", "",
             f"Energy: {summary['calibration']}.",
             f"Score: expected correct inferences over the trace (thousands). Hypervolume (µJ x accuracy) against "
             f"{ref['energy_uj']:,.0f} µJ, {100 * ref['accuracy']:.2f} %. mean ± std (min..max) over the seeds.", "",
             f"| search | best score | best score after {half} trials | hypervolume | finished trials | wall s |",
             "|---|---|---|---|---|---|"]
    for search in searches:
        r = summary["searches"][search]
        lines.append(f"| {search} | {_fmt(r['best_score'], 1e3)} | {_fmt(r['best_score_half_budget'], 1e3)} | "
                     f"{_fmt(r['hypervolume'])} | {', '.join(map(str, r['finished']))} | "
                     f"{', '.join(f'{w:.0f}' for w in r['wall_s'])} |")
    if "tpe" in searches:
        tpe = summary["searches"]["tpe"]["best_score"]["values"]
        for other in (s for s in searches if s != "tpe"):
            o = summary["searches"][other]["best_score"]["values"]
            wins = sum(t > v for t, v in zip(tpe, o))
            lines.append(f"\nTPE's best score beats {other}'s in {wins} of {len(tpe)} seeds.")
    lines += ["", "Best trial per seed:"]
    for search in searches:
        for seed, b in enumerate(summary["searches"][search]["best"]):
            c = b.get("config") or {}
            lines.append(f"- {search} seed {seed}: {b.get('trial')} score {(b.get('score') or 0):,.0f}, levels "
                         f"{b.get('levels_requested')}, {c.get('method')}, {c.get('format')}, "
                         f"{c.get('epochs_retrain')} joint epochs")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ..cli import run_command
    return run_command("bench sweep", argv)

if __name__ == "__main__":
    sys.exit(main())
