"""`make bench-sweep`: grid vs random search vs Optuna TPE with the same trial budget (ASHA on all three),
on LeNet-5 levels for the shipped solar trace, repeated over several seeds; prints per search the mean ±
standard deviation (and the range) of the best trial's score and of the Pareto front's hypervolume, each
front measured against one reference point shared by every run (the worst energy and accuracy seen by any),
so all of them are comparable; and, per seed, which search found the best trial: TPE's wins against each
other search out of the seeds, with a one-sided sign test, and each search's mean rank.

    sparsenest bench sweep [--trials 18] [--seeds 5] [-o build/bench/sweep] [--force]

A trial is the whole pipeline (prune, fine-tune, compile, cost, harvest simulation) on a small budget: every
trial starts from one dense LeNet-5 trained once for the benchmark (<out>/dense.npz: 8,000 images, one
epoch), prunes it one-shot into its three levels and fine-tunes them jointly for 1-2 epochs on 512 images
(validation on 300), Q15 accuracy on 300 test images; the harvest simulation covers the solar trace's
first 12 hours (midnight to noon). Method and format are one choice of pairs (method_format), so a model-
based search learns which pairs fit the chip rather than each half alone. The seed sets the search's
random state; every trial fine-tunes with training seed 0, so its result depends on its configuration
alone and the seeds compare the searches, not training noise. Grid search spends the budget on a grid of
exactly --trials points (the method x format pairs and the sparsest level; the other ranges at their
middle, the most fine-tuning epochs): it is deterministic, so it runs once (seed0) and stands for every
seed. Outputs: <out>/<search>/seed<k>/ (each a complete sweep; a
rerun without --force reuses those that finished, so an interrupted benchmark goes on where it stopped,
and --collect only reports them, over the seeds every search finished; --first-seed K lets a second
process run seeds K.. into the same -o), <out>/bench.md, bench.json and
fronts.png (per search, the front over all its seeds' trials).
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

# LeNet-5 on MNIST, from one dense start: three levels spread between a sparsest and a densest sparsity,
# three methods x two formats as one choice of six pairs, the fine-tuning rate on a log range.
PAIRS = [f"{m}/{f}" for m in ("irregular", "row", "column") for f in ("auto", "csr16")]
SPACE = {"sparsest": {"min": 0.80, "max": 0.98}, "densest": {"min": 0.20, "max": 0.70}, "n_levels": 3,
         "method_format": PAIRS, "mode": "joint", "epochs_dense": 0, "epochs_retrain": [1, 2],
         "batch_size": 32, "lr_retrain": {"min": 0.002, "max": 0.05, "log": True}}
DENSE = {"model": "lenet5", "dataset": "mnist", "epochs": 1, "train_limit": 8000, "lr": 0.05, "batch_size": 32}
TRACE_S = 12 * 3600.0        # the solar trace's first 12 hours: night, then the morning's rising power
SEARCHES = ("grid", "random", "tpe")


def grid_space(space: dict, trials: int) -> dict:
    """`space` as a grid of `trials` points: every method x format pair, the sparsest level at
    trials / (pairs) evenly spaced values (cell midpoints), every other range at its (geometric, for log)
    middle and every other list at its largest entry (for epochs: the most training)."""
    cats = len(space["method_format"])
    if trials % cats:
        raise ValueError(f"grid search: --trials must be a multiple of {cats} (method x format pairs), got {trials}")
    n = trials // cats
    lo, hi = space["sparsest"]["min"], space["sparsest"]["max"]
    out = {}
    for k, v in space.items():
        if isinstance(v, dict):
            out[k] = math.sqrt(v["min"] * v["max"]) if v.get("log") else (v["min"] + v["max"]) / 2
        elif isinstance(v, list) and k != "method_format":
            out[k] = max(v)
        else:
            out[k] = v
    out["sparsest"] = [round(lo + (hi - lo) * (i + 0.5) / n, 4) for i in range(n)]
    return out


def sign_test(wins: int, losses: int) -> float:
    """One-sided sign test: the chance of at least `wins` wins in wins + losses fair coin flips (ties
    left out)."""
    n = wins + losses
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n if n else 1.0


def ranks(scores: dict[str, float]) -> dict[str, float]:
    """Rank of each search in one seed (1 = best score; ties share the mean rank)."""
    vals = sorted(scores.values(), reverse=True)
    return {k: statistics.fmean(i + 1 for i, x in enumerate(vals) if x == v) for k, v in scores.items()}


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
    p.add_argument("--trials", type=int, default=18, help="trial budget of each search (grid: a multiple of 6)")
    p.add_argument("--seeds", type=int, default=5, help="repetitions of each search (seeds 0..N-1)")
    p.add_argument("--first-seed", type=int, default=0,
                   help="run only seeds from this one on (e.g. a second process sharing -o; --collect reports all)")
    p.add_argument("--searches", default=",".join(SEARCHES), help="comma-separated subset of grid,random,tpe")
    p.add_argument("--train-limit", type=int, default=512, help="fine-tuning images per trial")
    p.add_argument("--val-limit", type=int, default=300, help="validation images per trial")
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


def _dense_start(out: Path) -> tuple[str, bool]:
    """(path, whether it was trained now) of the shared dense start <out>/dense.npz, trained once and kept
    while its recipe is unchanged."""
    from . import sweep_data
    path, recipe = out / "dense.npz", out / "dense.json"
    if path.exists() and recipe.exists() and json.loads(recipe.read_text()).get("recipe") == DENSE:
        return str(path.resolve()), False
    t = time.time()
    info = sweep_data.pretrain_dense(path, **DENSE, log=lambda m: print(m, flush=True))
    recipe.write_text(json.dumps({"recipe": DENSE} | info | {"wall_s": round(time.time() - t, 1)}, indent=1) + "\n")
    return str(path.resolve()), True


def run(a) -> int:
    searches = [s.strip() for s in a.searches.split(",") if s.strip()]
    if not searches or set(searches) - set(SEARCHES) or not 0 <= a.first_seed < a.seeds or a.trials < 2:
        raise ValueError(f"--searches takes names from {','.join(SEARCHES)}; 0 <= --first-seed < --seeds and "
                         "--trials >= 2")
    if "grid" in searches:
        grid_space(SPACE, a.trials)
    out = Path(a.out)
    t0 = time.time()
    if a.collect:
        return _write(out, _collect(out, searches, a.seeds), searches, a, t0)
    if (out / "bench.json").exists() and not a.force:   # more seeds may be added to a finished benchmark
        done = json.loads((out / "bench.json").read_text())
        seeds = done.get("seeds") if isinstance(done.get("seeds"), list) else []
        if done.get("trials") == a.trials and set(range(a.first_seed, a.seeds)) <= set(seeds):
            raise FileExistsError(f"{out} holds a finished benchmark of these seeds; --collect reports it, "
                                  "--force runs it again")
    import logging
    import os
    import ray
    out.mkdir(parents=True, exist_ok=True)
    init, fresh = _dense_start(out)   # a new dense start: no earlier sweep can be reused
    ray.init(num_cpus=a.cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)   # one runtime for every sweep: its start-up is slow on a busy machine
    runs: dict[str, list[dict]] = {s: [] for s in searches}
    try:
        for seed in range(a.first_seed, a.seeds):
            for search in searches:
                if search == "grid" and runs[search]:   # deterministic: seed 0's sweep stands for every seed
                    runs[search].append(runs[search][0])
                    continue
                space = parse_space(grid_space(SPACE, a.trials) if search == "grid" else SPACE, "sweep_bench")
                k = 0 if search == "grid" else seed
                s = SweepSettings(task="lenet5", trials=a.trials, search=search, trace="solar", seed=k,
                                  train_seed=0, train_limit=a.train_limit, val_limit=a.val_limit,
                                  test_limit=a.test_limit, duration_s=TRACE_S, init=init, cpus=a.cpus,
                                  samples=a.samples or [])
                d = out / search / f"seed{k}"
                done = None if a.force or fresh else _finished(d)
                if done and done["settings"] == asdict(s):   # an interrupted benchmark goes on from here
                    print(f"== {search}, seed {k}: finished earlier in {d}", flush=True)
                else:
                    print(f"== {search}, seed {k}: {a.trials} trials ({time.time() - t0:.0f} s into the "
                          "benchmark)", flush=True)
                    run_sweep(d, space, s, force=True)   # replaces only a sweep's folder (sweep.MARKER)
                    done = _finished(d)
                runs[search].append(done)
    finally:
        ray.shutdown()
    return _write(out, runs, searches, a, t0)


def _collect(out: Path, searches: list[str], seeds: int) -> dict[str, list[dict]]:
    """The finished sweeps in `out` of the seeds (below `seeds`) that every search finished, so each seed
    compares all of them."""
    found = {s: {k: r for k in range(seeds) if (r := _finished(out / s / f"seed{0 if s == 'grid' else k}"))}
             for s in searches}   # grid: deterministic, seed 0 stands for every seed (see run)
    common = sorted(set.intersection(*(set(f) for f in found.values())))
    if not common:
        raise FileNotFoundError(f"{out}: no seed that every search ({', '.join(searches)}) finished")
    return {s: [found[s][k] for k in common] for s in searches}


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


def compare(summary: dict, searches: list[str]) -> dict:
    """Per seed, each search's best score: TPE's wins / ties / losses against every other search with the
    one-sided sign test's p, and every search's mean rank over the seeds."""
    best = {s: summary["searches"][s]["best_score"]["values"] for s in searches}
    n = min(len(v) for v in best.values())
    per_seed = [ranks({s: best[s][k] for s in searches}) for k in range(n)]
    out = {"mean_rank": {s: statistics.fmean(r[s] for r in per_seed) for s in searches}, "tpe_vs": {}}
    if "tpe" in searches:
        for other in (s for s in searches if s != "tpe"):
            pairs = list(zip(best["tpe"], best[other]))
            w, lo = sum(t > o for t, o in pairs), sum(t < o for t, o in pairs)
            out["tpe_vs"][other] = {"wins": w, "losses": lo, "ties": len(pairs) - w - lo,
                                    "sign_test_p": sign_test(w, lo)}
    return out


def _write(out: Path, runs: dict[str, list[dict]], searches: list[str], a, t0: float) -> int:
    points = [p for rs in runs.values() for r in rs for p in r["points"]]
    if not points:
        print("no trial finished", file=sys.stderr)
        return 1
    ref_e = 1.05 * max(p["energy_uj"] for p in points)
    ref_a = min(p["accuracy"] for p in points) - 0.01
    half = max(1, a.trials // 2)
    first = runs[searches[0]][0]
    dense = out / "dense.json"
    seeded = next((s for s in searches if s != "grid"), searches[0])   # grid's one run stands for every seed
    summary = {"trials": a.trials, "seeds": [r["settings"]["seed"] for r in runs[seeded]],
               "settings": {k: first["settings"][k] for k in ("train_limit", "val_limit", "test_limit", "duration_s",
                                                             "trace", "capacitor_f", "policy")},
               "dense_start": json.loads(dense.read_text()) if dense.exists() else None,
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
    summary["comparison"] = compare(summary, searches)
    walls = sum(r["wall_s"] for r in {id(r): r for rs in runs.values() for r in rs}.values())   # grid's run once
    text = report(summary, searches, half) + (f"\n\nsweeps' wall time {walls:.0f} s in all"
                                               + ("" if a.collect else f", benchmark {time.time() - t0:.0f} s") + "\n")
    print(text)
    (out / "bench.md").write_text(text)
    (out / "bench.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    pooled = {s: pareto.pareto_front([p for r in rs for p in r["points"]]) for s, rs in runs.items()}
    pareto.plot(points, [], out / "fronts.png", others=pooled,
                title=f"LeNet-5 on solar: front per search over its {len(summary['seeds'])} seeds x {a.trials} trials")
    print(f"written {out / 'bench.md'}, bench.json, fronts.png")
    return 0


def report(summary: dict, searches: list[str], half: int) -> str:
    n, seeds, st = summary["trials"], summary["seeds"], summary["settings"]
    ref = summary["reference"]
    dense = summary.get("dense_start") or {}
    lines = [f"# bench-sweep: {', '.join(searches)}; {n} trials each, seeds {', '.join(map(str, seeds))} (ASHA on "
             f"all), LeNet-5 / MNIST from one dense start (val accuracy {dense.get('val_accuracy', float('nan')):.4f}), "
             f"fine-tuned on {st['train_limit']} images, Q15 accuracy on {st['test_limit']} test images; trace "
             f"{st['trace']} (first {(st['duration_s'] or 0) / 3600:g} h), {st['capacitor_f']:g} F, policy {st['policy']}",
             "", f"Energy: {summary['calibration']}.",
             f"Score: expected correct inferences over the trace (thousands). Hypervolume (µJ x accuracy) against "
             f"{ref['energy_uj']:,.0f} µJ, {100 * ref['accuracy']:.2f} %. mean ± std (min..max) over the seeds.", "",
             f"| search | best score | best score after {half} trials | hypervolume | mean rank | finished trials "
             "| wall s |", "|---|---|---|---|---|---|---|"]
    cmp_ = summary["comparison"]
    for search in searches:
        r = summary["searches"][search]
        lines.append(f"| {search} | {_fmt(r['best_score'], 1e3)} | {_fmt(r['best_score_half_budget'], 1e3)} | "
                     f"{_fmt(r['hypervolume'])} | {cmp_['mean_rank'][search]:.2f} | "
                     f"{', '.join(map(str, r['finished']))} | {', '.join(f'{w:.0f}' for w in r['wall_s'])} |")
    for other, c in cmp_["tpe_vs"].items():
        lines.append(f"\nTPE's best score beats {other}'s in {c['wins']} of {len(seeds)} seeds ({c['losses']} losses, "
                     f"{c['ties']} ties; one-sided sign test p = {c['sign_test_p']:.3f}).")
    lines += ["", "Best trial per seed:"]
    for search in searches:
        for seed, b in zip(seeds, summary["searches"][search]["best"]):
            c = b.get("config") or {}
            lines.append(f"- {search} seed {seed}: {b.get('trial')} score {(b.get('score') or 0):,.0f}, levels "
                         f"{b.get('levels_requested')}, {c.get('method')}, {c.get('format')}, "
                         f"{c.get('epochs_retrain')} joint epochs, lr_retrain {c.get('lr_retrain', 0):.4f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ..cli import run_command
    return run_command("bench sweep", argv)

if __name__ == "__main__":
    sys.exit(main())
